//! The environment of a module's configure, build and install commands.
//!
//! Commands never see strata's own environment: a `CFLAGS` or `MAKEFLAGS`
//! left in the user's shell would change what is built without changing any
//! key, so two machines could publish different artifacts under one key. A
//! command sees a fixed base (a default `PATH`, its own `HOME` and `TMPDIR`, `LC_ALL`,
//! `TZ`, `SOURCE_DATE_EPOCH`), the names the project lists in
//! `[settings] pass-env` (whose values are configure-key inputs), the
//! module's `env`, and the `STRATA_*` variables.
//!
//! The decision a reader would question: `SOURCE_DATE_EPOCH` is the newest
//! mtime in the freshly extracted source tree, recorded before patches are
//! applied. It is a pure function of the archive (whose sha256 is in every
//! key), so it needs no key input of its own, and it is what reproducible
//! builds expect: the time of the last change to the source.

use crate::manifest::Module;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// `PATH` of every command before the host-tool prefixes are put in front of
/// it. Listing `PATH` in `pass-env` replaces it with the caller's.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The directories a module's commands are told about. Taken as inputs so
/// that where strata keeps its state can change without touching this file.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `STRATA_BUILD_DIR`: where the commands run.
    pub build_dir: PathBuf,
    /// `$STRATA_SOURCE_DIR`: the shared unpacked and patched source (the
    /// build dir itself for a module without params).
    pub source_dir: PathBuf,
    /// `STRATA_DESTDIR`: where install puts the module's files.
    pub destdir: PathBuf,
    /// `STRATA_SYSROOT`: the target (non-`host`) dependencies' files.
    pub sysroot: PathBuf,
    /// `STRATA_HOST`: the `host` dependencies' files; `bin/` goes first on `PATH`.
    pub host: PathBuf,
    /// `HOME`: a directory of the module's own.
    pub home: PathBuf,
    /// `TMPDIR`: the module's own, emptied before each command.
    pub tmp: PathBuf,
}

/// Values of the `pass-env` names in strata's environment, in the order
/// listed (`None`: unset, so not passed).
pub fn pass_env_values(names: &[String]) -> Vec<(String, Option<OsString>)> {
    names
        .iter()
        .map(|n| (n.clone(), std::env::var_os(n)))
        .collect()
}

/// The complete environment of one command, in the order it is applied:
/// base, `pass-env`, the module's `env`, `STRATA_*`; then the host prefix's
/// `bin/` is put in front of whatever `PATH` resulted.
pub fn command_env(
    m: &Module,
    paths: &Paths,
    jobs: usize,
    deps: &[(String, PathBuf)],
    params: &[(String, OsString)],
    pass_env: &[(String, Option<OsString>)],
    source_date_epoch: u64,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |k: &str, v: OsString| {
        env.retain(|(old, _)| old != k);
        env.push((k.into(), v));
    };
    set("PATH", DEFAULT_PATH.into());
    set("HOME", paths.home.clone().into());
    set("TMPDIR", paths.tmp.clone().into());
    set("LC_ALL", "C.UTF-8".into());
    set("TZ", "UTC".into());
    set("SOURCE_DATE_EPOCH", source_date_epoch.to_string().into());
    for (k, v) in pass_env {
        if let Some(v) = v {
            set(k, v.clone());
        }
    }
    for (k, v) in &m.env {
        set(k, v.into());
    }
    set("STRATA_JOBS", jobs.to_string().into());
    set("STRATA_DESTDIR", paths.destdir.clone().into());
    set("STRATA_SYSROOT", paths.sysroot.clone().into());
    set("STRATA_HOST", paths.host.clone().into());
    set("STRATA_BUILD_DIR", paths.build_dir.clone().into());
    set("STRATA_SOURCE_DIR", paths.source_dir.clone().into());
    for (name, value) in params {
        set(&format!("STRATA_PARAM_{name}"), value.clone());
    }
    set("STRATA_MODULE", m.name.clone().into());
    set("STRATA_VERSION", m.version.clone().into());
    for (name, dir) in deps {
        set(&format!("STRATA_DEP_{}_DIR", env_name(name)), dir.into());
    }
    let base_path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut path = OsString::from(paths.host.join("bin"));
    if !base_path.is_empty() {
        path.push(":");
        path.push(base_path);
    }
    env.retain(|(k, _)| k != "PATH");
    env.push(("PATH".into(), path));
    env
}

/// A module name as it appears in `STRATA_DEP_<NAME>_DIR`.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Where a module's `SOURCE_DATE_EPOCH` is recorded, in its state dir.
pub fn epoch_record(state_dir: &Path) -> PathBuf {
    state_dir.join("source-date-epoch")
}

/// Records `secs` as the module's `SOURCE_DATE_EPOCH`: the newest mtime the
/// archive unpacked (for a git source, whose archive stamps every entry with
/// the commit time, that is the commit time).
pub fn write_source_date_epoch(state_dir: &Path, secs: u64) -> io::Result<()> {
    crate::fsutil::write_atomic(&epoch_record(state_dir), secs.to_string().as_bytes())
}

/// The recorded `SOURCE_DATE_EPOCH` of a module; when none was recorded
/// (a tree unpacked by an older strata), the newest mtime in `tree` now.
pub fn source_date_epoch(state_dir: &Path, tree: &Path) -> u64 {
    fs::read_to_string(epoch_record(state_dir))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| newest_mtime(tree).unwrap_or(0))
}

/// The newest mtime (seconds) of anything in `tree`, symlinks not followed.
/// strata's own state lives outside every source tree, so everything here
/// (a `.strata` shipped in the archive included) is the archive's.
pub fn newest_mtime(tree: &Path) -> io::Result<u64> {
    let mut newest = 0u64;
    let mut todo = vec![tree.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let md = e.metadata()?;
            let secs = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            newest = newest.max(secs);
            if md.is_dir() {
                todo.push(e.path());
            }
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn module(env: &[(&str, &str)]) -> Module {
        Module {
            name: "zlib-ng".into(),
            version: "2.0".into(),
            urls: vec![],
            sha256: String::new(),
            file: String::new(),
            strip_components: 1,
            patches: vec![],
            patches_from: None,
            depends: vec![],
            configure: None,
            build: None,
            install: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            keep: vec![],
            host: false,
            outputs: BTreeMap::new(),
            network: false,
            git: None,
            params: vec![],
            downloads: Vec::new(),
            overridden: None,
            manifest_path: PathBuf::new(),
        }
    }

    fn paths() -> Paths {
        Paths {
            build_dir: "/b".into(),
            source_dir: "/b".into(),
            destdir: "/b/d".into(),
            sysroot: "/b/s".into(),
            host: "/b/h".into(),
            home: "/state/home".into(),
            tmp: "/state/tmp".into(),
        }
    }

    fn get<'a>(env: &'a [(OsString, OsString)], k: &str) -> Option<&'a str> {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn base_then_pass_env_then_module_env_then_strata() {
        let m = module(&[("CFLAGS", "-O2"), ("TZ", "Europe/Paris")]);
        let pass = vec![
            ("CCACHE_DIR".to_string(), Some(OsString::from("/cc"))),
            ("UNSET_ONE".to_string(), None),
        ];
        let deps = vec![("musl-cross".to_string(), PathBuf::from("/b2"))];
        let env = command_env(&m, &paths(), 4, &deps, &[], &pass, 1234);
        assert_eq!(
            get(&env, "PATH"),
            Some("/b/h/bin:/usr/local/bin:/usr/bin:/bin")
        );
        assert_eq!(get(&env, "HOME"), Some("/state/home"));
        assert_eq!(get(&env, "TMPDIR"), Some("/state/tmp"));
        assert_eq!(get(&env, "LC_ALL"), Some("C.UTF-8"));
        assert_eq!(get(&env, "TZ"), Some("Europe/Paris"));
        assert_eq!(get(&env, "SOURCE_DATE_EPOCH"), Some("1234"));
        assert_eq!(get(&env, "CCACHE_DIR"), Some("/cc"));
        assert_eq!(get(&env, "UNSET_ONE"), None);
        assert_eq!(get(&env, "CFLAGS"), Some("-O2"));
        assert_eq!(get(&env, "STRATA_JOBS"), Some("4"));
        assert_eq!(get(&env, "STRATA_HOST"), Some("/b/h"));
        assert_eq!(get(&env, "STRATA_DEP_MUSL_CROSS_DIR"), Some("/b2"));
        let names: Vec<_> = env.iter().map(|(k, _)| k).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "each name once");
    }

    #[test]
    fn pass_env_path_replaces_the_default_but_host_stays_first() {
        let pass = vec![("PATH".to_string(), Some(OsString::from("/opt/x/bin")))];
        let env = command_env(&module(&[]), &paths(), 1, &[], &[], &pass, 0);
        assert_eq!(get(&env, "PATH"), Some("/b/h/bin:/opt/x/bin"));
    }

    #[test]
    fn epoch_is_recorded_or_derived_from_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::create_dir_all(tree.join(".strata")).unwrap();
        fs::write(tree.join("sub/a"), "a").unwrap();
        fs::write(tree.join(".strata/x"), "x").unwrap();
        let set = |p: &Path, s: i64| {
            filetime::set_file_mtime(p, filetime::FileTime::from_unix_time(s, 0)).unwrap()
        };
        set(&tree.join("sub/a"), 1_500_000_000);
        set(&tree.join("sub"), 1_400_000_000);
        set(&tree.join(".strata/x"), 1_600_000_000);
        set(&tree.join(".strata"), 1_300_000_000);
        // A `.strata` in a source tree is the archive's own file: it counts.
        assert_eq!(newest_mtime(&tree).unwrap(), 1_600_000_000);
        let state = dir.path().join("state");
        fs::create_dir_all(&state).unwrap();
        assert_eq!(source_date_epoch(&state, &tree), 1_600_000_000);
        write_source_date_epoch(&state, 42).unwrap();
        assert_eq!(source_date_epoch(&state, &tree), 42);
    }
}
