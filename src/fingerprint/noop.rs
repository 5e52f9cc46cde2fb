//! The no-op state file (`build/.strata/noop-state`): what lets a build
//! whose inputs did not change answer without reading and parsing every
//! module file, hashing every patch and reading every stamp (cargo's and
//! ninja's single state file, git's index).
//!
//! A fully fresh build records, for every file and directory its answer
//! depended on, a stat signature (device, inode, size, mtime and ctime in
//! nanoseconds), the values it read from the environment, the binary that
//! computed it, and the answer itself: the modules, in the order they were
//! reported fresh. The next build with the same names compares all of that
//! and, when everything matches, gives the same answer; any difference, or
//! a file that is missing, truncated, corrupt or of another format, sends
//! it down the full path, which writes the file again.
//!
//! The decisions a reader may question: a signature stands for the content
//! only because ctime moves with every write, rename or `touch -d` (no user
//! can set it back), and because of git's *racy clean* rule: an entry whose
//! mtime or ctime is not strictly older than the state file's own mtime may
//! have changed again within the same clock tick, so it is not trusted; and
//! [`State::write`] is refused for entries changed since the run that
//! computed the answer began (they may have changed after it read them).

use crate::fsutil::write_atomic;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Version of the file's layout and of what it records. Changing either
/// means bumping this: a file of another version is ignored and rewritten.
pub const NOOP_FORMAT: u32 = 1;

/// How long before the start of the run that computed the answer an entry
/// must have last changed to be recorded: more than the filesystem clock's
/// tick (a jiffy, at most 10 ms), so a change made during the run is never
/// mistaken for the content the run read.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// The stat signature standing for a file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Sig {
    fn of(m: &fs::Metadata) -> Sig {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Sig {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: ns(m.mtime(), m.mtime_nsec()),
            ctime: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    fn newest(&self) -> i128 {
        self.mtime.max(self.ctime)
    }

    fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.dev, self.ino, self.size, self.mtime, self.ctime
        )
    }

    fn decode(s: &str) -> Option<Sig> {
        let mut f = s.split(':');
        let sig = Sig {
            dev: f.next()?.parse().ok()?,
            ino: f.next()?.parse().ok()?,
            size: f.next()?.parse().ok()?,
            mtime: f.next()?.parse().ok()?,
            ctime: f.next()?.parse().ok()?,
        };
        f.next().is_none().then_some(sig)
    }
}

/// How an entry is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// `stat` (symlinks followed): what reading the file sees. A missing
    /// file is recorded as missing and must stay missing.
    Follow,
    /// `lstat`: an entry of a walked tree, symlinks as themselves.
    NoFollow,
    /// Only that it is a directory (a build dir: what is inside is the
    /// build's, and its stamps say whether it is fresh).
    IsDir,
}

/// One recorded entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub look: Look,
    /// None: missing (Follow), or not compared (IsDir).
    sig: Option<Sig>,
}

/// What the answer was computed for, compared as values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The project root, canonical.
    pub root: PathBuf,
    /// The names on the command line, in order.
    pub names: Vec<String>,
    /// Environment values the keys read (`pass-env`), None: unset.
    pub env: Vec<(String, Option<String>)>,
}

/// A recorded no-op: its request, its entries and its answer.
#[derive(Clone, Debug)]
pub struct State {
    pub request: Request,
    pub entries: Vec<Entry>,
    /// The modules reported fresh, in the order they were.
    pub fresh: Vec<String>,
    /// The binary that computed the answer (its signature).
    exe: Option<Sig>,
    /// The state file's own mtime when it was read.
    written: i128,
}

/// What this binary is: a rebuilt or replaced strata recomputes everything.
fn exe_sig() -> Option<Sig> {
    let exe = std::env::current_exe().ok()?;
    fs::metadata(exe).ok().map(|m| Sig::of(&m))
}

/// A value as one field: `=text` when it holds no newline, else `x<hex>`.
fn hex_str(s: &str) -> String {
    if s.contains(['\n', '\r']) {
        format!("x{}", hex::encode(s.as_bytes()))
    } else {
        format!("={s}")
    }
}

fn unhex_str(s: &str) -> Option<String> {
    match s.split_at_checked(1)? {
        ("=", text) => Some(text.to_string()),
        ("x", h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        _ => None,
    }
}

/// A path as the last field of a line: itself when it is UTF-8 without a
/// newline (an absolute path starts with `/`), else `x<hex>`.
fn hex_path(p: &Path) -> String {
    match p.to_str() {
        Some(s) if s.starts_with('/') && !s.contains(['\n', '\r']) => s.to_string(),
        _ => format!("x{}", hex::encode(p.as_os_str().as_encoded_bytes())),
    }
}

fn unhex_path(s: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    if s.starts_with('/') {
        return Some(PathBuf::from(s));
    }
    let h = s.strip_prefix('x')?;
    Some(PathBuf::from(std::ffi::OsString::from_vec(
        hex::decode(h).ok()?,
    )))
}

const MAGIC: &str = "strata-noop-state";

/// The fewest entries worth a thread of their own.
const PER_THREAD: usize = 512;

impl State {
    /// A state to record: `entries` are looked at now.
    pub fn new(request: Request, paths: Vec<(PathBuf, Look)>, fresh: Vec<String>) -> State {
        let entries = paths
            .into_iter()
            .map(|(path, look)| {
                let sig = look_at(&path, look).ok().flatten();
                Entry { path, look, sig }
            })
            .collect();
        State {
            request,
            entries,
            fresh,
            exe: exe_sig(),
            written: 0,
        }
    }

    fn encode(&self) -> String {
        let mut out = format!(
            "{MAGIC} {NOOP_FORMAT}\nversion {} key {}\n",
            env!("CARGO_PKG_VERSION"),
            super::KEY_VERSION
        );
        let sig = |s: &Option<Sig>| s.map_or_else(|| "-".to_string(), |s| s.encode());
        out.push_str(&format!("exe {}\n", sig(&self.exe)));
        out.push_str(&format!("root {}\n", hex_path(&self.request.root)));
        for n in &self.request.names {
            out.push_str(&format!("name {}\n", hex_str(n)));
        }
        for (k, v) in &self.request.env {
            let v = v.as_deref().map_or_else(|| "-".to_string(), hex_str);
            out.push_str(&format!("env {} {v}\n", hex_str(k)));
        }
        for e in &self.entries {
            let kind = match e.look {
                Look::Follow => "f",
                Look::NoFollow => "l",
                Look::IsDir => "d",
            };
            out.push_str(&format!("{kind} {} {}\n", sig(&e.sig), hex_path(&e.path)));
        }
        for m in &self.fresh {
            out.push_str(&format!("fresh {}\n", hex_str(m)));
        }
        let sum = blake3::hash(out.as_bytes()).to_hex();
        out.push_str(&format!("end {sum}\n"));
        out
    }

    /// Reads a state file; None when it is missing, truncated, corrupt,
    /// of another format or version, or written by another binary.
    pub fn read(path: &Path) -> Option<State> {
        use std::io::Read;
        let mut file = fs::File::open(path).ok()?;
        // The mtime of the very file read (one the next build renames in
        // meanwhile is not this one).
        let written = Sig::of(&file.metadata().ok()?).mtime;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        let body_end = text.strip_suffix('\n')?.rfind('\n')? + 1;
        let (body, last) = text.split_at(body_end);
        let sum = last.strip_prefix("end ")?.trim_end();
        if blake3::hash(body.as_bytes()).to_hex().as_str() != sum {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != format!("{MAGIC} {NOOP_FORMAT}") {
            return None;
        }
        let version = format!(
            "version {} key {}",
            env!("CARGO_PKG_VERSION"),
            super::KEY_VERSION
        );
        if lines.next()? != version {
            return None;
        }
        let exe = match lines.next()?.strip_prefix("exe ")? {
            "-" => None,
            s => Some(Sig::decode(s)?),
        };
        let root = unhex_path(lines.next()?.strip_prefix("root ")?)?;
        let mut state = State {
            request: Request {
                root,
                names: Vec::new(),
                env: Vec::new(),
            },
            entries: Vec::new(),
            fresh: Vec::new(),
            exe,
            written,
        };
        for line in lines {
            let (kind, rest) = line.split_once(' ')?;
            match kind {
                "name" => state.request.names.push(unhex_str(rest)?),
                "env" => {
                    let (k, v) = rest.split_once(' ')?;
                    let v = match v {
                        "-" => None,
                        v => Some(unhex_str(v)?),
                    };
                    state.request.env.push((unhex_str(k)?, v));
                }
                "f" | "l" | "d" => {
                    let (sig, path) = rest.split_once(' ')?;
                    let sig = match sig {
                        "-" => None,
                        s => Some(Sig::decode(s)?),
                    };
                    let look = match kind {
                        "f" => Look::Follow,
                        "l" => Look::NoFollow,
                        _ => Look::IsDir,
                    };
                    state.entries.push(Entry {
                        path: unhex_path(path)?,
                        look,
                        sig,
                    });
                }
                "fresh" => state.fresh.push(unhex_str(rest)?),
                _ => return None,
            }
        }
        Some(state)
    }

    /// Whether this state answers `request` now: the same request, the
    /// same binary, and every entry as recorded and older than the file.
    /// Returns the number of entries checked.
    pub fn answers(&self, request: &Request) -> Option<usize> {
        if self.request != *request || self.exe.is_none() || self.exe != exe_sig() {
            return None;
        }
        // Racy: an entry as new as the file may have changed again within
        // the same clock tick.
        if self
            .entries
            .iter()
            .any(|e| e.sig.is_some_and(|s| s.newest() >= self.written))
        {
            return None;
        }
        let unchanged = |part: &[Entry]| {
            part.iter()
                .all(|e| look_at(&e.path, e.look).is_ok_and(|sig| sig == e.sig))
        };
        // Thousands of stats are most of a no-op: on every core at hand.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = self
            .entries
            .len()
            .div_ceil(cores.clamp(1, 8))
            .max(PER_THREAD);
        let all = std::thread::scope(|s| {
            let mut parts = self.entries.chunks(per);
            let first = parts.next().unwrap_or_default();
            let others: Vec<_> = parts.map(|p| s.spawn(move || unchanged(p))).collect();
            let mine = unchanged(first);
            others.into_iter().all(|h| h.join().unwrap_or(false)) && mine
        });
        all.then_some(self.entries.len())
    }

    /// Writes the state to `path` (temp file, fsync, rename), unless the
    /// file there already says the same and is trusted. Writes nothing
    /// when an entry changed after `started` (less [`SETTLE`]): the run
    /// that computed the answer may have read it before that change.
    /// Returns whether it wrote.
    pub fn write(&self, path: &Path, started: SystemTime) -> io::Result<bool> {
        let since = started
            .checked_sub(SETTLE)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        if self.exe.is_none()
            || self
                .entries
                .iter()
                .any(|e| e.sig.is_some_and(|s| s.newest() >= since))
        {
            return Ok(false);
        }
        let text = self.encode();
        if let Some(old) = State::read(path)
            && old.encode() == text
            && self
                .entries
                .iter()
                .all(|e| e.sig.is_none_or(|s| s.newest() < old.written))
        {
            return Ok(false);
        }
        write_atomic(path, text.as_bytes()).map(|()| true)
    }
}

/// An entry's signature now: Ok(None) for a missing file (Follow) or for
/// a directory (IsDir); an error for anything else that cannot be read,
/// or a non-directory where a directory must be.
fn look_at(path: &Path, look: Look) -> io::Result<Option<Sig>> {
    let m = match look {
        Look::Follow | Look::IsDir => fs::metadata(path),
        Look::NoFollow => fs::symlink_metadata(path),
    };
    match (m, look) {
        (Ok(m), Look::IsDir) if m.is_dir() => Ok(None),
        (Ok(_), Look::IsDir) => Err(io::Error::other("not a directory")),
        (Ok(m), _) => Ok(Some(Sig::of(&m))),
        (Err(e), Look::Follow) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        (Err(e), _) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(root: &Path) -> Request {
        Request {
            root: root.to_path_buf(),
            names: vec!["default".into()],
            env: vec![("A".into(), Some("1".into())), ("B".into(), None)],
        }
    }

    fn old(path: &Path) {
        let t = filetime::FileTime::from_unix_time(1_000_000_000, 0);
        filetime::set_file_mtime(path, t).unwrap();
    }

    #[test]
    fn round_trips_and_answers_until_something_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.toml");
        fs::write(&f, "a").unwrap();
        old(&f);
        let entries = vec![
            (f.clone(), Look::Follow),
            (dir.path().join("absent"), Look::Follow),
            (dir.path().to_path_buf(), Look::IsDir),
        ];
        let state = State::new(request(dir.path()), entries, vec!["m".into()]);
        let path = dir.path().join("state");
        // Changed during the run (ctime is now): nothing is written.
        assert!(!state.write(&path, SystemTime::now()).unwrap());
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        // The state file must be newer than every entry: wait a tick.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(state.write(&path, later).unwrap());
        assert!(
            !state.write(&path, later).unwrap(),
            "unchanged: not rewritten"
        );
        let read = State::read(&path).unwrap();
        assert_eq!(read.fresh, ["m"]);
        assert_eq!(read.answers(&request(dir.path())), Some(3));
        let mut other = request(dir.path());
        other.env[1].1 = Some(String::new());
        assert_eq!(read.answers(&other), None, "unset and empty differ");
        fs::write(dir.path().join("absent"), "").unwrap();
        assert_eq!(read.answers(&request(dir.path())), None);
    }

    #[test]
    fn a_damaged_file_is_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(request(dir.path()), Vec::new(), vec!["m".into()]);
        let path = dir.path().join("state");
        let text = state.encode();
        for bad in [
            text[..text.len() / 2].to_string(),
            text.replace("fresh", "frush"),
            text.replacen(&NOOP_FORMAT.to_string(), "999", 1),
            String::new(),
        ] {
            fs::write(&path, bad).unwrap();
            assert!(State::read(&path).is_none());
        }
        fs::write(&path, text).unwrap();
        assert!(State::read(&path).is_some());
    }

    #[test]
    fn an_entry_not_older_than_the_state_file_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, "a").unwrap();
        let state = State::new(request(dir.path()), vec![(f, Look::Follow)], Vec::new());
        let path = dir.path().join("state");
        // Written in the same tick as the entry (as a build that just ran).
        fs::write(&path, state.encode()).unwrap();
        let t = fs::metadata(&path).unwrap().modified().unwrap();
        filetime::set_file_mtime(&path, filetime::FileTime::from_system_time(t)).unwrap();
        let mut read = State::read(&path).unwrap();
        read.written = state.entries[0].sig.unwrap().newest();
        assert_eq!(read.answers(&request(dir.path())), None);
        read.written += 1;
        assert_eq!(read.answers(&request(dir.path())), Some(1));
    }
}
