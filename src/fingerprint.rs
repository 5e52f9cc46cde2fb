//! Step keys, stamps and the reasons a step is stale.
//!
//! Every step of every module has a **key**: a BLAKE3 hash over a canonical,
//! length-prefixed encoding of its named inputs. The inputs of a step include
//! the key of the step before it, so the install key of a module is a pure
//! function of everything that went into it, dependencies' install keys
//! included. Keys never contain mtimes or absolute paths, which is why a
//! touched or relocated tree stays fresh.
//!
//! A **stamp** records a step's key and its named inputs. It is written only
//! after the step succeeded and removed before the step runs. The key sits on
//! the stamp's first line, so a fresh check reads one short line; the JSON
//! record is parsed only to explain a mismatch (cargo's fingerprints).

use crate::fsutil::write_atomic;
use crate::manifest::{Module, Project};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Version of the key encoding. Changing how any key is computed, or adding an
/// input to any step, means bumping this, so old stamps read as stale instead
/// of as falsely fresh.
pub const KEY_VERSION: u32 = 2;

/// Version of the stamp file layout.
const STAMP_FORMAT: u32 = 1;

/// The steps of a module build, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Fetch,
    Unpack,
    Patch,
    Configure,
    Build,
    Install,
}

impl Step {
    /// All steps in order.
    pub const ALL: [Step; 6] = [
        Step::Fetch,
        Step::Unpack,
        Step::Patch,
        Step::Configure,
        Step::Build,
        Step::Install,
    ];

    /// The step's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Fetch => "fetch",
            Step::Unpack => "unpack",
            Step::Patch => "patch",
            Step::Configure => "configure",
            Step::Build => "build",
            Step::Install => "install",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One named input of a step: a short literal value or a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub value: String,
}

impl Input {
    fn new(name: impl Into<String>, value: impl Into<String>) -> Input {
        Input {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A step's expected key and the inputs it was computed from.
#[derive(Clone, Debug)]
pub struct StepKey {
    pub step: Step,
    pub key: String,
    pub inputs: Vec<Input>,
}

impl StepKey {
    fn new(step: Step, inputs: Vec<Input>) -> StepKey {
        StepKey {
            step,
            key: hash_inputs(step, &inputs),
            inputs,
        }
    }
}

/// The canonical encoding: a domain tag, the key version, the step name, then
/// every input as length-prefixed name and value, in the order given.
pub fn hash_inputs(step: Step, inputs: &[Input]) -> String {
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"strata-step-key");
    field(&KEY_VERSION.to_le_bytes());
    field(step.name().as_bytes());
    field(&(inputs.len() as u64).to_le_bytes());
    for i in inputs {
        field(i.name.as_bytes());
        field(i.value.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// The expected keys of all six steps of one module.
#[derive(Clone, Debug)]
pub struct ModuleKeys {
    steps: Vec<StepKey>,
}

impl ModuleKeys {
    /// The key of `step`.
    pub fn get(&self, step: Step) -> &StepKey {
        &self.steps[step.index()]
    }

    /// The install key: the identity of the module's outputs.
    pub fn install_key(&self) -> &str {
        &self.get(Step::Install).key
    }
}

/// Computes the keys of one module given its dependencies' install keys and
/// the key inputs of its own params (`param NAME` = value, or
/// `param NAME file` = BLAKE3 of the file's content; see `instance.rs`).
pub fn module_keys(
    project: &Project,
    m: &Module,
    deps: &[(&str, &str)],
    params: &[(String, String)],
) -> io::Result<ModuleKeys> {
    let mut source = vec![Input::new("cache-version", &project.cache_version)];
    match &m.git {
        // The commit names the tree; the repository's identity (not its
        // URL) says where it is from; a `sha256` pin only verifies the
        // archive, so it is no input.
        Some(g) => source.extend([
            Input::new("source git", &g.identity),
            Input::new("source rev", &g.rev),
            Input::new("submodules", g.submodules.to_string()),
            Input::new("git archive format", crate::git::FORMAT),
        ]),
        None => source.push(Input::new("source sha256", &m.sha256)),
    }
    source.push(Input::new("file", &m.file));
    // Fetch leaves no stamp (the verified package is its own record), so
    // unpack carries the source inputs itself and `why` can name them.
    let fetch = StepKey::new(Step::Fetch, source.clone());
    let mut unpack_inputs = source;
    unpack_inputs.push(Input::new(
        "strip-components",
        m.strip_components.to_string(),
    ));
    let unpack = StepKey::new(Step::Unpack, unpack_inputs);
    let mut patch_inputs = vec![Input::new("step unpack", &unpack.key)];
    for p in &m.patches {
        let bytes = fs::read(&p.abs).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("module {}: cannot read patch {}: {e}", m.name, p.rel),
            )
        })?;
        // `-pN` enters the key only when it is not the default, so keys
        // of patches without a series option stay as they were.
        let name = match p.strip {
            1 => format!("patch {}", p.rel),
            n => format!("patch {} -p{n}", p.rel),
        };
        patch_inputs.push(Input::new(name, blake3::hash(&bytes).to_hex().to_string()));
    }
    let patch = StepKey::new(Step::Patch, patch_inputs);
    let mut configure_inputs = vec![
        Input::new("step patch", &patch.key),
        Input::new("command configure", m.configure.as_deref().unwrap_or("")),
    ];
    for (k, v) in &m.env {
        configure_inputs.push(Input::new(format!("env {k}"), v));
    }
    // `pass-env` values reach the commands, so they are inputs; an unset
    // name is recorded under its own input name, so that unset and empty
    // differ.
    for (k, v) in crate::exec::environment::pass_env_values(&project.settings.pass_env) {
        configure_inputs.push(match v {
            Some(v) => Input::new(
                format!("pass-env {k}"),
                v.to_str().map_or_else(
                    || format!("bytes {}", hex::encode(v.as_encoded_bytes())),
                    str::to_string,
                ),
            ),
            None => Input::new(format!("pass-env {k} (unset)"), ""),
        });
    }
    for (name, value) in params {
        configure_inputs.push(Input::new(name, value));
    }
    let mut sorted_deps = deps.to_vec();
    sorted_deps.sort();
    for (name, key) in sorted_deps {
        configure_inputs.push(Input::new(format!("dependency {name}"), key));
    }
    let configure = StepKey::new(Step::Configure, configure_inputs);
    let build = StepKey::new(
        Step::Build,
        vec![
            Input::new("step configure", &configure.key),
            Input::new("command build", m.build.as_deref().unwrap_or("")),
        ],
    );
    let install = StepKey::new(
        Step::Install,
        vec![
            Input::new("step build", &build.key),
            Input::new("command install", m.install.as_deref().unwrap_or("")),
            Input::new("keep", m.keep.join("\n")),
        ],
    );
    Ok(ModuleKeys {
        steps: vec![fetch, unpack, patch, configure, build, install],
    })
}

/// A stamp as stored on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stamp {
    pub format: u32,
    pub module: String,
    pub step: Step,
    pub key: String,
    pub inputs: Vec<Input>,
}

/// Where a step's stamp lives inside a state dir
/// (`build/.strata/modules/<instance>/`, never inside a tree an archive
/// controls). Callers keep stamps and trees in agreement: stamps are cleared
/// before a tree is replaced and written after the step succeeded.
pub fn stamp_path(state_dir: &Path, step: Step) -> PathBuf {
    state_dir
        .join("stamps")
        .join(format!("{}.stamp", step.name()))
}

/// The two state dirs an instance's stamps live in: unpack and patch
/// describe the shared source tree, the later steps the instance's own
/// build dir. Both are the same dir for a module without params.
#[derive(Clone, Debug)]
pub struct StampDirs {
    pub source: PathBuf,
    pub instance: PathBuf,
    /// The instance's build dir: stamps live outside it, so a tree deleted
    /// by hand must make the instance stale rather than leave it "fresh".
    pub tree: PathBuf,
    /// The shared source tree (the same as `tree` without params).
    pub source_tree: PathBuf,
}

impl StampDirs {
    /// The state dir holding `step`'s stamp.
    pub fn of(&self, step: Step) -> &Path {
        if step <= Step::Patch {
            &self.source
        } else {
            &self.instance
        }
    }

    /// Whether the source tree is separate from the build dir (a variant).
    pub fn separate(&self) -> bool {
        self.source != self.instance
    }
}

/// The key recorded by a stamp (first line), without parsing the record.
pub fn stamp_key(module_dir: &Path, step: Step) -> Option<String> {
    let text = fs::read_to_string(stamp_path(module_dir, step)).ok()?;
    let line = text.lines().next()?;
    (line.len() == 64).then(|| line.to_string())
}

/// The full stamp record, if present and readable.
pub fn read_stamp(module_dir: &Path, step: Step) -> Option<Stamp> {
    let text = fs::read_to_string(stamp_path(module_dir, step)).ok()?;
    let (_, json) = text.split_once('\n')?;
    let stamp: Stamp = serde_json::from_str(json).ok()?;
    (stamp.format == STAMP_FORMAT).then_some(stamp)
}

/// Records that `step` succeeded with key `k`.
pub fn write_stamp(module_dir: &Path, module: &str, k: &StepKey) -> io::Result<()> {
    let stamp = Stamp {
        format: STAMP_FORMAT,
        module: module.to_string(),
        step: k.step,
        key: k.key.clone(),
        inputs: k.inputs.clone(),
    };
    let json = serde_json::to_string_pretty(&stamp).map_err(io::Error::other)?;
    write_atomic(
        &stamp_path(module_dir, k.step),
        format!("{}\n{json}\n", k.key).as_bytes(),
    )
}

/// Removes the stamps of `from` and every later step (before re-running them).
pub fn clear_stamps_from(module_dir: &Path, from: Step) -> io::Result<()> {
    for step in Step::ALL.iter().filter(|s| **s >= from) {
        match fs::remove_file(stamp_path(module_dir, *step)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Why a step is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaleReason {
    /// The step has never completed in this build dir.
    NeverRan(Step),
    /// An input has a different value than when the step last ran.
    Changed {
        name: String,
        old: String,
        new: String,
    },
    /// An input that did not exist last time.
    Added { name: String },
    /// An input that existed last time and is gone.
    Removed { name: String },
    /// The build dir is gone (stamps alone never make a tree fresh).
    Missing(PathBuf),
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::NeverRan(step) => write!(f, "{step} has not run yet"),
            StaleReason::Missing(dir) => write!(f, "build dir {} is missing", dir.display()),
            StaleReason::Added { name } => write!(f, "{name} added"),
            StaleReason::Removed { name } => write!(f, "{name} removed"),
            StaleReason::Changed { name, old, new } => {
                if name.starts_with("dependency ") {
                    write!(f, "{name} changed since this module was built")
                } else if let Some(param) = name
                    .strip_prefix("param ")
                    .and_then(|n| n.strip_suffix(" file"))
                {
                    write!(f, "param {param} changed (the file's content differs)")
                } else if name.starts_with("param ") {
                    write!(f, "{name} changed: `{old}` → `{new}`")
                } else if name.starts_with("patch ") || name.starts_with("step ") {
                    write!(f, "{name} changed")
                } else if let Some(cmd) = name.strip_prefix("command ") {
                    write!(f, "{cmd} command changed: `{old}` → `{new}`")
                } else {
                    write!(f, "{name} {old} → {new}")
                }
            }
        }
    }
}

/// The differences between what a stamp recorded and what is expected now.
/// Chained-step inputs (`step …`) are reported only when nothing else differs.
pub fn diff_inputs(old: &[Input], new: &[Input]) -> Vec<StaleReason> {
    let mut out = Vec::new();
    for n in new {
        match old.iter().find(|o| o.name == n.name) {
            None => out.push(StaleReason::Added {
                name: n.name.clone(),
            }),
            Some(o) if o.value != n.value => out.push(StaleReason::Changed {
                name: n.name.clone(),
                old: o.value.clone(),
                new: n.value.clone(),
            }),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| n.name == o.name) {
            out.push(StaleReason::Removed {
                name: o.name.clone(),
            });
        }
    }
    let is_chain = |r: &StaleReason| match r {
        StaleReason::Changed { name, .. }
        | StaleReason::Added { name }
        | StaleReason::Removed { name } => name.starts_with("step "),
        StaleReason::NeverRan(_) | StaleReason::Missing(_) => false,
    };
    if out.iter().any(|r| !is_chain(r)) {
        out.retain(|r| !is_chain(r));
    }
    out
}

/// The state of one module's build dir against its expected keys.
#[derive(Clone, Debug, Default)]
pub struct ModuleStatus {
    /// The first step whose stamp does not match (None: fully fresh).
    pub first_stale: Option<Step>,
    /// Why it is stale: the differences of `changed_step` when that is set,
    /// else of `first_stale`.
    pub reasons: Vec<StaleReason>,
    /// For a module restored from the cache: the step whose inputs changed.
    /// A restored build dir holds no source, so the build restarts earlier
    /// (`first_stale`); this names the real cause.
    pub changed_step: Option<Step>,
    /// A variant whose shared source tree is already unpacked and patched
    /// at the current keys: it restarts from configure in an empty build dir.
    pub source_ready: bool,
}

impl ModuleStatus {
    /// Where a build must restart. Anything up to configure restarts from a
    /// fresh tree, so a tree is never patched twice and never reconfigured
    /// over objects built against older dependencies: a freshly extracted
    /// source tree, or for a variant whose shared source is ready, an empty
    /// build dir.
    pub fn restart_from(&self) -> Option<Step> {
        self.first_stale.map(|s| {
            if s > Step::Configure {
                s
            } else if self.source_ready {
                Step::Configure
            } else {
                Step::Unpack
            }
        })
    }

    /// Whether `step` will run.
    pub fn runs(&self, step: Step) -> bool {
        self.restart_from().is_some_and(|r| step >= r)
    }
}

/// Where a restored module records the inputs of every step it was built
/// from. Not stamps: a restored tree holds no sources, so no step before
/// install may look done; this record only lets `why` name what changed.
fn provenance_path(state_dir: &Path) -> PathBuf {
    state_dir.join("provenance.json")
}

/// Records every step's inputs for a module restored from cache.
pub fn write_provenance(module_dir: &Path, keys: &ModuleKeys) -> io::Result<()> {
    let record: Vec<(Step, &Vec<Input>)> = keys.steps.iter().map(|k| (k.step, &k.inputs)).collect();
    let json = serde_json::to_vec(&record).map_err(io::Error::other)?;
    write_atomic(&provenance_path(module_dir), &json)
}

/// The first step whose inputs differ from the provenance record, and how,
/// if there is a record.
fn provenance_reasons(module_dir: &Path, keys: &ModuleKeys) -> Option<(Step, Vec<StaleReason>)> {
    let text = fs::read(provenance_path(module_dir)).ok()?;
    let record: Vec<(Step, Vec<Input>)> = serde_json::from_slice(&text).ok()?;
    record.iter().find_map(|(step, inputs)| {
        let d = diff_inputs(inputs, &keys.get(*step).inputs);
        (!d.is_empty()).then_some((*step, d))
    })
}

/// Whether the shared source tree is unpacked and patched at `keys`.
/// The tree must exist: a source deleted by hand is not ready, whatever
/// its stamps say.
pub fn source_ready(source_state: &Path, source_tree: &Path, keys: &ModuleKeys) -> bool {
    source_tree.is_dir()
        && [Step::Unpack, Step::Patch]
            .iter()
            .all(|s| stamp_key(source_state, *s).as_deref() == Some(keys.get(*s).key.as_str()))
}

/// Compares an instance's stamps with its expected keys.
pub fn module_status(dirs: &StampDirs, keys: &ModuleKeys) -> ModuleStatus {
    let source_ready = dirs.separate() && source_ready(&dirs.source, &dirs.source_tree, keys);
    if !dirs.tree.is_dir() {
        let first = if dirs.separate() {
            Step::Configure
        } else {
            Step::Unpack
        };
        // Never built here at all, or built and then deleted by hand.
        let reason = if stamp_key(&dirs.instance, Step::Install).is_none()
            && !provenance_path(&dirs.instance).is_file()
        {
            StaleReason::NeverRan(first)
        } else {
            StaleReason::Missing(dirs.tree.clone())
        };
        return ModuleStatus {
            first_stale: Some(first),
            reasons: vec![reason],
            source_ready,
            ..ModuleStatus::default()
        };
    }
    if stamp_key(&dirs.instance, Step::Install).as_deref() == Some(keys.install_key()) {
        return ModuleStatus {
            source_ready,
            ..ModuleStatus::default()
        };
    }
    // A variant that has to run a step needs its shared source: one deleted
    // by hand is unpacked again, whatever its stamps say.
    let source_missing = dirs.separate() && !dirs.source_tree.is_dir();
    for step in &Step::ALL[1..] {
        let expected = keys.get(*step);
        let dir = dirs.of(*step);
        if *step <= Step::Patch && source_missing {
            return ModuleStatus {
                first_stale: Some(Step::Unpack),
                reasons: vec![StaleReason::Missing(dirs.source_tree.clone())],
                ..ModuleStatus::default()
            };
        }
        if stamp_key(dir, *step).as_deref() == Some(expected.key.as_str()) {
            continue;
        }
        let (reasons, changed_step) = match read_stamp(dir, *step) {
            None => match provenance_reasons(&dirs.instance, keys) {
                Some((changed, d)) => (d, (changed > *step).then_some(changed)),
                None => (vec![StaleReason::NeverRan(*step)], None),
            },
            Some(stamp) => (diff_inputs(&stamp.inputs, &expected.inputs), None),
        };
        return ModuleStatus {
            first_stale: Some(*step),
            reasons,
            changed_step,
            source_ready,
        };
    }
    // Every stamp matched but install's first line did not: unreachable unless
    // the install stamp is unreadable; rebuild the last step to be safe.
    ModuleStatus {
        first_stale: Some(Step::Install),
        reasons: vec![StaleReason::NeverRan(Step::Install)],
        source_ready,
        ..ModuleStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> Vec<Input> {
        pairs.iter().map(|(n, v)| Input::new(*n, *v)).collect()
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs(&[("a", "1"), ("b", "2")]);
        let k = hash_inputs(Step::Build, &base);
        assert_ne!(
            k,
            hash_inputs(Step::Build, &inputs(&[("a", "1"), ("b", "3")]))
        );
        assert_ne!(
            k,
            hash_inputs(Step::Build, &inputs(&[("a", "2"), ("b", "2")]))
        );
        assert_ne!(k, hash_inputs(Step::Configure, &base));
        assert_ne!(k, hash_inputs(Step::Build, &inputs(&[("a", "1")])));
        assert_eq!(k, hash_inputs(Step::Build, &base));
    }

    #[test]
    fn encoding_is_length_prefixed() {
        // "ab"+"c" must not collide with "a"+"bc".
        let x = hash_inputs(Step::Build, &inputs(&[("ab", "c")]));
        let y = hash_inputs(Step::Build, &inputs(&[("a", "bc")]));
        assert_ne!(x, y);
    }

    #[test]
    fn diff_names_the_root_cause_not_the_chain() {
        let old = inputs(&[("step patch", "x"), ("dependency musl", "k1")]);
        let new = inputs(&[("step patch", "x"), ("dependency musl", "k2")]);
        let d = diff_inputs(&old, &new);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "dependency musl changed since this module was built"
        );
        let old = inputs(&[("cache-version", "1")]);
        let new = inputs(&[("cache-version", "2")]);
        assert_eq!(
            diff_inputs(&old, &new)[0].to_string(),
            "cache-version 1 → 2"
        );
        let old = inputs(&[("step unpack", "a"), ("patch p/1.patch", "h1")]);
        let new = inputs(&[("step unpack", "b"), ("patch p/1.patch", "h2")]);
        let d = diff_inputs(&old, &new);
        assert_eq!(
            d,
            vec![StaleReason::Changed {
                name: "patch p/1.patch".into(),
                old: "h1".into(),
                new: "h2".into()
            }]
        );
    }

    #[test]
    fn params_are_named_and_variants_restart_from_configure() {
        let old = inputs(&[("param CFG file", "h1"), ("param BOARD", "x230")]);
        let new = inputs(&[("param CFG file", "h2"), ("param BOARD", "t430")]);
        let d: Vec<String> = diff_inputs(&old, &new)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            d,
            [
                "param CFG changed (the file's content differs)",
                "param BOARD changed: `x230` → `t430`"
            ]
        );
        let mut st = ModuleStatus {
            first_stale: Some(Step::Configure),
            source_ready: true,
            ..ModuleStatus::default()
        };
        assert_eq!(st.restart_from(), Some(Step::Configure));
        assert!(!st.runs(Step::Patch));
        st.source_ready = false;
        assert_eq!(st.restart_from(), Some(Step::Unpack));
        st.first_stale = Some(Step::Build);
        assert_eq!(st.restart_from(), Some(Step::Build));
    }

    #[test]
    fn stamps_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let k = StepKey::new(Step::Patch, inputs(&[("patch a", "1")]));
        write_stamp(dir.path(), "m", &k).unwrap();
        assert_eq!(stamp_key(dir.path(), Step::Patch).unwrap(), k.key);
        assert_eq!(
            read_stamp(dir.path(), Step::Patch).unwrap().inputs,
            k.inputs
        );
        clear_stamps_from(dir.path(), Step::Unpack).unwrap();
        assert!(stamp_key(dir.path(), Step::Patch).is_none());
    }
}
