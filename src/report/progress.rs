//! Live progress on a terminal: one spinner line per running module (its
//! step, or bytes moved with rate and time left) above an overall line
//! (modules done of total, which are running). Sizes are in KiB/MiB.

use super::Reporter;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Keeps the terminal from echoing control keys (`^C`) while live lines
/// are drawn, and gives the setting back when dropped.
///
/// indicatif pads every line to the full width, so between redraws the
/// cursor waits in the last column. The `^C` a terminal echoes for Ctrl-C
/// (before strata even sees the signal) wraps there onto a new line, which
/// shifts the screen by one line under indicatif: its next redraw moves up
/// as many lines as it drew and leaves the top spinner line behind for
/// good. Without ECHOCTL the key is echoed as a raw, invisible control
/// character and the cursor stays put; the `Interrupted` lines say what
/// happened instead.
pub(super) struct QuietControlKeys;

impl QuietControlKeys {
    /// Turns ECHOCTL off on the terminal on stderr; None when it is not a
    /// terminal or the flag was already off (nothing to give back).
    pub(super) fn new() -> Option<QuietControlKeys> {
        // SAFETY: tcgetattr/tcsetattr on fd 2 read and write a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDERR_FILENO, &mut t) != 0 || t.c_lflag & libc::ECHOCTL == 0 {
                return None;
            }
            t.c_lflag &= !libc::ECHOCTL;
            (libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &t) == 0)
                .then_some(QuietControlKeys)
        }
    }
}

impl Drop for QuietControlKeys {
    fn drop(&mut self) {
        // Only the one flag goes back, onto whatever the settings are now.
        // SAFETY: as in `new`.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDERR_FILENO, &mut t) == 0 {
                t.c_lflag |= libc::ECHOCTL;
                libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &t);
            }
        }
    }
}

/// The last line of a live build.
pub(super) struct Overall {
    pub(super) bar: ProgressBar,
    pub(super) running: Vec<String>,
}

/// `"download 3.0 MiB / 10.0 MiB (30%) 1.5 MiB/s, 5s left"`.
pub(super) fn transfer_message(what: &str, done: u64, total: Option<u64>, secs: f64) -> String {
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

/// `1 file`, `0 files`, `2 entries`: a count with its noun in the right
/// number (`many` is the plural, since English plurals are not all `+s`).
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `75` → `1m15s`.
fn human_secs(s: u64) -> String {
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
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

impl Reporter {
    /// Moves the overall line: `started` joins the running list, `done`
    /// leaves it and counts as finished.
    pub(super) fn overall(&self, started: Option<&str>, done: Option<&str>) {
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

    /// Runs `f` on the live line of `module`, making it first if needed.
    pub(super) fn with_bar(&self, module: &str, f: impl FnOnce(&ProgressBar)) {
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

    pub(super) fn finish_bar(&self, module: &str) {
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
    fn counts_say_one_file_and_two_entries() {
        use super::count;
        assert_eq!(count(0u64, "file", "files"), "0 files");
        assert_eq!(count(1u64, "file", "files"), "1 file");
        assert_eq!(count(2u64, "entry", "entries"), "2 entries");
    }

    #[test]
    fn human_bytes_picks_the_largest_unit_below_1024() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(7 << 30), "7.0 GiB");
    }
}

/// A duration for a heartbeat line: `45s`, `12m05s`, `1h02m`.
pub(super) fn elapsed(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
#[test]
fn heartbeat_durations_read_as_clock_time() {
    assert_eq!(elapsed(45.9), "45s");
    assert_eq!(elapsed(725.0), "12m05s");
    assert_eq!(elapsed(3720.0), "1h02m");
}
