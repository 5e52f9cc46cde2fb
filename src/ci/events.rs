//! `strata ci run --json`: a run's events as JSON Lines on stdout, one
//! object per line with an `event` name (`workflow-started`, `job-started`,
//! `step`, `restore`, `save`, `job-finished`, `workflow-finished`), so tools
//! follow a run without parsing the human log, which stays on stderr.

use std::io::Write as _;
use std::sync::Mutex;

/// Where events go: nowhere unless `--json`.
pub struct Events {
    json: bool,
    out: Mutex<()>,
}

impl Events {
    pub fn new(json: bool) -> Events {
        Events {
            json,
            out: Mutex::new(()),
        }
    }

    /// Prints `{"event": kind, …data}` as one line, whole.
    pub fn emit(&self, kind: &str, data: serde_json::Value) {
        if !self.json {
            return;
        }
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), kind.into());
        if let serde_json::Value::Object(m) = data {
            obj.extend(m);
        }
        let line = serde_json::Value::Object(obj).to_string();
        let _g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}
