//! Starting the next task of an ephemeral peer: shared by `send`'s kick (so
//! the first task starts in milliseconds) and the tick (which also finishes
//! and recovers tasks; see `queue`).
//!
//! Under the per-identity worker lock (non-blocking: whoever holds it is
//! already starting a worker): nothing is done if a task is claimed or a
//! session is alive; otherwise the head is claimed, its payload written to
//! `work/<task-id>`, and `session::launch` starts a fresh worker with the
//! task in its environment and argv placeholders. With `--deliver keys` the
//! worker starts without the task, and once its output has been quiet for a
//! moment the task is pasted into its pane.
//!
//! When the launch fails, the task goes back to the head: if the launch was
//! refused because a session is still there (`already`), uncounted
//! (`Queue::release`), since no program ran it; if the launch itself failed
//! (bad program, tmux error), as a counted attempt (`nack`, reason
//! `launch-failed`), so that a peer that can never start dead-letters its
//! tasks after `max_attempts` instead of retrying them forever.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::fsutil::LockGuard;
use crate::logfmt::Event;
use crate::observe::{self, Seen};
use crate::paths::Root;
use crate::peer::{Deliver, PeerSpec};
use crate::queue::Queue;
use crate::session::{self, TaskHandoff};
use crate::tmux::{Tmux, TmuxError, paste};

/// How long `--deliver keys` waits for a fresh worker to go quiet.
pub const KEYS_MAX_WAIT: Duration = Duration::from_secs(10);
/// Output unchanged this long counts as "ready for input".
pub const QUIET: Duration = Duration::from_millis(500);

/// A worker that was started.
#[derive(Clone, Debug, Serialize)]
pub struct Started {
    pub task: String,
    pub attempt: u32,
    pub pane_pid: Option<i32>,
}

/// Start a worker for the head of `spec`'s queue if none runs. `Ok(None)`:
/// nothing to do (empty, backed off, busy, or another process is starting
/// one right now).
pub fn start_next(root: &Root, spec: &PeerSpec, now: DateTime<Utc>) -> Result<Option<Started>> {
    let q = Queue::open(root, &spec.identity)?;
    let Some(guard) = q.try_worker_lock()? else { return Ok(None) };
    start_next_locked(root, spec, &q, &guard, now)
}

/// [`start_next`] for a caller that already holds `q`'s worker lock (the
/// tick, which took it to decide). Handing the held lock over, rather than
/// dropping and re-taking it, leaves no gap for another starter and no
/// spurious "busy": a child forked by another thread can hold a copy of the
/// lock's descriptor for an instant after a drop.
pub fn start_next_locked(
    root: &Root,
    spec: &PeerSpec,
    q: &Queue,
    _held: &LockGuard,
    now: DateTime<Utc>,
) -> Result<Option<Started>> {
    let id = &spec.identity;
    if q.running()?.is_some() {
        return Ok(None);
    }
    let seen = observe::observe(root, id, Duration::from_secs(3))?.seen;
    if matches!(seen, Seen::Alive | Seen::Hung) {
        return Ok(None);
    }
    let Some(claimed) = q.claim_head(now)? else { return Ok(None) };
    let task = claimed.task().to_string();
    let attempt = claimed.header.attempt;
    let file = q.work_file(&claimed)?;
    let handoff = TaskHandoff {
        id: task.clone(),
        file,
        text: String::from_utf8_lossy(&claimed.payload).into_owned(),
        attempt,
    };
    let launched = match session::launch(root, spec, Some(&handoff)) {
        Ok(l) if l.started => l,
        Ok(_) => {
            q.release(&task)?;
            return Ok(None);
        }
        Err(e) => {
            let reason = format!("launch-failed: {e:#}");
            q.nack(&task, &reason, spec.backoff, spec.max_backoff, spec.max_attempts, Utc::now())
                .with_context(|| format!("putting task {task} back after a failed launch"))?;
            return Err(e.context(format!("starting a worker for task {task} of {id}")));
        }
    };
    if let Err(e) = Event::new("task-start")
        .id(id)
        .kv("task", &task)
        .kv("attempt", attempt)
        .opt("pid", launched.pane_pid)
        .append_to(&root.lifecycle_log())
    {
        crate::output::warn(format!("could not log task-start for {id}: {e:#}"));
    }
    if spec.deliver == Deliver::Keys {
        deliver_keys(root, spec, &claimed.payload)
            .with_context(|| format!("typing task {task} into {id}'s worker"))?;
    }
    Ok(Some(Started { task, attempt, pane_pid: launched.pane_pid }))
}

/// Wait (bounded) for the fresh worker to go quiet, then paste the task and
/// press Enter. A worker that never goes quiet still gets the task at the
/// deadline: waiting longer would only delay it.
fn deliver_keys(root: &Root, spec: &PeerSpec, payload: &[u8]) -> Result<()> {
    let id = &spec.identity;
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let text = std::str::from_utf8(payload).context("the task is not valid UTF-8 text")?;
    paste::check_text(text).map_err(anyhow::Error::msg)?;
    paste::wait_quiet(&tmux, id, QUIET, KEYS_MAX_WAIT);
    let text = text.trim_end_matches('\n');
    paste::paste(&tmux, id, text.as_bytes(), true).map_err(TmuxError::into_anyhow)
}
