//! The project lock: one `strata` at a time writes a project's build tree.
//!
//! A second `strata build` on the same project prints
//! `Blocking: waiting for lock on …` and waits (cargo's habit) instead of
//! corrupting the first one's work. The lock is an OS file lock, so it is
//! released by the kernel even when the holder is killed with `kill -9`.
//! Whoever takes it also sweeps the `.tmp-*` files such a kill leaves in
//! strata's own state ([`ProjectLock::sweep`]): only the lock holder may,
//! since only it knows no other strata is writing them.
//!
//! The sweep reads every module's state dir, which at a thousand modules
//! costs more than the rest of a no-op build, so it runs only when the last
//! holder may have left something: a holder whose command succeeded says
//! so in the lock file ([`ProjectLock::release`]) on its way out; a killed,
//! interrupted or failed one does not, and the next holder sweeps.

use crate::fsutil::{parent_dir, remove_leftovers, sweep_temp_files};
use crate::manifest::Project;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What the lock file holds after a holder whose command succeeded: it left
/// no temp files, so the next holder need not sweep.
const RELEASED_CLEAN: &[u8] = b"released clean\n";

/// A held exclusive lock; released on drop.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
    /// The previous holder released it with [`ProjectLock::release`].
    after_clean_release: bool,
}

impl ProjectLock {
    /// Takes the lock at `path`, telling the user through `on_wait` before blocking.
    pub fn acquire(path: &Path, on_wait: impl FnOnce(&Path)) -> io::Result<ProjectLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                on_wait(path);
                file.lock()?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut said = Vec::new();
        (&file).take(64).read_to_end(&mut said)?;
        let after_clean_release = said == RELEASED_CLEAN;
        if !said.is_empty() {
            // From here until `release`, a kill leaves the mark off.
            file.set_len(0)?;
        }
        Ok(ProjectLock {
            file,
            after_clean_release,
        })
    }

    /// Releases the lock after a command that succeeded, marking that it
    /// left nothing to sweep. Dropping the lock instead (an error, an
    /// interrupt) makes the next holder sweep.
    pub fn release(self) {
        // At worst the mark is missing and the next holder sweeps.
        let _ = self.file.write_all_at(RELEASED_CLEAN, 0);
    }

    /// Removes temp files that killed runs left in strata's own state: the
    /// state dir, the top of the build and packages dirs (half-unpacked
    /// `.NAME.tmp-*` trees), `packages/.strata/verified/` (stat records), a half-merged `.install.tmp-*` beside the
    /// install dir, and the module state under `build/.strata/modules/`
    /// (stamps, records), never a destdir, sysroot, host prefix or home,
    /// which hold the module's own files, and never inside a source tree;
    /// and `build/.strata/check/`, the scratch dirs of `build --check`.
    /// Returns how many were removed. Sweeps nothing when the previous
    /// holder released the lock after a command that succeeded.
    pub fn sweep(&self, project: &Project) -> io::Result<usize> {
        if self.after_clean_release {
            return Ok(0);
        }
        let s = &project.settings;
        // Inside a module's state, what its commands wrote is theirs.
        let keep = ["destdir", "sysroot", "host", "home"];
        // `build --check` scratch dirs: only a lock holder ever makes one.
        let check = project.state_dir().join("check");
        let mut n = usize::from(check.exists());
        // Reported after the other sweeps: one stuck dir must not stop them.
        let checked = crate::fsutil::remove_all(&check);
        n += sweep_temp_files(&project.state_dir(), 4, &keep)?;
        n += sweep_temp_files(&s.packages_dir, 0, &[])?;
        // The stat records (`fetch::record_path`), written under this lock.
        n += sweep_temp_files(&s.packages_dir.join(".strata").join("verified"), 0, &[])?;
        // Only the top of build/: below it, source trees belong to their
        // archives (strata's own state is all under build/.strata).
        n += sweep_temp_files(&s.build_dir, 0, &[])?;
        // The install tree is assembled beside itself as `.install.tmp-<pid>`.
        if let Some(name) = s.install_dir.file_name() {
            remove_leftovers(&parent_dir(&s.install_dir), &name.to_string_lossy())?;
        }
        checked?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_release_spares_the_next_holder_its_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        // A new lock file, or one an older strata left: sweep.
        let first = ProjectLock::acquire(&path, |_| {}).unwrap();
        assert!(!first.after_clean_release);
        first.release();
        let second = ProjectLock::acquire(&path, |_| {}).unwrap();
        assert!(second.after_clean_release);
        // Held: the mark is off until released, so a kill leaves it off.
        assert_eq!(fs::read(&path).unwrap(), b"");
        drop(second);
        let third = ProjectLock::acquire(&path, |_| {}).unwrap();
        assert!(!third.after_clean_release, "dropped without release");
    }
}
