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
use crate::cli::{IdArgs, StopArgs};
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

pub fn launch(ctx: &Ctx, args: IdArgs) -> Result<ExitCode> {
    let spec = persistent_spec(ctx, &args.id, "launch")?;
    launch_and_report(ctx, &spec)
}

fn launch_and_report(ctx: &Ctx, spec: &PeerSpec) -> Result<ExitCode> {
    let id = &spec.identity;
    let l = session::launch(&ctx.root, spec, session::Start::Program)?;
    if l.already {
        // A running peer may predate its canary (or have lost it): retrofit.
        if let Err(e) = canary::ensure(&ctx.root, id) {
            output::warn(format!("{id}: could not start the server-death canary: {e:#}"));
        }
        let pid = l.pane_pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
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

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<ExitCode> {
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
    launch_and_report(ctx, &spec)
}
