//! `doctor`: check the installation; exit 1 if anything is wrong.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let _ = ctx;
    anyhow::bail!("run: not implemented yet")
}
