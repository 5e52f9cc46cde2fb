//! Reading a few small files out of a source archive without extracting it:
//! the sum files and version variables a `sha1-from` download is resolved
//! from (see `crate::source_pins`). Only tar archives (any compression) are
//! read; names are taken after `strip` leading components, as the unpack
//! takes them, and only regular files up to [`MAX_FILE`] bytes are returned.

use super::{Format, UnpackError, detect, read_full};
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

/// The largest file returned (a sum file or a Makefile is far smaller).
pub const MAX_FILE: u64 = 1 << 20;

/// `(path after strip, bytes)` of every regular file of `archive` that
/// `want(path)` accepts, in archive order.
pub fn read_files(
    archive: &Path,
    strip: u32,
    want: &dyn Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let io_err = |at: &str| {
        let archive = archive.to_path_buf();
        let at = at.to_string();
        move |source| UnpackError::Io {
            archive,
            at,
            source,
        }
    };
    let mut file = File::open(archive).map_err(io_err("before the first entry"))?;
    let mut head = vec![0u8; 512];
    let n = read_full(&mut file, &mut head).map_err(io_err("before the first entry"))?;
    head.truncate(n);
    file.rewind().map_err(io_err("before the first entry"))?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    let r: Box<dyn Read> = match detect(&head) {
        Some(Format::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Some(Format::Xz) => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        Some(Format::Bzip2) => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        Some(Format::Zstd) => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(io_err("before the first entry"))?,
        ),
        Some(Format::Tar) => Box::new(reader),
        Some(Format::Zip) | None => {
            return Err(UnpackError::UnknownFormat {
                archive: archive.to_path_buf(),
            });
        }
    };
    let mut ar = tar::Archive::new(r);
    let mut out = Vec::new();
    for entry in ar.entries().map_err(io_err("between entries"))? {
        let mut entry = entry.map_err(io_err("between entries"))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let parts: Vec<&str> = raw
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if parts.len() <= strip as usize || parts.contains(&"..") {
            continue;
        }
        let rel = parts[strip as usize..].join("/");
        let regular = matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        );
        if !regular || entry.size() > MAX_FILE || !want(&rel) {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(io_err(&format!("entry `{raw}`")))?;
        out.push((rel, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wanted_files_after_strip() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (p, c) in [
            ("top/hashes/a.sha1", "x"),
            ("top/Makefile", "M"),
            ("top/big", "b"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(c.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, c.as_bytes()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let path = dir.path().join("s.tar.gz");
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let got = read_files(&path, 1, &|p| p != "big").unwrap();
        assert_eq!(
            got,
            vec![
                ("hashes/a.sha1".to_string(), b"x".to_vec()),
                ("Makefile".to_string(), b"M".to_vec())
            ]
        );
    }
}
