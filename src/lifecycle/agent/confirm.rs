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
//!
//! A hung server (stopped, wedged) makes a tmux command time out, and then
//! runs it anyway once it is continued: the paste or the Enter that "failed"
//! lands later. So a delivery whose typing timed out ([`TmuxError::Timeout`],
//! or [`TmuxError::Io`] for a client that could not be reaped) has not
//! failed: its outcome is unknown ([`Confirmed::Unsure`]), and typing it
//! again could run it twice. [`Unsure::settle`] waits (bounded) until the
//! server answers again, twice in a row (so that what it received before
//! has been processed), then decides from how far the typing got and the
//! proofs above ([`after_hang`]):
//!
//! - a proof that it was taken in: [`Confirmed::Taken`];
//! - the text shows in the prompt, not submitted: Enter, confirmed as
//!   usual (two Enters in all at most): `Taken` or [`Confirmed::NotTaken`];
//! - the paste never went out, or went out and the screen is unchanged:
//!   [`Confirmed::NotTyped`], safe to type again;
//! - anything else (the server never answered in time, the agent died, a
//!   screen that shows neither the text nor a turn, an Enter alone):
//!   [`Confirmed::Unknown`]. Neither typed again nor receipted: a false
//!   receipt and a double run are both worse than an honest dead letter.

use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::ground::paths::Root;
use crate::model::agent::presets::{Patterns, Verdict};
use crate::model::agent::record;
use crate::model::peer::Identity;
use crate::tmux::paste::{self, PaneTarget, Progress, Sent};
use crate::tmux::{Tmux, TmuxError};

/// How long after Enter the screen (or a hook) may take to show that the
/// message was taken in. Claude Code 2.1.332 redraws its prompt within
/// about 100 ms of a submitted Enter.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(3);
/// How often the screen is read meanwhile.
const POLL: Duration = Duration::from_millis(25);
/// How long the screen must stay as it was before a paste the server did
/// not answer, for nothing to count as typed (a slow program draws late).
const NOT_TYPED_QUIET: Duration = Duration::from_millis(1500);
/// The longest a delivery the server did not answer is settled for (a
/// pool's task: at most until its --task-timeout), after which it is
/// [`Confirmed::Unknown`].
pub const SETTLE_MAX: Duration = Duration::from_secs(120);
/// While a hung server is waited for ([`Unsure::settle`]): the deadline of
/// one call, and the pause between two.
const ANSWER_WAIT: Duration = Duration::from_millis(500);
const ANSWER_POLL: Duration = Duration::from_millis(100);

/// What [`deliver`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Taken in; `screen` is the first screen that showed it.
    Taken { screen: String, enters: u8 },
    /// Typed, but not taken in after two Enters: `screen` is what it shows.
    NotTaken { screen: String },
    /// The server did not answer a command that types: what it will do
    /// with it is not known yet. Settle it ([`Unsure::settle`]) before
    /// anything else; never type it again meanwhile.
    Unsure(Unsure),
    /// Settled: nothing of the text reached the agent. Safe to type again.
    NotTyped,
    /// Settled: whether the agent took it in cannot be told (`reason`).
    /// Neither type it again nor write a receipt.
    Unknown { reason: String },
}

/// A delivery whose typing the server did not answer (see the module
/// header): how far it got, and what failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsure {
    progress: Progress,
    enter: bool,
    empty: bool,
    started: DateTime<Utc>,
    error: String,
}

/// What [`after_hang`] decided, once the server answered again.
#[derive(Clone, Debug, PartialEq, Eq)]
enum After {
    Taken,
    NotTaken,
    NotTyped,
    /// Typed: submit (if no Enter went out) and confirm as usual, from the
    /// screen that holds the text.
    Confirm {
        pasted: String,
    },
    Unknown(&'static str),
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
    let marked = |since| marked_since(root, id, since);
    deliver_to(&tmux, id, patterns, text, enter, &marked)
}

/// Settle a delivery to `id` that [`deliver`] found [`Confirmed::Unsure`]
/// (see [`Unsure::settle`]), for at most [`SETTLE_MAX`]. Its pane's death
/// ends the wait.
pub fn settle(root: &Root, id: &Identity, patterns: &Patterns, unsure: Unsure) -> Confirmed {
    let tmux = match Tmux::new(root.socket(id)) {
        Ok(t) => t,
        Err(e) => return Confirmed::Unknown { reason: e.to_string() },
    };
    let marked = |since| marked_since(root, id, since);
    let give_up = Instant::now() + settle_max();
    unsure.settle(&tmux, id, patterns, &marked, &mut || true, give_up)
}

/// True when `id`'s record holds a mark (a hook's word) newer than `since`.
fn marked_since(root: &Root, id: &Identity, since: DateTime<Utc>) -> bool {
    record::load(root, id).mark.is_some_and(|m| m.at > since)
}

/// [`SETTLE_MAX`], which a test-only build lets a test shorten
/// (`MUXVISOR_FAULT_SETTLE_MAX_MS`) to see a delivery left unknown.
fn settle_max() -> Duration {
    #[cfg(feature = "fault-injection")]
    if let Some(ms) =
        std::env::var("MUXVISOR_FAULT_SETTLE_MAX_MS").ok().and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    SETTLE_MAX
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
    let mut progress = Progress::default();
    let r = typed_and_confirmed(tmux, id, patterns, text, enter, marked, started, &mut progress);
    match r {
        Err(e @ (TmuxError::Timeout { .. } | TmuxError::Io { .. })) => {
            Ok(Confirmed::Unsure(Unsure {
                progress,
                enter,
                empty: text.is_empty(),
                started,
                error: e.to_string(),
            }))
        }
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
fn typed_and_confirmed(
    tmux: &Tmux,
    id: &impl PaneTarget,
    patterns: &Patterns,
    text: &[u8],
    enter: bool,
    marked: &dyn Fn(DateTime<Utc>) -> bool,
    started: DateTime<Utc>,
    progress: &mut Progress,
) -> Result<Confirmed, TmuxError> {
    let typed = paste::type_tracked(tmux, id, text, enter, progress)?;
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
    submitted(tmux, id, patterns, &typed.pasted, started, marked, progress)
}

/// The text shows in the prompt (`pasted`, the screen that holds it) and
/// `progress.enters` Enters went out: press Enter if none did, watch for
/// the proof after each, and press it once more if none came (two in all).
fn submitted(
    tmux: &Tmux,
    id: &impl PaneTarget,
    patterns: &Patterns,
    pasted: &str,
    started: DateTime<Utc>,
    marked: &dyn Fn(DateTime<Utc>) -> bool,
    progress: &mut Progress,
) -> Result<Confirmed, TmuxError> {
    loop {
        if progress.enters == 0 {
            progress.enters = 1;
            paste::submit(tmux, id)?;
        }
        let screen = match taken_in(id, tmux, patterns, pasted, started, marked)? {
            Proof::Taken(s) => return Ok(Confirmed::Taken { screen: s, enters: progress.enters }),
            Proof::Missing(s) => s,
        };
        if progress.enters >= 2 {
            return Ok(Confirmed::NotTaken { screen });
        }
        progress.enters += 1;
        paste::submit(tmux, id)?;
    }
}

impl Unsure {
    /// What the server did not answer, for a log line.
    pub fn reason(&self) -> String {
        let step = match (self.progress.paste, self.progress.enters) {
            (_, 1..) => "enter",
            (Sent::Unanswered | Sent::Done, 0) => "paste",
            (Sent::No, 0) if self.progress.buffer.is_some() => "load",
            (Sent::No, 0) => "screen",
        };
        format!("{step}: {}", self.error)
    }

    /// Wait until the server answers again (until `give_up`, while `alive`
    /// says the agent runs), then decide what came of the delivery (see
    /// the module header). Never [`Confirmed::Unsure`].
    pub fn settle(
        mut self,
        tmux: &Tmux,
        id: &impl PaneTarget,
        patterns: &Patterns,
        marked: &dyn Fn(DateTime<Utc>) -> bool,
        alive: &mut dyn FnMut() -> bool,
        give_up: Instant,
    ) -> Confirmed {
        let unknown = |reason: String| Confirmed::Unknown { reason };
        let quick = tmux.clone().with_timeout(ANSWER_WAIT);
        let mut answers = 0;
        while answers < 2 {
            if !alive() {
                return unknown("the agent died before its server answered".into());
            }
            match paste::pane_alive(&quick, id) {
                Ok(Some(true)) => {
                    answers += 1;
                    continue;
                }
                Ok(_) => return unknown("the agent's pane is dead or gone".into()),
                Err(e) if e.is_gone() => return unknown(format!("{e}")),
                Err(_) => answers = 0,
            }
            if Instant::now() >= give_up {
                return unknown("the tmux server did not answer again in time".into());
            }
            std::thread::sleep(ANSWER_POLL);
        }
        if self.progress.paste != Sent::Done
            && let Some(name) = &self.progress.buffer
        {
            // Loaded and never pasted: the buffer is not needed again.
            paste::drop_buffer(&quick, name);
        }
        let mut screen = match paste::settled(tmux, id) {
            Ok(s) => s,
            Err(e) => return unknown(format!("reading the screen: {e}")),
        };
        let decide = |screen: &str| {
            let p = &self.progress;
            after_hang(p, self.enter, self.empty, patterns, screen, marked(self.started))
        };
        let mut decided = decide(&screen);
        if decided == After::NotTyped && self.progress.paste == Sent::Unanswered {
            // The server sent the paste on its way, or dropped it: a
            // program slow to draw it shows the old screen a while. Only
            // a screen that stays unchanged says nothing was typed.
            match paste::changed_within(tmux, id, &screen, NOT_TYPED_QUIET) {
                Ok(false) => {}
                Ok(true) => {
                    screen = match paste::settled(tmux, id) {
                        Ok(s) => s,
                        Err(e) => return unknown(format!("reading the screen: {e}")),
                    };
                    decided = decide(&screen);
                }
                Err(e) => return unknown(format!("reading the screen: {e}")),
            }
        }
        let enters = self.progress.enters;
        match decided {
            After::Taken => Confirmed::Taken { screen, enters },
            After::NotTaken => Confirmed::NotTaken { screen },
            After::NotTyped => Confirmed::NotTyped,
            After::Unknown(why) => unknown(why.into()),
            After::Confirm { pasted } => {
                let p = &mut self.progress;
                match submitted(tmux, id, patterns, &pasted, self.started, marked, p) {
                    Ok(c) => c,
                    Err(e) => unknown(format!("once the server answered: {e}")),
                }
            }
        }
    }
}

/// What came of a typing the server did not answer, from how far it got
/// (`p`), whether it was to be submitted (`enter`) and was empty text
/// (`empty`), the settled screen once the server answered again, and
/// whether the agent's hook marked a turn since. Pure.
fn after_hang(
    p: &Progress,
    enter: bool,
    empty: bool,
    patterns: &Patterns,
    screen: &str,
    marked: bool,
) -> After {
    if marked {
        return After::Taken;
    }
    if empty {
        // An Enter alone shows nothing to confirm it by.
        return if p.enters == 0 {
            After::NotTyped
        } else {
            After::Unknown("an Enter alone went unanswered; whether it landed cannot be seen")
        };
    }
    let before = p.before.as_deref().unwrap_or_default();
    match (p.paste, p.pasted.as_deref()) {
        // Nothing that types went out (a loaded buffer is never pasted).
        (Sent::No, _) => After::NotTyped,
        (Sent::Unanswered, _) => {
            if screen == before {
                return After::NotTyped;
            }
            // An agent that shows its turns shows the text in its prompt:
            // a prompt that reads empty (or a turn) is something else.
            if patterns.has_busy()
                && matches!(
                    patterns.classify(screen),
                    Verdict::Busy | Verdict::Blocked(_) | Verdict::Ready
                )
            {
                return After::Unknown(
                    "the screen changed, but its prompt does not show the text (a turn, a \
                     dialog, or an empty prompt)",
                );
            }
            if enter { After::Confirm { pasted: screen.to_string() } } else { After::Taken }
        }
        (Sent::Done, _) if p.enters == 0 => {
            if enter {
                After::Confirm { pasted: screen.to_string() }
            } else if screen != before {
                After::Taken
            } else {
                After::NotTaken
            }
        }
        (Sent::Done, pasted) => {
            let pasted = pasted.unwrap_or(screen);
            if proves_taken(patterns, pasted, screen) {
                After::Taken
            } else {
                // Still in the prompt: watched, and a second Enter if only
                // one went out (`submitted`).
                After::Confirm { pasted: pasted.to_string() }
            }
        }
    }
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

    /// How far a typing got when the server stopped answering.
    fn got(paste: Sent, pasted: Option<&str>, enters: u8) -> Progress {
        Progress {
            before: Some("> ".into()),
            buffer: Some("muxvisor-1-ab".into()),
            paste,
            pasted: pasted.map(str::to_string),
            enters,
        }
    }

    /// The decision once a hung server answers again, as a table: (how
    /// far the typing got, the settled screen) -> what came of it.
    #[test]
    fn a_typing_the_server_did_not_answer_is_settled_from_the_screen() {
        let agent = Patterns::new(&[r"^> *\z"], &["esc to cancel"], &[], None).unwrap();
        let (empty, holds, busy) = ("> ", "> the prompt", "⠹ (esc to cancel, 1s)\n> ");
        let confirm = |s: &str| After::Confirm { pasted: s.to_string() };
        let cases: &[(Progress, &str, After)] = &[
            // The screen read before typing, or the load, went unanswered.
            (Progress::default(), empty, After::NotTyped),
            (got(Sent::No, None, 0), holds, After::NotTyped),
            // The paste went unanswered.
            (got(Sent::Unanswered, None, 0), empty, After::NotTyped),
            (got(Sent::Unanswered, None, 0), holds, confirm(holds)),
            (got(Sent::Unanswered, None, 0), busy, After::Unknown("")),
            // Pasted; the screens after it went unanswered: Enter next.
            (got(Sent::Done, None, 0), holds, confirm(holds)),
            // The Enter went unanswered.
            (got(Sent::Done, Some(holds), 1), busy, After::Taken),
            (got(Sent::Done, Some(holds), 1), empty, After::Taken),
            (got(Sent::Done, Some(holds), 1), holds, confirm(holds)),
            (got(Sent::Done, Some(holds), 2), holds, confirm(holds)),
        ];
        for (p, screen, want) in cases {
            let found = after_hang(p, true, false, &agent, screen, false);
            match (want, &found) {
                (After::Unknown(_), After::Unknown(_)) => {}
                _ => assert_eq!(&found, want, "{p:?} then {screen:?}"),
            }
        }
        // A hook's mark since the typing began is the agent's own word.
        let p = got(Sent::Unanswered, None, 0);
        assert_eq!(after_hang(&p, true, false, &agent, busy, true), After::Taken);
        // An Enter alone shows nothing: unknown once it went out.
        let p = Progress {
            before: Some(empty.into()),
            pasted: Some(empty.into()),
            ..got(Sent::No, None, 1)
        };
        assert!(matches!(after_hang(&p, true, true, &agent, empty, false), After::Unknown(_)));
        assert_eq!(
            after_hang(&Progress::default(), true, true, &agent, empty, false),
            After::NotTyped
        );
        // --no-enter: the text showing is the proof.
        let p = got(Sent::Unanswered, None, 0);
        assert_eq!(after_hang(&p, false, false, &agent, holds, false), After::Taken);
    }

    #[test]
    fn the_tail_skips_blank_lines() {
        assert_eq!(tail_lines("a\n\n b \n\nc\n   \n", 2), [" b", "c"]);
        assert_eq!(tail_lines("", 3), Vec::<String>::new());
    }
}
