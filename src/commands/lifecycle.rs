//! `launch`, `stop`, `restart`: the command side of session.rs.
//!
//! `launch` (and `restart`) watch the new pane for a settle period so that a
//! program that dies at once is reported as a failure with its exit status
//! or signal, never as "started".
//!
//! Ephemeral peers are refused by `launch` and `restart`: they have no
//! standing session, and a worker started without a task would have nothing
//! to do and nothing to acknowledge. The hint points at `send`. `stop` works
//! for every peer (it stops a running worker; the tick then retries its task).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use crate::Ctx;
use crate::canary;
use crate::cli::{LaunchArgs, RestartArgs, StopArgs};
use crate::observe::{self, Seen};
use crate::output;
use crate::peer::{self, Identity, PeerSpec, Policy};
use crate::session;

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
    use crate::agent::state::AgentState;
    use crate::agent::watch::Looker;
    let id = &spec.identity;
    let deadline = std::time::Instant::now() + limit;
    let mut looker = Looker::for_loop();
    let look = loop {
        let look = looker.look(&ctx.root, spec, true)?;
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
                crate::duration::format(limit)
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
    let limits = crate::admission::Limits::from_env()?.with_flags(None, None)?;
    let deadline = std::time::Instant::now() + wait.unwrap_or_default();
    loop {
        let guard = crate::admission::lock(root)?;
        match crate::admission::held(root, spec, &limits)? {
            None => {
                let l = session::launch(root, spec, start)?;
                drop(guard);
                return Ok(Ok(l));
            }
            Some(why) => {
                let fresh = start == session::Start::Fresh;
                crate::admission::note_held(root, &spec.identity, &why, fresh)?;
                drop(guard);
                if wait.is_none()
                    && let Err(e) = crate::admission::ensure_admitter(root, &limits)
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
                return Ok(ExitCode::from(crate::exit::Exit::TempFail.code()));
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
    if let Err(e) = peer::require(&ctx.root, &id) {
        if std::fs::symlink_metadata(ctx.root.socket(&id)).is_err() {
            return Err(e);
        }
        output::warn(format!("{e:#}; stopping the server on its socket anyway"));
    }
    let s = session::stop(&ctx.root, &id, args.grace, "stop")?;
    if ctx.json {
        output::json(&json!({
            "identity": id,
            "stopped": true,
            "was_running": s.was_running,
            "how": if s.was_running { Some(s.how) } else { None },
            "grace_ms": s.grace_ms,
        }))?;
    } else if s.was_running {
        output::line(format!("stopped {id} ({})", s.how))?;
    } else {
        output::line(format!("{id} was not running"))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restart(ctx: &Ctx, args: RestartArgs) -> Result<ExitCode> {
    let spec = persistent_spec(ctx, &args.id, "restart")?;
    let id = &spec.identity;
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
