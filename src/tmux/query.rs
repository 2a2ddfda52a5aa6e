//! Read-only questions to one identity's server that the view commands ask
//! (`screen`, `attach`), plus the pure text clean-up of what tmux returns.
//! Observation of liveness lives in `observe`; this is only what a person
//! looks at.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{Cmd, Tmux, TmuxError};
use crate::peer::Identity;

/// The last `lines` lines of `id`'s pane (scrollback included), wrapped lines
/// joined, trailing blank lines removed. `raw` keeps the escape sequences
/// tmux can reproduce (colours, attributes); otherwise any that slip through
/// are stripped.
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
    let text = if raw { out.stdout } else { strip_ansi(&out.stdout) };
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

/// Remove terminal escape sequences: CSI (`ESC [ ... final`), OSC
/// (`ESC ] ... BEL` or `ESC \`), the other string sequences (DCS, SOS, PM,
/// APC, ended by `ESC \`), two-byte `ESC x` sequences, 8-bit CSI (U+009B),
/// and stray control characters other than tab and newline.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => match it.next() {
                Some('[') => skip_csi(&mut it),
                Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => skip_string(&mut it),
                // Character-set designations take one more byte: ESC ( B.
                Some('(') | Some(')') | Some('*') | Some('+') | Some('#') | Some('%') => {
                    it.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut it),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Skip parameter and intermediate bytes up to and including the final byte.
fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in it.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
    }
}

/// Skip a string sequence up to BEL or ST (`ESC \`).
fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = it.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if it.peek() == Some(&'\\') {
                    it.next();
                }
                return;
            }
            _ => {}
        }
    }
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
    fn strips_csi_osc_and_other_escapes() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m plain", "red plain"),
            ("\u{1b}[1;38;5;208mbold\u{1b}[m", "bold"),
            ("\u{1b}]0;window title\u{7}text", "text"),
            ("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("\u{1b}(Bcharset", "charset"),
            ("\u{1b}=keypad\u{1b}>", "keypad"),
            ("\u{1b}P1$r0m\u{1b}\\dcs", "dcs"),
            ("\u{9b}32mC1", "C1"),
            ("bell\u{7}\r\n", "bell\n"),
            ("tab\there\nnext", "tab\there\nnext"),
            ("ünïcödé ✓", "ünïcödé ✓"),
            ("\u{1b}[", ""),
            ("cut\u{1b}]unterminated", "cut"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_ansi(input), want, "{input:?}");
        }
    }

    #[test]
    fn last_lines_trims_trailing_blanks_and_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n\n   \n\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\n", 10), "a\nb\n");
        assert_eq!(last_lines("\n\n", 5), "");
        assert_eq!(last_lines("a\r\n", 5), "a\n");
        assert_eq!(last_lines("a\n\nb\n", 3), "a\n\nb\n");
    }
}
