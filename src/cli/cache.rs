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
    /// Hits, misses and bytes moved by the last build (or build --check)
    Stats,
    /// Upload the artifacts of a target's built modules to the remote
    Push { names: Vec<String> },
    /// Download a target's artifacts from the remote into the local store (no build)
    Pull { names: Vec<String> },
    /// Remove least recently used entries down to --max-size, and entries unused for --max-age
    Gc {
        /// Keep at most this much (e.g. 10G, 500M, 4096)
        #[arg(long, value_parser = parse_size)]
        max_size: Option<u64>,
        /// Remove entries unused for longer (e.g. 30d, 12h, 90m)
        #[arg(long, value_parser = parse_age)]
        max_age: Option<std::time::Duration>,
        /// Prune the `[cache] remote` instead, oldest upload first (a remote
        /// records no last use); needs delete permission on the bucket
        #[arg(long)]
        remote: bool,
    },
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
        return keygen(g.json, name, dir);
    }
    let project = crate::manifest::load(&g.project)?;
    let store = g.local_store(&project);
    let entries = store
        .list()
        .with_context(|| format!("cannot list {}", store.describe()))?;
    match cmd {
        CacheCommand::Ls => ls(g, &store, &entries),
        CacheCommand::Keygen { .. } => unreachable!("handled above"),
        CacheCommand::Push { names } => transfer(g, &names, true),
        CacheCommand::Pull { names } => transfer(g, &names, false),
        CacheCommand::Stats => stats(g, &project),
        CacheCommand::Gc {
            max_size: None,
            max_age: None,
            ..
        } => Err(Failure::usage(
            "cache gc needs a limit\n  hint: pass --max-size (e.g. 10G) and/or --max-age (e.g. 30d)",
        )),
        CacheCommand::Gc {
            max_size,
            max_age,
            remote: true,
        } => remote_gc(g, &project, max_size, max_age),
        CacheCommand::Gc {
            max_size, max_age, ..
        } => gc(g, &store, max_size, max_age),
        CacheCommand::Verify => verify(g, &store, &entries),
    }
}

/// `cache ls`: one line per entry on stdout, the totals on stderr.
fn ls(
    g: &Global,
    store: &crate::store::LocalStore,
    entries: &[crate::artifact::ArtifactInfo],
) -> Result<(), Failure> {
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let unpacked: u64 = store
        .trees()
        .unwrap_or_default()
        .iter()
        .map(|(_, dir)| crate::store::LocalStore::tree_bytes(dir))
        .sum();
    // What the store's entries take on disk, counted as gc counts
    // it (records, archives and trees), so the two agree.
    let on_disk: u64 = store
        .usage()
        .map(|(uses, _)| uses.iter().map(|u| u.1).sum())
        .unwrap_or(total + unpacked);
    if g.json {
        for e in entries {
            crate::report::emit_json(
                "cache-entry",
                serde_json::json!({"key": e.key, "module": e.module, "version": e.version, "bytes": e.size, "files": e.files}),
            );
        }
        crate::report::emit_json(
            "cache-summary",
            serde_json::json!({"entries": entries.len(), "bytes": total, "unpacked-bytes": unpacked, "disk-bytes": on_disk, "store": store.describe()}),
        );
        return Ok(());
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.key[..16].to_string(),
                e.module.clone(),
                e.version.clone(),
                crate::report::human_bytes(e.size),
                crate::report::count(e.files, "file", "files"),
            ]
        })
        .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (w1, w2, w3, w4) = (width(1), width(2), width(3), width(4));
    for r in &rows {
        crate::outln!(
            "{}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4]
        );
    }
    if !g.quiet {
        crate::errln!(
            "{}, {} on disk in {} ({} archives, {} unpacked for fast restores)",
            crate::report::count(entries.len() as u64, "entry", "entries"),
            crate::report::human_bytes(on_disk),
            store.describe(),
            crate::report::human_bytes(total),
            crate::report::human_bytes(unpacked)
        );
    }
    Ok(())
}

/// `cache stats`: the hits, misses and bytes of the last build or check.
fn stats(g: &Global, project: &crate::manifest::Project) -> Result<(), Failure> {
    let path = project.state_dir().join("cache-stats.json");
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "no statistics yet ({}); run `strata build` first",
            path.display()
        )
    })?;
    let s: crate::store::Stats = serde_json::from_slice(&text)
        .with_context(|| format!("{} is unreadable", path.display()))?;
    if g.json {
        crate::report::emit_json("cache-stats", serde_json::to_value(&s).expect("json"));
    } else {
        crate::outln!(
            "last build or check: {} local hits, {} remote hits, {} misses",
            s.local_hits,
            s.remote_hits,
            s.misses
        );
        crate::outln!(
            "                      {} downloaded, {} uploaded, {} artifacts saved",
            crate::report::human_bytes(s.bytes_downloaded),
            crate::report::human_bytes(s.bytes_uploaded),
            s.artifacts_saved
        );
    }
    Ok(())
}

/// `cache verify`: every entry's archive against its BLAKE3, and its tree.
fn verify(
    g: &Global,
    store: &crate::store::LocalStore,
    entries: &[crate::artifact::ArtifactInfo],
) -> Result<(), Failure> {
    let mut bad = 0;
    for e in entries {
        let state = match store.archive(e) {
            Err(err) => format!("CORRUPT: {err}"),
            Ok(path) => match blake3_file(&path) {
                Ok(h) if h == e.blake3 => tree_state(store, e),
                Ok(h) => format!("CORRUPT: BLAKE3 {h}, recorded {}", e.blake3),
                Err(err) => format!("CORRUPT: {err}"),
            },
        };
        if !state.starts_with("ok") {
            bad += 1;
        }
        if g.json {
            crate::report::emit_json(
                "cache-verified",
                serde_json::json!({
                    "key": e.key, "module": e.module, "version": e.version,
                    "ok": state.starts_with("ok"),
                    "error": state.strip_prefix("CORRUPT: "),
                    "tree": state.strip_prefix("ok").map(|t| t.trim_start_matches([';', ' '])).filter(|t| !t.is_empty()),
                }),
            );
        } else {
            crate::outln!("{}  {} {}  {state}", &e.key[..16], e.module, e.version);
        }
    }
    if bad > 0 {
        crate::errln!(
            "error: {bad} of {} corrupt; they will be quarantined when next used",
            crate::report::count(entries.len() as u64, "entry is", "entries are")
        );
        return Err(Failure::Code(EXIT_FAILURE));
    }
    if !g.quiet {
        crate::errln!(
            "{} verified",
            crate::report::count(entries.len() as u64, "entry", "entries")
        );
    }
    Ok(())
}

/// `ok`, after checking the entry's unpacked tree (if any) against its
/// manifest. A damaged tree is removed (the archive is fine and the next
/// restore makes the tree again), so it does not count as corruption.
fn tree_state(store: &crate::store::LocalStore, info: &crate::artifact::ArtifactInfo) -> String {
    let damage = match store.open_tree(info) {
        Ok(None) => return "ok".to_string(),
        Ok(Some(tree)) => match crate::store::materialise::verify(&tree) {
            Ok(()) => return "ok (and its unpacked tree)".to_string(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    match store.discard_tree(info) {
        Ok(()) => format!(
            "ok; its unpacked tree was damaged ({damage}) and was removed: the next restore makes it again"
        ),
        Err(err) => format!(
            "ok; its unpacked tree is damaged ({damage}) and could not be removed ({err}); restores will replace it"
        ),
    }
}

fn keygen(json: bool, name: &str, dir: &std::path::Path) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if name.is_empty() || name.contains([':', '/']) {
        return Err(Failure::usage(format!(
            "key name `{name}` must be non-empty, without `:` or `/`\n  hint: name the key after its owner, e.g. `strata cache keygen ci`"
        )));
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
    if json {
        crate::report::emit_json(
            "keygen",
            serde_json::json!({
                "name": name, "public-key": key.public_text(),
                "secret-file": secret, "public-file": public,
            }),
        );
        return Ok(());
    }
    crate::outln!("{}", key.public_text());
    crate::errln!(
        "wrote {} (keep it secret: [cache] sign-key) and {} (add its line to [cache] trusted-keys)",
        secret.display(),
        public.display()
    );
    Ok(())
}

/// What a prune did.
struct Pruned {
    removed: usize,
    freed: u64,
    kept: usize,
    total: u64,
}

/// Removes from `store` the entries of `entries` unused for longer than
/// `max_age`, then the least recently used until at most `max_size` is left.
fn prune(
    store: &dyn Store,
    mut entries: Vec<crate::store::EntryUse>,
    max_size: Option<u64>,
    max_age: Option<std::time::Duration>,
) -> anyhow::Result<Pruned> {
    entries.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    let now = std::time::SystemTime::now();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    let (mut removed, mut freed) = (0usize, 0u64);
    for (key, size, used) in &entries {
        let too_old = max_age.is_some_and(|a| now.duration_since(*used).unwrap_or_default() > a);
        let too_big = max_size.is_some_and(|m| total > m);
        if !too_old && !too_big {
            continue;
        }
        store
            .remove(key)
            .with_context(|| format!("removing entry {key}"))?;
        total -= size;
        freed += size;
        removed += 1;
    }
    Ok(Pruned {
        removed,
        freed,
        kept: entries.len() - removed,
        total,
    })
}

/// Prunes the remote. A remote records no last use, so the upload time
/// stands for it. The record goes first: a reader racing with the removal
/// finds the record gone, or the archive missing, which is a miss.
fn remote_gc(
    g: &Global,
    project: &crate::manifest::Project,
    max_size: Option<u64>,
    max_age: Option<std::time::Duration>,
) -> Result<(), Failure> {
    let remote = g.remote_store(project)?.ok_or_else(|| {
        Failure::usage(
            "no remote to prune\n  hint: set `[cache] remote` in strata.toml, or drop --remote to prune the local store",
        )
    })?;
    let entries = remote
        .list()
        .with_context(|| format!("cannot list {}", remote.describe()))?
        .into_iter()
        .map(|e| {
            let uploaded = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.created);
            (e.key, e.size, uploaded)
        })
        .collect();
    let p = prune(remote.as_ref(), entries, max_size, max_age)?;
    report_gc(g, &p, &remote.describe(), 0);
    Ok(())
}

fn gc(
    g: &Global,
    store: &crate::store::LocalStore,
    max_size: Option<u64>,
    max_age: Option<std::time::Duration>,
) -> Result<(), Failure> {
    let _lock = store.lock(true).context("cannot lock the cache for gc")?;
    let (entries, orphans) = store.usage().context("cannot read the cache")?;
    for o in &orphans {
        crate::fsutil::remove_all(o).with_context(|| format!("removing {}", o.display()))?;
    }
    let p = prune(store, entries, max_size, max_age)?;
    report_gc(g, &p, &store.describe(), orphans.len());
    Ok(())
}

/// What a gc did: one JSON event, or one line.
fn report_gc(g: &Global, p: &Pruned, store: &str, orphans: usize) {
    if g.json {
        crate::report::emit_json(
            "cache-gc",
            serde_json::json!({
                "store": store, "removed": p.removed, "freed-bytes": p.freed,
                "orphans": orphans, "kept": p.kept, "kept-bytes": p.total,
            }),
        );
    } else if !g.quiet {
        crate::errln!(
            "     Removed {} ({}) and {} from {store}; {} ({} on disk) kept",
            crate::report::count(p.removed as u64, "entry", "entries"),
            crate::report::human_bytes(p.freed),
            crate::report::count(orphans as u64, "orphaned file", "orphaned files"),
            crate::report::count(p.kept as u64, "entry", "entries"),
            crate::report::human_bytes(p.total)
        );
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size unit `{c}` (use K, M, G or T)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 10G"))?;
    Ok((n * mult as f64) as u64)
}

fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{s}` is not an age like 30d, 12h, 90m or 3600s")),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not an age like 30d"))?;
    Ok(std::time::Duration::from_secs(n * secs))
}

/// `cache push` / `cache pull` for the closure of `names`.
fn transfer(g: &Global, names: &[String], push: bool) -> Result<(), Failure> {
    let l = g.load()?;
    let inst = g.instances(&l, names)?;
    let closure = inst.graph.closure(&inst.selection());
    let cache = g.cache(&l.project)?;
    if l.project.settings.cache_remote.is_none() || (push && !cache.can_push()) {
        return Err(Failure::usage(format!(
            "no {} remote cache\n  hint: set [cache] remote = \"s3://bucket/prefix\" (or file:///dir) in strata.toml",
            if push { "writable" } else { "" }
        )));
    }
    let _lock = cache.local.lock(false).context("cannot lock the cache")?;
    let reporter = g.reporter();
    let failed = std::cell::Cell::new(false);
    let warn = |m: &str| {
        failed.set(true);
        crate::errln!("warning: {m}");
    };
    let mut done = 0;
    for &i in &closure {
        let it = &inst.list[i];
        let m = it.module(&l.project);
        let key = inst.keys[i].install_key();
        if push {
            let info = cache.local.lookup(key).ok().flatten();
            match info.and_then(|info| cache.local.archive(&info).ok().map(|p| (info, p))) {
                Some((info, path)) => cache.save(&info, &path, &warn),
                None => {
                    let state = it.state(&l.project);
                    if crate::fingerprint::stamp_key(&state, crate::fingerprint::Step::Install)
                        .as_deref()
                        != Some(key)
                    {
                        warn(&format!(
                            "module {} is not built at its current key; run `strata build` first",
                            it.label
                        ));
                        continue;
                    }
                    let packed = crate::exec::pack_module(&l.project, it, key, 2, &|_| {})
                        .map_err(anyhow::Error::msg)?;
                    cache.save(&packed.info, packed.archive.path(), &warn);
                }
            }
            done += 1;
        } else if cache
            .find(key, &m.name, &warn, &|done, total| {
                reporter.event(crate::report::Event::Transfer {
                    module: &m.name,
                    what: "download",
                    done,
                    total: Some(total),
                })
            })
            .is_some()
        {
            reporter.clear(&m.name);
            done += 1;
        } else {
            warn(&format!("module {}: not in any cache", m.name));
        }
    }
    let s = cache.stats();
    if !g.quiet {
        if push {
            crate::errln!(
                "      Pushed {done} of {} ({} bytes uploaded)",
                crate::report::count(closure.len() as u64, "module", "modules"),
                s.bytes_uploaded
            );
        } else {
            crate::errln!(
                "      Pulled {done} of {} ({} bytes downloaded)",
                crate::report::count(closure.len() as u64, "module", "modules"),
                s.bytes_downloaded
            );
        }
    }
    if failed.get() {
        return Err(Failure::Code(EXIT_FAILURE));
    }
    Ok(())
}
