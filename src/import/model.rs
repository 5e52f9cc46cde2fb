//! What the translation produces, shared by the files that build it:
//! a module's translation (`ModuleOut` with its `Source` and `[[download]]`s),
//! a board's target (`TargetOut` with its `Param`s), the whole import
//! (`Imported`), the paths it needs, and how a Heads module's evaluated
//! fields are read. It lives below its users (`module.rs`, `image.rs`,
//! `toolchain.rs`, `translate.rs`, `render.rs`) so imports flow one way.

use super::report::Report;
use std::collections::BTreeMap;
use std::path::Path;

/// Where a module's source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Archive {
        url: String,
        sha256: String,
        /// Set when Heads's `_tar` differs from the URL's last segment.
        file: Option<String>,
        strip: Option<u32>,
    },
    Git {
        git: String,
        rev: String,
    },
    /// `source = "none"`: Heads's own image steps (see `image.rs`).
    None,
}

/// One strata module as the import writes it (`modules/<name>.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOut {
    pub name: String,
    pub heads_name: String,
    pub module_file: String,
    pub version: String,
    pub source: Source,
    pub depends: Vec<String>,
    /// Relative to the output directory.
    pub patches: Option<String>,
    pub params: Vec<String>,
    pub host: bool,
    pub configure: String,
    pub build: String,
    pub install: String,
    /// Files the build needs, pinned by its source (`sha1-from`).
    pub downloads: Vec<DownloadOut>,
}

/// A `[[download]]` whose pin and name strata reads from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOut {
    pub sha1_from: String,
    pub vars_from: Option<String>,
    pub urls: Vec<String>,
    pub file: Option<String>,
    pub dest: String,
}

/// A fixed-output module's pins (see `blobs.rs`): `outputs` (path under
/// `$STRATA_DESTDIR` → sha256) and `network`, rendered beside its module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedOut {
    pub outputs: BTreeMap<String, String>,
    pub network: bool,
}

/// A target's value for one module param.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A value, e.g. `BOARD = "x230"`.
    Value(String),
    /// A file, relative to the output directory.
    File(String),
    /// A directory, relative to the output directory.
    Dir(String),
}

/// One board's target: its modules and their params.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetOut {
    pub modules: Vec<String>,
    pub params: BTreeMap<String, Param>,
}

/// The whole import: modules, targets, cache layers, and the report.
#[derive(Debug, Default)]
pub struct Imported {
    pub modules: BTreeMap<String, ModuleOut>,
    pub targets: BTreeMap<String, TargetOut>,
    pub layers: BTreeMap<String, Vec<String>>,
    /// The fixed-output modules' pins, by module name.
    pub fixed: BTreeMap<String, FixedOut>,
    pub report: Report,
}

/// Paths the translation needs.
pub struct Paths<'a> {
    pub heads: &'a Path,
    /// `heads` as seen from the output directory (`..` for the default).
    pub heads_from_out: &'a str,
    pub pwd: &'a str,
    pub tmp: &'a str,
}

/// A field of a Heads module's evaluated variables, trimmed (`""` when unset).
pub fn field<'a>(m: &'a BTreeMap<String, String>, f: &str) -> &'a str {
    m.get(f).map(|s| s.trim()).unwrap_or("")
}

/// Heads's version of a module: `_version`, else the pinned commit.
pub fn version_of(m: &BTreeMap<String, String>) -> String {
    let v = field(m, "version");
    if v.is_empty() {
        field(m, "commit_hash").to_string()
    } else {
        v.to_string()
    }
}
