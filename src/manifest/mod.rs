//! The project manifest: `strata.toml` plus one `modules/<name>.toml` per module,
//! parsed into a typed, validated [`Project`].
//!
//! Validation happens here, once, so that every later layer can trust the
//! values: sha256 sums are 64 hex digits, dependencies exist, targets name
//! known modules and patch files exist. The dependency graph itself (cycles,
//! order) is checked by [`crate::graph`].

mod error;
mod load;
mod module_file;
pub mod overrides;
mod source;

pub use error::{ManifestError, closest};
pub use load::{load, load_settings};
pub use source::{GIT_URL_FORMS, GitSource, check_git_url};

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding `strata.toml`.
    pub root: PathBuf,
    /// `[project] name`.
    pub name: String,
    /// `[project] cache-version`; part of every key.
    pub cache_version: String,
    /// `[settings]`.
    pub settings: Settings,
    /// Base URLs tried before a module's own URLs.
    pub mirrors_before: Vec<String>,
    /// Base URLs tried after a module's own URLs.
    pub mirrors_after: Vec<String>,
    /// Named module sets.
    pub targets: BTreeMap<String, Vec<String>>,
    /// `[target.NAME] params`: the board parameters each target sets.
    pub target_params: BTreeMap<String, BTreeMap<String, ParamValue>>,
    /// `[layer.NAME] modules`: CI cache layers (see `strata ci save-layer`).
    pub layers: BTreeMap<String, Vec<String>>,
    /// All modules, sorted by name.
    pub modules: Vec<Module>,
}

/// `[settings]` with defaults applied and directories made absolute.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Total jobs of the build, shared by modules and their makes through
    /// the jobserver (already resolved: never 0).
    pub jobs: usize,
    /// Where downloads are kept.
    pub packages_dir: PathBuf,
    /// Where modules are extracted and built.
    pub build_dir: PathBuf,
    /// Where the built target's files are merged for the user.
    pub install_dir: PathBuf,
    /// `[settings] unpack-max-bytes` / `unpack-max-entries`: caps per archive.
    pub unpack_limits: crate::unpack::Limits,
    /// `[cache] dir`: the local artifact store (None: `$XDG_CACHE_HOME/strata`).
    pub cache_dir: Option<PathBuf>,
    /// `[cache] remote`: `s3://bucket/prefix` or `file:///dir` (resolved).
    pub cache_remote: Option<String>,
    /// `[ci] install`: the shell command generated CI configs install strata
    /// with (into `$STRATA_BIN_DIR`; `$STRATA_VERSION` is the version).
    pub ci_install: Option<String>,
    /// `[cache] endpoint`: an S3-compatible server's URL.
    pub cache_endpoint: Option<String>,
    /// `[cache] region`.
    pub cache_region: Option<String>,
    /// `[cache] imds`: S3 credentials may come from the EC2 instance
    /// metadata service (never asked otherwise).
    pub cache_imds: bool,
    /// `[cache] push` (default true).
    pub cache_push: bool,
    /// `[cache] sign-key`: secret key file signing every artifact saved.
    pub cache_sign_key: Option<PathBuf>,
    /// `[cache] trusted-keys`: remote artifacts need a valid signature from one.
    pub cache_trusted_keys: Vec<crate::signing::PublicKey>,
    /// `[cache] restore`: auto (trees: reflink, else copy; `copy` is the
    /// same) or archive; None: auto. `STRATA_RESTORE_MODE` overrides it.
    pub cache_restore: Option<RestoreMode>,
    /// `[settings] pass-env`: names of strata's environment variables passed
    /// to every command; their values are configure-key inputs.
    pub pass_env: Vec<String>,
    /// `[settings] sandbox`; `STRATA_SANDBOX` overrides it (see
    /// `exec::sandbox`). Not a key input.
    pub sandbox: SandboxMode,
}

/// `[settings] sandbox`: whether configure, build and install run without
/// the network and with the filesystem read-only outside their own dirs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Sandboxed when the kernel allows it; otherwise one warning per run.
    #[default]
    Auto,
    /// Sandboxed, or the step fails.
    Require,
    /// Never sandboxed.
    Off,
}

/// How a restore uses the local store (`[cache] restore`, overridden by
/// `STRATA_RESTORE_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreMode {
    /// From the tree: reflink, else copy. `copy` names it too: it was the
    /// mode that never hardlinked, which every restore now is.
    #[serde(alias = "copy")]
    Auto,
    /// From the archive every time; no tree is made (saves the disk space).
    Archive,
}

/// The environment variable overriding `[cache] restore`.
pub const ENV_RESTORE_MODE: &str = "STRATA_RESTORE_MODE";

impl RestoreMode {
    /// The configured mode with `STRATA_RESTORE_MODE` applied on top.
    pub fn resolve(configured: Option<RestoreMode>) -> Result<RestoreMode, String> {
        Self::resolve_with(configured, std::env::var(ENV_RESTORE_MODE).ok())
    }

    fn resolve_with(
        configured: Option<RestoreMode>,
        env: Option<String>,
    ) -> Result<RestoreMode, String> {
        match env {
            Some(v) if !v.is_empty() => match v.as_str() {
                "auto" | "copy" => Ok(RestoreMode::Auto),
                "archive" => Ok(RestoreMode::Archive),
                _ => Err(format!(
                    "{ENV_RESTORE_MODE}={v:?} is not a restore mode\n  hint: use auto, copy or archive, or unset it"
                )),
            },
            _ => Ok(configured.unwrap_or(RestoreMode::Auto)),
        }
    }
}

/// One module: where its source comes from and how it is built.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub version: String,
    /// The module's own download URLs, tried in order (empty for a git module).
    pub urls: Vec<String>,
    /// Lower-case hex sha256 of the source archive. For a git module it is
    /// the optional pin of the archive strata writes, and empty without one
    /// (see [`Module::pinned_sha256`]).
    pub sha256: String,
    /// Name of the archive in `packages/` (`<name>-<rev>.tar.zst` for git).
    pub file: String,
    /// `git` + `rev`: the source is a commit of a repository, archived by strata.
    pub git: Option<GitSource>,
    pub strip_components: u32,
    /// Patches in the order they are applied.
    pub patches: Vec<PatchFile>,
    /// Where `patches` were found, absolute: the `.patch` file or the
    /// directory (with or without `series`); None when the module has none
    /// by default. What the no-op state watches for a patch added.
    pub patches_from: Option<PathBuf>,
    pub depends: Vec<String>,
    pub configure: Option<String>,
    pub build: Option<String>,
    pub install: Option<String>,
    pub env: BTreeMap<String, String>,
    pub keep: Vec<String>,
    /// A build-time tool (a toolchain, a host utility), as Buildroot's host
    /// packages and Yocto's native recipes: it is in its dependents'
    /// sysroots but never merged into `install/`, and a cached copy is
    /// restored only when a dependent actually has to build.
    pub host: bool,
    /// `params`: the board parameters the module's commands use (sorted).
    /// Only these go into its keys; a target must set each of them.
    pub params: Vec<String>,
    /// `[[download]]`: extra files the build needs (toolchain packages,
    /// blobs), fetched and verified like the source and placed into the
    /// source tree when it is unpacked, so no command downloads anything.
    pub downloads: Vec<Download>,
    /// `outputs`: the sha256 of each file the module installs, by its path
    /// under `$STRATA_DESTDIR` (empty: an ordinary module). A module with
    /// outputs is **fixed-output** (Nix's fixed-output derivation): its key
    /// is these pins, not its commands, and its install must be exactly
    /// these files with these sums.
    pub outputs: BTreeMap<String, String>,
    /// `network = true`: its commands run in the sandbox with the network
    /// (allowed only with `outputs`: the pins are what makes it safe).
    pub network: bool,
    /// `strata.local.toml` replaces the module (None: built as declared).
    pub overridden: Option<Override>,
    /// The module file, relative to the project root.
    pub manifest_path: PathBuf,
}

/// A module replaced by `strata.local.toml` (see `overrides`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub kind: OverrideKind,
    /// The directory, absolute.
    pub dir: PathBuf,
    /// BLAKE3 of the directory's content: part of every key it reaches.
    pub digest: String,
}

/// What an override replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    /// `prebuilt = "DIR"`: DIR is the installed output; nothing is fetched
    /// or built.
    Prebuilt,
    /// `source = "DIR"`: DIR replaces the download as the source tree (its
    /// patches are not applied: the tree is yours).
    Source,
}

impl OverrideKind {
    pub fn name(self) -> &'static str {
        match self {
            OverrideKind::Prebuilt => "prebuilt",
            OverrideKind::Source => "source",
        }
    }
}

/// One `[[download]]` of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// URLs tried in order (after `mirrors.before`, before `mirrors.after`).
    pub urls: Vec<String>,
    /// The file name in `packages/` and on mirrors.
    pub file: String,
    /// What upstream pins it by.
    pub pin: Pin,
    /// The directory of the source tree it is copied into (relative,
    /// `/`-separated, empty for the top), as a build expects it there
    /// (`sources/` for musl-cross-make, `util/crossgcc/tarballs/` for
    /// coreboot's toolchain).
    pub dest: String,
}

/// How a download is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// `sha256`: checked on every download and reuse.
    Sha256(String),
    /// `sha1`: the only pin some upstreams publish (musl-cross-make's
    /// `hashes/`, coreboot's `util/crossgcc/sum/`). The file's sha256 is
    /// recorded in `strata.lock` on first fetch and checked from then on.
    Sha1(String),
    /// `sha1-from`: the sha1 is the first word of a file of the module's own
    /// source (verified by the source's pin), found by this path pattern
    /// (`*` within one component, `{VAR}` from `vars-from`, `a|b`
    /// alternatives that together match one file); resolved into a
    /// [`Pin::Sha1`] download by [`crate::source_pins`] once the source is
    /// fetched. The pin lives where upstream keeps it, so a new source
    /// version brings its own packages without editing the module file.
    Sha1From(SourcePin),
}

/// Where a `sha1-from` download finds its pin and names in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePin {
    /// The sum file's path pattern in the source tree.
    pub path: String,
    /// A file of the source whose `NAME = value` lines give `{NAME}`
    /// (musl-cross-make's `Makefile`: `GCC_VER = 9.4.0`).
    pub vars_from: Option<String>,
}

impl Pin {
    /// `sha256:<hex>` or `sha1:<hex>`: how keys and `strata.lock` name it.
    pub fn label(&self) -> String {
        match self {
            Pin::Sha256(h) => format!("sha256:{h}"),
            Pin::Sha1(h) => format!("sha1:{h}"),
            Pin::Sha1From(p) => match &p.vars_from {
                Some(v) => format!("sha1-from:{} vars-from:{v}", p.path),
                None => format!("sha1-from:{}", p.path),
            },
        }
    }
}

impl Module {
    /// `<name>-<version>`, the module's directory name under `build/`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// The sha256 the package must have, when the manifest gives one
    /// (always for url modules; optional for git modules).
    /// False for `source = "none"`: nothing is fetched, the tree starts empty.
    pub fn has_source(&self) -> bool {
        !self.file.is_empty()
    }

    pub fn pinned_sha256(&self) -> Option<&str> {
        (!self.sha256.is_empty()).then_some(self.sha256.as_str())
    }

    /// A fixed-output module: its outputs are pinned (see [`Module::outputs`]).
    pub fn is_fixed_output(&self) -> bool {
        !self.outputs.is_empty()
    }
}

/// The value a target gives a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A literal string, exported as is.
    Value(String),
    /// `{ file = "path" }`: its content enters the keys, its absolute path
    /// is exported. `rel` is as written in strata.toml.
    File { rel: String, abs: PathBuf },
    /// `{ dir = "path" }`: the tree's content (paths, kinds, modes, bytes,
    /// link targets) enters the keys, its absolute path is exported.
    Dir { rel: String, abs: PathBuf },
}

impl ParamValue {
    /// The path as written in strata.toml, for a file or directory.
    pub fn rel(&self) -> Option<&str> {
        match self {
            ParamValue::Value(_) => None,
            ParamValue::File { rel, .. } | ParamValue::Dir { rel, .. } => Some(rel),
        }
    }
}

/// A patch file, named relative to the project root (keys never hold absolute paths).
#[derive(Debug, Clone)]
pub struct PatchFile {
    pub rel: String,
    pub abs: PathBuf,
    /// Leading directories stripped from the patch's names (`-pN` in a
    /// quilt `series` file; 1 otherwise).
    pub strip: usize,
}

impl Project {
    /// The module called `name`.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.modules[i])
    }

    /// Index of the module called `name` in [`Project::modules`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.modules
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
    }

    /// The build directory of a module.
    pub fn module_build_dir(&self, m: &Module) -> PathBuf {
        self.settings.build_dir.join(m.dir_name())
    }

    /// Where strata keeps its own state for the project (lock, install record).
    pub fn state_dir(&self) -> PathBuf {
        self.settings.build_dir.join(".strata")
    }

    /// strata's own state for a module source or instance dir name
    /// (`build/.strata/modules/<dir_name>/`): stamps, logs, destdir and
    /// sysroot, kept out of every tree an archive controls.
    pub fn module_state_dir(&self, dir_name: &str) -> PathBuf {
        self.state_dir().join("modules").join(dir_name)
    }

    /// Every URL to try for a module, in order: `before` mirrors, own URLs, `after` mirrors.
    pub fn download_urls(&self, m: &Module) -> Vec<String> {
        self.urls_for(&m.file, &m.urls)
    }

    /// Every URL to try for `file` whose own URLs are `own`: `before`
    /// mirrors, own URLs, `after` mirrors.
    pub fn urls_for(&self, file: &str, own: &[String]) -> Vec<String> {
        let join = |base: &String| {
            if base.ends_with('/') {
                format!("{base}{file}")
            } else {
                format!("{base}/{file}")
            }
        };
        let mut urls: Vec<String> = self.mirrors_before.iter().map(join).collect();
        urls.extend(own.iter().cloned());
        urls.extend(self.mirrors_after.iter().map(join));
        urls
    }
}

/// Whether `name` can be a parameter: it becomes `$STRATA_PARAM_<name>`.
pub(crate) fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_mode_comes_from_the_environment_first() {
        let env = |v: &str| Some(v.to_string());
        assert_eq!(
            RestoreMode::resolve_with(Some(RestoreMode::Archive), env("copy")),
            Ok(RestoreMode::Auto)
        );
        let err = RestoreMode::resolve_with(None, env("links")).unwrap_err();
        assert!(err.contains("STRATA_RESTORE_MODE") && err.contains("auto, copy or archive"));
        assert_eq!(
            RestoreMode::resolve_with(Some(RestoreMode::Archive), env("")),
            Ok(RestoreMode::Archive)
        );
        assert_eq!(RestoreMode::resolve_with(None, None), Ok(RestoreMode::Auto));
    }
}
