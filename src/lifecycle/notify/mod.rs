//! Notification with no daemon. An executable `hooks/on-event` under the root
//! receives each event worth telling someone about (a death, an agent state
//! change, a dead task, a failed peer, ...), one line at a time on its stdin.
//! Like a git hook: one file, nothing to keep running.
//!
//! The event logs are the queue. Nothing is copied anywhere:
//! - **Appending** ([`appended`], which the binary registers as the log
//!   writer's append listener, so `Event::append_to` calls it after its one
//!   write): a [`QUIET`] event costs nothing; any other costs one `lstat` of
//!   `hooks/on-event`, and that is all when there is no hook. With a hook,
//!   if no runner holds `run/_notify.lock`, it starts `muxvisor _notify`,
//!   which forks away at once (setsid, stdio on /dev/null): the caller waits
//!   for one fork and exec, never for the hook.
//! - **The runner** (`_notify`, at most one under that flock) reads both logs
//!   past `run/_notify.cursor`, merges them in time order, and runs the hook
//!   once per line: the line on stdin, `MUXVISOR_EVENT`, `MUXVISOR_IDENTITY`
//!   and `MUXVISOR_ROOT` set, cwd the root, no `TMUX`, stdout and stderr
//!   into a pipe whose copier appends them to `logs/notify.log` and rotates
//!   it before it would pass 1 MiB (one old copy), however much one run
//!   prints, in its own process
//!   group, which is killed at the deadline (`MUXVISOR_NOTIFY_TIMEOUT`,
//!   10 s). After each line the cursor is replaced atomically, so lines go
//!   out once, in order; a runner killed mid-hook repeats that one line.
//!   A hook that fails or times out is recorded (`ev=notify-failed`) and the
//!   next line goes out. A backlog past `MUXVISOR_NOTIFY_BACKLOG` (1000)
//!   lines is cut from the oldest end, recorded (`ev=notify-dropped`) and
//!   told to the hook first. The runner exits when it is caught up.
//! - **No lost wake-up**: a runner re-reads the logs after releasing the
//!   lock and takes it again if a line arrived; an appender that saw the lock
//!   held had written its line before looking.
//! - **Rotation** (`rotate.rs` renames `x.log` to `x.log.1`): the cursor keeps
//!   one mark per file it has seen: device, inode, the start of the first
//!   line (inodes are reused) and the offset delivered up to. A renamed file
//!   keeps its inode, so its unread tail is read before the new file; a file
//!   never seen is read from its start. `x.log` is opened before `x.log.1`,
//!   so a rotation between the two opens shows one file twice (read once),
//!   never hides one.
//! - **Which lines**: those stamped no earlier than the hook's ctime (when it
//!   was installed, written or chmodded), so a new hook is not fed history,
//!   and an absent or non-executable hook lets no backlog build up.
//! - **Trust**: the hook runs only if `hooks/` and `hooks/on-event` are ours,
//!   not group/other-writable and not symlinks, and the hook is a regular
//!   file; otherwise it is refused (`ev=notify-refused`, once per reason) and
//!   `doctor` says why. The `ev=notify-*` events are quiet: no loops.
//!
//! The rooms: `hook` (the hook file, its trust checks, one run of it),
//! `cursor` (the cursor and reading the logs past it), `runner` (`_notify`:
//! the one runner under its lock, a pass over the logs, delivery).

mod cursor;
mod hook;
mod runner;
#[cfg(test)]
mod tests;

use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::events::Record;
use crate::model::logfmt::Event;
pub use cursor::Cursor;
pub use hook::{Hook, check};
pub use runner::run;

/// Events that never notify: the chatty ones of every task and tick, and
/// the notifier's own (so a failing hook cannot feed itself). Every other
/// event notifies, including ones added later. A `session-exit` with a
/// `task=` (an ephemeral peer's program ending a task) is quiet too: its
/// outcome follows as `task-retry` or `task-dead`.
pub const QUIET: &[&str] = &[
    "tick",
    "enqueue",
    "task-start",
    "task-done",
    "msg-delivered",
    "notify-failed",
    "notify-dropped",
    "notify-refused",
];

/// Default deadline of one hook run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap of undelivered lines before the oldest are dropped.
pub const DEFAULT_BACKLOG: usize = 1000;
/// Cap of `logs/notify.log` before it is rotated to `notify.log.1`.
pub const LOG_MAX: u64 = 1024 * 1024;

/// The two event logs, by the name the cursor keeps them under.
const LOGS: [&str; 2] = ["lifecycle", "exits"];

/// Does an event with this `ev` (and `task`, if any) notify? Pure.
pub fn notifies(ev: &str, task: Option<&str>) -> bool {
    let task_exit = ev == "session-exit" && task.is_some_and(|t| !t.is_empty());
    !QUIET.contains(&ev) && !task_exit
}

/// The runner's settings, from `MUXVISOR_NOTIFY_TIMEOUT` and
/// `MUXVISOR_NOTIFY_BACKLOG` (read by the runner, which inherits the
/// environment of whatever wrote the event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub timeout: Duration,
    pub backlog: usize,
}

impl Config {
    /// Pure: settings from the two variables' values.
    pub fn from_values(timeout: Option<String>, backlog: Option<String>) -> Config {
        let timeout = timeout
            .and_then(|v| crate::ground::duration::parse(v.trim()).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        let backlog = backlog
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_BACKLOG);
        Config { timeout, backlog }
    }

    pub fn from_env() -> Config {
        Config::from_values(
            std::env::var("MUXVISOR_NOTIFY_TIMEOUT").ok(),
            std::env::var("MUXVISOR_NOTIFY_BACKLOG").ok(),
        )
    }
}

// ---------------------------------------------------------------------------
// The appender's side.

/// Called after `ev` was appended to `log`. Never fails and never waits for
/// the hook: at worst it waits for `_notify` to fork away.
pub fn appended(log: &Path, ev: &Event) {
    if !notifies(ev.ev(), ev.get("task")) {
        return;
    }
    let Some(root) = root_of_log(log) else { return };
    // The one stat paid when there is no hook.
    let Ok(md) = std::fs::symlink_metadata(root.on_event_hook()) else { return };
    // A symlink goes on so that the runner can refuse it where doctor sees.
    if !md.file_type().is_symlink() && md.mode() & 0o100 == 0 {
        return;
    }
    // A runner holding the lock re-reads the logs before it exits.
    if fsutil::is_locked(&root.notify_lock()).unwrap_or(false) {
        return;
    }
    let _ = spawn_runner(&root);
}

/// The root of `<root>/logs/lifecycle.log` or `<root>/logs/exits.log`;
/// `None` for any other file. Pure.
fn root_of_log(log: &Path) -> Option<Root> {
    let name = log.file_name()?.to_str()?;
    if name != "lifecycle.log" && name != "exits.log" {
        return None;
    }
    let logs = log.parent()?;
    if logs.file_name()? != "logs" {
        return None;
    }
    Some(Root::new(logs.parent()?.to_path_buf()))
}

/// Start `muxvisor _notify`, which forks and exits at once.
fn spawn_runner(root: &Root) -> Result<()> {
    crate::ground::detach::spawn_detached(root, &["_notify"], "the notification runner").map(|_| ())
}

/// Is this line one to deliver to a hook installed at `since`? Pure.
fn deliverable(rec: &Record, since: DateTime<Utc>) -> bool {
    rec.ts >= since && notifies(rec.ev(), rec.get("task"))
}

// ---------------------------------------------------------------------------
// For doctor.

/// The last `ev=notify-*` line in the lifecycle log (its last MiB), if any.
pub fn last_trouble(root: &Root) -> Option<Record> {
    let mut f = fsutil::open_read(&root.lifecycle_log()).ok()??;
    let len = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(1 << 20))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .rev()
        .filter_map(Record::parse)
        .find(|r| matches!(r.ev(), "notify-failed" | "notify-dropped" | "notify-refused"))
}
