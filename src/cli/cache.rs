//! `strata cache ls` and `strata cache verify`.

use super::{EXIT_FAILURE, Failure, Global};
use crate::artifact::blake3_file;
use crate::store::Store;
use anyhow::Context as _;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum CacheCommand {
    /// List the entries: key, module, version, size, files
    Ls,
    /// Re-hash every entry; exit 1 if any is corrupt
    Verify,
}

pub fn run(g: &Global, cmd: CacheCommand) -> Result<(), Failure> {
    let project = crate::manifest::load(&g.project)?;
    let store = g.local_store(&project);
    let entries = store
        .list()
        .with_context(|| format!("cannot list {}", store.describe()))?;
    match cmd {
        CacheCommand::Ls => {
            for e in &entries {
                println!(
                    "{}  {} {}  {:>12} bytes  {:>6} files",
                    &e.key[..16],
                    e.module,
                    e.version,
                    e.size,
                    e.files
                );
            }
            if !g.quiet {
                let total: u64 = entries.iter().map(|e| e.size).sum();
                eprintln!(
                    "{} entries, {total} bytes in {}",
                    entries.len(),
                    store.describe()
                );
            }
            Ok(())
        }
        CacheCommand::Verify => {
            let mut bad = 0;
            for e in &entries {
                let state = match store.archive(e) {
                    Err(err) => format!("CORRUPT: {err}"),
                    Ok(path) => match blake3_file(&path) {
                        Ok(h) if h == e.blake3 => "ok".to_string(),
                        Ok(h) => format!("CORRUPT: BLAKE3 {h}, recorded {}", e.blake3),
                        Err(err) => format!("CORRUPT: {err}"),
                    },
                };
                if state != "ok" {
                    bad += 1;
                }
                println!("{}  {} {}  {state}", &e.key[..16], e.module, e.version);
            }
            if bad > 0 {
                eprintln!(
                    "error: {bad} of {} entries are corrupt; they will be quarantined when next used",
                    entries.len()
                );
                return Err(Failure::Code(EXIT_FAILURE));
            }
            if !g.quiet {
                eprintln!("{} entries verified", entries.len());
            }
            Ok(())
        }
    }
}
