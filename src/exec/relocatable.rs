//! After install: which staged files embed an absolute path of the build
//! (the module's build dir, its sysroot, its host prefix). Such an artifact
//! is not relocatable: restored on another machine or into another checkout
//! it points at a directory that does not exist there.
//!
//! The decision a reader would question: this only warns. Many real builds
//! embed their build dir in debug info or a libtool `.la` file and still work
//! when restored; refusing them would refuse coreboot. Cost is bounded: each
//! file is read in 1 MiB chunks and at most [`MAX_FILE_BYTES`] of it, and
//! the scan stops at the first match per file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The bytes read per file at most; larger files are scanned up to here.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

const CHUNK: usize = 1 << 20;

/// Files under `root` (relative paths, sorted) whose content or symlink
/// target contains one of `needles`.
pub fn scan(root: &Path, needles: &[PathBuf]) -> io::Result<Vec<String>> {
    let needles: Vec<&[u8]> = needles
        .iter()
        .map(|n| n.as_os_str().as_bytes())
        .filter(|n| n.len() > 1)
        .collect();
    let mut hits = Vec::new();
    if needles.is_empty() || !root.is_dir() {
        return Ok(hits);
    }
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let path = e.path();
            let ft = e.file_type()?;
            let found = if ft.is_dir() {
                todo.push(path.clone());
                false
            } else if ft.is_symlink() {
                let target = fs::read_link(&path)?;
                needles
                    .iter()
                    .any(|n| find(target.as_os_str().as_bytes(), n).is_some())
            } else if ft.is_file() {
                file_contains(&path, &needles)?
            } else {
                false
            };
            if found {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                hits.push(rel.display().to_string());
            }
        }
    }
    hits.sort();
    Ok(hits)
}

/// Whether the first [`MAX_FILE_BYTES`] of `path` contain a needle. Chunks
/// overlap by the longest needle, so a match across a boundary is found.
fn file_contains(path: &Path, needles: &[&[u8]]) -> io::Result<bool> {
    let longest = needles.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut f = File::open(path)?.take(MAX_FILE_BYTES);
    let mut buf = vec![0u8; CHUNK + longest];
    let mut kept = 0usize;
    loop {
        let n = f.read(&mut buf[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let filled = kept + n;
        if needles.iter().any(|nd| find(&buf[..filled], nd).is_some()) {
            return Ok(true);
        }
        kept = longest.saturating_sub(1).min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let at = from
            + hay[from..=hay.len() - needle.len()]
                .iter()
                .position(|&b| b == first)?;
        if &hay[at + 1..at + needle.len()] == rest {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_handles_edges() {
        assert_eq!(find(b"abc/x/y", b"/x/y"), Some(3));
        assert_eq!(find(b"/x/", b"/x/y"), None);
        assert_eq!(find(b"", b"/x"), None);
        assert_eq!(find(b"//x", b"/x"), Some(1));
    }

    #[test]
    fn finds_paths_in_content_across_chunks_and_in_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let needle = PathBuf::from("/work/checkout/build/m-1.0");
        fs::create_dir_all(root.join("lib/pkgconfig")).unwrap();
        fs::write(
            root.join("lib/pkgconfig/m.pc"),
            "prefix=/work/checkout/build/m-1.0/x\n",
        )
        .unwrap();
        // A match straddling the 1 MiB chunk boundary.
        let mut big = vec![b'.'; CHUNK - 5];
        big.extend_from_slice(needle.as_os_str().as_bytes());
        big.extend_from_slice(b"....");
        fs::write(root.join("big.bin"), &big).unwrap();
        fs::write(root.join("clean.txt"), "/work/checkout/build/m-1.").unwrap();
        std::os::unix::fs::symlink("/work/checkout/build/m-1.0/lib", root.join("ln")).unwrap();
        let hits = scan(root, &[needle, PathBuf::from("/")]).unwrap();
        assert_eq!(hits, vec!["big.bin", "lib/pkgconfig/m.pc", "ln"]);
    }
}
