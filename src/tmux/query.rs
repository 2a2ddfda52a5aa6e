//! Read-only questions to one identity's server that the view commands ask
//! (`screen`, `attach`), plus the pure text clean-up of what tmux returns.
//! Observation of liveness lives in `observe`; this is only what a person
//! looks at.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{Cmd, Tmux, TmuxError};
use crate::model::peer::Identity;

/// The last `lines` lines of `id`'s pane (scrollback included), wrapped lines
/// joined, trailing blank lines removed. `raw` keeps the escape sequences
/// tmux can reproduce (colours, attributes); otherwise any that slip through
/// are stripped (`crate::ground::ansi`, as `logs` does).
pub fn capture_pane(
    tmux: &Tmux,
    id: &Identity,
    lines: usize,
    raw: bool,
) -> Result<String, TmuxError> {
    let mut cmd = Cmd::new("capture-pane").arg("-p").arg("-J");
    if raw {
        cmd = cmd.arg("-e");
    }
    // `-S -N` starts N lines up into the history; the visible screen follows.
    let start = format!("-{}", lines.max(1));
    cmd = cmd.arg("-S").arg(start).arg("-t").arg(id.target());
    let out = tmux.run(&cmd)?;
    let text = if raw { out.stdout } else { crate::ground::ansi::strip(&out.stdout) };
    Ok(last_lines(&text, lines))
}

/// The last `n` lines of `text` after trailing blank lines are dropped, each
/// followed by a newline (empty text stays empty).
pub fn last_lines(text: &str, n: usize) -> String {
    let mut all: Vec<&str> = text.lines().collect();
    while all.last().is_some_and(|l| l.trim().is_empty()) {
        all.pop();
    }
    let from = all.len().saturating_sub(n);
    let mut out = String::new();
    for l in &all[from..] {
        out.push_str(l.trim_end_matches('\r'));
        out.push('\n');
    }
    out
}

/// Replace this process with a tmux client attached to `id`'s session,
/// without inheriting an enclosing tmux's `TMUX`/`TMUX_PANE`. Returns only if
/// the exec failed.
pub fn exec_attach(tmux: &Tmux, id: &Identity) -> std::io::Error {
    let args: [OsString; 6] = [
        "-S".into(),
        tmux.socket().into(),
        "-f".into(),
        "/dev/null".into(),
        "attach-session".into(),
        "-t".into(),
    ];
    Command::new(tmux.bin())
        .args(args)
        .arg(id.target())
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_trims_trailing_blanks_and_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n\n   \n\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\n", 10), "a\nb\n");
        assert_eq!(last_lines("\n\n", 5), "");
        assert_eq!(last_lines("a\r\n", 5), "a\n");
        assert_eq!(last_lines("a\n\nb\n", 3), "a\n\nb\n");
    }
}
