//! The errors of parsing and applying a patch.
//!
//! Every variant names the patch file and, where there is one, the file in
//! the tree, and ends with what to do next: the caller (the build) prints the
//! message as it is, so it must stand alone.

use std::fmt;
use std::io;

/// A malformed patch, located by 1-based line in the patch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

/// Why a patch did not apply. Every variant names the patch and the file.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(
        "patch {patch} is malformed at {source}\n  hint: regenerate the patch (diff -u, git diff --binary or git format-patch)"
    )]
    Parse { patch: String, source: ParseError },
    #[error(
        "patch {patch}: Only garbage was found in the patch input.\n  hint: the file holds no diff (no `---`/`+++`, `***`/`---` or `diff --git` section); check that it is the patch you meant and that it is not truncated"
    )]
    OnlyGarbage { patch: String },
    #[error(
        "patch {patch}: Reversed (or previously applied) patch detected: hunk #{hunk} ({header}) for {file} is already applied\n  hint: the source already contains this change; remove the patch from the module, or check that the tarball is the one you meant"
    )]
    Reversed {
        patch: String,
        file: String,
        hunk: usize,
        header: String,
    },
    #[error(
        "patch {patch}: Reversed (or previously applied) patch detected: it creates {file}, which already exists with the same content\n  hint: the source already contains this change; remove the patch from the module"
    )]
    AlreadyCreated { patch: String, file: String },
    #[error(
        "patch {patch}: it creates {file}, which already exists with other content\n  hint: the patch does not match this source version"
    )]
    Exists { patch: String, file: String },
    #[error("patch {patch}: {file} does not exist{}\n  hint: the patch does not match this source version", if *previously_applied { " (the patch looks previously applied)" } else { "" })]
    Missing {
        patch: String,
        file: String,
        previously_applied: bool,
    },
    #[error(
        "patch {patch}: hunk #{hunk} ({header}) does not apply to {file} (fuzz 0):\n{diff}\n  hint: refresh the patch against this source version"
    )]
    Hunk {
        patch: String,
        file: String,
        hunk: usize,
        header: String,
        diff: String,
    },
    #[error(
        "patch {patch}: deleting {file} would leave {left} bytes the patch does not remove\n  hint: the patch does not match this source version"
    )]
    NotEmptied {
        patch: String,
        file: String,
        left: usize,
    },
    #[error(
        "patch {patch}: binary patch for {file} does not apply: {reason}\n  hint: regenerate it with `git diff --binary` against this source version"
    )]
    Binary {
        patch: String,
        file: String,
        reason: String,
    },
    #[error("patch {patch}: {file} is {what}, which this patch cannot change\n  hint: {hint}")]
    Kind {
        patch: String,
        file: String,
        what: &'static str,
        hint: &'static str,
    },
    #[error(
        "patch {patch}: path `{file}` leaves the source tree\n  hint: patch paths are relative to the tree (after -pN) and may not contain `..` or start with `/`"
    )]
    UnsafePath { patch: String, file: String },
    #[error(
        "patch {patch}: path `{file}` leads outside the source tree through a symbolic link in the tree; nothing was written\n  hint: the tree holds a symlink that points out of it; fix the source archive or the patch"
    )]
    Escapes { patch: String, file: String },
    #[error(
        "patch {patch}: {file}: {source}\n  hint: check the permissions and free space of the build directory"
    )]
    Io {
        patch: String,
        file: String,
        source: io::Error,
    },
}
