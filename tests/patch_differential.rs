//! Differential test of the patcher against GNU `patch -p1 --fuzz=0` and
//! `git apply --binary`, on a corpus generated on the fly.
//!
//! A seeded generator makes random trees (text, CRLF, no final newline,
//! binary, executable files, names with spaces and UTF-8) and random edits
//! (line edits, binary edits, created, deleted, renamed, copied and
//! mode-changed files, symlinks for git), turns them into patches with
//! `diff -u`, `diff -Nu -r`, `diff -Nc -r`, `git diff --binary -M -C` and
//! `git format-patch -M -C --stdout` (two or three commits touching the same
//! files), some `diff -Nu -r` ones rewritten with `Index:`/`====` headers and
//! garbage between sections, and applies each patch to three copies of the old tree: with
//! strata's library, with `git apply` and with GNU patch. Trees are compared
//! byte for byte and mode for mode. The rule: when strata succeeds, its tree
//! must equal the tree of a reference that succeeded, or the tree the patch
//! was made from (git apply has its own bugs: a file created and deleted by
//! two commits of one format-patch survives it); when both references
//! succeed with the same tree, strata must succeed. The figures are printed
//! (run with `--nocapture`) so they can be quoted; `STRATA_DIFF_VERBOSE=1`
//! prints one line per case and `STRATA_DIFF_KEEP=<case>,…` keeps their files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Cases to generate; those whose edits cancel out make no patch.
const CASES: usize = 240;
const SEED: u64 = 0x05ee_d0f5_7a7a;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    File { data: Vec<u8>, mode: u32 },
    Link(String),
}

type Spec = BTreeMap<String, Entry>;

const WORDS: &[&str] = &[
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

fn text(rng: &mut Rng, crlf: bool, final_newline: bool) -> Vec<u8> {
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

fn binary(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(3000) + 8;
    let mut out: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    out[3] = 0;
    out
}

fn new_name(rng: &mut Rng, spec: &Spec) -> String {
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

fn new_file(rng: &mut Rng) -> Entry {
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

fn base_tree(rng: &mut Rng, links: bool) -> Spec {
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

fn edit_text(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
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

fn is_binary(d: &[u8]) -> bool {
    d.contains(&0)
}

/// One round of random edits. `git` allows renames, copies, modes, links.
fn edit(rng: &mut Rng, spec: &mut Spec, git: bool) {
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

fn materialize(spec: &Spec, dir: &Path) {
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
fn snapshot(dir: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>)>) {
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

fn run(dir: &Path, prog: &str, args: &[&str]) -> (bool, Vec<u8>) {
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

fn git_commit(repo: &Path, msg: &str) {
    assert!(run(repo, "git", &["add", "-A"]).0);
    assert!(run(repo, "git", &["commit", "-q", "--allow-empty", "-m", msg]).0);
}

/// Generates one patch; returns (generator name, patch bytes, old tree,
/// the tree the patch was made from).
fn generate(rng: &mut Rng, w: &Path) -> (&'static str, Vec<u8>, Spec, Spec) {
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
fn svn_style(patch: &[u8]) -> Vec<u8> {
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

#[derive(Default)]
struct Figures {
    patches: usize,
    gnu_ok: usize,
    git_ok: usize,
    same_as_gnu: usize,
    same_as_git: usize,
    same_as_target: usize,
    generating: Duration,
    in_strata: Duration,
    in_references: Duration,
    refused_like_a_reference: usize,
    per_generator: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

/// Generates, applies and compares case `case` (its own seed, so the corpus
/// does not depend on how cases are spread over threads).
fn run_case(case: usize, root: &Path, fig: &Mutex<Figures>) {
    let mut rng = Rng(SEED ^ (case as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.next();
    let w = root.join(format!("c{case}"));
    fs::create_dir_all(&w).unwrap();
    let t0 = Instant::now();
    let (generator, patch, base, target) = generate(&mut rng, &w);
    let generating = t0.elapsed();
    if patch.is_empty() {
        // The edits cancelled out: no patch.
        fs::remove_dir_all(&w).unwrap();
        return;
    }
    let patch_file = w.join("p.patch");
    fs::write(&patch_file, &patch).unwrap();
    let pf = patch_file.to_str().unwrap();
    let (s, g, p) = (w.join("s"), w.join("g"), w.join("p"));
    for d in [&s, &g, &p] {
        materialize(&base, d);
    }
    let t0 = Instant::now();
    let strata = strata::patch::apply_patch(&s, "p.patch", &patch);
    let in_strata = t0.elapsed();
    let t0 = Instant::now();
    let git_ok = run(&g, "git", &["apply", "--binary", pf]).0;
    let gnu_ok = run(
        &p,
        "patch",
        &[
            "-p1",
            "--fuzz=0",
            "-f",
            "-s",
            "--no-backup-if-mismatch",
            "-r",
            "-",
            "-i",
            pf,
        ],
    )
    .0;
    let in_references = t0.elapsed();
    let (ts, tg, tp) = (snapshot(&s), snapshot(&g), snapshot(&p));
    let same_gnu = gnu_ok && ts == tp;
    let same_git = git_ok && ts == tg;
    let same_target = ts == expected(&target);
    if std::env::var_os("STRATA_DIFF_VERBOSE").is_some() {
        eprintln!(
            "case {case} {generator}: strata {} gnu {gnu_ok}/{same_gnu} git {git_ok}/{same_git} target {same_target}",
            strata.as_ref().map_or_else(
                |e| e.to_string().lines().next().unwrap_or("").to_string(),
                |_| "ok".into()
            ),
        );
    }
    let mut failure = None;
    let mut f = fig.lock().unwrap();
    f.patches += 1;
    *f.per_generator.entry(generator).or_default() += 1;
    f.generating += generating;
    f.in_strata += in_strata;
    f.in_references += in_references;
    f.gnu_ok += usize::from(gnu_ok);
    f.git_ok += usize::from(git_ok);
    match &strata {
        Ok(()) => {
            f.same_as_gnu += usize::from(same_gnu);
            f.same_as_git += usize::from(same_git);
            f.same_as_target += usize::from(same_target);
            if !same_gnu && !same_git && !same_target {
                failure = Some(format!(
                    "case {case} ({generator}): strata exit 0 with a tree unlike any reference (gnu ok {gnu_ok}, git ok {git_ok})"
                ));
            }
        }
        Err(e) => {
            if gnu_ok && git_ok && tg == tp {
                failure = Some(format!(
                    "case {case} ({generator}): strata refused what both references apply alike: {e}"
                ));
            } else {
                f.refused_like_a_reference += 1;
            }
        }
    }
    let keep = std::env::var("STRATA_DIFF_KEEP")
        .is_ok_and(|k| k.split(',').any(|k| k == case.to_string()));
    match failure {
        // Failing cases stay on disk for inspection.
        Some(msg) => f.failures.push(msg),
        None if keep => eprintln!("case {case} kept in {}", w.display()),
        None => {
            drop(f);
            fs::remove_dir_all(&w).unwrap();
        }
    }
}

/// The snapshot `materialize(spec)` would give, without writing it.
fn expected(spec: &Spec) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for (name, e) in spec {
        let mut dir = Path::new(name).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            out.insert(d.to_string_lossy().into_owned(), ('d', 0, Vec::new()));
            dir = d.parent();
        }
        let v = match e {
            Entry::File { data, mode } => ('f', *mode, data.clone()),
            Entry::Link(t) => ('l', 0, t.as_bytes().to_vec()),
        };
        out.insert(name.clone(), v);
    }
    out
}

#[test]
fn strata_applies_patches_as_gnu_patch_and_git_apply_do() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let fig = Mutex::new(Figures::default());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let case = next.fetch_add(1, Ordering::Relaxed);
                    if case >= CASES || fig.lock().unwrap().failures.len() > 5 {
                        break;
                    }
                    run_case(case, tmp.path(), &fig);
                }
            });
        }
    });
    let fig = fig.into_inner().unwrap();
    eprintln!(
        "patch differential: {} patches ({:?}); GNU patch applied {}, git apply {}; strata identical to GNU patch on {}, to git apply on {}, to the tree the patch was made from on {}, refused with a refusing reference on {}; {:.1?} on {workers} threads (generating {:.1?}, strata {:.1?}, git apply + GNU patch {:.1?})",
        fig.patches,
        fig.per_generator,
        fig.gnu_ok,
        fig.git_ok,
        fig.same_as_gnu,
        fig.same_as_git,
        fig.same_as_target,
        fig.refused_like_a_reference,
        started.elapsed(),
        fig.generating,
        fig.in_strata,
        fig.in_references,
    );
    if std::env::var_os("STRATA_DIFF_KEEP").is_some() && fig.failures.is_empty() {
        let _ = tmp.keep();
    } else if !fig.failures.is_empty() {
        let keep = tmp.keep();
        panic!(
            "{}\n(cases kept in {})",
            fig.failures.join("\n"),
            keep.display()
        );
    }
    assert!(fig.patches >= 200, "only {} patches generated", fig.patches);
}
