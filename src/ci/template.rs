//! Cache-key templates, bit-exact with CircleCI's: `{{ checksum "path" }}`
//! (base64 of the SHA-256 of the file's bytes), `{{ .Branch }}`,
//! `{{ .Revision }}`, `{{ .BuildNum }}`, `{{ .Environment.NAME }}`,
//! `{{ epoch }}`, `{{ arch }}`, plus strata's `{{ strata.layer "NAME" }}`.

use base64::Engine as _;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// CircleCI refuses longer keys; so do we.
pub const MAX_KEY_LEN: usize = 900;

/// Why a key template does not render. Positions are 1-based characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "cache key `{key}`: unknown template `{{{{ {expr} }}}}` at position {pos}\n  hint: use checksum \"file\", .Branch, .Revision, .BuildNum, .CheckoutKey, .Environment.NAME, epoch, arch or strata.layer \"NAME\""
    )]
    Unknown {
        key: String,
        expr: String,
        pos: usize,
    },
    #[error("cache key `{key}`: `{{{{` at position {pos} is never closed")]
    Unclosed { key: String, pos: usize },
    #[error("cache key `{key}`: checksum at position {pos}: cannot read {}: {why}\n  hint: the file must exist when the key is computed (make it in an earlier step)", path.display())]
    Checksum {
        key: String,
        pos: usize,
        path: PathBuf,
        why: String,
    },
    #[error("cache key `{key}`: {what} at position {pos}")]
    Value {
        key: String,
        pos: usize,
        what: String,
    },
    #[error(
        "cache key is {len} characters long; CircleCI (and strata) allow at most {MAX_KEY_LEN}"
    )]
    TooLong { len: usize },
}

/// What templates can refer to.
pub struct Vars<'a> {
    /// `None` when there is none (no git checkout, no `CIRCLE_BRANCH`): a
    /// key using it is an error, never rendered as an empty string.
    pub branch: Option<String>,
    pub revision: Option<String>,
    pub build_num: String,
    /// Where `checksum` paths are relative to (the job's working directory).
    pub dir: PathBuf,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The digest of a layer, or why there is none.
    pub layer: &'a dyn Fn(&str) -> Result<String, String>,
}

/// `base64(sha256(bytes of path))`, CircleCI's `checksum`.
pub fn checksum(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes)))
}

/// CircleCI's `{{ arch }}`: `arch1-<os>-<cpu>-<family>_<model>`, e.g.
/// `arch1-linux-amd64-6_85`, with the CPU family and model of the first
/// processor in /proc/cpuinfo (no suffix where the kernel reports none).
pub fn arch() -> String {
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    let base = format!("arch1-{}-{cpu}", std::env::consts::OS);
    match std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| cpu_family_model(&t))
    {
        Some((family, model)) => format!("{base}-{family}_{model}"),
        None => base,
    }
}

/// The `cpu family` and `model` of the first processor in /proc/cpuinfo text.
pub fn cpu_family_model(cpuinfo: &str) -> Option<(String, String)> {
    let first = cpuinfo.split("\n\n").next()?;
    let field = |name: &str| {
        first.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    Some((field("cpu family")?, field("model")?))
}

/// Renders `key`, then checks its length.
pub fn render(key: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = key;
    let mut offset = 0; // byte offset of `rest` in `key`
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let start = offset + open;
        let pos = key[..start].chars().count() + 1;
        let Some(close) = rest[open + 2..].find("}}") else {
            return Err(TemplateError::Unclosed {
                key: key.into(),
                pos,
            });
        };
        let expr = rest[open + 2..open + 2 + close].trim();
        out.push_str(&eval(key, expr, pos, vars)?);
        let consumed = open + 2 + close + 2;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    if out.chars().count() > MAX_KEY_LEN {
        return Err(TemplateError::TooLong {
            len: out.chars().count(),
        });
    }
    Ok(out)
}

/// A quoted string argument: `"path"`.
fn quoted(arg: &str) -> Option<&str> {
    arg.trim().strip_prefix('"')?.strip_suffix('"')
}

fn eval(key: &str, expr: &str, pos: usize, vars: &Vars<'_>) -> Result<String, TemplateError> {
    let unknown = || TemplateError::Unknown {
        key: key.into(),
        expr: expr.into(),
        pos,
    };
    let (head, arg) = match expr.split_once(char::is_whitespace) {
        Some((h, a)) => (h, Some(a)),
        None => (expr, None),
    };
    match (head, arg) {
        ("checksum", Some(a)) => {
            let file = quoted(a).ok_or_else(unknown)?;
            // `~/x` is under the job's home, as in CircleCI's shell.
            let path = match file.strip_prefix("~/") {
                Some(rest) => match (vars.env)("HOME") {
                    Some(home) => Path::new(&home).join(rest),
                    None => vars.dir.join(file),
                },
                None => vars.dir.join(file),
            };
            checksum(&path).map_err(|e| TemplateError::Checksum {
                key: key.into(),
                pos,
                path,
                why: e.to_string(),
            })
        }
        ("strata.layer", Some(a)) => {
            let name = quoted(a).ok_or_else(unknown)?;
            (vars.layer)(name).map_err(|what| TemplateError::Value {
                key: key.into(),
                pos,
                what,
            })
        }
        (".Branch", None) => vars.branch.clone().ok_or_else(|| TemplateError::Value {
            key: key.into(),
            pos,
            what: "`.Branch` has no value: this is not a git checkout and CIRCLE_BRANCH is unset\n  hint: run inside the repository, or set CIRCLE_BRANCH".into(),
        }),
        (".Revision", None) => vars.revision.clone().ok_or_else(|| TemplateError::Value {
            key: key.into(),
            pos,
            what: "`.Revision` has no value: this is not a git checkout and CIRCLE_SHA1 is unset\n  hint: run inside the repository, or set CIRCLE_SHA1".into(),
        }),
        (".BuildNum", None) => Ok(vars.build_num.clone()),
        // CircleCI's checkout key is constant per project; locally it is
        // STRATA_CI_CHECKOUT_KEY (set it to match a real runner's keys).
        (".CheckoutKey", None) => Ok((vars.env)("STRATA_CI_CHECKOUT_KEY")
            .unwrap_or_else(|| "local-checkout-key".into())),
        ("epoch", None) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string()),
        ("arch", None) => Ok(arch()),
        (h, None) if h.starts_with(".Environment.") => {
            let name = &h[".Environment.".len()..];
            if name.is_empty() {
                return Err(unknown());
            }
            // CircleCI renders an unset variable as "<no value>".
            Ok((vars.env)(name).unwrap_or_else(|| "<no value>".into()))
        }
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(dir: &Path) -> Vars<'_> {
        Vars {
            branch: Some("main".into()),
            revision: Some("abc123".into()),
            build_num: "42".into(),
            dir: dir.to_path_buf(),
            env: &|n| match n {
                "CACHE_VERSION" => Some("v7".to_string()),
                "HOME" => Some("/nonexistent-home".to_string()),
                _ => None,
            },
            layer: &|n| {
                if n == "tools" {
                    Ok("d1g35t".into())
                } else {
                    Err(format!("no layer `{n}`"))
                }
            },
        }
    }

    #[test]
    fn renders_every_template_and_keeps_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "hello\n").unwrap();
        let v = vars(dir.path());
        let out = render(
            "k-{{ .Environment.CACHE_VERSION }}-{{.Branch}}-{{ .Revision }}-{{ .BuildNum }}-{{ checksum \"f\" }}-{{ strata.layer \"tools\" }}-{{ arch }}",
            &v,
        )
        .unwrap();
        // sha256("hello\n") base64-encoded.
        assert_eq!(
            out,
            format!(
                "k-v7-main-abc123-42-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=-d1g35t-{}",
                arch()
            )
        );
        assert_eq!(
            render("{{ .Environment.UNSET }}", &v).unwrap(),
            "<no value>"
        );
        assert_eq!(
            render("{{ .CheckoutKey }}", &v).unwrap(),
            "local-checkout-key"
        );
        match render("{{ checksum \"~/lock\" }}", &v) {
            Err(TemplateError::Checksum { path, .. }) => {
                assert_eq!(path, Path::new("/nonexistent-home/lock"))
            }
            other => panic!("{other:?}"),
        }
        assert!(render("{{ epoch }}", &v).unwrap().parse::<u64>().unwrap() > 1_600_000_000);
    }

    #[test]
    fn errors_name_the_key_and_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let v = vars(dir.path());
        assert_eq!(
            render("ab-{{ .Bogus }}", &v),
            Err(TemplateError::Unknown {
                key: "ab-{{ .Bogus }}".into(),
                expr: ".Bogus".into(),
                pos: 4
            })
        );
        assert!(matches!(
            render("x-{{ .Branch", &v),
            Err(TemplateError::Unclosed { pos: 3, .. })
        ));
        assert!(matches!(
            render("{{ checksum \"missing\" }}", &v),
            Err(TemplateError::Checksum { .. })
        ));
        assert!(matches!(
            render("{{ strata.layer \"nope\" }}", &v),
            Err(TemplateError::Value { .. })
        ));
        assert_eq!(
            render(&"k".repeat(901), &v),
            Err(TemplateError::TooLong { len: 901 })
        );
        assert!(render(&"k".repeat(900), &v).is_ok());
        let none = Vars {
            branch: None,
            revision: None,
            ..vars(dir.path())
        };
        for t in ["k1-{{ .Branch }}", "k1-{{ .Revision }}"] {
            let e = render(t, &none).unwrap_err().to_string();
            assert!(e.contains("has no value") && e.contains(t), "{e}");
        }
    }

    #[test]
    fn arch_carries_cpu_family_and_model_like_circleci() {
        let info = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R)\n\nprocessor\t: 1\ncpu family\t: 7\nmodel\t\t: 1\n";
        assert_eq!(cpu_family_model(info), Some(("6".into(), "85".into())));
        assert_eq!(cpu_family_model("processor : 0\nBogoMIPS : 50\n"), None);
        if std::env::consts::ARCH == "x86_64" {
            let a = arch();
            let parts: Vec<&str> = a.split('-').collect();
            assert_eq!(&parts[..3], ["arch1", "linux", "amd64"], "{a}");
            let (f, m) = parts[3].split_once('_').unwrap();
            assert!(f.parse::<u32>().is_ok() && m.parse::<u32>().is_ok(), "{a}");
        }
    }
}
