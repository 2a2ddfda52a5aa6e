//! `state/<id>.agent.json`: what muxvisor knows about a persistent peer's
//! agent between looks: the newest mark its hooks left, the last delivery,
//! whether it was ever ready since its launch, the state last logged (so a
//! transition is logged once), and the conversation id (issue 11).
//!
//! Writers (`mark`, the courier, the tick, a delivery) read, change and
//! replace it under `run/<id>.agent.lock` (a short flock, never held across
//! tmux calls); the file is replaced atomically. A record belongs to one
//! incarnation (the launch it was written for): a later launch starts a
//! fresh record, except for the conversation id, which outlives restarts.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::classify::{AgentState, Delivery, Mark, Source, Undelivered, View};
use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;

/// How long a writer waits for the record's lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The state last logged with `ev=agent-state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    pub state: AgentState,
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
    pub source: Source,
}

/// A conversation id and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionId {
    pub id: String,
    /// `assigned` (muxvisor chose it at a fresh start) or `mark` (reported
    /// by the agent's hook).
    pub source: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// `launched_at` of the incarnation this record describes.
    pub incarnation: Option<DateTime<Utc>>,
    pub mark: Option<Mark>,
    pub delivery: Option<Delivery>,
    /// A message typed but not taken in: the agent is blocked until a newer
    /// mark (SPEC §8).
    pub undelivered: Option<Undelivered>,
    pub ever_ready: bool,
    pub last: Option<Logged>,
    pub session_id: Option<SessionId>,
    /// How this incarnation was started: `fresh` or `resume`.
    pub started_as: Option<String>,
    /// A usage limit the agent is parked on (see `agent::limit`).
    pub parked: Option<Parked>,
}

/// A usage-limit notice and the reset time read from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    /// The reset text as the screen showed it (the same notice is parsed
    /// once: its clock time would read as tomorrow once it has passed).
    pub text: String,
    pub until: DateTime<Utc>,
    /// The `--continue-message` was queued after the reset.
    pub continued: bool,
}

impl Record {
    /// The record as seen from incarnation `launched_at`: one written for
    /// another launch keeps only its conversation id.
    pub fn for_incarnation(self, launched_at: Option<DateTime<Utc>>) -> Record {
        if self.incarnation == launched_at {
            return self;
        }
        Record { incarnation: launched_at, session_id: self.session_id, ..Record::default() }
    }
}

pub fn path(root: &Root, id: &Identity) -> std::path::PathBuf {
    root.state_dir().join(format!("{id}.agent.json"))
}

fn lock_path(root: &Root, id: &Identity) -> std::path::PathBuf {
    root.run_dir().join(format!("{id}.agent.lock"))
}

/// Read the record (missing or unreadable: a fresh one; it only caches
/// what the next look re-learns, except marks and the session id).
pub fn load(root: &Root, id: &Identity) -> Record {
    fsutil::read_if_exists(&path(root, id))
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Read, change and replace the record of incarnation `launched_at`.
pub fn update<T>(
    root: &Root,
    id: &Identity,
    launched_at: Option<DateTime<Utc>>,
    f: impl FnOnce(&mut Record) -> T,
) -> Result<T> {
    let _lock = fsutil::lock_within(&lock_path(root, id), LOCK_WAIT, &format!("agent of {id}"))?;
    let before = load(root, id);
    let mut rec = before.clone().for_incarnation(launched_at);
    let out = f(&mut rec);
    // Loops look several times a second: write only what changed.
    if rec != before {
        let mut bytes = serde_json::to_vec_pretty(&rec)?;
        bytes.push(b'\n');
        fsutil::atomic_write(&path(root, id), &bytes)
            .with_context(|| format!("writing the agent record of {id}"))?;
    }
    Ok(out)
}

/// Fold a fresh view into the record: note readiness, and log
/// `ev=agent-state` when the state (or a blocked reason) differs from the
/// one last logged. Returns the `since` of the current state.
pub fn note(
    rec: &mut Record,
    id: &Identity,
    view: &View,
    now: DateTime<Utc>,
    log: &std::path::Path,
) -> DateTime<Utc> {
    if view.state == AgentState::Ready {
        rec.ever_ready = true;
    }
    let same = rec.last.as_ref().is_some_and(|l| l.state == view.state && l.reason == view.reason);
    if same {
        return rec.last.as_ref().map(|l| l.since).unwrap_or(now);
    }
    let mut ev = Event::new("agent-state")
        .id(id)
        .kv("state", view.state.as_str())
        .kv("reason", view.reason.clone().unwrap_or_default())
        .kv("source", view.source.as_str());
    if view.reason.as_deref() == Some(super::presets::reason::USAGE_LIMIT)
        && let Some(p) = &rec.parked
    {
        ev = ev.kv("until", p.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    if !view.lines.is_empty() {
        ev = ev.kv("screen", view.lines.join(" | "));
    }
    if let Err(e) = ev.append_to(log) {
        crate::ground::output::warn(format!("could not log the agent state of {id}: {e:#}"));
    }
    rec.last = Some(Logged {
        state: view.state,
        reason: view.reason.clone(),
        since: now,
        source: view.source,
    });
    now
}
