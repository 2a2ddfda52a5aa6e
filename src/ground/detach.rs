//! Helpers that outlive their caller. muxvisor has no daemon: a canary, a
//! courier, the admitter, the notification runner and the hand-over are each
//! the muxvisor binary, started by whoever needs one and detached from it.
//!
//! - [`spawn_detached`] runs `muxvisor --root ROOT ARGS...` (a command that
//!   detaches at once) with no stdio and no `TMUX`, and waits (at most 5 s)
//!   for its parent half to exit, so the caller is never tied to it.
//! - [`detach`] is that first half: fork, the parent returns and exits, the
//!   child leaves the caller's session and process group (a tmux server
//!   that exits kills its jobs) with stdio on /dev/null and goes on.
//!
//! Primitives only: they know the binary and the root, nothing of peers.

use anyhow::{Context, Result};

use crate::ground::paths::Root;

/// Run `muxvisor --root ROOT ARGS...`, a command that [`detach`]es at once
/// (canary, courier, admitter, notifier), with no stdio and no `TMUX`, and
/// wait (at most 5 s) for its parent half to exit. `what` names it in errors.
pub fn spawn_detached(root: &Root, args: &[&str], what: &str) -> Result<std::process::ExitStatus> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe()
        .with_context(|| format!("finding the muxvisor binary for {what}"))?;
    let child = Command::new(exe)
        .arg("--root")
        .arg(root.dir())
        .args(args)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    match crate::ground::proc::wait_deadline(child, std::time::Duration::from_secs(5)) {
        Ok(Some(st)) => Ok(st),
        Ok(None) => anyhow::bail!("{what} did not detach within 5 s"),
        Err(e) => Err(e).with_context(|| format!("waiting for {what} to detach")),
    }
}

/// Fork; the parent returns `false` (and exits, so tmux reaps its job at
/// once), the child leaves tmux's session and process group (a server
/// that exits kills its jobs) with stdio on /dev/null and returns `true`.
pub fn detach() -> Result<bool> {
    use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid};
    // SAFETY: called while this process runs only its main thread.
    match unsafe { fork() }.context("fork for a detached process")? {
        ForkResult::Parent { .. } => Ok(false),
        ForkResult::Child => {
            let _ = setsid();
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .context("opening /dev/null")?;
            let _ = dup2_stdin(&null);
            let _ = dup2_stdout(&null);
            let _ = dup2_stderr(&null);
            Ok(true)
        }
    }
}
