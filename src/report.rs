//! Progress and events: live lines on a terminal, plain lines otherwise,
//! JSON Lines with `--json`. Data goes to stdout, status to stderr.

use crate::fingerprint::Step;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Version of the `--json` event schema.
pub const JSON_SCHEMA: u32 = 1;

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
        secs: f64,
    },
}

/// The last line of a live build.
struct Overall {
    bar: ProgressBar,
    running: Vec<String>,
}

/// `"download 3.0 MiB / 10.0 MiB (30%) 1.5 MiB/s, 5s left"`.
fn transfer_message(what: &str, done: u64, total: Option<u64>, secs: f64) -> String {
    let rate = if secs > 0.2 {
        Some(done as f64 / secs)
    } else {
        None
    };
    let mut msg = match total {
        Some(t) if t > 0 => format!(
            "{what} {} / {} ({}%)",
            human_bytes(done.min(t)),
            human_bytes(t),
            done.min(t) * 100 / t
        ),
        _ => format!("{what} {}", human_bytes(done)),
    };
    if let Some(r) = rate.filter(|r| *r >= 1.0) {
        msg.push_str(&format!(" {}/s", human_bytes(r as u64)));
        if let Some(t) = total.filter(|t| *t > done) {
            let left = ((t - done) as f64 / r).ceil() as u64;
            msg.push_str(&format!(", {} left", human_secs(left)));
        }
    }
    msg
}

/// `75` → `1m15s`.
fn human_secs(s: u64) -> String {
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
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

    /// Prints an error report (always shown, even with -q).
    pub fn error(&self, text: &str) {
        self.multi.suspend(|| {
            crate::errln!("{}: {text}", self.paint("1;31", "error"));
        });
    }

    /// Moves the overall line: `started` joins the running list, `done`
    /// leaves it and counts as finished.
    fn overall(&self, started: Option<&str>, done: Option<&str>) {
        let mut guard = self.overall.lock().unwrap_or_else(|p| p.into_inner());
        let Some(o) = guard.as_mut() else { return };
        if let Some(m) = started {
            o.running.push(m.to_string());
        }
        if let Some(m) = done {
            o.running.retain(|r| r != m);
            o.bar.inc(1);
        }
        let msg = if o.running.is_empty() {
            String::new()
        } else {
            format!("running: {}", o.running.join(", "))
        };
        o.bar.set_message(msg);
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
                | Event::ModuleSkipped { module, .. } => self.overall(None, Some(module)),
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
            } => {
                self.finish_bar(module);
                if !self.quiet {
                    self.line(
                        "Restored",
                        "1;36",
                        &format!("{module} from {store} ({})", human_bytes(bytes)),
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
                let mut text = format!("{} of {checked} modules reproducible", reproducible.len());
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
                secs,
            } => {
                if !self.quiet || failed > 0 {
                    let deferred = if deferred > 0 {
                        format!(", {deferred} left in cache")
                    } else {
                        String::new()
                    };
                    let code = if failed > 0 { "1;31" } else { "1;32" };
                    let verb = if failed > 0 { "Failed" } else { "Finished" };
                    self.line(
                        verb,
                        code,
                        &format!("{built} built, {restored} restored{deferred}, {fresh} fresh, {failed} failed, {skipped} skipped in {secs:.2}s"),
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
                "{module}: {} path(s) differ from the cached artifact",
                differences.len()
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

    /// Runs `f` on the live line of `module`, making it first if needed.
    fn with_bar(&self, module: &str, f: impl FnOnce(&ProgressBar)) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let overall = self.overall.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(module.to_string()).or_insert_with(|| {
            let spinner = ProgressBar::new_spinner();
            let b = match overall.as_ref() {
                Some(o) => self.multi.insert_before(&o.bar, spinner),
                None => self.multi.add(spinner),
            };
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} {elapsed}")
                    .expect("valid template"),
            );
            b.set_prefix(module.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        f(bar);
    }

    /// Removes the live line of `module` (a command done with it).
    pub fn clear(&self, module: &str) {
        self.finish_bar(module);
    }

    fn finish_bar(&self, module: &str) {
        self.transfers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(m, _), _| m != module);
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(module)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn json(&self, e: &Event<'_>) {
        let (kind, data) = match e {
            Event::BuildStarted { modules } => ("build-started", json!({"modules": modules})),
            Event::ModuleStarted { module } => ("module-started", json!({"module": module})),
            Event::StepStarted { module, step } => {
                ("step-started", json!({"module": module, "step": step}))
            }
            Event::StepFinished { module, step, secs } => (
                "step-finished",
                json!({"module": module, "step": step, "seconds": secs}),
            ),
            Event::StepFailed { module, step, secs } => (
                "step-failed",
                json!({"module": module, "step": step, "seconds": secs}),
            ),
            Event::ModuleFresh { module } => ("module-fresh", json!({"module": module})),
            Event::ModuleBuilt { module, secs } => {
                ("module-built", json!({"module": module, "seconds": secs}))
            }
            Event::ModuleRestored {
                module,
                store,
                bytes,
            } => (
                "module-restored",
                json!({"module": module, "store": store, "bytes": bytes}),
            ),
            Event::ModuleDeferred { module } => ("module-deferred", json!({"module": module})),
            // Progress is for eyes on a terminal; JSON consumers get the outcome events.
            Event::Transfer { .. } => return,
            Event::ModuleFailed { module, error } => {
                ("module-failed", json!({"module": module, "error": error}))
            }
            Event::ModuleSkipped { module, because } => (
                "module-skipped",
                json!({"module": module, "because": because}),
            ),
            Event::Warning { message } => ("warning", json!({"message": message})),
            Event::CheckStarted { module, scratch } => (
                "check-started",
                json!({"module": module, "scratch": scratch.display().to_string()}),
            ),
            Event::ModuleChecked {
                module,
                reproducible,
                differences,
                error,
            } => (
                "check",
                json!({"module": module, "reproducible": reproducible, "differences": differences, "error": error}),
            ),
            Event::CheckSummary {
                checked,
                reproducible,
                not_reproducible,
                unchecked,
                secs,
            } => (
                "check-summary",
                json!({"checked": checked, "reproducible": reproducible.len(), "not_reproducible": not_reproducible, "unchecked": unchecked, "seconds": secs}),
            ),
            Event::Summary {
                built,
                restored,
                deferred,
                fresh,
                failed,
                skipped,
                secs,
            } => (
                "summary",
                json!({"built": built, "restored": restored, "deferred": deferred, "fresh": fresh, "failed": failed, "skipped": skipped, "seconds": secs}),
            ),
        };
        emit_json(kind, data);
    }
}

/// Writes one JSON Lines event to stdout.
pub fn emit_json(kind: &str, data: serde_json::Value) {
    let line = json!({"schema": JSON_SCHEMA, "type": kind, "data": data});
    crate::outln!("{line}");
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

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn transfers_show_rate_and_time_left_once_measurable() {
        use super::transfer_message;
        assert_eq!(
            transfer_message("download", 0, Some(10 << 20), 0.0),
            "download 0 B / 10.0 MiB (0%)"
        );
        assert_eq!(
            transfer_message("download", 3 << 20, Some(10 << 20), 2.0),
            "download 3.0 MiB / 10.0 MiB (30%) 1.5 MiB/s, 5s left"
        );
        assert_eq!(
            transfer_message("pack", 150 << 20, None, 1.0),
            "pack 150.0 MiB 150.0 MiB/s"
        );
        assert_eq!(
            transfer_message("unpack", 1 << 20, Some(100 << 20), 1.0),
            "unpack 1.0 MiB / 100.0 MiB (1%) 1.0 MiB/s, 1m39s left"
        );
    }

    #[test]
    fn human_bytes_picks_the_largest_unit_below_1024() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(7 << 30), "7.0 GiB");
    }
}
