//! Confirmed delivery (SPEC §8): a message counts as delivered only when the
//! agent shows that it took it in. [`deliver`] types the message the safe
//! way (`tmux::paste::type_text`: paste, wait until it shows, Enter as its
//! own step), then watches for the proof:
//!
//! - the screen changed from the one that held the pasted text (the prompt
//!   was cleared, the turn began, the program answered), or
//! - a mark newer than the paste arrived (a `UserPromptSubmit` hook).
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

use super::record;
use crate::paths::Root;
use crate::peer::Identity;
use crate::tmux::{Tmux, TmuxError, paste};

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

/// Type `text` into `id`'s pane and confirm the agent took it in.
pub fn deliver(
    root: &Root,
    id: &Identity,
    text: &[u8],
    enter: bool,
) -> Result<Confirmed, TmuxError> {
    let tmux = Tmux::new(root.socket(id))?;
    let started = Utc::now();
    let typed = paste::type_text(&tmux, id, text, enter)?;
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
        let screen = match taken_in(root, id, &tmux, &typed.pasted, started)? {
            Ok(s) | Err(s) => s,
        };
        return Ok(Confirmed::Taken { screen, enters: 1 });
    }
    let mut screen = typed.pasted.clone();
    for enters in 1..=2u8 {
        if enters == 2 {
            paste::submit(&tmux, id)?;
        }
        match taken_in(root, id, &tmux, &typed.pasted, started)? {
            Ok(s) => return Ok(Confirmed::Taken { screen: s, enters }),
            Err(s) => screen = s,
        }
    }
    Ok(Confirmed::NotTaken { screen })
}

/// Wait up to [`CONFIRM_WAIT`] for the proof: `Ok(screen)` once the screen
/// differs from `pasted` or a mark newer than `since` arrived, else
/// `Err(last screen)`.
fn taken_in(
    root: &Root,
    id: &Identity,
    tmux: &Tmux,
    pasted: &str,
    since: DateTime<Utc>,
) -> Result<Result<String, String>, TmuxError> {
    let deadline = Instant::now() + CONFIRM_WAIT;
    loop {
        thread::sleep(POLL);
        let screen = paste::capture(tmux, id)?;
        if screen != pasted || record::load(root, id).mark.is_some_and(|m| m.at > since) {
            return Ok(Ok(screen));
        }
        if Instant::now() >= deadline {
            return Ok(Err(screen));
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

    #[test]
    fn the_tail_skips_blank_lines() {
        assert_eq!(tail_lines("a\n\n b \n\nc\n   \n", 2), [" b", "c"]);
        assert_eq!(tail_lines("", 3), Vec::<String>::new());
    }
}
