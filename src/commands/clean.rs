//! `clean`: remove ghosts and rotate logs.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn run(ctx: &Ctx, args: crate::cli::CleanArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("run: not implemented yet")
}
