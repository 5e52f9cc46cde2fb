//! The source tree as the patcher sees it: a directory handle plus the
//! changes computed so far, written only when the whole patch applied.
//!
//! Every read and write goes through a `cap_std::fs::Dir` opened on the tree,
//! so a path is resolved beneath that directory: a symlink in the tree
//! (however chained) that leads out of it makes the operation fail instead of
//! reaching the outside. A lexical check of the patch's names (no `..`, not
//! absolute) comes first, but it cannot see symlinks, which is why the handle
//! is the real guard. Changes are kept in memory per path, so several
//! sections for one file apply in order, each to the result of the previous,
//! and a patch that fails leaves the tree untouched. Each written file goes
//! to a temporary name in its directory, is synced, then renamed over the
//! old one; a kill leaves at worst a `.…strata-patch` file and no stamp, so
//! the next build unpacks again.

use cap_std::fs::PermissionsExt as _;
use cap_std::fs::{Dir, OpenOptions, Permissions};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// A file the patcher can produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File {
        data: Vec<u8>,
        mode: u32,
    },
    /// A symbolic link and its target, stored as git stores it (the text).
    Link(Vec<u8>),
}

/// Why a path could not be used.
#[derive(Debug)]
pub enum TreeError {
    /// `..`, an absolute path, or an empty name.
    Unsafe,
    /// Resolving it through the tree's symlinks leads outside the tree.
    Escapes,
    /// A directory stands where a file is expected.
    IsDir,
    /// Neither a regular file nor a symlink (a fifo, a device).
    Special,
    /// A directory on the way is a symlink (or a file) this patch creates.
    BeyondLink,
    Io(io::Error),
}

fn classify(e: io::Error) -> TreeError {
    // cap-std reports an escape as PermissionDenied "a path led outside …";
    // openat2 with RESOLVE_BENEATH as EXDEV.
    if e.raw_os_error() == Some(libc::EXDEV)
        || (e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains("outside"))
    {
        TreeError::Escapes
    } else {
        TreeError::Io(e)
    }
}

/// Checks that `path` is a plain relative path.
pub fn check(path: &str) -> Result<&Path, TreeError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)));
    if ok { Ok(p) } else { Err(TreeError::Unsafe) }
}

pub struct Tree {
    dir: Dir,
    /// What is on disk, for every path read so far.
    disk: HashMap<String, Option<Node>>,
    /// The state after the sections applied so far.
    now: BTreeMap<String, Option<Node>>,
    /// The state at the start of the current commit, for paths the commit
    /// has changed.
    commit_base: HashMap<String, Option<Node>>,
}

impl Tree {
    pub fn open(root: &Path) -> io::Result<Tree> {
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(Tree {
            dir,
            disk: HashMap::new(),
            now: BTreeMap::new(),
            commit_base: HashMap::new(),
        })
    }

    /// Starts a new commit: `base` reads see the state from here on.
    pub fn new_commit(&mut self) {
        self.commit_base.clear();
    }

    fn read_disk(&mut self, path: &str) -> Result<Option<Node>, TreeError> {
        if let Some(n) = self.disk.get(path) {
            return Ok(n.clone());
        }
        let p = check(path)?;
        let node = match self.dir.symlink_metadata(p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => None,
            Err(e) => return Err(classify(e)),
            Ok(m) if m.is_symlink() => {
                let target = self.dir.read_link_contents(p).map_err(classify)?;
                Some(Node::Link(target.as_os_str().as_bytes().to_vec()))
            }
            Ok(m) if m.is_dir() => return Err(TreeError::IsDir),
            Ok(m) if m.is_file() => Some(Node::File {
                data: self.dir.read(p).map_err(classify)?,
                mode: m.permissions().mode() & 0o7777,
            }),
            Ok(_) => return Err(TreeError::Special),
        };
        self.disk.insert(path.to_string(), node.clone());
        Ok(node)
    }

    /// The current content of `path` (`None`: no file there).
    pub fn get(&mut self, path: &str) -> Result<Option<Node>, TreeError> {
        // The disk cannot tell that an ancestor is a link or a file the
        // patch has created; writing there would follow it at commit time.
        let mut ancestor = Path::new(path).parent();
        while let Some(a) = ancestor.filter(|a| !a.as_os_str().is_empty()) {
            if let Some(Some(_)) = a.to_str().and_then(|a| self.now.get(a)) {
                return Err(TreeError::BeyondLink);
            }
            ancestor = a.parent();
        }
        match self.now.get(path) {
            Some(n) => Ok(n.clone()),
            None => self.read_disk(path),
        }
    }

    /// The content of `path` when the current commit started.
    pub fn base(&mut self, path: &str) -> Result<Option<Node>, TreeError> {
        match self.commit_base.get(path) {
            Some(n) => Ok(n.clone()),
            None => self.get(path),
        }
    }

    /// Whether the current commit has already changed `path`.
    pub fn changed_in_commit(&self, path: &str) -> bool {
        self.commit_base.contains_key(path)
    }

    /// Records the new state of `path`.
    pub fn set(&mut self, path: &str, node: Option<Node>) -> Result<(), TreeError> {
        check(path)?;
        let before = self.get(path)?;
        self.commit_base.entry(path.to_string()).or_insert(before);
        self.now.insert(path.to_string(), node);
        Ok(())
    }

    /// Writes every change; on error, names the path that failed.
    pub fn commit(mut self) -> Result<(), (String, TreeError)> {
        let changes: Vec<(String, Option<Node>)> = std::mem::take(&mut self.now)
            .into_iter()
            .filter(|(p, n)| self.disk.get(p) != Some(n))
            .collect();
        // Removals first, so a file may replace a directory the patch emptied.
        for (path, node) in &changes {
            if node.is_none() {
                self.remove(path).map_err(|e| (path.clone(), e))?;
            }
        }
        for (path, node) in &changes {
            if let Some(node) = node {
                self.write(path, node).map_err(|e| (path.clone(), e))?;
            }
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> Result<(), TreeError> {
        let p = check(path)?;
        match self.dir.remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(classify(e)),
        }
        // Like git apply and GNU patch, drop the directories left empty.
        let mut parent = p.parent();
        while let Some(d) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if self.dir.remove_dir(d).is_err() {
                break;
            }
            parent = d.parent();
        }
        Ok(())
    }

    fn write(&self, path: &str, node: &Node) -> Result<(), TreeError> {
        let p = check(path)?;
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = parent {
            self.dir.create_dir_all(d).map_err(classify)?;
        }
        let name = p.file_name().expect("checked path has a name");
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.strata-patch", std::process::id()));
        let tmp: PathBuf = match parent {
            Some(d) => d.join(&tmp_name),
            None => PathBuf::from(&tmp_name),
        };
        match self.dir.remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(classify(e)),
            _ => {}
        }
        match node {
            Node::File { data, mode } => {
                let mut f = self
                    .dir
                    .open_with(&tmp, OpenOptions::new().write(true).create_new(true))
                    .map_err(classify)?;
                f.write_all(data).map_err(TreeError::Io)?;
                f.set_permissions(Permissions::from_std(std::fs::Permissions::from_mode(
                    mode & 0o777,
                )))
                .map_err(TreeError::Io)?;
                f.sync_all().map_err(TreeError::Io)?;
            }
            Node::Link(target) => {
                let target = std::ffi::OsStr::from_bytes(target);
                self.dir.symlink_contents(target, &tmp).map_err(classify)?;
            }
        }
        if let Err(e) = self.dir.rename(&tmp, &self.dir, p) {
            let _ = self.dir.remove_file(&tmp);
            return Err(classify(e));
        }
        Ok(())
    }
}
