//! `status`: one row per peer, sorted by identity. Every peer is observed in
//! parallel (a bounded pool of scoped threads), so 50 peers cost about one
//! tmux round trip, not fifty, and a hung server costs its own timeout
//! without delaying the others.
//!
//! The JSON rows are SPEC §4's (`identity`, `policy`, `state`, `pid`,
//! `uptime_s`, `idle_s`, `exit_status`, `exit_signal`, `canary`, `queue`) plus
//! `server_pid`, `launched_at`, `restarts`, `task`, and `error` for a peer
//! that could not be read (its state is then `unknown` and the exit status 1)
//! or for a server up under `run/` whose spec file is gone (its row shows
//! what runs, with `policy` null, and the exit status is 1).

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Ctx;
use crate::ground::exit::{self, Exit};
use crate::ground::output;
use crate::ground::paths::Root;
use crate::lifecycle::canary;
use crate::lifecycle::ghosts;
use crate::lifecycle::observe::{self, Observed, Seen};
use crate::model::peer::{self, Identity, PeerSpec, Policy};
use crate::model::peer_state::{self, State};
use crate::model::queue::{self, Counts};
use crate::surface::cli::StatusArgs;
use crate::tmux;

/// At most this many tmux clients at once.
const MAX_PARALLEL: usize = 32;

/// One `status` row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub identity: Identity,
    pub policy: Option<Policy>,
    pub state: String,
    pub pid: Option<i32>,
    pub uptime_s: Option<i64>,
    pub idle_s: Option<i64>,
    pub exit_status: Option<i32>,
    /// A number when tmux reports one (it does), else the name.
    pub exit_signal: Option<serde_json::Value>,
    pub canary: bool,
    pub queue: Counts,
    pub server_pid: Option<i32>,
    pub launched_at: Option<DateTime<Utc>>,
    pub restarts: u32,
    pub task: Option<String>,
    /// A persistent peer's agent state (null for an ephemeral peer).
    pub agent: Option<AgentRow>,
    /// Messages waiting in a persistent peer's mailbox (null: ephemeral).
    pub mailbox: Option<usize>,
    /// The pid of the courier delivering that mailbox, while one runs.
    pub courier: Option<i32>,
    /// Why a `queued` peer waits (its launch is held by admission).
    pub reason: Option<String>,
    /// The environment its program gets at its next launch (see
    /// `peer_env`), values from the env file replaced by `(from FILE)`;
    /// null without a spec.
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// The spec's env file.
    pub env_file: Option<std::path::PathBuf>,
    /// Why the env file cannot be read now (the next launch would fail).
    pub env_error: Option<String>,
    /// An ephemeral peer's workers (SPEC §10): one per live runner, and one
    /// (`pid` null) per task whose runner died and is not yet retried; null
    /// for a persistent peer.
    pub workers: Option<Vec<WorkerRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One worker in `status --json` (`"workers": [...]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerRow {
    /// Its worker slot (0..N of `add --workers N`; `queue list` names it).
    pub slot: u32,
    /// The task it runs, null while it waits for one.
    pub task: Option<String>,
    /// Its runner's pid, or an agent pool instance's agent's pid (null
    /// while none runs); null also when the runner died (the task awaits
    /// its retry).
    pub pid: Option<i32>,
    /// Its runner's pid (null: the runner died).
    pub runner_pid: Option<i32>,
    /// When its task was claimed.
    pub since: Option<DateTime<Utc>>,
    /// An agent pool instance's agent object; null for a program's worker.
    pub agent: Option<AgentRow>,
    /// Why admission holds an agent pool instance's start (SPEC §9).
    pub held: Option<String>,
}

/// `status --json`'s `agent` object (SPEC §8); null members where unknown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentRow {
    pub state: crate::model::agent::classify::AgentState,
    pub since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub session_id: Option<String>,
    /// Where the id came from: `assigned` (by muxvisor at a fresh start) or
    /// `mark` (the agent's hook).
    pub session_source: Option<String>,
    /// Where the state came from: mark, screen, quiet, delivery, start, process.
    pub source: crate::model::agent::classify::Source,
}

/// Build a row from what was read. Pure.
pub fn row(
    id: &Identity,
    spec: Option<&PeerSpec>,
    obs: &Observed,
    st: &State,
    canary: bool,
    (queue, task): (Counts, Option<String>),
    now: DateTime<Utc>,
) -> Row {
    let state = observe::classify(obs, st);
    let secs_since = |t: Option<DateTime<Utc>>| t.map(|t| (now - t).num_seconds().max(0));
    let alive = obs.seen == Seen::Alive;
    let (exit_status, exit_signal) = match &obs.seen {
        Seen::PaneDead { status, signal } => (
            *status,
            signal.as_ref().map(|s| match s.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::from(s.clone()),
            }),
        ),
        _ => (None, None),
    };
    let pid = match obs.seen {
        Seen::Alive | Seen::PaneDead { .. } => obs.pane_pid,
        // A hung server cannot say; the recorded pid is the best we have.
        Seen::Hung => st.pane_pid,
        _ => None,
    };
    let uptime_s = if alive { secs_since(st.launched_at) } else { None };
    // tmux gives the last output in whole seconds, so right after a launch
    // it can read a second before it; nothing was idle before it started.
    let idle_s = if alive { secs_since(obs.last_output) } else { None }
        .map(|i| uptime_s.map_or(i, |u| i.min(u)));
    Row {
        identity: id.clone(),
        policy: spec.map(|s| s.policy),
        state: state.as_str().to_string(),
        pid,
        uptime_s,
        idle_s,
        exit_status,
        exit_signal,
        canary,
        queue,
        server_pid: obs.server_pid.or(if obs.seen == Seen::Hung { st.server_pid } else { None }),
        launched_at: st.launched_at,
        restarts: st.restart_attempt,
        task,
        agent: None,
        mailbox: None,
        courier: None,
        reason: (state == observe::PeerState::Queued)
            .then(|| st.held.as_ref().map(|h| h.reason.clone()))
            .flatten(),
        env: None,
        env_file: None,
        env_error: None,
        workers: None,
        error: None,
    }
}

/// Read and observe one peer.
fn observe_one(root: &Root, id: &Identity, now: DateTime<Utc>) -> Result<Row> {
    let spec = peer::load(root, id)?;
    let st = peer_state::load(root, id)?;
    let obs = observe::observe(root, id, tmux::DEFAULT_TIMEOUT)?;
    let canary = canary::is_watching(root, id);
    let counts = queue::counts(root, id)?;
    let task = if counts.running > 0 { queue::running_task(root, id)? } else { None };
    let mut r = row(id, spec.as_ref(), &obs, &st, canary, (counts, task), now);
    if let Some(spec) = &spec {
        env_columns(root, spec, &mut r);
    }
    if let Some(spec) = spec.as_ref().filter(|s| s.policy == Policy::Ephemeral) {
        r.workers = Some(worker_rows(root, spec)?);
    }
    if let Some(spec) = spec.as_ref().filter(|s| s.policy == Policy::Persistent) {
        agent_columns(root, spec, &mut r)?;
    }
    Ok(r)
}

/// An ephemeral peer's workers: the live runners of its worker slots, each
/// with the task it claimed, then the tasks whose runner is gone.
fn worker_rows(root: &Root, spec: &PeerSpec) -> Result<Vec<WorkerRow>> {
    let Some(q) = queue::Queue::open_existing(root, &spec.identity)? else {
        return Ok(Vec::new());
    };
    // The claims first, the locks after (as the tick reads them).
    let claimed = q.running_all()?;
    let live = q.live_slots();
    let row = |slot: u32, pid: Option<i32>| {
        let c = claimed.iter().find(|c| c.slot() == slot);
        // A pool instance's agent, as its live runner last wrote it.
        let inst = pid
            .filter(|_| spec.is_pool())
            .and_then(|_| crate::model::agent::instance::load(root, &spec.identity, slot));
        let agent = inst.as_ref().map(|i| AgentRow {
            state: i.state,
            since: Some(i.since),
            reason: i.reason.clone(),
            session_id: None,
            session_source: None,
            source: i.source,
        });
        WorkerRow {
            slot,
            task: c.map(|c| c.task().to_string()),
            pid: match &inst {
                Some(i) => i.pid,
                None => pid,
            },
            runner_pid: pid,
            since: c.and_then(|c| c.header.started_at),
            agent,
            held: inst.and_then(|i| i.held),
        }
    };
    let mut rows: Vec<WorkerRow> = live.iter().map(|(k, pid)| row(*k, *pid)).collect();
    for c in claimed.iter().filter(|c| !live.iter().any(|(k, _)| *k == c.slot())) {
        rows.push(row(c.slot(), None));
    }
    Ok(rows)
}

/// The environment the peer's next launch gives its program, with the
/// env file's values masked (they are often secrets).
fn env_columns(root: &Root, spec: &PeerSpec, r: &mut Row) {
    use crate::model::peer_env;
    let file = spec.env_file.as_deref();
    let env = match peer_env::resolve(spec, root.dir()) {
        Ok(env) => env,
        Err(e) => {
            r.env_error = Some(format!("{e:#}"));
            peer_env::resolve_without_file(spec, root.dir())
        }
    };
    r.env = Some(env.masked(file));
    r.env_file = spec.env_file.clone();
}

/// The agent state and the mailbox of a persistent peer. The look writes
/// what it concludes, as the tick's would (a delivery taken in, a turn that
/// ended, a parking, a transition logged once): `status` is as honest as a
/// tick, and the `since` it shows is the one recorded, stable across calls.
fn agent_columns(root: &Root, spec: &PeerSpec, r: &mut Row) -> Result<()> {
    use crate::lifecycle::agent::watch::Looker;
    let look = Looker::once().look_and_record(root, spec)?;
    r.agent = Some(AgentRow {
        state: look.view.state,
        since: (look.view.state != crate::model::agent::classify::AgentState::Unknown)
            .then_some(look.since),
        reason: look.view.reason.clone(),
        session_id: look.record.session_id.as_ref().map(|s| s.id.clone()),
        session_source: look.record.session_id.as_ref().map(|s| s.source.clone()),
        source: look.view.source,
    });
    r.mailbox = Some(r.queue.pending + r.queue.running);
    if let Some(q) = queue::Queue::open_existing(root, &spec.identity)? {
        r.courier = crate::lifecycle::agent::mailbox::courier_pid(&q);
    }
    Ok(())
}

/// Rows for `ids`, observed in parallel, in the order of `ids`; the worst
/// error's exit status alongside (0 if none).
pub fn rows(root: &Root, ids: &[Identity]) -> (Vec<Row>, Exit) {
    let now = Utc::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Row>>>> =
        Mutex::new((0..ids.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..ids.len().min(MAX_PARALLEL) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { break };
                    let r = observe_one(root, id, now);
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut worst = Exit::Ok;
    let mut out = Vec::with_capacity(ids.len());
    for (id, r) in ids.iter().zip(results) {
        match r {
            Some(Ok(row)) => out.push(row),
            Some(Err(e)) => {
                let code = exit::code_for(&e);
                if worst != Exit::Unavailable {
                    worst = code;
                }
                out.push(error_row(id, format!("{e:#}")));
            }
            None => {
                worst = Exit::Failure;
                out.push(error_row(id, "observation did not finish".into()));
            }
        }
    }
    (out, worst)
}

fn error_row(id: &Identity, error: String) -> Row {
    Row {
        identity: id.clone(),
        policy: None,
        state: "unknown".into(),
        pid: None,
        uptime_s: None,
        idle_s: None,
        exit_status: None,
        exit_signal: None,
        canary: false,
        queue: Counts::default(),
        server_pid: None,
        launched_at: None,
        restarts: 0,
        task: None,
        agent: None,
        mailbox: None,
        courier: None,
        reason: None,
        env: None,
        env_file: None,
        env_error: None,
        workers: None,
        error: Some(error),
    }
}

/// Servers up under `run/` that no spec file accounts for (removed by
/// hand), among `candidates`: shown as rows with an `error`, never hidden.
fn unaccounted(root: &Root, candidates: &[Identity]) -> Vec<(Identity, String)> {
    candidates
        .iter()
        .filter(|id| !root.peer_file(id).exists())
        .filter_map(|id| ghosts::scan_id(root, id).ok())
        .filter(|s| s.unaccounted())
        .map(|s| {
            let why = s.spec_problem.clone().unwrap_or_default();
            let id = s.identity;
            let msg = format!(
                "a tmux server is up on {} but {why}: no tick supervises it; `muxvisor stop \
                 {id}` ends it, `muxvisor add {id} -- PROGRAM` registers it again",
                s.socket.display()
            );
            (id, msg)
        })
        .collect()
}

pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<ExitCode> {
    let (mut ids, extra) = match &args.id {
        Some(raw) => {
            let id = Identity::parse(raw)?;
            let extra = unaccounted(&ctx.root, std::slice::from_ref(&id));
            // A spec file that cannot be read is a row (state unknown, its
            // error, exit 1), not a failure with nothing on stdout.
            let registered = std::fs::symlink_metadata(ctx.root.peer_file(&id)).is_ok();
            if !registered && extra.is_empty() {
                bail!(
                    "no peer named {id} under {}; `muxvisor status` lists them all",
                    ctx.root.dir().display()
                );
            }
            (vec![id], extra)
        }
        None => (peer::list(&ctx.root)?, unaccounted(&ctx.root, &ghosts::socket_ids(&ctx.root)?)),
    };
    for (id, _) in &extra {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids.sort();
    let (mut rows, mut worst) = rows(&ctx.root, &ids);
    for r in rows.iter_mut() {
        if let Some((_, msg)) = extra.iter().find(|(id, _)| *id == r.identity) {
            r.error = Some(msg.clone());
            worst = Exit::Failure;
        }
    }
    if ctx.json {
        output::json(&rows)?;
    } else if rows.is_empty() {
        output::warn("no peers registered; add one with `muxvisor add ID -- PROGRAM`");
    } else {
        for l in table(&rows) {
            output::line(l)?;
        }
        for l in instance_lines(&rows) {
            output::line(l)?;
        }
    }
    for r in &rows {
        if let Some(e) = &r.error {
            output::warn(format!("{}: {e}", r.identity));
        }
    }
    Ok(worst.into())
}

/// One line per agent pool instance, under the table: its state (and why
/// it is blocked), its task, its runner. Pure.
pub fn instance_lines(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        for w in r.workers.iter().flatten() {
            let Some(a) = &w.agent else { continue };
            let (state, why) = match &w.held {
                Some(h) => ("queued".to_string(), format!(" (held: {h})")),
                None => (
                    a.state.to_string(),
                    a.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
                ),
            };
            let since =
                a.since.map(|t| format!(" since {}", t.format("%H:%M:%S"))).unwrap_or_default();
            let dash = || "-".to_string();
            out.push(format!(
                "  {} instance {}: {state}{why}{since}, task {}, agent pid {}, runner pid {}",
                r.identity,
                w.slot,
                w.task.as_deref().unwrap_or("-"),
                w.pid.map(|p| p.to_string()).unwrap_or_else(dash),
                w.runner_pid.map(|p| p.to_string()).unwrap_or_else(dash),
            ));
        }
    }
    out
}

/// The human table, columns aligned. Pure.
pub fn table(rows: &[Row]) -> Vec<String> {
    let dash = || "-".to_string();
    let mut cells: Vec<[String; 10]> = vec![[
        "IDENTITY".into(),
        "POLICY".into(),
        "STATE".into(),
        "AGENT".into(),
        "PID".into(),
        "UPTIME".into(),
        "IDLE".into(),
        "EXIT".into(),
        "CANARY".into(),
        "QUEUE P/R/D".into(),
    ]];
    for r in rows {
        let exit = match (&r.exit_status, &r.exit_signal) {
            (Some(s), _) => s.to_string(),
            (None, Some(sig)) => {
                format!("sig {}", sig.as_str().map_or(sig.to_string(), String::from))
            }
            (None, None) => dash(),
        };
        cells.push([
            r.identity.to_string(),
            r.policy.map_or_else(dash, |p| p.to_string()),
            r.state.clone(),
            match &r.agent {
                Some(a) => match &a.reason {
                    // The reason comes from a hook or a screen: one line, inert.
                    Some(why) => format!("{}:{}", a.state, output::inert_line(why)),
                    None => a.state.to_string(),
                },
                None => dash(),
            },
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.uptime_s.map_or_else(dash, human_secs),
            r.idle_s.map_or_else(dash, human_secs),
            exit,
            if r.canary { "yes" } else { "no" }.into(),
            match r.queue.quarantined {
                0 => format!("{}/{}/{}", r.queue.pending, r.queue.running, r.queue.dead),
                q => format!(
                    "{}/{}/{} +{q} quarantined",
                    r.queue.pending, r.queue.running, r.queue.dead
                ),
            },
        ]);
    }
    let mut widths = [0usize; 10];
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    cells
        .iter()
        .map(|c| {
            let mut line = String::new();
            for (i, (s, w)) in c.iter().zip(widths).enumerate() {
                if i + 1 == c.len() {
                    line.push_str(s);
                } else {
                    line.push_str(&format!("{s:<w$}  "));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// `45s`, `3m20s`, `2h5m`, `3d4h`: two units at most.
pub fn human_secs(s: i64) -> String {
    let s = s.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{sec}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn id(s: &str) -> Identity {
        Identity::parse(s).unwrap()
    }

    fn at(secs_ago: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(now - TimeDelta::seconds(secs_ago))
    }

    #[test]
    fn running_row_has_uptime_idle_and_pid() {
        let now = Utc::now();
        let st = State { launched_at: at(100, now), pane_pid: Some(7), ..State::default() };
        let obs = Observed {
            seen: Seen::Alive,
            pane_pid: Some(42),
            server_pid: Some(41),
            last_output: at(5, now),
            dead_at: None,
        };
        let r = row(&id("a"), None, &obs, &st, true, (Counts::default(), None), now);
        assert_eq!(r.state, "running");
        assert_eq!(r.pid, Some(42));
        assert_eq!(r.uptime_s, Some(100));
        assert_eq!(r.idle_s, Some(5));
        assert_eq!((r.exit_status, r.exit_signal.clone()), (None, None));
        let j = serde_json::to_value(&r).unwrap();
        for k in [
            "identity",
            "policy",
            "state",
            "pid",
            "uptime_s",
            "idle_s",
            "exit_status",
            "exit_signal",
            "canary",
            "queue",
        ] {
            assert!(j.get(k).is_some(), "missing {k}: {j}");
        }
        assert!(j["policy"].is_null());
        assert_eq!(j["queue"]["pending"], 0);
        assert!(j.get("error").is_none());
    }

    /// Issue 18: right after a launch UPTIME was 0s while IDLE was 1s (tmux
    /// reports the last output in whole seconds): idle never exceeds uptime.
    #[test]
    fn idle_never_exceeds_uptime() {
        let now = Utc::now();
        let st = State { launched_at: at(0, now), ..State::default() };
        let obs = Observed {
            seen: Seen::Alive,
            pane_pid: Some(42),
            server_pid: Some(41),
            last_output: at(1, now),
            dead_at: None,
        };
        let r = row(&id("a"), None, &obs, &st, true, (Counts::default(), None), now);
        assert_eq!((r.uptime_s, r.idle_s), (Some(0), Some(0)));
    }

    #[test]
    fn dead_pane_row_reports_status_or_signal() {
        let now = Utc::now();
        let st = State { launched_at: at(10, now), ..State::default() };
        let mut obs = Observed::bare(Seen::PaneDead { status: Some(3), signal: None });
        obs.pane_pid = Some(9);
        let r = row(&id("a"), None, &obs, &st, false, (Counts::default(), None), now);
        assert_eq!((r.state.as_str(), r.exit_status, r.uptime_s), ("exited", Some(3), None));
        let obs = Observed::bare(Seen::PaneDead { status: None, signal: Some("15".into()) });
        let r = row(&id("a"), None, &obs, &st, false, (Counts::default(), None), now);
        assert_eq!(r.exit_signal, Some(serde_json::json!(15)));
        let obs = Observed::bare(Seen::PaneDead { status: None, signal: Some("TERM".into()) });
        let r = row(&id("a"), None, &obs, &st, false, (Counts::default(), None), now);
        assert_eq!(r.exit_signal, Some(serde_json::json!("TERM")));
    }

    #[test]
    fn hung_row_falls_back_to_recorded_pids() {
        let now = Utc::now();
        let st = State {
            launched_at: at(10, now),
            pane_pid: Some(5),
            server_pid: Some(4),
            ..State::default()
        };
        let r = row(
            &id("a"),
            None,
            &Observed::bare(Seen::Hung),
            &st,
            true,
            (Counts::default(), None),
            now,
        );
        assert_eq!((r.state.as_str(), r.pid, r.server_pid), ("hung", Some(5), Some(4)));
    }

    #[test]
    fn table_is_aligned() {
        let now = Utc::now();
        let st = State::default();
        let rows = vec![
            row(
                &id("a"),
                None,
                &Observed::bare(Seen::NoSocket),
                &st,
                false,
                (Counts::default(), None),
                now,
            ),
            row(
                &id("longer-name"),
                None,
                &Observed::bare(Seen::NoSocket),
                &st,
                false,
                (Counts { pending: 2, running: 1, dead: 0, quarantined: 0 }, Some("t1".into())),
                now,
            ),
        ];
        let t = table(&rows);
        assert_eq!(t.len(), 3);
        let col = |l: &str| l.find("stopped").or_else(|| l.find("STATE"));
        assert_eq!(col(&t[0]), col(&t[1]));
        assert_eq!(col(&t[1]), col(&t[2]));
        assert!(t[2].ends_with("2/1/0"), "{}", t[2]);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(0), "0s");
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(200), "3m20s");
        assert_eq!(human_secs(7500), "2h5m");
        assert_eq!(human_secs(3 * 86_400 + 4 * 3600 + 5), "3d4h");
    }
}
