//! Progress and events: live lines on a terminal, plain lines otherwise,
//! JSON Lines with `--json`. Data goes to stdout, status to stderr.

use crate::fingerprint::Step;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

mod json;
mod progress;
pub use json::{JSON_SCHEMA, emit_json};
use progress::{Overall, QuietControlKeys, transfer_message};
pub use progress::{count, human_bytes};

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

/// How output is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Plain,
    Json,
}

/// Turns events into output.
pub struct Reporter {
    mode: Mode,
    quiet: bool,
    verbose: bool,
    color: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// When each (module, transfer kind) began: its rate and ETA.
    transfers: Mutex<HashMap<(String, String), std::time::Instant>>,
    /// The overall line of a build: modules done of total, running now.
    overall: Mutex<Option<Overall>>,
    /// Records every event for `build --timings`.
    timeline: Option<crate::timings::Timeline>,
    /// ECHOCTL off while a live build draws (see [`QuietControlKeys`]).
    quiet_keys: Mutex<Option<QuietControlKeys>>,
}

impl Reporter {
    /// Picks live output only when stderr is a terminal.
    pub fn new(json: bool, quiet: bool, verbose: bool, color: bool) -> Reporter {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && !quiet {
            Mode::Live
        } else {
            Mode::Plain
        };
        Reporter {
            mode,
            quiet,
            verbose,
            color,
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            transfers: Mutex::new(HashMap::new()),
            overall: Mutex::new(None),
            timeline: None,
            quiet_keys: Mutex::new(None),
        }
    }

    /// Also records every event on a timeline (`build --timings`).
    pub fn with_timeline(mut self) -> Reporter {
        self.timeline = Some(crate::timings::Timeline::new());
        self
    }

    /// The timeline, when recording.
    pub fn timeline(&self) -> Option<&crate::timings::Timeline> {
        self.timeline.as_ref()
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn line(&self, verb: &str, code: &str, rest: &str) {
        let text = format!("{} {rest}", self.paint(code, &format!("{verb:>12}")));
        if self.mode == Mode::Live {
            let _ = self.multi.println(text);
        } else {
            crate::errln!("{text}");
        }
    }

    /// Whether `-v` asks for the commands' output as it is written.
    pub fn streams_output(&self) -> bool {
        self.verbose && !self.quiet && self.mode != Mode::Json
    }

    /// One line a module's command wrote (`-v`): `module | line`, on stderr.
    pub fn output_line(&self, module: &str, text: &str) {
        let text = format!("{} {text}", self.paint("2", &format!("{module} |")));
        if self.mode == Mode::Live {
            let _ = self.multi.println(text);
        } else {
            crate::errln!("{text}");
        }
    }

    /// Prints an error report (always shown, even with -q).
    pub fn error(&self, text: &str) {
        self.multi.suspend(|| {
            crate::errln!("{}: {text}", self.paint("1;31", "error"));
        });
    }

    /// Handles one event.
    pub fn event(&self, e: Event<'_>) {
        if let Some(t) = &self.timeline {
            t.record(&e);
        }
        if self.mode == Mode::Live {
            match &e {
                Event::ModuleStarted { module } => self.overall(Some(module), None),
                Event::ModuleFresh { module }
                | Event::ModuleBuilt { module, .. }
                | Event::ModuleRestored { module, .. }
                | Event::ModuleDeferred { module }
                | Event::ModuleFailed { module, .. }
                | Event::ModuleSkipped { module, .. }
                | Event::ModuleInterrupted { module } => self.overall(None, Some(module)),
                Event::Summary { .. } => {
                    if let Some(o) = self
                        .overall
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take()
                    {
                        o.bar.finish_and_clear();
                        self.multi.remove(&o.bar);
                    }
                    self.quiet_keys
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                }
                _ => {}
            }
        }
        if self.mode == Mode::Json {
            self.json(&e);
            return;
        }
        match e {
            Event::Transfer {
                module,
                what,
                done,
                total,
            } => {
                if self.mode == Mode::Live {
                    let started = *self
                        .transfers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry((module.to_string(), what.to_string()))
                        .or_insert_with(std::time::Instant::now);
                    let msg = transfer_message(what, done, total, started.elapsed().as_secs_f64());
                    self.with_bar(module, |bar| bar.set_message(msg));
                }
            }
            Event::BuildStarted { modules } => {
                if self.mode == Mode::Live && modules > 0 {
                    let bar = self.multi.add(ProgressBar::new(modules as u64));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>12.bold.cyan} [{bar:25}] {pos}/{len} modules {wide_msg}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix("Building");
                    *self.quiet_keys.lock().unwrap_or_else(|p| p.into_inner()) =
                        QuietControlKeys::new();
                    bar.enable_steady_tick(Duration::from_millis(250));
                    *self.overall.lock().unwrap_or_else(|p| p.into_inner()) = Some(Overall {
                        bar,
                        running: Vec::new(),
                    });
                }
            }
            Event::StepStarted { module, step } => {
                if self.mode == Mode::Live {
                    self.with_bar(module, |bar| bar.set_message(step.name()));
                } else if !self.quiet
                    && (self.verbose
                        || step == Step::Fetch
                        || step == Step::Unpack
                        || step == Step::Configure)
                {
                    self.line(verb(step), "1;32", module);
                }
            }
            Event::StepRunning {
                module,
                step,
                secs,
                log_bytes,
            } => {
                // A terminal shows its spinner; a log gets a line.
                if self.mode == Mode::Plain && !self.quiet {
                    self.line(
                        "Running",
                        "36",
                        &format!(
                            "{module} {step} ({}, {} of log)",
                            progress::elapsed(secs),
                            human_bytes(log_bytes)
                        ),
                    );
                }
            }
            Event::StepFinished { module, step, secs } => {
                if self.verbose && self.mode != Mode::Live {
                    self.line("Finished", "32", &format!("{module} {step} in {secs:.2}s"));
                }
            }
            Event::StepFailed { .. } | Event::ModuleStarted { .. } => {}
            Event::ModuleFresh { module } => {
                if self.verbose {
                    self.line("Fresh", "32", module);
                }
            }
            Event::ModuleBuilt { module, secs } => {
                self.finish_bar(module);
                if !self.quiet {
                    self.line("Built", "1;32", &format!("{module} in {secs:.2}s"));
                }
            }
            Event::ModuleRestored {
                module,
                store,
                bytes,
                placed,
            } => {
                self.finish_bar(module);
                if !self.quiet {
                    self.line(
                        "Restored",
                        "1;36",
                        &format!(
                            "{module} from {store} ({}; {})",
                            human_bytes(bytes),
                            placement(placed)
                        ),
                    );
                }
            }
            Event::ModuleDeferred { module } => {
                if !self.quiet {
                    self.line(
                        "Cached",
                        "36",
                        &format!(
                            "{module} (host tool; no dependent has to build, left in the cache)"
                        ),
                    );
                }
            }
            Event::ModuleFailed { module, error } => {
                self.finish_bar(module);
                self.error(&format!("module {module} failed: {error}"));
            }
            Event::ModuleSkipped { module, because } => {
                self.finish_bar(module);
                if !self.quiet {
                    self.line("Skipped", "33", &format!("{module}: {because}"));
                }
            }
            Event::ModuleInterrupted { module } => {
                self.finish_bar(module);
                if !self.quiet {
                    self.line("Interrupted", "1;33", module);
                }
            }
            Event::Warning { message } => {
                self.multi.suspend(|| {
                    crate::errln!("{}: {message}", self.paint("1;33", "warning"));
                });
            }
            Event::CheckStarted { module, scratch } => {
                if self.mode == Mode::Live {
                    self.with_bar(module, |bar| bar.set_message("check"));
                } else if !self.quiet {
                    self.line(
                        "Checking",
                        "1;36",
                        &format!("{module} (rebuilding in {})", scratch.display()),
                    );
                }
            }
            Event::ModuleChecked {
                module,
                reproducible,
                differences,
                error,
            } => {
                self.finish_bar(module);
                self.checked(module, reproducible, differences, error);
            }
            Event::CheckSummary {
                checked,
                reproducible,
                not_reproducible,
                unchecked,
                secs,
            } => {
                let mut text = format!(
                    "{} of {} reproducible",
                    reproducible.len(),
                    count(checked as u64, "module", "modules")
                );
                if !not_reproducible.is_empty() {
                    text.push_str(&format!(
                        "; not reproducible: {}",
                        not_reproducible.join(", ")
                    ));
                }
                if !unchecked.is_empty() {
                    text.push_str(&format!("; not checked: {}", unchecked.join(", ")));
                }
                let ok = not_reproducible.is_empty() && unchecked.is_empty();
                if !self.quiet || !ok {
                    let (verb, code) = if ok {
                        ("Finished", "1;32")
                    } else {
                        ("Failed", "1;31")
                    };
                    self.line(verb, code, &format!("{text} ({secs:.2}s)"));
                }
            }
            Event::Summary {
                built,
                restored,
                deferred,
                fresh,
                failed,
                skipped,
                interrupted,
                stopped_by_interrupt,
                secs,
            } => {
                if !self.quiet || failed > 0 || stopped_by_interrupt {
                    let deferred = if deferred > 0 {
                        format!(", {deferred} left in cache")
                    } else {
                        String::new()
                    };
                    let interrupted = if interrupted > 0 {
                        format!(", {interrupted} interrupted")
                    } else {
                        String::new()
                    };
                    let (verb, code) = if stopped_by_interrupt {
                        ("Interrupted", "1;33")
                    } else if failed > 0 {
                        ("Failed", "1;31")
                    } else {
                        ("Finished", "1;32")
                    };
                    self.line(
                        verb,
                        code,
                        &format!("{built} built, {restored} restored{deferred}, {fresh} fresh, {failed} failed{interrupted}, {skipped} skipped in {secs:.2}s"),
                    );
                }
            }
        }
    }

    /// Prints one `build --check` result: a line when reproducible; every
    /// difference (even with -q: it is the result asked for); or the error.
    fn checked(
        &self,
        module: &str,
        reproducible: bool,
        differences: &[crate::treediff::Difference],
        error: Option<&str>,
    ) {
        if let Some(e) = error {
            self.error(&format!("not checked: {e}"));
            return;
        }
        if reproducible {
            if !self.quiet {
                self.line("Reproducible", "1;32", module);
            }
            return;
        }
        self.line(
            "Differs",
            "1;31",
            &format!(
                "{module}: {} from the cached artifact",
                if differences.len() == 1 {
                    "1 path differs".to_string()
                } else {
                    format!("{} paths differ", differences.len())
                }
            ),
        );
        let mut text = String::new();
        for d in differences {
            if d.detail.contains('\n') {
                text.push_str(&format!("    {} ({}):\n", d.path, d.kind.name()));
                for l in d.detail.lines() {
                    text.push_str(&format!("        {l}\n"));
                }
            } else {
                text.push_str(&format!(
                    "    {} ({}): {}\n",
                    d.path,
                    d.kind.name(),
                    d.detail
                ));
            }
        }
        self.multi.suspend(|| crate::errln!("{}", text.trim_end()));
    }
}

fn verb(step: Step) -> &'static str {
    match step {
        Step::Fetch => "Fetching",
        Step::Unpack => "Unpacking",
        Step::Patch => "Patching",
        Step::Configure => "Configuring",
        Step::Build => "Building",
        Step::Install => "Installing",
    }
}

/// How a restore placed its files: `files 3 reflinked, 1 copied`, or that
/// they were extracted from the archive.
fn placement(placed: Option<crate::store::materialise::Counts>) -> String {
    let Some(c) = placed else {
        return "extracted from the archive".to_string();
    };
    let parts: Vec<String> = [(c.reflinked, "reflinked"), (c.copied, "copied")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if parts.is_empty() {
        "no files".to_string()
    } else {
        format!("files {}", parts.join(", "))
    }
}
