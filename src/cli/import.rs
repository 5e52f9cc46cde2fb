//! `strata import heads`: the command-line edge of [`crate::import`].
//! A board that stops with `$(error …)` is reported, not a failure of the
//! import, unless every board does (exit 1, nothing written); `--check`
//! exits 1 when the project differs from the Heads tree.

use super::{EXIT_FAILURE, Failure, Global};
use crate::import::{self, Options};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    what: ImportCommand,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Turn a Heads tree (Makefile, modules/, boards/) into a strata project;
    /// runs the tree's Makefile code
    ///
    /// The import runs the tree's Makefile code: GNU make evaluates the
    /// Makefile, modules/ and the board configs, `$(shell …)` calls
    /// included, with your user's rights (as `make` in the tree would; no
    /// target is built). It runs in a temporary copy of the tree, so the
    /// tree itself is never written to; whatever the code wrote into the
    /// copy is listed in the report. Import only trees you would build.
    /// Exits 1 when no board could be evaluated (nothing is written then).
    Heads {
        /// The Heads tree
        heads_dir: PathBuf,
        /// Output directory (default: HEADS_DIR/strata)
        #[arg(short = 'o', long = "output", alias = "out", value_name = "DIR")]
        output: Option<PathBuf>,
        /// Import only these boards (repeatable; default: every board)
        #[arg(long = "board", value_name = "B")]
        boards: Vec<String>,
        /// Write nothing; exit 1 listing what would change
        #[arg(long)]
        check: bool,
    },
}

pub fn run(g: &Global, args: ImportArgs) -> Result<(), Failure> {
    let ImportCommand::Heads {
        heads_dir,
        output,
        boards,
        check,
    } = args.what;
    let opts = Options {
        heads: heads_dir,
        out: output,
        boards,
        check,
    };
    let outcome = import::import(&opts).map_err(anyhow::Error::from)?;
    let r = &outcome.report;
    if g.json {
        let mut v = serde_json::to_value(r).map_err(anyhow::Error::from)?;
        v["drifted"] = serde_json::Value::Bool(outcome.drifted);
        crate::report::emit_json("import-report", v);
    } else if !g.quiet || (check && outcome.drifted) {
        crate::out!("{}", r.to_text());
        if check {
            if outcome.drifted {
                crate::outln!(
                    "the project differs from the Heads tree: run `strata import heads` without --check to update it"
                );
            } else {
                crate::outln!("the project is up to date with the Heads tree");
            }
        }
    }
    if r.boards_imported() == 0 {
        return Err(Failure::Other(anyhow::anyhow!(
            "no board of {} could be evaluated; nothing was written\n  hint: the report above gives each board's error; run `make BOARD=<board>` in the tree to see it",
            r.heads
        )));
    }
    if check && outcome.drifted {
        return Err(Failure::Code(EXIT_FAILURE));
    }
    Ok(())
}
