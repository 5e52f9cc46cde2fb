//! Workspaces and file copies for the runner: `persist_to_workspace`
//! globs (`*`, `?`, `**`), `attach_workspace` with CircleCI's fan-in check,
//! and a copy that keeps modes, mtimes and symlinks (also used for
//! `store_artifacts`).

use super::config::Job;
use super::state::Run;
use crate::report::human_bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Applies the workspace layers of `job`'s upstream jobs (transitively) in
/// workflow order. Two upstream jobs that ran concurrently (neither requires
/// the other) and persisted the same file: CircleCI's fan-in error.
pub(super) fn attach(run: &Run<'_>, job: &Job, at: &Path) -> Result<String, String> {
    let upstream = ancestors(run.jobs, &job.name);
    let ws = run.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let layers: Vec<(&Job, &BTreeMap<String, PathBuf>)> = run
        .jobs
        .iter()
        .filter(|j| upstream.contains(&j.name))
        .filter_map(|j| ws.get(&j.name).map(|l| (j, l)))
        .collect();
    for (a, (ja, la)) in layers.iter().enumerate() {
        for (jb, lb) in &layers[a + 1..] {
            let ordered = ancestors(run.jobs, &jb.name).contains(&ja.name)
                || ancestors(run.jobs, &ja.name).contains(&jb.name);
            if ordered {
                continue;
            }
            let both: Vec<&String> = la.keys().filter(|f| lb.contains_key(*f)).collect();
            if !both.is_empty() {
                return Err(format!(
                    "Concurrent upstream jobs persisted the same file(s) into the workspace: {} (jobs `{}` and `{}`)\n  hint: persist each file from one job only, or make one job require the other",
                    both.iter()
                        .map(|f| format!("'{f}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    ja.name,
                    jb.name
                ));
            }
        }
    }
    let mut n = 0;
    let mut bytes = 0;
    for (_, layer) in &layers {
        for (rel, src_root) in layer.iter() {
            let mut files = BTreeMap::new();
            copy_tree(src_root, Path::new(rel), at, &mut files, &mut bytes)
                .map_err(|e| format!("attaching {rel}: {e}"))?;
            n += 1;
        }
    }
    Ok(format!(
        "{} from {}, {}",
        crate::report::count(n as u64, "file", "files"),
        crate::report::count(layers.len() as u64, "upstream job", "upstream jobs"),
        human_bytes(bytes)
    ))
}

/// Every job `name` requires, directly or not.
fn ancestors(jobs: &[Job], name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if let Some(j) = jobs.iter().find(|j| j.name == n) {
            for r in &j.requires {
                if out.insert(r.clone()) {
                    todo.push(r.clone());
                }
            }
        }
    }
    out
}

/// Paths under `base` matching `pat` (`*`, `?` and `**` in path segments),
/// relative to `base`. A pattern without wildcards matches itself if it exists.
pub(super) fn glob(base: &Path, pat: &str) -> Result<Vec<PathBuf>, String> {
    let pat = pat.trim_start_matches("./");
    if !pat.contains(['*', '?']) {
        let p = PathBuf::from(pat);
        return Ok(if std::fs::symlink_metadata(base.join(&p)).is_ok() {
            vec![p]
        } else {
            vec![]
        });
    }
    let segs: Vec<&str> = pat.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    walk_glob(base, PathBuf::new(), &segs, &mut out);
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk_glob(base: &Path, rel: PathBuf, segs: &[&str], out: &mut Vec<PathBuf>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(rel);
        return;
    };
    if *first == "**" {
        walk_glob(base, rel.clone(), rest, out);
        if let Ok(rd) = std::fs::read_dir(base.join(&rel)) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk_glob(base, rel.join(e.file_name()), segs, out);
                }
            }
        }
        return;
    }
    let Ok(rd) = std::fs::read_dir(base.join(&rel)) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if wildcard(first, &name) {
            walk_glob(base, rel.join(&name), rest, out);
        }
    }
}

/// `*` and `?` matching within one path segment.
fn wildcard(pat: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Copies `base/rel` (file, symlink or tree) to `dest/rel`, keeping modes,
/// mtimes and symlinks; records every file copied.
pub(super) fn copy_tree(
    base: &Path,
    rel: &Path,
    dest: &Path,
    files: &mut BTreeMap<String, PathBuf>,
    bytes: &mut u64,
) -> std::io::Result<()> {
    let src = base.join(rel);
    let to = dest.join(rel);
    let meta = std::fs::symlink_metadata(&src)?;
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p)?;
    }
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir_all(&to)?;
        for e in std::fs::read_dir(&src)? {
            let e = e?;
            copy_tree(base, &rel.join(e.file_name()), dest, files, bytes)?;
        }
        std::fs::set_permissions(&to, meta.permissions())?;
    } else {
        if std::fs::symlink_metadata(&to).is_ok() {
            std::fs::remove_file(&to)?;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &to)?;
        } else {
            std::fs::copy(&src, &to)?;
            *bytes += meta.len();
            filetime::set_file_mtime(&to, filetime::FileTime::from_last_modification_time(&meta))?;
        }
        files.insert(rel.display().to_string(), dest.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_within_a_segment() {
        assert!(wildcard("*.txt", "a.txt"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("*.txt", "a.txz"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXXbYYc"));
    }
}
