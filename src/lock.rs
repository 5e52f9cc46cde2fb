//! The project lock: one `strata` at a time writes a project's build tree.
//!
//! A second `strata build` on the same project prints
//! `Blocking: waiting for lock on …` and waits (cargo's habit) instead of
//! corrupting the first one's work. The lock is an OS file lock, so it is
//! released by the kernel even when the holder is killed with `kill -9`.
//! Whoever takes it also sweeps the `.tmp-*` files such a kill leaves in
//! strata's own state ([`ProjectLock::sweep`]): only the lock holder may,
//! since only it knows no other strata is writing them.

use crate::fsutil::{parent_dir, remove_leftovers, sweep_temp_files};
use crate::manifest::Project;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// A held exclusive lock; released on drop.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
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
        Ok(ProjectLock { _file: file })
    }

    /// Removes temp files that killed runs left in strata's own state: the
    /// state dir, the top of the build and packages dirs (half-unpacked
    /// `.NAME.tmp-*` trees), `packages/.strata/verified/` (stat records), a half-merged `.install.tmp-*` beside the
    /// install dir, and the module state under `build/.strata/modules/`
    /// (stamps, records), never a destdir, sysroot, host prefix or home,
    /// which hold the module's own files, and never inside a source tree;
    /// and `build/.strata/check/`, the scratch dirs of `build --check`.
    /// Returns how many were removed.
    pub fn sweep(&self, project: &Project) -> io::Result<usize> {
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
