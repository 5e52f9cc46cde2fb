//! The patch corpus generator of the differential test: seeded random
//! trees, random edits, and patches made from them by `diff` and `git`
//! (see patch_differential.rs for what is compared).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

/// Cases to generate; those whose edits cancel out make no patch.
pub const CASES: usize = 240;
pub const SEED: u64 = 0x05ee_d0f5_7a7a;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    File { data: Vec<u8>, mode: u32 },
    Link(String),
}

pub type Spec = BTreeMap<String, Entry>;

pub const WORDS: &[&str] = &[
    "int",
    "x",
    "=",
    "0;",
    "return",
    "{",
    "}",
    "if",
    "(a)",
    "foo",
    "bar",
    "",
    "#include",
    "<stdio.h>",
    "/* note */",
    "y++;",
];

pub fn text(rng: &mut Rng, crlf: bool, final_newline: bool) -> Vec<u8> {
    let n = rng.below(30) + 1;
    let mut out = Vec::new();
    for _ in 0..n {
        let words = rng.below(4);
        let line: Vec<&str> = (0..words).map(|_| WORDS[rng.below(WORDS.len())]).collect();
        out.extend_from_slice(line.join(" ").as_bytes());
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    if !final_newline {
        while out.last() == Some(&b'\n') || out.last() == Some(&b'\r') {
            out.pop();
        }
        out.extend_from_slice(b"end");
    }
    out
}

pub fn binary(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(3000) + 8;
    let mut out: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    out[3] = 0;
    out
}

pub fn new_name(rng: &mut Rng, spec: &Spec) -> String {
    const DIRS: &[&str] = &["", "src/", "src/sub/", "doc/", "with space/"];
    const BASES: &[&str] = &["f", "main.c", "café", "x y.txt", "data.bin", "n"];
    loop {
        let name = format!(
            "{}{}{}",
            DIRS[rng.below(DIRS.len())],
            BASES[rng.below(BASES.len())],
            rng.below(50)
        );
        let clash = spec.keys().any(|k| {
            k == &name || k.starts_with(&format!("{name}/")) || name.starts_with(&format!("{k}/"))
        });
        if !clash {
            return name;
        }
    }
}

pub fn new_file(rng: &mut Rng) -> Entry {
    let data = match rng.below(10) {
        0 | 1 => binary(rng),
        2 | 3 => {
            let final_newline = rng.chance(70);
            text(rng, true, final_newline)
        }
        4 => text(rng, false, false),
        _ => text(rng, false, true),
    };
    let mode = if rng.chance(15) { 0o755 } else { 0o644 };
    Entry::File { data, mode }
}

pub fn base_tree(rng: &mut Rng, links: bool) -> Spec {
    let mut spec = Spec::new();
    for _ in 0..rng.below(6) + 2 {
        let name = new_name(rng, &spec);
        spec.insert(name, new_file(rng));
    }
    if links && rng.chance(30) {
        let target = spec.keys().next().unwrap().clone();
        let name = new_name(rng, &spec);
        spec.insert(name, Entry::Link(format!("../{target}")));
    }
    spec
}

pub fn edit_text(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let crlf = data.windows(2).any(|w| w == b"\r\n");
    let mut lines: Vec<Vec<u8>> = data
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    for _ in 0..rng.below(3) + 1 {
        let at = rng.below(lines.len() + 1);
        let fresh = text(rng, crlf, true);
        let fresh: Vec<Vec<u8>> = fresh
            .split_inclusive(|b| *b == b'\n')
            .take(rng.below(3) + 1)
            .map(<[u8]>::to_vec)
            .collect();
        match rng.below(3) {
            0 => {
                lines.splice(at..at, fresh);
            }
            1 if at < lines.len() => {
                let end = (at + rng.below(3) + 1).min(lines.len());
                lines.drain(at..end);
            }
            _ if at < lines.len() => {
                lines.splice(at..at + 1, fresh);
            }
            _ => lines.push(fresh.concat()),
        }
    }
    let mut out = lines.concat();
    // Sometimes toggle the final newline.
    if rng.chance(15) {
        if out.last() == Some(&b'\n') {
            out.pop();
            if out.last() == Some(&b'\r') {
                out.pop();
            }
        } else {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
    out
}

pub fn is_binary(d: &[u8]) -> bool {
    d.contains(&0)
}

/// One round of random edits. `git` allows renames, copies, modes, links.
pub fn edit(rng: &mut Rng, spec: &mut Spec, git: bool) {
    for _ in 0..rng.below(3) + 1 {
        let keys: Vec<String> = spec.keys().cloned().collect();
        let pick = keys[rng.below(keys.len())].clone();
        match rng.below(if git { 9 } else { 5 }) {
            0..=2 => match spec.get_mut(&pick).unwrap() {
                Entry::File { data, .. } if is_binary(data) => {
                    for _ in 0..rng.below(5) + 1 {
                        let i = rng.below(data.len());
                        data[i] = rng.next() as u8;
                    }
                    if rng.chance(30) {
                        data.extend((0..rng.below(100)).map(|_| rng.next() as u8));
                    }
                }
                Entry::File { data, .. } => *data = edit_text(rng, data),
                Entry::Link(t) => t.push('x'),
            },
            3 => {
                let name = new_name(rng, spec);
                spec.insert(name, new_file(rng));
            }
            4 if spec.len() > 1 => {
                spec.remove(&pick);
            }
            5 => {
                let e = spec.remove(&pick).unwrap();
                let name = new_name(rng, spec);
                spec.insert(name, e);
            }
            6 => {
                let mut e = spec[&pick].clone();
                if let Entry::File { data, .. } = &mut e
                    && !is_binary(data)
                    && rng.chance(50)
                {
                    *data = edit_text(rng, data);
                }
                let name = new_name(rng, spec);
                spec.insert(name, e);
            }
            7 => {
                if let Entry::File { mode, .. } = spec.get_mut(&pick).unwrap() {
                    *mode ^= 0o111;
                }
            }
            8 => {
                let name = new_name(rng, spec);
                spec.insert(name, Entry::Link(pick.clone()));
            }
            _ => {}
        }
    }
}

pub fn materialize(spec: &Spec, dir: &Path) {
    if dir.exists() {
        for e in fs::read_dir(dir).unwrap().flatten() {
            if e.file_name() == ".git" {
                continue;
            }
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                fs::remove_dir_all(&p).unwrap();
            } else {
                fs::remove_file(&p).unwrap();
            }
        }
    }
    fs::create_dir_all(dir).unwrap();
    for (name, e) in spec {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        match e {
            Entry::File { data, mode } => {
                fs::write(&p, data).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
            }
            Entry::Link(t) => symlink(t, &p).unwrap(),
        }
    }
}

/// path → (kind, mode, content); directories included.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    pub fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>)>) {
        for e in fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_symlink() {
                let t = fs::read_link(&p).unwrap();
                out.insert(rel, ('l', 0, t.to_string_lossy().as_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(rel, ('d', 0, Vec::new()));
                walk(root, &p, out);
            } else {
                out.insert(
                    rel,
                    ('f', m.permissions().mode() & 0o7777, fs::read(&p).unwrap()),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

pub fn run(dir: &Path, prog: &str, args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    (out.status.success(), out.stdout)
}

pub fn git_commit(repo: &Path, msg: &str) {
    assert!(run(repo, "git", &["add", "-A"]).0);
    assert!(run(repo, "git", &["commit", "-q", "--allow-empty", "-m", msg]).0);
}

/// Generates one patch; returns (generator name, patch bytes, old tree,
/// the tree the patch was made from).
pub fn generate(rng: &mut Rng, w: &Path) -> (&'static str, Vec<u8>, Spec, Spec) {
    let kind = rng.below(5);
    let git = kind >= 3;
    let base = base_tree(rng, git);
    match kind {
        0..=2 => {
            let mut new = base.clone();
            edit(rng, &mut new, false);
            materialize(&base, &w.join("a"));
            materialize(&new, &w.join("b"));
            let (name, args): (&str, Vec<String>) = match kind {
                0 => {
                    // One file that exists on both sides.
                    let both: Vec<&String> = base.keys().filter(|k| new.contains_key(*k)).collect();
                    let f = both[rng.below(both.len())];
                    (
                        "diff -u",
                        vec!["-u".into(), format!("a/{f}"), format!("b/{f}")],
                    )
                }
                1 => (
                    "diff -Nu -r",
                    vec!["-Nu".into(), "-r".into(), "a".into(), "b".into()],
                ),
                _ => (
                    "diff -Nc -r",
                    vec!["-Nc".into(), "-r".into(), "a".into(), "b".into()],
                ),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (_, mut out) = run(w, "diff", &args);
            if kind == 1 && rng.chance(40) {
                out = svn_style(&out);
            }
            (name, out, base, new)
        }
        _ => {
            let repo = w.join("repo");
            materialize(&base, &repo);
            assert!(run(&repo, "git", &["init", "-q", "--template="]).0);
            git_commit(&repo, "base");
            let rounds = if kind == 3 { 1 } else { rng.below(2) + 2 };
            let mut cur = base.clone();
            for r in 0..rounds {
                edit(rng, &mut cur, true);
                materialize(&cur, &repo);
                git_commit(&repo, &format!("edit {r}"));
            }
            let range = format!("HEAD~{rounds}");
            let (name, out) = if kind == 3 {
                let (ok, out) = run(
                    &repo,
                    "git",
                    &["diff", "--binary", "-M", "-C", &range, "HEAD"],
                );
                assert!(ok);
                ("git diff --binary", out)
            } else {
                let (ok, out) = run(
                    &repo,
                    "git",
                    &["format-patch", "-M", "-C", "--binary", "--stdout", &range],
                );
                assert!(ok);
                ("git format-patch", out)
            };
            (name, out, base, cur)
        }
    }
}

/// Rewrites `diff -r` command lines as `Index:`/`====` headers (the shape
/// of svn and CVS patches) with a line of garbage before each.
pub fn svn_style(patch: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in patch.split_inclusive(|b| *b == b'\n') {
        match line.strip_prefix(b"diff -Nu -r a/") {
            Some(name) => {
                out.extend_from_slice(b"This line is garbage between patches.\nIndex: ");
                let name = name.split(|b| *b == b' ').next().unwrap_or(b"");
                out.extend_from_slice(name);
                out.extend_from_slice(b"\n");
                out.extend_from_slice(&[b'='; 67]);
                out.extend_from_slice(b"\n");
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}
