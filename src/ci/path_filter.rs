//! The path-filtering orb's two steps, done by the runner: `set-parameters`
//! (pipeline parameters chosen by which files changed since a base
//! revision) and `generate-config` (the configs the matching mapping lines
//! name, deep-merged into the config to continue with).
//!
//! The rules are the orb's documented ones: a mapping line is
//! `<path regex> <parameter> <JSON value> [<config file>]`, whitespace
//! separated, `#` comments and blank lines skipped, every line with the
//! same number of fields; a regex must match a whole changed path; the
//! base is the merge base of the base revision and HEAD, or HEAD's parent
//! when they are the same commit (a push to the base branch itself), or
//! git's empty tree for a first commit.

use serde_json::{Map, Value as Json};
use std::path::Path;
use std::process::{Command, Stdio};

/// git's empty tree: what a first commit is compared against.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// One mapping line.
#[derive(Debug)]
pub struct Rule {
    regex: regex::Regex,
    param: String,
    value: Json,
    config: Option<String>,
}

/// Parses the mapping text (the parameter, or the file it names).
pub fn parse_mapping(text: &str) -> Result<Vec<Rule>, String> {
    let lines: Vec<(usize, Vec<&str>)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| (n + 1, l.split_whitespace().collect()))
        .collect();
    let Some((_, first)) = lines.first() else {
        return Err("the mapping is empty\n  hint: one line per rule: <path regex> <parameter> <JSON value> [<config file>]".into());
    };
    let fields = first.len();
    if fields != 3 && fields != 4 {
        return Err(format!(
            "mapping line 1 has {fields} fields; a rule has 3 (<path regex> <parameter> <value>) or 4 (… <config file>)"
        ));
    }
    lines
        .iter()
        .map(|(n, f)| {
            if f.len() != fields {
                return Err(format!(
                    "mapping line {n} has {} fields, the first line {fields}: every line needs the same number",
                    f.len()
                ));
            }
            let regex = regex::Regex::new(&format!("^(?:{})$", f[0]))
                .map_err(|e| format!("mapping line {n}: `{}` is not a regex: {e}", f[0]))?;
            let value = serde_json::from_str(f[2]).map_err(|e| {
                format!(
                    "mapping line {n}: value `{}` is not JSON ({e})\n  hint: quote strings: \"value\"",
                    f[2]
                )
            })?;
            Ok(Rule {
                regex,
                param: f[1].to_string(),
                value,
                config: f.get(3).map(|c| c.to_string()),
            })
        })
        .collect()
}

/// The parameters the rules set for `changes`, and the config files the
/// matching rules name (in rule order, each once).
pub fn select(rules: &[Rule], changes: &[String]) -> (Map<String, Json>, Vec<String>) {
    let mut params = Map::new();
    let mut configs: Vec<String> = Vec::new();
    for r in rules {
        if changes.iter().any(|c| r.regex.is_match(c)) {
            params.insert(r.param.clone(), r.value.clone());
            if let Some(c) = &r.config
                && !configs.contains(c)
            {
                configs.push(c.clone());
            }
        }
    }
    (params, configs)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("git {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The files changed between the base (see the module doc) and HEAD.
pub fn changed_files(dir: &Path, base_revision: &str) -> Result<(String, Vec<String>), String> {
    let head = git(dir, &["rev-parse", "HEAD"])?;
    let verify = |r: &str| {
        git(
            dir,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{r}^{{commit}}"),
            ],
        )
    };
    let base = verify(base_revision)
        .or_else(|_| verify(&format!("origin/{base_revision}")))
        .map_err(|_| {
            format!(
                "base revision `{base_revision}` is not in the repository\n  hint: set `base-revision` to a branch or commit the checkout has"
            )
        })?;
    let mut base = git(dir, &["merge-base", &base, &head])?;
    if base == head {
        base = verify("HEAD~1").unwrap_or_else(|_| EMPTY_TREE.to_string());
    }
    let names = git(
        dir,
        &[
            "-c",
            "core.quotepath=false",
            "diff",
            "--name-only",
            &base,
            &head,
        ],
    )?;
    Ok((base, names.lines().map(str::to_string).collect()))
}

/// `set-parameters`: writes the chosen parameters as a JSON object to
/// `output_path` and the configs to continue with (one per line; the
/// rules' files, else `config_path`) to `config_list_path`.
pub fn set_parameters(
    dir: &Path,
    base_revision: &str,
    mapping: &str,
    output_path: &Path,
    config_path: &str,
    config_list_path: &Path,
) -> Result<String, String> {
    let file = dir.join(mapping);
    let text = if !mapping.contains('\n') && !mapping.trim().is_empty() && file.is_file() {
        std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?
    } else {
        mapping.to_string()
    };
    let rules = parse_mapping(&text)?;
    let (base, changes) = changed_files(dir, base_revision)?;
    let (params, configs) = select(&rules, &changes);
    let json = serde_json::to_string(&Json::Object(params.clone())).map_err(|e| e.to_string())?;
    write(output_path, json.as_bytes())?;
    let list = if configs.is_empty() {
        vec![config_path.to_string()]
    } else {
        configs
    };
    write(
        config_list_path,
        format!("{}\n", list.join("\n")).as_bytes(),
    )?;
    let short = base.get(..12).unwrap_or(&base);
    Ok(if params.is_empty() {
        format!(
            "{} changed since {short}; no change in the mapping's paths",
            crate::report::count(changes.len() as u64, "file", "files")
        )
    } else {
        format!(
            "{} changed since {short}; set {}",
            crate::report::count(changes.len() as u64, "file", "files"),
            params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `generate-config`: the configs listed in `config_list_path` (relative
/// to `dir`) merged into `generated_path`. One config is copied as it is;
/// several are deep-merged in order (maps merge, anything else: the later
/// file wins), as the orb's `yq` merge does.
pub fn generate_config(
    dir: &Path,
    config_list_path: &Path,
    generated_path: &Path,
) -> Result<String, String> {
    let list = std::fs::read_to_string(config_list_path)
        .map_err(|e| format!("{}: {e}", config_list_path.display()))?;
    let files: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).map_err(|e| format!("config {}: {e}", p.display()))
    };
    let text = match files.as_slice() {
        [] => return Err(format!("{} lists no config", config_list_path.display())),
        [one] => read(one)?,
        many => {
            let mut merged = serde_norway::Value::Mapping(Default::default());
            for f in many {
                let v = super::yaml::parse(&read(f)?).map_err(|e| format!("config {f}: {e}"))?;
                deep_merge(&mut merged, v);
            }
            serde_norway::to_string(&merged).map_err(|e| e.to_string())?
        }
    };
    write(generated_path, text.as_bytes())?;
    Ok(format!(
        "{} from {}",
        generated_path.display(),
        files.join(", ")
    ))
}

fn deep_merge(into: &mut serde_norway::Value, from: serde_norway::Value) {
    use serde_norway::Value;
    match (into, from) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    crate::fsutil::write_atomic(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rules_match_whole_paths_and_values_are_json() {
        let rules = parse_mapping(
            "# comment\n\nsrc/.* build-code true\ndoc/.* build-docs true\nsrc/tests/.* name \"value\"\n",
        )
        .unwrap();
        let (p, c) = select(&rules, &changes(&["src/tests/a.rs", "README.md"]));
        assert_eq!(p["build-code"], Json::Bool(true));
        assert_eq!(p["name"], Json::String("value".into()));
        assert!(!p.contains_key("build-docs"));
        assert!(c.is_empty());
        // The regex is anchored at both ends.
        let (p, _) = select(&rules, &changes(&["lib/src/x"]));
        assert!(p.is_empty());
    }

    #[test]
    fn bad_mappings_are_refused_naming_the_line() {
        assert!(parse_mapping("").unwrap_err().contains("empty"));
        assert!(parse_mapping("a b").unwrap_err().contains("2 fields"));
        let e = parse_mapping("a p true\nb q true x.yml").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_mapping("a p value").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let e = parse_mapping("a( p true").unwrap_err();
        assert!(e.contains("not a regex"), "{e}");
    }

    #[test]
    fn four_field_rules_name_the_configs_in_order_once() {
        let rules =
            parse_mapping("a/.* x true c1.yml\nb/.* y true c2.yml\nc/.* z 1 c1.yml").unwrap();
        let (p, c) = select(&rules, &changes(&["c/1", "a/1", "b/2"]));
        assert_eq!(p.len(), 3);
        assert_eq!(c, ["c1.yml", "c2.yml"]);
    }

    #[test]
    fn deep_merge_merges_maps_and_later_scalars_win() {
        let mut a = crate::ci::yaml::parse("jobs: {a: {steps: [x]}}\nversion: 2.1\n").unwrap();
        let b = crate::ci::yaml::parse("jobs: {b: {steps: [y]}}\nversion: 2.1\n").unwrap();
        deep_merge(&mut a, b);
        let jobs = a.get("jobs").unwrap();
        assert!(jobs.get("a").is_some() && jobs.get("b").is_some());
    }
}
