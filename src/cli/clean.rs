//! `strata clean`: remove build directories. Packages are kept (they are
//! verified downloads); delete `packages/` by hand to drop them.

use super::{Failure, Global};
use crate::fsutil::remove_dir_atomic;
use crate::manifest::{ManifestError, Module, Project};
use anyhow::Context as _;
use std::path::Path;

pub fn clean(g: &Global, modules: &[String], all: bool) -> Result<(), Failure> {
    let l = g.load()?;
    let p = &l.project;
    if !all && modules.is_empty() {
        return Err(
            ManifestError::new(Path::new("strata.toml"), "nothing to clean")
                .help("name modules (`strata clean zlib`) or pass --all")
                .into(),
        );
    }
    let lock = super::lock_project(p, &g.reporter())?;
    if all {
        for m in &p.modules {
            remove_module(p, m)
                .with_context(|| format!("removing the build dirs of {}", m.name))?;
        }
        remove_dir_atomic(&p.settings.install_dir).context("removing the install dir")?;
        let state = p.state_dir();
        for d in ["modules", "targets", "install", "home"] {
            remove_dir_atomic(&state.join(d))
                .with_context(|| format!("removing {}", state.join(d).display()))?;
        }
        let _ = std::fs::remove_file(state.join("install.json"));
        if g.json {
            crate::report::emit_json(
                "cleaned",
                serde_json::json!({"all": true, "build_dir": p.settings.build_dir.display().to_string(), "install_dir": p.settings.install_dir.display().to_string()}),
            );
        } else if !g.quiet {
            crate::errln!("     Removed build and install directories");
        }
        lock.release();
        return Ok(());
    }
    for name in modules {
        let m = p.module(name).ok_or_else(|| {
            let e = ManifestError::new(Path::new("modules"), format!("no module named `{name}`"));
            match crate::manifest::closest(name, p.modules.iter().map(|m| m.name.as_str())) {
                Some(b) => e.help(format!("did you mean `{b}`?")),
                None => e,
            }
        })?;
        let dir = p.module_build_dir(m);
        let n = remove_module(p, m).with_context(|| format!("removing {}", dir.display()))?;
        if g.json {
            crate::report::emit_json(
                "cleaned",
                serde_json::json!({"module": m.name, "dir": dir.display().to_string(), "variant_dirs": n}),
            );
        } else if !g.quiet {
            let variants = if n > 0 {
                format!(
                    " and {}",
                    crate::report::count(n as u64, "variant build dir", "variant build dirs")
                )
            } else {
                String::new()
            };
            crate::errln!("     Removed {}{variants}", dir.display());
        }
    }
    lock.release();
    Ok(())
}

/// Removes a module's source tree, its variants' build dirs and all their
/// state and home dirs; returns how many variant build dirs there were.
fn remove_module(p: &Project, m: &Module) -> std::io::Result<usize> {
    let name = m.dir_name();
    let variant_prefix = format!("{name}@");
    let mut variants = 0;
    for parent in [
        p.settings.build_dir.clone(),
        p.state_dir().join("modules"),
        p.state_dir().join("home"),
    ] {
        let entries = match std::fs::read_dir(&parent) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let file_name = e.file_name();
            let file_name = file_name.to_string_lossy();
            if file_name.starts_with(&variant_prefix) {
                if parent == p.settings.build_dir {
                    variants += 1;
                }
                remove_dir_atomic(&e.path())?;
            }
        }
        remove_dir_atomic(&parent.join(&name))?;
    }
    Ok(variants)
}
