//! `supervise`: one tick (`--once`) or a loop of ticks every `--interval`
//! until SIGTERM/SIGINT, which let the tick in progress finish. The tick
//! itself lives in `crate::tick`.
//!
//! Without tmux nothing can be supervised: both forms exit 69 at once, as
//! every command that needs tmux does, rather than report a tick of errors
//! with exit 0.
//!
//! A tick that finds another one running is not an error (cron and a manual
//! run overlap): it says `another tick is running` and exits 0 (with
//! `--json`, it prints `[]` and says so on stderr).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use super::Ctx;
use crate::ground::output;
use crate::surface::cli::SuperviseArgs;
use crate::tick::{self, TickConfig, TickResult};

const BUSY: &str = "another tick is running";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(ctx: &Ctx, args: SuperviseArgs) -> Result<ExitCode> {
    crate::tmux::tmux_path().map_err(crate::tmux::TmuxError::into_anyhow)?;
    let admission = crate::lifecycle::admission::Limits::from_env()?
        .with_flags(args.max_starting, args.min_mem_available.as_deref())?;
    if let Err(e) = crate::lifecycle::admission::record_limits(&ctx.root, &admission) {
        // The pools then keep the limits of their own environment.
        output::warn(format!("recording the admission limits for agent pools: {e:#}"));
    }
    let cfg = TickConfig {
        admission,
        retention: args.retention,
        retention_count: args.retention_count,
        ..TickConfig::default()
    };
    if args.once {
        once(ctx, &cfg)?;
        return Ok(ExitCode::SUCCESS);
    }
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }
            .with_context(|| format!("installing a {sig} handler"))?;
    }
    while !STOP.load(Ordering::SeqCst) {
        let started = Instant::now();
        if let Err(e) = once(ctx, &cfg) {
            // One bad tick must not end the loop; the next one may succeed.
            output::warn(format!("tick failed: {e:#}"));
        }
        sleep_until(started + args.interval);
    }
    Ok(ExitCode::SUCCESS)
}

/// Sleep in short slices so that a signal ends the wait promptly.
fn sleep_until(when: Instant) {
    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= when {
            return;
        }
        std::thread::sleep((when - now).min(Duration::from_millis(100)));
    }
}

fn once(ctx: &Ctx, cfg: &TickConfig) -> Result<()> {
    match tick::tick(&ctx.root, cfg)? {
        None if ctx.json => {
            output::warn(BUSY);
            output::json(&Vec::<tick::Report>::new())
        }
        None => output::line(BUSY),
        Some(r) => print(ctx, &r),
    }
}

fn print(ctx: &Ctx, r: &TickResult) -> Result<()> {
    if ctx.json {
        return output::json(&r.reports);
    }
    for l in tick::human_lines(r) {
        output::line(l)?;
    }
    Ok(())
}
