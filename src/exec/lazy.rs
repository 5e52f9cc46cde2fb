//! Lazy restore: which stale modules can stay in the cache for this run.
//!
//! A module's artifact is unpacked only when the module is one of the
//! target's outputs (every non-`host` module in the closure, and whatever
//! the user named), or when a module that must actually build needs it in
//! its sysroot. A cached toolchain under cached firmware is never unpacked.

use super::Context;
use crate::fingerprint::ModuleStatus;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Modules of `closure` that need not be brought up to date in this run.
///
/// `cached(i)` says whether the cache holds module `i`'s install key. It is
/// only asked when the closure holds a stale `host` module, so projects
/// without host modules never probe the cache here.
pub fn deferrable(
    ctx: &Context<'_>,
    selection: &[usize],
    closure: &[usize],
    status: &HashMap<usize, ModuleStatus>,
    cached: &dyn Fn(usize) -> bool,
) -> BTreeSet<usize> {
    let stale = |i: usize| status[&i].first_stale.is_some();
    if !closure.iter().any(|&i| ctx.module(i).host && stale(i)) {
        return BTreeSet::new();
    }
    let mut needed: BTreeSet<usize> = closure
        .iter()
        .copied()
        .filter(|&i| !ctx.module(i).host)
        .chain(selection.iter().copied())
        .collect();
    let mut todo: Vec<usize> = needed.iter().copied().collect();
    while let Some(i) = todo.pop() {
        if !stale(i) || cached(i) {
            continue;
        }
        // Module i builds: its whole sysroot must be on disk.
        for d in ctx.graph.transitive_deps(i) {
            if needed.insert(d) {
                todo.push(d);
            }
        }
    }
    closure
        .iter()
        .copied()
        .filter(|i| !needed.contains(i) && stale(*i))
        .collect()
}

/// Deferred modules, each materialised at most once when a module that was
/// expected to restore has to build after all (its artifact was corrupt or
/// vanished) and so needs them in its sysroot.
pub struct Deferred<'s> {
    slots: HashMap<usize, Mutex<bool>>,
    status: &'s HashMap<usize, ModuleStatus>,
}

impl<'s> Deferred<'s> {
    pub fn new(set: &BTreeSet<usize>, status: &'s HashMap<usize, ModuleStatus>) -> Self {
        Deferred {
            slots: set.iter().map(|&i| (i, Mutex::new(false))).collect(),
            status,
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        self.slots.contains_key(&i)
    }

    /// Brings every deferred module in `i`'s sysroot up to date, in
    /// dependency order. Locks are taken along dependency edges only, so two
    /// threads can never wait on each other.
    ///
    /// `bring_up` brings one module up to date (the build's own step
    /// runner): this file decides *which* modules and *when*, never *how*.
    pub fn materialise_deps<E>(
        &self,
        ctx: &Context<'_>,
        i: usize,
        bring_up: &dyn Fn(usize, &ModuleStatus) -> Result<(), E>,
    ) -> Result<(), E> {
        for d in ctx.graph.transitive_deps(i) {
            let Some(slot) = self.slots.get(&d) else {
                continue;
            };
            let mut done = slot.lock().unwrap_or_else(|e| e.into_inner());
            if *done {
                continue;
            }
            bring_up(d, &self.status[&d])?;
            *done = true;
        }
        Ok(())
    }
}
