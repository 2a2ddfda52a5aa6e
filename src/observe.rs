//! Observation of one identity's tmux server in (ideally) one round trip:
//! is the socket there, does a server answer, does the session exist, is the
//! pane alive, and if dead with what status. Used by `status` and the tick.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::paths::Root;
use crate::peer::Identity;

/// What tmux says about an identity right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Seen {
    /// Server up, session up, pane's program alive.
    Alive,
    /// Server up, pane dead (remain-on-exit). `status`/`signal` may both be
    /// `None` when tmux < 3.6 lost them.
    PaneDead { status: Option<i32>, signal: Option<String> },
    /// Server answers but the session is missing.
    SessionGone,
    /// No socket file.
    NoSocket,
    /// Socket file present but nothing answers (ECONNREFUSED).
    StaleSocket,
    /// The server did not answer in time.
    Hung,
}

/// One observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub seen: Seen,
    pub pane_pid: Option<i32>,
    pub server_pid: Option<i32>,
    /// Last pane output (tmux `window_activity`).
    pub last_output: Option<DateTime<Utc>>,
    /// When the pane died (tmux `pane_dead_time`, 3.3+).
    pub dead_at: Option<DateTime<Utc>>,
}

/// Observe `id`'s server, spending at most `timeout` on tmux.
pub fn observe(root: &Root, id: &Identity, timeout: Duration) -> Result<Observed> {
    let _ = (root, id, timeout);
    anyhow::bail!("observe: not implemented yet")
}
