//! Typing text into a pane safely: through a uniquely named tmux buffer fed
//! on stdin (`load-buffer -b NAME -`), then `paste-buffer -p -d` (bracketed
//! paste when the program asked for it; the buffer is deleted) and Enter.
//! The text never passes through tmux's command parser or format expander,
//! and `send-keys` (which fails above ~16 KB) is used only for Enter.
//!
//! Also: waiting until a pane's output has been quiet for a moment, so that a
//! freshly started program is ready before it is typed at.

use std::thread;
use std::time::{Duration, Instant};

use super::{Cmd, Tmux, TmuxError};
use crate::peer::Identity;

/// Refuse control characters other than `\n` and `\t`: ESC in particular
/// could end a bracketed paste early and turn the rest into keystrokes.
pub fn check_text(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t') {
        None => Ok(()),
        Some(c) => Err(format!(
            "the text contains the control character U+{:04X}; only newline and tab are \
             allowed when typing into a pane (ESC could end the bracketed paste)",
            c as u32
        )),
    }
}

/// Refuse anything but a plain tmux key name (`Escape`, `C-c`, `Enter`,
/// `Up`, `F5`, `M-x`, `BSpace`, a single character): `send-keys` without
/// `-l` types an unknown name as text, so only names are let through.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 32
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !key.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a tmux key name: use names such as Escape, Enter, C-c, M-x, Up, F5 or \
             a single letter or digit (send text as TEXT instead)"
        ))
    }
}

/// Send tmux key names to `id`'s pane at once (`send-keys`, no `-l`).
pub fn keys(tmux: &Tmux, id: &Identity, keys: &[String]) -> Result<(), TmuxError> {
    let target = id.target();
    tmux.run(&Cmd::new("send-keys").args(["-t", target.as_str()]).args(keys)).map(|_| ())
}

/// A buffer name no other muxvisor process will use at the same time.
fn buffer_name() -> String {
    format!("muxvisor-{}-{}", std::process::id(), crate::fsutil::unique_suffix())
}

/// Paste `text` into `id`'s pane, then press Enter when `enter`. Empty
/// text is a valid message: Enter alone (tmux has no empty buffer).
pub fn paste(tmux: &Tmux, id: &Identity, text: &[u8], enter: bool) -> Result<(), TmuxError> {
    if text.is_empty() {
        if !enter {
            return Ok(());
        }
        let target = id.target();
        return tmux.run(&Cmd::new("send-keys").args(["-t", target.as_str(), "Enter"])).map(|_| ());
    }
    let name = buffer_name();
    tmux.run_with_stdin(&Cmd::new("load-buffer").arg("-b").arg(&name).arg("-"), Some(text))?;
    let target = id.target();
    let mut cmd =
        Cmd::new("paste-buffer").args(["-p", "-d", "-b", name.as_str(), "-t", target.as_str()]);
    if enter {
        cmd = cmd.then("send-keys").args(["-t", target.as_str(), "Enter"]);
    }
    let r = tmux.run(&cmd);
    if r.is_err() {
        let _ = tmux.run(&Cmd::new("delete-buffer").arg("-b").arg(&name));
    }
    r.map(|_| ())
}

/// Poll the pane until its visible content has not changed for `quiet`, for
/// at most `max`. True if it went quiet in time.
pub fn wait_quiet(tmux: &Tmux, id: &Identity, quiet: Duration, max: Duration) -> bool {
    let deadline = Instant::now() + max;
    let mut last: Option<String> = None;
    let mut since = Instant::now();
    loop {
        let screen = tmux
            .run(&Cmd::new("capture-pane").args(["-p", "-t", id.target().as_str()]))
            .map(|o| o.stdout)
            .ok();
        let now = Instant::now();
        if screen != last {
            last = screen;
            since = now;
        } else if now.duration_since(since) >= quiet {
            return true;
        }
        if now >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused() {
        assert!(check_text("hello\n\tworld; $(id) `x` '\"#{pane_pid}").is_ok());
        for bad in ["\x1b[201~", "a\rb", "\x07", "x\u{7f}", "\u{9b}"] {
            let e = check_text(bad).unwrap_err();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn key_names_only() {
        for ok in ["Escape", "C-c", "Enter", "Up", "F5", "M-x", "BSpace", "a", "1", "S-Tab"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-t", "hello world", "a;b", "#{pane_pid}", "\x1b", &"k".repeat(40)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buffer_names_are_unique() {
        assert_ne!(buffer_name(), buffer_name());
    }
}
