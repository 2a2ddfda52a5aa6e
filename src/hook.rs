//! Processes tmux starts on our behalf: the `pane-died` hook (`_hook`), which
//! records `ev=session-exit`, and the pane-output copier (`_pane-log`), which
//! keeps `logs/panes/<id>.log` under its size cap. (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;
use crate::cli::{HookArgs, IdArgs};

pub fn run_hook(ctx: &Ctx, args: HookArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("_hook: not implemented yet")
}

pub fn run_pane_log(ctx: &Ctx, args: IdArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("_pane-log: not implemented yet")
}
