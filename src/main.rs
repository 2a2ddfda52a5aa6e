//! The `muxvisor` binary: parse, run, report. Everything else lives in the library.
//!
//! A C `main` rather than a Rust one: std's runtime start-up is skipped, and
//! `ground::start` does the part of it muxvisor needs (its module doc says
//! what, and what that saves).
#![no_main]

use std::process::ExitCode;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    muxvisor::ground::start::init();
    muxvisor::ground::start::finish(run())
}

fn run() -> ExitCode {
    muxvisor::ground::trace::mark("main");
    let cli = muxvisor::surface::cli::parse();
    muxvisor::ground::trace::mark("parsed");
    match muxvisor::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (`muxvisor status | head -1`) is not an error.
            if muxvisor::ground::exit::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            muxvisor::ground::output::warn(format!("{err:#}"));
            muxvisor::ground::exit::code_for(&err).into()
        }
    }
}
