//! The local directory store: `<root>/v1/<2 hex>/<key>.tar.zst` plus
//! `<key>.json`. The archive is renamed into place first and the JSON record
//! last, so a record always points at a complete archive; a reader never sees
//! a partial entry, whatever instant a writer is killed at. Beside them,
//! `<root>/v1/trees/` holds restored entries unpacked (see `tree`), counted
//! and removed with their entries.

use super::{Store, StoreError};
use crate::artifact::{ArtifactInfo, CACHE_FORMAT};
use crate::fsutil::{sync_dir, temp_file_in, write_atomic};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// An entry's key, bytes on disk and last use.
pub type EntryUse = (String, u64, std::time::SystemTime);

/// A store in a local directory (default `$XDG_CACHE_HOME/strata`).
pub struct LocalStore {
    root: PathBuf,
}

/// What the store's lock file says after a sweep, until a writer that may
/// leave temp files takes it off ([`LocalStore::may_leave_leftovers`]).
const SWEPT: &[u8] = b"swept\n";

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    /// The default location: `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d).join("strata"),
            None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache")
                .join("strata"),
        }
    }

    /// Takes the store lock: shared for builds (any number at once),
    /// exclusive for gc, so gc never removes an entry a running build uses.
    /// Whoever gets it exclusively (gc, or a build that finds the store
    /// idle: it tries exclusive first, then downgrades) removes the `.tmp-*`
    /// files killed writers left; every writer holds the lock (see `put`),
    /// so none of them can be live.
    pub fn lock(&self, exclusive: bool) -> io::Result<fs::File> {
        let f = self.lock_file()?;
        match f.try_lock() {
            Ok(()) => {
                // gc always sweeps; a build that finds the store idle only
                // after a writer.
                self.sweep_unless_swept(&f, exclusive);
                if !exclusive {
                    f.lock_shared()?;
                }
                return Ok(f);
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let held = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match held {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                crate::errln!(
                    "    Blocking: waiting for lock on {} ({})",
                    self.root.join("lock").display(),
                    if exclusive {
                        "a build is using the cache"
                    } else {
                        "cache gc, or a sweep of temp files, is running"
                    }
                );
                if exclusive {
                    f.lock()?;
                    self.sweep_unless_swept(&f, true);
                } else {
                    f.lock_shared()?
                }
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(f)
    }

    fn lock_file(&self) -> io::Result<fs::File> {
        fs::create_dir_all(&self.root)?;
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.root.join("lock"))
    }

    /// [`LocalStore::sweep`], unless nothing wrote since the last sweep (and
    /// not `always`): the lock file then says `swept` (reading a few hundred
    /// shard dirs cost a no-op build of a thousand modules a tenth of its
    /// time). Call only with the lock held exclusively.
    fn sweep_unless_swept(&self, lock: &fs::File, always: bool) {
        use std::os::unix::fs::FileExt;
        let mut said = [0u8; 16];
        let n = lock.read_at(&mut said, 0).unwrap_or(0);
        if !always && &said[..n] == SWEPT {
            return;
        }
        self.sweep();
        // At worst the mark is missing and the next one sweeps again.
        let _ = lock.set_len(0).and_then(|()| lock.write_all_at(SWEPT, 0));
    }

    /// Takes the `swept` mark off the lock file: every writer calls this
    /// before it makes anything a kill would leave behind (a temp file or
    /// dir, a dir renamed aside to be deleted), so the next sweeper sweeps.
    pub(super) fn may_leave_leftovers(&self) {
        use std::os::unix::fs::FileExt;
        let Ok(f) = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.root.join("lock"))
        else {
            // No lock file: no mark either.
            return;
        };
        let mut said = [0u8; 1];
        if f.read_at(&mut said, 0).is_ok_and(|n| n > 0) {
            let _ = f.set_len(0);
        }
    }

    /// Removes killed writers' temp files; call only with the lock held exclusively.
    fn sweep(&self) {
        // The root's own: a `CACHEDIR.TAG` being written (see `tag`, under the lock in `put`).
        let _ = crate::fsutil::sweep_temp_files(&self.root, 0, &[]);
        let _ = crate::fsutil::sweep_temp_files(&self.root.join(CACHE_FORMAT), 1, &[]);
        // Downloads from a remote (`tmp/<key>.<pid>.download`) are all temporary.
        if let Ok(entries) = fs::read_dir(self.root.join("tmp")) {
            for e in entries.flatten() {
                let _ = crate::fsutil::remove_all(&e.path());
            }
        }
    }

    /// Marks `key` as used now (the record's mtime is its last use, for gc).
    pub fn touch(&self, key: &str) {
        let _ = filetime::set_file_mtime(self.json_path(key), filetime::FileTime::now());
    }

    /// Every entry with its bytes on disk and last use, plus orphaned files
    /// (archives without a record, temp files of killed writers).
    pub fn usage(&self) -> io::Result<(Vec<EntryUse>, Vec<PathBuf>)> {
        let mut entries = Vec::new();
        let mut orphans = Vec::new();
        let base = self.root.join(CACHE_FORMAT);
        let Ok(shards) = fs::read_dir(&base) else {
            return Ok((entries, orphans));
        };
        for shard in shards.flatten() {
            if shard.file_name() == "trees" {
                continue;
            }
            let files: Vec<PathBuf> = fs::read_dir(shard.path())?
                .flatten()
                .map(|e| e.path())
                .collect();
            for f in &files {
                let name = f
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if let Some(key) = name.strip_suffix(".json") {
                    let meta = fs::metadata(f)?;
                    let archives: u64 = files
                        .iter()
                        .filter(|a| {
                            a.file_name().is_some_and(|n| {
                                n.to_string_lossy().starts_with(&format!("{key}-"))
                            })
                        })
                        .filter_map(|a| fs::metadata(a).ok())
                        .map(|m| m.len())
                        .sum();
                    entries.push((key.to_string(), meta.len() + archives, meta.modified()?));
                } else if name.starts_with('.')
                    || name.split_once('-').is_none_or(|(key, _)| {
                        !files.iter().any(|j| {
                            j.file_name()
                                .is_some_and(|n| n.to_string_lossy() == format!("{key}.json"))
                        })
                    })
                {
                    orphans.push(f.clone());
                }
            }
        }
        // A tree counts toward its entry; one without an entry is an orphan,
        // and so is the note of a restore of an entry that is gone.
        for (key, dir) in self.trees()? {
            match entries.iter_mut().find(|e| e.0 == key) {
                Some(e) => e.1 += LocalStore::tree_bytes(&dir),
                None => orphans.push(dir),
            }
        }
        for (key, mark) in self.restored_marks()? {
            if !entries.iter().any(|e| e.0 == key) {
                orphans.push(mark);
            }
        }
        Ok((entries, orphans))
    }

    /// Removes an entry: the record first (so it stops existing), then its
    /// archives and trees.
    fn remove_entry(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.json_path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.remove_trees(key)?;
        let shard = match fs::read_dir(self.shard(key)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            r => r?,
        };
        for e in shard.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{key}-"))
            {
                fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The archive of `key` in this store (an error if it is missing).
    pub fn archive(&self, info: &ArtifactInfo) -> Result<PathBuf, StoreError> {
        let key = &info.key;
        let p = self.archive_path(info);
        if p.is_file() {
            Ok(p)
        } else {
            Err(StoreError::Corrupt {
                store: self.describe(),
                key: key.to_string(),
                why: "the archive is missing".into(),
            })
        }
    }

    fn shard(&self, key: &str) -> PathBuf {
        self.root
            .join(CACHE_FORMAT)
            .join(key.get(..2).unwrap_or("00"))
    }

    fn json_path(&self, key: &str) -> PathBuf {
        self.shard(key).join(format!("{key}.json"))
    }

    fn archive_path(&self, info: &ArtifactInfo) -> PathBuf {
        self.shard(&info.key)
            .join(crate::artifact::archive_name(info))
    }

    fn io(&self, what: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
        let store = self.describe();
        let what = what.into();
        move |source| StoreError::Io {
            store,
            what,
            source,
        }
    }

    /// Marks the root as a cache directory for backup tools (CACHEDIR.TAG).
    fn tag(&self) -> io::Result<()> {
        let tag = self.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(
                &tag,
                b"Signature: 8a477f597d28d172789f06886806bc55\n# strata artifact cache; see https://bford.info/cachedir/\n",
            )?;
        }
        Ok(())
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("local store {}", self.root.display())
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.remove_entry(key)
            .map_err(self.io(format!("removing entry {key}")))
    }

    fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError> {
        let json = match fs::read(self.json_path(key)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(format!("reading entry {key}"))(e)),
        };
        let info = super::parse_record(&self.describe(), key, &json)?;
        Ok(Some(info))
    }

    fn fetch(
        &self,
        info: &ArtifactInfo,
        dest: &Path,
        progress: super::Progress<'_>,
    ) -> Result<(), StoreError> {
        let key = &info.key;
        let src = self.archive(info)?;
        let err = || self.io(format!("copying entry {key}"));
        let mut from = fs::File::open(&src).map_err(err())?;
        let mut to = fs::File::create(dest).map_err(err())?;
        super::copy_with_progress(&mut from, &mut to, progress).map_err(err())?;
        to.sync_all().map_err(err())
    }

    fn put(&self, info: &ArtifactInfo, archive: &Path) -> Result<bool, StoreError> {
        let key = &info.key;
        if self.json_path(key).exists() {
            return Ok(false);
        }
        let shard = self.shard(key);
        fs::create_dir_all(&shard).map_err(self.io("creating the store"))?;
        // Held shared while writing, so that no sweep removes our temp files.
        let lock = self.lock_file().map_err(self.io("locking the store"))?;
        lock.lock_shared().map_err(self.io("locking the store"))?;
        self.may_leave_leftovers();
        self.tag().map_err(self.io("writing CACHEDIR.TAG"))?;
        let err = || self.io(format!("writing entry {key}"));
        let temp = || temp_file_in(&shard);
        let mut tmp = temp().map_err(err())?;
        io::copy(&mut fs::File::open(archive).map_err(err())?, &mut tmp).map_err(err())?;
        tmp.as_file().sync_all().map_err(err())?;
        // Same name means same content, so replacing it is harmless.
        tmp.persist(self.archive_path(info))
            .map_err(|e| err()(e.error))?;
        let json = serde_json::to_vec_pretty(info).expect("serialisable");
        let mut tmp_json = temp().map_err(err())?;
        io::Write::write_all(&mut tmp_json, &json).map_err(err())?;
        tmp_json.as_file().sync_all().map_err(err())?;
        // link(2) fails if the record exists: the create-only commit point.
        let created = match fs::hard_link(tmp_json.path(), self.json_path(key)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(err()(e)),
        };
        drop(tmp_json);
        sync_dir(&shard).map_err(self.io("syncing the store"))?;
        Ok(created)
    }

    fn quarantine(&self, key: &str) -> Result<(), StoreError> {
        // A tree made from a quarantined archive is not trusted either.
        self.remove_trees(key)
            .map_err(self.io(format!("quarantining {key}")))?;
        let dir = self.root.join("quarantine");
        fs::create_dir_all(&dir).map_err(self.io("creating quarantine"))?;
        let mut paths = vec![self.json_path(key)];
        if let Ok(entries) = fs::read_dir(self.shard(key)) {
            paths.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{key}-")))
            }));
        }
        for p in paths {
            if p.exists() {
                let name = p.file_name().expect("file").to_owned();
                fs::rename(&p, dir.join(name)).map_err(self.io(format!("quarantining {key}")))?;
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<ArtifactInfo>, StoreError> {
        let mut out = Vec::new();
        let base = self.root.join(CACHE_FORMAT);
        let Ok(shards) = fs::read_dir(&base) else {
            return Ok(out);
        };
        for shard in shards.flatten() {
            for e in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(key) = name.strip_suffix(".json")
                    && let Ok(Some(info)) = self.lookup(key)
                {
                    out.push(info);
                }
            }
        }
        out.sort_by(|a, b| a.module.cmp(&b.module).then(a.key.cmp(&b.key)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_store_is_swept_again_only_after_a_writer() {
        let t = tempfile::tempdir().unwrap();
        let store = LocalStore::new(t.path().join("store"));
        let shard = store.root().join(CACHE_FORMAT).join("ab");
        fs::create_dir_all(&shard).unwrap();
        let left = shard.join(".tmp-killed");
        fs::write(&left, "partial").unwrap();
        // A store never swept (or swept by an older strata) is swept.
        drop(store.lock(false).unwrap());
        assert!(!left.exists());
        // Nothing wrote since: the next idle lock reads no shard.
        fs::write(&left, "not from a writer of this store").unwrap();
        drop(store.lock(false).unwrap());
        assert!(left.exists());
        // A writer takes the mark off; the next sweeper sweeps.
        store.may_leave_leftovers();
        drop(store.lock(false).unwrap());
        assert!(!left.exists());
        // gc (the lock taken exclusively) always sweeps.
        fs::write(&left, "partial").unwrap();
        drop(store.lock(true).unwrap());
        assert!(!left.exists());
    }
}
