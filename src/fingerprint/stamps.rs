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
    /// Written by `build --incremental`: the step ran in a tree other
    /// inputs may have written into, so only another incremental build
    /// takes it as done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental: bool,
}

/// What the first line of an incremental stamp holds after the key: such a
/// line is never a key, so a normal build reads the step as stale.
const INCREMENTAL_SUFFIX: &str = "+incremental";

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

/// The first line of a stamp: one short read, never the JSON record after
/// it (a no-op build reads this for every module).
fn first_line(module_dir: &Path, step: Step) -> Option<String> {
    use std::io::Read;
    let mut f = fs::File::open(stamp_path(module_dir, step)).ok()?;
    // A key (64) and the incremental suffix fit, with room to spare.
    let mut buf = [0u8; 128];
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let line = buf[..n].split(|&b| b == b'\n').next()?;
    String::from_utf8(line.to_vec()).ok()
}

/// The key recorded by a stamp (first line), without parsing the record.
pub fn stamp_key(module_dir: &Path, step: Step) -> Option<String> {
    let line = first_line(module_dir, step)?;
    (line.len() == 64).then_some(line)
}

/// The key recorded by a stamp, also when an incremental build wrote it
/// (what `build --incremental` compares).
pub fn stamp_key_incremental(module_dir: &Path, step: Step) -> Option<String> {
    let line = first_line(module_dir, step)?;
    let key = line.strip_suffix(INCREMENTAL_SUFFIX).unwrap_or(&line);
    (key.len() == 64).then(|| key.to_string())
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
    write_stamp_as(module_dir, module, k, false)
}

/// Records that `step` succeeded with key `k` in a `build --incremental`
/// run: see [`Stamp::incremental`].
pub fn write_stamp_as(
    module_dir: &Path,
    module: &str,
    k: &StepKey,
    incremental: bool,
) -> io::Result<()> {
    write_atomic(
        &stamp_path(module_dir, k.step),
        stamp_text(module, k, incremental)?.as_bytes(),
    )
}

/// What the stamp file of `k` holds: the key (its first line), then the
/// record. For a writer that places the file itself (a restore, which
/// orders its fsyncs with the trees it moves).
pub fn stamp_text(module: &str, k: &StepKey, incremental: bool) -> io::Result<String> {
    let stamp = Stamp {
        format: STAMP_FORMAT,
        module: module.to_string(),
        step: k.step,
        key: k.key.clone(),
        inputs: k.inputs.clone(),
        incremental,
    };
    let json = serde_json::to_string_pretty(&stamp).map_err(io::Error::other)?;
    let suffix = if incremental { INCREMENTAL_SUFFIX } else { "" };
    Ok(format!("{}{suffix}\n{json}\n", k.key))
}

/// Where an instance lists the command steps that wrote into its build dir
/// since the dir was last made fresh (extracted, or emptied for a variant):
/// one `<step> <key>` line each, written *before* the step's command
/// starts, so a step that failed or was killed is listed too. A build may
/// continue in the dir only when every line is at the current key of its
/// step: otherwise a build with other inputs wrote there, and what it left
/// (objects `make` would call up to date) would end up in an artifact whose
/// key says otherwise.
pub fn tree_writes_path(state_dir: &Path) -> PathBuf {
    state_dir.join("stamps").join("tree-writes")
}

/// The key `build --incremental` records for its writes: never a step key,
/// so a normal build never continues in a tree an incremental one touched.
const INCREMENTAL_WRITE: &str = "incremental";

/// Records that the build dir was just made fresh: nothing wrote into it.
pub fn start_tree(state_dir: &Path) -> io::Result<()> {
    fs::create_dir_all(state_dir.join("stamps"))?;
    write_atomic(&tree_writes_path(state_dir), b"")
}

/// Records, before it runs, that `step` is about to write into the build
/// dir with key `key` (`incremental`: in a `build --incremental` run).
pub fn record_tree_write(
    state_dir: &Path,
    step: Step,
    key: &str,
    incremental: bool,
) -> io::Result<()> {
    let path = tree_writes_path(state_dir);
    let mut text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let key = if incremental { INCREMENTAL_WRITE } else { key };
    let line = format!("{} {key}\n", step.name());
    if !text.ends_with(&line) {
        text.push_str(&line);
    }
    fs::create_dir_all(state_dir.join("stamps"))?;
    write_atomic(&path, text.as_bytes())
}

/// Whether something other than a build of exactly `keys` may have written
/// into the build dir: a listed write at another key (or an incremental
/// one), or no list at all (a dir made before strata kept one: its history
/// is unknown).
pub fn tree_written_by_other_inputs(state_dir: &Path, keys: &ModuleKeys) -> bool {
    let Ok(text) = fs::read_to_string(tree_writes_path(state_dir)) else {
        return true;
    };
    text.lines().any(|line| {
        let Some((step, key)) = line.split_once(' ') else {
            return true;
        };
        let step = [Step::Configure, Step::Build, Step::Install]
            .into_iter()
            .find(|s| s.name() == step);
        step.is_none_or(|s| keys.get(s).key != key)
    })
}

/// Removes the stamps of `from` and every later step (before re-running
/// them). From configure on or earlier, the build dir is about to be made
/// fresh, so its list of writes goes too (see [`tree_writes_path`]).
/// Returns whether it removed anything (nothing: no fsync needed to make
/// the removal durable).
pub fn clear_stamps_from(module_dir: &Path, from: Step) -> io::Result<bool> {
    let mut removed = false;
    let mut remove = |path: PathBuf| match fs::remove_file(path) {
        Ok(()) => {
            removed = true;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if from <= Step::Configure {
        remove(tree_writes_path(module_dir))?;
    }
    for step in Step::ALL.iter().filter(|s| **s >= from) {
        remove(stamp_path(module_dir, *step))?;
    }
    Ok(removed)
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
        assert!(clear_stamps_from(dir.path(), Step::Unpack).unwrap());
        assert!(stamp_key(dir.path(), Step::Patch).is_none());
        assert!(!clear_stamps_from(dir.path(), Step::Unpack).unwrap());
    }

    #[test]
    fn only_a_first_line_of_64_characters_is_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let k = StepKey::new(Step::Build, inputs(&[("a", "1")]));
        write_stamp_as(dir.path(), "m", &k, true).unwrap();
        assert_eq!(stamp_key(dir.path(), Step::Build), None);
        assert_eq!(
            stamp_key_incremental(dir.path(), Step::Build),
            Some(k.key.clone())
        );
        let path = stamp_path(dir.path(), Step::Build);
        for text in [String::new(), "short\n".into(), format!("{}x\n", k.key)] {
            std::fs::write(&path, &text).unwrap();
            assert_eq!(stamp_key(dir.path(), Step::Build), None, "{text:?}");
        }
        std::fs::write(&path, format!("{}\n{{}}", k.key)).unwrap();
        assert_eq!(stamp_key(dir.path(), Step::Build), Some(k.key));
    }
}
