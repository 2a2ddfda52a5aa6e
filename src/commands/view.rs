//! `screen`, `logs`, `attach`: look at a peer's pane.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn screen(ctx: &Ctx, args: crate::cli::ScreenArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("screen: not implemented yet")
}

pub fn logs(ctx: &Ctx, args: crate::cli::LogsArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("logs: not implemented yet")
}

pub fn attach(ctx: &Ctx, args: crate::cli::IdArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("attach: not implemented yet")
}
