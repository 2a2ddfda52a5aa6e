//! The tick: for every registered peer, observe (one tmux round trip; for
//! a healthy plain peer, the kernel's word that its recorded server and
//! program still run, with tmux asked every ten minutes or at any doubt),
//! decide (the pure table in [`decide`]), act (the thin edge in [`act`]),
//! and log; then one `ev=tick` line. Run every 60 s by launchd, systemd or
//! cron, so it must be idempotent, bounded in time, and cheap.
//!
//! Overlap: the whole tick holds `supervise.lock` (flock, never deleted); a
//! second tick finds it held and returns at once ([`tick`] gives `None`).
//!
//! Bounds: every tmux call has [`TickConfig::call_timeout`], so a hung
//! (SIGSTOPped) server costs one timeout and is reported `hung`; peers are
//! handled by a small pool of scoped threads, so one slow peer does not hold
//! up the others; a peer not begun before the whole-tick deadline is
//! reported `skipped` and left to the next tick.
//!
//! Crash safety: nothing here needs cleaning up after a kill -9. The lock
//! dies with the process; state files are replaced atomically; the queue's
//! moves are durable and a task left in `cur/` is reconciled by the next
//! tick's decide table (finished from the dead pane or the durable exit
//! note, retried if its worker vanished, requeued if it never started).
//!
//! Each peer's bookkeeping is merged into its state file under the identity
//! lock, and only if no `launch` replaced the incarnation since it was
//! observed; `session::launch`/`stop` take that lock themselves, so it is
//! never held across them. Ephemeral peers are handled under the queue's
//! worker lock, the one `send`'s kick takes, so a tick never mistakes a
//! worker being started for one that vanished.
//!
//! The same per-peer step also runs on demand for one ephemeral peer
//! ([`demand`]: `send`'s kick and a dead runner's hand-over); it returns a
//! typed [`Step`], which the tick turns into its reports.

pub mod act;
pub mod decide;
pub mod demand;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use serde::Serialize;

use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::logfmt::Event;
use crate::model::peer::{self, Identity};

/// Limits of one tick.
#[derive(Clone, Debug)]
pub struct TickConfig {
    /// No peer is begun after this much time has passed.
    pub deadline: Duration,
    /// Deadline of each tmux call (observation).
    pub call_timeout: Duration,
    /// Grace of the deliberate stops a tick makes (reaps, task timeouts).
    pub stop_grace: Duration,
    /// Peers handled at once.
    pub threads: usize,
    /// Housekeeping that only the periodic tick does (expiring tasks past
    /// their TTL, sweeping damaged queue entries): O(queue depth).
    pub maintenance: bool,
    /// How many agents may be starting at once, and the memory floor.
    pub admission: crate::lifecycle::admission::Limits,
    /// Finished tasks are kept this long, and at most this many per queue
    /// (the newest); older ones are removed by each periodic tick.
    pub retention: Duration,
    pub retention_count: usize,
}

/// Default retention of finished tasks: a week (as `clean`'s)...
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// ...and at most this many per queue.
pub const RETENTION_COUNT: usize = 1000;

impl Default for TickConfig {
    fn default() -> TickConfig {
        TickConfig {
            deadline: Duration::from_secs(45),
            call_timeout: Duration::from_secs(2),
            stop_grace: Duration::from_secs(5),
            threads: 8,
            maintenance: true,
            admission: crate::lifecycle::admission::Limits::default(),
            retention: RETENTION,
            retention_count: RETENTION_COUNT,
        }
    }
}

impl TickConfig {
    /// The per-peer step as the kick and the hand-over run it: the same
    /// decisions, without the housekeeping, and quick stops of orphans.
    pub fn on_demand() -> TickConfig {
        TickConfig { maintenance: false, ..TickConfig::default() }
    }
}

/// One thing a tick did (or found) for a peer: an element of the
/// `supervise --json` array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub identity: String,
    pub action: String,
    pub reason: String,
}

impl Report {
    pub fn new(id: &Identity, action: &str, reason: impl Into<String>) -> Report {
        Report { identity: id.to_string(), action: action.into(), reason: reason.into() }
    }
}

/// What the per-peer step did: the tick turns it into its reports, the
/// kick and the hand-over act on a failure.
#[derive(Debug)]
pub enum Step {
    /// A launch or stop changed the peer while it was looked at: nothing
    /// was done.
    Skipped,
    /// Every action decided was carried out; what changed, in order.
    Done(Vec<Report>),
    /// `action` failed: the actions before it are in `done`; the rest wait
    /// for the next tick, which decides again.
    Failed { done: Vec<Report>, action: &'static str, error: anyhow::Error },
}

impl Step {
    /// The `supervise` reports: a skip, what was done, then the failure as
    /// `error` with the action's name.
    pub fn into_reports(self, id: &Identity) -> Vec<Report> {
        match self {
            Step::Skipped => {
                vec![Report::new(id, "skipped", "a launch or stop changed the peer meanwhile")]
            }
            Step::Done(done) => done,
            Step::Failed { mut done, action, error } => {
                done.push(Report::new(id, "error", format!("{action}: {error:#}")));
                done
            }
        }
    }
}

/// What a finished tick did.
#[derive(Clone, Debug, Serialize)]
pub struct TickResult {
    pub peers: usize,
    pub duration_ms: u64,
    pub reports: Vec<Report>,
}

/// Run one tick; `Ok(None)` when another tick holds the lock.
pub fn tick(root: &Root, cfg: &TickConfig) -> Result<Option<TickResult>> {
    let Some(_lock) = fsutil::try_lock(&root.supervise_lock())? else {
        return Ok(None);
    };
    let start = Instant::now();
    let deadline = start + cfg.deadline;
    let ids = peer::list(root)?;
    let reports = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let threads = cfg.threads.clamp(1, ids.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(n) else { break };
                    let mine = if Instant::now() >= deadline {
                        vec![Report::new(id, "skipped", "tick deadline reached")]
                    } else {
                        act::handle_peer(root, id, cfg)
                            .unwrap_or_else(|e| vec![Report::new(id, "error", format!("{e:#}"))])
                    };
                    if let Ok(mut all) = reports.lock() {
                        all.extend(mine);
                    }
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_default();
    // Stable output: by identity, each peer's actions in the order taken.
    reports.sort_by(|a, b| a.identity.cmp(&b.identity));
    let duration_ms = start.elapsed().as_millis() as u64;
    Event::new("tick")
        .kv("peers", ids.len())
        .kv("duration_ms", duration_ms)
        .kv("actions", reports.len())
        .append_to(&root.lifecycle_log())
        .context("recording the tick")?;
    rotate_event_logs(root);
    Ok(Some(TickResult { peers: ids.len(), duration_ms, reports }))
}

/// Keep the event logs bounded even if nobody runs `clean`: each tick
/// rotates those past their cap (`MUXVISOR_LOG_MAX`, default 10 MiB) to
/// `<name>.1`. Pane logs rotate themselves in their copier. A writer that
/// opened a log before the rename finishes its line in `.1`; nothing is torn.
/// A failure here is a warning: the tick's work is done.
fn rotate_event_logs(root: &Root) {
    let cap = crate::ground::rotate::Caps::from_env().events;
    for log in crate::ground::rotate::event_logs(root) {
        if let Err(e) = crate::ground::rotate::rotate(&log, cap, false) {
            crate::ground::output::warn(format!("rotating {}: {e:#}", log.display()));
        }
    }
}

/// The human summary: one line per peer that did something, then a total.
pub fn human_lines(r: &TickResult) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<(&str, Vec<String>)> = None;
    for rep in &r.reports {
        let item = if rep.reason.is_empty() {
            rep.action.clone()
        } else {
            format!("{} ({})", rep.action, crate::ground::output::inert_line(&rep.reason))
        };
        match &mut current {
            Some((id, items)) if *id == rep.identity => items.push(item),
            _ => {
                if let Some((id, items)) = current.take() {
                    lines.push(format!("{id}: {}", items.join("; ")));
                }
                current = Some((&rep.identity, vec![item]));
            }
        }
    }
    if let Some((id, items)) = current {
        lines.push(format!("{id}: {}", items.join("; ")));
    }
    let touched = lines.len();
    lines.push(format!(
        "tick: {} peer{}, {} action{} on {touched}, {} ms",
        r.peers,
        if r.peers == 1 { "" } else { "s" },
        r.reports.len(),
        if r.reports.len() == 1 { "" } else { "s" },
        r.duration_ms
    ));
    lines
}

/// A jitter seed that differs per peer, per tick and per process.
pub fn seed(id: &Identity) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    h ^ nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(id: &str, action: &str, reason: &str) -> Report {
        Report { identity: id.into(), action: action.into(), reason: reason.into() }
    }

    #[test]
    fn human_summary_groups_by_peer() {
        let r = TickResult {
            peers: 3,
            duration_ms: 12,
            reports: vec![
                rep("a", "restart", "attempt 1, backoff 100ms"),
                rep("a", "canary", ""),
                rep("b", "hung", "no answer within 2000 ms"),
            ],
        };
        assert_eq!(
            human_lines(&r),
            vec![
                "a: restart (attempt 1, backoff 100ms); canary".to_string(),
                "b: hung (no answer within 2000 ms)".to_string(),
                "tick: 3 peers, 3 actions on 2, 12 ms".to_string(),
            ]
        );
        let quiet = TickResult { peers: 1, duration_ms: 3, reports: vec![] };
        assert_eq!(human_lines(&quiet), vec!["tick: 1 peer, 0 actions on 0, 3 ms".to_string()]);
    }

    #[test]
    fn json_shape_is_the_contract() {
        let v = serde_json::to_value(vec![rep("a", "restart", "x")]).unwrap();
        assert_eq!(v, serde_json::json!([{"identity": "a", "action": "restart", "reason": "x"}]));
    }
}
