//! muxvisor: keep long-running interactive programs alive and accountable,
//! each in its own tmux server, and feed short-lived workers from a durable
//! on-disk FIFO. `run` only dispatches; each command lives in
//! `surface/commands/`.
//!
//! The crate is a house in six layers, one folder each, from the ground up.
//! A layer imports only the layers below it (ARCHITECTURE.md says why):
//!
//! - `ground/`: OS and filesystem primitives (paths, fsutil, proc, exit,
//!   detach...). Knows nothing of peers; imports nothing above.
//! - `model/`: what the files under the root mean (peers, peer state, the
//!   queue, log lines and events, agent presets and classifier). Imports
//!   the ground.
//! - `tmux/`: the only code that runs tmux. Imports the model and the ground.
//! - `lifecycle/`: what happens to a live peer (session, canary, runner,
//!   mailbox, notify...). Imports tmux, the model and the ground; never the
//!   tick, never clap types.
//! - `tick/`: the supervise tick, observe -> decide -> act. Imports the
//!   lifecycle and everything below.
//! - `surface/`: clap types, the commands, the manual, service files.
//!   Imports any layer below; nothing below imports it.

pub mod ground;
pub mod lifecycle;
pub mod model;
pub mod surface;
pub mod tick;
pub mod tmux;

use std::process::ExitCode;

use anyhow::Result;

use ground::trace;
use lifecycle::notify;
use model::{logfmt, peer};
use surface::cli::{Cli, Command};
use surface::commands::{self, Ctx};

/// The identity a command line names, if any.
fn named_identity(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Add(a) => Some(&a.id),
        Command::Rm(a) => Some(&a.id),
        Command::Attach(a) | Command::PaneLog(a) | Command::Courier(a) => Some(&a.id),
        Command::Run(a) => Some(&a.id),
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
    let root = if preview {
        commands::unopened_root(cli.root.clone())?
    } else {
        commands::open_root(cli.root.clone())?
    };
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
