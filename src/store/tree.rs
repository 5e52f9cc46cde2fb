//! Unpacked copies ("trees") of local artifacts, so that a restore links or
//! clones files instead of decompressing the archive every time (uv keeps
//! its wheels unpacked in its cache for the same reason).
//!
//! Layout: `<root>/v1/trees/<archive stem>/` holds `manifest` (every entry
//! extracted: kind, mode, size, path, symlink target) and `root/` (the
//! archive's files exactly as the safe extractor wrote them: modes
//! 0644/0755, mtime 1). A tree is made once, at the first restore of its
//! entry, from the BLAKE3-verified archive, in a `.<stem>.tmp-<pid>` dir that
//! is renamed into place; a killed maker leaves only that dir, which the
//! store's sweep removes. The archive stays the source of truth: remotes
//! need it, `cache verify` hashes it, and a damaged tree is rebuilt from it.
//!
//! The decision a reader would question: a restore from a tree re-hashes
//! nothing. No restored file shares an inode with the tree (see
//! `materialise`: reflinks or copies, never hardlinks), so a build can only
//! change a tree by writing into the store itself. Against that, the
//! manifest records per file its inode, ctime and BLAKE3 as the tree was
//! made, and every restore checks each file's size, mode, mtime 1, inode
//! and ctime: any write or chmod moves the ctime, and no one can set a
//! ctime back, so a same-size write followed by `touch -d @1` shows too. A
//! file whose inode or ctime moved without a change of content (a store
//! copied with `cp -a`) is hashed, and passes if its BLAKE3 still matches.
//! On any mismatch the tree is discarded and rebuilt from the archive,
//! whose BLAKE3 is checked as before. `cache verify` hashes every file.

use super::LocalStore;
use crate::artifact::{ArtifactInfo, CACHE_FORMAT};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const MAGIC: &[u8] = b"strata-tree 2\n";
/// Manifests of trees made before files carried a [`FileId`]: such a tree
/// is discarded quietly and made again.
const MAGIC_V1: &[u8] = b"strata-tree 1\n";

/// What one entry of a tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(OsString),
}

/// One entry of a tree, relative to its `root/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    /// Permission bits (0644/0755 for an artifact).
    pub mode: u32,
    /// File bytes; 0 for directories and symlinks.
    pub size: u64,
    /// A file's identity when the tree was made; None for directories and
    /// symlinks (and for files of a manifest of the old format).
    pub id: Option<FileId>,
}

/// What a tree file was when the tree was made: the inode and ctime (which
/// any write or chmod moves, and no one can set back) and the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileId {
    pub ino: u64,
    /// Seconds and nanoseconds.
    pub ctime: (i64, i64),
    pub blake3: [u8; 32],
}

impl FileId {
    /// Whether `meta` is still this very inode, unchanged since.
    pub fn unchanged(&self, meta: &fs::Metadata) -> bool {
        meta.ino() == self.ino && (meta.ctime(), meta.ctime_nsec()) == self.ctime
    }
}

/// BLAKE3 of the file at `path`.
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path)?)?;
    Ok(*h.finalize().as_bytes())
}

/// Every entry of a tree, parents before their children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

/// Why a tree cannot be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: unreadable manifest ({why})", path.display())]
    Manifest { path: PathBuf, why: String },
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Manifest {
    /// Walks `root` (sorted, parents first) and records what is there,
    /// hashing every file.
    pub fn scan(root: &Path) -> io::Result<Manifest> {
        fn walk(root: &Path, rel: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
            let mut names: Vec<OsString> = fs::read_dir(root.join(rel))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for n in names {
                let path = rel.join(&n);
                let abs = root.join(&path);
                let meta = fs::symlink_metadata(&abs)?;
                let mode = meta.mode() & 0o7777;
                if meta.is_dir() {
                    out.push(Entry {
                        path: path.clone(),
                        kind: Kind::Dir,
                        mode,
                        size: 0,
                        id: None,
                    });
                    walk(root, &path, out)?;
                } else if meta.file_type().is_symlink() {
                    let target = fs::read_link(&abs)?.into_os_string();
                    out.push(Entry {
                        path,
                        kind: Kind::Symlink(target),
                        mode: 0o777,
                        size: 0,
                        id: None,
                    });
                } else if meta.is_file() {
                    let blake3 = hash_file(&abs)?;
                    out.push(Entry {
                        path,
                        kind: Kind::File,
                        mode,
                        size: meta.len(),
                        id: Some(FileId {
                            ino: meta.ino(),
                            ctime: (meta.ctime(), meta.ctime_nsec()),
                            blake3,
                        }),
                    });
                }
            }
            Ok(())
        }
        let mut entries = Vec::new();
        walk(root, Path::new(""), &mut entries)?;
        Ok(Manifest { entries })
    }

    /// Total bytes of the files.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// `strata-tree 2\n`, then per entry `KIND MODE SIZE PATH\0` (a file:
    /// `f MODE SIZE INO CTIME.NSEC BLAKE3 PATH\0`; a symlink: `TARGET\0`
    /// after it): NUL-separated, since paths are bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for e in &self.entries {
            let kind = match e.kind {
                Kind::Dir => 'd',
                Kind::File => 'f',
                Kind::Symlink(_) => 'l',
            };
            out.extend_from_slice(format!("{kind} {:o} {} ", e.mode, e.size).as_bytes());
            if let Some(id) = &e.id {
                out.extend_from_slice(
                    format!(
                        "{} {}.{:09} {} ",
                        id.ino,
                        id.ctime.0,
                        id.ctime.1,
                        hex::encode(id.blake3)
                    )
                    .as_bytes(),
                );
            }
            out.extend_from_slice(e.path.as_os_str().as_bytes());
            out.push(0);
            if let Kind::Symlink(t) = &e.kind {
                out.extend_from_slice(t.as_bytes());
                out.push(0);
            }
        }
        out
    }

    /// Parses [`Manifest::encode`]'s output, refusing any path that could
    /// write outside the tree (absolute, `..`) or beneath something that is
    /// not a directory listed before it (a symlink). Symlink targets are
    /// data, as the extractor keeps them: absolute, dangling or not.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        let (body, ids) = match (bytes.strip_prefix(MAGIC), bytes.strip_prefix(MAGIC_V1)) {
            (Some(b), _) => (b, true),
            (None, Some(b)) => (b, false),
            _ => return Err("not a strata tree manifest".into()),
        };
        let mut fields = body.split(|&b| b == 0);
        let mut dirs: HashSet<PathBuf> = HashSet::new();
        dirs.insert(PathBuf::new());
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut entries = Vec::new();
        while let Some(field) = fields.next() {
            if field.is_empty() {
                if fields.next().is_some() {
                    return Err("empty record".into());
                }
                break;
            }
            let file = ids && field.starts_with(b"f ");
            let mut parts = field.splitn(if file { 7 } else { 4 }, |&b| b == b' ');
            let mut next = |what: &str| parts.next().ok_or(format!("record without {what}"));
            let kind = next("kind")?.to_vec();
            let mode = std::str::from_utf8(next("mode")?)
                .ok()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .ok_or("bad mode")?;
            let size = std::str::from_utf8(next("size")?)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or("bad size")?;
            let id = if file {
                let ino = std::str::from_utf8(next("inode")?)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or("bad inode")?;
                let ctime = std::str::from_utf8(next("ctime")?)
                    .ok()
                    .and_then(|s| s.split_once('.'))
                    .and_then(|(s, ns)| Some((s.parse::<i64>().ok()?, ns.parse::<i64>().ok()?)))
                    .ok_or("bad ctime")?;
                let blake3 = hex::decode(next("hash")?)
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .ok_or("bad hash")?;
                Some(FileId { ino, ctime, blake3 })
            } else {
                None
            };
            let path = PathBuf::from(OsStr::from_bytes(next("path")?));
            if !path.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(format!("unsafe path `{}`", path.display()));
            }
            if !dirs.contains(path.parent().unwrap_or(Path::new(""))) {
                return Err(format!("`{}` is not beneath a directory", path.display()));
            }
            if !seen.insert(path.clone()) {
                return Err(format!("`{}` is listed twice", path.display()));
            }
            // What the extractor allows an artifact: permission bits only
            // (never setuid, setgid or sticky), directories the owner can
            // write into.
            if mode & !0o777 != 0 || (kind.as_slice() == b"d" && mode & 0o700 != 0o700) {
                return Err(format!("`{}` has mode {mode:o}", path.display()));
            }
            let kind = match kind.as_slice() {
                b"d" => {
                    dirs.insert(path.clone());
                    Kind::Dir
                }
                b"f" => Kind::File,
                b"l" => {
                    let target =
                        OsString::from_vec(fields.next().ok_or("symlink without target")?.to_vec());
                    Kind::Symlink(target)
                }
                _ => return Err("unknown kind".into()),
            };
            entries.push(Entry {
                path,
                kind,
                mode,
                size,
                id,
            });
        }
        Ok(Manifest { entries })
    }
}

/// A tree of the local store, with its manifest.
pub struct Tree {
    /// `<root>/v1/trees/<stem>`.
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Tree {
    /// Where the files are.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl LocalStore {
    /// `<root>/v1/trees`.
    pub fn trees_dir(&self) -> PathBuf {
        self.root().join(CACHE_FORMAT).join("trees")
    }

    /// The tree of the archive `info` names: `trees/<key>-<16 hex>`.
    pub fn tree_path(&self, info: &ArtifactInfo) -> PathBuf {
        let name = crate::artifact::archive_name(info);
        let stem = name.strip_suffix(".tar.zst").unwrap_or(&name);
        self.trees_dir().join(stem)
    }

    /// The tree of `info`, if one was made. A tree whose manifest is missing
    /// or unreadable is an error (the caller discards it). A tree made by an
    /// older strata (no [`FileId`]s) is discarded here, quietly: it is not
    /// damaged, only not checkable, and the archive makes it again.
    pub fn open_tree(&self, info: &ArtifactInfo) -> Result<Option<Tree>, TreeError> {
        let dir = self.tree_path(info);
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(None);
        }
        let path = dir.join("manifest");
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        let manifest = Manifest::decode(&bytes).map_err(|why| TreeError::Manifest {
            path: path.clone(),
            why,
        })?;
        if manifest
            .entries
            .iter()
            .any(|e| e.kind == Kind::File && e.id.is_none())
        {
            self.discard_tree(info).map_err(io_at(&dir))?;
            return Ok(None);
        }
        // A manifest cut short at a record boundary still decodes: the
        // archive's file count (files and symlinks) catches it.
        let listed = manifest
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, Kind::Dir))
            .count() as u64;
        if listed != info.files {
            return Err(TreeError::Manifest {
                path,
                why: format!("lists {listed} files, the archive holds {}", info.files),
            });
        }
        Ok(Some(Tree { dir, manifest }))
    }

    /// Makes the tree of `info` from its verified `archive`: extracted into
    /// a temp dir beside it, scanned, synced (each file and dir of it),
    /// renamed into place. If another
    /// process made it first, theirs is used.
    pub fn make_tree(
        &self,
        info: &ArtifactInfo,
        archive: &Path,
        limits: crate::unpack::Limits,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Tree, TreeError> {
        let dir = self.tree_path(info);
        let trees = self.trees_dir();
        fs::create_dir_all(&trees).map_err(io_at(&trees))?;
        let stem = dir.file_name().expect("a name").to_string_lossy();
        self.may_leave_leftovers();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{stem}.tmp-{}-", std::process::id()))
            .tempdir_in(&trees)
            .map_err(io_at(&trees))?;
        // 0755 like any directory a user creates (tempdir's is 0700), so a
        // shared store's trees can be linked from by the whole team.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .map_err(io_at(tmp.path()))?;
        let root = tmp.path().join("root");
        fs::create_dir(&root).map_err(io_at(&root))?;
        crate::unpack::extract_packed(archive, &root, limits, progress)?;
        let manifest = Manifest::scan(&root).map_err(io_at(&root))?;
        let mpath = tmp.path().join("manifest");
        fs::write(&mpath, manifest.encode()).map_err(io_at(&mpath))?;
        // After a power loss the renamed tree holds its data, not empty files.
        sync_tree(tmp.path(), &manifest)?;
        let tmp = tmp.keep();
        match fs::rename(&tmp, &dir) {
            Ok(()) => {
                crate::fsutil::sync_dir(&trees).map_err(io_at(&trees))?;
                Ok(Tree { dir, manifest })
            }
            Err(e) if dir.is_dir() => {
                // Another restore of the same entry won the race.
                let _ = crate::fsutil::remove_all(&tmp);
                match self.open_tree(info)? {
                    Some(t) => Ok(t),
                    None => Err(io_at(&dir)(e)),
                }
            }
            Err(e) => {
                let _ = crate::fsutil::remove_all(&tmp);
                Err(io_at(&dir)(e))
            }
        }
    }

    /// Where the store notes that the entry of `info` was restored once
    /// without a tree: `trees/.<stem>.restored` (a dot name: not a tree).
    fn restored_mark(&self, info: &ArtifactInfo) -> PathBuf {
        let dir = self.tree_path(info);
        let stem = dir.file_name().expect("a name").to_string_lossy();
        self.trees_dir().join(format!(".{stem}.restored"))
    }

    /// Whether the entry of `info` was restored before (its next restore
    /// makes the tree).
    pub fn restored_before(&self, info: &ArtifactInfo) -> bool {
        fs::symlink_metadata(self.restored_mark(info)).is_ok()
    }

    /// Notes that the entry of `info` was restored without a tree. Only a
    /// hint: a store that cannot take it restores from the archive again.
    pub fn note_restored(&self, info: &ArtifactInfo) {
        let _ = fs::create_dir_all(self.trees_dir())
            .and_then(|()| fs::File::create(self.restored_mark(info)));
    }

    /// Removes the tree of `info`: renamed aside first (so no reader ever
    /// sees half of it under its name), then deleted.
    pub fn discard_tree(&self, info: &ArtifactInfo) -> io::Result<()> {
        self.may_leave_leftovers();
        crate::fsutil::remove_dir_atomic(&self.tree_path(info))
    }

    /// Removes every tree of `key` (any archive of it), and the notes that
    /// it was restored.
    pub fn remove_trees(&self, key: &str) -> io::Result<()> {
        for (k, path) in self.trees()? {
            if k == key {
                self.may_leave_leftovers();
                crate::fsutil::remove_dir_atomic(&path)?;
            }
        }
        for (k, path) in self.restored_marks()? {
            if k == key {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Every note of a restore without a tree: its key and path.
    pub fn restored_marks(&self) -> io::Result<Vec<(String, PathBuf)>> {
        self.trees_dir_entries(|name| {
            name.strip_prefix('.')
                .and_then(|n| n.strip_suffix(".restored"))
        })
    }

    /// Every tree: its key and directory (temp and trash dirs excluded).
    pub fn trees(&self) -> io::Result<Vec<(String, PathBuf)>> {
        self.trees_dir_entries(|name| (!name.starts_with('.')).then_some(name))
    }

    /// The entries of the trees dir whose name `stem` accepts, with the key
    /// of the stem (`<key>-<blake3>`) and their path; none when it is absent.
    fn trees_dir_entries(
        &self,
        stem: impl Fn(&str) -> Option<&str>,
    ) -> io::Result<Vec<(String, PathBuf)>> {
        let entries = match fs::read_dir(self.trees_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = stem(&name) {
                let key = stem.rsplit_once('-').map_or(stem, |(k, _)| k);
                out.push((key.to_string(), e.path()));
            }
        }
        Ok(out)
    }

    /// Bytes of the files of a tree (from its manifest; 0 if unreadable).
    pub fn tree_bytes(dir: &Path) -> u64 {
        fs::read(dir.join("manifest"))
            .ok()
            .and_then(|b| Manifest::decode(&b).ok())
            .map_or(0, |m| m.bytes())
    }
}

/// Makes a tree being made durable before it is renamed into place: an
/// fsync of each of its files and directories, its manifest and its own
/// dir. Never a `syncfs` of the whole filesystem, which also waits for
/// everything any other process wrote and has not synced (a parallel job's
/// gigabyte), so a restore costs what it writes. The fsyncs run on a few
/// threads at once, which lets the filesystem commit them together.
fn sync_tree(dir: &Path, manifest: &Manifest) -> Result<(), TreeError> {
    let root = dir.join("root");
    let mut paths: Vec<PathBuf> = manifest
        .entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Symlink(_)))
        .map(|e| root.join(&e.path))
        .collect();
    paths.extend([dir.join("manifest"), root, dir.to_path_buf()]);
    crate::fsutil::sync_paths(&paths).map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_odd_names_and_symlinks() {
        let m = Manifest {
            entries: vec![
                Entry {
                    path: "a b".into(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    size: 0,
                    id: None,
                },
                Entry {
                    path: PathBuf::from(OsStr::from_bytes(b"a b/\xff\n x")),
                    kind: Kind::File,
                    mode: 0o644,
                    size: 12,
                    id: Some(FileId {
                        ino: 42,
                        ctime: (1_700_000_000, 5),
                        blake3: [7; 32],
                    }),
                },
                Entry {
                    path: "a b/l".into(),
                    kind: Kind::Symlink("../t z".into()),
                    mode: 0o777,
                    size: 0,
                    id: None,
                },
            ],
        };
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        assert_eq!(m.bytes(), 12);
    }

    #[test]
    fn a_second_maker_of_one_tree_uses_the_first_ones() {
        let t = tempfile::tempdir().unwrap();
        let module = t.path().join("m");
        std::fs::create_dir_all(module.join("dest/bin")).unwrap();
        std::fs::write(module.join("dest/bin/tool"), "tool\n").unwrap();
        let info = ArtifactInfo::to_pack("m", "1", &"ab".repeat(32));
        let packed =
            crate::artifact::pack(&module.join("dest"), &module, &[], info, t.path(), 1).unwrap();
        let store = LocalStore::new(t.path().join("store"));
        let limits = crate::unpack::Limits::default();
        let first = store
            .make_tree(&packed.info, packed.archive.path(), limits, &|_, _| {})
            .unwrap();
        let marker = first.dir.join("root/.strata/destdir/bin/tool");
        let ino = std::fs::metadata(&marker).unwrap().ino();
        // The second maker loses the rename: it gets the first tree, and
        // leaves no temp dir behind.
        let second = store
            .make_tree(&packed.info, packed.archive.path(), limits, &|_, _| {})
            .unwrap();
        assert_eq!(second.dir, first.dir);
        assert_eq!(second.manifest, first.manifest);
        assert_eq!(std::fs::metadata(&marker).unwrap().ino(), ino);
        assert_eq!(std::fs::read_dir(store.trees_dir()).unwrap().count(), 1);
        assert_eq!(store.trees().unwrap().len(), 1);
        assert_eq!(first.manifest.bytes(), 5);
        assert_eq!(
            store.open_tree(&packed.info).unwrap().unwrap().manifest,
            first.manifest
        );
        // A manifest cut after its last record still decodes, but lists
        // fewer files than the archive holds: the tree is not used.
        let mpath = first.dir.join("manifest");
        let full = std::fs::read(&mpath).unwrap();
        let last = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == 0)
            .unwrap();
        std::fs::write(&mpath, &full[..=last]).unwrap();
        let e = store.open_tree(&packed.info).err().expect("refused");
        assert!(e.to_string().contains("lists 0 files"), "{e}");
        store.remove_trees(&packed.info.key).unwrap();
        assert!(store.open_tree(&packed.info).unwrap().is_none());
    }

    #[test]
    fn manifest_refuses_paths_leaving_the_tree_or_under_a_symlink() {
        // The rules on paths and modes are the same in both formats.
        let bad = |body: &[u8]| {
            let mut b = MAGIC_V1.to_vec();
            b.extend_from_slice(body);
            Manifest::decode(&b).unwrap_err()
        };
        assert!(bad(b"f 644 1 ../x\0").contains("unsafe"));
        assert!(bad(b"f 644 1 /etc/x\0").contains("unsafe"));
        // A symlink is data, wherever it points; nothing goes beneath it.
        assert!(bad(b"l 777 0 l\0/etc\0f 644 1 l/passwd\0").contains("not beneath"));
        assert!(bad(b"l 777 0 l\0d\0f 644 1 l/passwd\0").contains("not beneath"));
        let mut ok = MAGIC.to_vec();
        ok.extend_from_slice(b"d 755 0 d\0l 777 0 d/up\0../../x\0l 777 0 d/abs\0/usr/bin/x\0");
        let m = Manifest::decode(&ok).unwrap();
        assert_eq!(m.entries[2].kind, Kind::Symlink("/usr/bin/x".into()));
        assert!(bad(b"f 644 1 x\0f 644 1 x\0").contains("twice"));
        assert!(bad(b"f 4755 1 x\0").contains("mode 4755"));
        assert!(bad(b"d 555 0 d\0").contains("mode 555"));
        assert!(bad(b"f 644 1 d/x\0").contains("not beneath"));
        assert!(bad(b"q 644 1 x\0").contains("kind"));
        assert!(Manifest::decode(b"garbage").is_err());
        let v2 = |body: &[u8]| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(body);
            Manifest::decode(&b)
        };
        let hash = "ab".repeat(32);
        let ok = format!("f 644 1 9 1.000000002 {hash} a b\0");
        let m = v2(ok.as_bytes()).unwrap();
        assert_eq!(m.entries[0].path, Path::new("a b"));
        assert_eq!(m.entries[0].id.as_ref().unwrap().ctime, (1, 2));
        assert!(v2(b"f 644 1 x\0").unwrap_err().contains("inode"));
        assert!(
            v2(format!("f 644 1 9 1 {hash} x\0").as_bytes())
                .unwrap_err()
                .contains("ctime")
        );
        assert!(v2(b"f 644 1 9 1.0 abc x\0").unwrap_err().contains("hash"));
    }
}
