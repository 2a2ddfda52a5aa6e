//! `completions <shell>`: print a completion script generated from the CLI.
//! The same function renders the checked-in scripts under `completions/`
//! (the `docs` test compares them), so what users install and what the binary
//! prints never differ.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::surface::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&script(args.shell))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`. Internal `_` commands (hook, canary,
/// pane log) are left out: clap_complete offers hidden subcommands, and a
/// user tabbing through `muxvisor <TAB>` should never be shown them.
pub fn script(shell: Shell) -> Vec<u8> {
    let full = Cli::command();
    let mut cmd = clap::Command::new("muxvisor")
        .bin_name("muxvisor")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true);
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "muxvisor", &mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_offer_public_commands_only() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = String::from_utf8(script(shell)).unwrap();
            assert!(s.contains("supervise") && s.contains("service"), "{shell}");
            assert!(s.contains("root"), "{shell}");
            for hidden in ["_hook", "_canary", "_pane-log"] {
                assert!(!s.contains(hidden), "{shell} offers {hidden}");
            }
        }
    }
}
