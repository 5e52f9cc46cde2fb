//! Errors of `strata import heads`. Each names what failed (the Heads tree,
//! the board, the file) and what to do next; per-module and per-board
//! problems that do not stop the import are not errors but report entries.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{dir}: not a Heads tree (no {missing})\n  hint: pass the directory holding Heads's Makefile, modules/ and boards/"
    )]
    NotHeads { dir: PathBuf, missing: &'static str },
    #[error(
        "cannot run `{make}`: {source}\n  hint: install GNU make 4.0 or newer (apt-get install make), or point STRATA_MAKE at it"
    )]
    MakeMissing {
        make: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{make}` is {found}, but importing Heads needs GNU make 4.0 or newer\n  hint: install a newer GNU make, or point STRATA_MAKE at one"
    )]
    MakeTooOld { make: String, found: String },
    #[error("board {board}: no such board in {dir}/boards\n  hint: `ls {dir}/boards` lists them")]
    UnknownBoard { board: String, dir: PathBuf },
    #[error("{dir}/boards: no board found\n  hint: each board is boards/<name>/<name>.config")]
    NoBoards { dir: PathBuf },
    #[error(
        "board {board}: cannot evaluate with make: {message}\n  hint: run `make BOARD={board}` in the Heads tree to see the problem"
    )]
    Eval { board: String, message: String },
    #[error("{path}: {source}\n  hint: check the permissions of the output directory")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImportError {
        let path = path.into();
        move |source| ImportError::Io { path, source }
    }
}
