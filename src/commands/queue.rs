//! `queue`: inspect and manage a peer's FIFO.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn run(ctx: &Ctx, args: crate::cli::QueueArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("run: not implemented yet")
}
