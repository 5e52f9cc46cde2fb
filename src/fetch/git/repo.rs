//! The bare mirror of one git module and the `git` commands run on it.
//!
//! strata drives the `git` program rather than a library (as cargo's
//! `net.git-fetch-with-cli`): credentials helpers, `insteadOf` rewrites,
//! proxies, ssh configuration and every transport then behave exactly as the
//! user's own `git` does. git never prompts: stdin is `/dev/null`,
//! `GIT_TERMINAL_PROMPT=0`, and ssh runs in batch mode unless the user set
//! their own ssh command. Variables such as `GIT_DIR` inherited from a hook
//! are removed so the mirror is always the repository operated on.
//!
//! Every invocation pins the transports git may use (`-c protocol.*`,
//! whatever the user's configuration says): http, https, ssh and git
//! always, `ext` and every other helper never, and `file` only for a module
//! whose own repository is a local path. Every positional argument follows
//! `--` (or `--end-of-options`), so no URL or revision can be read as an
//! option such as `--upload-pack=CMD`.
//!
//! A commit is fetched by id with `--depth=1` (only its tree is needed); a
//! server that refuses to serve an unadvertised commit gets a second, full
//! fetch of its branches and tags, after which a still-missing commit is
//! reported as not existing in the repository. Fetched commits are kept
//! alive by refs under `refs/strata/`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};

/// Why a git operation failed (the caller adds the module's name).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(
        "submodule {path} has url `{url}` in .gitmodules of commit {rev}, which strata refuses: {why}"
    )]
    BadSubmoduleUrl {
        path: String,
        url: String,
        rev: String,
        why: String,
    },
    #[error(
        "cannot run `git`: {0}\n  hint: install git (strata uses the git program to fetch git sources)"
    )]
    NoGit(io::Error),
    #[error("repository {url} is unreachable:\n{stderr}")]
    Unreachable { url: String, stderr: String },
    #[error("commit {rev} does not exist in {url}")]
    NoSuchCommit { url: String, rev: String },
    #[error("`git {cmd}` failed in {}:\n{stderr}", dir.display())]
    Git {
        cmd: String,
        dir: PathBuf,
        stderr: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The commit's tree holds an entry no source may have.
    #[error("the tree of commit {rev} holds `{path}`: {why}")]
    Unsafe {
        rev: String,
        path: String,
        why: String,
    },
}

/// One entry of a tree, as `git ls-tree -r` lists it.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// The octal mode: 100644, 100755, 120000 (symlink) or 160000 (submodule).
    pub mode: u32,
    /// The blob id, or the commit id for a submodule.
    pub oid: String,
    /// The path from the tree's root, as raw bytes.
    pub path: Vec<u8>,
}

/// A bare repository strata owns (`packages/.git/<repo>-<url hash>.git`).
pub struct Repo {
    dir: PathBuf,
    allow_file: bool,
}

impl Repo {
    /// Opens the bare mirror at `dir`, creating it (aside, then renamed) when
    /// absent. `allow_file`: whether git may fetch over the `file` transport
    /// (only when the module's own repository is a local path).
    pub fn open_or_init(dir: &Path, allow_file: bool) -> Result<Repo, RepoError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RepoError::Io { path, source }
        };
        if dir.join("HEAD").is_file() {
            return Ok(Repo {
                dir: dir.to_path_buf(),
                allow_file,
            });
        }
        let parent = crate::fsutil::parent_dir(dir);
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let name = dir.file_name().map(OsStr::to_os_string).unwrap_or_default();
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        crate::fsutil::remove_leftovers(&parent, &name.to_string_lossy())
            .map_err(io_err(&parent))?;
        let out = plain_git(allow_file)
            .args(["init", "--bare", "-q", "--"])
            .arg(&tmp)
            .output()
            .map_err(RepoError::NoGit)?;
        if !out.status.success() {
            return Err(RepoError::Git {
                cmd: "init --bare".into(),
                dir: tmp,
                stderr: stderr(&out),
            });
        }
        let _ = crate::fsutil::remove_all(dir);
        std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
        crate::fsutil::sync_dir(&parent).map_err(io_err(&parent))?;
        Ok(Repo {
            dir: dir.to_path_buf(),
            allow_file,
        })
    }

    /// Whether git may fetch over the `file` transport here.
    pub fn allows_file(&self) -> bool {
        self.allow_file
    }

    fn git(&self) -> Command {
        let mut c = plain_git(self.allow_file);
        c.arg("--git-dir").arg(&self.dir);
        c
    }

    fn run(&self, args: &[&str]) -> Result<Output, RepoError> {
        self.git().args(args).output().map_err(RepoError::NoGit)
    }

    fn run_ok(&self, args: &[&str]) -> Result<Vec<u8>, RepoError> {
        let out = self.run(args)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(RepoError::Git {
                cmd: args.join(" "),
                dir: self.dir.clone(),
                stderr: stderr(&out),
            })
        }
    }

    /// Whether the mirror holds commit `rev`.
    pub fn has_commit(&self, rev: &str) -> bool {
        self.run(&["cat-file", "-e", "--", &format!("{rev}^{{commit}}")])
            .is_ok_and(|o| o.status.success())
    }

    /// Runs a command that talks to a remote: an HTTP transfer slower than
    /// 1 byte/s for `stall` seconds is aborted (like strata's own
    /// downloads), unless the user set git's low-speed variables.
    fn run_remote(&self, args: &[&str], stall: u64) -> Result<Output, RepoError> {
        let mut c = self.git();
        if std::env::var_os("GIT_HTTP_LOW_SPEED_LIMIT").is_none()
            && std::env::var_os("GIT_HTTP_LOW_SPEED_TIME").is_none()
        {
            c.env("GIT_HTTP_LOW_SPEED_LIMIT", "1")
                .env("GIT_HTTP_LOW_SPEED_TIME", stall.max(1).to_string());
        }
        c.args(args).output().map_err(RepoError::NoGit)
    }

    /// Fetches commit `rev` from `url` (see the module documentation),
    /// giving up on an HTTP transfer stalled for `stall` seconds.
    pub fn fetch(&self, url: &str, rev: &str, stall: u64) -> Result<(), RepoError> {
        let keep = format!("+{rev}:refs/strata/{rev}");
        let first = self.run_remote(
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--depth=1",
                "--",
                url,
                &keep,
            ],
            stall,
        )?;
        if first.status.success() && self.has_commit(rev) {
            return Ok(());
        }
        let probe = self.run_remote(&["ls-remote", "--quiet", "--", url, "HEAD"], stall)?;
        if !probe.status.success() {
            return Err(RepoError::Unreachable {
                url: url.to_string(),
                stderr: stderr(&probe),
            });
        }
        let mut args = vec!["fetch", "--quiet", "--no-tags"];
        if self.dir.join("shallow").is_file() {
            args.push("--unshallow");
        }
        args.extend([
            "--",
            url,
            "+refs/heads/*:refs/strata/heads/*",
            "+refs/tags/*:refs/strata/tags/*",
        ]);
        let full = self.run_remote(&args, stall)?;
        if !full.status.success() {
            return Err(RepoError::Unreachable {
                url: url.to_string(),
                stderr: stderr(&full),
            });
        }
        if !self.has_commit(rev) {
            return Err(RepoError::NoSuchCommit {
                url: url.to_string(),
                rev: rev.to_string(),
            });
        }
        self.run_ok(&["update-ref", "--", &format!("refs/strata/{rev}"), rev])?;
        Ok(())
    }

    /// The committer time of `rev`, in seconds since the epoch.
    pub fn commit_time(&self, rev: &str) -> Result<u64, RepoError> {
        let out = self.run_ok(&["log", "-1", "--format=%ct", "--end-of-options", rev, "--"])?;
        let text = String::from_utf8_lossy(&out);
        text.trim().parse().map_err(|_| RepoError::Git {
            cmd: format!("log -1 --format=%ct {rev}"),
            dir: self.dir.clone(),
            stderr: format!("unexpected output `{}`", text.trim()),
        })
    }

    /// Every blob, symlink and submodule of the tree of `rev`, recursively.
    pub fn tree(&self, rev: &str) -> Result<Vec<TreeEntry>, RepoError> {
        let out = self.run_ok(&["ls-tree", "-r", "-z", "--full-tree", "--", rev])?;
        let mut entries = Vec::new();
        for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let bad = || RepoError::Git {
                cmd: format!("ls-tree -r {rev}"),
                dir: self.dir.clone(),
                stderr: format!("unexpected line `{}`", String::from_utf8_lossy(record)),
            };
            let tab = record.iter().position(|b| *b == b'\t').ok_or_else(bad)?;
            let head = std::str::from_utf8(&record[..tab]).map_err(|_| bad())?;
            let mut fields = head.split(' ');
            let (Some(mode), Some(_kind), Some(oid)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad());
            };
            entries.push(TreeEntry {
                mode: u32::from_str_radix(mode, 8).map_err(|_| bad())?,
                oid: oid.to_string(),
                path: record[tab + 1..].to_vec(),
            });
        }
        Ok(entries)
    }

    /// `.gitmodules` at `rev`: submodule path → URL (empty without the file).
    pub fn submodule_urls(&self, rev: &str) -> Result<BTreeMap<Vec<u8>, String>, RepoError> {
        let blob = format!("{rev}:.gitmodules");
        if !self
            .run(&["cat-file", "-e", "--", &blob])
            .is_ok_and(|o| o.status.success())
        {
            return Ok(BTreeMap::new());
        }
        let out = self.run_ok(&[
            "config",
            &format!("--blob={blob}"),
            "-z",
            "--get-regexp",
            "--",
            r"^submodule\..*\.(path|url)$",
        ])?;
        let (mut paths, mut urls) = (BTreeMap::new(), BTreeMap::new());
        for item in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let text = String::from_utf8_lossy(item);
            let Some((key, value)) = text.split_once('\n') else {
                continue;
            };
            let Some(rest) = key.strip_prefix("submodule.") else {
                continue;
            };
            if let Some(name) = rest.strip_suffix(".path") {
                paths.insert(name.to_string(), value.as_bytes().to_vec());
            } else if let Some(name) = rest.strip_suffix(".url") {
                urls.insert(name.to_string(), value.to_string());
            }
        }
        Ok(paths
            .into_iter()
            .filter_map(|(name, path)| urls.remove(&name).map(|u| (path, u)))
            .collect())
    }

    /// A `git cat-file --batch` process reading blobs of this mirror.
    pub fn blobs(&self) -> Result<Blobs, RepoError> {
        let mut child = self
            .git()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RepoError::NoGit)?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(256 * 1024, child.stdout.take().expect("piped"));
        Ok(Blobs {
            child,
            stdin: Some(stdin),
            stdout,
        })
    }
}

/// Reads blobs one at a time from `git cat-file --batch`.
pub struct Blobs {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Blobs {
    /// Streams blob `oid` to `f` (its size and a reader of exactly that many bytes).
    pub fn read<T>(
        &mut self,
        oid: &str,
        f: impl FnOnce(u64, &mut dyn Read) -> io::Result<T>,
    ) -> io::Result<T> {
        let stdin = self.stdin.as_mut().expect("open until drop");
        stdin.write_all(format!("{oid}\n").as_bytes())?;
        stdin.flush()?;
        let mut header = String::new();
        self.stdout.read_line(&mut header)?;
        let mut parts = header.split_whitespace();
        let (_, kind, size) = (parts.next(), parts.next(), parts.next());
        if kind != Some("blob") {
            return Err(io::Error::other(format!(
                "git cat-file: object {oid} is not a blob ({})",
                header.trim()
            )));
        }
        let size: u64 = size
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("git cat-file: bad header `{header}`")))?;
        let mut body = (&mut self.stdout).take(size);
        let value = f(size, &mut body)?;
        io::copy(&mut body, &mut io::sink())?;
        let mut newline = [0u8; 1];
        self.stdout.read_exact(&mut newline)?;
        Ok(value)
    }
}

impl Drop for Blobs {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The transports git may use whatever the user's configuration says; all
/// others (`ext`, `fd`, any `<helper>::`) are refused by `protocol.allow`.
const ALWAYS: [&str; 4] = ["http", "https", "ssh", "git"];

/// `git` with no prompts, no inherited repository, stdin from /dev/null, and
/// the transports pinned (`file` only when `allow_file`).
fn plain_git(allow_file: bool) -> Command {
    let mut c = Command::new("git");
    c.args([
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.ext.allow=never",
    ]);
    c.arg("-c").arg(format!(
        "protocol.file.allow={}",
        if allow_file { "always" } else { "never" }
    ));
    for p in ALWAYS {
        c.arg("-c").arg(format!("protocol.{p}.allow=always"));
    }
    // git consults GIT_ALLOW_PROTOCOL instead of protocol.* when it is set:
    // keep the user's list, narrowed to what the pins allow.
    if let Some(user) = std::env::var_os("GIT_ALLOW_PROTOCOL") {
        let user = user.to_string_lossy().into_owned();
        let allowed: Vec<&str> = user
            .split(':')
            .filter(|p| ALWAYS.contains(p) || (allow_file && *p == "file"))
            .collect();
        c.env("GIT_ALLOW_PROTOCOL", allowed.join(":"));
    }
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
    ] {
        c.env_remove(var);
    }
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never");
    if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
        c.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    c.stdin(Stdio::null());
    c
}

fn stderr(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Resolves a submodule URL from `.gitmodules` against the superproject's
/// URL as git does: `./x` and `../x` are relative to it (each `../` drops
/// one path component), anything else is absolute. A relative URL that
/// would climb above the superproject's host is refused, as git refuses it.
pub fn submodule_url(super_url: &str, url: &str) -> Result<String, String> {
    if !url.starts_with("./") && !url.starts_with("../") {
        return Ok(url.to_string());
    }
    // What no `../` may remove: `scheme://host` or scp-like `host:`.
    let root_len = match super_url.find("://") {
        Some(i) => {
            let after = &super_url[i + 3..];
            i + 3 + after.find('/').unwrap_or(after.len())
        }
        None => super_url.find(':').map_or(0, |i| i + 1),
    };
    let (root, path) = super_url.split_at(root_len);
    let mut parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            if parts.pop().is_none() {
                return Err(format!(
                    "the relative URL climbs above the host of the superproject {super_url}"
                ));
            }
        } else {
            break;
        }
    }
    parts.push(rest);
    let sep = if root.ends_with(':') { "" } else { "/" };
    Ok(format!("{root}{sep}{}", parts.join("/")))
}

/// A tree path as an OS path.
pub fn os_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_submodule_urls() {
        let ok = |s: &str, u: &str| submodule_url(s, u).unwrap();
        assert_eq!(
            ok("https://h/org/repo.git", "../lib.git"),
            "https://h/org/lib.git"
        );
        assert_eq!(
            ok("file:///r/super.git/", "./sub"),
            "file:///r/super.git/sub"
        );
        assert_eq!(ok("git@h:org/repo", "../x"), "git@h:org/x");
        assert_eq!(ok("git@h:repo", "../x"), "git@h:x");
        assert_eq!(ok("https://h/repo", "../x"), "https://h/x");
        assert_eq!(ok("file:///r/super.git", "../../x"), "file:///x");
        assert_eq!(ok("https://h/a", "https://o/b"), "https://o/b");
        for (base, url) in [
            ("https://h/repo", "../../x"),
            ("git@h:repo", "../../x"),
            ("file:///r/super.git", "../../../x"),
        ] {
            assert!(submodule_url(base, url).is_err(), "{base} {url}");
        }
    }
}
