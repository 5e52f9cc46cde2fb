//! Progress and events: live lines on a terminal, plain lines otherwise,
//! JSON Lines with `--json`. Data goes to stdout, status to stderr.

use crate::fingerprint::Step;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub mod event;
mod json;
mod progress;
pub use event::Event;
pub use json::{JSON_SCHEMA, emit_json};
use progress::{Overall, QuietControlKeys, transfer_message};
pub use progress::{count, human_bytes};

/// The module counts of a build's summary line.
struct SummaryCounts {
    built: usize,
    restored: usize,
    deferred: usize,
    fresh: usize,
    failed: usize,
    skipped: usize,
    interrupted: usize,
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

    /// A line shown only with `-v` (never in JSON): `verb rest`.
    pub fn verbose_line(&self, verb: &str, rest: &str) {
        if self.verbose && !self.quiet && self.mode != Mode::Json {
            self.line(verb, "32", rest);
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

    /// Handles one event: on the timeline, then to the terminal or as JSON.
    pub fn event(&self, e: Event<'_>) {
        if let Some(t) = &self.timeline {
            t.record(&e);
        }
        if self.mode == Mode::Live {
            self.track_overall(&e);
        }
        if self.mode == Mode::Json {
            self.json(&e);
            return;
        }
        self.human(e);
    }

    /// Live mode: the overall line follows which modules run and are done.
    fn track_overall(&self, e: &Event<'_>) {
        match e {
            Event::ModuleStarted { module } => self.overall(Some(module), None),
            Event::ModuleFresh { module }
            | Event::ModuleBuilt { module, .. }
            | Event::ModuleRestored { module, .. }
            | Event::ModuleDeferred { module }
            | Event::ModuleFailed { module, .. }
            | Event::ModuleSkipped { module, .. }
            | Event::ModuleInterrupted { module } => self.overall(None, Some(module)),
            Event::Summary { .. } => self.finish_overall(),
            _ => {}
        }
    }

    /// Removes the overall line and gives the terminal its control keys back.
    fn finish_overall(&self) {
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

    /// An event as lines for a person (live or plain); a flat dispatch.
    fn human(&self, e: Event<'_>) {
        match e {
            Event::Transfer {
                module,
                what,
                done,
                total,
            } => self.transfer(module, what, done, total),
            Event::BuildStarted { modules } => self.start_overall(modules),
            Event::StepStarted { module, step } => self.step_started(module, step),
            Event::StepRunning {
                module,
                step,
                secs,
                log_bytes,
            } => self.step_running(module, step, secs, log_bytes),
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
            } => self.restored(module, store, bytes, placed),
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
            Event::CheckStarted { module, scratch } => self.check_started(module, scratch),
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
            } => self.check_summary(checked, reproducible, not_reproducible, unchecked, secs),
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
                let counts = SummaryCounts {
                    built,
                    restored,
                    deferred,
                    fresh,
                    failed,
                    skipped,
                    interrupted,
                };
                self.summary(&counts, stopped_by_interrupt, secs);
            }
        }
    }

    /// Live mode: a transfer's progress, rate and ETA on its module's bar.
    fn transfer(&self, module: &str, what: &str, done: u64, total: Option<u64>) {
        if self.mode != Mode::Live {
            return;
        }
        let started = *self
            .transfers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((module.to_string(), what.to_string()))
            .or_insert_with(std::time::Instant::now);
        let msg = transfer_message(what, done, total, started.elapsed().as_secs_f64());
        self.with_bar(module, |bar| bar.set_message(msg));
    }

    /// Live mode: the overall line of a build of `modules` modules.
    fn start_overall(&self, modules: usize) {
        if self.mode != Mode::Live || modules == 0 {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(modules as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.bold.cyan} [{bar:25}] {pos}/{len} modules {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix("Building");
        *self.quiet_keys.lock().unwrap_or_else(|p| p.into_inner()) = QuietControlKeys::new();
        bar.enable_steady_tick(Duration::from_millis(250));
        *self.overall.lock().unwrap_or_else(|p| p.into_inner()) = Some(Overall {
            bar,
            running: Vec::new(),
        });
    }

    fn step_started(&self, module: &str, step: Step) {
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

    fn step_running(&self, module: &str, step: Step, secs: f64, log_bytes: u64) {
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

    fn restored(
        &self,
        module: &str,
        store: &str,
        bytes: u64,
        placed: Option<crate::store::materialise::Counts>,
    ) {
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

    fn check_started(&self, module: &str, scratch: &std::path::Path) {
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

    /// `build --check`'s last line: how many of the modules are reproducible.
    fn check_summary(
        &self,
        checked: usize,
        reproducible: &[String],
        not_reproducible: &[String],
        unchecked: &[String],
        secs: f64,
    ) {
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

    /// A build's last line (shown with -q too when it failed or was stopped).
    fn summary(&self, c: &SummaryCounts, stopped_by_interrupt: bool, secs: f64) {
        if self.quiet && c.failed == 0 && !stopped_by_interrupt {
            return;
        }
        let deferred = if c.deferred > 0 {
            format!(", {} left in cache", c.deferred)
        } else {
            String::new()
        };
        let interrupted = if c.interrupted > 0 {
            format!(", {} interrupted", c.interrupted)
        } else {
            String::new()
        };
        let (verb, code) = if stopped_by_interrupt {
            ("Interrupted", "1;33")
        } else if c.failed > 0 {
            ("Failed", "1;31")
        } else {
            ("Finished", "1;32")
        };
        let SummaryCounts {
            built,
            restored,
            fresh,
            failed,
            skipped,
            ..
        } = c;
        self.line(
            verb,
            code,
            &format!("{built} built, {restored} restored{deferred}, {fresh} fresh, {failed} failed{interrupted}, {skipped} skipped in {secs:.2}s"),
        );
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
