//! Confirmed delivery (SPEC §8): a message counts as delivered only when the
//! agent shows that it took it in. [`deliver`] types the message the safe
//! way (`tmux::paste::type_text`: paste, wait until it shows, Enter as its
//! own step), then watches for the proof:
//!
//! - a mark newer than the paste arrived (a `UserPromptSubmit` hook), or
//! - for an agent whose patterns show a turn (a busy pattern: every
//!   preset's): the screen reads busy, blocked, or ready again (an empty
//!   prompt: the text left it). A screen that merely changed proves
//!   nothing there: Gemini CLI 0.61 turns an Enter that comes too soon after
//!   a paste into a newline in its prompt, which changes the screen and
//!   submits nothing;
//! - for any other program (a shell loop, a REPL read by quiet): the screen
//!   changed from the one that held the pasted text. A second Enter there
//!   could be a second line of input, so the proof must not wait for a
//!   turn such a program never shows.
//!
//! An agent may drop an Enter (Claude Code drops one that arrives while it
//! still processes a paste, whatever the delay; Gemini CLI too): if no
//! proof comes within [`CONFIRM_WAIT`], Enter is pressed once more. If the
//! second one is not taken in either, the message was not delivered, and
//! the caller says so instead of writing a receipt. A message sent with
//! `--no-enter` is confirmed by its text showing on the screen; an empty
//! message is Enter alone, pressed once and never repeated (a second Enter
//! would be a second message), and cannot be proven taken in.

use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::ground::paths::Root;
use crate::model::agent::presets::{Patterns, Verdict};
use crate::model::agent::record;
use crate::model::peer::Identity;
use crate::tmux::paste::{self, PaneTarget};
use crate::tmux::{Tmux, TmuxError};

/// How long after Enter the screen (or a hook) may take to show that the
/// message was taken in. Claude Code 2.1.332 redraws its prompt within
/// about 100 ms of a submitted Enter.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(3);
/// How often the screen is read meanwhile.
const POLL: Duration = Duration::from_millis(25);

/// What [`deliver`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Taken in; `screen` is the first screen that showed it.
    Taken { screen: String, enters: u8 },
    /// Typed, but not taken in after two Enters: `screen` is what it shows.
    NotTaken { screen: String },
}

/// Type `text` into `id`'s pane and confirm the agent took it in, by the
/// peer's compiled `patterns` (see the module header for the proofs).
pub fn deliver(
    root: &Root,
    id: &Identity,
    patterns: &Patterns,
    text: &[u8],
    enter: bool,
) -> Result<Confirmed, TmuxError> {
    let tmux = Tmux::new(root.socket(id))?;
    let marked = |since: DateTime<Utc>| record::load(root, id).mark.is_some_and(|m| m.at > since);
    deliver_to(&tmux, id, patterns, text, enter, &marked)
}

/// [`deliver`] into any pane of a server (an agent pool's instance), with
/// the hook's word read by `marked` (true when a mark newer than the time
/// given arrived).
pub fn deliver_to(
    tmux: &Tmux,
    id: &impl PaneTarget,
    patterns: &Patterns,
    text: &[u8],
    enter: bool,
    marked: &dyn Fn(DateTime<Utc>) -> bool,
) -> Result<Confirmed, TmuxError> {
    let started = Utc::now();
    let typed = paste::type_text(tmux, id, text, enter)?;
    if !enter {
        // Nothing to submit: the text showing is the proof (no text: nothing to show).
        return Ok(if text.is_empty() || typed.pasted != typed.before {
            Confirmed::Taken { screen: typed.pasted, enters: 0 }
        } else {
            Confirmed::NotTaken { screen: typed.pasted }
        });
    }
    if text.is_empty() {
        // Enter alone: a second one would be a second message, and a
        // program may rightly ignore an empty line (Claude Code does). The
        // screen is watched as for text, but the Enter counts as delivered.
        let screen = match taken_in(id, tmux, patterns, &typed.pasted, started, marked)? {
            Proof::Taken(s) | Proof::Missing(s) => s,
        };
        return Ok(Confirmed::Taken { screen, enters: 1 });
    }
    let mut screen = typed.pasted.clone();
    for enters in 1..=2u8 {
        if enters == 2 {
            paste::submit(tmux, id)?;
        }
        match taken_in(id, tmux, patterns, &typed.pasted, started, marked)? {
            Proof::Taken(s) => return Ok(Confirmed::Taken { screen: s, enters }),
            Proof::Missing(s) => screen = s,
        }
    }
    Ok(Confirmed::NotTaken { screen })
}

/// Whether `screen` proves the text was taken in, for a program read by
/// `patterns`, given the screen that held the pasted text. Pure.
pub fn proves_taken(patterns: &Patterns, pasted: &str, screen: &str) -> bool {
    if !patterns.has_busy() {
        return screen != pasted;
    }
    matches!(patterns.classify(screen), Verdict::Busy | Verdict::Blocked(_) | Verdict::Ready)
}

/// What the wait for a proof found, with the last screen seen.
enum Proof {
    Taken(String),
    Missing(String),
}

/// Wait up to [`CONFIRM_WAIT`] for the proof: [`Proof::Taken`] once the
/// screen proves it ([`proves_taken`]) or a mark newer than `since` arrived,
/// else [`Proof::Missing`].
fn taken_in(
    id: &impl PaneTarget,
    tmux: &Tmux,
    patterns: &Patterns,
    pasted: &str,
    since: DateTime<Utc>,
    marked: &dyn Fn(DateTime<Utc>) -> bool,
) -> Result<Proof, TmuxError> {
    let deadline = Instant::now() + CONFIRM_WAIT;
    loop {
        thread::sleep(POLL);
        let screen = paste::capture(tmux, id)?;
        if proves_taken(patterns, pasted, &screen) || marked(since) {
            return Ok(Proof::Taken(screen));
        }
        if Instant::now() >= deadline {
            return Ok(Proof::Missing(screen));
        }
    }
}

/// The last `n` non-empty lines of a screen, for a log line or a blocked
/// reason's quote.
pub fn tail_lines(screen: &str, n: usize) -> Vec<String> {
    let lines: Vec<String> =
        screen.lines().map(|l| l.trim_end().to_string()).filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gemini CLI 0.61 turns an Enter that comes within 40 ms of a paste
    /// into a newline: the screen changes, the prompt still holds the text.
    #[test]
    fn a_changed_screen_proves_nothing_for_an_agent_that_shows_its_turns() {
        let agent = Patterns::new(&[r"^> *\z"], &["esc to cancel"], &[], None).unwrap();
        let pasted = "hello\n> line one";
        assert!(!proves_taken(&agent, pasted, "hello\n> line one\n  "), "a newline in the prompt");
        assert!(proves_taken(&agent, pasted, "hello\n> line one\n⠹ (esc to cancel, 1s)\n> "));
        assert!(proves_taken(&agent, pasted, "hello\n> line one\nok\n> "), "the prompt is empty");
        // A program that shows no turns: any change is the proof.
        let shell = Patterns::new(&[r"^bob> ?\z"], &[], &[], None).unwrap();
        assert!(proves_taken(&shell, "bob> first", "bob> first\nbob works on: first"));
        assert!(!proves_taken(&shell, "bob> first", "bob> first"));
    }

    #[test]
    fn the_tail_skips_blank_lines() {
        assert_eq!(tail_lines("a\n\n b \n\nc\n   \n", 2), [" b", "c"]);
        assert_eq!(tail_lines("", 3), Vec::<String>::new());
    }
}
