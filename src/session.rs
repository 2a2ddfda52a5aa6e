//! Launch and deliberate stop of one identity's private tmux server.
//! (Being built: see issue 2.)

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::paths::Root;
use crate::peer::{Identity, PeerSpec};

/// A task handed to a fresh ephemeral worker.
#[derive(Clone, Debug)]
pub struct TaskHandoff {
    pub id: String,
    /// The payload file the worker may read (`{task_file}`, `MUXVISOR_TASK_FILE`).
    pub file: PathBuf,
    /// The payload as text (`{task}`).
    pub text: String,
    pub attempt: u32,
}

/// What `launch` did.
#[derive(Clone, Debug)]
pub struct Launched {
    pub started: bool,
    pub already: bool,
    pub pane_pid: Option<i32>,
}

/// How a stop ended.
#[derive(Clone, Debug)]
pub struct Stopped {
    /// Nothing was running.
    pub was_running: bool,
    /// `term` or `kill`.
    pub how: &'static str,
    pub grace_ms: u128,
}

/// Start `spec`'s session (with `task` for an ephemeral worker). Takes the
/// identity lock itself.
pub fn launch(root: &Root, spec: &PeerSpec, task: Option<&TaskHandoff>) -> Result<Launched> {
    let _ = (root, spec, task);
    anyhow::bail!("launch: not implemented yet")
}

/// Deliberately stop `id`: intent, canary, SIGTERM, grace, kill, teardown.
/// `reason` goes to the state (`stop`, `reaped-idle`, ...). Takes the
/// identity lock itself.
pub fn stop(root: &Root, id: &Identity, grace: Duration, reason: &str) -> Result<Stopped> {
    let _ = (root, id, grace, reason);
    anyhow::bail!("stop: not implemented yet")
}
