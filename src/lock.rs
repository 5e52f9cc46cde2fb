//! The project lock: one `strata` at a time writes a project's build tree.
//!
//! A second `strata build` on the same project prints
//! `Blocking: waiting for lock on …` and waits (cargo's habit) instead of
//! corrupting the first one's work. The lock is an OS file lock, so it is
//! released by the kernel even when the holder is killed with `kill -9`.

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
}
