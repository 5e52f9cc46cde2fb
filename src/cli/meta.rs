//! `strata completions SHELL` and `strata man`: generated from the clap
//! definition itself, so they can never disagree with the binary.

use super::{Cli, Failure};
use clap::CommandFactory;

/// Shell completions for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "strata", &mut buf);
    crate::out!("{}", String::from_utf8_lossy(&buf));
    Ok(())
}

/// The man page (roff) on stdout: `strata man > strata.1`.
pub fn man() -> Result<(), Failure> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| Failure::Other(e.into()))?;
    crate::out!("{}", String::from_utf8_lossy(&buf));
    Ok(())
}
