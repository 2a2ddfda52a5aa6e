//! The internal entry points: the `_name` commands that muxvisor starts
//! for itself (tmux runs `_hook`, `_pane-log` and `_run` inside a peer's
//! server; `_canary`, `_courier`, `_admit` and `_notify` are detached
//! helpers). Each turns its clap arguments into plain values and calls the
//! module that owns the work, which never sees a clap type. Where the work
//! says that a hand-over is due (a runner died, or lost its server), it is
//! run here: the hand-over is the tick's per-peer step
//! (`tick::demand`), which the lifecycle modules must not call.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::ground::detach;
use crate::ground::exit::Exit;
use crate::ground::paths::Root;
use crate::lifecycle::hook::{self, AfterDeath};
use crate::lifecycle::runner::{self, Ended};
use crate::lifecycle::{admission, agent, canary, notify};
use crate::model::peer::Identity;
use crate::surface::cli::{AdmitArgs, CanaryArgs, HookArgs, IdArgs, RunArgs};
use crate::tick;

/// `_hook <event> <id> ...`: only `pane-died` does anything. It runs inside
/// tmux, so it never fails loudly: an error is a best-effort note on stderr
/// (which tmux discards), and the status is 0.
pub fn hook(ctx: &Ctx, args: HookArgs) -> Result<ExitCode> {
    if let Err(e) = pane_died(&ctx.root, &args) {
        eprintln!("muxvisor _hook: {}", crate::ground::output::inert(&format!("{e:#}")));
    }
    Ok(ExitCode::SUCCESS)
}

fn pane_died(root: &Root, args: &HookArgs) -> Result<()> {
    if args.event != "pane-died" {
        return Ok(());
    }
    let id = Identity::parse(&args.id)?;
    if hook::pane_died(root, &id, &args.status, &args.signal, &args.pid)? == AfterDeath::HandOver
        && detach::detach()?
    {
        crate::ground::fault::point("handover-detached");
        tick::demand::handover(root, &id)?;
    }
    Ok(())
}

/// `_pane-log <id>`: copy the pane's output (stdin) to its log until EOF.
pub fn pane_log(ctx: &Ctx, args: IdArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    hook::copy_pane_log(&ctx.root, &id)?;
    Ok(ExitCode::SUCCESS)
}

/// `_run <id> [--slot k]`: an ephemeral peer's runner (of worker slot k).
/// A failure was told on the pane and in the log already: the status alone
/// says it (1).
pub fn run(ctx: &Ctx, args: RunArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    match runner::run(&ctx.root, &id, args.slot)? {
        Ended::Done => Ok(ExitCode::SUCCESS),
        Ended::Failed => Ok(Exit::Failure.into()),
        Ended::HandOver => {
            // The parent half returns at once; the detached child hands over.
            let handed = detach::detach().and_then(|child| match child {
                true => tick::demand::handover(&ctx.root, &id),
                false => Ok(()),
            });
            match handed {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    runner::failed(&ctx.root, &id, &e);
                    Ok(Exit::Failure.into())
                }
            }
        }
    }
}

/// `_canary <id> [--foreground]`.
pub fn canary(ctx: &Ctx, args: CanaryArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    canary::run(&ctx.root, &id, args.foreground)?;
    Ok(ExitCode::SUCCESS)
}

/// `_courier <id>`.
pub fn courier(ctx: &Ctx, args: IdArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    agent::mailbox::run_courier(&ctx.root, &id)?;
    Ok(ExitCode::SUCCESS)
}

/// `_admit [--max-starting N] [--min-mem-available BYTES]`.
pub fn admit(ctx: &Ctx, args: AdmitArgs) -> Result<ExitCode> {
    let limits = admission::Limits {
        max_starting: args.max_starting,
        min_mem_available: args.min_mem_available,
    };
    admission::run_admitter(&ctx.root, limits)?;
    Ok(ExitCode::SUCCESS)
}

/// `_notify`.
pub fn notify(ctx: &Ctx) -> Result<ExitCode> {
    notify::run(&ctx.root)?;
    Ok(ExitCode::SUCCESS)
}
