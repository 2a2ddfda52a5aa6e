//! Typing text into a pane safely: through a uniquely named tmux buffer fed
//! on stdin (`load-buffer -b NAME -`), then `paste-buffer -p -d` (bracketed
//! paste when the program asked for it; the buffer is deleted) and Enter,
//! both only if the pane is still alive (tmux 3.3a crashes on a paste into
//! a dead pane; see [`paste`]).
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

/// What the guarded paste prints when it found the pane dead.
const DEAD_MARK: &str = "muxvisor-pane-dead";

/// The paste as one tmux command: `paste-buffer` (and Enter) only if the
/// pane is alive, checked in the same command queue, so its program cannot
/// die in between. tmux 3.3a (at least) segfaults on `paste-buffer` into a
/// dead pane (`remain-on-exit`): a program dying as it is typed at would
/// take its whole server down. A dead pane gets its buffer deleted and
/// [`DEAD_MARK`] printed instead. `name` and `id` are safe words for tmux's
/// parser. Pure.
fn guarded_paste(name: &str, id: &Identity, enter: bool) -> Cmd {
    let target = id.target();
    let mut live = format!("paste-buffer -p -d -b {name} -t {target}");
    if enter {
        live.push_str(&format!(" ; send-keys -t {target} Enter"));
    }
    let dead = format!("delete-buffer -b {name} ; display-message -p {DEAD_MARK}");
    Cmd::new("if-shell").args(["-F", "-t", target.as_str(), "#{pane_dead}"]).arg(dead).arg(live)
}

/// Paste `text` into `id`'s pane, then press Enter when `enter`. Empty
/// text is a valid message: Enter alone (tmux has no empty buffer). A dead
/// pane is an error (nothing is typed).
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
    let r = tmux.run(&guarded_paste(&name, id, enter));
    match r {
        Ok(out) if out.stdout.contains(DEAD_MARK) => Err(TmuxError::Failed {
            socket: tmux.socket().to_path_buf(),
            status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
            stderr: format!("the pane of {id} is dead (its program exited); nothing was typed"),
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = tmux.run(&Cmd::new("delete-buffer").arg("-b").arg(&name));
            Err(e)
        }
    }
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
    fn the_paste_is_guarded_by_the_panes_life() {
        let id = Identity::parse("w1").unwrap();
        let c = guarded_paste("muxvisor-1-ab", &id, true);
        let v: Vec<String> = c.as_args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(
            v,
            [
                "if-shell",
                "-F",
                "-t",
                "=w1:",
                "#{pane_dead}",
                "delete-buffer -b muxvisor-1-ab ; display-message -p muxvisor-pane-dead",
                "paste-buffer -p -d -b muxvisor-1-ab -t =w1: ; send-keys -t =w1: Enter",
            ]
        );
        let v = guarded_paste("b", &id, false).as_args().last().unwrap().to_owned();
        assert_eq!(v, "paste-buffer -p -d -b b -t =w1:");
    }

    #[test]
    fn buffer_names_are_unique() {
        assert_ne!(buffer_name(), buffer_name());
    }
}
