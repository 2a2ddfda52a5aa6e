//! muxvisor: keep long-running interactive programs alive and accountable,
//! each in its own tmux server, and feed short-lived workers from a durable
//! on-disk FIFO. `run` only dispatches; each command lives in `commands/`.

pub mod canary;
pub mod cli;
pub mod commands;
pub mod duration;
pub mod exit;
pub mod fsutil;
pub mod hook;
pub mod logfmt;
pub mod observe;
pub mod output;
pub mod paths;
pub mod peer;
pub mod queue;
pub mod session;
pub mod state;
pub mod supervise;
pub mod tmux;
pub mod worker;

use std::process::ExitCode;

use anyhow::{Context, Result};

use cli::{Cli, Command};
use paths::Root;

/// What every command gets: the opened root and the output mode.
#[derive(Debug)]
pub struct Ctx {
    pub root: Root,
    pub json: bool,
}

/// Open the root chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME.
pub fn open_root(flag: Option<std::path::PathBuf>) -> Result<Root> {
    let dir = paths::resolve_root(
        flag,
        std::env::var_os("MUXVISOR_ROOT"),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
    .context("cannot choose a state root: set --root, MUXVISOR_ROOT or HOME")?;
    fsutil::open_root(&dir)
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Everything muxvisor creates is private, whatever the caller's umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if let Command::Completions(a) = &cli.command {
        return commands::completions::run(a);
    }
    let ctx = Ctx { root: open_root(cli.root.clone())?, json: cli.json };
    match cli.command {
        Command::Add(a) => commands::peers::add(&ctx, a),
        Command::Rm(a) => commands::peers::rm(&ctx, a),
        Command::Launch(a) => commands::lifecycle::launch(&ctx, a),
        Command::Stop(a) => commands::lifecycle::stop(&ctx, a),
        Command::Restart(a) => commands::lifecycle::restart(&ctx, a),
        Command::Send(a) => commands::send::run(&ctx, a),
        Command::Status(a) => commands::status::run(&ctx, a),
        Command::Queue(a) => commands::queue::run(&ctx, a),
        Command::Supervise(a) => commands::supervise::run(&ctx, a),
        Command::Screen(a) => commands::view::screen(&ctx, a),
        Command::Logs(a) => commands::view::logs(&ctx, a),
        Command::Events(a) => commands::events::run(&ctx, a),
        Command::Attach(a) => commands::view::attach(&ctx, a),
        Command::Clean(a) => commands::clean::run(&ctx, a),
        Command::Doctor => commands::doctor::run(&ctx),
        Command::Service(a) => commands::service::run(&ctx, a),
        Command::Hook(a) => hook::run_hook(&ctx, a),
        Command::Canary(a) => canary::run(&ctx, a),
        Command::PaneLog(a) => hook::run_pane_log(&ctx, a),
        Command::Completions(_) => unreachable!("handled before the root is opened"),
    }
}
