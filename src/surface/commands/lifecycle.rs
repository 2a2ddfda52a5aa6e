//! `launch`, `stop`, `restart`: the command side of session.rs.
//!
//! `launch` (and `restart`) watch the new pane for a settle period so that a
//! program that dies at once is reported as a failure with its exit status
//! or signal, never as "started".
//!
//! Ephemeral peers are refused by `launch` and `restart`: they have no
//! standing session, and a worker started without a task would have nothing
//! to do and nothing to acknowledge. The hint points at `send`. `stop` works
//! for every peer. A stop is not a crash: the task an ephemeral peer's worker
//! was running goes back to the head of its queue with no attempt charged
//! (`ev=task-requeued reason=stopped`), or with `--fail-task` is
//! dead-lettered with reason `stopped`; `stop` says which. It holds the
//! queue's worker lock throughout, so no tick, kick or hand-over sees the
//! stopped worker's task in between and charges it as a death.
//!
//! `stop` and `restart` run from inside the peer they stop (an agent or a
//! script calling `muxvisor stop "$MUXVISOR_IDENTITY"` in its own pane)
//! would be killed with the pane's process group, or by the hang-up of its
//! terminal, half-way through. They notice (`TMUX` names the peer's socket,
//! or `MUXVISOR_IDENTITY`/`MUXVISOR_ROOT` name the peer) and carry on in a
//! child that left the pane's session and catches SIGTERM and SIGHUP, so
//! the stop (and the launch of a restart) finishes and is recorded.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::ground::output;
use crate::lifecycle::canary;
use crate::lifecycle::observe::{self, Seen};
use crate::lifecycle::session;
use crate::model::peer::{self, Identity, PeerSpec, Policy};
use crate::model::queue::Queue;
use crate::surface::cli::{LaunchArgs, RestartArgs, StopArgs};

/// How long `launch` watches a new pane before calling it started
/// (`MUXVISOR_SETTLE_MS` overrides it, for tests and slow machines).
pub const SETTLE: Duration = Duration::from_secs(1);

fn settle_time() -> Duration {
    std::env::var("MUXVISOR_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(SETTLE)
}

fn persistent_spec(ctx: &Ctx, raw: &str, verb: &str) -> Result<PeerSpec> {
    let id = Identity::parse(raw)?;
    let spec = peer::require(&ctx.root, &id)?;
    if spec.policy == Policy::Ephemeral {
        bail!(
            "{id} is an ephemeral peer: it has no standing session to {verb}; queue work for it \
             with `muxvisor send {id} TEXT` and a worker starts for each task"
        );
    }
    Ok(spec)
}

pub fn launch(ctx: &Ctx, args: LaunchArgs) -> Result<ExitCode> {
    let spec = persistent_spec(ctx, &args.id, "launch")?;
    start_and_wait(ctx, &spec, args.fresh, args.wait_ready)
}

/// What `launch` and `restart` share: launch (fresh or resuming) under
/// admission, report, and with `--wait-ready` wait for the agent.
fn start_and_wait(
    ctx: &Ctx,
    spec: &PeerSpec,
    fresh: bool,
    wait: Option<Duration>,
) -> Result<ExitCode> {
    let start = if fresh { session::Start::Fresh } else { session::Start::Program };
    let code = launch_and_report(ctx, spec, start, wait)?;
    match wait {
        Some(limit) if code == ExitCode::SUCCESS => wait_ready(ctx, spec, limit),
        _ => Ok(code),
    }
}

/// `launch --wait-ready`: look at the agent until it is ready (exit 0),
/// blocked or dead (1), or the deadline passes while it starts (75).
fn wait_ready(ctx: &Ctx, spec: &PeerSpec, limit: Duration) -> Result<ExitCode> {
    use crate::lifecycle::agent::watch::Looker;
    use crate::model::agent::classify::AgentState;
    let id = &spec.identity;
    let deadline = std::time::Instant::now() + limit;
    let mut looker = Looker::for_loop();
    let look = loop {
        let look = looker.look_and_record(&ctx.root, spec)?;
        match look.view.state {
            AgentState::Ready | AgentState::Blocked | AgentState::Unknown => break look,
            AgentState::Starting | AgentState::Busy => {}
        }
        if std::time::Instant::now() >= deadline {
            break look;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let v = &look.view;
    let pid = observe::observe(&ctx.root, id, Duration::from_secs(2))?.pane_pid;
    let (code, human) = match v.state {
        AgentState::Ready => (0, format!("{id} is ready")),
        AgentState::Blocked => {
            let why = v.reason.clone().unwrap_or_else(|| "unknown".into());
            let mut msg = format!("{id} is blocked ({why}): a person is needed");
            for l in &v.lines {
                msg.push_str(&format!("\n  screen: {l}"));
            }
            msg.push_str(&format!(
                "\nanswer it with `muxvisor attach {id}` (or `muxvisor send {id} --keys ...`)"
            ));
            (1, msg)
        }
        AgentState::Unknown => (
            1,
            format!(
                "{id}'s program is not running (it died before it was ready); see `muxvisor \
                 screen {id}` and `muxvisor events --id {id}`"
            ),
        ),
        AgentState::Starting | AgentState::Busy => (
            75,
            format!(
                "{id} was still {} after {}; it may need longer (--wait-ready DUR) or \
                 ready/busy patterns that match its screen (`muxvisor screen {id}`)",
                v.state,
                crate::ground::duration::format(limit)
            ),
        ),
    };
    if ctx.json {
        output::json(&json!({
            "identity": id,
            "started": true,
            "already": false,
            "pid": pid,
            "agent": {"state": v.state, "reason": v.reason, "screen": v.lines},
        }))?;
    } else if code == 0 {
        output::line(&human)?;
    }
    if code != 0 {
        output::warn(&human);
    }
    Ok(ExitCode::from(code))
}

/// Launch under admission (see `admission`): a launch held for capacity or
/// memory is recorded (`queued`, `ev=admission-held`) and left to the tick,
/// exit 0; with `--wait-ready`, waited for up to its deadline (then 75).
fn admitted(
    ctx: &Ctx,
    spec: &PeerSpec,
    start: session::Start,
    wait: Option<Duration>,
) -> Result<std::result::Result<session::Launched, String>> {
    let root = &ctx.root;
    let limits = crate::lifecycle::admission::Limits::from_env()?.with_flags(None, None)?;
    let deadline = std::time::Instant::now() + wait.unwrap_or_default();
    loop {
        let guard = crate::lifecycle::admission::lock(root)?;
        match crate::lifecycle::admission::held(root, spec, &limits)? {
            None => {
                let l = session::launch(root, spec, start)?;
                drop(guard);
                return Ok(Ok(l));
            }
            Some(why) => {
                let fresh = start == session::Start::Fresh;
                crate::lifecycle::admission::note_held(root, &spec.identity, &why, fresh)?;
                drop(guard);
                if wait.is_none()
                    && let Err(e) = crate::lifecycle::admission::ensure_admitter(root, &limits)
                {
                    output::warn(format!(
                        "{} is queued, but the admitter that launches it when there is room \
                         could not start ({e:#}); the next tick will",
                        spec.identity
                    ));
                }
                if std::time::Instant::now() >= deadline {
                    return Ok(Err(why));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn launch_and_report(
    ctx: &Ctx,
    spec: &PeerSpec,
    start: session::Start,
    wait: Option<Duration>,
) -> Result<ExitCode> {
    let id = &spec.identity;
    let print = wait.is_none();
    let l = match admitted(ctx, spec, start, wait)? {
        Ok(l) => l,
        Err(why) => {
            let human = format!(
                "{id} is queued: {why}; the tick launches it when that allows (see `muxvisor \
                 status {id}`)"
            );
            if ctx.json {
                output::json(&json!({
                    "identity": id, "started": false, "already": false, "pid": null,
                    "queued": true, "reason": why,
                }))?;
            } else if print {
                output::line(&human)?;
            }
            if wait.is_some() {
                output::warn(&human);
                return Ok(ExitCode::from(crate::ground::exit::Exit::TempFail.code()));
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if l.already {
        // A running peer may predate its canary (or have lost it): retrofit.
        if let Err(e) = canary::ensure(&ctx.root, id) {
            output::warn(format!("{id}: could not start the server-death canary: {e:#}"));
        }
        let pid = l.pane_pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
        if !print {
            return Ok(ExitCode::SUCCESS);
        }
        return report(
            ctx,
            id,
            false,
            true,
            l.pane_pid,
            None,
            format!("{id} is already running (pid {pid})"),
        );
    }
    match session::settle(&ctx.root, id, settle_time())? {
        None if !print => Ok(ExitCode::SUCCESS),
        None => {
            let pid = l.pane_pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
            report(ctx, id, true, false, l.pane_pid, None, format!("launched {id} (pid {pid})"))
        }
        Some(death) => {
            let msg = format!(
                "{id} died during launch ({}); see `muxvisor screen {id}` and `muxvisor logs {id}`",
                death.describe()
            );
            report(ctx, id, false, false, l.pane_pid, Some((&death, msg.clone())), msg)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    ctx: &Ctx,
    id: &Identity,
    started: bool,
    already: bool,
    pid: Option<i32>,
    death: Option<(&session::Death, String)>,
    human: String,
) -> Result<ExitCode> {
    if ctx.json {
        let mut v = json!({"identity": id, "started": started, "already": already, "pid": pid});
        if let Some((d, msg)) = &death {
            v["exit_status"] = json!(d.status);
            v["exit_signal"] = json!(d.signal);
            v["error"] = json!(msg);
        }
        output::json(&v)?;
    } else if death.is_none() {
        output::line(&human)?;
    }
    if death.is_some() {
        output::warn(&human);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    // Stopping needs only the socket: a server whose spec was removed or
    // corrupted must still be stoppable.
    let spec = match peer::require(&ctx.root, &id) {
        Ok(spec) => Some(spec),
        Err(e) => {
            if std::fs::symlink_metadata(ctx.root.socket(&id)).is_err() {
                return Err(e);
            }
            output::warn(format!("{e:#}; stopping the server on its socket anyway"));
            None
        }
    };
    if let Some(code) = outlive_the_pane(&ctx.root, &id)? {
        return Ok(code);
    }
    let q = match &spec {
        Some(s) if s.policy == Policy::Ephemeral => Queue::open_existing(&ctx.root, &id)?,
        _ => None,
    };
    let worker = match &q {
        Some(q) => Some(q.worker_lock_within(session::LOCK_WAIT + args.grace)?),
        None => None,
    };
    let s = session::stop(&ctx.root, &id, args.grace, "stop")?;
    let tasks = match &q {
        Some(q) => settle_stopped_tasks(&ctx.root, q, args.fail_task)?,
        None => Vec::new(),
    };
    let task = tasks.first();
    drop(worker);
    if ctx.json {
        output::json(&json!({
            "identity": id,
            "stopped": true,
            "was_running": s.was_running,
            "how": if s.was_running { Some(s.how) } else { None },
            "grace_ms": s.grace_ms,
            "task": task.map(|t| &t.0),
            "task_outcome": task.map(|t| t.1),
            "tasks": tasks.iter().map(|t| &t.0).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut line = if s.was_running {
            format!("stopped {id} ({})", s.how)
        } else {
            format!("{id} was not running")
        };
        let ids = tasks.iter().map(|t| t.0.as_str()).collect::<Vec<_>>().join(", ");
        let (s, are, was) = if tasks.len() > 1 { ("s", "are", "were") } else { ("", "is", "was") };
        match task {
            Some((_, "requeued")) => line.push_str(&format!(
                "; task{s} {ids} {are} back at the head of its queue, no attempt charged (the \
                 next worker runs it; `--fail-task` dead-letters it instead)"
            )),
            Some(_) => line.push_str(&format!("; task{s} {ids} {was} dead-lettered (stopped)")),
            None => {}
        }
        output::line(line)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The tasks a stopped peer's workers were running (one per worker slot,
/// in queue order): each back at the head uncharged (`requeued`), or
/// dead-lettered with reason `stopped` (`dead`). The caller holds the
/// worker lock and the workers are gone.
fn settle_stopped_tasks(
    root: &crate::ground::paths::Root,
    q: &Queue,
    fail: bool,
) -> Result<Vec<(String, &'static str)>> {
    let mut out = Vec::new();
    for c in q.running_all()? {
        let task = c.task().to_string();
        if fail {
            q.dead_letter(&task, "stopped")?;
            out.push((task, "dead"));
            continue;
        }
        q.release(&task)?;
        let _ = crate::model::logfmt::Event::new("task-requeued")
            .id(q.identity())
            .kv("task", &task)
            .kv("attempt", c.header.attempt.saturating_sub(1))
            .kv("reason", "stopped")
            .append_to(&root.lifecycle_log());
        out.push((task, "requeued"));
    }
    Ok(out)
}

/// True when this process runs inside `id`'s own tmux server: in its pane,
/// or a descendant of the pane's program. Cheap: the environment tmux and
/// muxvisor give a pane, no process scan.
fn inside(root: &crate::ground::paths::Root, id: &Identity) -> bool {
    let socket = root.socket(id);
    let by_tmux = std::env::var_os("TMUX").is_some_and(|t| {
        let (t, s) = (t.as_encoded_bytes(), socket.as_os_str().as_encoded_bytes());
        t.starts_with(s) && t.get(s.len()) == Some(&b',')
    });
    let by_env = std::env::var("MUXVISOR_IDENTITY").is_ok_and(|v| v == id.as_str())
        && std::env::var_os("MUXVISOR_ROOT")
            .is_some_and(|r| std::path::Path::new(&r) == root.dir());
    by_tmux || by_env
}

extern "C" fn caught(_: libc::c_int) {}

/// Run from inside the peer being stopped: fork a child that leaves the
/// pane's session (so neither the stop's signals to the pane's group nor
/// the hang-up of its terminal reach it) and catches SIGTERM and SIGHUP
/// (caught, not ignored: a program it launches gets the defaults back).
/// The child returns `None` and does the work; the parent waits for it and
/// returns its exit status, unless the stop kills the parent first. Outside
/// the peer: `None` at once.
fn outlive_the_pane(root: &crate::ground::paths::Root, id: &Identity) -> Result<Option<ExitCode>> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork, setsid};
    if !inside(root, id) {
        return Ok(None);
    }
    // SAFETY: a command runs only its main thread when it gets here.
    match unsafe { fork() }.map_err(anyhow::Error::from)? {
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(Some(ExitCode::from(code as u8))),
                Ok(WaitStatus::Signaled(..)) => return Ok(Some(ExitCode::from(1))),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        },
        ForkResult::Child => {
            let _ = setsid();
            let h =
                SigAction::new(SigHandler::Handler(caught), SaFlags::SA_RESTART, SigSet::empty());
            for sig in [Signal::SIGTERM, Signal::SIGHUP] {
                // SAFETY: the handler does nothing at all.
                unsafe { sigaction(sig, &h) }?;
            }
            Ok(None)
        }
    }
}

pub fn restart(ctx: &Ctx, args: RestartArgs) -> Result<ExitCode> {
    let spec = persistent_spec(ctx, &args.id, "restart")?;
    let id = &spec.identity;
    if let Some(code) = outlive_the_pane(&ctx.root, id)? {
        return Ok(code);
    }
    let obs = observe::observe(&ctx.root, id, Duration::from_secs(2))?;
    if obs.seen != Seen::NoSocket {
        let s = session::stop(&ctx.root, id, args.grace, "restart")?;
        if s.was_running && !ctx.json {
            output::line(format!("stopped {id} ({})", s.how))?;
        }
    }
    // `launch` clears `failed`: an explicit restart re-arms the restart budget.
    start_and_wait(ctx, &spec, args.fresh, args.wait_ready)
}
