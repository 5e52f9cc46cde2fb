//! Work on threads that may panic.
//!
//! The schedulers (module builds, CI jobs) wait on a channel for each worker's
//! result. A worker that panicked without sending would leave its scheduler
//! waiting forever while holding the project lock, so every worker body runs
//! through [`catch`]: a panic becomes an error value that is sent like any
//! other result, the run ends with an error, and the lock is released.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, turning a panic into `Err` with the panic's message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::catch;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        let r: Result<(), String> = catch(|| panic!("boom {}", 42));
        assert_eq!(r, Err("boom 42".to_string()));
        let r: Result<(), String> = catch(|| std::panic::panic_any(3u8));
        assert_eq!(r, Err("unknown panic".to_string()));
    }
}
