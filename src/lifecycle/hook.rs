//! Processes tmux starts on our behalf, from inside the server (their
//! entry points, `_hook` and `_pane-log`, are in `commands::internal`):
//!
//! - `_hook pane-died <id> --status S --signal G --pid P`, run by the
//!   `pane-died` hook (`run-shell -b`): [`pane_died`] appends
//!   `ev=session-exit` to `logs/exits.log` the moment the pane's program
//!   dies, unless a deliberate stop wrote its intent first. It first waits
//!   for the identity lock, which a launch holds until its `ev=launch` is
//!   written, so an instant death is never logged before its launch. For an
//!   ephemeral peer the program that died is its runner (killed or
//!   crashed): [`pane_died`] then answers [`AfterDeath::HandOver`], and the
//!   entry point forks a detached **hand-over** that runs the tick's
//!   per-peer step for this identity at once (finish the task the runner
//!   left, tear down, start a new runner; `tick::demand`), so the
//!   queue goes on draining without a tick. This module never calls the
//!   tick itself: it says what is due. It runs inside tmux, so it must be
//!   quick and never fail loudly: the entry point swallows every error after
//!   a best-effort note on stderr (which tmux discards).
//! - `_pane-log <id>`, run by `pipe-pane`: [`copy_pane_log`] copies the
//!   pane's output from stdin to `logs/panes/<id>.log`, rotating it to
//!   `<id>.log.1` past a cap (10 MiB, or `MUXVISOR_PANE_LOG_MAX` bytes), one
//!   old copy kept. It ends at EOF, which tmux gives it when the pane or the
//!   server goes.

use anyhow::Result;

use crate::ground::fsutil;
use crate::ground::paths::{ID_LOCK_WAIT, Root};
use crate::model::logfmt::Event;
use crate::model::peer::{self, Identity, Policy};

/// Default cap of one pane log before rotation.
pub const PANE_LOG_MAX: u64 = 10 * 1024 * 1024;

/// What is due after a pane's death was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDeath {
    /// Nothing more: recorded (or a deliberate stop, or recorded already).
    Nothing,
    /// An ephemeral peer's runner died: hand over (the per-peer step, in a
    /// detached process) so that its queue goes on draining.
    HandOver,
}

/// `id`'s pane died with `status`/`signal` (tmux's `#{pane_dead_status}`,
/// `#{pane_dead_signal}`) and `pid` (`#{pane_pid}`): record the death unless
/// a deliberate stop or a tick did, and say what is due next.
pub fn pane_died(
    root: &Root,
    id: &Identity,
    status: &str,
    signal: &str,
    pid: &str,
) -> Result<AfterDeath> {
    // Test-only: a hook that tmux runs late (a loaded machine), to pin that
    // a deliberate stop never turns into a recorded death.
    #[cfg(feature = "fault-injection")]
    if let Some(ms) =
        std::env::var("MUXVISOR_FAULT_HOOK_DELAY_MS").ok().and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    {
        let _launch_done = fsutil::lock_within(&root.id_lock(id), ID_LOCK_WAIT, "the exit hook")?;
        if root.stop_intent(id).exists() {
            return Ok(AfterDeath::Nothing);
        }
        // A tick that found the pane dead first has recorded it already.
        if !exit_recorded(root, id, pid.trim()) {
            let mut ev = session_exit_event(id, status, signal, pid);
            if let Some(task) = runner_task(root, id, pid.trim()) {
                ev = ev.kv("task", task);
            }
            ev.append_to(&root.exits_log())?;
        }
    }
    crate::ground::fault::point("hook-logged");
    let ephemeral =
        peer::load(root, id).ok().flatten().is_some_and(|s| s.policy == Policy::Ephemeral);
    Ok(if ephemeral { AfterDeath::HandOver } else { AfterDeath::Nothing })
}

/// The task an ephemeral peer's runner (pane pid `pid`) left claimed, if
/// any: the task of the worker slot whose lock it wrote its pid into. A
/// death's record names it, whichever of the `--workers` runners died.
fn runner_task(root: &Root, id: &Identity, pid: &str) -> Option<String> {
    let pid = pid.parse().ok()?;
    let q = crate::model::queue::Queue::open_existing(root, id).ok()??;
    let slot = q.slot_of_pid(pid)?;
    q.running_all().ok()?.into_iter().find(|c| c.slot() == slot).map(|c| c.task().to_string())
}

/// How much of the end of `exits.log` is searched for a death's record.
const RECORDED_TAIL: u64 = 256 * 1024;

/// True when `exits.log` (its last [`RECORDED_TAIL`] bytes) already holds
/// the `ev=session-exit` of `id`'s pane `pid`: the hook and a tick that
/// found the dead pane each record a death only if the other has not.
/// Callers hold the identity lock.
pub fn exit_recorded(root: &Root, id: &Identity, pid: &str) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    if pid.is_empty() {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(root.exits_log()) else { return false };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if f.seek(SeekFrom::Start(len.saturating_sub(RECORDED_TAIL))).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return false;
    }
    let (who, pane) = (format!(" identity={id} "), format!(" pid={pid} "));
    String::from_utf8_lossy(&buf).lines().any(|l| {
        let l = format!("{l} ");
        l.contains(" ev=session-exit ") && l.contains(&who) && l.contains(&pane)
    })
}

/// A tick found `id`'s pane dead and no `ev=session-exit` for it: the
/// `pane-died` hook did not run (its muxvisor binary was moved by an
/// upgrade, or tmux lost the hook). Record it now, `source=tick`, under the
/// identity lock, unless the hook has meanwhile. True if it was written.
pub fn record_missed_exit(
    root: &Root,
    id: &Identity,
    status: Option<i32>,
    signal: Option<&str>,
    pid: Option<i32>,
) -> Result<bool> {
    let _lock = fsutil::lock_within(&root.id_lock(id), ID_LOCK_WAIT, "recording a death")?;
    record_missed_exit_locked(root, id, status, signal, pid, "tick")
}

/// [`record_missed_exit`] for a caller that holds the identity lock
/// already, naming who found the dead pane (`source`: `tick`, or `launch`
/// for a launch that replaces it: a `send` that wakes its peer, `launch`).
pub fn record_missed_exit_locked(
    root: &Root,
    id: &Identity,
    status: Option<i32>,
    signal: Option<&str>,
    pid: Option<i32>,
    source: &str,
) -> Result<bool> {
    let pid = pid.map(|p| p.to_string()).unwrap_or_default();
    if root.stop_intent(id).exists() || exit_recorded(root, id, &pid) {
        return Ok(false);
    }
    let status = status.map(|s| s.to_string()).unwrap_or_default();
    let mut ev = session_exit_event(id, &status, signal.unwrap_or(""), &pid).kv("source", source);
    if let Some(task) = runner_task(root, id, &pid) {
        ev = ev.kv("task", task);
    }
    ev.append_to(&root.exits_log())?;
    Ok(true)
}

/// The `ev=session-exit` line. Pure. tmux gives the signal as a number; we
/// keep it and add its name. Status is empty when signalled and vice versa.
pub fn session_exit_event(id: &Identity, status: &str, signal: &str, pid: &str) -> Event {
    let signal = signal.trim();
    let status = if signal.is_empty() { status.trim() } else { "" };
    let mut ev = Event::new("session-exit")
        .id(id)
        .kv("status", status)
        .kv("signal", signal)
        .kv("pid", pid.trim());
    if let Some(name) = signal_name(signal) {
        ev = ev.kv("signal_name", name);
    }
    ev
}

/// `15` -> `SIGTERM`. Pure.
pub fn signal_name(num: &str) -> Option<&'static str> {
    let n: i32 = num.parse().ok()?;
    nix::sys::signal::Signal::try_from(n).ok().map(|s| s.as_str())
}

/// Copy `id`'s pane output from stdin to its pane log until EOF, rotating
/// past the cap (`MUXVISOR_PANE_LOG_MAX` bytes, else [`PANE_LOG_MAX`]).
pub fn copy_pane_log(root: &Root, id: &Identity) -> Result<()> {
    let cap = std::env::var("MUXVISOR_PANE_LOG_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(PANE_LOG_MAX);
    crate::ground::rotate::copy_rotating(std::io::stdin().lock(), &root.pane_log(id), cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_lines() {
        let id = Identity::parse("w").unwrap();
        let l = session_exit_event(&id, "3", "", "42").line();
        assert!(l.contains(" ev=session-exit identity=w status=3 signal= pid=42"), "{l}");
        let l = session_exit_event(&id, "", "15", "42").line();
        assert!(l.contains("status= signal=15 pid=42 signal_name=SIGTERM"), "{l}");
        let l = session_exit_event(&id, "0", "9", "").line();
        assert!(l.contains("status= signal=9 pid= signal_name=SIGKILL"), "{l}");
    }
}
