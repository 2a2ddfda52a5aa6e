//! The server-death canary. (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;
use crate::cli::CanaryArgs;

pub fn run(ctx: &Ctx, args: CanaryArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("_canary: not implemented yet")
}
