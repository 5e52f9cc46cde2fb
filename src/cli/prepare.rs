//! `strata prepare [MODULE…]`: fetch, verify, unpack and patch, then stop
//! (Buildroot's `make <pkg>-patch`), printing each patched tree's path on
//! stdout, one per line, so `cd "$(strata prepare linux)"` works.
//!
//! The decision a reader may question: a tree already patched at the
//! expected key is left alone even if a build has run in it since, because
//! re-extracting would throw that build away; `strata clean MODULE` first
//! gives a pristine tree. Named modules are prepared without their
//! dependencies (their sources are not needed to write a patch); with no
//! names, every module of the `default` target is.

use super::{EXIT_FAILURE, EXIT_INTERRUPTED, Failure, Global};
use crate::exec::{self, Context, command};
use crate::graph;
use crate::lock::ProjectLock;
use anyhow::Context as _;

pub fn prepare(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
    let roots = graph::select(&l.project, names)?;
    let modules = if names.is_empty() {
        l.graph.closure(&roots)
    } else {
        l.graph
            .order
            .iter()
            .copied()
            .filter(|i| roots.contains(i))
            .collect()
    };
    let reporter = g.reporter();
    let lock_path = l.project.state_dir().join("lock");
    let _lock = ProjectLock::acquire(&lock_path, |p| {
        crate::errln!(
            "    Blocking: waiting for lock on {} (another strata is using this project)",
            p.display()
        );
    })
    .with_context(|| format!("cannot take the project lock {}", lock_path.display()))?;
    command::install_interrupt_handler();
    let ctx = Context {
        store: None,
        project: &l.project,
        graph: &l.graph,
        keys: &l.keys,
        reporter: &reporter,
        fetch: g.fetch_options(),
        jobs: g.jobs(&l.project),
        keep_going: g.keep_going,
    };
    let mut failed = false;
    for i in modules {
        let m = &l.project.modules[i];
        match exec::prepare(&ctx, i) {
            Ok(_) => {
                let dir = l.project.module_build_dir(m);
                crate::outln!("{}", dir.display());
                if let Some(git) = &m.git
                    && !g.quiet
                {
                    let packages = &l.project.settings.packages_dir;
                    if let Some(sum) = crate::fetch::recorded_sha256(packages, &m.file) {
                        crate::errln!(
                            "    {} is commit {} of {}; its archive {} has sha256 {sum}",
                            m.name, git.rev, git.url, m.file
                        );
                    }
                }
            }
            Err(e) if e.is_interrupt() => return Err(Failure::Code(EXIT_INTERRUPTED)),
            Err(e) => {
                reporter.error(&e.to_string());
                failed = true;
                if !g.keep_going {
                    break;
                }
            }
        }
    }
    if failed {
        Err(Failure::Code(EXIT_FAILURE))
    } else {
        Ok(())
    }
}
