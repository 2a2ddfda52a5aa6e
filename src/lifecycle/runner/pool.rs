//! An agent pool's instance (SPEC §10): the runner of worker slot `k` of a
//! pool keeps one agent program running in its pane, as its own child (so
//! it sees the agent's death and records it, as it does a task program's),
//! and hands it one task at a time:
//!
//! ```text
//! start the agent (argv with a fresh conversation id, MUXVISOR_SLOT=k)
//!   once admission (SPEC §9: max starting, memory floor) lets it; held:
//!   the instance file says why, ev=admission-held slot=k once
//! loop, a few looks a second (screen + this instance's hook marks,
//!   classified by the agent state code, as a persistent agent's):
//!   agent died         -> its task (if any) fails (queue's retry policy),
//!                         ev=session-exit; a new agent is started in place
//!   ready, a task runs -> the task is done: its reply (the hook's transcript,
//!                         else the pane) is kept in its outcome; --reset
//!                         is typed (confirmed) before the next one; not
//!                         taken in: ev=reset-failed, the agent is ended
//!                         and a new one started in its place
//!   ready, none runs   -> claim the head; type it, confirmed, exactly as
//!                         the mailbox does (agent::confirm); not taken in:
//!                         put back at the head uncounted, instance blocked;
//!                         the server hung while it was typed: not failed
//!                         but unknown (ev=delivery-unknown), settled once
//!                         it answers (confirm::Unsure::settle): taken ->
//!                         runs; nothing typed -> back at the head
//!                         uncounted; undecidable -> dead letter
//!                         delivery-unknown, the agent replaced
//!   ready, nothing     -> idle: past --reuse (after a task) or --idle-ttl,
//!                         and more instances live than --warm: retire
//!   busy / starting    -> wait (--task-timeout ends the agent and fails
//!                         the task); a refill of the warm instances is
//!                         asked for a few seconds after a task was taken
//!   blocked, a task    -> after a grace (BLOCKED_GRACE, a few looks in a
//!                         row): the task fails `agent-blocked: <reason>`
//!                         (queue's retry policy; ev=task-blocked), the
//!                         agent stays, and others may start for the retry;
//!                         but a permission prompt waits for a person, up
//!                         to --task-timeout (the turn goes on once answered)
//!   blocked            -> takes no task; `status` shows the reason
//! ```
//!
//! Its state goes to `state/<id>.pool-<k>.json` (`model::agent::instance`)
//! at each change. A runner killed anywhere leaves its task in `cur/` and
//! its agent dies with it (it dies with its parent): the hand-over or the
//! tick retries the task and starts a new instance, as for any worker.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::{Ended, HANGUP, Runner, TMUX_VARS, die_with_runner, end_child};
use crate::lifecycle::admission::{self, Limits};
use crate::lifecycle::agent::confirm::{self, Confirmed};
use crate::lifecycle::dispatch::{self, Finish};
use crate::model::agent::classify::{self, AgentState, Delivery, Facts, Rules, View};
use crate::model::agent::instance::{self, Instance};
use crate::model::agent::presets::{Patterns, reason};
use crate::model::agent::reply;
use crate::model::logfmt::Event;
use crate::model::peer::{self, PeerSpec, Policy};
use crate::model::queue::{Claim, TaskOutcome};
use crate::tmux::paste::{self, Pane};
use crate::tmux::{Cmd, Tmux, TmuxError};

/// How often an instance looks at its agent.
const LOOK_EVERY: Duration = Duration::from_millis(50);
/// After a turn ended on the screen, how long a reply from the agent's own
/// hook is waited for, once its hooks were seen to speak.
const HOOK_REPLY_WAIT: Duration = Duration::from_secs(3);
/// Lines of scrollback read for a reply from the pane.
const REPLY_LINES: usize = 2000;
/// Agent starts in a row that die before they were ever ready, after which
/// the instance gives up (the tick starts another later).
const FAILED_STARTS: u32 = 3;

/// How long, and for how many looks in a row, an agent at work must read
/// blocked before its task fails: a blocked screen can flicker by (a
/// permission prompt answered at once, a redraw).
const BLOCKED_GRACE: Duration = Duration::from_secs(1);
const BLOCKED_LOOKS: u32 = 5;

/// How often a held start looks again at the admission limits.
const ADMIT_POLL: Duration = Duration::from_millis(250);

/// What came of waiting for admission to start an agent.
enum Admit {
    Started(Agent, Noted),
    /// The agent could not be started (its program, its cwd).
    Failed(anyhow::Error),
    /// The peer is no longer a pool.
    Gone,
    /// The server is going away.
    Hangup,
}

/// The state last written for `status`: the agent's, its reason, the task.
type Noted = (AgentState, Option<String>, Option<String>);

/// The agent program of this instance.
struct Agent {
    child: Child,
    pid: i32,
    started_at: DateTime<Utc>,
    ever_ready: bool,
}

/// The task this instance works on.
struct Work {
    task: String,
    prompt: String,
    delivery: Delivery,
    started_at: DateTime<Utc>,
    /// When the screen first read ready again (a hook's reply may follow).
    ended_on_screen: Option<Instant>,
}

impl Runner<'_> {
    /// Serve the pool as instance `self.slot` until it retires.
    pub(super) fn serve_pool(mut self, first: PeerSpec) -> Result<Ended> {
        let pane_id = std::env::var("TMUX_PANE").unwrap_or_default();
        let id = self.id.clone();
        let pane = Pane::new(&id, &pane_id)
            .with_context(|| format!("no tmux pane for instance {} of {id}", self.slot))?;
        let tmux = Tmux::new(self.root.socket(&id))
            .map_err(TmuxError::into_anyhow)?
            .with_timeout(Duration::from_secs(2));
        let mut spec = first;
        let mut looks = Looks::default();
        let mut failed_starts = 0u32;
        'agent: loop {
            // A fresh terminal for each agent: a replaced agent's last
            // screen (its ready prompt) and its scrollback stay on the pane
            // until the new agent draws, and would be read as the new one's
            // (a prompt typed into an agent still starting, a reply with
            // another prompt's text in it).
            clear_terminal();
            let (mut agent, noted) = match self.admit_and_start(&mut spec)? {
                Admit::Started(agent, noted) => (agent, noted),
                Admit::Failed(e) => {
                    super::failed(self.root, &id, &e);
                    self.retire_pool("agent-failed")?;
                    return Ok(Ended::Failed);
                }
                Admit::Gone => {
                    self.retire_pool("unregistered")?;
                    return Ok(Ended::Done);
                }
                Admit::Hangup => return self.hand_over_after_hangup(),
            };
            let mut work: Option<Work> = None;
            let mut reset_due = false;
            let mut used = false;
            let mut idle_since = Instant::now();
            let mut refill_at: Option<Instant> = None;
            let mut blocked_at_work: Option<Blocked> = None;
            let mut state = noted;
            let mut done = 0u64;
            loop {
                if HANGUP.load(std::sync::atomic::Ordering::SeqCst) {
                    self.end_agent_on_hangup(&mut agent, work.as_ref());
                    return self.hand_over_after_hangup();
                }
                match peer::load(self.root, &id) {
                    Ok(Some(s)) if s.policy == Policy::Ephemeral && s.is_pool() => spec = s,
                    Ok(_) => {
                        end_child(&mut agent.child, Duration::from_secs(2));
                        self.retire_pool("unregistered")?;
                        return Ok(Ended::Done);
                    }
                    Err(e) => return Err(e),
                }
                let (pats, has_ready) = crate::lifecycle::agent::watch::patterns(&spec)?;
                // The agent's death: its task fails, and a new one starts.
                if let Some(st) = agent.child.try_wait()? {
                    let (code, sig) = self.record_death(&agent, st, work.as_ref());
                    if let Some(w) = work.take() {
                        let reason = dispatch::exit_reason(code, sig.as_deref())
                            .map(|r| format!("agent-died: {r}"))
                            .unwrap_or_else(|| "agent-died: exit-0".into());
                        dispatch::finish(
                            &spec,
                            &self.q,
                            &w.task,
                            &Finish::Failed { reason },
                            String::new,
                        )?;
                    }
                    failed_starts = if agent.ever_ready { 0 } else { failed_starts + 1 };
                    if failed_starts >= FAILED_STARTS {
                        self.note(
                            &agent,
                            None,
                            View::of(AgentState::Unknown, classify::Source::Process),
                            done,
                        );
                        anyhow::bail!(
                            "the agent of instance {} died {FAILED_STARTS} times before it was ever ready",
                            self.slot
                        );
                    }
                    instance::remove_mark(self.root, &id, self.slot);
                    continue 'agent;
                }
                let view = looks.look(
                    self.root,
                    &tmux,
                    &pane,
                    &spec,
                    &pats,
                    has_ready,
                    &agent,
                    work.as_mut(),
                    self.slot,
                )?;
                if view.state == AgentState::Ready {
                    agent.ever_ready = true;
                }
                if (view.state, view.reason.as_deref()) != (state.0, state.1.as_deref())
                    || work.as_ref().map(|w| w.task.as_str()) != state.2.as_deref()
                {
                    let newly_blocked = view.state == AgentState::Blocked
                        && state.0 != AgentState::Blocked
                        && work.is_none();
                    state = self.note(
                        &agent,
                        work.as_ref().map(|w| w.task.clone()),
                        view.clone(),
                        done,
                    );
                    // A blocked instance takes no task and is not free:
                    // another may start for the pending ones.
                    if newly_blocked {
                        self.refill(&spec);
                    }
                }
                // A task runs.
                if let Some(w) = work.as_mut() {
                    if refill_at.is_some_and(|t| Instant::now() >= t) {
                        refill_at = None;
                        self.refill(&spec);
                    }
                    let timed_out = (Utc::now() - w.started_at).to_std().unwrap_or_default()
                        > spec.task_timeout;
                    if timed_out {
                        self.log(
                            &self.root.lifecycle_log(),
                            Event::new("task-timeout")
                                .id(&id)
                                .kv("task", &w.task)
                                .kv("slot", self.slot),
                        );
                        let t = w.task.clone();
                        work = None;
                        dispatch::finish(
                            &spec,
                            &self.q,
                            &t,
                            &Finish::Failed { reason: "timeout".into() },
                            String::new,
                        )?;
                        end_child(&mut agent.child, super::TIMEOUT_GRACE);
                        continue;
                    }
                    // Blocked at work (a usage limit, a login): the turn
                    // cannot go on, so the task fails after a grace, not at
                    // --task-timeout. A permission prompt is the exception:
                    // the turn goes on once a person answers it (`attach`,
                    // `send --keys`), and a retry elsewhere would run the
                    // turn's earlier steps again; it waits, up to
                    // --task-timeout, with `status` saying why.
                    let mid_turn_question = view.reason.as_deref() == Some(reason::PERMISSION);
                    if view.state != AgentState::Blocked || mid_turn_question {
                        blocked_at_work = None;
                    } else if blocked_at_work.get_or_insert_with(Blocked::default).looked() {
                        let why = view.reason.clone().unwrap_or_else(|| "blocked".into());
                        self.log(
                            &self.root.lifecycle_log(),
                            Event::new("task-blocked")
                                .id(&id)
                                .kv("task", &w.task)
                                .kv("slot", self.slot)
                                .kv("reason", &why),
                        );
                        let t = w.task.clone();
                        work = None;
                        blocked_at_work = None;
                        dispatch::finish(
                            &spec,
                            &self.q,
                            &t,
                            &Finish::Failed { reason: format!("agent-blocked: {why}") },
                            String::new,
                        )?;
                        // The agent stays (a person may unblock it), but
                        // its next task must not meet this one's context.
                        used = true;
                        reset_due = spec.reset.is_some();
                        idle_since = Instant::now();
                        state = self.note(&agent, None, view, done);
                        // Blocked and not free: another instance may start
                        // for the retry.
                        self.refill(&spec);
                        continue;
                    }
                    if view.state != AgentState::Ready {
                        std::thread::sleep(LOOK_EVERY);
                        continue;
                    }
                    let ended = *w.ended_on_screen.get_or_insert_with(Instant::now);
                    let hook = instance::load_mark(self.root, &id, self.slot)
                        .filter(|m| m.mark.at >= w.delivery.typed_at.unwrap_or(w.delivery.at));
                    let from_hook = hook
                        .as_ref()
                        .filter(|m| m.mark.state == AgentState::Ready)
                        .and_then(|m| m.transcript_path.as_deref())
                        .and_then(reply::from_transcript);
                    // Hooks that spoke during this turn will say when it
                    // ended, with the transcript: wait a little for that.
                    if from_hook.is_none() && hook.is_some() && ended.elapsed() < HOOK_REPLY_WAIT {
                        std::thread::sleep(LOOK_EVERY);
                        continue;
                    }
                    let text = from_hook
                        .unwrap_or_else(|| self.screen_reply(&tmux, &pane, &w.prompt, &pats));
                    let w = work.take().context("internal: no task")?;
                    self.finish_with_reply(&w, text)?;
                    done += 1;
                    used = true;
                    reset_due = spec.reset.is_some();
                    idle_since = Instant::now();
                    state = self.note(&agent, None, view, done);
                    continue;
                }
                if view.state != AgentState::Ready {
                    std::thread::sleep(LOOK_EVERY);
                    continue;
                }
                if reset_due {
                    reset_due = false;
                    if let Some(text) = spec.reset.clone() {
                        // A hung server is settled before the agent is
                        // replaced: a late paste or Enter would land in
                        // the next agent of this pane.
                        let give_up = Instant::now() + confirm::SETTLE_MAX;
                        let typed = self.type_confirmed(
                            &tmux,
                            &pane,
                            &pats,
                            text.as_bytes(),
                            &mut agent,
                            None,
                            give_up,
                        );
                        // The server died meanwhile (its canary records
                        // that): no reset it ignored, but the end of this
                        // pane, as a hang-up.
                        if matches!(typed, Err(TmuxError::NoServer { .. })) {
                            self.end_agent_on_hangup(&mut agent, work.as_ref());
                            return self.hand_over_after_hangup();
                        }
                        let failed = match typed {
                            Ok(Confirmed::Taken { .. }) => None,
                            Ok(Confirmed::NotTaken { screen }) => {
                                Some(("not-taken".to_string(), confirm::tail_lines(&screen, 4)))
                            }
                            Ok(Confirmed::NotTyped) => Some(("not-typed".to_string(), Vec::new())),
                            Ok(Confirmed::Unknown { reason }) => {
                                Some((format!("delivery-unknown: {reason}"), Vec::new()))
                            }
                            Ok(Confirmed::Unsure(u)) => {
                                Some((format!("delivery-unknown: {}", u.reason()), Vec::new()))
                            }
                            Err(e) => Some((format!("{:#}", e.into_anyhow()), Vec::new())),
                        };
                        looks.forget();
                        // The agent died while the reset was typed (killed,
                        // crashed): not a reset it ignored, but its death,
                        // recorded as any (ev=session-exit, with its exit)
                        // at the top of the loop, which replaces it.
                        if failed.is_some() && agent.child.try_wait()?.is_some() {
                            continue;
                        }
                        // Not reset: the next task must not meet this one's
                        // context, so the agent is replaced.
                        if let Some((reason, lines)) = failed {
                            let mut ev = Event::new("reset-failed")
                                .id(&id)
                                .kv("slot", self.slot)
                                .kv("pid", agent.pid)
                                .kv("reason", reason);
                            if !lines.is_empty() {
                                ev = ev.kv("screen", lines.join(" | "));
                            }
                            self.log(&self.root.lifecycle_log(), ev);
                            end_child(&mut agent.child, Duration::from_secs(2));
                            instance::remove_mark(self.root, &id, self.slot);
                            continue 'agent;
                        }
                        continue;
                    }
                }
                // Ready and free: the head of the queue, if due.
                let mark = self.q.change_mark();
                match self.q.claim_for(Utc::now(), Some(spec.task_ttl), self.slot, spec.workers)? {
                    Claim::Claimed(c) => {
                        let task = c.task().to_string();
                        let prompt = String::from_utf8_lossy(&c.payload).into_owned();
                        let started_at = c.header.started_at.unwrap_or_else(Utc::now);
                        let typed_at = Utc::now();
                        let give_up = task_deadline(started_at, spec.task_timeout)
                            .min(Instant::now() + confirm::SETTLE_MAX);
                        let typed = self.type_confirmed(
                            &tmux,
                            &pane,
                            &pats,
                            &c.payload,
                            &mut agent,
                            Some(&task),
                            give_up,
                        );
                        match typed {
                            Ok(Confirmed::Taken { screen, .. }) => {
                                let at = Utc::now();
                                self.log(
                                    &self.root.lifecycle_log(),
                                    Event::new("task-start")
                                        .id(&id)
                                        .kv("task", &task)
                                        .kv("attempt", c.header.attempt)
                                        .kv("pid", agent.pid)
                                        .kv("slot", self.slot),
                                );
                                work = Some(Work {
                                    task,
                                    prompt,
                                    delivery: Delivery {
                                        at,
                                        typed_at: Some(typed_at),
                                        task: c.task().to_string(),
                                        screen_before: classify::fingerprint(&screen),
                                        changed: false,
                                    },
                                    started_at,
                                    ended_on_screen: None,
                                });
                                if spec.warm > 0 {
                                    refill_at = Some(Instant::now() + dispatch::REFILL_AFTER);
                                }
                            }
                            Ok(Confirmed::NotTaken { screen }) => {
                                let lines = confirm::tail_lines(&screen, 4);
                                self.q.release(&task)?;
                                self.log(
                                    &self.root.lifecycle_log(),
                                    Event::new("msg-undelivered")
                                        .id(&id)
                                        .kv("task", &task)
                                        .kv("slot", self.slot)
                                        .kv("screen", lines.join(" | ")),
                                );
                                looks.undelivered = true;
                            }
                            // The server hung while it was typed, and once
                            // it answered again the screen showed none of
                            // it: typed again, no attempt charged.
                            Ok(Confirmed::NotTyped) => self.q.release(&task)?,
                            Ok(Confirmed::Unknown { reason }) => {
                                if self.unknown_delivery(&spec, &task, &mut agent, &reason)? {
                                    continue 'agent;
                                }
                            }
                            Ok(Confirmed::Unsure(u)) => {
                                if self.unknown_delivery(&spec, &task, &mut agent, &u.reason())? {
                                    continue 'agent;
                                }
                            }
                            Err(TmuxError::Refused(why)) => {
                                self.q.dead_letter(&task, "untypable")?;
                                self.log(
                                    &self.root.lifecycle_log(),
                                    Event::new("runner-error")
                                        .id(&id)
                                        .kv("task", &task)
                                        .kv("reason", why),
                                );
                            }
                            Err(e) => {
                                let reason = format!("deliver-failed: {:#}", e.into_anyhow());
                                dispatch::finish(
                                    &spec,
                                    &self.q,
                                    &task,
                                    &Finish::Failed { reason },
                                    String::new,
                                )?;
                            }
                        }
                    }
                    Claim::Empty | Claim::NotBefore(_) | Claim::Full | Claim::Busy => {
                        let limit = if used { spec.reuse } else { spec.pool_idle_ttl() };
                        if idle_since.elapsed() >= limit
                            && self.idle_instances(&spec)? > spec.warm as usize
                        {
                            if self.retire_pool("idle")? {
                                end_child(&mut agent.child, Duration::from_secs(2));
                                instance::remove(self.root, &id, self.slot);
                                self.log(
                                    &self.root.lifecycle_log(),
                                    Event::new("reaped-idle")
                                        .id(&id)
                                        .kv("slot", self.slot)
                                        .kv("idle_s", idle_since.elapsed().as_secs()),
                                );
                                return Ok(Ended::Done);
                            }
                            idle_since = Instant::now();
                        }
                        self.wait_change(mark, Instant::now() + Duration::from_millis(200));
                    }
                }
            }
        }
    }

    /// Start our agent once admission (SPEC §9) lets it: while the start
    /// is held, the instance file says why (`status` shows it), the hold is
    /// logged once (`ev=admission-held` with `slot`), and we look again a
    /// few times a second. The check, the start and the `starting` state
    /// written for it happen under the admission lock, so that instances
    /// (and launches) starting together cannot all see room for one more.
    fn admit_and_start(&self, spec: &mut PeerSpec) -> Result<Admit> {
        let mut held: Option<String> = None;
        let mut said_bad_limits = false;
        loop {
            // Read each time: a tick may have changed them meanwhile.
            let limits = admission::limits_for_pool(self.root).unwrap_or_else(|e| {
                if !std::mem::replace(&mut said_bad_limits, true) {
                    let e = e.context("admission limits; the defaults apply");
                    super::failed(self.root, &self.id, &e);
                }
                Limits::default()
            });
            if HANGUP.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(Admit::Hangup);
            }
            match peer::load(self.root, &self.id) {
                Ok(Some(s)) if s.policy == Policy::Ephemeral && s.is_pool() => *spec = s,
                Ok(_) => return Ok(Admit::Gone),
                Err(e) => return Err(e),
            }
            {
                let _admission = admission::lock(self.root)?;
                let Some(why) = admission::instance_held(self.root, spec, self.slot, &limits)?
                else {
                    let agent = match self.start_agent(spec) {
                        Ok(a) => a,
                        Err(e) => return Ok(Admit::Failed(e)),
                    };
                    let view = View::of(AgentState::Starting, classify::Source::Start);
                    let noted = self.note(&agent, None, view, 0);
                    return Ok(Admit::Started(agent, noted));
                };
                if held.is_none() {
                    self.log(
                        &self.root.lifecycle_log(),
                        Event::new("admission-held")
                            .id(&self.id)
                            .kv("slot", self.slot)
                            .kv("reason", &why),
                    );
                }
                if held.as_deref() != Some(why.as_str()) {
                    self.note_held(&why);
                    held = Some(why);
                }
            }
            std::thread::sleep(ADMIT_POLL);
        }
    }

    /// Write that this instance's start is held, and why.
    fn note_held(&self, why: &str) {
        let now = Utc::now();
        let inst = Instance {
            slot: self.slot,
            runner_pid: std::process::id() as i32,
            pid: None,
            state: AgentState::Starting,
            reason: None,
            source: classify::Source::Start,
            since: now,
            started_at: now,
            task: None,
            tasks_done: 0,
            held: Some(why.to_string()),
        };
        if let Err(e) = instance::write(self.root, &self.id, &inst) {
            super::failed(self.root, &self.id, &e);
        }
    }

    /// Start the agent program as our child in our pane: the spec's argv
    /// (with a fresh conversation id where the preset assigns one), its
    /// environment, and `MUXVISOR_SLOT` (the agent's hooks pass it to
    /// `mark`). The caller admitted it (`admit_and_start`).
    fn start_agent(&self, spec: &PeerSpec) -> Result<Agent> {
        let env = crate::model::peer_env::resolve(spec, self.root.dir())?;
        crate::lifecycle::session::check_startable(spec)?;
        let plan = crate::lifecycle::agent::resume::plan(
            spec,
            &Default::default(),
            true,
            &crate::lifecycle::agent::resume::new_uuid(),
        );
        let argv = plan.argv;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(TMUX_VARS.iter().filter_map(|k| Some((*k, std::env::var_os(k)?))))
            .envs(env.pairs())
            .env("MUXVISOR_IDENTITY", spec.identity.as_str())
            .env("MUXVISOR_SLOT", self.slot.to_string())
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        die_with_runner(&mut cmd);
        super::discard_typed_input();
        let child = cmd.spawn().with_context(|| format!("starting {}", argv[0]))?;
        let pid = child.id() as i32;
        instance::remove_mark(self.root, &self.id, self.slot);
        self.log(
            &self.root.lifecycle_log(),
            Event::new("instance-start").id(&self.id).kv("slot", self.slot).kv("pid", pid),
        );
        Ok(Agent { child, pid, started_at: Utc::now(), ever_ready: false })
    }

    /// Write this instance's state for `status`; returns what was written.
    fn note(&self, agent: &Agent, task: Option<String>, view: View, done: u64) -> Noted {
        let inst = Instance {
            slot: self.slot,
            runner_pid: std::process::id() as i32,
            pid: Some(agent.pid),
            state: view.state,
            reason: view.reason.clone(),
            source: view.source,
            since: Utc::now(),
            started_at: agent.started_at,
            task: task.clone(),
            tasks_done: done,
            held: None,
        };
        if let Err(e) = instance::write(self.root, &self.id, &inst) {
            super::failed(self.root, &self.id, &e);
        }
        (view.state, view.reason, task)
    }

    /// Record the death of `agent`, which exited with `st`: its
    /// ev=session-exit, with this slot and `work`'s task if one ran.
    /// Returns the exit code and the signal.
    fn record_death(
        &self,
        agent: &Agent,
        st: std::process::ExitStatus,
        work: Option<&Work>,
    ) -> (Option<i32>, Option<String>) {
        use std::os::unix::process::ExitStatusExt;
        let (code, sig) = (st.code(), st.signal().map(|s| s.to_string()));
        let mut ev = crate::lifecycle::hook::session_exit_event(
            &self.id,
            &code.map(|c| c.to_string()).unwrap_or_default(),
            sig.as_deref().unwrap_or(""),
            &agent.pid.to_string(),
        )
        .kv("slot", self.slot);
        if let Some(w) = work {
            ev = ev.kv("task", &w.task);
        }
        self.log(&self.root.exits_log(), ev);
        (code, sig)
    }

    /// The hang-up (the server died): the agent ends with this pane. An
    /// agent that had already died of something else is recorded first.
    /// The loop looks at its agent only between steps, and a step can take
    /// seconds (typing a reset, confirmed); a death in that time would
    /// otherwise go unrecorded, since the server's record says nothing of
    /// it (soak seed 97: an idle agent SIGKILLed while its reset was
    /// typed, its server killed 2 s later). Not recorded: the hang-up's own
    /// SIGHUP, and any death during a deliberate stop.
    fn end_agent_on_hangup(&self, agent: &mut Agent, work: Option<&Work>) {
        use std::os::unix::process::ExitStatusExt;
        match agent.child.try_wait() {
            Ok(Some(st)) => {
                let stopping = self.root.stop_intent(&self.id).exists();
                if st.signal() != Some(libc::SIGHUP) && !stopping {
                    self.record_death(agent, st, work);
                }
            }
            _ => end_child(&mut agent.child, Duration::from_secs(1)),
        }
    }

    /// Type `text` into our agent, confirmed (the mailbox's own delivery,
    /// with this instance's hook marks as the agent's word). A typing the
    /// server did not answer is logged (`ev=delivery-unknown`) and settled
    /// (`confirm::Unsure::settle`) while the agent lives, until `give_up`.
    #[allow(clippy::too_many_arguments)]
    fn type_confirmed(
        &self,
        tmux: &Tmux,
        pane: &Pane,
        pats: &Patterns,
        text: &[u8],
        agent: &mut Agent,
        task: Option<&str>,
        give_up: Instant,
    ) -> Result<Confirmed, TmuxError> {
        let (root, id, slot) = (self.root, &self.id, self.slot);
        let marked = |since: DateTime<Utc>| {
            instance::load_mark(root, id, slot).is_some_and(|m| m.mark.at > since)
        };
        match confirm::deliver_to(tmux, pane, pats, text, true, &marked)? {
            Confirmed::Unsure(u) => {
                let mut ev = Event::new("delivery-unknown").id(id).kv("slot", slot);
                if let Some(t) = task {
                    ev = ev.kv("task", t);
                }
                self.log(&root.lifecycle_log(), ev.kv("reason", u.reason()));
                let child = &mut agent.child;
                let mut alive = || matches!(child.try_wait(), Ok(None));
                Ok(u.settle(tmux, pane, pats, &marked, &mut alive, give_up))
            }
            other => Ok(other),
        }
    }

    /// A claimed task whose delivery could not be settled: dead-lettered
    /// (`delivery-unknown`; `queue retry` sends it again), never typed
    /// twice and never receipted, and the agent is replaced (true: start
    /// the next one), so that the next task never meets what is left of
    /// this one (a text in its prompt, a turn of it). If the agent died
    /// meanwhile, its task fails as any dying agent's does (the queue's
    /// retry policy), and the death is recorded as any (false).
    fn unknown_delivery(
        &self,
        spec: &PeerSpec,
        task: &str,
        agent: &mut Agent,
        reason: &str,
    ) -> Result<bool> {
        if agent.child.try_wait()?.is_some() {
            let reason = format!("agent-died: while its delivery was unknown ({reason})");
            dispatch::finish(spec, &self.q, task, &Finish::Failed { reason }, String::new)?;
            return Ok(false);
        }
        self.q.dead_letter_because(task, "delivery-unknown", reason)?;
        end_child(&mut agent.child, Duration::from_secs(2));
        instance::remove_mark(self.root, &self.id, self.slot);
        Ok(true)
    }

    /// The reply as the pane shows it (scrollback included).
    fn screen_reply(&self, tmux: &Tmux, pane: &Pane, prompt: &str, pats: &Patterns) -> String {
        use crate::tmux::paste::PaneTarget;
        let cmd = Cmd::new("capture-pane")
            .args(["-p", "-J", "-t", pane.target().as_str(), "-S"])
            .arg(format!("-{REPLY_LINES}"));
        match tmux.run(&cmd) {
            Ok(out) => reply::from_screen(&classify::normalize(&out.stdout), prompt, pats),
            Err(_) => String::new(),
        }
    }

    /// Acknowledge a pool task with its reply (the outcome holds it).
    fn finish_with_reply(&self, w: &Work, text: String) -> Result<()> {
        let duration_ms = (Utc::now() - w.started_at).num_milliseconds().max(0) as u64;
        let outcome = TaskOutcome {
            status: Some(0),
            signal: None,
            duration_ms,
            screen_tail: String::new(),
            delivered_at: Some(w.delivery.at),
            reply: Some(text),
        };
        if let Some(name) = self.q.complete(&w.task, &outcome)? {
            self.q.write_outcome(&name, &outcome)?;
        }
        Ok(())
    }

    /// Fill the free worker slots for the pending tasks and the warm
    /// instances wanted (each new instance admits itself), unless someone
    /// else is starting runners now (the tick is the safety net).
    fn refill(&self, spec: &PeerSpec) {
        let Ok(Some(held)) = self.q.try_worker_lock() else { return };
        if let Err(e) = dispatch::fill_slots(self.root, spec, &self.q, &held) {
            super::failed(self.root, &self.id, &e.context("refilling the warm instances"));
        }
    }

    /// How many instances of the pool (this one included) have no task:
    /// an idle one stops only while more than `--warm` stand idle.
    fn idle_instances(&self, spec: &PeerSpec) -> Result<usize> {
        Ok(dispatch::Slots::read(self.root, &self.q, spec)?.idle())
    }

    /// Retire this instance (see `retire`): true when it did.
    fn retire_pool(&mut self, reason: &str) -> Result<bool> {
        let done = self.retire(reason)?;
        if done {
            instance::remove(self.root, &self.id, self.slot);
        }
        Ok(done)
    }
}

/// When a task claimed at `started_at` passes its `--task-timeout`.
fn task_deadline(started_at: DateTime<Utc>, timeout: Duration) -> Instant {
    let spent = (Utc::now() - started_at).to_std().unwrap_or_default();
    Instant::now() + timeout.saturating_sub(spent)
}

/// Reset our terminal (the pane: our stdout) and clear its screen and
/// scrollback (RIS, ED 2, ED 3), in the order the pane reads them.
fn clear_terminal() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(b"\x1bc\x1b[H\x1b[2J\x1b[3J");
    let _ = out.flush();
}

/// An agent at work seen blocked: since when, and in how many looks in a row.
struct Blocked {
    since: Instant,
    looks: u32,
}

impl Default for Blocked {
    fn default() -> Blocked {
        Blocked { since: Instant::now(), looks: 0 }
    }
}

impl Blocked {
    /// One more look that read blocked: true once the grace has passed.
    fn looked(&mut self) -> bool {
        self.looks += 1;
        self.looks >= BLOCKED_LOOKS && self.since.elapsed() >= BLOCKED_GRACE
    }
}

/// What an instance remembers between looks at its agent.
#[derive(Default)]
struct Looks {
    /// Fingerprint of the last screen and since when it has not changed.
    last: Option<(u64, Instant)>,
    /// A task was typed and not taken in: blocked until a mark.
    undelivered: bool,
}

impl Looks {
    fn forget(&mut self) {
        self.last = None;
    }

    /// One look: the visible screen and this instance's marks, decided as
    /// a persistent agent's are (`classify::decide`).
    #[allow(clippy::too_many_arguments)]
    fn look(
        &mut self,
        root: &crate::ground::paths::Root,
        tmux: &Tmux,
        pane: &Pane,
        spec: &PeerSpec,
        pats: &Patterns,
        has_ready: bool,
        agent: &Agent,
        work: Option<&mut Work>,
        slot: u32,
    ) -> Result<View> {
        let taken_at = Utc::now();
        let screen = match paste::capture(tmux, pane) {
            Ok(s) => Some(s),
            Err(e) if e.is_gone() => None,
            Err(TmuxError::Timeout { .. }) => None,
            Err(e) => return Err(e.into_anyhow()),
        };
        let fp = screen.as_deref().map(classify::fingerprint);
        let quiet_for = match (fp, self.last) {
            (Some(f), Some((g, since))) if f == g => Some(since.elapsed()),
            _ => {
                self.last = fp.map(|f| (f, Instant::now()));
                None
            }
        };
        let mark = instance::load_mark(root, &spec.identity, slot)
            .map(|m| m.mark)
            .filter(|m| m.at >= agent.started_at);
        if self.undelivered && mark.is_some() {
            self.undelivered = false;
        }
        let delivery = work.map(|w| {
            if let (Some(f), d) = (fp, &mut w.delivery)
                && d.taken_in_by(f, taken_at)
            {
                d.changed = true;
            }
            w.delivery.clone()
        });
        let undelivered = self.undelivered.then(|| classify::Undelivered {
            at: agent.started_at,
            task: String::new(),
            lines: vec![],
        });
        Ok(classify::decide(
            &Facts {
                running: true,
                screen: screen.as_deref(),
                quiet_for,
                mark: mark.as_ref(),
                delivery: delivery.as_ref(),
                undelivered: undelivered.as_ref(),
                seen_at: Some(taken_at),
                ever_ready: agent.ever_ready,
                parked_until: None,
                now: Utc::now(),
            },
            &Rules { patterns: pats, has_ready, quiet: spec.quiet },
        ))
    }
}
