//! The `muxvisor` binary: parse, run, report. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    muxvisor::trace::mark("main");
    let cli = muxvisor::cli::parse();
    muxvisor::trace::mark("parsed");
    match muxvisor::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (`muxvisor status | head -1`) is not an error.
            if muxvisor::exit::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            muxvisor::output::warn(format!("{err:#}"));
            muxvisor::exit::code_for(&err).into()
        }
    }
}
