//! Times strata's module restore from the local store, driven by
//! `bench/restore.sh`, which compares it with `zstd -dc | tar -x` and
//! `cp -a` on the same tree.
//!
//! Usage:
//!   restore prepare MODULE_DIR STORE_DIR   pack MODULE_DIR (its
//!       `.strata/destdir` plus the keep path `out`) into a local store at
//!       STORE_DIR, restore it once (which makes the tree); prints the archive
//!       and the seconds that first restore took
//!   restore run STORE_DIR DEST MODE        restore into the new dir DEST
//!       through `Cache::restore_into`, as `strata build` does, with MODE
//!       auto | archive; prints `seconds reflinked copied`

use std::path::Path;
use std::time::Instant;
use strata::artifact::{self, ArtifactInfo};
use strata::store::{Cache, LocalStore, RestoreMode, Store};

const MODULE: &str = "bench";

fn key() -> String {
    "0".repeat(64)
}

fn cache(store: &Path, mode: RestoreMode) -> Cache {
    Cache::new(LocalStore::new(store.to_path_buf()), None, false).with_restore_mode(mode)
}

fn restore(store: &Path, dest: &Path, mode: RestoreMode) -> (f64, String) {
    std::fs::create_dir(dest).expect("dest must not exist");
    let warn = |m: &str| eprintln!("warning: {m}");
    let t = Instant::now();
    let hit = cache(store, mode)
        .restore_into(
            &key(),
            MODULE,
            dest,
            Default::default(),
            &warn,
            &|_, _, _| {},
        )
        .expect("restore")
        .expect("the store has the entry");
    let secs = t.elapsed().as_secs_f64();
    let c = hit.counts.unwrap_or_default();
    (secs, format!("{} {}", c.reflinked, c.copied))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("prepare") => {
            let (tree, store) = (Path::new(&args[1]), Path::new(&args[2]));
            let info = ArtifactInfo::to_pack(MODULE, "1", &key());
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            let packed = artifact::pack(
                &tree.join(".strata/destdir"),
                tree,
                &["out".to_string()],
                info,
                &store.join("tmp"),
                threads,
            )
            .expect("pack");
            let local = LocalStore::new(store.to_path_buf());
            local.put(&packed.info, packed.archive.path()).expect("put");
            let scratch = store.join("first-restore");
            let (first, _) = restore(store, &scratch, RestoreMode::Auto);
            std::fs::remove_dir_all(&scratch).expect("cleanup");
            let archive = local.archive(&packed.info).expect("archive");
            println!("{} {first}", archive.display());
        }
        Some("run") => {
            let mode = match args[3].as_str() {
                "auto" => RestoreMode::Auto,
                "archive" => RestoreMode::Archive,
                m => panic!("unknown mode {m}"),
            };
            let (secs, counts) = restore(Path::new(&args[1]), Path::new(&args[2]), mode);
            println!("{secs} {counts}");
        }
        _ => {
            eprintln!("usage: prepare MODULE_DIR STORE_DIR | run STORE_DIR DEST auto|archive");
            std::process::exit(2);
        }
    }
}
