//! The vocabulary of a run: every [`Event`] the engine reports. Sinks consume
//! events (the terminal and JSON Lines in [`super`], the `--timings` page in
//! `crate::timings`); an event knows none of them.

use crate::fingerprint::Step;

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A build begins: `modules` is the size of the target's closure.
    BuildStarted {
        modules: usize,
    },
    /// A worker began bringing a stale module up to date.
    ModuleStarted {
        module: &'a str,
    },
    StepStarted {
        module: &'a str,
        step: Step,
    },
    StepFinished {
        module: &'a str,
        step: Step,
        secs: f64,
    },
    /// A step is still running (a heartbeat, every `STRATA_HEARTBEAT`
    /// seconds): CI kills a job whose output is silent for too long.
    StepRunning {
        module: &'a str,
        step: Step,
        secs: f64,
        /// Bytes its log holds so far.
        log_bytes: u64,
    },
    StepFailed {
        module: &'a str,
        step: Step,
        secs: f64,
    },
    ModuleFresh {
        module: &'a str,
    },
    ModuleBuilt {
        module: &'a str,
        secs: f64,
    },
    ModuleRestored {
        module: &'a str,
        store: &'a str,
        bytes: u64,
        /// How the files were placed from the store's unpacked tree; None
        /// when they were extracted from the archive.
        placed: Option<crate::store::materialise::Counts>,
    },
    /// A stale module left in the cache: nothing in this run needs its files.
    ModuleDeferred {
        module: &'a str,
    },
    ModuleFailed {
        module: &'a str,
        error: &'a str,
    },
    ModuleSkipped {
        module: &'a str,
        because: &'a str,
    },
    /// A running module stopped by Ctrl-C or SIGTERM (its commands were
    /// terminated, no stamp of the step was written).
    ModuleInterrupted {
        module: &'a str,
    },
    /// Bytes moved so far by a long transfer (a download, a cache fetch).
    Transfer {
        module: &'a str,
        what: &'a str,
        done: u64,
        total: Option<u64>,
    },
    Warning {
        message: &'a str,
    },
    /// `build --check`: a module's rebuild begins (in `scratch`).
    CheckStarted {
        module: &'a str,
        scratch: &'a std::path::Path,
    },
    /// `build --check`: one module rebuilt and compared with its cached
    /// artifact (`error`: it could not be checked).
    ModuleChecked {
        module: &'a str,
        reproducible: bool,
        differences: &'a [crate::treediff::Difference],
        error: Option<&'a str>,
    },
    /// `build --check`: how many of the modules checked are reproducible.
    CheckSummary {
        checked: usize,
        reproducible: &'a [String],
        not_reproducible: &'a [String],
        unchecked: &'a [String],
        secs: f64,
    },
    Summary {
        built: usize,
        restored: usize,
        deferred: usize,
        fresh: usize,
        failed: usize,
        skipped: usize,
        /// Modules stopped while running by an interrupt.
        interrupted: usize,
        /// Whether the run was interrupted (even between modules).
        stopped_by_interrupt: bool,
        secs: f64,
    },
}
