//! `add` and `rm`: register, update and unregister peers.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn add(ctx: &Ctx, args: crate::cli::AddArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("add: not implemented yet")
}

pub fn rm(ctx: &Ctx, args: crate::cli::RmArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("rm: not implemented yet")
}
