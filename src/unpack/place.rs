//! Placing a module's extra downloads into its freshly extracted source
//! tree (`[[download]] dest`), beneath a directory handle like every
//! extracted entry: a `dest` that an archive's symlink points elsewhere
//! fails instead of writing outside the tree.

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use std::fs::File;
use std::io;
use std::path::Path;

/// Copies `src` to `<tree>/<dest>/<name>`, creating `dest`'s directories,
/// with modification time `mtime` (the source's `SOURCE_DATE_EPOCH`, so the
/// tree does not depend on when it was made). A file already there is an
/// error: the archive and the download would disagree about it.
pub fn place_file(tree: &Path, dest: &str, name: &str, src: &Path, mtime: u64) -> io::Result<()> {
    let root = Dir::open_ambient_dir(tree, ambient_authority())?;
    let dir = if dest.is_empty() {
        root
    } else {
        root.create_dir_all(dest)?;
        root.open_dir(dest)?
    };
    let mut out = dir
        .open_with(name, OpenOptions::new().write(true).create_new(true))
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                io::Error::new(
                    e.kind(),
                    format!("the source archive already holds {dest}/{name}"),
                )
            } else {
                e
            }
        })?;
    io::copy(&mut File::open(src)?, &mut out)?;
    out.sync_all()?;
    let out = out.into_std();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    out.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_beneath_the_tree_and_never_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let src = tmp.path().join("gcc.tar.xz");
        std::fs::write(&src, "gcc").unwrap();
        place_file(&tree, "sources", "gcc.tar.xz", &src, 1000).unwrap();
        let placed = tree.join("sources/gcc.tar.xz");
        assert_eq!(std::fs::read_to_string(&placed).unwrap(), "gcc");
        let mtime = std::fs::metadata(&placed).unwrap().modified().unwrap();
        assert_eq!(
            mtime,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000)
        );
        let err = place_file(&tree, "sources", "gcc.tar.xz", &src, 0).unwrap_err();
        assert!(
            err.to_string().contains("already holds sources/gcc.tar.xz"),
            "{err}"
        );
        std::os::unix::fs::symlink(&outside, tree.join("evil")).unwrap();
        assert!(place_file(&tree, "evil/x", "gcc.tar.xz", &src, 0).is_err());
        assert!(place_file(&tree, "evil", "gcc.tar.xz", &src, 0).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
