//! Dispatch: how tasks reach an ephemeral peer's program, and the one place
//! a task is finished. This is not the worker (the program a task runs) nor
//! its runner (`runner`, the process that runs it): it starts runners
//! ([`start_runner_locked`]), checks at `send` what a runner will be able
//! to deliver ([`check_deliverable`], [`checked_argv`]), types a task into a
//! `--deliver keys` program ([`deliver_keys`]), and finishes tasks
//! ([`finish`]).
//!
//! An ephemeral peer's pane runs a **runner** (`muxvisor _run <id>`, see
//! `runner`), not the program: the runner claims the head of the FIFO,
//! runs the program for it as its own child, records the exit itself,
//! finishes the task and claims the next, until the queue has been empty
//! for the peer's `--linger`; then it retires its own server. A burst
//! therefore drains at the program's own speed, with no tmux round trip
//! and no tick between tasks. Three things start a runner when none lives,
//! each through the tick's per-peer step (so that a task left by a dead
//! runner is finished first) under the per-identity worker lock, and each
//! calls [`start_runner_locked`] here:
//! - the **kick**: `send`, after the task is durable (`tick::demand`);
//! - the **hand-over**: the `pane-died` hook of a runner that died (killed,
//!   crashed) says so, and its entry point forks a detached process that
//!   runs the step at once (`tick::demand`);
//! - the **tick**, the safety net for everything else.
//!
//! Whoever finishes a task (the runner after its program exits; the tick
//! or the hand-over for a program that died with its runner or server, or
//! ran out of time) calls [`finish`]: exit 0 acknowledges, anything else
//! goes back to the head with backoff or, after `max_attempts`, to the
//! dead letters.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ground::fsutil::LockGuard;
use crate::ground::paths::Root;
use crate::lifecycle::session::{self, Start};
use crate::model::peer::{Deliver, PeerSpec};
use crate::model::queue::{Nacked, Queue, TaskOutcome, task};
use crate::tmux::{Cmd, Tmux, TmuxError, paste};

/// How long `--deliver keys` waits for a fresh program to go quiet.
pub const KEYS_MAX_WAIT: Duration = Duration::from_secs(10);
/// Output unchanged this long counts as "ready for input".
pub const QUIET: Duration = Duration::from_millis(500);
/// How long a starter waits for a fresh runner to hold its lock.
const RUNNER_START_WAIT: Duration = Duration::from_secs(3);
/// Lines of a finished program's screen kept with its outcome.
pub const SCREEN_TAIL_LINES: usize = 20;

/// A runner that was started.
#[derive(Clone, Debug, Serialize)]
pub struct Started {
    pub pane_pid: Option<i32>,
}

/// Launch a runner for `spec` (the caller holds `q`'s worker lock) and wait
/// until it holds its own lock, so that the next starter sees it. `Ok(None)`
/// when a session was already alive.
pub fn start_runner_locked(
    root: &Root,
    spec: &PeerSpec,
    q: &Queue,
    _held: &LockGuard,
) -> Result<Option<Started>> {
    let launched = session::launch(root, spec, Start::Runner)
        .with_context(|| format!("starting the runner of {}", spec.identity))?;
    if !launched.started {
        return Ok(None);
    }
    let deadline = Instant::now() + RUNNER_START_WAIT;
    while !q.runner_alive() && Instant::now() < deadline {
        if launched.pane_pid.is_some_and(|p| nix::sys::signal::kill(pid(p), None).is_err()) {
            break; // it died; its hook hands over
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(Some(Started { pane_pid: launched.pane_pid }))
}

/// Start runners in `spec`'s free worker slots (`add --workers N`, N > 1)
/// for the pending tasks no live runner is free to take, each in its own
/// window of the running server (`_run <id> --slot k`). The caller holds
/// `q`'s worker lock and the first runner lives (it owns the server). Dead
/// worker panes (a runner killed outright) are removed first. A slot whose
/// task is still in `cur/` is not refilled: its task is the hand-over's to
/// finish first. Waits until each started runner holds its slot's lock, so
/// the next starter sees it. Returns the slots started, with their pids.
pub fn fill_slots(
    root: &Root,
    spec: &PeerSpec,
    q: &Queue,
    _held: &LockGuard,
) -> Result<Vec<(u32, Option<i32>)>> {
    if spec.workers <= 1 {
        return Ok(Vec::new());
    }
    let id = &spec.identity;
    let tmux = Tmux::new(root.socket(id))
        .map_err(TmuxError::into_anyhow)?
        .with_timeout(Duration::from_secs(2));
    record_dead_workers(root, spec)?;
    for dead in crate::tmux::launch::dead_worker_panes(&tmux, id).unwrap_or_default() {
        let _ = crate::tmux::launch::kill_pane(&tmux, &dead.pane);
    }
    let slots = Slots::read(root, q, spec)?;
    let free = slots.to_fill(slots.wanted(spec, q.counts()?.pending, Utc::now()));
    let exe = std::env::current_exe().context("finding the muxvisor binary")?;
    let cwd = if spec.cwd.is_dir() { spec.cwd.clone() } else { std::path::PathBuf::from("/") };
    let mut started = Vec::new();
    for k in free {
        let argv = session::runner_argv(&exe, root.dir(), spec, k);
        let cmd = crate::tmux::launch::worker_window_cmd(id, &cwd, &argv);
        let out = tmux
            .run(&cmd)
            .map_err(TmuxError::into_anyhow)
            .with_context(|| format!("starting worker {k} of {id}"))?;
        started.push((k, out.stdout.trim().parse::<i32>().ok()));
    }
    let deadline = Instant::now() + RUNNER_START_WAIT;
    for (k, pane) in &started {
        let lock = crate::model::queue::QueueLock::slot(*k);
        while !q.lock_held(lock) && Instant::now() < deadline {
            if pane.is_some_and(|p| nix::sys::signal::kill(pid(p), None).is_err()) {
                break; // it died; its hook hands over
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(started)
}

/// `--workers N`: record the death of every dead worker pane whose
/// `pane-died` hook did not (its binary moved away, the hook killed), as
/// the tick does for the first pane (`source=tick`), with the task its
/// runner left claimed, which is still in `cur/` when this runs before the
/// task is retried. Returns how many were written.
pub fn record_dead_workers(root: &Root, spec: &PeerSpec) -> Result<usize> {
    let id = &spec.identity;
    let tmux = Tmux::new(root.socket(id))
        .map_err(TmuxError::into_anyhow)?
        .with_timeout(Duration::from_secs(2));
    let mut n = 0;
    for dead in crate::tmux::launch::dead_worker_panes(&tmux, id).unwrap_or_default() {
        let status = dead.status.parse().ok();
        let signal = Some(dead.signal.as_str()).filter(|s| !s.is_empty());
        if crate::lifecycle::hook::record_missed_exit(root, id, status, signal, dead.pid)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Start the first runner again in its dead pane (`--workers N`: the
/// worker windows' runners live, so the server is not torn down under
/// them), wait until it holds `runner.lock`, and record its pane's pid.
/// The caller holds `q`'s worker lock and has finished the dead runner's
/// task. Returns the new pane pid.
pub fn respawn_runner_locked(
    root: &Root,
    spec: &PeerSpec,
    q: &Queue,
    _held: &LockGuard,
) -> Result<Option<i32>> {
    let id = &spec.identity;
    let _lock = crate::ground::fsutil::lock_within(
        &root.id_lock(id),
        session::LOCK_WAIT,
        &format!("respawn {id}"),
    )?;
    let tmux = Tmux::new(root.socket(id))
        .map_err(TmuxError::into_anyhow)?
        .with_timeout(Duration::from_secs(2));
    let exe = std::env::current_exe().context("finding the muxvisor binary")?;
    let cwd = if spec.cwd.is_dir() { spec.cwd.clone() } else { std::path::PathBuf::from("/") };
    let argv = session::runner_argv(&exe, root.dir(), spec, 0);
    let out = tmux
        .run(&crate::tmux::launch::respawn_cmd(id, &cwd, &argv))
        .map_err(TmuxError::into_anyhow)
        .with_context(|| format!("starting the first runner of {id} again"))?;
    let pane = out.stdout.trim().parse::<i32>().ok();
    crate::model::peer_state::update(root, id, |st| {
        st.pane_pid = pane;
        st.pane_start = session::pane_start(pane, st.server_pid);
    })?;
    drop(_lock);
    let deadline = Instant::now() + RUNNER_START_WAIT;
    while !q.runner_alive() && Instant::now() < deadline {
        if pane.is_some_and(|p| nix::sys::signal::kill(pid(p), None).is_err()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(pane)
}

/// Which worker slots run what, read in the order that makes a slot whose
/// lock is free and whose task is still in `cur/` a dead runner's: the
/// claimed tasks first, the locks after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    pub workers: u32,
    /// Each claimed task's id and slot, in queue order.
    pub claimed: Vec<(String, u32)>,
    /// The slots whose runner lives, with the pid it wrote.
    pub live: Vec<(u32, Option<i32>)>,
    /// Live slots without a task that cannot take one: an agent pool's
    /// blocked instances (a dialog, a login, a usage limit; SPEC §10).
    pub blocked: Vec<u32>,
    /// When the newest of the claimed tasks was claimed.
    pub last_claim: Option<DateTime<Utc>>,
}

impl Slots {
    pub fn read(root: &Root, q: &Queue, spec: &PeerSpec) -> Result<Slots> {
        let running = q.running_all()?;
        let claimed = running.iter().map(|c| (c.header.task.clone(), c.slot())).collect();
        let last_claim = running.iter().filter_map(|c| c.header.started_at).max();
        let live = q.live_slots();
        let blocked = if spec.is_pool() {
            live.iter()
                .map(|(k, _)| *k)
                .filter(|k| {
                    crate::model::agent::instance::load(root, &spec.identity, *k).is_some_and(|i| {
                        i.state == crate::model::agent::classify::AgentState::Blocked
                            && i.task.is_none()
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Slots { workers: spec.workers, claimed, live, blocked, last_claim })
    }

    pub fn is_live(&self, slot: u32) -> bool {
        self.live.iter().any(|(k, _)| *k == slot)
    }

    fn has_task(&self, slot: u32) -> bool {
        self.claimed.iter().any(|(_, k)| *k == slot)
    }

    /// The worker slots (1..N) to start for `pending` tasks: as many as
    /// the pending tasks outnumber the idle runners ([`Slots::idle`]),
    /// among the slots with neither a live runner nor a task in `cur/`.
    /// Pure.
    pub fn to_fill(&self, pending: usize) -> Vec<u32> {
        let want = pending.saturating_sub(self.idle());
        (1..self.workers).filter(|k| !self.is_live(*k) && !self.has_task(*k)).take(want).collect()
    }

    /// The live runners free to take a task: without one, and not a
    /// blocked pool instance.
    pub fn idle(&self) -> usize {
        self.live.iter().filter(|(k, _)| !self.has_task(*k) && !self.blocked.contains(k)).count()
    }

    /// Tasks of worker slots (1..N) whose runner is gone.
    pub fn orphans(&self) -> impl Iterator<Item = &str> {
        self.claimed.iter().filter(|(_, k)| *k > 0 && !self.is_live(*k)).map(|(t, _)| t.as_str())
    }
}

/// How long after an instance took a task an agent pool's warm instances
/// are refilled (SPEC §10: "a few seconds"). A refill started at once, by
/// the `send` that queued the task, competed for the CPU with the instance
/// taking it: on two cores it pushed the first byte of a warm instance's
/// work past 300 ms one time in three. The runner that took the task asks
/// for the refill this long after (`runner::pool`); the kick and the tick
/// leave the warm part to it until then.
pub const REFILL_AFTER: Duration = Duration::from_secs(3);

impl Slots {
    /// How many free runners `spec` wants at `now` for `pending` tasks:
    /// one each, and for an agent pool its `--warm` instances besides,
    /// kept ready ahead of demand (SPEC §10), unless a task is about to
    /// be taken (pending, with an idle instance to take it) or was taken
    /// less than [`REFILL_AFTER`] ago. Pure.
    pub fn wanted(&self, spec: &PeerSpec, pending: usize, now: DateTime<Utc>) -> usize {
        let taking = pending > 0 && self.idle() > 0;
        let settled = !taking
            && self.last_claim.is_none_or(|t| {
                now.signed_duration_since(t).to_std().is_ok_and(|d| d >= REFILL_AFTER)
            });
        pending + if spec.is_pool() && settled { spec.warm as usize } else { 0 }
    }
}

fn pid(p: i32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(p)
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Its program exited (status) or was killed (signal).
    Exited { status: Option<i32>, signal: Option<String>, duration_ms: u64 },
    /// It cannot have finished: its program could not start, or died with
    /// its runner or server, or ran out of time.
    Failed { reason: String },
}

/// What [`finish`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    Done,
    Retry {
        attempt: u32,
        not_before: DateTime<Utc>,
    },
    Dead,
    /// The task was no longer running (someone finished it meanwhile).
    NotRunning,
}

/// The reason a non-zero exit is retried for: `exit-3`, `signal-9`. Pure.
pub fn exit_reason(status: Option<i32>, signal: Option<&str>) -> Option<String> {
    match (status, signal) {
        (_, Some(sig)) => Some(format!("signal-{sig}")),
        (Some(0), None) => None,
        (Some(code), None) => Some(format!("exit-{code}")),
        (None, None) => Some("status-lost".to_string()),
    }
}

/// Finish the running task `task` of `q`: the one place that turns an end
/// into an ack, a retry or a dead letter. An ack is committed first (one
/// rename), then `screen` is asked for the outcome's screen lines, so the
/// window between a program's exit and its durable record stays minimal.
pub fn finish(
    spec: &PeerSpec,
    q: &Queue,
    task: &str,
    how: &Finish,
    screen: impl FnOnce() -> String,
) -> Result<Finished> {
    let reason = match how {
        Finish::Exited { status, signal, duration_ms } => {
            match exit_reason(*status, signal.as_deref()) {
                None => {
                    let mut outcome = TaskOutcome {
                        status: *status,
                        signal: signal.clone(),
                        duration_ms: *duration_ms,
                        screen_tail: String::new(),
                        delivered_at: None,
                        reply: None,
                    };
                    let Some(name) = q.complete(task, &outcome)? else {
                        return Ok(Finished::NotRunning);
                    };
                    outcome.screen_tail = screen();
                    q.write_outcome(&name, &outcome)?;
                    return Ok(Finished::Done);
                }
                Some(r) => r,
            }
        }
        Finish::Failed { reason } => reason.clone(),
    };
    if !q.is_running(task)? {
        return Ok(Finished::NotRunning);
    }
    Ok(
        match q.nack(
            task,
            &reason,
            spec.backoff,
            spec.max_backoff,
            spec.max_attempts,
            Utc::now(),
        )? {
            Nacked::Retry { attempt, not_before } => Finished::Retry { attempt, not_before },
            Nacked::Dead => Finished::Dead,
        },
    )
}

/// The last lines of `id`'s pane, or empty if tmux does not answer.
pub fn screen_tail(root: &Root, spec: &PeerSpec, timeout: Duration) -> String {
    let id = &spec.identity;
    let cmd = Cmd::new("capture-pane")
        .arg("-p")
        .arg("-t")
        .arg(id.target())
        .arg("-S")
        .arg(format!("-{SCREEN_TAIL_LINES}"));
    let Ok(tmux) = Tmux::new(root.socket(id)) else { return String::new() };
    match tmux.with_timeout(timeout).run(&cmd) {
        Ok(out) => {
            let lines: Vec<&str> = out.stdout.trim_end().lines().collect();
            let from = lines.len().saturating_sub(SCREEN_TAIL_LINES);
            lines[from..].join("\n")
        }
        Err(_) => String::new(),
    }
}

/// Wait (bounded) for a fresh program to go quiet, then type the task
/// (paste, then Enter as its own step; the text is checked as it is typed).
/// A program that never goes quiet still gets the task at the deadline:
/// waiting longer would only delay it.
pub fn deliver_keys(root: &Root, spec: &PeerSpec, payload: &[u8]) -> Result<()> {
    let id = &spec.identity;
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
    paste::typable(payload).map_err(anyhow::Error::msg)?;
    paste::wait_quiet(&tmux, id, QUIET, KEYS_MAX_WAIT);
    paste::type_text(&tmux, id, payload, true).map(|_| ()).map_err(TmuxError::into_anyhow)
}

/// The longest single argument `execve` takes on Linux (`MAX_ARG_STRLEN`,
/// 32 pages, with its NUL); other systems only bound the total.
#[cfg(target_os = "linux")]
const MAX_ARG: Option<usize> = Some(32 * 4096 - 1);
#[cfg(not(target_os = "linux"))]
const MAX_ARG: Option<usize> = None;

/// Why `payload` can never reach `spec`'s program, if it cannot: `send`
/// refuses such a task before it is queued rather than accept it and
/// dead-letter it later. With `--deliver argv` only a `{task}` placeholder
/// puts the text itself into an argument (which must be UTF-8 without NUL,
/// and fit `execve`'s limits once expanded); `{task_file}` and the
/// environment take any bytes. With `--deliver keys` the text is typed, so
/// it must be UTF-8 without control characters other than newline and tab.
pub fn check_deliverable(root: &Root, spec: &PeerSpec, payload: &[u8]) -> Result<()> {
    let alt = "put it in a file and use {task_file} in the peer's argv, or send the file's path";
    match spec.deliver {
        Deliver::Keys => paste::typable(payload)
            .map(|_| ())
            .map_err(|m| anyhow::anyhow!("{} types its tasks: {m}", spec.identity)),
        Deliver::Argv => {
            if !task::takes_text(&spec.command) {
                return Ok(());
            }
            let text = std::str::from_utf8(payload).map_err(|e| {
                anyhow::anyhow!(
                    "the peer's argv holds {{task}}, and this task is not valid UTF-8 ({e}); {alt}"
                )
            })?;
            if text.contains('\0') {
                anyhow::bail!(
                    "the peer's argv holds {{task}}, and a NUL byte cannot be passed in an \
                     argument; {alt}"
                );
            }
            let expanded: Vec<usize> =
                checked_argv(root, spec, text).iter().map(String::len).collect();
            if let (Some(max), Some(longest)) = (MAX_ARG, expanded.iter().max())
                && *longest > max
            {
                anyhow::bail!(
                    "with {{task}} replaced, an argument would be {longest} bytes, over the \
                     {max}-byte limit of one argument (MAX_ARG_STRLEN); {alt}"
                );
            }
            let total: usize = expanded.iter().map(|n| n + 1).sum();
            let budget = arg_max() / 2;
            if total > budget {
                anyhow::bail!(
                    "with {{task}} replaced, the arguments would take {total} bytes, over the \
                     {budget} bytes muxvisor allows them (half of ARG_MAX, leaving room for the \
                     environment); {alt}"
                );
            }
            Ok(())
        }
    }
}

/// The argv `send` measures for a task with text `text`: the runner's own
/// expansion ([`task::expand_argv`]), with a payload file path exactly as
/// long as the real one (`queues/<id>/work/<task-id>`; the id is not known
/// before the task is queued, and every id has the same length).
pub fn checked_argv(root: &Root, spec: &PeerSpec, text: &str) -> Vec<String> {
    let file = crate::model::queue::work_path(root, &spec.identity, &"x".repeat(task::TASK_ID_LEN));
    task::expand_argv(&spec.command, &file.to_string_lossy(), text)
}

/// `sysconf(_SC_ARG_MAX)`, or POSIX's minimum when unknown.
fn arg_max() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    if n > 0 { n as usize } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::peer::{Identity, Policy};

    #[test]
    fn which_worker_slots_to_start() {
        let slots = |claimed: &[(&str, u32)], live: &[u32]| Slots {
            workers: 4,
            claimed: claimed.iter().map(|(t, k)| (t.to_string(), *k)).collect(),
            live: live.iter().map(|k| (*k, None)).collect(),
            blocked: Vec::new(),
            last_claim: None,
        };
        // Only the first runner, busy: three more for three pending.
        assert_eq!(slots(&[("a", 0)], &[0]).to_fill(3), vec![1, 2, 3]);
        assert_eq!(slots(&[("a", 0)], &[0]).to_fill(1), vec![1]);
        // An idle runner takes one pending task itself.
        assert_eq!(slots(&[], &[0]).to_fill(1), Vec::<u32>::new());
        assert_eq!(slots(&[("a", 0)], &[0, 2]).to_fill(2), vec![1]);
        // A dead slot's task is the hand-over's: that slot is not refilled.
        let s = slots(&[("a", 0), ("b", 1)], &[0]);
        assert_eq!(s.to_fill(5), vec![2, 3]);
        assert_eq!(s.orphans().collect::<Vec<_>>(), vec!["b"]);
        // One worker never fills.
        let one = Slots { workers: 1, ..slots(&[], &[0]) };
        assert!(one.to_fill(9).is_empty());
        // A blocked pool instance is not free: another starts for the task.
        let blocked = Slots { blocked: vec![0], ..slots(&[], &[0]) };
        assert_eq!(blocked.idle(), 0);
        assert_eq!(blocked.to_fill(1), vec![1]);
    }

    #[test]
    fn warm_instances_are_wanted_a_few_seconds_after_a_task_was_taken() {
        let mut spec = spec(&["agent"], Deliver::Argv);
        spec.agent = Some("claude".into());
        (spec.workers, spec.warm) = (3, 1);
        let now = Utc::now();
        let taken = |ago_ms: i64| Slots {
            workers: 3,
            claimed: vec![("a".into(), 0)],
            live: vec![(0, None)],
            blocked: Vec::new(),
            last_claim: Some(now - chrono::Duration::milliseconds(ago_ms)),
        };
        // About to be taken by an idle instance: no refill yet.
        let idle = Slots { claimed: Vec::new(), last_claim: None, ..taken(0) };
        assert_eq!(idle.wanted(&spec, 1, now), 1);
        assert_eq!(idle.to_fill(idle.wanted(&spec, 1, now)), Vec::<u32>::new());
        // Just taken: only the pending tasks are wanted, not the refill.
        assert_eq!(taken(100).wanted(&spec, 0, now), 0);
        assert_eq!(taken(100).wanted(&spec, 2, now), 2);
        // A few seconds later, the warm one too.
        assert_eq!(taken(3_000).wanted(&spec, 0, now), 1);
        assert_eq!(idle.wanted(&spec, 0, now), 1);
        // Not a pool: no warm instances.
        spec.agent = None;
        assert_eq!(idle.wanted(&spec, 0, now), 0);
    }

    fn spec(argv: &[&str], deliver: Deliver) -> PeerSpec {
        let mut s = PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Ephemeral,
            argv.iter().map(|a| a.to_string()).collect(),
            "/".into(),
        );
        s.deliver = deliver;
        s
    }

    #[test]
    fn exit_reasons() {
        assert_eq!(exit_reason(Some(0), None), None);
        assert_eq!(exit_reason(Some(3), None).as_deref(), Some("exit-3"));
        assert_eq!(exit_reason(None, Some("9")).as_deref(), Some("signal-9"));
        assert_eq!(exit_reason(Some(0), Some("15")).as_deref(), Some("signal-15"));
        assert_eq!(exit_reason(None, None).as_deref(), Some("status-lost"));
    }

    #[test]
    fn what_argv_and_keys_can_carry() {
        let root = Root::new("/r".into());
        let task = spec(&["sh", "-c", "echo \"$1\"", "sh", "{task}"], Deliver::Argv);
        let file = spec(&["cat", "{task_file}"], Deliver::Argv);
        let keys = spec(&["sh"], Deliver::Keys);
        assert!(check_deliverable(&root, &task, b"hello\nworld; $(id)").is_ok());
        for (bad, why) in [(&b"a\0b"[..], "NUL"), (&b"\xff\xfe"[..], "UTF-8")] {
            let e = check_deliverable(&root, &task, bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("{task_file}"), "{e}");
            assert!(check_deliverable(&root, &file, bad).is_ok(), "{{task_file}} takes any bytes");
        }
        let e = check_deliverable(&root, &keys, b"\xff").unwrap_err().to_string();
        assert!(e.contains("UTF-8"), "{e}");
        assert!(check_deliverable(&root, &keys, b"esc \x1b[201~").is_err());
        assert!(check_deliverable(&root, &keys, b"line\n\tindented\n").is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn one_argument_is_bounded_by_max_arg_strlen() {
        let root = Root::new("/r".into());
        let task = spec(&["echo", "{task}"], Deliver::Argv);
        assert!(check_deliverable(&root, &task, &vec![b'x'; 131_071]).is_ok());
        let e = check_deliverable(&root, &task, &vec![b'x'; 131_072]).unwrap_err().to_string();
        assert!(e.contains("131071") && e.contains("{task_file}"), "{e}");
        // Twice in one argument counts twice.
        let twice = spec(&["sh", "-c", "{task}{task}"], Deliver::Argv);
        assert!(check_deliverable(&root, &twice, &vec![b'x'; 70_000]).is_err());
    }
}
