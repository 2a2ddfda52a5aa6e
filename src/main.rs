//! The `muxvisor` binary: parse, run, report. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
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
