//! The tick's edge: gather the facts about one peer, ask [`decide`], record
//! the bookkeeping, and carry the actions out through the modules that own
//! each outside thing (`session` for tmux servers, `canary`, `queue` and
//! `dispatch` for tasks). Every action that changed something yields a
//! [`Report`]; the events are logged here, except the task events, which the
//! queue logs as it makes each change durable.
//!
//! An action that fails stops the peer's remaining actions for this tick
//! (they may depend on it): the step ends [`Step::Failed`], which the tick
//! reports as `error`; the next tick decides again from what is then on
//! disk and on screen.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::decide::{self, Action, Input, QueueFacts, RunningTask};
use super::{Report, Step, TickConfig, seed};
use crate::ground::duration;
use crate::ground::fsutil::{self, LockGuard};
use crate::ground::paths::Root;
use crate::lifecycle::canary;
use crate::lifecycle::dispatch::Finished;
use crate::lifecycle::observe;
use crate::lifecycle::session;
use crate::model::logfmt::Event;
use crate::model::peer::{self, Identity, PeerSpec, Policy};
use crate::model::peer_state::{self, State};
use crate::model::queue::Queue;

/// How long the tick waits for a peer's identity lock (a `launch` or `stop`
/// in progress holds it for about as long as its grace).
const ID_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Observe, decide and act for one peer (the tick).
pub fn handle_peer(root: &Root, id: &Identity, cfg: &TickConfig) -> Result<Vec<Report>> {
    let Some(spec) = peer::load(root, id)? else {
        return Ok(Vec::new()); // removed since the list was read
    };
    let mut reports = retain(root, id, cfg)?;
    reports.extend(step(root, &spec, cfg)?.into_reports(id));
    Ok(reports)
}

/// Retention, part of every periodic tick: finished tasks (and delivered
/// messages) past `--retention` or beyond the newest `--retention-count`
/// of the queue are removed, so `done/` stays short without a `clean`.
fn retain(root: &Root, id: &Identity, cfg: &TickConfig) -> Result<Vec<Report>> {
    if !cfg.maintenance {
        return Ok(Vec::new());
    }
    let Some(q) = Queue::open_existing(root, id)? else { return Ok(Vec::new()) };
    let n = q.prune_done(cfg.retention, cfg.retention_count, Utc::now())?;
    Ok(if n == 0 {
        Vec::new()
    } else {
        vec![Report::new(
            id,
            "retention",
            format!(
                "removed {n} finished task(s) past {} or beyond the newest {}",
                duration::format(cfg.retention),
                cfg.retention_count
            ),
        )]
    })
}

fn step(root: &Root, spec: &PeerSpec, cfg: &TickConfig) -> Result<Step> {
    let id = &spec.identity;
    match spec.policy {
        Policy::Persistent => {
            // A persistent peer's queue is its mailbox: opened only if it
            // exists (a peer that never got a message has none).
            let q = Queue::open_existing(root, id)?;
            run_peer(root, spec, cfg, q.as_ref(), None)
        }
        Policy::Ephemeral => {
            let q = Queue::open(root, id)?;
            // Held by whoever is starting a runner or by a runner retiring:
            // leave the peer to them this time.
            let Some(guard) = q.try_worker_lock()? else {
                return Ok(Step::Done(Vec::new()));
            };
            run_peer(root, spec, cfg, Some(&q), Some(guard))
        }
    }
}

/// The per-peer step for an ephemeral peer whose worker lock the caller
/// already holds: the kick and the hand-over (`super::demand`) run exactly
/// the tick's code.
pub fn handle_ephemeral(
    root: &Root,
    spec: &PeerSpec,
    q: &Queue,
    guard: LockGuard,
    cfg: &TickConfig,
) -> Result<Step> {
    run_peer(root, spec, cfg, Some(q), Some(guard))
}

fn run_peer(
    root: &Root,
    spec: &PeerSpec,
    cfg: &TickConfig,
    q: Option<&Queue>,
    worker_guard: Option<LockGuard>,
) -> Result<Step> {
    let id = &spec.identity;
    let mailbox = match q {
        Some(q) if spec.policy == Policy::Persistent => {
            let c = q.counts()?;
            c.pending + c.running
        }
        _ => 0,
    };
    let (obs, recorded) = look(root, spec, cfg, mailbox)?;
    let recorded = adopt(root, spec, &obs, recorded)?;
    let recorded = note_pane_start(root, spec, &obs, recorded)?;
    let mut early = Vec::new();
    if let Some(r) = repoint_hook(root, spec, &obs, &recorded, cfg)? {
        early.push(r);
    }
    let facts = match q {
        Some(q) if spec.policy == Policy::Ephemeral => queue_facts(root, q, spec)?,
        _ => QueueFacts::default(),
    };
    let agent = match spec.policy {
        Policy::Persistent => Some(agent_facts(root, spec, &obs, q, mailbox)?),
        Policy::Ephemeral => None,
    };
    let now = Utc::now();
    let seed = seed(id);
    let plan = decide::decide(&Input {
        observed: &obs,
        recorded: &recorded,
        spec,
        queue: &facts,
        now,
        seed,
        maintenance: cfg.maintenance,
        agent,
    });
    if !save_bookkeeping(root, id, &recorded, &plan.state)? {
        return Ok(Step::Skipped);
    }
    let mut ctx = Act {
        root,
        spec,
        cfg,
        server_pid: obs.server_pid,
        pane_pid: obs.pane_pid,
        now,
        seed,
        q,
        worker_guard,
        reports: early,
    };
    for a in &plan.actions {
        if let Err(error) = ctx.apply(a) {
            return Ok(Step::Failed { done: ctx.reports, action: name(a), error });
        }
    }
    Ok(Step::Done(ctx.reports))
}

/// What the peer looks like and what its record says. When the decision
/// needs no more than "still running" (`decide::kernel_may_answer`) and
/// the OS vouches for the recorded server and pane (`observe::kernel_look`),
/// that is the observation: no tmux call. Otherwise, and whenever the
/// kernel is not sure, tmux's look, then the record read after it, as ever
/// (a stop or launch that ends meanwhile is seen in the record).
fn look(
    root: &Root,
    spec: &PeerSpec,
    cfg: &TickConfig,
    mailbox: usize,
) -> Result<(observe::Observed, State)> {
    let id = &spec.identity;
    let st = peer_state::load(root, id)?;
    if decide::kernel_may_answer(spec, &st, mailbox, Utc::now())
        && let Some(obs) = observe::kernel_look(root, id, &st)
    {
        return Ok((obs, st));
    }
    let obs = observe::observe(root, id, cfg.call_timeout)?;
    Ok((obs, peer_state::load(root, id)?))
}

/// A record without the pane's start time (written before it was kept, or
/// by an adoption that could not read it) while tmux shows that pane alive:
/// record it once, so that later ticks can take the kernel's word for the
/// peer. Only when nobody holds the identity lock, and only for the
/// incarnation and pids just seen. Returns the state to decide from.
fn note_pane_start(
    root: &Root,
    spec: &PeerSpec,
    obs: &observe::Observed,
    recorded: State,
) -> Result<State> {
    let id = &spec.identity;
    let seen_is_recorded = obs.pane_pid.is_some()
        && obs.pane_pid == recorded.pane_pid
        && obs.server_pid == recorded.server_pid;
    if spec.policy != Policy::Persistent
        || obs.seen != observe::Seen::Alive
        || recorded.pane_start.is_some()
        || decide::Phase::of(&recorded) != decide::Phase::Live
        || !seen_is_recorded
    {
        return Ok(recorded);
    }
    let Some(_lock) = fsutil::try_lock(&root.id_lock(id))? else { return Ok(recorded) };
    let cur = peer_state::load(root, id)?;
    let same = cur.launched_at == recorded.launched_at
        && cur.pane_pid == obs.pane_pid
        && cur.server_pid == obs.server_pid
        && cur.pane_start.is_none();
    let Some(start) = session::pane_start(obs.pane_pid, obs.server_pid).filter(|_| same) else {
        return Ok(recorded);
    };
    peer_state::update(root, id, |st| st.pane_start = Some(start))
}

/// An agent pool that keeps instances warm: its first runner starts with
/// no task pending.
fn warm_pool(spec: &PeerSpec) -> bool {
    spec.is_pool() && spec.warm > 0
}

fn queue_facts(root: &Root, q: &Queue, spec: &PeerSpec) -> Result<QueueFacts> {
    let workers = spec.workers;
    let task = |c: &crate::model::queue::Claimed| RunningTask {
        task: c.header.task.clone(),
        attempt: c.header.attempt,
        started_at: c.header.started_at.unwrap_or(c.header.enqueued_at),
    };
    // The runner first: a runner that ends right after this look leaves
    // its task finished (or claimed) on disk, which the next look sees.
    let runner = q.runner_alive();
    // Worker slots: their tasks first, their locks after (`Slots::read`).
    // One worker reads only its task, unless slots of an earlier, larger
    // `--workers` still have a runner or a task.
    let all = q.running_all()?;
    if workers <= 1 && all.iter().all(|c| c.slot() == 0) && q.live_worker_pids().is_empty() {
        let running = all.first().map(task);
        let pending = q.counts()?.pending;
        return Ok(QueueFacts { running, pending, runner, ..QueueFacts::default() });
    }
    let slots = crate::lifecycle::dispatch::Slots::read(root, q, spec)?;
    let pending = q.counts()?.pending;
    let orphan: Vec<&str> = slots.orphans().collect();
    Ok(QueueFacts {
        running: all.iter().find(|c| c.slot() == 0).map(task),
        pending,
        runner,
        orphans: all.iter().filter(|c| orphan.contains(&c.task())).map(task).collect(),
        workers_alive: slots.live.iter().any(|(k, _)| *k > 0),
        slot_tasks: all
            .iter()
            .filter(|c| c.slot() > 0 && slots.is_live(c.slot()))
            .map(|c| (c.slot(), task(c)))
            .collect(),
        slots_wanted: !slots.to_fill(slots.wanted(spec, pending, Utc::now())).is_empty(),
    })
}

/// A persistent peer's agent: one look (which logs a state change) while
/// its program runs, and its mailbox (`mailbox` messages pending or in
/// delivery). A peer that is not an agent (no preset, no ready pattern) and
/// has nothing to deliver needs no look: the tick would decide nothing from
/// its screen (idleness comes from the observation's last output), so it
/// costs at most one tmux call, not two (none when the kernel vouches for
/// it, see [`look`]). `status` and a courier still look at it when asked.
fn agent_facts(
    root: &Root,
    spec: &PeerSpec,
    obs: &observe::Observed,
    q: Option<&Queue>,
    mailbox: usize,
) -> Result<decide::AgentFacts> {
    let tracked = spec.is_agent();
    let courier = q.is_some_and(crate::lifecycle::agent::mailbox::courier_alive);
    let needs_look = tracked || mailbox > 0 || spec.continue_message.is_some();
    let look = if obs.seen == observe::Seen::Alive && needs_look {
        Some(crate::lifecycle::agent::watch::Looker::once().look_and_record(root, spec)?)
    } else {
        None
    };
    let record = match &look {
        Some(l) => l.record.clone(),
        None => {
            let launched = crate::model::peer_state::load(root, &spec.identity)?.launched_at;
            crate::model::agent::record::load(root, &spec.identity).for_incarnation(launched)
        }
    };
    let limit_reset = look.is_some()
        && record.parked.as_ref().is_some_and(|p| !p.continued && p.until <= chrono::Utc::now());
    Ok(decide::AgentFacts {
        state: look.as_ref().map(|l| l.view.state),
        ever_ready: record.ever_ready,
        tracked,
        mailbox,
        courier,
        limit_reset,
        parked_until: look.as_ref().and(record.parked.as_ref().map(|p| p.until)),
        last_delivery: record.delivery.as_ref().map(|d| d.at),
    })
}

/// A server of ours answers on the socket, but the state names another one
/// (or none): its launcher was killed after tmux started it and before it
/// recorded the launch (a tick killed mid-restart, a kick mid-start).
/// Record it as that launch would have, and log the launch (`adopted=1`):
/// otherwise `stop`, `status` and the restart bookkeeping would go on
/// describing a dead incarnation. Only when nobody holds the identity lock
/// (a launch or stop in flight records itself) and the peer is not stopped
/// or failed on purpose (a persistent peer's server started by hand is left
/// alone, as the decide table says). Returns the state to decide from.
fn adopt(root: &Root, spec: &PeerSpec, obs: &observe::Observed, recorded: State) -> Result<State> {
    let id = &spec.identity;
    let Some(pid) =
        obs.server_pid.filter(|p| obs.server_answers() && recorded.server_pid != Some(*p))
    else {
        return Ok(recorded);
    };
    let Some(_lock) = fsutil::try_lock(&root.id_lock(id))? else { return Ok(recorded) };
    let cur = peer_state::load(root, id)?;
    let socket = root.socket(id);
    let start = crate::ground::proc::start_time(pid);
    let on_purpose = spec.policy == Policy::Persistent && (cur.stopped || cur.failed);
    let recorded_runs = cur
        .server_pid
        .is_some_and(|p| crate::ground::proc::is_tmux_server(p, &socket, cur.server_start));
    if cur.server_pid == Some(pid)
        || on_purpose
        || recorded_runs
        || !crate::ground::proc::is_tmux_server(pid, &socket, start)
    {
        // Recorded meanwhile; left alone; two servers (doctor's); or gone.
        return Ok(cur);
    }
    let st = peer_state::update(root, id, |st| {
        st.launched_at = Some(Utc::now());
        st.server_pid = Some(pid);
        st.server_start = start;
        st.pane_pid = obs.pane_pid;
        st.pane_start = session::pane_start(obs.pane_pid, Some(pid));
        st.stopped = false;
        st.stop_reason = None;
        st.held = None;
        match st.next_restart_at {
            // The restart that started it.
            Some(_) => decide::after_restart(st, st.pending_attempt),
            None => st.dead_incarnation = None,
        }
    })?;
    Event::new("launch")
        .id(id)
        .kv("pid", obs.pane_pid.map(|p| p.to_string()).unwrap_or_default())
        .kv("policy", spec.policy)
        .kv("adopted", 1)
        .append_to(&root.lifecycle_log())?;
    Ok(st)
}

/// A live server whose `pane-died` hook runs another muxvisor binary than
/// this one (an upgrade moved it, or the state predates the record): point
/// the hook at this binary, so that the next death is recorded at once
/// rather than only by a tick. One tmux call, once per binary change.
fn repoint_hook(
    root: &Root,
    spec: &PeerSpec,
    obs: &observe::Observed,
    recorded: &State,
    cfg: &TickConfig,
) -> Result<Option<Report>> {
    let id = &spec.identity;
    if obs.seen != observe::Seen::Alive || recorded.stopped || recorded.launched_at.is_none() {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("finding the muxvisor binary")?;
    if recorded.exe.as_deref() == Some(exe.as_path()) {
        return Ok(None);
    }
    let _lock = fsutil::lock_within(&root.id_lock(id), ID_LOCK_WAIT, &format!("tick of {id}"))?;
    let cur = peer_state::load(root, id)?;
    if cur.launched_at != recorded.launched_at || cur.stopped {
        return Ok(None);
    }
    let tmux = crate::tmux::Tmux::new(root.socket(id))
        .map_err(crate::tmux::TmuxError::into_anyhow)?
        .with_timeout(cfg.call_timeout);
    let settings = crate::model::peer_env::settings();
    crate::tmux::launch::set_pane_died_hook(&tmux, &exe, root.dir(), &settings, id)
        .map_err(crate::tmux::TmuxError::into_anyhow)?;
    peer_state::update(root, id, |st| st.exe = Some(exe.clone()))?;
    let was = recorded.exe.as_ref().map(|p| p.display().to_string());
    Ok(Some(Report::new(
        id,
        "rehook",
        format!(
            "the pane-died hook ran {}; it runs {} now",
            was.as_deref().unwrap_or("an unrecorded binary"),
            exe.display()
        ),
    )))
}

/// Merge the tick's bookkeeping fields into the state file under the
/// identity lock; false (and nothing written) when a launch or stop replaced
/// the incarnation since it was observed.
fn save_bookkeeping(root: &Root, id: &Identity, before: &State, after: &State) -> Result<bool> {
    if before == after {
        return Ok(true);
    }
    let _lock = fsutil::lock_within(&root.id_lock(id), ID_LOCK_WAIT, &format!("tick of {id}"))?;
    let mut cur = peer_state::load(root, id)?;
    if cur.launched_at != before.launched_at || cur.stopped != before.stopped {
        return Ok(false);
    }
    cur.last_observed.clone_from(&after.last_observed);
    cur.failures.clone_from(&after.failures);
    cur.restart_attempt = after.restart_attempt;
    cur.next_restart_at = after.next_restart_at;
    cur.pending_attempt = after.pending_attempt;
    cur.pending_backoff_ms = after.pending_backoff_ms;
    cur.dead_incarnation = after.dead_incarnation;
    cur.failed = after.failed;
    peer_state::save(root, id, &cur)?;
    Ok(true)
}

/// A short name for an action, for error reports.
fn name(a: &Action) -> &'static str {
    match a {
        Action::ReportHung { .. } => "hung",
        Action::RecordGone { .. } => "gone",
        Action::RecordExit { .. } => "session-exit",
        Action::NudgeServer => "nudge",
        Action::CleanStaleSocket => "clean-socket",
        Action::EnsureCanary => "canary",
        Action::ReapIdle { .. } => "reaped-idle",
        Action::ReapAge { .. } => "reaped-age",
        Action::Restart { .. } => "restart",
        Action::RestartPending { .. } => "restart-pending",
        Action::MarkFailed { .. } => "failed",
        Action::FailTask { .. } => "task-retry",
        Action::StopWorker { .. } => "worker-stopped",
        Action::EndSlot { .. } => "worker-stopped",
        Action::Teardown => "teardown",
        Action::ExpireTasks => "expire",
        Action::StartNext => "task-start",
        Action::FillSlots => "workers-start",
        Action::RecordWorkerExits => "session-exit",
        Action::RespawnRunner => "runner-start",
        Action::EnsureCourier => "courier",
        Action::LaunchHeld => "launch",
        Action::SendContinue => "continue",
    }
}

struct Act<'a> {
    root: &'a Root,
    spec: &'a PeerSpec,
    cfg: &'a TickConfig,
    server_pid: Option<i32>,
    pane_pid: Option<i32>,
    now: DateTime<Utc>,
    seed: u64,
    q: Option<&'a Queue>,
    /// Held (ephemeral peers) until the actions reach `StartNext`.
    worker_guard: Option<LockGuard>,
    reports: Vec<Report>,
}

impl Act<'_> {
    fn id(&self) -> &Identity {
        &self.spec.identity
    }

    fn report(&mut self, action: &str, reason: impl Into<String>) {
        let r = Report::new(self.id(), action, reason);
        self.reports.push(r);
    }

    fn log(&self, ev: Event) -> Result<()> {
        ev.append_to(&self.root.lifecycle_log())
    }

    fn queue(&self) -> Result<&Queue> {
        self.q.context("internal: a task action for a peer without a queue")
    }

    fn apply(&mut self, a: &Action) -> Result<()> {
        let (root, id) = (self.root, self.id().clone());
        match a {
            Action::ReportHung { first } => {
                let why = format!(
                    "tmux server did not answer within {}",
                    duration::format(self.cfg.call_timeout)
                );
                if *first {
                    self.log(Event::new("hung").id(&id).kv("reason", &why))?;
                }
                self.report("hung", why);
            }
            Action::RecordGone { death, reason } => {
                self.log(
                    Event::new("gone").id(&id).kv("death", death.as_str()).kv("reason", reason),
                )?;
                self.report("gone", format!("{}: {reason}", death.as_str()));
            }
            Action::RecordExit { status, signal } => {
                let pid = self.pane_pid;
                if crate::lifecycle::hook::record_missed_exit(
                    root,
                    &id,
                    *status,
                    signal.as_deref(),
                    pid,
                )? {
                    self.report(
                        "session-exit",
                        "recorded by the tick: the pane-died hook did not record this death",
                    );
                }
            }
            Action::RecordWorkerExits => {
                let n = crate::lifecycle::dispatch::record_dead_workers(root, self.spec)?;
                if n > 0 {
                    self.report(
                        "session-exit",
                        format!(
                            "{n} worker death(s) recorded by the tick: their pane-died hooks \
                             did not record them"
                        ),
                    );
                }
            }
            Action::NudgeServer => {
                if let Some(pid) = self.server_pid {
                    observe::nudge(pid);
                    self.report("nudge", "pane dead without an exit status; SIGCHLD sent to tmux");
                }
            }
            Action::CleanStaleSocket => {
                fsutil::remove_if_exists(&root.socket(&id))?;
                self.report("clean-socket", "no server listened on it");
            }
            Action::EnsureCanary => match canary::ensure(root, &id) {
                Ok(true) => self.report("canary", "no canary was watching; started one"),
                Ok(false) => {}
                // Observability only: never let it block the tick.
                Err(e) => self.report("canary", format!("could not start one: {e:#}")),
            },
            Action::ReapIdle { idle_s } => {
                session::stop(root, &id, self.cfg.stop_grace, "reaped-idle")?;
                self.log(Event::new("reaped-idle").id(&id).kv("idle_s", idle_s))?;
                let ttl = self.spec.idle_ttl.map(duration::format).unwrap_or_default();
                self.report("reaped-idle", format!("no output for {idle_s}s (idle-ttl {ttl})"));
            }
            Action::ReapAge { age_s } => {
                session::stop(root, &id, self.cfg.stop_grace, "max-age")?;
                self.log(Event::new("reaped-age").id(&id).kv("age_s", age_s))?;
                let max = self.spec.max_age.map(duration::format).unwrap_or_default();
                self.report("reaped-age", format!("running for {age_s}s (max-age {max})"));
            }
            Action::Restart { attempt, backoff_ms } => self.restart(*attempt, *backoff_ms)?,
            Action::RestartPending { attempt, backoff_ms, due_in_ms } => self.report(
                "restart-pending",
                format!(
                    "attempt {attempt} in {due_in_ms}ms, backoff {backoff_ms}ms from the death; \
                     the first tick after that restarts it"
                ),
            ),
            Action::MarkFailed { restarts, failures, window_s } => {
                self.log(
                    Event::new("failed")
                        .id(&id)
                        .kv("restarts", restarts)
                        .kv("failures", failures)
                        .kv("window_s", window_s),
                )?;
                self.report(
                    "failed",
                    format!(
                        "{failures} deaths within {}; no more restarts until `muxvisor launch {id}`",
                        duration::format(self.spec.restart_window)
                    ),
                );
            }
            Action::FailTask { task, reason } => self.fail(task, reason)?,
            Action::EndSlot { slot, reason } => {
                let n = session::end_slots(root, &id, self.cfg.stop_grace, |k| k == *slot);
                if n > 0 {
                    self.report("worker-stopped", format!("{reason}: worker {slot}"));
                }
            }
            Action::StopWorker { reason } => {
                let s = session::stop(root, &id, self.cfg.stop_grace, reason)?;
                self.report("worker-stopped", format!("{reason} (how={})", s.how));
            }
            Action::Teardown => {
                session::stop(root, &id, self.cfg.stop_grace, "worker-finished")?;
            }
            Action::ExpireTasks => {
                let q = self.queue()?;
                let swept = q.sweep()?;
                let expired = q.expire(self.spec.task_ttl, self.now)?;
                if swept > 0 {
                    self.report("quarantined", format!("{swept} corrupt queue entries"));
                }
                for t in expired {
                    self.report("task-dead", format!("task {t}: ttl"));
                }
            }
            Action::SendContinue => {
                let text = self.spec.continue_message.clone().unwrap_or_default();
                let q = Queue::open(root, &id)?;
                let launched = peer_state::load(root, &id)?.launched_at;
                let first = crate::model::agent::record::update(root, &id, launched, |rec| {
                    let p = rec.parked.as_mut();
                    let first = p.as_ref().is_some_and(|p| !p.continued);
                    if let Some(p) = p {
                        p.continued = true;
                    }
                    first
                })?;
                if first {
                    let e = q.enqueue_message(text.as_bytes(), None, false)?;
                    self.report("continue", format!("usage limit reset; queued {}", e.task));
                }
            }
            Action::LaunchHeld => {
                if !crate::lifecycle::admission::still_held(root, &id) {
                    return Ok(()); // stopped since the tick read its state
                }
                if let Some(launched) = self.admitted_launch()? {
                    let l = launched.with_context(|| format!("launching {id} (was queued)"))?;
                    let pid = l.pane_pid.map(|p| format!("pid {p}")).unwrap_or_default();
                    self.report("launch", format!("admitted; {pid}"));
                }
            }
            Action::EnsureCourier => {
                if crate::lifecycle::agent::mailbox::ensure_courier(root, &id)? {
                    self.report("courier", "messages wait; started their courier");
                }
            }
            Action::FillSlots => {
                let q = self.q.context("internal: a worker start for a peer without a queue")?;
                let held = self.worker_guard.take().context("internal: no worker lock held")?;
                self.fill_slots(q, &held)?;
            }
            Action::RespawnRunner => {
                let q = self.q.context("internal: a runner start for a peer without a queue")?;
                let held = self.worker_guard.take().context("internal: no worker lock held")?;
                let pane =
                    crate::lifecycle::dispatch::respawn_runner_locked(root, self.spec, q, &held)?;
                let pid = pane.map(|p| format!("pid {p}, ")).unwrap_or_default();
                self.report("runner-start", format!("{pid}in its own pane; workers run on"));
                self.fill_slots(q, &held)?;
            }
            Action::StartNext => {
                // The worker lock taken to decide is handed to the start,
                // so no kick can slip in between.
                let q = self.q.context("internal: a runner start for a peer without a queue")?;
                let held = self.worker_guard.take().context("internal: no worker lock held")?;
                if q.counts()?.pending == 0 && !warm_pool(self.spec) {
                    return Ok(()); // the task put back was dead-lettered
                }
                match crate::lifecycle::dispatch::start_runner_locked(root, self.spec, q, &held) {
                    Ok(Some(s)) => {
                        let pid = s.pane_pid.map(|p| format!("pid {p}")).unwrap_or_default();
                        self.report("runner-start", pid);
                        self.fill_slots(q, &held)?;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.charge_refused_start(q, &e)?;
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// `--workers N`: runners for the free worker slots, under the worker
    /// lock the caller holds.
    fn fill_slots(&mut self, q: &Queue, held: &LockGuard) -> Result<()> {
        for (k, pid) in crate::lifecycle::dispatch::fill_slots(self.root, self.spec, q, held)? {
            let pid = pid.map(|p| format!(", pid {p}")).unwrap_or_default();
            self.report("worker-start", format!("slot {k}{pid}"));
        }
        Ok(())
    }

    /// Launch under admission: `Ok(None)` when the launch is held (noted,
    /// not an error, no budget spent), else what the launch did.
    fn admitted_launch(&mut self) -> Result<Option<Result<session::Launched>>> {
        let (root, id) = (self.root, self.id().clone());
        let _admission = crate::lifecycle::admission::lock(root)?;
        if let Some(why) = crate::lifecycle::admission::held(root, self.spec, &self.cfg.admission)?
        {
            crate::lifecycle::admission::note_held(root, &id, &why, false)?;
            self.report("admission-held", why);
            if let Err(e) = crate::lifecycle::admission::ensure_admitter(root, &self.cfg.admission)
            {
                self.report("admission-held", format!("could not start the admitter: {e:#}"));
            }
            return Ok(None);
        }
        let start = crate::lifecycle::admission::start_of_hold(root, &id);
        Ok(Some(session::launch(root, self.spec, start)))
    }

    fn restart(&mut self, attempt: u32, backoff_ms: u64) -> Result<()> {
        let (root, id) = (self.root, self.id().clone());
        let Some(launched) = self.admitted_launch()? else { return Ok(()) };
        match launched {
            Ok(l) if l.already => {
                // Someone launched it between our look and our launch.
                let _lock = fsutil::lock_within(&root.id_lock(&id), ID_LOCK_WAIT, "tick")?;
                peer_state::update(root, &id, |st| decide::after_restart(st, attempt))?;
                self.report("restart", "already running again; nothing to do");
                Ok(())
            }
            Ok(l) => {
                let _lock = fsutil::lock_within(&root.id_lock(&id), ID_LOCK_WAIT, "tick")?;
                peer_state::update(root, &id, |st| decide::after_restart(st, attempt))?;
                drop(_lock);
                self.log(
                    Event::new("restart")
                        .id(&id)
                        .kv("attempt", attempt)
                        .kv("backoff_ms", backoff_ms),
                )?;
                let pid = l.pane_pid.map(|p| format!(", pid {p}")).unwrap_or_default();
                self.report("restart", format!("attempt {attempt}, backoff {backoff_ms}ms{pid}"));
                Ok(())
            }
            Err(e) => {
                let (spec, now, seed) = (self.spec, self.now, self.seed);
                let _lock = fsutil::lock_within(&root.id_lock(&id), ID_LOCK_WAIT, "tick")?;
                peer_state::update(root, &id, |st| {
                    decide::after_failed_restart(st, spec, now, seed)
                })?;
                Err(e.context(format!("restart attempt {attempt} of {id}")))
            }
        }
    }

    /// A runner that could not be started (tmux refused it, for one) costs
    /// the head task an attempt, with the reason: a start that can never
    /// succeed dead-letters its tasks after `--max-attempts` instead of
    /// leaving them pending at attempt 0 forever. The worker lock is held.
    fn charge_refused_start(&mut self, q: &Queue, e: &anyhow::Error) -> Result<()> {
        let ttl = Some(self.spec.task_ttl);
        let crate::model::queue::Claim::Claimed(c) = q.claim(Utc::now(), ttl)? else {
            return Ok(());
        };
        let first = format!("{e:#}").lines().next().unwrap_or_default().to_string();
        self.fail(c.task(), &format!("launch-failed: {first}"))
    }

    fn fail(&mut self, task: &str, reason: &str) -> Result<()> {
        let how = crate::lifecycle::dispatch::Finish::Failed { reason: reason.to_string() };
        match crate::lifecycle::dispatch::finish(self.spec, self.queue()?, task, &how, String::new)?
        {
            Finished::Retry { attempt, not_before } => self.report(
                "task-retry",
                format!(
                    "task {task}: {reason}; attempt {attempt} failed, next not before {}",
                    not_before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
            ),
            Finished::Dead => {
                self.report("task-dead", format!("task {task}: {reason}; max-attempts"))
            }
            Finished::Done | Finished::NotRunning => {
                self.report("task-finished", format!("task {task}: finished meanwhile"))
            }
        }
        Ok(())
    }
}
