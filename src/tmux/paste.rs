//! Typing text into a pane safely, the one way muxvisor types anything:
//!
//! - **What may be typed** is checked here, at the moment of typing, for
//!   every caller ([`typable`]): UTF-8 with no control character but
//!   newline and tab. ESC in a payload would end the bracketed paste early
//!   and turn the rest into keystrokes; a check only at `send` would miss a
//!   payload that reached a pane another way (an old queue re-added as an
//!   agent's, a policy change).
//! - **How**: through a uniquely named tmux buffer fed on stdin
//!   (`load-buffer -b NAME -`), then `paste-buffer -p -d` (bracketed paste
//!   when the program asked for it; the buffer is deleted), only if the pane
//!   is still alive (tmux 3.3a crashes on a paste into a dead pane; see
//!   [`paste`]). The text never passes through tmux's command parser or
//!   format expander, and `send-keys` (which fails above ~16 KB) is used
//!   only for key names.
//! - **Enter is its own step** ([`type_text`]): once the pasted text shows
//!   on the screen and the screen has settled. Claude Code (2.1.x) and
//!   Gemini CLI (0.61) drop an Enter that arrives while they still process a
//!   paste, so paste and Enter in one tmux command leave the text unsent in
//!   their prompt. Whether the program then took the text in is the
//!   caller's question (`agent::confirm` asks it for the mailbox).
//!
//! Also: waiting until a pane's output has been quiet for a moment, so that a
//! freshly started program is ready before it is typed at.

use std::thread;
use std::time::{Duration, Instant};

use super::{Cmd, Tmux, TmuxError};
use crate::model::agent::classify;
use crate::model::peer::Identity;

/// How long the pasted text may take to show before Enter is pressed anyway
/// (a program that does not echo what it is given never shows it).
const LAND_MAX: Duration = Duration::from_millis(1500);
/// How long the screen must stay unchanged once the paste showed: the
/// program has finished taking the paste in. Enter 50 to 500 ms after the
/// paste submitted every time in Claude Code 2.1.332 and Gemini CLI 0.61.
const SETTLE: Duration = Duration::from_millis(150);
/// How often the screen is read while waiting.
const POLL: Duration = Duration::from_millis(25);

/// `bytes` as text that may be typed into a pane, or why not: UTF-8 with no
/// control character other than newline and tab. Every path that types
/// calls this at the moment of typing ([`paste`] does).
pub fn typable(bytes: &[u8]) -> Result<&str, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("the text is not valid UTF-8 ({e}); only text can be typed"))?;
    check_text(text)?;
    Ok(text)
}

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

/// Where typed text goes: a peer's session (its active pane), or one pane
/// of its server (an agent pool's instance, [`Pane`]).
pub trait PaneTarget: std::fmt::Display {
    /// The `-t` target, a word safe for tmux's parser.
    fn target(&self) -> String;
}

impl PaneTarget for Identity {
    fn target(&self) -> String {
        Identity::target(self)
    }
}

/// One pane of a peer's server, by tmux's pane id (`%12`).
#[derive(Clone, Copy, Debug)]
pub struct Pane<'a> {
    id: &'a Identity,
    pane: &'a str,
}

impl<'a> Pane<'a> {
    /// `None` unless `pane` is a tmux pane id (`%` and digits).
    pub fn new(id: &'a Identity, pane: &'a str) -> Option<Pane<'a>> {
        let digits = pane.strip_prefix('%')?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Pane { id, pane })
    }
}

impl std::fmt::Display for Pane<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pane {})", self.id, self.pane)
    }
}

impl PaneTarget for Pane<'_> {
    fn target(&self) -> String {
        self.pane.to_string()
    }
}

/// Send tmux key names to `id`'s pane at once (`send-keys`, no `-l`).
pub fn keys(tmux: &Tmux, id: &impl PaneTarget, keys: &[String]) -> Result<(), TmuxError> {
    let target = id.target();
    tmux.run(&Cmd::new("send-keys").args(["-t", target.as_str()]).args(keys)).map(|_| ())
}

/// A buffer name no other muxvisor process will use at the same time.
fn buffer_name() -> String {
    format!("muxvisor-{}-{}", std::process::id(), crate::ground::fsutil::unique_suffix())
}

/// What the guarded paste prints when it found the pane dead.
const DEAD_MARK: &str = "muxvisor-pane-dead";

/// The paste as one tmux command: `paste-buffer` only if the pane is
/// alive, checked in the same command queue, so its program cannot die in
/// between. tmux 3.3a (at least) segfaults on `paste-buffer` into a
/// dead pane (`remain-on-exit`): a program dying as it is typed at would
/// take its whole server down. A dead pane gets its buffer deleted and
/// [`DEAD_MARK`] printed instead. `name` and `id` are safe words for tmux's
/// parser. Pure.
fn guarded_paste(name: &str, id: &impl PaneTarget) -> Cmd {
    let target = id.target();
    let live = format!("paste-buffer -p -d -b {name} -t {target}");
    let dead = format!("delete-buffer -b {name} ; display-message -p {DEAD_MARK}");
    Cmd::new("if-shell").args(["-F", "-t", target.as_str(), "#{pane_dead}"]).arg(dead).arg(live)
}

/// Enter alone, only into a live pane.
fn guarded_enter(id: &impl PaneTarget) -> Cmd {
    let target = id.target();
    Cmd::new("if-shell")
        .args(["-F", "-t", target.as_str(), "#{pane_dead}"])
        .arg(format!("display-message -p {DEAD_MARK}"))
        .arg(format!("send-keys -t {target} Enter"))
}

fn dead_pane(tmux: &Tmux, id: &impl PaneTarget) -> TmuxError {
    TmuxError::Failed {
        socket: tmux.socket().to_path_buf(),
        status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
        stderr: format!("the pane of {id} is dead (its program exited); nothing was typed"),
    }
}

/// Press Enter in `id`'s pane (a dead pane is an error).
pub fn submit(tmux: &Tmux, id: &impl PaneTarget) -> Result<(), TmuxError> {
    match tmux.run(&guarded_enter(id)) {
        Ok(out) if out.stdout.contains(DEAD_MARK) => Err(dead_pane(tmux, id)),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The visible screen of `id`'s pane, as patterns see it (trailing blanks
/// and empty rows trimmed).
pub fn capture(tmux: &Tmux, id: &impl PaneTarget) -> Result<String, TmuxError> {
    let out = tmux.run(&Cmd::new("capture-pane").args(["-p", "-t", id.target().as_str()]))?;
    Ok(classify::normalize(&out.stdout))
}

/// Wait (bounded by [`LAND_MAX`]) until the screen differs from `before`
/// and then stays unchanged for [`SETTLE`]; return the last screen read.
fn wait_landed(tmux: &Tmux, id: &impl PaneTarget, before: &str) -> Result<String, TmuxError> {
    still_after(tmux, id, before.to_string(), Some(before))
}

/// Watch `id`'s screen from `first` until it has stayed unchanged for
/// [`SETTLE`] (and, with `changed_from`, differs from that screen), at most
/// [`LAND_MAX`] (then the last screen read is taken).
fn still_after(
    tmux: &Tmux,
    id: &impl PaneTarget,
    first: String,
    changed_from: Option<&str>,
) -> Result<String, TmuxError> {
    let start = Instant::now();
    let mut last = first;
    let mut since = start;
    loop {
        thread::sleep(POLL);
        let now_screen = capture(tmux, id)?;
        let now = Instant::now();
        if now_screen != last {
            last = now_screen;
            since = now;
        } else if changed_from.is_none_or(|b| last != b) && now.duration_since(since) >= SETTLE {
            return Ok(last);
        }
        if now.duration_since(start) >= LAND_MAX {
            return Ok(last);
        }
    }
}

/// What [`type_text`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typed {
    /// The screen before the paste.
    pub before: String,
    /// The screen once the paste had landed, before Enter.
    pub pasted: String,
}

/// Whether a tmux command that types was sent, and what came of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sent {
    /// Not sent: it cannot run.
    #[default]
    No,
    /// Sent, and the server did not answer (a timeout): it may yet run,
    /// when a hung server is continued.
    Unanswered,
    /// Sent and answered.
    Done,
}

/// How far a typing got, kept up to date step by step ([`type_tracked`]),
/// so that a caller whose typing failed half-way (a stopped server: a
/// timeout) can tell what the server may still do with what it received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The screen before anything was typed, once read.
    pub before: Option<String>,
    /// The buffer the text was loaded into (the paste deletes it).
    pub buffer: Option<String>,
    /// The paste command.
    pub paste: Sent,
    /// The screen once the paste had landed, before any Enter.
    pub pasted: Option<String>,
    /// Enters sent (answered or not).
    pub enters: u8,
}

/// Type `text` into `id`'s pane the safe way: paste it (checked by
/// [`typable`]), wait until it shows and the screen settles, then press
/// Enter as its own step when `enter`. Empty text with `enter` is Enter
/// alone. Returns the screens before and after the paste, so the caller can
/// confirm the program took the text in.
pub fn type_text(
    tmux: &Tmux,
    id: &impl PaneTarget,
    text: &[u8],
    enter: bool,
) -> Result<Typed, TmuxError> {
    type_tracked(tmux, id, text, enter, &mut Progress::default())
}

/// [`type_text`], noting each step in `progress` as it goes.
pub fn type_tracked(
    tmux: &Tmux,
    id: &impl PaneTarget,
    text: &[u8],
    enter: bool,
    progress: &mut Progress,
) -> Result<Typed, TmuxError> {
    typable(text).map_err(TmuxError::Refused)?;
    let before = capture(tmux, id)?;
    progress.before = Some(before.clone());
    // Test-only: a test stops the server here, before anything is sent.
    crate::ground::fault::hold("typing-read");
    let pasted = if text.is_empty() {
        before.clone()
    } else {
        paste(tmux, id, text, progress)?;
        wait_landed(tmux, id, &before)?
    };
    progress.pasted = Some(pasted.clone());
    // Test-only: a test stops the server here, between paste and Enter.
    crate::ground::fault::hold("typing-pasted");
    if enter {
        progress.enters += 1;
        submit(tmux, id)?;
    }
    Ok(Typed { before, pasted })
}

/// Paste non-empty `text` into `id`'s pane (no Enter). A dead pane is an
/// error (nothing is typed), and so is text that [`typable`] refuses.
fn paste(
    tmux: &Tmux,
    id: &impl PaneTarget,
    text: &[u8],
    progress: &mut Progress,
) -> Result<(), TmuxError> {
    typable(text).map_err(TmuxError::Refused)?;
    let name = buffer_name();
    progress.buffer = Some(name.clone());
    tmux.run_with_stdin(&Cmd::new("load-buffer").arg("-b").arg(&name).arg("-"), Some(text))?;
    // Test-only: a test stops the server here, between load and paste.
    crate::ground::fault::hold("typing-loaded");
    progress.paste = Sent::Unanswered;
    let r = tmux.run(&guarded_paste(&name, id));
    match r {
        Ok(out) if out.stdout.contains(DEAD_MARK) => {
            progress.paste = Sent::No;
            Err(dead_pane(tmux, id))
        }
        Ok(_) => {
            progress.paste = Sent::Done;
            Ok(())
        }
        // Unanswered: the server may still paste it, so the buffer stays
        // (the caller settles that; see `agent::confirm`).
        Err(e @ (TmuxError::Timeout { .. } | TmuxError::Io { .. })) => Err(e),
        Err(e) => {
            progress.paste = Sent::No;
            let _ = tmux.run(&Cmd::new("delete-buffer").arg("-b").arg(&name));
            Err(e)
        }
    }
}

/// Delete the buffer `name` if it is there (a paste that never ran).
pub fn drop_buffer(tmux: &Tmux, name: &str) {
    let _ = tmux.run(&Cmd::new("delete-buffer").arg("-b").arg(name));
}

/// What the server says of `id`'s pane: `Some(true)` while its program
/// runs, `Some(false)` once it exited, `None` when the pane is gone (a
/// missing target prints nothing and still exits 0). Also a round trip:
/// an answer means the server processes commands again.
pub fn pane_alive(tmux: &Tmux, id: &impl PaneTarget) -> Result<Option<bool>, TmuxError> {
    let target = id.target();
    let out = tmux.run(
        &Cmd::new("display-message").args(["-p", "-t", target.as_str()]).arg("#{pane_dead}"),
    )?;
    Ok(match out.stdout.trim() {
        "0" => Some(true),
        "1" => Some(false),
        _ => None,
    })
}

/// Whether `id`'s screen differs from `screen` at some look within `within`.
pub fn changed_within(
    tmux: &Tmux,
    id: &impl PaneTarget,
    screen: &str,
    within: Duration,
) -> Result<bool, TmuxError> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        thread::sleep(POLL);
        if capture(tmux, id)? != screen {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The screen of `id`'s pane once it has not changed for [`SETTLE`] (at
/// most [`LAND_MAX`]: a spinner never settles; the last screen is taken).
pub fn settled(tmux: &Tmux, id: &impl PaneTarget) -> Result<String, TmuxError> {
    let first = capture(tmux, id)?;
    still_after(tmux, id, first, None)
}

/// Poll the pane until its visible content has not changed for `quiet`, for
/// at most `max`. True if it went quiet in time.
pub fn wait_quiet(tmux: &Tmux, id: &impl PaneTarget, quiet: Duration, max: Duration) -> bool {
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
    fn only_text_without_control_characters_is_typable() {
        assert_eq!(typable(b"two\nlines\t;").unwrap(), "two\nlines\t;");
        assert!(typable(b"").is_ok(), "an empty message is Enter alone");
        assert!(typable(b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert!(typable(b"x\x1b[201~INJECTED\r").unwrap_err().contains("U+001B"));
    }

    fn argv(c: &Cmd) -> Vec<String> {
        c.as_args().iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn enter_alone_is_guarded_by_the_panes_life() {
        let id = Identity::parse("w1").unwrap();
        assert_eq!(
            argv(&guarded_enter(&id)),
            [
                "if-shell",
                "-F",
                "-t",
                "=w1:",
                "#{pane_dead}",
                "display-message -p muxvisor-pane-dead",
                "send-keys -t =w1: Enter",
            ]
        );
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
        assert_eq!(
            argv(&guarded_paste("muxvisor-1-ab", &id)),
            [
                "if-shell",
                "-F",
                "-t",
                "=w1:",
                "#{pane_dead}",
                "delete-buffer -b muxvisor-1-ab ; display-message -p muxvisor-pane-dead",
                "paste-buffer -p -d -b muxvisor-1-ab -t =w1:",
            ]
        );
    }

    #[test]
    fn buffer_names_are_unique() {
        assert_ne!(buffer_name(), buffer_name());
    }
}
