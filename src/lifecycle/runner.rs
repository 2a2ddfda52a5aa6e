//! `_run <id>`: the program of an ephemeral peer's pane. It turns the FIFO
//! into work at the program's own speed:
//!
//! ```text
//! take runner.lock (one runner per identity; its pid is written there)
//! wait for the worker lock once (the starter holds it until it sees us, so
//!   our first event comes after its ev=launch)
//! loop:
//!   re-read the spec (removed or no longer ephemeral: retire)
//!   claim the head (queue lock; expired heads are dead-lettered on the way)
//!     claimed  -> run it: payload to work/<task>, spawn the program as our
//!                 child in the pane (argv placeholders, env, cwd as the spec
//!                 says), ev=task-start; --deliver keys: wait until quiet,
//!                 paste, Enter; wait for it (keys: reap it once idle past
//!                 --idle-ttl), ending it past --task-timeout (SIGTERM,
//!                 5 s, SIGKILL: ev=task-timeout, retried as `timeout`);
//!                 ev=session-exit; dispatch::finish
//!     backoff  -> sleep until the head is due (or the queue changes)
//!     empty    -> poll the queue's change mark for --linger, then retire
//! ```
//!
//! Retiring is race-free with a kick: under the worker lock, check that
//! nothing is pending, release `runner.lock`, check again (a sender that
//! saw us alive after publishing its task published it before our
//! release), and only then end our own server (`session::retire_self`).
//!
//! The runner records each exit itself, as the parent of the program, so
//! nothing depends on tmux reaping the pane (tmux before 3.6 can lose a
//! pane's exit status). Its program shares its process group, so a
//! deliberate stop (SIGTERM to the pane's group, then SIGKILL) reaches
//! both. Terminal-generated signals (Ctrl-C typed into the pane) reach the
//! program, not the runner: it catches them with a handler that does
//! nothing, which `exec` resets for the program. SIGHUP (the server died)
//! is noted: the runner still records its program's exit, then ends with
//! [`Ended::HandOver`], and its entry point hands over as the pane-died
//! hook's would (no hook runs for a dead server).
//!
//! Crash points (`MUXVISOR_FAULT` with the `fault-injection` feature):
//! `run-claimed` (claimed, program not started), `run-spawned` (program
//! running), `run-finished` (task finished, next not claimed). A runner
//! killed anywhere leaves at most one claimed task in `cur/`; its pane's
//! `pane-died` hook hands over at once (kill the leftovers, retry the task,
//! start a new runner) and the tick does the same if the hook is lost.

use std::cell::RefCell;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;

use crate::ground::fault::point as fault;
use crate::ground::fsutil::LockGuard;
use crate::ground::paths::Root;
use crate::lifecycle::dispatch::{self, Finish};
use crate::lifecycle::observe;
use crate::lifecycle::session;
use crate::model::logfmt::Event;
use crate::model::peer::{self, Deliver, Identity, PeerSpec, Policy};
use crate::model::queue::{Claim, Claimed, Queue, QueueLock, task};
use crate::tmux::Tmux;
use crate::tmux::control::Control;

/// How long the runner waits for the worker lock (a tick stopping a worker
/// holds it for up to its grace).
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How long a foreign task in `cur/` is waited on before the runner ends
/// and lets the hand-over resolve it.
const BUSY_GIVE_UP: Duration = Duration::from_secs(2);
/// The longest a waiting runner goes without looking at its SIGHUP flag.
const HANGUP_RECHECK: Duration = Duration::from_millis(100);
/// How often a keys worker's idleness is checked.
const IDLE_POLL: Duration = Duration::from_millis(500);

mod pool;

static HANGUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_: libc::c_int) {
    HANGUP.store(true, Ordering::SeqCst);
}

extern "C" fn ignore(_: libc::c_int) {}

/// How a runner ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It retired, or another runner holds the queue.
    Done,
    /// Its server died under it (SIGHUP) and no `pane-died` hook will run:
    /// its locks are released, and the caller hands over as that hook's
    /// entry point would (`tick::demand::handover`, detached).
    HandOver,
    /// It failed; the failure is on the pane and in `lifecycle.log`.
    Failed,
}

/// `_run <id> [--slot k]`: serve `id`'s queue as worker slot `slot` (0:
/// the first runner, the only one of a one-worker peer) until it retires.
pub fn run(root: &Root, id: &Identity, slot: u32) -> Result<Ended> {
    install_signals()?;
    match Runner::start(root, id, slot).and_then(|r| r.map(Runner::serve).transpose()) {
        Ok(ended) => Ok(ended.unwrap_or(Ended::Done)),
        Err(e) => {
            failed(root, id, &e);
            Ok(Ended::Failed)
        }
    }
}

/// Tell of a runner's failure where someone may see it: its pane, and
/// `ev=runner-error`. Never fails.
pub fn failed(root: &Root, id: &Identity, e: &anyhow::Error) {
    // stderr is the pane (gone if the server died): never panic on it.
    let _ = writeln!(std::io::stderr(), "muxvisor runner for {id}: {e:#}");
    let _ = Event::new("runner-error")
        .id(id)
        .kv("reason", format!("{e:#}"))
        .append_to(&root.lifecycle_log());
}

/// Handlers, not `SIG_IGN`: an ignored signal stays ignored across `exec`,
/// a caught one is reset to its default for the program.
fn install_signals() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let quiet = SigAction::new(SigHandler::Handler(ignore), SaFlags::SA_RESTART, SigSet::empty());
    let hup = SigAction::new(SigHandler::Handler(on_hangup), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU]
    {
        // SAFETY: the handler does nothing at all.
        unsafe { sigaction(sig, &quiet) }.context("installing the runner's signal handlers")?;
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(Signal::SIGHUP, &hup) }.context("installing the runner's SIGHUP handler")?;
    Ok(())
}

struct Runner<'a> {
    root: &'a Root,
    id: Identity,
    q: Queue,
    /// Our worker slot: 0 for the first runner (it owns the server), `k`
    /// for the runner of worker window `k` (`add --workers N`).
    slot: u32,
    /// The spec's `--workers`, as last read.
    workers: u32,
    /// Our slot's lock (`runner.lock`, `runner.<k>.lock`), held while we
    /// accept work.
    lock: Option<LockGuard>,
    /// A control-mode client of our own server, for the screen's last
    /// lines after each task without a tmux process per task.
    control: RefCell<Option<Control>>,
    /// Wakes us when the queue changes (inotify where there is one).
    watch: crate::ground::watch::DirWatch,
}

impl<'a> Runner<'a> {
    /// Take our slot's lock; `None` if another runner holds it.
    fn start(root: &'a Root, id: &Identity, slot: u32) -> Result<Option<Runner<'a>>> {
        let q = Queue::open(root, id)?;
        // Each ack's sync of done/ joins the next claim's (the queue's
        // module header says why that is safe).
        q.batch_acks();
        let Some(lock) = q.take_lock(QueueLock::slot(slot))? else { return Ok(None) };
        // The starter holds the worker lock until it sees ours held, and it
        // logs ev=launch before that: wait for it once, so that no event of
        // ours precedes the launch.
        drop(q.worker_lock_within(LOCK_WAIT)?);
        // A server that runs has its canary, whoever started it: a starter
        // killed before it armed one leaves that to us (a lock probe when
        // one watches already). Observability only: never fatal.
        let _ = crate::lifecycle::canary::ensure(root, id);
        Ok(Some(Runner {
            root,
            id: id.clone(),
            slot,
            workers: 1,
            lock: Some(lock),
            control: RefCell::new(None),
            watch: q.change_watch(),
            q,
        }))
    }

    fn serve(mut self) -> Result<Ended> {
        let mut idle_since = Instant::now();
        let mut busy_since: Option<Instant> = None;
        loop {
            if HANGUP.load(Ordering::SeqCst) {
                return self.hand_over_after_hangup();
            }
            let spec = match peer::load(self.root, &self.id) {
                Ok(Some(s)) if s.policy == Policy::Ephemeral => s,
                Ok(_) => return self.retire("unregistered").map(|_| Ended::Done),
                Err(e) => return Err(e),
            };
            self.workers = spec.workers;
            if spec.is_pool() {
                return self.serve_pool(spec);
            }
            if self.slot >= spec.workers && self.retire("drained")? {
                return Ok(Ended::Done); // a worker slot the spec no longer has
            }
            let mark = self.q.change_mark();
            let t0 = Instant::now();
            let ttl = Some(spec.task_ttl);
            match self.q.claim_to_run(Utc::now(), ttl, self.slot, spec.workers)? {
                Claim::Claimed(c) => {
                    busy_since = None;
                    fault("run-claimed");
                    self.run_task(&spec, c, Trace::start(t0))?;
                    fault("run-finished");
                    idle_since = Instant::now();
                }
                Claim::NotBefore(t) => {
                    let due = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    self.wait_change(mark, Instant::now() + due);
                    idle_since = Instant::now();
                }
                Claim::Empty => {
                    let end = idle_since + spec.linger;
                    if Instant::now() >= end {
                        if self.retire("drained")? {
                            return Ok(Ended::Done);
                        }
                        idle_since = Instant::now();
                    } else {
                        self.wait_change(mark, end);
                    }
                }
                Claim::Full => {
                    // Every worker slot runs a task: wait for one to end
                    // (an ack changes `cur/`, not the counter: any change
                    // wakes us; without a live watch, a short sleep).
                    self.watch.wait(Instant::now() + Duration::from_millis(20));
                    idle_since = Instant::now();
                }
                Claim::Busy => {
                    // Not ours: a task left by a runner that died. Whoever
                    // started us resolved such tasks first, so this is a
                    // race; end and let the hand-over resolve it.
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= BUSY_GIVE_UP {
                        anyhow::bail!("a task of another runner is still claimed in cur/");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Sleep until the queue changes or `until`: blocked on the queue's
    /// watch (woken the moment a sender publishes), its change mark (a
    /// stat) checked at each wake-up; where there is no live watch, polled
    /// every few milliseconds, slower the longer it stays still.
    fn wait_change(&self, mark: Option<(u64, i64, i64, u64)>, until: Instant) {
        self.watch.reset();
        while Instant::now() < until && !HANGUP.load(Ordering::SeqCst) {
            if self.q.change_mark() != mark {
                return;
            }
            // A SIGHUP interrupts the wait; one that lands between the
            // check above and the wait is seen within HANGUP_RECHECK.
            self.watch.wait(until.min(Instant::now() + HANGUP_RECHECK));
        }
    }

    fn run_task(&self, spec: &PeerSpec, c: Claimed, mut trace: Trace) -> Result<()> {
        trace.mark(); // claimed
        let task = c.task().to_string();
        let started_at = c.header.started_at.unwrap_or_else(Utc::now);
        let file = self.q.work_file(&c)?;
        if spec.deliver == Deliver::Keys {
            discard_typed_input();
        }
        // The peer's environment is read now, env file included, so that a
        // rotated secret reaches the next task; a file that cannot be read
        // costs the task an attempt, like a program that cannot start.
        let started = crate::model::peer_env::resolve(spec, self.root.dir())
            .with_context(|| format!("cannot start {} for task {task}", spec.command[0]))
            .and_then(|env| {
                let program = session::startable_program(spec, env.get("PATH"))?;
                spawn(spec, &env, &program, &task, &file, &c.payload)
                    .with_context(|| format!("starting {} for task {task}", spec.command[0]))
            });
        let child = match started {
            Ok(child) => child,
            Err(e) => {
                let how = Finish::Failed { reason: format!("launch-failed: {e:#}") };
                return self.finish(spec, &task, &how, &mut trace);
            }
        };
        let pid = child.id() as i32;
        // The claim's last sync runs while the program starts (see
        // `Queue::claim_to_run`); a disk that cannot sync ends the program
        // and this runner, and the hand-over retries the task.
        if let Err(e) = self.q.settle() {
            let mut child = child;
            end_child(&mut child, Duration::from_secs(2));
            return Err(e.context(format!("claiming task {task}")));
        }
        self.log(
            &self.root.lifecycle_log(),
            Event::new("task-start")
                .id(&self.id)
                .kv("task", &task)
                .kv("attempt", c.header.attempt)
                .kv("pid", pid),
        );
        trace.mark(); // started
        fault("run-spawned");
        // --task-timeout counts from the claim, as the tick counts it.
        let spent = (Utc::now() - started_at).to_std().unwrap_or_default();
        let deadline = Instant::now() + spec.task_timeout.saturating_sub(spent);
        let (status, timed_out) = match spec.deliver {
            Deliver::Argv => wait(child, deadline)?,
            Deliver::Keys => match self.serve_keys(spec, child, &c.payload, deadline) {
                Ok(st) => st,
                Err(e) => {
                    let how = Finish::Failed { reason: format!("keys-failed: {e:#}") };
                    return self.finish(spec, &task, &how, &mut trace);
                }
            },
        };
        trace.mark(); // exited
        let (code, signal) = (status.code(), status.signal().map(|s| s.to_string()));
        let mut ev = crate::lifecycle::hook::session_exit_event(
            &self.id,
            &code.map(|c| c.to_string()).unwrap_or_default(),
            signal.as_deref().unwrap_or(""),
            &pid.to_string(),
        );
        ev = ev.kv("task", &task);
        self.log(&self.root.exits_log(), ev);
        let duration_ms = (Utc::now() - started_at).num_milliseconds().max(0) as u64;
        let how = if timed_out {
            self.log(
                &self.root.lifecycle_log(),
                Event::new("task-timeout")
                    .id(&self.id)
                    .kv("task", &task)
                    .kv("duration_ms", duration_ms)
                    .kv("timeout_ms", spec.task_timeout.as_millis()),
            );
            Finish::Failed { reason: "timeout".into() }
        } else {
            Finish::Exited { status: code, signal, duration_ms }
        };
        self.finish(spec, &task, &how, &mut trace)?;
        trace.write(&task);
        Ok(())
    }

    /// `--deliver keys`: type the task once the program is quiet, then wait
    /// for it to exit, or reap it once its pane has been idle past
    /// `--idle-ttl` (which finishes the task, as an exit 0 would). A task
    /// that cannot be typed ends the program and fails.
    fn serve_keys(
        &self,
        spec: &PeerSpec,
        mut child: Child,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<(ExitStatus, bool)> {
        if let Err(e) = dispatch::deliver_keys(self.root, spec, payload) {
            end_child(&mut child, Duration::from_secs(2));
            return Err(e);
        }
        let mut next_check = Instant::now() + IDLE_POLL;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok((st, false));
            }
            if Instant::now() >= deadline {
                end_child(&mut child, TIMEOUT_GRACE);
                return Ok((child.wait()?, true));
            }
            if let Some(ttl) = spec.idle_ttl
                && Instant::now() >= next_check
            {
                next_check = Instant::now() + IDLE_POLL;
                let obs = observe::observe(self.root, &self.id, Duration::from_secs(2))?;
                let idle = obs.last_output.map(|t| (Utc::now() - t).to_std().unwrap_or_default());
                if idle.is_some_and(|d| d > ttl) {
                    let idle_s = idle.map(|d| d.as_secs()).unwrap_or_default();
                    self.log(
                        &self.root.lifecycle_log(),
                        Event::new("reaped-idle").id(&self.id).kv("idle_s", idle_s),
                    );
                    end_child(&mut child, Duration::from_secs(5));
                    // Reaped idle means done: report it as a clean exit.
                    return Ok((ExitStatus::from_raw(0), false));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(&self, spec: &PeerSpec, task: &str, how: &Finish, trace: &mut Trace) -> Result<()> {
        dispatch::finish(spec, &self.q, task, how, || {
            trace.mark(); // committed
            self.screen_tail(spec)
        })?;
        trace.mark(); // outcome written
        Ok(())
    }

    /// The screen's last lines, through our control client (attached on
    /// first use, dropped on any error) or else a plain tmux call.
    fn screen_tail(&self, spec: &PeerSpec) -> String {
        let timeout = Duration::from_secs(2);
        let mut slot = self.control.borrow_mut();
        if slot.is_none()
            && let Ok(tmux) = Tmux::new(self.root.socket(&self.id))
        {
            *slot = Control::attach(&tmux, &self.id, timeout).ok();
        }
        if let Some(c) = slot.as_mut() {
            match c.screen_tail(&self.id, dispatch::SCREEN_TAIL_LINES, timeout) {
                Ok(t) => return t,
                Err(_) => *slot = None,
            }
        }
        dispatch::screen_tail(self.root, spec, timeout)
    }

    /// End our own server if the queue is still empty (see the module
    /// header), or, for a worker slot, our own window. False when work
    /// arrived meanwhile.
    fn retire(&mut self, reason: &str) -> Result<bool> {
        let _worker = self.q.worker_lock_within(LOCK_WAIT)?;
        if self.slot > 0 {
            return self.retire_slot();
        }
        if self.pending()? {
            return Ok(false);
        }
        self.lock = None;
        if self.pending()? {
            self.lock = Some(
                self.q
                    .take_lock(QueueLock::Runner)?
                    .context("runner.lock was taken while this runner held the worker lock")?,
            );
            return Ok(false);
        }
        self.control.borrow_mut().take();
        session::retire_self(self.root, &self.id, reason)?;
        Ok(true)
    }

    /// Our server died (the terminal hung up) and no pane-died hook will
    /// run for us: a hand-over is due, as that hook would say, so that the
    /// death is on record (the per-peer step logs `ev=gone`, which matters
    /// when no canary saw it) and queued tasks go on at once rather than at
    /// the next tick. Not after a deliberate teardown (its intent is written
    /// before the kill). Our locks and control client go first: the
    /// detached hand-over must not inherit them, and it waits for a runner
    /// to be gone.
    fn hand_over_after_hangup(mut self) -> Result<Ended> {
        self.control.borrow_mut().take();
        self.lock = None;
        if self.root.stop_intent(&self.id).exists() {
            return Ok(Ended::Done);
        }
        Ok(Ended::HandOver)
    }

    /// A worker slot's retirement (the caller holds the worker lock): if
    /// nothing is pending, release our slot's lock, check again (as the
    /// first runner does), and let our window close with us, without a
    /// `pane-died` hook: a retiring worker is not a death.
    fn retire_slot(&mut self) -> Result<bool> {
        let still_wanted =
            |r: &Self| -> Result<bool> { Ok(r.slot < r.workers && r.q.counts()?.pending > 0) };
        if still_wanted(self)? {
            return Ok(false);
        }
        self.lock = None;
        if still_wanted(self)? {
            self.lock =
                Some(self.q.take_lock(QueueLock::slot(self.slot))?.context(
                    "a worker slot's lock was taken while its runner held the worker lock",
                )?);
            return Ok(false);
        }
        self.control.borrow_mut().take();
        if let (Ok(tmux), Some(pane)) =
            (Tmux::new(self.root.socket(&self.id)), std::env::var_os("TMUX_PANE"))
        {
            let quick = tmux.with_timeout(Duration::from_secs(1));
            let _ = crate::tmux::launch::close_on_exit(&quick, &pane.to_string_lossy());
        }
        Ok(true)
    }

    /// Work that keeps the first runner (and so the server) alive: a task
    /// pending or running, or a worker slot's runner still alive.
    fn pending(&self) -> Result<bool> {
        let c = self.q.counts()?;
        let workers = self.q.live_slots().iter().any(|(k, _)| *k > 0);
        Ok(c.pending > 0 || c.running > 0 || workers)
    }

    /// Events are records, not control: a failure to write one is noted
    /// on the pane and the work goes on.
    fn log(&self, file: &std::path::Path, ev: Event) {
        if let Err(e) = ev.append_to(file) {
            let _ = writeln!(std::io::stderr(), "muxvisor runner: could not log an event: {e:#}");
        }
    }
}

/// Per-task timings for the drain benchmark: with `MUXVISOR_TRACE=<file>`
/// in the runner's environment, one line per finished task with the time
/// spent claiming, starting the program, running it, committing its end,
/// and writing its outcome (microseconds), and the wall-clock nanoseconds of
/// its exit and of the commit. Off (and free) otherwise.
struct Trace {
    marks: Vec<(Instant, i64)>,
}

impl Trace {
    fn start(t0: Instant) -> Trace {
        Trace { marks: vec![(t0, 0)] }
    }

    fn mark(&mut self) {
        if crate::ground::trace::on() {
            let wall = Utc::now().timestamp_nanos_opt().unwrap_or(0);
            self.marks.push((Instant::now(), wall));
        }
    }

    fn write(&self, task: &str) {
        let [(t0, _), (claimed, _), (started, _), (exited, ew), (committed, cw), (done, _)] =
            self.marks[..]
        else {
            return;
        };
        let us = |a: Instant, b: Instant| b.duration_since(a).as_micros();
        let line = format!(
            "task={task} claim_us={} start_us={} run_us={} commit_us={} outcome_us={} \
             exit_wall_ns={ew} commit_wall_ns={cw}",
            us(t0, claimed),
            us(claimed, started),
            us(started, exited),
            us(exited, committed),
            us(committed, done),
        );
        crate::ground::trace::append(&line);
    }
}

/// Start the program for task `task`: argv placeholders replaced, exactly
/// the peer's environment (`env`, see `peer_env`) plus the task's, the
/// spec's cwd, the pane as its terminal. tmux's own variables of the pane
/// (`TERM`, `TMUX`, ...) are kept, as a persistent peer's program has them.
///
/// `program` is `argv[0]` as [`session::startable_program`] found it on the
/// peer's PATH: exec'd directly, so the child does not search the PATH
/// again (one failed `execve` per directory before the right one); the
/// program still sees the name it was given as its `argv[0]`.
fn spawn(
    spec: &PeerSpec,
    env: &crate::model::peer_env::PeerEnv,
    program: &std::path::Path,
    task: &str,
    file: &std::path::Path,
    payload: &[u8],
) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let argv = program_argv(spec, file, payload);
    let mut cmd = Command::new(program);
    cmd.arg0(&argv[0])
        .args(&argv[1..])
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(TMUX_VARS.iter().filter_map(|k| Some((*k, std::env::var_os(k)?))))
        .envs(env.pairs())
        .env("MUXVISOR_IDENTITY", spec.identity.as_str())
        .env("MUXVISOR_TASK_ID", task)
        .env("MUXVISOR_TASK_FILE", file)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    die_with_runner(&mut cmd);
    Ok(cmd.spawn()?)
}

/// The argv of the program for one task: the one expansion of the task's
/// placeholders ([`task::expand_argv`]), which `send` measured before it
/// queued the task (`dispatch::checked_argv`). `send` refuses a text that is
/// not UTF-8 when the argv holds `{task}`, so the lossy reading here never
/// changes one that gets this far.
fn program_argv(spec: &PeerSpec, file: &std::path::Path, payload: &[u8]) -> Vec<String> {
    task::expand_argv(&spec.command, &file.to_string_lossy(), &String::from_utf8_lossy(payload))
}

/// What tmux sets in every pane; a task's program gets them from the
/// runner's pane, as a persistent peer's program gets them from its own.
const TMUX_VARS: &[&str] = &["TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "TMUX", "TMUX_PANE"];

/// The program must not outlive its runner: a runner killed while its
/// program runs leaves nobody to record that program's exit, so the task
/// is retried, and a program that went on to finish would have completed
/// it twice. tmux closes the pane's terminal (SIGHUP) only once it notices
/// the death, which tmux < 3.6 can delay, and a program may ignore SIGHUP.
/// On Linux the program gets SIGKILL the instant we die. Elsewhere the
/// hand-over kills what is left of the pane's group, later.
fn die_with_runner(cmd: &mut Command) {
    crate::ground::proc::die_with_parent(cmd);
}

/// `--deliver keys`: a task typed for a program that died before reading
/// it (killed, or its delivery failed) still waits in the pane's terminal,
/// and the next program would read it as its own task. Our stdin is that
/// terminal: drop what is pending before each program starts (before, not
/// at the paste, so nothing the program itself is sent is lost).
fn discard_typed_input() {
    use nix::sys::termios::{FlushArg, tcflush};
    let _ = tcflush(std::io::stdin(), FlushArg::TCIFLUSH);
}

/// Block until the program exits (a blocking wait: its exit is seen the
/// instant it happens), ending it if it runs past `deadline` (its
/// `--task-timeout`): SIGTERM, then SIGKILL after [`TIMEOUT_GRACE`]. True
/// when it was ended for its timeout.
///
/// The runner enforces the timeout itself, so a task stops on time with no
/// tick running. A timer thread does the signalling; the exit is waited for
/// with `waitid(WNOWAIT)`, which leaves the child unreaped until the timer
/// has been told, so the timer never signals a pid that was reaped (and
/// could have been reused).
fn wait(mut child: Child, deadline: Instant) -> Result<(ExitStatus, bool)> {
    use std::sync::{Arc, Mutex, mpsc};
    let pid = child.id() as libc::pid_t;
    // (exited, timed out)
    let shared = Arc::new(Mutex::new((false, false)));
    let (tx, rx) = mpsc::channel::<()>();
    let timer = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let signal = |sig: libc::c_int| -> bool {
                let Ok(mut g) = shared.lock() else { return false };
                if g.0 {
                    return false;
                }
                g.1 = true;
                // SAFETY: the child is not reaped while `exited` is false.
                unsafe { libc::kill(pid, sig) };
                true
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if rx.recv_timeout(left) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            if signal(libc::SIGTERM)
                && rx.recv_timeout(TIMEOUT_GRACE) == Err(mpsc::RecvTimeoutError::Timeout)
            {
                signal(libc::SIGKILL);
            }
        })
    };
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child without reaping it.
        let rc = unsafe {
            libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let timed_out = match shared.lock() {
        Ok(mut g) => {
            g.0 = true;
            g.1
        }
        Err(_) => false,
    };
    drop(tx);
    let _ = timer.join();
    Ok((child.wait().context("waiting for the program")?, timed_out))
}

/// How long a program past its `--task-timeout` gets after SIGTERM.
const TIMEOUT_GRACE: Duration = Duration::from_secs(5);

/// SIGTERM the program, wait up to `grace`, then SIGKILL it; always reap.
fn end_child(child: &mut Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The runner's crash points, in the order a task meets them.
pub const FAULT_STEPS: [&str; 3] = ["run-claimed", "run-spawned", "run-finished"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::peer::{Identity, Policy};

    /// What `send` checks is what the runner runs: for a hostile text, the
    /// argv `send` measures and the argv of the real run (a task really
    /// queued and claimed, its real payload file) agree argument by
    /// argument, in length and, but for the payload file's name, in content.
    #[test]
    fn send_measures_the_argv_the_runner_runs() {
        let dir = tempfile::Builder::new().prefix("mvr").tempdir_in("/tmp").unwrap();
        let root = crate::ground::fsutil::open_root(&dir.path().join("r")).unwrap();
        let argv = ["sh", "-c", "{task}", "sh", "--in={task_file}", "{task}{task_file}", "{x}"];
        let spec = PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Ephemeral,
            argv.iter().map(|a| a.to_string()).collect(),
            "/".into(),
        );
        let hostile = "{task_file} {task} $(id) `id` \"'\\ \n\t;|&<>*? é \u{202e}";
        assert!(dispatch::check_deliverable(&root, &spec, hostile.as_bytes()).is_ok());
        let q = Queue::open(&root, &spec.identity).unwrap();
        q.enqueue(hostile.as_bytes(), None).unwrap();
        let Claim::Claimed(c) = q.claim(Utc::now(), None).unwrap() else { panic!("not claimed") };
        let file = q.work_file(&c).unwrap();
        let run = program_argv(&spec, &file, &c.payload);
        let checked = dispatch::checked_argv(&root, &spec, hostile);
        let lens = |v: &[String]| v.iter().map(String::len).collect::<Vec<_>>();
        assert_eq!(lens(&run), lens(&checked), "{run:?}\n{checked:?}");
        let placeholder = "x".repeat(task::TASK_ID_LEN);
        let as_checked: Vec<String> =
            run.iter().map(|a| a.replace(c.task(), &placeholder)).collect();
        assert_eq!(as_checked, checked);
        assert_eq!(run[2], hostile);
    }
}
