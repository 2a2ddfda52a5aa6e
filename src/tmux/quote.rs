//! Quoting for the three languages a string can pass through on its way into
//! tmux: tmux's argv parser (trailing `;`), tmux's format expander (`#`), and
//! `/bin/sh` (for `run-shell`, `pipe-pane` and hook commands). Pure functions,
//! unit-tested with hostile inputs.

/// tmux treats an argument ending in `;` as a separator even when exec'd
/// directly; `X;` must be sent as `X\;` (tmux then drops the backslash).
pub fn escape_trailing_semicolon(s: &str) -> String {
    match s.strip_suffix(';') {
        Some(head) => format!("{head}\\;"),
        None => s.to_string(),
    }
}

/// Double every `#` so tmux's format expander leaves the text as it is.
pub fn escape_format(s: &str) -> String {
    s.replace('#', "##")
}

/// Quote `s` for `/bin/sh` as one word: single quotes, with `'` as `'\''`.
pub fn sh(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A shell command line from words, each quoted, ready to hand to tmux for
/// `run-shell`/`pipe-pane`: shell-quoted, then `#` doubled.
pub fn shell_command_for_tmux<S: AsRef<str>>(words: &[S]) -> String {
    let line = words.iter().map(|w| sh(w.as_ref())).collect::<Vec<_>>().join(" ");
    escape_format(&line)
}

/// Quote `s` as one argument inside a tmux command string (a hook body):
/// double quotes, with `\`, `"`, `$` and `~` escaped.
pub fn tmux_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn trailing_semicolon() {
        assert_eq!(escape_trailing_semicolon("a;"), "a\\;");
        assert_eq!(escape_trailing_semicolon(";"), "\\;");
        assert_eq!(escape_trailing_semicolon("a;b"), "a;b");
        assert_eq!(escape_trailing_semicolon("a\\;"), "a\\\\;");
    }

    #[test]
    fn sh_quoting_survives_a_real_shell() {
        let hostile = [
            "plain",
            "two words",
            "it's",
            "'; rm -rf ~ #",
            "$(id)",
            "`id`",
            "\\",
            "\"",
            "a\nb",
            "#{pane_pid}",
            "",
        ];
        for h in hostile {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh(h)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), h, "{h:?}");
        }
    }

    #[test]
    fn format_escape_doubles_hashes() {
        assert_eq!(escape_format("#(touch /tmp/p) ##"), "##(touch /tmp/p) ####");
        assert_eq!(shell_command_for_tmux(&["a#b", "c"]), "'a##b' 'c'");
    }

    #[test]
    fn tmux_string_escapes() {
        assert_eq!(tmux_string(r#"a"b$c\d~"#), r#""a\"b\$c\\d\~""#);
    }
}
