//! stdout and stderr that never panic.
//!
//! `println!` and `eprintln!` panic when the stream is closed (`strata build
//! 2>&1 | head -2`): Rust ignores SIGPIPE, so the write fails with EPIPE and
//! the macro turns that into a panic, in whichever thread printed. Every line
//! strata prints goes through [`outln!`](crate::outln) and
//! [`errln!`](crate::errln) instead (clippy's `print_stdout`/`print_stderr`
//! are denied crate-wide, so the class cannot come back). A failed write marks
//! the output closed and runs the registered hook, which stops the run as an
//! interrupt does: no new work starts, running commands are terminated, the
//! lock is released, and the process exits with [`EXIT_OUTPUT_CLOSED`]
//! without printing anything more.

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit code when stdout or stderr was closed under us (128 + SIGPIPE, what a
/// shell reports for a program killed by a broken pipe).
pub const EXIT_OUTPUT_CLOSED: i32 = 141;

static CLOSED: AtomicBool = AtomicBool::new(false);
static ON_CLOSE: OnceLock<fn()> = OnceLock::new();

/// Whether a write to stdout or stderr has failed.
pub fn closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Registers what to do the first time output is found closed (once; later
/// calls are ignored).
pub fn on_close(hook: fn()) {
    let _ = ON_CLOSE.set(hook);
}

fn mark_closed() {
    if !CLOSED.swap(true, Ordering::SeqCst)
        && let Some(hook) = ON_CLOSE.get()
    {
        hook();
    }
}

/// Writes to stdout; a failure marks output closed instead of panicking.
pub fn write_out(args: fmt::Arguments<'_>) {
    if closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        mark_closed();
    }
}

/// Writes to stderr; a failure marks output closed instead of panicking.
pub fn write_err(args: fmt::Arguments<'_>) {
    if closed() {
        return;
    }
    let mut err = std::io::stderr().lock();
    if err.write_fmt(args).is_err() {
        mark_closed();
    }
}

/// `println!` that never panics (see [`crate::output`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that never panics (see [`crate::output`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics (see [`crate::output`]).
#[macro_export]
macro_rules! errln {
    () => { $crate::output::write_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}
