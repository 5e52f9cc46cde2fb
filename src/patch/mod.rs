//! In-process patching with fuzz 0.
//!
//! Each hunk must match the file exactly; like GNU patch with `-F0` it may be
//! found at an offset from the line the header names, never with fewer
//! context lines. A hunk that does not apply forward but whose result is
//! already in the file is reported as GNU patch reports it, "Reversed (or
//! previously applied) patch detected", and is an **error**: strata only
//! patches freshly extracted trees, so such a tree means the upstream tarball
//! already contains the change, and skipping or reversing would hide that.
//! Nothing is ever asked on stdin. Each patch applies atomically: every file
//! is computed in memory first and written only if all hunks applied.

mod apply;
mod parse;

pub use apply::{PatchError, apply_patch};
pub use parse::{Change, FilePatch, Hunk, HunkLine, ParseError, parse};
