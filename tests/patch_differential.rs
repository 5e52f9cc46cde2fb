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

use std::path::Path;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod patch_corpus;
use patch_corpus::*;

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
        Ok(_) => {
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
