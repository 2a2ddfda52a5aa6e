//! `state/<id>.json`: what muxvisor last knew about one identity — the current
//! incarnation (when launched, pane and server pids and start times), whether it was stopped
//! on purpose, the tick's restart bookkeeping, and the running task.
//!
//! Writers hold the identity's lock (`run/<id>.lock`); the file is replaced
//! atomically, so readers never see a torn state. Unknown fields are kept
//! out of the way by `#[serde(default)]` on everything, so an older or newer
//! muxvisor can read it.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::ground::proc::StartTime;
use crate::model::peer::Identity;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// When the current (or last) session was launched.
    pub launched_at: Option<DateTime<Utc>>,
    /// The pane's pid (leader of the program's process group).
    pub pane_pid: Option<i32>,
    /// When that pane's program started, as the OS records it: with the
    /// pid it names the process, so the tick can take the kernel's word
    /// that the program still runs (`observe::vouch`) and never mistake a
    /// reused pid for it. `None` when unknown (a state written before this
    /// was recorded, or a pane that was already gone): the tick asks tmux.
    pub pane_start: Option<StartTime>,
    /// The tmux server's pid.
    pub server_pid: Option<i32>,
    /// When that server started, as the OS records it: with the pid, it
    /// names the process, so a reused pid is never taken for our server.
    pub server_start: Option<StartTime>,
    /// True after a deliberate stop (or reap) and before the next launch.
    pub stopped: bool,
    /// Why it was stopped: `stop`, `reaped-idle`, `max-age`, `rm`, `task-timeout`.
    pub stop_reason: Option<String>,
    /// The state the last tick observed (`running`, `exited`, ...), so that
    /// transitions are logged once.
    pub last_observed: Option<String>,
    /// Times of recent failures, for the restart-burst window.
    pub failures: Vec<DateTime<Utc>>,
    /// Consecutive restarts since the last healthy period.
    pub restart_attempt: u32,
    /// No restart before this time (backoff).
    pub next_restart_at: Option<DateTime<Utc>>,
    /// The attempt number and backoff of the restart scheduled at
    /// `next_restart_at` (logged with `ev=restart`).
    pub pending_attempt: u32,
    pub pending_backoff_ms: u64,
    /// `launched_at` of the incarnation whose death the tick has already
    /// recorded, so that a death is logged and counted once.
    pub dead_incarnation: Option<DateTime<Utc>>,
    /// Too many failures in the window: no restarts until launch/restart.
    pub failed: bool,
    /// The task the current worker runs (ephemeral peers).
    pub current_task: Option<String>,
    /// The muxvisor binary the server's `pane-died` hook runs (the one that
    /// launched it). A tick run by another binary (an upgrade moved it)
    /// re-points the hook at itself, so deaths are still recorded.
    pub exe: Option<std::path::PathBuf>,
    /// A launch held by admission (capacity or memory): `status` shows the
    /// peer `queued`, and the tick launches it when admitted.
    pub held: Option<Held>,
}

/// Why and since when a launch waits for admission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub reason: String,
    pub since: DateTime<Utc>,
    /// The launch asked for a new conversation (`launch --fresh`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
}

/// Read the state; a missing file is the default state.
pub fn load(root: &Root, id: &Identity) -> Result<State> {
    let path = root.state_file(id);
    match fsutil::read_if_exists(&path)? {
        None => Ok(State::default()),
        Some(b) => serde_json::from_slice(&b).with_context(|| {
            format!(
                "state file {} is corrupt; remove it (a fresh one is written, restart counters \
                 start over) and try again",
                path.display()
            )
        }),
    }
}

/// Replace the state atomically. Hold the identity lock.
pub fn save(root: &Root, id: &Identity, st: &State) -> Result<()> {
    let mut b = serde_json::to_vec_pretty(st)?;
    b.push(b'\n');
    fsutil::atomic_write(&root.state_file(id), &b)
}

/// Load, change, save.
pub fn update(root: &Root, id: &Identity, f: impl FnOnce(&mut State)) -> Result<State> {
    let mut st = load(root, id)?;
    f(&mut st);
    save(root, id, &st)?;
    Ok(st)
}
