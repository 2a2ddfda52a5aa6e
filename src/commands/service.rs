//! `service`: install the periodic tick under launchd, systemd or cron.
//! (Being built.)

use std::process::ExitCode;

use anyhow::Result;

use crate::Ctx;

pub fn run(ctx: &Ctx, args: crate::cli::ServiceArgs) -> Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("run: not implemented yet")
}
