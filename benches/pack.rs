//! Times strata's artifact pack and restore on a given tree; driven by
//! `bench/pack.sh`, which compares against GNU tar + zstd and gzip.
//!
//! Usage: pack MODULE_DIR OUT_DIR  |  restore ARCHIVE DEST_DIR
//! Prints `seconds bytes` on stdout.

use std::path::Path;
use std::time::Instant;
use strata::artifact::{self, ArtifactInfo};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("pack") => {
            let info = ArtifactInfo::to_pack("bench", "1", &"0".repeat(64));
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            let t = Instant::now();
            let tree = Path::new(&args[1]);
            let packed = artifact::pack(
                &tree.join(".strata/destdir"),
                tree,
                &[],
                info,
                Path::new(&args[2]),
                threads,
            )
            .expect("pack");
            let secs = t.elapsed().as_secs_f64();
            let out = Path::new(&args[2]).join("strata.tar.zst");
            packed.archive.persist(&out).expect("persist");
            println!("{secs} {}", packed.info.size);
        }
        Some("restore") => {
            let dest = Path::new(&args[2]);
            std::fs::create_dir_all(dest).expect("dest");
            let t = Instant::now();
            strata::unpack::extract(Path::new(&args[1]), dest, 0).expect("restore");
            println!("{} 0", t.elapsed().as_secs_f64());
        }
        _ => {
            eprintln!("usage: pack MODULE_DIR OUT_DIR | restore ARCHIVE DEST_DIR");
            std::process::exit(2);
        }
    }
}
