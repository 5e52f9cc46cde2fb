//! Applying a parsed patch to a tree, section by section, in order.
//!
//! The decisions a reader may question:
//! - Sections apply in the order of the patch, each to the result of the
//!   ones before (two commits of `git format-patch --stdout` touching one file
//!   are two sections for it). Renames and copies are the exception git
//!   makes: within one commit they read their source as it was when the
//!   commit started, since git lists a modified file before a copy made from
//!   its old content.
//! - Creation is recognised from `/dev/null`, an epoch timestamp, git's
//!   `new file mode`, or a single `@@ -0,0` hunk for a file that does not
//!   exist (the traditional `dir.orig/f` form); deletion from `/dev/null`,
//!   an epoch timestamp or `deleted file mode`, and the file must end empty.
//! - A patch that creates a file which already holds the result, or whose
//!   hunks are already in the file, is "Reversed (or previously applied)":
//!   an error, never a skip and never a reversal.
//! - An empty patch file (0 bytes) is a no-op with a warning, as GNU patch
//!   (exit 0) and quilt ("appears to be empty; applied") take it: Debian's
//!   procps 4.0.2 series holds one. A file that holds bytes but no diff is
//!   still "Only garbage was found in the patch input", as in GNU patch.
//! - A symlink (mode 120000) is its target text, as git stores it; it is
//!   created as a real symlink, and since every later access goes through the
//!   tree's directory handle, a link pointing out of the tree cannot be
//!   followed by a write.

use super::binary::{self, BinaryHunk};
use super::blob_id;
use super::error::PatchError;
use super::hunk::apply_hunks;
use super::parse::{Change, FilePatch, parse};
use super::tree::{Node, Tree, TreeError};
use std::path::Path;

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// What applying one patch file did, beyond changing the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Messages for the user, each naming the patch (an empty patch file).
    pub warnings: Vec<String>,
}

/// Applies the patch file `bytes` (named `patch` in messages) to `tree`
/// with `-p1`.
pub fn apply_patch(tree: &Path, patch: &str, bytes: &[u8]) -> Result<Applied, PatchError> {
    apply_patch_with(tree, patch, bytes, 1)
}

/// Applies the patch file `bytes` to `tree`, stripping `strip` leading
/// directories from its names (`-pN`). Nothing is written unless every
/// section applies.
pub fn apply_patch_with(
    tree: &Path,
    patch: &str,
    bytes: &[u8],
    strip: usize,
) -> Result<Applied, PatchError> {
    if bytes.is_empty() {
        return Ok(Applied {
            warnings: vec![format!(
                "patch {patch} is empty (0 bytes): nothing applied, as GNU patch and quilt do\n  \
                 hint: remove it from the series if it is not meant to be empty"
            )],
        });
    }
    let files = parse(bytes, strip).map_err(|source| PatchError::Parse {
        patch: patch.to_string(),
        source,
    })?;
    if files.is_empty() {
        return Err(PatchError::OnlyGarbage {
            patch: patch.to_string(),
        });
    }
    let mut t = Tree::open(tree).map_err(|source| PatchError::Io {
        patch: patch.to_string(),
        file: tree.display().to_string(),
        source,
    })?;
    let mut commit = files[0].commit;
    for fp in &files {
        if fp.commit != commit {
            t.new_commit();
            commit = fp.commit;
        }
        Section {
            t: &mut t,
            patch,
            fp,
        }
        .apply()?;
    }
    t.commit()
        .map_err(|(file, e)| tree_error(patch, &file, e))?;
    Ok(Applied::default())
}

fn tree_error(patch: &str, file: &str, e: TreeError) -> PatchError {
    let patch = patch.to_string();
    let file = file.to_string();
    match e {
        TreeError::Unsafe => PatchError::UnsafePath { patch, file },
        TreeError::Escapes => PatchError::Escapes { patch, file },
        TreeError::IsDir => PatchError::Kind {
            patch,
            file,
            what: "a directory",
            hint: "the patch expects a file there; it does not match this source version",
        },
        TreeError::Special => PatchError::Kind {
            patch,
            file,
            what: "neither a regular file nor a symlink",
            hint: "remove the special file from the source or the section from the patch",
        },
        TreeError::BeyondLink => PatchError::Kind {
            patch,
            file,
            what: "beneath a symlink or file that this patch creates",
            hint: "a patch may not write through a link it makes (git apply refuses it too); split the patch or fix its paths",
        },
        TreeError::Io(source) => PatchError::Io {
            patch,
            file,
            source,
        },
    }
}

struct Section<'a> {
    t: &'a mut Tree,
    patch: &'a str,
    fp: &'a FilePatch,
}

impl Section<'_> {
    fn p(&self) -> String {
        self.patch.to_string()
    }

    fn get(&mut self, path: &str) -> Result<Option<Node>, PatchError> {
        self.t
            .get(path)
            .map_err(|e| tree_error(self.patch, path, e))
    }

    fn set(&mut self, path: &str, node: Option<Node>) -> Result<(), PatchError> {
        self.t
            .set(path, node)
            .map_err(|e| tree_error(self.patch, path, e))
    }

    /// The bytes the patch works on: a file's content or a link's target.
    fn content(&self, path: &str, node: &Node) -> Result<Vec<u8>, PatchError> {
        match node {
            Node::File { data, .. } => Ok(data.clone()),
            Node::Link(_) if !self.fp.git => Err(PatchError::Kind {
                patch: self.p(),
                file: path.to_string(),
                what: "a symbolic link",
                hint: "a plain diff cannot change a symlink (GNU patch refuses it too); use a git diff",
            }),
            Node::Link(target) => Ok(target.clone()),
        }
    }

    /// Runs the section's hunks (or binary data) over `old`.
    fn body(&self, path: &str, old: &[u8]) -> Result<Vec<u8>, PatchError> {
        let Some(bin) = &self.fp.binary else {
            return apply_hunks(self.patch, path, old, &self.fp.hunks);
        };
        let fail = |reason: String| PatchError::Binary {
            patch: self.p(),
            file: path.to_string(),
            reason,
        };
        // A binary hunk has no context: the full blob ids of the `index`
        // line are what tells the right file from another (git apply checks
        // them the same way).
        let ids = self
            .fp
            .index
            .as_ref()
            .filter(|(a, z)| blob_id::is_full(a) && blob_id::is_full(z));
        // An all-zero id is "no file" (creation, deletion): empty content.
        let id = |content: &[u8], of: &str| {
            if of.bytes().all(|b| b == b'0') && content.is_empty() {
                of.to_string()
            } else {
                blob_id::blob_id(content)
            }
        };
        if let Some((want, result)) = ids {
            let have = id(old, want);
            if id(old, result) == *result && want != result {
                return Err(fail(
                    "the file already holds the patched content: Reversed (or previously applied) patch detected".into(),
                ));
            }
            if have != *want {
                return Err(fail(format!(
                    "the patch applies to blob {want}, the file is blob {have}"
                )));
            }
        }
        let new = match bin {
            BinaryHunk::Literal(new) => new.clone(),
            BinaryHunk::Delta(delta) => binary::apply_delta(old, delta).map_err(fail)?,
        };
        if let Some((_, result)) = ids
            && id(&new, result) != *result
        {
            return Err(fail(format!(
                "the result is not blob {result}: the patch is corrupt"
            )));
        }
        Ok(new)
    }

    /// The node the section leaves, given the node it started from.
    fn node(&self, data: Vec<u8>, before: Option<&Node>) -> Node {
        match (self.fp.new_mode, before) {
            (Some(m), _) if m & S_IFMT == S_IFLNK => Node::Link(data),
            (Some(m), _) => Node::File {
                data,
                mode: m & 0o777,
            },
            (None, Some(Node::Link(_))) => Node::Link(data),
            (None, Some(Node::File { mode, .. })) => Node::File { data, mode: *mode },
            (None, None) => Node::File { data, mode: 0o644 },
        }
    }

    /// Whether the section is a single `@@ -0,0` hunk: a traditional creation.
    fn creates_traditionally(&self) -> bool {
        self.fp.binary.is_none() && self.fp.hunks.len() == 1 && self.fp.hunks[0].creates()
    }

    fn create(&mut self, path: &str) -> Result<(), PatchError> {
        let new = self.body(path, &[])?;
        let node = self.node(new, None);
        if let Some(existing) = self.get(path)? {
            return Err(
                if existing == node
                    || self.content(path, &existing).ok() == Some(self.body(path, &[])?)
                {
                    PatchError::AlreadyCreated {
                        patch: self.p(),
                        file: path.to_string(),
                    }
                } else {
                    PatchError::Exists {
                        patch: self.p(),
                        file: path.to_string(),
                    }
                },
            );
        }
        if let Node::Link(target) = &node
            && (target.is_empty() || target.contains(&0))
        {
            return Err(PatchError::Kind {
                patch: self.p(),
                file: path.to_string(),
                what: "a symlink with an empty or NUL-holding target",
                hint: "the patch is corrupt; regenerate it",
            });
        }
        self.set(path, Some(node))
    }

    fn apply(mut self) -> Result<(), PatchError> {
        let fp = self.fp;
        match fp.change {
            Change::Create => {
                let path = fp.new_path.clone().expect("create has a new path");
                self.create(&path)
            }
            Change::Delete => {
                let path = fp.old_path.clone().expect("delete has an old path");
                let Some(node) = self.get(&path)? else {
                    return Err(PatchError::Missing {
                        patch: self.p(),
                        file: path,
                        previously_applied: true,
                    });
                };
                let old = self.content(&path, &node)?;
                let rest = if fp.hunks.is_empty() && fp.binary.is_none() {
                    old
                } else {
                    self.body(&path, &old)?
                };
                if !rest.is_empty() {
                    return Err(PatchError::NotEmptied {
                        patch: self.p(),
                        file: path,
                        left: rest.len(),
                    });
                }
                self.set(&path, None)
            }
            Change::Modify => {
                let old_path = fp.old_path.clone().expect("modify has an old path");
                let new_path = fp.new_path.clone().unwrap_or_else(|| old_path.clone());
                let mut found = self.get(&old_path)?.map(|n| (old_path.clone(), n));
                if !fp.git && new_path != old_path {
                    // GNU patch's choice among the names that exist: fewest
                    // components, then shortest base name, then shortest.
                    let other = self.get(&new_path)?.map(|n| (new_path.clone(), n));
                    let rank = |p: &str| {
                        let base = p.rsplit('/').next().unwrap_or(p).len();
                        (p.split('/').count(), base, p.len())
                    };
                    found = match (found, other) {
                        (Some(a), Some(b)) if rank(&b.0) < rank(&a.0) => Some(b),
                        (Some(a), _) => Some(a),
                        (None, b) => b,
                    };
                }
                let Some((path, node)) = found else {
                    if self.creates_traditionally() {
                        return self.create(&new_path);
                    }
                    return Err(PatchError::Missing {
                        patch: self.p(),
                        file: old_path,
                        previously_applied: false,
                    });
                };
                let old = self.content(&path, &node)?;
                if self.creates_traditionally() && !old.is_empty() {
                    return self.create(&path);
                }
                let new = if fp.hunks.is_empty() && fp.binary.is_none() {
                    old.clone()
                } else {
                    self.body(&path, &old)?
                };
                if matches!(fp.binary, Some(BinaryHunk::Literal(_))) && new == old {
                    return Err(PatchError::Binary {
                        patch: self.p(),
                        file: path,
                        reason: "the file already holds the patched content: Reversed (or previously applied) patch detected".into(),
                    });
                }
                let node = self.node(new, Some(&node));
                self.set(&path, Some(node))
            }
            Change::Rename | Change::Copy => {
                let src = fp.old_path.clone().expect("rename has a source");
                let dst = fp.new_path.clone().expect("rename has a target");
                let base = self
                    .t
                    .base(&src)
                    .map_err(|e| tree_error(self.patch, &src, e))?;
                let Some(node) = base else {
                    let applied = self.get(&dst)?.is_some();
                    return Err(PatchError::Missing {
                        patch: self.p(),
                        file: src,
                        previously_applied: applied,
                    });
                };
                if dst != src && self.get(&dst)?.is_some() {
                    return Err(PatchError::Exists {
                        patch: self.p(),
                        file: dst,
                    });
                }
                let old = self.content(&src, &node)?;
                let new = if fp.hunks.is_empty() && fp.binary.is_none() {
                    old
                } else {
                    self.body(&src, &old)?
                };
                let node = self.node(new, Some(&node));
                if fp.change == Change::Rename && !self.t.changed_in_commit(&src) {
                    self.set(&src, None)?;
                }
                self.set(&dst, Some(node))
            }
        }
    }
}
