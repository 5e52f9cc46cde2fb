//! Whether a module is fresh, and if not, the first stale step and why:
//! stamps compared with the expected keys, and for a module restored from
//! the cache (no stamps before install) its provenance record.

use super::*;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
    /// The step last ran in a `build --incremental` run, whose output is
    /// never taken as what its inputs build.
    Incremental(Step),
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::NeverRan(step) => write!(f, "{step} has not run yet"),
            StaleReason::Missing(dir) => write!(f, "build dir {} is missing", dir.display()),
            StaleReason::Incremental(step) => write!(
                f,
                "{step} last ran in a --incremental build (in a tree other inputs wrote into): \
                 a normal build redoes it from a clean tree"
            ),
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
                } else if let Some(param) = name
                    .strip_prefix("param ")
                    .and_then(|n| n.strip_suffix(" dir"))
                {
                    write!(f, "param {param} changed (the directory's content differs)")
                } else if name.starts_with("param ") {
                    write!(f, "{name} changed: `{old}` → `{new}`")
                } else if name.starts_with("override ") {
                    write!(f, "{name} changed (the directory's content differs)")
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
        StaleReason::NeverRan(_) | StaleReason::Missing(_) | StaleReason::Incremental(_) => false,
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
    /// A build with other inputs (or an incremental one) wrote into the
    /// build dir: a stale build or install cannot continue there and
    /// restarts from a fresh tree like a stale configure (see
    /// [`super::tree_writes_path`]).
    pub dirty_tree: bool,
}

impl ModuleStatus {
    /// Where a build must restart. Anything up to configure restarts from a
    /// fresh tree, so a tree is never patched twice and never reconfigured
    /// over objects built against older dependencies: a freshly extracted
    /// source tree, or for a variant whose shared source is ready, an empty
    /// build dir. A stale build or install continues in the build dir only
    /// when nothing but a build of the current inputs wrote there (a run
    /// killed or failed at the same keys); otherwise it restarts the same
    /// way, so an artifact is always what a clean build of its key makes.
    pub fn restart_from(&self) -> Option<Step> {
        self.first_stale.map(|s| {
            if s > Step::Configure && !self.dirty_tree {
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
pub fn provenance_path(state_dir: &Path) -> PathBuf {
    state_dir.join("provenance.json")
}

/// Forgets the provenance record: once steps run in the build dir, their
/// stamps are what explain it, and an old record would name differences
/// against a build that is no longer there.
pub fn forget_provenance(module_dir: &Path) -> io::Result<()> {
    match fs::remove_file(provenance_path(module_dir)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The record of every step's inputs for a module restored from cache
/// (written to [`provenance_path`] by the restore, in its fsync order).
pub fn provenance_bytes(keys: &ModuleKeys) -> io::Result<Vec<u8>> {
    let record: Vec<(Step, &Vec<Input>)> = keys.steps.iter().map(|k| (k.step, &k.inputs)).collect();
    serde_json::to_vec(&record).map_err(io::Error::other)
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
    module_status_as(dirs, keys, false)
}

/// [`module_status`] for a build that is (`incremental`) or is not a
/// `build --incremental`: an incremental build takes the stamps of earlier
/// incremental builds as done and continues in whatever tree is there.
pub fn module_status_as(dirs: &StampDirs, keys: &ModuleKeys, incremental: bool) -> ModuleStatus {
    let key_of = |dir: &Path, step: Step| {
        if incremental {
            stamp_key_incremental(dir, step)
        } else {
            stamp_key(dir, step)
        }
    };
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
    if key_of(&dirs.instance, Step::Install).as_deref() == Some(keys.install_key()) {
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
        if key_of(dir, *step).as_deref() == Some(expected.key.as_str()) {
            continue;
        }
        let (reasons, changed_step) = match read_stamp(dir, *step) {
            None => match provenance_reasons(&dirs.instance, keys) {
                Some((changed, d)) => (d, (changed > *step).then_some(changed)),
                None => (vec![StaleReason::NeverRan(*step)], None),
            },
            Some(stamp) if stamp.incremental && stamp.key == expected.key => {
                (vec![StaleReason::Incremental(*step)], None)
            }
            Some(stamp) => (diff_inputs(&stamp.inputs, &expected.inputs), None),
        };
        let dirty_tree = *step > Step::Configure
            && !incremental
            && tree_written_by_other_inputs(&dirs.instance, keys);
        return ModuleStatus {
            first_stale: Some(*step),
            reasons,
            changed_step,
            source_ready,
            dirty_tree,
        };
    }
    // Every stamp matched but install's first line did not: unreachable unless
    // the install stamp is unreadable; rebuild the last step to be safe.
    ModuleStatus {
        first_stale: Some(Step::Install),
        reasons: vec![StaleReason::NeverRan(Step::Install)],
        source_ready,
        dirty_tree: !incremental && tree_written_by_other_inputs(&dirs.instance, keys),
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
}
