//! The extraction target: every filesystem operation of an unpack goes
//! through a `cap_std::fs::Dir` handle on the target directory, so no path,
//! however crafted, resolves outside it (on Linux cap-std uses `openat2`
//! with `RESOLVE_BENEATH`).
//!
//! The handle alone is not the whole defence. It stops *this* process from
//! escaping, but a symlink left in the tree is followed later by tools that
//! have no handle (make, the patcher of an older strata, the user's shell).
//! So, on top of it: nothing is ever written *through* a symlink an archive
//! created, and once the last entry is written every symlink the archive
//! created is resolved the way the kernel resolves it (following in-tree
//! links, physical `..`), not lexically. A chain such as
//! `d0/…/d11/l -> ../../…` plus `x -> d0/…/d11/l/../../…/etc` passes any
//! lexical check but climbs out physically; it is refused and removed. The
//! check runs at the end because a later entry can change what an earlier
//! link means. It applies to sources only: an archive strata packed keeps
//! its symlinks as data (see [`super::Origin`]), and the rule that nothing
//! is written through one is what keeps its extraction beneath the root.

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// Symlinks followed at most while resolving one link (Linux's limit).
const MAX_HOPS: usize = 40;

/// Why one entry could not be written.
#[derive(Debug)]
pub(super) enum TreeError {
    /// The entry is refused; the text says why.
    Unsafe(String),
    /// The entry unpacks to more bytes than the budget left.
    TooBig,
    Io(io::Error),
}

impl From<io::Error> for TreeError {
    fn from(e: io::Error) -> TreeError {
        TreeError::Io(e)
    }
}

type Result<T> = std::result::Result<T, TreeError>;

/// A directory being extracted into.
pub(super) struct Tree {
    root: Dir,
    /// Directories (relative) known to be real directories in this run.
    dirs: HashSet<PathBuf>,
    /// Every symlink this run created, with the entry that made it
    /// (sources only: packed archives keep theirs verbatim).
    symlinks: Vec<(PathBuf, String)>,
    /// Whether symlinks must stay in the tree (sources).
    confined: bool,
    /// Mode bits cleared from every file and directory: the umask for a
    /// source, none for a packed archive.
    mask: u32,
}

impl Tree {
    pub(super) fn open(path: &Path, origin: super::Origin) -> io::Result<Tree> {
        let source = origin == super::Origin::Source;
        Ok(Tree {
            root: Dir::open_ambient_dir(path, ambient_authority())?,
            dirs: HashSet::new(),
            symlinks: Vec::new(),
            confined: source,
            mask: if source { umask() } else { 0 },
        })
    }

    /// What a file or directory mode from the archive becomes.
    fn mode(&self, mode: u32) -> u32 {
        file_mode(mode) & !self.mask
    }

    /// Creates the parent directories of `rel`, refusing to pass through a symlink.
    fn prepare_parent(&mut self, rel: &Path) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut cur = PathBuf::new();
        for c in parent.components() {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            match self.root.symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(TreeError::Unsafe(format!(
                        "it would be written through the symlink `{}`",
                        cur.display()
                    )));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(TreeError::Unsafe(format!(
                        "its parent `{}` is not a directory",
                        cur.display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.root.create_dir(&cur)?,
                Err(e) => return Err(e.into()),
            }
            self.dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Removes whatever sits at `rel` (an earlier entry of the same name), as GNU tar does.
    fn clear(&mut self, rel: &Path) -> Result<()> {
        match self.root.symlink_metadata(rel) {
            Ok(m) if m.is_dir() => {
                self.root.remove_dir_all(rel)?;
                self.dirs.retain(|d| !d.starts_with(rel));
            }
            Ok(_) => self.root.remove_file(rel)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Writes a regular file through one descriptor: `O_CREAT|O_EXCL` beneath
    /// the root (never follows a symlink planted at `rel`), at most `budget`
    /// bytes, then `fchmod` and `futimens`. Returns the bytes written.
    pub(super) fn file(
        &mut self,
        rel: &Path,
        data: &mut impl Read,
        mode: u32,
        mtime: Option<u64>,
        budget: u64,
    ) -> Result<u64> {
        self.prepare_parent(rel)?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(0o600);
        let file = match self.root.open_with(rel, &opts) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(rel)?;
                self.root.open_with(rel, &opts)?
            }
            Err(e) => return Err(e.into()),
        };
        let mut file = file.into_std();
        let written = io::copy(&mut data.take(budget.saturating_add(1)), &mut file)?;
        if written > budget {
            return Err(TreeError::TooBig);
        }
        file.set_permissions(
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(self.mode(mode)),
        )?;
        if let Some(mtime) = mtime {
            let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
            filetime::set_file_handle_times(&file, Some(t), Some(t))?;
        }
        Ok(written)
    }

    pub(super) fn dir(&mut self, rel: &Path, mode: u32) -> Result<()> {
        self.prepare_parent(rel)?;
        match self.root.symlink_metadata(rel) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                self.clear(rel)?;
                self.root.create_dir(rel)?;
            }
            Err(_) => self.root.create_dir(rel)?,
        }
        // Keep the owner able to write, or later entries could not be created.
        self.root
            .set_permissions(rel, Permissions::from_mode(self.mode(mode) | 0o700))?;
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    pub(super) fn symlink(&mut self, rel: &Path, target: &Path, entry: &str) -> Result<()> {
        if !self.confined {
            self.prepare_parent(rel)?;
            self.clear(rel)?;
            // `symlink` refuses absolute targets; the link is only created
            // here, never followed, so its text is not ours to judge.
            self.root.symlink_contents(target, rel)?;
            return Ok(());
        }
        if target.is_absolute() {
            return Err(TreeError::Unsafe(format!(
                "symlink to absolute path `{}`",
                target.display()
            )));
        }
        let joined = rel.parent().unwrap_or(Path::new("")).join(target);
        if normalize(&joined).is_none() {
            return Err(TreeError::Unsafe(format!(
                "symlink to `{}` points outside the tree",
                target.display()
            )));
        }
        self.prepare_parent(rel)?;
        self.clear(rel)?;
        self.root.symlink(target, rel)?;
        self.symlinks.push((rel.to_path_buf(), entry.to_string()));
        Ok(())
    }

    /// Hard-links `rel` to the earlier entry `target`. A link to itself is a
    /// no-op when the file exists (GNU tar accepts those; kexec-tools' orig
    /// tarball has 128).
    /// A hard link to a symlink is another symlink with the same target text
    /// at another place, so it is checked at the end like any symlink.
    /// `named` is the target as the archive names it (before stripping), for messages.
    pub(super) fn hard_link(
        &mut self,
        rel: &Path,
        target: &Path,
        named: &Path,
        entry: &str,
    ) -> Result<()> {
        let missing = || {
            TreeError::Unsafe(format!(
                "hardlink to `{}`, which is not in the archive before it",
                named.display()
            ))
        };
        let mut cur = PathBuf::new();
        let comps: Vec<_> = target.components().collect();
        let mut to_symlink = false;
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let meta = self.root.symlink_metadata(&cur).map_err(|_| missing())?;
            if meta.file_type().is_symlink() && i + 1 < comps.len() {
                return Err(TreeError::Unsafe(format!(
                    "hardlink to `{}` goes through the symlink `{}`",
                    named.display(),
                    cur.display()
                )));
            }
            to_symlink = meta.file_type().is_symlink();
            if i + 1 == comps.len() && meta.is_dir() {
                return Err(TreeError::Unsafe(format!(
                    "hardlink to the directory `{}`",
                    named.display()
                )));
            }
        }
        if rel == target {
            return Ok(());
        }
        self.prepare_parent(rel)?;
        self.clear(rel)?;
        self.root.hard_link(target, &self.root, rel)?;
        if to_symlink && self.confined {
            self.symlinks.push((rel.to_path_buf(), entry.to_string()));
        }
        Ok(())
    }

    /// After the last entry: refuses (and removes) every symlink of the
    /// archive that leaves the tree when resolved physically. Returns the
    /// first such link's entry and why.
    pub(super) fn finish(&mut self) -> std::result::Result<(), (String, String)> {
        let mut first = None;
        for (rel, entry) in &self.symlinks {
            if let Err(why) = self.resolve(rel) {
                let _ = self.root.remove_file(rel);
                first.get_or_insert((entry.clone(), why));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Resolves the symlink `link` as the kernel would, beneath the root.
    /// Missing components are taken lexically (the kernel would stop there).
    fn resolve(&self, link: &Path) -> std::result::Result<(), String> {
        let mut at: Vec<OsString> = link
            .parent()
            .map(|p| p.iter().map(|c| c.to_os_string()).collect())
            .unwrap_or_default();
        let mut todo: VecDeque<OsString> = VecDeque::new();
        let mut hops = 0;
        let mut via = link.to_path_buf();
        let mut expand =
            |p: &Path, todo: &mut VecDeque<OsString>| -> std::result::Result<(), String> {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!("more than {MAX_HOPS} symlinks in a chain"));
                }
                let t = self
                    .root
                    .read_link_contents(p)
                    .map_err(|e| format!("cannot read the symlink `{}`: {e}", p.display()))?;
                if t.has_root() {
                    return Err(format!(
                        "it resolves through `{}` to the absolute path `{}`",
                        p.display(),
                        t.display()
                    ));
                }
                for c in t.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push_front(n.to_os_string()),
                        Component::ParentDir => todo.push_front("..".into()),
                        _ => {}
                    }
                }
                Ok(())
            };
        expand(link, &mut todo)?;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                if at.pop().is_none() {
                    return Err(format!(
                        "it resolves (following `{}`) to a path above the tree",
                        via.display()
                    ));
                }
                continue;
            }
            at.push(c);
            let p: PathBuf = at.iter().collect();
            if let Ok(m) = self.root.symlink_metadata(&p)
                && m.file_type().is_symlink()
            {
                at.pop();
                expand(&p, &mut todo)?;
                via = p;
            }
        }
        Ok(())
    }
}

/// What a file or directory mode from an archive becomes: permission bits
/// only. setuid, setgid and sticky are dropped, as GNU tar does for non-root.
pub(super) fn file_mode(mode: u32) -> u32 {
    mode & 0o777
}

/// The process umask, read once. Linux reports it in /proc/self/status;
/// elsewhere it is read by setting it and setting it back (a file another
/// thread creates in between would get 022; it happens once per process).
// mode_t is u32 on Linux, u16 elsewhere.
#[allow(clippy::useless_conversion)]
fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let from_proc = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            });
        from_proc.unwrap_or_else(|| {
            // SAFETY: umask(2) cannot fail and touches no memory.
            let old = unsafe { libc::umask(0o022) };
            // SAFETY: as above; restores the umask read.
            unsafe { libc::umask(old) };
            u32::from(old)
        })
    }) & 0o777
}

/// Lexically resolves `..` in a relative path; `None` if it climbs above the start.
pub(super) fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(links: &[(&str, &str)], dirs: &[&str]) -> (tempfile::TempDir, Tree) {
        let d = tempfile::tempdir().unwrap();
        let mut t = Tree::open(d.path(), crate::unpack::Origin::Source).unwrap();
        for dir in dirs {
            t.dir(Path::new(dir), 0o755).unwrap();
        }
        for (link, target) in links {
            t.symlink(Path::new(link), Path::new(target), link).unwrap();
        }
        (d, t)
    }

    #[test]
    fn physical_resolution_follows_in_tree_links() {
        let (_d, t) = tree_with(&[("a/b/up", "../.."), ("a/b/in", "up/a")], &["a/b"]);
        assert!(t.resolve(Path::new("a/b/up")).is_ok());
        assert!(t.resolve(Path::new("a/b/in")).is_ok());
        // Lexically `a/b/b`; physically `up` is the root, so `..` is above it.
        let (_d, t) = tree_with(&[("a/b/up", "../.."), ("x", "a/b/up/../b")], &["a/b"]);
        let why = t.resolve(Path::new("x")).unwrap_err();
        assert!(
            why.contains("above the tree") && why.contains("a/b/up"),
            "{why}"
        );
    }

    #[test]
    fn a_link_made_bad_by_a_later_entry_is_refused_and_removed() {
        // `x -> q/p/../..` is the root while `q/p` is a directory; the later
        // `q/p -> ../a/b/up` (the root) makes it the root's parent.
        let (d, mut t) = tree_with(&[("a/b/up", "../.."), ("x", "q/p/../..")], &["a/b", "q/p"]);
        assert!(t.finish().is_ok());
        t.symlink(Path::new("q/p"), Path::new("../a/b/up"), "q/p")
            .unwrap();
        let (entry, _) = t.finish().unwrap_err();
        assert_eq!(entry, "x");
        assert!(std::fs::symlink_metadata(d.path().join("x")).is_err());
    }

    #[test]
    fn symlink_loops_are_refused() {
        let (_d, t) = tree_with(&[("l1", "l2"), ("l2", "l1")], &[]);
        assert!(t.resolve(Path::new("l1")).unwrap_err().contains("symlinks"));
    }

    #[test]
    fn modes_lose_setuid_setgid_and_sticky() {
        assert_eq!(file_mode(0o4755), 0o755);
        assert_eq!(file_mode(0o2775), 0o775);
        assert_eq!(file_mode(0o1777), 0o777);
        assert_eq!(file_mode(0o100644), 0o644);
    }
}
