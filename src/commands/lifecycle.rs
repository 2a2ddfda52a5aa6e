//! `launch`, `stop`, `restart`: the command side of session.rs.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn launch(ctx: &Ctx, args: crate::cli::IdArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("launch: not implemented yet")
}

pub fn stop(ctx: &Ctx, args: crate::cli::StopArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("stop: not implemented yet")
}

pub fn restart(ctx: &Ctx, args: crate::cli::StopArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("restart: not implemented yet")
}
