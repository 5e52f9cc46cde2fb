//! `strata build` and `strata fetch`.

use super::{EXIT_FAILURE, EXIT_INTERRUPTED, Failure, Global};
use crate::exec::{self, Context, command};
use crate::fetch;
use crate::graph;
use crate::instance::Instances;
use crate::report::Event;

pub fn build(
    g: &Global,
    names: &[String],
    timings: bool,
    incremental: bool,
) -> Result<(), Failure> {
    let started = std::time::SystemTime::now();
    // A timeline or an incremental build is never answered by the state.
    let plain = !timings && !incremental;
    let mut lock = None;
    if plain {
        match super::noop::answer(g, names) {
            super::noop::Answer::Done(result) => return result,
            super::noop::Answer::Full(l) => lock = l,
        }
    }
    let loaded = g
        .load()
        .and_then(|l| g.instances(&l, names).map(|inst| (l, inst)));
    let (l, inst) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            // Nothing was written under it: the next holder need not sweep.
            if let Some(lock) = lock {
                lock.release();
            }
            return Err(e);
        }
    };
    let record = plain.then_some((names, started));
    let result = run(g, &l, &inst, timings, incremental, lock, record);
    // The process ends after this: freeing every module, instance and key
    // one by one cost a tenth of a no-op build of a thousand modules.
    std::mem::forget((inst, l));
    result
}

/// `strata build` of instances resolved already (a CI stage's).
pub fn build_instances(
    g: &Global,
    l: &super::Loaded,
    inst: &Instances,
    timings: bool,
    incremental: bool,
) -> Result<(), Failure> {
    run(g, l, inst, timings, incremental, None, None)
}

/// Builds `inst` under the project lock (`lock`: taken already); with
/// `record` (the names on the command line and when the build began), a
/// build in which every module was fresh is recorded in the no-op state.
fn run(
    g: &Global,
    l: &super::Loaded,
    inst: &Instances,
    timings: bool,
    incremental: bool,
    lock: Option<crate::lock::ProjectLock>,
    record: Option<(&[String], std::time::SystemTime)>,
) -> Result<(), Failure> {
    let selection = inst.selection();
    let reporter = if timings {
        g.reporter().with_timeline()
    } else {
        g.reporter()
    };
    let lock = match lock {
        Some(lock) => lock,
        None => super::lock_project(&l.project, &reporter)?,
    };
    command::install_interrupt_handler();
    let cache = g.cache(&l.project)?;
    let _store_lock = if g.no_cache {
        None
    } else {
        Some(super::lock_store(&cache)?)
    };
    let ctx = Context {
        incremental,
        ..g.context(&l.project, inst, &reporter, (!g.no_cache).then_some(&cache))
    };
    if incremental {
        reporter.event(Event::Warning {
            message: "--incremental: stale steps continue in their existing build dirs; \
                      nothing built in this run is saved to a cache, and the next normal \
                      build redoes it from a clean tree",
        });
    }
    let summary = exec::build(&ctx, &selection, installs(&l.project, inst));
    if summary.failed.is_empty()
        && !summary.interrupted
        && let Err(e) = crate::instance::history::record(&l.project, inst)
    {
        reporter.event(Event::Warning {
            message: &format!("cannot record the targets' instances: {e}"),
        });
    }
    if !g.no_cache {
        super::record_stats(&l.project, &cache, &reporter);
    }
    if let Some(t) = reporter.timeline() {
        write_timings(&l.project, inst, t, &reporter);
    }
    if summary.interrupted {
        return Err(Failure::Code(EXIT_INTERRUPTED));
    }
    if !summary.failed.is_empty() {
        return Err(Failure::Code(EXIT_FAILURE));
    }
    if let Some((names, started)) = record {
        let installs = installs(&l.project, inst);
        super::noop::record(l, inst, &installs, names, &summary, started, &reporter);
    }
    lock.release();
    std::mem::forget(summary);
    Ok(())
}

/// Where each part of a build is merged: `install/` for one target (or
/// modules); `install/<name>/` per name when two or more targets are named,
/// since their boards' outputs would collide.
fn installs(project: &crate::manifest::Project, inst: &Instances) -> Vec<exec::Install> {
    let install = &project.settings.install_dir;
    let state = project.state_dir();
    if inst.requests.iter().filter(|r| r.is_target).count() < 2 {
        return vec![(
            install.clone(),
            state.join("install.json"),
            inst.selection(),
        )];
    }
    inst.requests
        .iter()
        .map(|r| {
            (
                install.join(&r.name),
                state.join("install").join(format!("{}.json", r.name)),
                r.roots.clone(),
            )
        })
        .collect()
}

pub fn fetch(g: &Global, names: &[String], update_lock: bool) -> Result<(), Failure> {
    let l = g.load()?;
    let selection = graph::select(&l.project, names)?;
    // A module strata.local.toml overrides needs none of its downloads.
    let closure: Vec<usize> = l
        .graph
        .closure(&selection)
        .into_iter()
        .filter(|&i| l.project.modules[i].overridden.is_none())
        .collect();
    let reporter = g.reporter();
    let opts = fetch::FetchOptions {
        update_lock,
        ..g.fetch_options()
    };
    let jobs = g.jobs(&l.project).max(1);
    let lock = super::lock_project(&l.project, &reporter)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(closure.len()) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&i) = closure.get(k) else { break };
                    let m = &l.project.modules[i];
                    let t = std::time::Instant::now();
                    reporter.event(Event::StepStarted {
                        module: &m.name,
                        step: crate::fingerprint::Step::Fetch,
                    });
                    let progress = |done, total| {
                        reporter.event(Event::Transfer {
                            module: &m.name,
                            what: "fetch",
                            done,
                            total,
                        })
                    };
                    let all = || -> Result<Vec<(String, std::path::PathBuf)>, fetch::FetchError> {
                        let mut bad = Vec::new();
                        if m.has_source() {
                            let f = fetch::ensure_package(&l.project, m, &opts, &progress)?;
                            bad.extend(f.quarantined.into_iter().map(|q| (m.file.clone(), q)));
                        }
                        for d in &fetch::resolved_downloads(&l.project, m, &opts, &progress)? {
                            let f = fetch::ensure_download(&l.project, m, d, &opts, &progress)?;
                            bad.extend(f.quarantined.into_iter().map(|q| (d.file.clone(), q)));
                        }
                        Ok(bad)
                    };
                    match all() {
                        Ok(quarantined) => {
                            for (file, q) in &quarantined {
                                reporter.event(Event::Warning {
                                    message: &format!(
                                        "module {}: {file} had the wrong sum; moved to {}",
                                        m.name,
                                        q.display()
                                    ),
                                });
                            }
                            reporter.event(Event::StepFinished {
                                module: &m.name,
                                step: crate::fingerprint::Step::Fetch,
                                secs: t.elapsed().as_secs_f64(),
                            });
                        }
                        Err(e) => {
                            reporter.error(&e.to_string());
                            failures
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(m.name.clone());
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    if failures.is_empty() {
        if !g.quiet && !g.json {
            crate::errln!(
                "    Finished {} verified in {}",
                crate::report::count(closure.len() as u64, "package", "packages"),
                l.project.settings.packages_dir.display()
            );
        }
        lock.release();
        // A fixed-output module's downloads are in its own commands: they
        // run now, so that a later offline build finds it in the cache.
        if closure.iter().any(|&i| l.project.modules[i].network) {
            return fetch_fixed_outputs(g, &l, names);
        }
        Ok(())
    } else {
        if !g.json {
            let mut failed = failures;
            failed.sort();
            crate::errln!(
                "      Failed {} verified, {} failed: {}",
                crate::report::count((closure.len() - failed.len()) as u64, "package", "packages"),
                failed.len(),
                failed.join(", ")
            );
        }
        Err(Failure::Code(EXIT_FAILURE))
    }
}

/// `strata fetch`'s second half: builds the closure's fixed-output modules
/// with `network = true` (and what they depend on), saving them to the
/// cache as a build does, without touching `install/`. Nothing else is built.
fn fetch_fixed_outputs(g: &Global, l: &super::Loaded, names: &[String]) -> Result<(), Failure> {
    let inst = g.instances(l, names)?;
    let closure = inst.graph.closure(&inst.selection());
    let selection: Vec<usize> = closure
        .into_iter()
        .filter(|&i| {
            let m = inst.list[i].module(&l.project);
            m.network && m.overridden.is_none()
        })
        .collect();
    if selection.is_empty() {
        return Ok(());
    }
    let reporter = g.reporter();
    let lock = super::lock_project(&l.project, &reporter)?;
    command::install_interrupt_handler();
    let cache = g.cache(&l.project)?;
    let _store_lock = if g.no_cache {
        None
    } else {
        Some(super::lock_store(&cache)?)
    };
    let ctx = g.context(
        &l.project,
        &inst,
        &reporter,
        (!g.no_cache).then_some(&cache),
    );
    let summary = exec::build(&ctx, &selection, Vec::new());
    if summary.interrupted {
        return Err(Failure::Code(EXIT_INTERRUPTED));
    }
    if !summary.failed.is_empty() {
        return Err(Failure::Code(EXIT_FAILURE));
    }
    lock.release();
    Ok(())
}

/// Writes the `--timings` page: `build/.strata/timings/strata-timing.html`
/// (the latest) and a copy named by the time of the run, as cargo does.
fn write_timings(
    project: &crate::manifest::Project,
    inst: &crate::instance::Instances,
    timeline: &crate::timings::Timeline,
    reporter: &crate::report::Reporter,
) {
    let closure = inst.graph.closure(&inst.selection());
    let deps: std::collections::BTreeMap<String, Vec<String>> = closure
        .iter()
        .map(|&i| {
            let ds = inst.graph.deps[i]
                .iter()
                .map(|&d| inst.list[d].label.clone())
                .collect();
            (inst.list[i].label.clone(), ds)
        })
        .collect();
    let page = timeline.render(&project.name, &deps);
    let dir = project.state_dir().join("timings");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let latest = dir.join("strata-timing.html");
    let result = std::fs::create_dir_all(&dir)
        .and_then(|()| {
            crate::fsutil::write_atomic(
                &dir.join(format!("strata-timing-{stamp}.html")),
                page.as_bytes(),
            )
        })
        .and_then(|()| crate::fsutil::write_atomic(&latest, page.as_bytes()));
    match result {
        Ok(()) => crate::errln!("      Timing report saved to {}", latest.display()),
        Err(e) => reporter.event(Event::Warning {
            message: &format!("cannot write the timing report in {}: {e}", dir.display()),
        }),
    }
}

/// `strata build --check [NAMES]`: rebuild each module in a scratch dir and
/// compare it with its cached artifact. Named modules are checked alone;
/// a target (or none: `default`) means every module of its closure.
pub fn check(g: &Global, names: &[String]) -> Result<(), Failure> {
    if g.no_cache {
        return Err(Failure::usage(
            "build --check compares rebuilds with the artifact cache; it cannot run with --no-cache\n  hint: drop --no-cache",
        ));
    }
    let l = g.load()?;
    let inst = g.instances(&l, names)?;
    let mut wanted: Vec<usize> = Vec::new();
    for r in &inst.requests {
        if r.is_target {
            wanted.extend(inst.graph.closure(&r.roots));
        } else {
            wanted.extend(&r.roots);
        }
    }
    // Dependencies first, each once.
    let order = inst.graph.closure(&wanted);
    let modules: Vec<usize> = order.into_iter().filter(|i| wanted.contains(i)).collect();
    let reporter = g.reporter();
    let lock = super::lock_project(&l.project, &reporter)?;
    command::install_interrupt_handler();
    let cache = g.cache(&l.project)?;
    let _store_lock = super::lock_store(&cache)?;
    let ctx = Context {
        keep_going: false,
        incremental: false,
        ..g.context(&l.project, &inst, &reporter, None)
    };
    let summary = exec::check::check(&ctx, &cache, &modules);
    // The check read the cache: its reads are the stats of this run.
    super::record_stats(&l.project, &cache, &reporter);
    if summary.interrupted {
        return Err(Failure::Code(EXIT_INTERRUPTED));
    }
    if !summary.all_reproducible() {
        return Err(Failure::Code(EXIT_FAILURE));
    }
    lock.release();
    Ok(())
}
