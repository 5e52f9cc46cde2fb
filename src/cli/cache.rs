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
    /// Write an ed25519 key pair NAME.secret and NAME.public for signing artifacts
    Keygen {
        name: String,
        /// Directory to write the key files to
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
}

pub fn run(g: &Global, cmd: CacheCommand) -> Result<(), Failure> {
    if let CacheCommand::Keygen { name, dir } = &cmd {
        return keygen(name, dir);
    }
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
        CacheCommand::Keygen { .. } => unreachable!("handled above"),
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

fn keygen(name: &str, dir: &std::path::Path) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if name.is_empty() || name.contains([':', '/']) {
        return Err(
            anyhow::anyhow!("key name `{name}` must be non-empty, without `:` or `/`").into(),
        );
    }
    let key = crate::signing::SecretKey::generate(name).map_err(anyhow::Error::msg)?;
    let secret = dir.join(format!("{name}.secret"));
    let public = dir.join(format!("{name}.public"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .with_context(|| format!("cannot create {} (it must not exist yet)", secret.display()))?;
    writeln!(f, "{}", key.to_text()).context("writing the secret key")?;
    f.sync_all().context("writing the secret key")?;
    crate::fsutil::write_atomic(&public, format!("{}\n", key.public_text()).as_bytes())
        .context("writing the public key")?;
    println!("{}", key.public_text());
    eprintln!(
        "wrote {} (keep it secret: [cache] sign-key) and {} (add its line to [cache] trusted-keys)",
        secret.display(),
        public.display()
    );
    Ok(())
}
