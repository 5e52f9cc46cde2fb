//! The directory make evaluates a Heads tree in: a private *copy* of the
//! tree, so nothing the tree's Makefile code writes while it is parsed
//! (`$(shell … > modules/x)`, `$(file >$(CURDIR)/boards/…)`, `mkdir -p
//! build/…`) can reach the tree, and every such write is reported.
//!
//! The decision a reader would question: why copy rather than link. A farm
//! of symlinks to the tree's entries lets a write through a relative path
//! or `$(CURDIR)` land in the tree, and a farm of fresh directories holding
//! symlinks (or hardlinks) to files still lets `> existing-file` write
//! through to the tree's file. Only files of its own make the guarantee
//! hold whatever the code writes to, and a Heads checkout (without
//! `build/`, `packages/`, `crossgcc/`, which are hidden) is small enough to
//! copy: `copy_file_range`, a reflink on btrfs and XFS. After evaluation the
//! farm is compared with what was put in it (inode, size, mode, mtime,
//! ctime: any write changes the ctime, which no one can set back).
//! Heads's own output dirs are hidden from make, and what make creates in
//! them is Heads's build state, not the tree's files: it is not reported.

use super::error::ImportError;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The driver, shipped inside the binary.
const DRIVER: &str = include_str!("driver.mk");

/// Top-level entries of the Heads tree that make must not see (Heads's
/// output and download dirs, a prebuilt toolchain, the local `.config`,
/// git, and strata's own default output dir).
pub const HIDDEN: &[&str] = &[
    "build", "install", "packages", "crossgcc", ".config", ".git", "strata",
];

/// What one farm entry was when it was put there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    link: Option<PathBuf>,
}

impl Stat {
    fn of(path: &Path) -> io::Result<Stat> {
        let m = fs::symlink_metadata(path)?;
        let link = if m.file_type().is_symlink() {
            Some(fs::read_link(path)?)
        } else {
            None
        };
        Ok(Stat {
            ino: m.ino(),
            mode: m.mode(),
            size: if m.is_dir() { 0 } else { m.len() },
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            link,
        })
    }
}

/// A path of the farm that evaluation created, changed or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Relative to the tree.
    pub path: String,
    /// `created`, `changed` or `removed`.
    pub change: &'static str,
}

/// A temporary copy of the Heads tree (without [`HIDDEN`]) and the driver.
pub struct Farm {
    dir: tempfile::TempDir,
    before: BTreeMap<PathBuf, Stat>,
}

impl Farm {
    pub fn new(heads: &Path) -> Result<Farm, ImportError> {
        let dir = tempfile::Builder::new()
            .prefix("strata-heads-")
            .tempdir()
            .map_err(ImportError::io(std::env::temp_dir()))?;
        let h = dir.path().join("h");
        fs::create_dir(&h).map_err(ImportError::io(&h))?;
        fs::write(dir.path().join("driver.mk"), DRIVER).map_err(ImportError::io(dir.path()))?;
        for e in fs::read_dir(heads).map_err(ImportError::io(heads))? {
            let e = e.map_err(ImportError::io(heads))?;
            let name = e.file_name();
            if HIDDEN.iter().any(|x| name == *x) {
                continue;
            }
            copy(heads, &h, &e.path(), &h.join(&name))?;
        }
        let mut before = BTreeMap::new();
        record(&h, Path::new(""), &mut before).map_err(ImportError::io(&h))?;
        Ok(Farm { dir, before })
    }

    /// Heads's `$(pwd)` during evaluation.
    pub fn pwd(&self) -> PathBuf {
        self.dir.path().join("h")
    }

    /// Where `mktemp -d` calls of the Makefile land.
    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// The driver makefile.
    pub fn driver(&self) -> PathBuf {
        self.dir.path().join("driver.mk")
    }

    /// What evaluation wrote into the copy of the tree, sorted: a created
    /// directory stands for everything beneath it.
    pub fn writes(&self) -> Vec<Write> {
        let mut now = BTreeMap::new();
        let _ = record(&self.pwd(), Path::new(""), &mut now);
        let mut out: Vec<Write> = Vec::new();
        let mut created_dirs: Vec<&PathBuf> = Vec::new();
        for (path, stat) in &now {
            let change = match self.before.get(path) {
                None => "created",
                Some(was) if was != stat && stat.mode & libc::S_IFMT != libc::S_IFDIR => "changed",
                Some(was) if was.mode != stat.mode => "changed",
                Some(_) => continue,
            };
            if created_dirs.iter().any(|d| path.starts_with(d)) {
                continue;
            }
            if change == "created" && stat.mode & libc::S_IFMT == libc::S_IFDIR {
                created_dirs.push(path);
            }
            out.push(Write {
                path: path.display().to_string(),
                change,
            });
        }
        let mut removed_dirs: Vec<&PathBuf> = Vec::new();
        for (path, stat) in &self.before {
            if now.contains_key(path) || removed_dirs.iter().any(|d| path.starts_with(d)) {
                continue;
            }
            if stat.mode & libc::S_IFMT == libc::S_IFDIR {
                removed_dirs.push(path);
            }
            out.push(Write {
                path: path.display().to_string(),
                change: "removed",
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

/// Copies `from` (in the tree `heads`) to `to` (in the farm `h`):
/// directories afresh, files as copies with their mode (`copy_file_range`),
/// symlinks as they are, except that an absolute one into the tree points
/// into the farm instead (a relative one already stays in the copy).
fn copy(heads: &Path, h: &Path, from: &Path, to: &Path) -> Result<(), ImportError> {
    let meta = fs::symlink_metadata(from).map_err(ImportError::io(from))?;
    if meta.file_type().is_symlink() {
        let mut target = fs::read_link(from).map_err(ImportError::io(from))?;
        if let Ok(inside) = target.strip_prefix(heads) {
            target = h.join(inside);
        }
        std::os::unix::fs::symlink(target, to).map_err(ImportError::io(to))?;
    } else if meta.is_dir() {
        fs::create_dir(to).map_err(ImportError::io(to))?;
        for e in fs::read_dir(from).map_err(ImportError::io(from))? {
            let e = e.map_err(ImportError::io(from))?;
            copy(heads, h, &e.path(), &to.join(e.file_name()))?;
        }
        fs::set_permissions(to, meta.permissions()).map_err(ImportError::io(to))?;
    } else if meta.is_file() {
        fs::copy(from, to).map_err(ImportError::io(from))?;
    }
    // Sockets, fifos and devices are not a tree's files: left out.
    Ok(())
}

/// Records every entry under `root/rel`, except the hidden top-level ones.
fn record(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Stat>) -> io::Result<()> {
    for e in fs::read_dir(root.join(rel))? {
        let e = e?;
        let name = e.file_name();
        if rel.as_os_str().is_empty() && HIDDEN.iter().any(|x| name == *x) {
            continue;
        }
        let path = rel.join(&name);
        let stat = Stat::of(&root.join(&path))?;
        let dir = stat.mode & libc::S_IFMT == libc::S_IFDIR;
        out.insert(path.clone(), stat);
        if dir {
            record(root, &path, out)?;
        }
    }
    Ok(())
}

/// The tree's make files (`Makefile`, `modules/*`, `boards/*/*.config`)
/// that run code (`$(shell`, `$(file`) and mention `write`'s name: who
/// most likely wrote it.
pub fn named_in(heads: &Path, write: &str) -> Vec<String> {
    let Some(name) = Path::new(write).file_name().map(|n| n.to_string_lossy()) else {
        return Vec::new();
    };
    let mut files = vec!["Makefile".to_string()];
    for dir in ["modules", "boards"] {
        for e in fs::read_dir(heads.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if dir == "modules" {
                files.push(format!("modules/{n}"));
            } else {
                files.push(format!("boards/{n}/{n}.config"));
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter(|f| {
            fs::read_to_string(heads.join(f)).is_ok_and(|t| {
                (t.contains("$(shell") || t.contains("$(file")) && t.contains(name.as_ref())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_farm_is_a_copy_and_reports_what_was_written_into_it() {
        let t = tempfile::tempdir().unwrap();
        let heads = t.path().join("heads");
        fs::create_dir_all(heads.join("modules")).unwrap();
        fs::create_dir_all(heads.join("build/x86")).unwrap();
        fs::write(heads.join("Makefile"), "all:\n").unwrap();
        fs::write(heads.join("modules/a"), "a := 1\n").unwrap();
        fs::write(heads.join("modules/gone"), "g := 1\n").unwrap();
        std::os::unix::fs::symlink("modules/a", heads.join("alias")).unwrap();
        let farm = Farm::new(&heads).unwrap();
        let h = farm.pwd();
        assert!(!h.join("build").exists(), "hidden entries are not copied");
        assert!(
            fs::symlink_metadata(h.join("alias"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(farm.writes().is_empty());
        // Writes through the farm's paths land in the farm only.
        fs::write(h.join("modules/a"), "b := 2\n").unwrap();
        fs::write(h.join("alias"), "c := 3\n").unwrap();
        fs::create_dir_all(h.join("new/deep")).unwrap();
        fs::remove_file(h.join("modules/gone")).unwrap();
        fs::create_dir_all(h.join("build/x86/log")).unwrap();
        assert_eq!(
            fs::read_to_string(heads.join("modules/a")).unwrap(),
            "a := 1\n"
        );
        let w: Vec<(String, &str)> = farm
            .writes()
            .into_iter()
            .map(|w| (w.path, w.change))
            .collect();
        assert_eq!(
            w,
            [
                ("modules/a".to_string(), "changed"),
                ("modules/gone".to_string(), "removed"),
                ("new".to_string(), "created"),
            ]
        );
        // The same size and mtime set back still shows (the ctime moved).
        let farm = Farm::new(&heads).unwrap();
        let f = farm.pwd().join("Makefile");
        fs::write(&f, "ALL:\n").unwrap();
        let old = fs::metadata(heads.join("Makefile")).unwrap();
        filetime::set_file_mtime(&f, filetime::FileTime::from_last_modification_time(&old))
            .unwrap();
        let farm_before = farm.before[Path::new("Makefile")].mtime;
        filetime::set_file_mtime(
            &f,
            filetime::FileTime::from_unix_time(farm_before.0, farm_before.1 as u32),
        )
        .unwrap();
        assert_eq!(farm.writes().len(), 1);
    }
}
