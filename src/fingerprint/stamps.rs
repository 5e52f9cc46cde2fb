//! Stamps on disk: one file per step in a module's state dir, the key on
//! its first line (a fresh check reads one short line) and the inputs as
//! JSON after it (parsed only to explain a mismatch).

use super::*;
use crate::fsutil::write_atomic;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> Vec<Input> {
        pairs.iter().map(|(n, v)| Input::new(*n, *v)).collect()
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
