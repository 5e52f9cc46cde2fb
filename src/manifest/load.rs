//! Reading and validating `strata.toml`; the module files are read by
//! `module_file`, and this file checks them against each other (names,
//! dependencies, targets).

use super::error::{ManifestError, closest, from_toml};
use super::module_file::{Loaded, load_modules};
use super::source::resolve_url;
use super::valid_param_name;
use super::{ParamValue, Project, Settings};
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
    #[serde(default)]
    ci: RawCi,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCi {
    install: Option<String>,
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
    restore: Option<super::RestoreMode>,
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
    #[serde(default)]
    sandbox: super::SandboxMode,
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
    Dir(RawDirParam),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirParam {
    dir: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileParam {
    file: String,
}

/// `strata.toml` read and parsed: (canonical root, its text, the raw file).
fn read_project_file(root: &Path) -> Result<(PathBuf, String, RawProjectFile), ManifestError> {
    let root = root
        .canonicalize()
        .map_err(|e| ManifestError::new(root, format!("cannot open project directory: {e}")))?;
    let manifest = root.join("strata.toml");
    let source = fs::read_to_string(&manifest).map_err(|e| {
        ManifestError::new(&manifest, format!("cannot read the project manifest: {e}"))
            .help("run strata inside a project directory, or pass -C DIR")
    })?;
    let raw: RawProjectFile =
        toml::from_str(&source).map_err(|e| from_toml(Path::new("strata.toml"), &source, &e))?;
    Ok((root, source, raw))
}

/// `strata.toml` alone: the project's root, name and settings, with no
/// modules, targets, params or mirrors. For what needs only the settings
/// (the project lock, the cache, the no-op state file) before the module
/// files are read, if they are read at all; [`load`] validates the rest.
pub fn load_settings(root: &Path) -> Result<Project, ManifestError> {
    let (root, source, raw) = read_project_file(root)?;
    let file = ProjectFile {
        root: &root,
        rel: Path::new("strata.toml"),
        source: &source,
    };
    let settings = settings_of(&file, &raw)?;
    Ok(Project {
        name: raw.project.name,
        cache_version: raw.project.cache_version,
        settings,
        mirrors_before: Vec::new(),
        mirrors_after: Vec::new(),
        targets: BTreeMap::new(),
        target_params: BTreeMap::new(),
        layers: BTreeMap::new(),
        modules: Vec::new(),
        root,
    })
}

/// Loads and validates the project rooted at `root`.
pub fn load(root: &Path) -> Result<Project, ManifestError> {
    let (root, source, raw) = read_project_file(root)?;
    let rel_manifest = PathBuf::from("strata.toml");
    let file = ProjectFile {
        root: &root,
        rel: &rel_manifest,
        source: &source,
    };
    let settings = settings_of(&file, &raw)?;
    let mirror = |list: &[Spanned<String>]| -> Result<Vec<String>, ManifestError> {
        list.iter()
            .map(|u| {
                resolve_url(&root, u.get_ref())
                    .map_err(|msg| ManifestError::new(&rel_manifest, msg).at(&source, u.span()))
            })
            .collect()
    };
    let mut mirrors_before = mirror(&raw.mirrors.before)?;
    let mut mirrors_after = mirror(&raw.mirrors.after)?;

    let loaded = load_modules(&root)?;
    let names: Vec<&str> = loaded.iter().map(|l| l.module.name.as_str()).collect();
    check_module_names(&loaded, &names)?;
    let mut target_params = BTreeMap::new();
    for (name, t) in &raw.target {
        let params = target_params_of(&root, &source, name, t)?;
        target_params.insert(name.clone(), params);
    }
    let (targets, layers) = targets_and_layers(&file, &raw, &names)?;

    let mut modules: Vec<_> = loaded.into_iter().map(|l| l.module).collect();
    let local = super::overrides::apply(&root, &settings.build_dir.join(".strata"), &mut modules)?;
    // This machine's mirrors first and last: strata.local.toml is the user's.
    mirrors_before.splice(0..0, local.before);
    mirrors_after.extend(local.after);
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
        modules,
    })
}

/// `strata.toml` as read: where errors in it point.
struct ProjectFile<'a> {
    root: &'a Path,
    /// `strata.toml`, relative: how messages name it.
    rel: &'a Path,
    source: &'a str,
}

/// `[settings]` and `[cache]`, validated, with paths made absolute.
fn settings_of(file: &ProjectFile<'_>, raw: &RawProjectFile) -> Result<Settings, ManifestError> {
    let (root, rel_manifest, source) = (file.root, file.rel, file.source);
    let jobs = match raw.settings.jobs {
        Some(0) | None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(n) => n,
    };
    let dir = |v: &Option<String>, default: &str| root.join(v.as_deref().unwrap_or(default));
    Ok(Settings {
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
        cache_remote: cache_remote_of(file, raw.cache.remote.as_ref())?,
        ci_install: raw.ci.install.clone().filter(|c| !c.trim().is_empty()),
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
                    ManifestError::new(rel_manifest, format!("bad trusted key: {e}"))
                        .at(source, k.span())
                        .help("use the line `strata cache keygen NAME` printed: name:base64")
                })
            })
            .collect::<Result<_, _>>()?,
        pass_env: pass_env_of(file, &raw.settings.pass_env)?,
        sandbox: raw.settings.sandbox,
    })
}

/// `[cache] remote`: a `file://` URL resolved against the project root.
fn cache_remote_of(
    file: &ProjectFile<'_>,
    remote: Option<&Spanned<String>>,
) -> Result<Option<String>, ManifestError> {
    let Some(r) = remote else {
        return Ok(None);
    };
    let url = r.get_ref();
    if url.starts_with("s3://") || url.starts_with("http://") || url.starts_with("https://") {
        Ok(Some(url.clone()))
    } else if url.starts_with("file://") {
        resolve_url(file.root, url)
            .map(Some)
            .map_err(|m| ManifestError::new(file.rel, m).at(file.source, r.span()))
    } else {
        Err(
            ManifestError::new(file.rel, format!("unsupported cache remote `{url}`"))
                .at(file.source, r.span())
                .help(
                    "use s3://bucket/prefix, https://host/prefix (read-only) or file:///shared/dir",
                ),
        )
    }
}

/// `[settings] pass-env`: variable names, none that strata sets itself.
fn pass_env_of(
    file: &ProjectFile<'_>,
    names: &[Spanned<String>],
) -> Result<Vec<String>, ManifestError> {
    let mut pass_env: Vec<String> = Vec::new();
    for n in names {
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
                ManifestError::new(file.rel, format!("pass-env `{name}` {why}"))
                    .at(file.source, n.span())
                    .help("remove it from [settings] pass-env"),
            );
        }
        if !pass_env.contains(name) {
            pass_env.push(name.clone());
        }
    }
    Ok(pass_env)
}

/// Every module name defined once (`loaded` is sorted by name), every
/// `depends` naming a module.
fn check_module_names(loaded: &[Loaded], names: &[&str]) -> Result<(), ManifestError> {
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
    for l in loaded {
        for (dep, span) in l.module.depends.iter().zip(&l.depends_spans) {
            if names.binary_search(&dep.as_str()).is_err() {
                return Err(unknown_module(
                    &l.module.manifest_path,
                    &l.source,
                    span.clone(),
                    dep,
                    names,
                    &format!("module `{}` depends on", l.module.name),
                ));
            }
        }
    }
    Ok(())
}

/// `[target.*]` and `[layer.*]`: their module lists, each name checked.
#[allow(clippy::type_complexity)]
fn targets_and_layers(
    file: &ProjectFile<'_>,
    raw: &RawProjectFile,
    names: &[&str],
) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>), ManifestError> {
    let (rel_manifest, source) = (file.rel, file.source);
    let (mut targets, mut layers) = (BTreeMap::new(), BTreeMap::new());
    for (name, t) in &raw.layer {
        if let Some((k, _)) = t.params.iter().next() {
            return Err(ManifestError::new(
                rel_manifest,
                format!("layer `{name}` sets params, which only targets take"),
            )
            .at(source, k.span())
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
                        rel_manifest,
                        source,
                        m.span(),
                        m.get_ref(),
                        names,
                        &format!("{kind} `{name}` lists"),
                    ));
                }
                mods.push(m.get_ref().clone());
            }
            out.insert(name.clone(), mods);
        }
    }
    Ok((targets, layers))
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
            RawParam::Dir(d) => {
                let abs = root.join(&d.dir);
                if !abs.is_dir() {
                    return Err(ManifestError::new(
                        manifest,
                        format!(
                            "target `{name}`: param {} names directory `{}`, which does not exist",
                            k.get_ref(),
                            d.dir
                        ),
                    )
                    .at(source, v.span())
                    .help("directory paths are relative to the project root; create it or fix the path"));
                }
                ParamValue::Dir {
                    rel: d.dir.clone(),
                    abs,
                }
            }
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
