//! Step marks for benchmarks. With `MUXVISOR_TRACE=<file>` in the
//! environment, a command notes the wall clock at each [`mark`] and
//! [`flush`] appends them as one line (`send main=NS parsed=NS ...`, Unix
//! nanoseconds), so `bench/queue.sh` can say where a `send`'s time goes,
//! measured against the benchmark's own clock before the spawn and after
//! the exit; the runner appends its per-task line (`task=...`) through
//! [`append`]. Off, a mark is one check of a flag read once per process.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

type Marks = Mutex<Vec<(&'static str, u128)>>;

static TRACE: OnceLock<Option<(PathBuf, Marks)>> = OnceLock::new();

fn trace() -> Option<&'static (PathBuf, Marks)> {
    TRACE
        .get_or_init(|| {
            std::env::var_os("MUXVISOR_TRACE").map(|p| (PathBuf::from(p), Mutex::new(Vec::new())))
        })
        .as_ref()
}

/// Note that `step` was reached now.
pub fn mark(step: &'static str) {
    if let Some((_, marks)) = trace() {
        let ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        if let Ok(mut m) = marks.lock() {
            m.push((step, ns));
        }
    }
}

/// Whether tracing is on (`MUXVISOR_TRACE` is set).
pub fn on() -> bool {
    trace().is_some()
}

/// Append `line` (a newline is added) to the trace file, if tracing is on.
pub fn append(line: &str) {
    let Some((path, _)) = trace() else { return };
    if let Ok(mut f) = crate::ground::fsutil::open_append(path) {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// Append the marks so far as one line headed `what`, and forget them.
pub fn flush(what: &str) {
    let Some((_, marks)) = trace() else { return };
    let Ok(mut m) = marks.lock() else { return };
    let mut line = what.to_string();
    for (step, ns) in m.drain(..) {
        line.push_str(&format!(" {step}={ns}"));
    }
    drop(m);
    append(&line);
}
