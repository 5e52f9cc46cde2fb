//! `STRATA_PHASES=1`: how long each phase of a run took, on stderr (profiling).
use std::sync::OnceLock;
use std::time::Instant;

static ON: OnceLock<Option<Instant>> = OnceLock::new();
static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// Marks the end of phase `name`.
pub fn mark(name: &str) {
    let Some(start) = *ON.get_or_init(|| std::env::var_os("STRATA_PHASES").map(|_| Instant::now()))
    else {
        return;
    };
    let now = Instant::now();
    let mut last = LAST.lock().unwrap();
    let prev = last.unwrap_or(start);
    *last = Some(now);
    crate::errln!(
        "phase {name:<14} {:>8.2} ms (at {:>8.2})",
        (now - prev).as_secs_f64() * 1e3,
        (now - start).as_secs_f64() * 1e3
    );
}
