//! The tick's brain: a pure function from what tmux shows, what was recorded,
//! the peer's spec and its queue to a list of actions, with the clock and the
//! jitter seed passed in. No I/O happens here, so every (observed, recorded)
//! pair is a unit test with a synthetic clock.
//!
//! The table, in the spirit of s6 — rows are what tmux shows, columns what the
//! state file says about the incarnation (`Never` launched, deliberately
//! `Stopped` or reaped, `Failed` after a crash loop, or `Live`):
//!
//! ```text
//! persistent      | Never          | Stopped        | Failed         | Live
//! ----------------+----------------+----------------+----------------+------------------------------
//! Alive           | canary, reap?  | nothing        | nothing        | canary, reap (age, then idle)
//! PaneDead        | nothing        | nothing        | nothing        | death(exited)
//! SessionGone     | nothing        | nothing        | nothing        | death(session-gone)
//! NoSocket        | nothing        | nothing        | nothing        | death(server-dead)
//! StaleSocket     | clean socket   | clean socket   | clean socket   | clean socket, death(server-dead)
//! Hung            | report hung    | report hung    | report hung    | report hung
//! ```
//!
//! `Alive` with `Stopped`/`Failed` is a `stop` or `launch` in flight (or a
//! hand-started server): the tick leaves it alone rather than race them.
//!
//! `death(kind)` is decided once per incarnation (`State::dead_incarnation`
//! remembers which launch's death was recorded): a missing session logs
//! `gone` with its `death` kind; the restart policy says whether to restart
//! (`never`: no; `on-failure`: not after exit 0; `always`: yes). Every death
//! that wants a restart counts toward the crash-loop budget: `restart_burst`
//! deaths within `restart_window` mark the peer `failed` and nothing restarts
//! it until `launch`/`restart`. Otherwise restart attempt `n` waits
//! `backoff(n)` measured from the death: tmux's `pane_dead_time` for a dead
//! pane (whole seconds, so the end of that second), else the tick that first
//! saw the session missing. `backoff(n)` doubles from `--backoff`, is capped
//! by `--max-backoff` and loses up to a quarter to jitter, so it still grows
//! strictly until the cap. An incarnation that lived at least
//! [`healthy_period`] resets the attempt counter to 1. A restart not yet due
//! is remembered (`next_restart_at`), reported by every tick until then with
//! the time left (`RestartPending`), and taken by the first tick past it.
//!
//! Which look: a healthy persistent peer that is neither an agent nor reaped
//! for idleness, with nothing in its mailbox, needs to be known alive and
//! nothing more, so [`kernel_may_answer`] lets the OS vouch for it
//! (`observe::vouch`) instead of a tmux round trip; every other peer, any
//! doubt of the kernel's, and each peer once every [`TMUX_LOOK_EVERY`]
//! minutes ([`tmux_look_due`]) gets tmux's look as before. The table above
//! reads the same either way: the kernel only ever answers `Alive`.
//!
//! Ephemeral peers: their pane runs a runner (see `dispatch` and `runner`)
//! that finishes its own tasks and claims the next; the tick only starts
//! one when none lives, finishes what a dead runner left in `cur/`, and
//! stops a task past its timeout. The table is in [`ephemeral`].

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::lifecycle::observe::{Observed, Seen};
use crate::model::peer::{PeerSpec, Policy, Restart};
use crate::model::peer_state::State;

/// A restart is never scheduled sooner than this after a healthy run resets
/// the counter; also the floor of [`healthy_period`].
pub const MIN_HEALTHY: Duration = Duration::from_secs(60);

/// How a recorded session went missing (the `death=` of `ev=gone`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionDeath {
    /// The server is gone (socket missing or stale).
    ServerDead,
    /// The server answers but the session is missing.
    SessionGone,
}

impl SessionDeath {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionDeath::ServerDead => "server-dead",
            SessionDeath::SessionGone => "session-gone",
        }
    }
}

/// The task claimed in `cur/`, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningTask {
    pub task: String,
    /// 1 for the first run.
    pub attempt: u32,
    /// When it was claimed (the program starts right after).
    pub started_at: DateTime<Utc>,
}

/// What the tick knows about an ephemeral peer's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueFacts {
    /// The first runner's task (worker slot 0; the only one of one worker).
    pub running: Option<RunningTask>,
    /// Tasks waiting in `new/` (due or not).
    pub pending: usize,
    /// A runner holds `runner.lock`: it owns the running task.
    pub runner: bool,
    /// `--workers N`, N > 1: tasks claimed by a worker slot (1..N) whose
    /// runner is gone (killed, crashed): nobody will record their end.
    pub orphans: Vec<RunningTask>,
    /// `--workers N`, N > 1: a runner of a worker slot (1..N) lives.
    pub workers_alive: bool,
    /// `--workers N`, N > 1: the tasks of worker slots (1..N) whose runner
    /// lives, with their slots (the `--task-timeout` backstop per slot).
    pub slot_tasks: Vec<(u32, RunningTask)>,
    /// `--workers N`, N > 1: pending tasks outnumber the live runners free
    /// to take them, and a worker slot is free.
    pub slots_wanted: bool,
}

/// Everything `decide` looks at.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub observed: &'a Observed,
    pub recorded: &'a State,
    pub spec: &'a PeerSpec,
    pub queue: &'a QueueFacts,
    pub now: DateTime<Utc>,
    /// Source of restart jitter, so that `decide` stays a pure function.
    pub seed: u64,
    /// The tick's housekeeping (expiring and sweeping the queue); off for
    /// the kick and the hand-over, which must stay cheap.
    pub maintenance: bool,
    /// A persistent peer's agent, as the tick just looked at it.
    pub agent: Option<AgentFacts>,
}

/// What the tick knows about a persistent peer's agent and mailbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentFacts {
    pub state: Option<crate::model::agent::classify::AgentState>,
    /// Seen ready since its launch.
    pub ever_ready: bool,
    /// Readiness means something for this peer (an `--agent` preset or a
    /// ready pattern): a program that dies before it was ever ready is a
    /// failed start, whatever its status.
    pub tracked: bool,
    /// Messages waiting in its mailbox.
    pub mailbox: usize,
    /// A courier delivers them.
    pub courier: bool,
    /// A usage limit it was parked on has reset and its continue message
    /// is not queued yet.
    pub limit_reset: bool,
    /// The reset time of the usage limit it is (or was last) parked on:
    /// idleness counts from it, so a parked agent is not reaped for the
    /// hours it waited.
    pub parked_until: Option<DateTime<Utc>>,
    /// The last message pasted into it: input is activity too.
    pub last_delivery: Option<DateTime<Utc>>,
}

/// One thing the tick should do for a peer, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The server did not answer; `first` when this is news (log `ev=hung`).
    ReportHung { first: bool },
    /// `--workers N`: end one worker slot's runner and its program (SIGTERM,
    /// then SIGKILL after the stop grace), leaving the server and the other
    /// slots running.
    EndSlot { slot: u32, reason: String },
    /// Log `ev=gone` for the recorded session that went missing.
    RecordGone { death: SessionDeath, reason: String },
    /// Record the pane's death (`ev=session-exit source=tick`) unless its
    /// `pane-died` hook did: a hook whose binary moved cannot run.
    RecordExit { status: Option<i32>, signal: Option<String> },
    /// Send SIGCHLD to the server: tmux < 3.6 can lose a pane's exit status.
    NudgeServer,
    /// Remove a socket file no server listens on.
    CleanStaleSocket,
    /// Start a canary if none watches this server.
    EnsureCanary,
    /// Deliberate stop: idle longer than `idle_ttl`.
    ReapIdle { idle_s: u64 },
    /// Deliberate stop: older than `max_age`.
    ReapAge { age_s: u64 },
    /// Tear down what is left of the server and launch again.
    Restart { attempt: u32, backoff_ms: u64 },
    /// A restart is scheduled but not due: say when (nothing to do).
    RestartPending { attempt: u32, backoff_ms: u64, due_in_ms: u64 },
    /// Crash loop: no more restarts until `launch`/`restart`.
    MarkFailed { restarts: u32, failures: usize, window_s: u64 },
    /// Ephemeral: the running task cannot have finished (its runner or
    /// server died, or it ran out of time): retry it, or dead-letter it
    /// after `max_attempts` (the queue decides which).
    FailTask { task: String, reason: String },
    /// Ephemeral: deliberately stop the live worker (`reason` goes to state).
    StopWorker { reason: String },
    /// Ephemeral: remove what is left of a dead worker (its server, and
    /// any program that outlived its runner).
    Teardown,
    /// Ephemeral: dead-letter tasks past their TTL, quarantine damage.
    ExpireTasks,
    /// Ephemeral: start a runner (it claims the head when due).
    StartNext,
    /// Ephemeral, `--workers N`: start runners in free worker slots of the
    /// live server for the pending tasks.
    FillSlots,
    /// Ephemeral, `--workers N`: record the deaths of dead worker panes
    /// that their `pane-died` hooks did not (before their tasks are
    /// retried, so that each record names its task).
    RecordWorkerExits,
    /// Ephemeral, `--workers N`: the first runner died while worker slots'
    /// runners live: start it again in its own pane, leaving them running.
    RespawnRunner,
    /// Persistent: messages wait and no courier delivers them: start one.
    EnsureCourier,
    /// Persistent: a launch held by admission; launch it if admitted now.
    LaunchHeld,
    /// Persistent: a usage limit has reset: queue the continue message.
    SendContinue,
}

/// The decision: actions in order, and the state to record (bookkeeping
/// fields only; the act layer merges them under the identity lock).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub state: State,
}

/// The incarnation as the state file describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Never,
    Stopped,
    Failed,
    Live,
}

impl Phase {
    pub fn of(st: &State) -> Phase {
        if st.failed {
            Phase::Failed
        } else if st.stopped {
            Phase::Stopped
        } else if st.launched_at.is_none() {
            Phase::Never
        } else {
            Phase::Live
        }
    }
}

/// The `last_observed` label for a sighting: `status`'s state, so that the
/// tick and `status` never disagree about what a transition is.
pub fn label(obs: &Observed, st: &State) -> &'static str {
    crate::lifecycle::observe::classify(obs, st).as_str()
}

/// How long an incarnation must live for its death to start a fresh crash
/// count (restart attempt 1): the longest backoff, but at least a minute.
pub fn healthy_period(spec: &PeerSpec) -> Duration {
    spec.max_backoff.max(MIN_HEALTHY)
}

/// The pause before restart attempt `attempt` (1-based): `backoff` doubled
/// `attempt - 1` times, capped at `max_backoff`, minus up to a quarter of
/// jitter drawn from `seed`.
pub fn backoff_for(spec: &PeerSpec, attempt: u32, seed: u64) -> Duration {
    let base = spec.backoff.as_millis() as u64;
    let cap = spec.max_backoff.as_millis() as u64;
    let shift = attempt.saturating_sub(1).min(40);
    let full = base.saturating_mul(1u64 << shift).min(cap);
    let jitter = (full / 4).checked_mul(mix(seed ^ u64::from(attempt)) % 1000).unwrap_or(0) / 1000;
    Duration::from_millis(full - jitter)
}

/// splitmix64: a well-mixed 64-bit value from any seed.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn since(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Each peer's tmux server is asked at least once in this many minutes,
/// even while the kernel vouches for it: the OS cannot see the session's
/// name, nor a server that runs but does not answer.
pub const TMUX_LOOK_EVERY: i64 = 10;

/// True when `id`'s periodic tmux look falls in the minute of `now`: one
/// minute in [`TMUX_LOOK_EVERY`], a different one for different peers (so
/// that a tick asks tmux about a tenth of a healthy fleet, not all of it at
/// once every ten minutes). Pure.
pub fn tmux_look_due(id: &crate::model::peer::Identity, now: DateTime<Utc>) -> bool {
    // FNV-1a: stable across processes and versions (not `DefaultHasher`).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let offset = (h % TMUX_LOOK_EVERY as u64) as i64;
    (now.timestamp().div_euclid(60) + offset).rem_euclid(TMUX_LOOK_EVERY) == 0
}

/// True when the kernel's word that the recorded incarnation still runs
/// (`observe::kernel_look`) is all the decision needs, so the tick may
/// skip tmux when the kernel gives it: a persistent peer that is not an
/// agent (its state needs its screen), has no idle TTL (idleness needs
/// tmux's last-output time), no continue message and an empty `mailbox`
/// (messages pending or in delivery), is live on record, was seen
/// `running` by the last tick and has no death on record, and whose
/// periodic tmux look is not due. The decision is then the one tmux's
/// `Alive` would give. Pure.
pub fn kernel_may_answer(
    spec: &PeerSpec,
    recorded: &State,
    mailbox: usize,
    now: DateTime<Utc>,
) -> bool {
    spec.policy == Policy::Persistent
        && !spec.is_agent()
        && spec.idle_ttl.is_none()
        && spec.continue_message.is_none()
        && mailbox == 0
        && Phase::of(recorded) == Phase::Live
        && recorded.held.is_none()
        && recorded.last_observed.as_deref() == Some("running")
        && recorded.next_restart_at.is_none()
        && recorded.dead_incarnation != recorded.launched_at
        && !tmux_look_due(&spec.identity, now)
}

/// The whole decision for one peer.
pub fn decide(i: &Input) -> Plan {
    let mut st = i.recorded.clone();
    let mut out = Vec::new();
    match i.spec.policy {
        Policy::Persistent => persistent(i, &mut st, &mut out),
        Policy::Ephemeral => ephemeral(i, &mut st, &mut out),
    }
    st.last_observed = Some(label(i.observed, i.recorded).to_string());
    Plan { actions: out, state: st }
}

fn hung(i: &Input, out: &mut Vec<Action>) {
    out.push(Action::ReportHung { first: i.recorded.last_observed.as_deref() != Some("hung") });
}

fn persistent(i: &Input, st: &mut State, out: &mut Vec<Action>) {
    use Phase::*;
    if i.maintenance && i.agent.is_some_and(|a| a.mailbox > 0) {
        // Mailbox messages past their TTL are dead-lettered like tasks.
        out.push(Action::ExpireTasks);
    }
    if i.recorded.held.is_some() && !matches!(i.observed.seen, Seen::Alive | Seen::Hung) {
        // Waiting for admission: no death to record, no budget to spend.
        if i.observed.seen == Seen::StaleSocket {
            out.push(Action::CleanStaleSocket);
        }
        out.push(Action::LaunchHeld);
        return;
    }
    match (&i.observed.seen, Phase::of(i.recorded)) {
        (Seen::Hung, _) => hung(i, out),
        (Seen::Alive, Live | Never) => alive(i, out),
        (Seen::Alive, Stopped | Failed) => {}
        (Seen::PaneDead { status, signal }, Live) => {
            // An agent that never got ready failed to start, whatever it
            // exited with (SPEC §8).
            let never_ready = i.agent.is_some_and(|a| a.tracked && !a.ever_ready);
            let clean = *status == Some(0) && signal.is_none() && !never_ready;
            if status.is_none() && signal.is_none() {
                out.push(Action::NudgeServer);
            } else if st.dead_incarnation.is_none() || st.dead_incarnation != st.launched_at {
                out.push(Action::RecordExit { status: *status, signal: signal.clone() });
            }
            death(i, st, out, None, !clean);
        }
        (Seen::PaneDead { .. }, Never | Stopped | Failed) => {}
        (Seen::SessionGone, Live) => death(i, st, out, Some(SessionDeath::SessionGone), true),
        (Seen::NoSocket, Live) => death(i, st, out, Some(SessionDeath::ServerDead), true),
        (Seen::StaleSocket, Live) => {
            out.push(Action::CleanStaleSocket);
            death(i, st, out, Some(SessionDeath::ServerDead), true);
        }
        (Seen::SessionGone | Seen::NoSocket, Never | Stopped | Failed) => {}
        (Seen::StaleSocket, Never | Stopped | Failed) => out.push(Action::CleanStaleSocket),
    }
}

/// Alive: make sure a canary watches, then reap by age before idleness
/// (never an agent that is blocked: it waits for a person, not idling),
/// and make sure a courier delivers waiting messages.
fn alive(i: &Input, out: &mut Vec<Action>) {
    out.push(Action::EnsureCanary);
    let blocked = i
        .agent
        .is_some_and(|a| a.state == Some(crate::model::agent::classify::AgentState::Blocked));
    if !blocked && let Some(a) = reap(i) {
        out.push(a);
        return;
    }
    let continues = i.agent.is_some_and(|a| a.limit_reset) && i.spec.continue_message.is_some();
    if continues {
        out.push(Action::SendContinue);
    }
    if i.agent.is_some_and(|a| (a.mailbox > 0 || continues) && !a.courier) {
        out.push(Action::EnsureCourier);
    }
}

fn reap(i: &Input) -> Option<Action> {
    let st = i.recorded;
    if let (Some(max), Some(at)) = (i.spec.max_age, st.launched_at) {
        let age = since(i.now, at);
        if age > max {
            return Some(Action::ReapAge { age_s: age.as_secs() });
        }
    }
    reap_idle(i)
}

/// Idle = no pane output and no message delivered (or, if there never was
/// any, since the launch; for an agent parked on a usage limit, since the
/// limit's reset). tmux gives the last output to the whole second, so it
/// counts as the end of that second: an agent printing 0.9 s ago is never
/// 1 s idle.
fn reap_idle(i: &Input) -> Option<Action> {
    let ttl = i.spec.idle_ttl?;
    let output = i.observed.last_output.map(|t| t + TimeDelta::seconds(1));
    let agent = i.agent.map(|a| [a.parked_until, a.last_delivery]).unwrap_or_default();
    let last = [output, i.recorded.launched_at].into_iter().chain(agent).flatten().max()?;
    let idle = since(i.now, last);
    (idle > ttl).then_some(Action::ReapIdle { idle_s: idle.as_secs() })
}

/// A persistent incarnation is dead. `gone` is set when the session went
/// missing (log it); `failure` is false only for a clean exit 0.
fn death(
    i: &Input,
    st: &mut State,
    out: &mut Vec<Action>,
    gone: Option<SessionDeath>,
    failure: bool,
) {
    let spec = i.spec;
    if st.dead_incarnation.is_some() && st.dead_incarnation == st.launched_at {
        // Recorded on an earlier tick: only a scheduled restart remains.
        match st.next_restart_at {
            Some(at) if i.now >= at => due_restart(i, st, out),
            Some(at) => pending(i, st, out, at),
            None => {}
        }
        return;
    }
    st.dead_incarnation = st.launched_at;
    if let Some(death) = gone {
        let reason = match death {
            SessionDeath::ServerDead => "tmux server is not running",
            SessionDeath::SessionGone => "tmux server is up but the session is missing",
        };
        out.push(Action::RecordGone { death, reason: reason.into() });
    }
    let wants = match spec.restart {
        Restart::Never => false,
        Restart::OnFailure => failure,
        Restart::Always => true,
    };
    if !wants {
        st.next_restart_at = None;
        return;
    }
    let died_at = died_at(i);
    st.failures.push(died_at);
    let healthy = st.launched_at.is_some_and(|l| since(died_at, l) >= healthy_period(spec));
    let attempt = if healthy { 1 } else { st.restart_attempt.saturating_add(1) };
    let at = schedule(i, st, attempt, died_at);
    if i.now >= at {
        due_restart(i, st, out);
    } else {
        prune(i, st);
        if st.failures.len() >= spec.restart_burst as usize {
            mark_failed(i, st, out);
        } else {
            pending(i, st, out, at);
        }
    }
}

/// When the incarnation died, as far as the tick can tell: tmux's
/// `pane_dead_time` is whole seconds, so the death is taken at the end of
/// that second (never later than now); a missing session or server has no
/// time, so the tick that sees it counts as the death.
fn died_at(i: &Input) -> DateTime<Utc> {
    match i.observed.dead_at {
        Some(t) => add(t, Duration::from_secs(1)).min(i.now),
        None => i.now,
    }
}

/// Schedule restart `attempt` its backoff after `death`; returns when.
fn schedule(i: &Input, st: &mut State, attempt: u32, death: DateTime<Utc>) -> DateTime<Utc> {
    let b = backoff_for(i.spec, attempt, i.seed);
    let at = add(death, b);
    st.pending_attempt = attempt;
    st.pending_backoff_ms = b.as_millis() as u64;
    st.next_restart_at = Some(at);
    at
}

/// The scheduled restart is not due yet: report how long is left.
fn pending(i: &Input, st: &State, out: &mut Vec<Action>, at: DateTime<Utc>) {
    out.push(Action::RestartPending {
        attempt: st.pending_attempt,
        backoff_ms: st.pending_backoff_ms,
        due_in_ms: since(at, i.now).as_millis() as u64,
    });
}

fn prune(i: &Input, st: &mut State) {
    let window = i.spec.restart_window;
    st.failures.retain(|t| since(i.now, *t) <= window);
}

fn due_restart(i: &Input, st: &mut State, out: &mut Vec<Action>) {
    prune(i, st);
    if st.failures.len() >= i.spec.restart_burst as usize {
        mark_failed(i, st, out);
        return;
    }
    out.push(Action::Restart { attempt: st.pending_attempt, backoff_ms: st.pending_backoff_ms });
}

fn mark_failed(i: &Input, st: &mut State, out: &mut Vec<Action>) {
    st.failed = true;
    st.next_restart_at = None;
    out.push(Action::MarkFailed {
        restarts: st.restart_attempt,
        failures: st.failures.len(),
        window_s: i.spec.restart_window.as_secs(),
    });
}

/// The restart was launched: the bookkeeping a tick records afterwards.
pub fn after_restart(st: &mut State, attempt: u32) {
    st.restart_attempt = attempt;
    st.next_restart_at = None;
    st.dead_incarnation = None;
}

/// The restart's launch failed: that counts as another failure and the next
/// attempt waits its (longer) backoff from now.
pub fn after_failed_restart(st: &mut State, spec: &PeerSpec, now: DateTime<Utc>, seed: u64) {
    st.failures.push(now);
    st.restart_attempt = st.pending_attempt;
    let attempt = st.pending_attempt.saturating_add(1);
    let b = backoff_for(spec, attempt, seed);
    st.pending_attempt = attempt;
    st.pending_backoff_ms = b.as_millis() as u64;
    st.next_restart_at = Some(add(now, b));
}

/// The ephemeral table: rows are what tmux shows, columns whether a runner
/// holds its lock. "start" means `StartNext` when anything is pending or a
/// task was just put back.
///
/// ```text
/// ephemeral       | runner alive                     | no runner
/// ----------------+----------------------------------+------------------------------------------
/// Alive           | canary; past timeout: stop, fail | orphan pane: stop; fail its task; start
/// PaneDead        | (runner ending) nothing          | teardown; fail its task; start
/// SessionGone/    | (runner still recording its      | gone (once, if on record as live); stale:
///  NoSocket/Stale |  program's exit) nothing         |  clean; task: teardown, fail; start
/// Hung            | report hung                      | report hung
/// ```
///
/// With `--workers N` (N > 1), per worker slot 1..N besides: a task whose
/// slot's runner is gone is failed (retried) unless the server hangs; a
/// live first runner with pending tasks and free slots gets `FillSlots`;
/// a dead first pane while worker runners live is respawned in place
/// (`RespawnRunner`) rather than torn down with them.
fn ephemeral(i: &Input, st: &mut State, out: &mut Vec<Action>) {
    if i.maintenance {
        out.push(Action::ExpireTasks);
    }
    if i.observed.seen != Seen::Hung {
        // Also at every tick of a pool: an idle worker's death that its
        // hook missed leaves no task behind to point at it.
        let pool = i.spec.workers > 1 || i.queue.workers_alive;
        if (!i.queue.orphans.is_empty() || (i.maintenance && pool))
            && matches!(i.observed.seen, Seen::Alive | Seen::PaneDead { .. })
        {
            out.push(Action::RecordWorkerExits);
        }
        for t in &i.queue.orphans {
            out.push(Action::FailTask { task: t.task.clone(), reason: "runner-died".into() });
        }
    }
    let running = i.queue.running.as_ref();
    let fail = |out: &mut Vec<Action>, reason: &str| {
        if let Some(t) = running {
            out.push(Action::FailTask { task: t.task.clone(), reason: reason.into() });
        }
    };
    let free = match (&i.observed.seen, i.queue.runner) {
        (Seen::Hung, _) => {
            hung(i, out);
            false
        }
        (Seen::Alive, true) if i.spec.workers > 1 || i.queue.workers_alive => {
            out.push(Action::EnsureCanary);
            // The --task-timeout backstop per worker slot (a runner ends
            // its own program on time; this is for one that cannot): the
            // overdue slot's runner and program end, the others and the
            // server go on, and only that task is charged.
            let overdue = |t: &RunningTask| since(i.now, t.started_at) > i.spec.task_timeout;
            let slots = running.map(|t| (0, t)).into_iter();
            let slots = slots.chain(i.queue.slot_tasks.iter().map(|(k, t)| (*k, t)));
            let mut first_ended = false;
            for (slot, t) in slots.filter(|(_, t)| overdue(t)) {
                out.push(Action::EndSlot { slot, reason: "task-timeout".into() });
                out.push(Action::FailTask { task: t.task.clone(), reason: "timeout".into() });
                first_ended |= slot == 0;
            }
            // A dead first pane is respawned by the next look (PaneDead
            // with workers alive); slots are filled by a live first runner.
            if !first_ended && (i.queue.slots_wanted || !i.queue.orphans.is_empty()) {
                out.push(Action::FillSlots);
            }
            false
        }
        (Seen::Alive, true) => {
            out.push(Action::EnsureCanary);
            match running {
                Some(t) if since(i.now, t.started_at) > i.spec.task_timeout => {
                    out.push(Action::StopWorker { reason: "task-timeout".into() });
                    fail(out, "timeout");
                    true
                }
                _ => {
                    // A dead slot's task goes back to the queue just now:
                    // a worker for it too (counted when the action runs).
                    if i.queue.slots_wanted || !i.queue.orphans.is_empty() {
                        out.push(Action::FillSlots);
                    }
                    false
                }
            }
        }
        (Seen::Alive, false) => {
            out.push(Action::StopWorker { reason: "orphan-worker".into() });
            fail(out, "runner-died");
            true
        }
        (Seen::PaneDead { .. } | Seen::SessionGone | Seen::NoSocket | Seen::StaleSocket, true) => {
            false
        }
        (Seen::PaneDead { status, signal }, false) if i.queue.workers_alive => {
            if status.is_some() || signal.is_some() {
                out.push(Action::RecordExit { status: *status, signal: signal.clone() });
            }
            fail(out, "runner-died");
            out.push(Action::RespawnRunner);
            false
        }
        (Seen::PaneDead { status, signal }, false) => {
            if status.is_some() || signal.is_some() {
                out.push(Action::RecordExit { status: *status, signal: signal.clone() });
            }
            out.push(Action::Teardown);
            let how = match (status, signal) {
                (_, Some(g)) => format!("runner-died: signal {g}"),
                (Some(c), None) => format!("runner-died: exit {c}"),
                (None, None) => "runner-died".to_string(),
            };
            fail(out, &how);
            true
        }
        (seen @ (Seen::SessionGone | Seen::NoSocket | Seen::StaleSocket), false) => {
            if *seen == Seen::StaleSocket {
                out.push(Action::CleanStaleSocket);
            }
            let death = if *seen == Seen::SessionGone {
                SessionDeath::SessionGone
            } else {
                SessionDeath::ServerDead
            };
            // A runner that retired is on record as stopped; a live record
            // here is a death, whether or not a task was running (with its
            // canary dead, nothing else records it).
            if Phase::of(i.recorded) == Phase::Live && st.dead_incarnation != st.launched_at {
                st.dead_incarnation = st.launched_at;
                let reason = match running {
                    Some(t) => format!("worker for task {} vanished", t.task),
                    None => "the runner's server vanished between tasks".to_string(),
                };
                out.push(Action::RecordGone { death, reason });
            }
            if running.is_some() {
                out.push(Action::Teardown);
                fail(out, death.as_str());
            }
            true
        }
    };
    // An agent pool with --warm keeps instances started with nothing queued.
    let warm = i.spec.is_pool() && i.spec.warm > 0;
    if free && (i.queue.pending > 0 || running.is_some() || warm) {
        out.push(Action::StartNext);
    }
}

#[cfg(test)]
mod tests;
