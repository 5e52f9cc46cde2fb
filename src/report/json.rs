//! `--json`: every event as one JSON Lines document
//! `{"schema": 1, "type": …, "data": {…}}` on stdout (see docs/json.md).
//! Progress (bytes moved) is for eyes on a terminal and is not emitted.

use super::{Event, Reporter};
use serde_json::json;

/// Version of the `--json` event schema.
pub const JSON_SCHEMA: u32 = 1;

impl Reporter {
    pub(super) fn json(&self, e: &Event<'_>) {
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
            Event::StepRunning {
                module,
                step,
                secs,
                log_bytes,
            } => (
                "step-running",
                json!({"module": module, "step": step, "seconds": secs, "log-bytes": log_bytes}),
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
                placed,
            } => (
                "module-restored",
                json!({
                    "module": module, "store": store, "bytes": bytes,
                    "placed": placed.map(|c| json!({
                        // `linked` stays in the schema (fields are only added
                        // within a version); restores no longer hardlink.
                        "reflinked": c.reflinked, "linked": 0, "copied": c.copied,
                    })),
                }),
            ),
            Event::ModuleDeferred { module } => ("module-deferred", json!({"module": module})),
            // Progress is for eyes on a terminal; JSON consumers get the outcome events.
            Event::Transfer { .. } => return,
            Event::ModuleFailed { module, error } => {
                ("module-failed", json!({"module": module, "error": error}))
            }
            Event::ModuleInterrupted { module } => {
                ("module-interrupted", json!({"module": module}))
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
                interrupted,
                stopped_by_interrupt,
                secs,
            } => (
                "summary",
                json!({"built": built, "restored": restored, "deferred": deferred, "fresh": fresh, "failed": failed, "skipped": skipped, "interrupted": interrupted, "stopped-by-interrupt": stopped_by_interrupt, "seconds": secs}),
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
