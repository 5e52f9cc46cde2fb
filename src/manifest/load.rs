//! Reading and validating `strata.toml` and `modules/*.toml`.

use super::error::{ManifestError, closest, from_toml};
use super::{Module, ParamValue, PatchFile, Project, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProjectFile {
    project: RawProject,
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    mirrors: RawMirrors,
    #[serde(default)]
    target: BTreeMap<String, RawTarget>,
    #[serde(default)]
    layer: BTreeMap<String, RawTarget>,
    #[serde(default)]
    cache: RawCache,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCache {
    dir: Option<String>,
    remote: Option<Spanned<String>>,
    endpoint: Option<String>,
    region: Option<String>,
    #[serde(default)]
    imds: bool,
    #[serde(default = "default_true")]
    push: bool,
    sign_key: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<Spanned<String>>,
    restore: Option<crate::store::RestoreMode>,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProject {
    name: String,
    #[serde(default = "default_cache_version")]
    cache_version: String,
}

fn default_cache_version() -> String {
    "1".to_string()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSettings {
    jobs: Option<usize>,
    packages_dir: Option<String>,
    build_dir: Option<String>,
    install_dir: Option<String>,
    #[serde(default)]
    pass_env: Vec<Spanned<String>>,
    unpack_max_bytes: Option<u64>,
    unpack_max_entries: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMirrors {
    #[serde(default)]
    before: Vec<Spanned<String>>,
    #[serde(default)]
    after: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    modules: Vec<Spanned<String>>,
    #[serde(default)]
    params: BTreeMap<Spanned<String>, Spanned<RawParam>>,
}

/// A target parameter: a literal value or `{ file = "path" }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawParam {
    Value(String),
    File(RawFileParam),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileParam {
    file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawModule {
    name: Spanned<String>,
    version: String,
    url: Option<Spanned<String>>,
    urls: Option<Vec<Spanned<String>>>,
    sha256: Option<Spanned<String>>,
    file: Option<String>,
    git: Option<Spanned<String>>,
    rev: Option<Spanned<String>>,
    submodules: Option<Spanned<bool>>,
    #[serde(default = "default_strip")]
    strip_components: u32,
    patches: Option<Spanned<String>>,
    #[serde(default)]
    depends: Vec<Spanned<String>>,
    configure: Option<String>,
    build: Option<String>,
    install: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    keep: Vec<String>,
    #[serde(default)]
    host: bool,
    #[serde(default)]
    params: Vec<Spanned<String>>,
}

fn default_strip() -> u32 {
    1
}

/// A module file kept with its text, so later checks can point into it.
struct Loaded {
    module: Module,
    source: String,
    depends_spans: Vec<std::ops::Range<usize>>,
    name_span: std::ops::Range<usize>,
}

/// Loads and validates the project rooted at `root`.
pub fn load(root: &Path) -> Result<Project, ManifestError> {
    let root = root
        .canonicalize()
        .map_err(|e| ManifestError::new(root, format!("cannot open project directory: {e}")))?;
    let manifest = root.join("strata.toml");
    let rel_manifest = PathBuf::from("strata.toml");
    let source = fs::read_to_string(&manifest).map_err(|e| {
        ManifestError::new(&manifest, format!("cannot read the project manifest: {e}"))
            .help("run strata inside a project directory, or pass -C DIR")
    })?;
    let raw: RawProjectFile =
        toml::from_str(&source).map_err(|e| from_toml(&rel_manifest, &source, &e))?;

    let jobs = match raw.settings.jobs {
        Some(0) | None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(n) => n,
    };
    let dir = |v: &Option<String>, default: &str| root.join(v.as_deref().unwrap_or(default));
    let settings = Settings {
        jobs,
        packages_dir: dir(&raw.settings.packages_dir, "packages"),
        build_dir: dir(&raw.settings.build_dir, "build"),
        install_dir: dir(&raw.settings.install_dir, "install"),
        unpack_limits: {
            let d = crate::unpack::Limits::default();
            crate::unpack::Limits {
                max_bytes: raw.settings.unpack_max_bytes.unwrap_or(d.max_bytes),
                max_entries: raw.settings.unpack_max_entries.unwrap_or(d.max_entries),
            }
        },
        cache_dir: raw.cache.dir.as_ref().map(|d| root.join(d)),
        cache_remote: match &raw.cache.remote {
            None => None,
            Some(r) => {
                let url = r.get_ref();
                if url.starts_with("s3://")
                    || url.starts_with("http://")
                    || url.starts_with("https://")
                {
                    Some(url.clone())
                } else if url.starts_with("file://") {
                    Some(
                        resolve_url(&root, url).map_err(|m| {
                            ManifestError::new(&rel_manifest, m).at(&source, r.span())
                        })?,
                    )
                } else {
                    return Err(ManifestError::new(
                            &rel_manifest,
                            format!("unsupported cache remote `{url}`"),
                        )
                        .at(&source, r.span())
                        .help("use s3://bucket/prefix, https://host/prefix (read-only) or file:///shared/dir"));
                }
            }
        },
        cache_endpoint: raw.cache.endpoint.clone(),
        cache_region: raw.cache.region.clone(),
        cache_imds: raw.cache.imds,
        cache_push: raw.cache.push,
        cache_sign_key: raw.cache.sign_key.as_ref().map(|k| root.join(k)),
        cache_restore: raw.cache.restore,
        cache_trusted_keys: raw
            .cache
            .trusted_keys
            .iter()
            .map(|k| {
                crate::signing::PublicKey::parse(k.get_ref()).map_err(|e| {
                    ManifestError::new(&rel_manifest, format!("bad trusted key: {e}"))
                        .at(&source, k.span())
                        .help("use the line `strata cache keygen NAME` printed: name:base64")
                })
            })
            .collect::<Result<_, _>>()?,
        pass_env: Vec::new(),
    };
    let mut settings = settings;
    for n in &raw.settings.pass_env {
        let name = n.get_ref();
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let why = if !valid {
            Some("is not an environment variable name (letters, digits, `_`)")
        } else if name.starts_with("STRATA_") {
            Some("is reserved: strata sets the STRATA_* variables itself")
        } else if name == "MAKEFLAGS" || name == "CARGO_MAKEFLAGS" {
            Some("is set by strata: it carries the build's jobserver")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(
                ManifestError::new(&rel_manifest, format!("pass-env `{name}` {why}"))
                    .at(&source, n.span())
                    .help("remove it from [settings] pass-env"),
            );
        }
        if !settings.pass_env.contains(name) {
            settings.pass_env.push(name.clone());
        }
    }
    let mirror = |list: &[Spanned<String>]| -> Result<Vec<String>, ManifestError> {
        list.iter()
            .map(|u| {
                resolve_url(&root, u.get_ref())
                    .map_err(|msg| ManifestError::new(&rel_manifest, msg).at(&source, u.span()))
            })
            .collect()
    };
    let mirrors_before = mirror(&raw.mirrors.before)?;
    let mirrors_after = mirror(&raw.mirrors.after)?;

    let loaded = load_modules(&root)?;
    let names: Vec<&str> = loaded.iter().map(|l| l.module.name.as_str()).collect();
    for pair in loaded.windows(2) {
        if pair[0].module.name == pair[1].module.name {
            let (a, b) = (&pair[0], &pair[1]);
            return Err(ManifestError::new(
                &b.module.manifest_path,
                format!(
                    "duplicate module `{}`: also defined in {}",
                    b.module.name,
                    a.module.manifest_path.display()
                ),
            )
            .at(&b.source, b.name_span.clone())
            .help("each module name must be defined once; rename or remove one of the files"));
        }
    }
    for l in &loaded {
        for (dep, span) in l.module.depends.iter().zip(&l.depends_spans) {
            if names.binary_search(&dep.as_str()).is_err() {
                return Err(unknown_module(
                    &l.module.manifest_path,
                    &l.source,
                    span.clone(),
                    dep,
                    &names,
                    &format!("module `{}` depends on", l.module.name),
                ));
            }
        }
    }
    let (mut targets, mut layers) = (BTreeMap::new(), BTreeMap::new());
    let mut target_params = BTreeMap::new();
    for (name, t) in &raw.target {
        let params = target_params_of(&root, &source, name, t)?;
        target_params.insert(name.clone(), params);
    }
    for (name, t) in &raw.layer {
        if let Some((k, _)) = t.params.iter().next() {
            return Err(ManifestError::new(
                &rel_manifest,
                format!("layer `{name}` sets params, which only targets take"),
            )
            .at(&source, k.span())
            .help(format!(
                "move the params to a [target.{name}] table: a layer named like a target caches that target's variants"
            )));
        }
    }
    for (kind, raw_sets, out) in [
        ("target", &raw.target, &mut targets),
        ("layer", &raw.layer, &mut layers),
    ] {
        for (name, t) in raw_sets {
            let mut mods = Vec::new();
            for m in &t.modules {
                if names.binary_search(&m.get_ref().as_str()).is_err() {
                    return Err(unknown_module(
                        &rel_manifest,
                        &source,
                        m.span(),
                        m.get_ref(),
                        &names,
                        &format!("{kind} `{name}` lists"),
                    ));
                }
                mods.push(m.get_ref().clone());
            }
            out.insert(name.clone(), mods);
        }
    }

    Ok(Project {
        root,
        name: raw.project.name,
        cache_version: raw.project.cache_version,
        settings,
        mirrors_before,
        mirrors_after,
        targets,
        target_params,
        layers,
        modules: loaded.into_iter().map(|l| l.module).collect(),
    })
}

/// Whether `name` can be a parameter: it becomes `$STRATA_PARAM_<name>`.
pub(crate) fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The validated `params` of `[target.NAME]`: names checked, files present.
fn target_params_of(
    root: &Path,
    source: &str,
    name: &str,
    t: &RawTarget,
) -> Result<BTreeMap<String, ParamValue>, ManifestError> {
    let manifest = Path::new("strata.toml");
    let mut out = BTreeMap::new();
    for (k, v) in &t.params {
        if !valid_param_name(k.get_ref()) {
            return Err(ManifestError::new(
                manifest,
                format!("target `{name}`: `{}` is not a valid parameter name", k.get_ref()),
            )
            .at(source, k.span())
            .help("use letters, digits and _ (not starting with a digit): it becomes $STRATA_PARAM_<NAME>"));
        }
        let value = match v.get_ref() {
            RawParam::Value(s) => ParamValue::Value(s.clone()),
            RawParam::File(f) => {
                let abs = root.join(&f.file);
                if !abs.is_file() {
                    return Err(ManifestError::new(
                        manifest,
                        format!(
                            "target `{name}`: param {} names file `{}`, which does not exist",
                            k.get_ref(),
                            f.file
                        ),
                    )
                    .at(source, v.span())
                    .help("file paths are relative to the project root; create the file or fix the path"));
                }
                ParamValue::File {
                    rel: f.file.clone(),
                    abs,
                }
            }
        };
        out.insert(k.get_ref().clone(), value);
    }
    Ok(out)
}

fn unknown_module(
    file: &Path,
    source: &str,
    span: std::ops::Range<usize>,
    name: &str,
    names: &[&str],
    what: &str,
) -> ManifestError {
    let err = ManifestError::new(file, format!("{what} unknown module `{name}`")).at(source, span);
    match closest(name, names.iter().copied()) {
        Some(best) => err.help(format!("did you mean `{best}`?")),
        None => err.help(format!(
            "known modules: {}; add modules/{name}.toml to define it",
            names.join(", ")
        )),
    }
}

fn load_modules(root: &Path) -> Result<Vec<Loaded>, ManifestError> {
    let dir = root.join("modules");
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(ManifestError::new(
                Path::new("modules"),
                format!("cannot list: {e}"),
            ));
        }
    };
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let source = fs::read_to_string(&path)
            .map_err(|e| ManifestError::new(&rel, format!("cannot read: {e}")))?;
        out.push(parse_module(root, &rel, source)?);
    }
    out.sort_by(|a, b| a.module.name.cmp(&b.module.name));
    Ok(out)
}

fn parse_module(root: &Path, rel: &Path, source: String) -> Result<Loaded, ManifestError> {
    let raw: RawModule = toml::from_str(&source).map_err(|e| from_toml(rel, &source, &e))?;
    let err = |msg: String| ManifestError::new(rel, msg);
    let name = raw.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
    {
        return Err(err(format!("invalid module name `{name}`"))
            .at(&source, raw.name.span())
            .help("use letters, digits and - _ . + only"));
    }
    if raw.version.is_empty() || raw.version.contains('/') || raw.version.contains('@') {
        return Err(err(format!(
            "module `{name}` has an invalid version `{}`",
            raw.version
        ))
        .help(
            "a version may not be empty or hold `/` or `@` (`@` separates a module's variants)",
        ));
    }
    let super::source::Resolved {
        urls,
        sha256,
        file,
        git,
    } = super::source::resolve(
        root,
        rel,
        &source,
        &name,
        &super::source::RawSource {
            url: raw.url.as_ref(),
            urls: raw.urls.as_ref(),
            sha256: raw.sha256.as_ref(),
            file: raw.file.as_ref(),
            git: raw.git.as_ref(),
            rev: raw.rev.as_ref(),
            submodules: raw.submodules.as_ref(),
        },
    )?;
    if file.is_empty() || file.contains('/') || file.starts_with('.') {
        return Err(err(format!(
            "module `{name}`: cannot use `{file}` as the package file name"
        ))
        .help("set file = \"name.tar.gz\" in the module"));
    }
    let dir_name = format!("{name}-{}", raw.version);
    let patches = resolve_patches(root, rel, &source, &dir_name, raw.patches.as_ref())?;
    for key in raw.env.keys() {
        if key.is_empty() || key.contains('=') || key.starts_with("STRATA_") {
            return Err(
                err(format!("module `{name}`: env key `{key}` is not allowed"))
                    .help("STRATA_* variables are set by strata itself"),
            );
        }
    }
    for k in &raw.keep {
        if Path::new(k).is_absolute() || k.split('/').any(|c| c == "..") {
            return Err(err(format!(
                "module `{name}`: keep path `{k}` must be relative to the build dir"
            )));
        }
    }
    let mut params: Vec<String> = Vec::new();
    for p in &raw.params {
        if !valid_param_name(p.get_ref()) {
            return Err(err(format!(
                "module `{name}`: `{}` is not a valid parameter name",
                p.get_ref()
            ))
            .at(&source, p.span())
            .help("use letters, digits and _ (not starting with a digit): it becomes $STRATA_PARAM_<NAME>"));
        }
        if !params.contains(p.get_ref()) {
            params.push(p.get_ref().clone());
        }
    }
    params.sort();
    let depends_spans = raw.depends.iter().map(|d| d.span()).collect();
    let module = Module {
        name,
        version: raw.version,
        urls,
        sha256,
        file,
        git,
        strip_components: raw.strip_components,
        patches,
        depends: raw.depends.iter().map(|d| d.get_ref().clone()).collect(),
        configure: raw.configure,
        build: raw.build,
        install: raw.install,
        env: raw.env,
        keep: raw.keep,
        host: raw.host,
        params,
        manifest_path: rel.to_path_buf(),
    };
    Ok(Loaded {
        module,
        source,
        depends_spans,
        name_span: raw.name.span(),
    })
}

/// Resolves a URL: `http(s)://` as is; `file://` relative to the project root
/// unless its path is absolute.
pub(super) fn resolve_url(root: &Path, url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(url.to_string());
    }
    if let Some(path) = url.strip_prefix("file://") {
        if path.starts_with('/') {
            return Ok(url.to_string());
        }
        let joined = root.join(path);
        let mut s = format!("file://{}", joined.display());
        if path.ends_with('/') && !s.ends_with('/') {
            s.push('/');
        }
        return Ok(s);
    }
    Err(format!(
        "unsupported URL `{url}`: use http://, https:// or file://"
    ))
}

pub(super) fn last_segment(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    no_query
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

fn resolve_patches(
    root: &Path,
    rel: &Path,
    source: &str,
    dir_name: &str,
    spec: Option<&Spanned<String>>,
) -> Result<Vec<PatchFile>, ManifestError> {
    let (path, explicit) = match spec {
        Some(s) => (s.get_ref().trim_end_matches('/').to_string(), Some(s)),
        None => {
            let dir = format!("patches/{dir_name}");
            if root.join(&dir).is_dir() {
                (dir, None)
            } else {
                let file = format!("patches/{dir_name}.patch");
                if root.join(&file).is_file() {
                    (file, None)
                } else {
                    return Ok(Vec::new());
                }
            }
        }
    };
    let abs = root.join(&path);
    let fail = |msg: String| {
        let e = ManifestError::new(rel, msg);
        match explicit {
            Some(s) => e.at(source, s.span()),
            None => e,
        }
    };
    if abs.is_file() {
        return Ok(vec![PatchFile {
            rel: path,
            abs,
            strip: 1,
        }]);
    }
    if !abs.is_dir() {
        return Err(fail(format!("patches `{path}` does not exist"))
            .help("point `patches` at a directory of *.patch files or at one .patch file"));
    }
    let series = abs.join("series");
    let mut names: Vec<(String, usize)> = Vec::new();
    if series.is_file() {
        let text = fs::read_to_string(&series)
            .map_err(|e| fail(format!("cannot read {path}/series: {e}")))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut parts = line.split_whitespace();
            let Some(name) = parts.next() else { continue };
            let mut strip = 1;
            while let Some(opt) = parts.next() {
                // quilt writes `-p0`, `-p1`…; `-p N` is accepted too.
                let n = match opt.strip_prefix("-p") {
                    Some("") => parts.next().and_then(|n| n.parse().ok()),
                    Some(n) => n.parse().ok(),
                    None => None,
                };
                let Some(n) = n else {
                    return Err(fail(format!(
                        "{path}/series: option `{opt}` for {name} is not supported"
                    ))
                    .help("a series line is a patch name and optionally -pN; strata never reverses or fuzzes a patch"));
                };
                strip = n;
            }
            names.push((name.to_string(), strip));
        }
    } else {
        let entries = fs::read_dir(&abs).map_err(|e| fail(format!("cannot list {path}: {e}")))?;
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".patch") && e.path().is_file() {
                names.push((n, 1));
            }
        }
        names.sort();
    }
    let mut out = Vec::new();
    for (n, strip) in names {
        let p = abs.join(&n);
        if !p.is_file() {
            return Err(fail(format!(
                "{path}/series names {n}, which does not exist"
            )));
        }
        out.push(PatchFile {
            rel: format!("{path}/{n}"),
            abs: p,
            strip,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_segment_ignores_query() {
        assert_eq!(
            last_segment("https://h/a/zlib-1.tar.gz?x=1"),
            "zlib-1.tar.gz"
        );
        assert_eq!(last_segment("file:///m/b.tar.xz"), "b.tar.xz");
    }

    #[test]
    fn relative_file_urls_are_from_root() {
        let r = resolve_url(Path::new("/p"), "file://mirror/").unwrap();
        assert_eq!(r, "file:///p/mirror/");
        assert!(resolve_url(Path::new("/p"), "ftp://x").is_err());
    }
}
