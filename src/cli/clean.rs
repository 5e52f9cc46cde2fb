//! `strata clean`: remove build directories. Packages are kept (they are
//! verified downloads); delete `packages/` by hand to drop them.

use super::{Failure, Global};
use crate::fsutil::remove_dir_atomic;
use crate::lock::ProjectLock;
use crate::manifest::ManifestError;
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
    let lock_path = p.state_dir().join("lock");
    let _lock = ProjectLock::acquire(&lock_path, |p| {
        crate::errln!("    Blocking: waiting for lock on {}", p.display());
    })
    .context("cannot take the project lock")?;
    let _ = _lock.sweep(p);
    if all {
        for m in &p.modules {
            remove_dir_atomic(&p.module_build_dir(m))
                .with_context(|| format!("removing the build dir of {}", m.name))?;
        }
        remove_dir_atomic(&p.settings.install_dir).context("removing the install dir")?;
        let _ = std::fs::remove_file(p.state_dir().join("install.json"));
        if !g.quiet {
            crate::errln!("     Removed build and install directories");
        }
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
        remove_dir_atomic(&dir).with_context(|| format!("removing {}", dir.display()))?;
        if !g.quiet {
            crate::errln!("     Removed {}", dir.display());
        }
    }
    Ok(())
}
