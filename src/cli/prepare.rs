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
use crate::exec::{self, command};

pub fn prepare(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
    let inst = g.instances(&l, names)?;
    let roots = inst.selection();
    let candidates = if names.is_empty() {
        inst.graph.closure(&roots)
    } else {
        inst.graph
            .order
            .iter()
            .copied()
            .filter(|i| roots.contains(i))
            .collect()
    };
    // Variants of one module share its source: prepare it once.
    let mut seen = std::collections::HashSet::new();
    let modules: Vec<usize> = candidates
        .into_iter()
        .filter(|&i| seen.insert(inst.list[i].module))
        .collect();
    let reporter = g.reporter();
    let lock = super::lock_project(&l.project, &reporter)?;
    command::install_interrupt_handler();
    let ctx = g.context(&l.project, &inst, &reporter, None);
    let mut failed = false;
    for i in modules {
        let m = &l.project.modules[inst.list[i].module];
        match exec::prepare(&ctx, i) {
            Ok(patched_now) => {
                let dir = inst.list[i].source_dir(&l.project);
                if g.json {
                    crate::report::emit_json(
                        "prepared",
                        serde_json::json!({
                            "module": m.name, "dir": dir, "already-patched": !patched_now,
                        }),
                    );
                } else {
                    crate::outln!("{}", dir.display());
                }
                if let Some(git) = &m.git
                    && !g.quiet
                {
                    let packages = &l.project.settings.packages_dir;
                    if let Some(sum) = crate::fetch::recorded_sha256(packages, &m.file) {
                        crate::errln!(
                            "    {} is commit {} of {}; its archive {} has sha256 {sum}",
                            m.name,
                            git.rev,
                            git.url,
                            m.file
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
        return Err(Failure::Code(EXIT_FAILURE));
    }
    lock.release();
    Ok(())
}
