//! In-process patching with fuzz 0, as GNU `patch -p1 --fuzz=0` and
//! `git apply --binary` do it.
//!
//! Each hunk must match the file exactly; like GNU patch with `-F0` it may be
//! found at an offset from the line the header names, never with fewer
//! context lines. A hunk that does not apply forward but whose result is
//! already in the file is reported as GNU patch reports it, "Reversed (or
//! previously applied) patch detected", and is an **error**: strata only
//! patches freshly extracted trees, so such a tree means the upstream tarball
//! already contains the change, and skipping or reversing would hide that.
//! Nothing is ever asked on stdin and no `patch` or `git` program is run.
//! Each patch applies atomically: every file is computed in memory first and
//! written only if all sections applied, and every access goes through a
//! directory handle on the tree, so symlinks in the tree cannot lead a read
//! or a write outside it.
//!
//! Files: `parse` (sections and headers), `path` (names, quoting, `-pN`,
//! epoch timestamps), `hunk` (text hunks and matching), `context` (`diff -c`
//! hunks), `binary` (git binary data), `blob_id` (git's SHA-1 blob ids), `tree` (the directory handle and the
//! pending changes), `apply` (what each kind of section does), `error`.

mod apply;
mod binary;
mod blob_id;
mod context;
mod error;
mod hunk;
mod parse;
mod path;
mod tree;

pub use apply::{Applied, apply_patch, apply_patch_with};
pub use error::{ParseError, PatchError};
pub use hunk::{Hunk, HunkLine};
pub use parse::{Change, FilePatch, parse};
