//! `supervise`: the tick, once or in a loop.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn run(ctx: &Ctx, args: crate::cli::SuperviseArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("run: not implemented yet")
}
