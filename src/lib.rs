//! muxvisor: keep long-running interactive programs alive and accountable,
//! each in its own tmux server, and feed short-lived workers from a durable
//! on-disk FIFO. `run` only dispatches; each command lives in `commands/`.

pub mod admission;
pub mod agent;
pub mod ansi;
pub mod canary;
pub mod cli;
pub mod commands;
pub mod detach;
pub mod duration;
pub mod events;
pub mod exit;
pub mod fault;
pub mod fsutil;
pub mod ghosts;
pub mod hook;
pub mod logfmt;
pub mod manual;
pub mod notify;
pub mod observe;
pub mod output;
pub mod paths;
pub mod peer;
pub mod peer_env;
pub mod proc;
pub mod queue;
pub mod rotate;
pub mod runner;
pub mod service;
pub mod session;
pub mod state;
pub mod strays;
pub mod supervise;
pub mod tail;
pub mod tmux;
pub mod trace;
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

/// The root directory chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME
/// (not opened, not checked).
pub fn root_dir(flag: Option<std::path::PathBuf>) -> Result<std::path::PathBuf> {
    paths::resolve_root(
        flag,
        std::env::var_os("MUXVISOR_ROOT"),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
    .context("cannot choose a state root: set --root, MUXVISOR_ROOT or HOME")
}

/// The root chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME, spelled as
/// every command opens it (`link/` is `link`), NOT opened: nothing is
/// created or checked (for `doctor`, and for previews, which write nothing).
pub fn unopened_root(flag: Option<std::path::PathBuf>) -> Result<Root> {
    let dir = root_dir(flag)?;
    let cwd = if dir.is_absolute() {
        std::path::PathBuf::new()
    } else {
        std::env::current_dir().context("finding the current directory")?
    };
    Ok(Root::new(paths::root_spelling(&dir, &cwd)))
}

/// Open (create and check) the root chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME.
pub fn open_root(flag: Option<std::path::PathBuf>) -> Result<Root> {
    fsutil::open_root(&root_dir(flag)?)
}

/// The identity a command line names, if any.
fn named_identity(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Add(a) => Some(&a.id),
        Command::Rm(a) => Some(&a.id),
        Command::Attach(a) | Command::PaneLog(a) | Command::Run(a) | Command::Courier(a) => {
            Some(&a.id)
        }
        Command::Launch(a) => Some(&a.id),
        Command::Mark(a) => Some(&a.id),
        Command::Stop(a) => Some(&a.id),
        Command::Restart(a) => Some(&a.id),
        Command::Send(a) => Some(&a.id),
        Command::Status(a) => a.id.as_deref(),
        Command::Queue(a) => Some(a.identity()),
        Command::Screen(a) => Some(&a.id),
        Command::Logs(a) => Some(&a.id),
        Command::Events(a) => a.id.as_deref(),
        Command::Hook(a) => Some(&a.id),
        Command::Canary(a) => Some(&a.id),
        Command::Supervise(_)
        | Command::Clean(_)
        | Command::Doctor
        | Command::Notify
        | Command::Admit(_)
        | Command::Service(_)
        | Command::Completions(_) => None,
    }
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Every event written from here on wakes the notifier if it should: the
    // log writer (model) calls the notifier (lifecycle) only through this.
    logfmt::on_append(notify::appended);
    // Everything muxvisor creates is private, whatever the caller's umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if let Command::Completions(a) = &cli.command {
        return commands::completions::run(a);
    }
    // doctor diagnoses the root, so it must not refuse to start on a bad one.
    if let Command::Doctor = &cli.command {
        return commands::doctor::run(cli.root.clone(), cli.json);
    }
    // A hostile identity is refused before any file or tmux operation, even
    // before the root is created (SPEC §1), the same way for every command:
    // exit 1, as for any other refusal of an argument's value.
    if let Some(raw) = named_identity(&cli.command) {
        peer::Identity::parse(raw)?;
    }
    // A preview (`service install|uninstall --print`) writes nothing, not
    // even the root.
    let preview = matches!(&cli.command, Command::Service(a) if a.print);
    let root =
        if preview { unopened_root(cli.root.clone())? } else { open_root(cli.root.clone())? };
    let ctx = Ctx { root, json: cli.json };
    trace::mark("root");
    match cli.command {
        Command::Add(a) => commands::peers::add(&ctx, *a),
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
        Command::Service(a) => commands::service::run(&ctx, a),
        Command::Hook(a) => commands::internal::hook(&ctx, a),
        Command::Canary(a) => commands::internal::canary(&ctx, a),
        Command::PaneLog(a) => commands::internal::pane_log(&ctx, a),
        Command::Run(a) => commands::internal::run(&ctx, a),
        Command::Courier(a) => commands::internal::courier(&ctx, a),
        Command::Mark(a) => commands::mark::run(&ctx, a),
        Command::Notify => commands::internal::notify(&ctx),
        Command::Admit(a) => commands::internal::admit(&ctx, a),
        Command::Completions(_) | Command::Doctor => {
            unreachable!("handled before the root is opened")
        }
    }
}

/// Helpers for the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Report that `test` was skipped and why, visibly (as the integration
    /// suite's `fixture::skip`): libtest captures only the `print!` and
    /// `eprint!` macros, not a write to the stderr descriptor.
    pub fn skip(test: &str, reason: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {reason}");
    }
}
