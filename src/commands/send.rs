//! `send`: queue a task for an ephemeral peer or type into a persistent one.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn run(ctx: &Ctx, args: crate::cli::SendArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("run: not implemented yet")
}
