//! The agent state of a persistent peer, decided like the tick: a pure
//! function of what the screen shows, the marks the agent's own hooks left,
//! the last delivery, the spec's patterns and the clock. Capturing the
//! screen and keeping the record are at the edges (`agent::watch`,
//! `agent::record`); this module does no I/O, so every rule is a table test.
//!
//! Sources, strongest first (SPEC §8):
//! 1. a **mark** (`muxvisor mark <id> ready|busy|blocked`), for as long as it
//!    is fresh ([`MARK_FRESH`]); an older mark still stands where the screen
//!    says nothing, but a visible pattern that contradicts it wins (Codex
//!    skips its `Stop` hook when a turn is interrupted with Esc, which would
//!    leave a `busy` mark forever); output quiet never overrules a mark. Even
//!    a fresh `busy` mark yields to a blocked screen (a dialog came up in the
//!    turn it announced) and to an empty prompt that stood still for
//!    [`BUSY_MARK_STILL`] (a turn whose end no hook reported);
//! 2. the **screen patterns**: blocked > busy > ready (a permission prompt
//!    shows mid-turn; agents keep the prompt drawn while they work);
//! 3. output **quiet** for `--quiet` with no busy pattern visible, only for a
//!    peer with no ready pattern (where one is configured, ready needs it).
//!
//! Otherwise the agent is `starting` until it was first seen ready, and
//! `busy` after that. After a **delivery** (confirmed: the agent took the
//! message in, see `agent::confirm`), the agent counts as `busy` until its
//! screen has changed since the moment the delivery was confirmed (or a mark
//! newer than the delivery says otherwise): the screen of that moment may
//! already show an empty prompt again before the turn's first output, and
//! is not yet a new ready state, so two messages never land in one turn.
//! A mark made before the delivery no longer counts at all
//! ([`Delivery::supersedes`]): the `ready` of the turn before would
//! otherwise stand for the agent from the first change of its screen until
//! its prompt-submit hook ran, which on a loaded machine let more messages
//! in mid-turn. A
//! screen asked for before the delivery never shows it ready (a looker
//! slower than the deliverer, whose record is newer than its screen). A
//! turn that never changes the screen again (a program that answered
//! nothing) is over once that screen has stood for the peer's `--quiet`.
//!
//! A message that was typed but not taken in (the agent dropped its Enter
//! twice) makes the agent **blocked**, reason `undelivered`, until a mark
//! newer than it (a person, or a hook) or a restart clears it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::presets::{Patterns, Verdict};

/// How long a mark beats the screen.
pub const MARK_FRESH: Duration = Duration::from_secs(120);

/// How long an empty prompt must have stood still before it beats a fresh
/// `busy` mark: a hook announced a turn whose end no hook reported (Codex
/// CLI 0.171 skips its `Stop` hook after a turn that ended on an API error,
/// and after an Esc). A turn in progress keeps its screen moving (a spinner,
/// a timer, streamed text), so a ready prompt this still is no turn.
pub const BUSY_MARK_STILL: Duration = Duration::from_secs(15);

/// What an interactive agent is doing (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentState {
    /// Launched, never yet ready.
    Starting,
    /// Waiting for input: a message may be delivered.
    Ready,
    /// Working on a turn (or a person is typing).
    Busy,
    /// Needs a person: a dialog, a permission prompt, a limit (see reason).
    Blocked,
    /// Its program is not running, or nothing can be told.
    Unknown,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Ready => "ready",
            AgentState::Busy => "busy",
            AgentState::Blocked => "blocked",
            AgentState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state reported by the agent itself through `muxvisor mark`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub state: AgentState,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// The last message pasted into the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// When it was confirmed (committed).
    pub at: DateTime<Utc>,
    /// When its paste began: a `busy` or `blocked` mark made since then
    /// is the agent's word about the turn this message started (absent in
    /// a record an older muxvisor wrote: then `at` stands for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_at: Option<DateTime<Utc>>,
    pub task: String,
    /// Fingerprint of the screen just before the paste.
    pub screen_before: u64,
    /// The screen has differed from that since.
    pub changed: bool,
}

impl Delivery {
    /// Whether mark `m` was made before this delivery and so no longer
    /// speaks for the agent: the delivery started a turn after it. A `ready`
    /// mark counts only once the delivery was committed (one made while the
    /// message was being typed is the end of the turn before, reported
    /// late); a `busy` or `blocked` one from the moment the paste began (the
    /// agent's `UserPromptSubmit` hook, which may run before the commit).
    /// Pure.
    pub fn supersedes(&self, m: &Mark) -> bool {
        let from = match m.state {
            AgentState::Ready => self.at,
            _ => self.typed_at.unwrap_or(self.at),
        };
        m.at < from
    }

    /// Whether a screen with fingerprint `fp`, asked for at `taken_at`,
    /// shows the delivery taken in: it differs from the screen before the
    /// paste and was captured after the delivery. A capture from before it
    /// (a looker slower than the deliverer) proves nothing. Pure.
    pub fn taken_in_by(&self, fp: u64, taken_at: DateTime<Utc>) -> bool {
        fp != self.screen_before && taken_at > self.at
    }
}

/// A message typed into the agent that it did not take in (SPEC §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undelivered {
    pub at: DateTime<Utc>,
    pub task: String,
    /// The last lines of the screen, as the message was left.
    pub lines: Vec<String>,
}

/// The blocked reason of an agent that did not take a message in.
pub const UNDELIVERED: &str = "undelivered";

/// Where a state came from (shown by `status` and in `ev=agent-state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Mark,
    Screen,
    Quiet,
    Delivery,
    Start,
    Process,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mark => "mark",
            Source::Screen => "screen",
            Source::Quiet => "quiet",
            Source::Delivery => "delivery",
            Source::Start => "start",
            Source::Process => "process",
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The pane's program is alive.
    pub running: bool,
    /// The visible screen, if it could be read.
    pub screen: Option<&'a str>,
    /// How long the pane's output has been unchanged.
    pub quiet_for: Option<Duration>,
    /// The newest mark of this incarnation.
    pub mark: Option<&'a Mark>,
    pub delivery: Option<&'a Delivery>,
    /// A message it did not take in, not yet cleared.
    pub undelivered: Option<&'a Undelivered>,
    /// When the screen was asked for: a screen asked for before the last
    /// delivery cannot show that delivery's turn ended.
    pub seen_at: Option<DateTime<Utc>>,
    /// Seen ready since its launch.
    pub ever_ready: bool,
    /// The reset time of the usage limit it is parked on: once passed, a
    /// usage-limit notice still on the screen is stale.
    pub parked_until: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// The spec's side: compiled patterns and the quiet rule.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub patterns: &'a Patterns,
    /// A ready pattern is configured: quiet alone never means ready.
    pub has_ready: bool,
    pub quiet: Duration,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub state: AgentState,
    pub reason: Option<String>,
    pub source: Source,
    /// For a blocked screen: the lines its pattern matched.
    pub lines: Vec<String>,
}

impl View {
    pub fn of(state: AgentState, source: Source) -> View {
        View { state, reason: None, source, lines: Vec::new() }
    }
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

/// What the screen alone says (patterns only, no quiet).
fn screen_view(f: &Facts, r: &Rules) -> Option<View> {
    let screen = f.screen?;
    // A usage-limit notice past its reset time is history: read the screen
    // as if it were not there.
    let stale = f.parked_until.is_some_and(|t| f.now >= t);
    let skip = stale.then_some(super::presets::reason::USAGE_LIMIT);
    match r.patterns.classify_without(screen, skip) {
        Verdict::Blocked(why) => {
            let lines = r
                .patterns
                .blocked_match_without(screen, skip)
                .map(|(_, l)| l.iter().map(|s| s.trim_end().to_string()).collect())
                .unwrap_or_default();
            Some(View {
                state: AgentState::Blocked,
                reason: Some(why),
                source: Source::Screen,
                lines,
            })
        }
        Verdict::Busy => Some(View::of(AgentState::Busy, Source::Screen)),
        // A prompt drawn while the screen still moves is not yet a ready one
        // (a preset's settle; see `presets::Preset::settle`).
        Verdict::Ready if f.quiet_for.unwrap_or_default() < r.patterns.settle() => None,
        Verdict::Ready => Some(View::of(AgentState::Ready, Source::Screen)),
        Verdict::Nothing => None,
    }
}

/// A ready view is not yet a new ready state while the screen still shows
/// the moment the last delivery was confirmed: until it changed, or stood
/// unchanged for `quiet` (the turn printed nothing more).
fn after_delivery(v: View, f: &Facts, mark: Option<&Mark>, r: &Rules) -> View {
    let pending = f.delivery.is_some_and(|d| {
        let stale = f.seen_at.is_none_or(|t| t <= d.at);
        let same = f.screen.is_some_and(|s| fingerprint(s) == d.screen_before);
        let hold = if same { r.quiet } else { MARK_FRESH };
        let unseen = !d.changed && age(f.now, d.at) < hold;
        mark.is_none_or(|m| m.at < d.at) && (stale || unseen)
    });
    if v.state == AgentState::Ready && pending {
        return View::of(AgentState::Busy, Source::Delivery);
    }
    v
}

/// The agent's state. Pure.
pub fn decide(f: &Facts, r: &Rules) -> View {
    if !f.running {
        return View::of(AgentState::Unknown, Source::Process);
    }
    if let Some(u) = f.undelivered
        && f.mark.is_none_or(|m| m.at < u.at)
    {
        return View {
            state: AgentState::Blocked,
            reason: Some(UNDELIVERED.to_string()),
            source: Source::Delivery,
            lines: u.lines.clone(),
        };
    }
    let screen = screen_view(f, r);
    // A mark made before the last delivery said what the agent did before
    // that message: the delivery is newer news. Without this, the `ready`
    // mark of the turn before stood for the agent as soon as the screen
    // moved after a delivery, until the agent's slow `UserPromptSubmit`
    // hook replaced it, and more messages were typed into a working agent.
    let mark = f.mark.filter(|m| f.delivery.is_none_or(|d| !d.supersedes(m)));
    if let Some(m) = mark {
        let said =
            View { state: m.state, reason: m.reason.clone(), source: Source::Mark, lines: vec![] };
        let fresh = age(f.now, m.at) < MARK_FRESH;
        let v = match screen {
            Some(s) if !fresh && s.state != m.state => s,
            // A dialog that came up during the turn the mark announced (a
            // usage-limit dialog: no hook fires for it in Gemini CLI 0.61
            // or Claude Code) needs a person now, whatever the mark said.
            Some(s) if m.state == AgentState::Busy && s.state == AgentState::Blocked => s,
            Some(s)
                if m.state == AgentState::Busy
                    && s.state == AgentState::Ready
                    && f.quiet_for.is_some_and(|q| q >= BUSY_MARK_STILL) =>
            {
                s
            }
            _ => said,
        };
        return after_delivery(v, f, mark, r);
    }
    if let Some(s) = screen {
        return after_delivery(s, f, mark, r);
    }
    if !r.has_ready && f.quiet_for.is_some_and(|q| q >= r.quiet) {
        return after_delivery(View::of(AgentState::Ready, Source::Quiet), f, mark, r);
    }
    if f.ever_ready {
        View::of(AgentState::Busy, Source::Quiet)
    } else {
        View::of(AgentState::Starting, Source::Start)
    }
}

/// The screen as patterns see it: tmux pads the capture with the empty
/// rows below the cursor and keeps no trailing blanks; without them (and
/// without a final newline) `\z` means "right after the last text on the
/// screen", so a pattern can say "the last line is an empty prompt".
pub fn normalize(screen: &str) -> String {
    screen.trim_end_matches(['\n', ' ', '\t']).to_string()
}

/// A screen's fingerprint (FNV-1a 64), to tell whether it changed.
pub fn fingerprint(screen: &str) -> u64 {
    crate::model::queue::task::fnv1a64(screen.as_bytes())
}

/// `now` minus `d`, for tests and callers that keep instants.
pub fn ago(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - TimeDelta::from_std(d).unwrap_or(TimeDelta::zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentState::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn pats() -> Patterns {
        Patterns::new(
            &[r"^> *$"],
            &["esc to interrupt"],
            &[("trust", "Do you trust"), ("permission", r"Do you want to \w+\?")],
            None,
        )
        .unwrap()
    }

    const READY: &str = "hello\n> \n";
    const DRAFT: &str = "hello\n> half typed\n";
    const BUSY: &str = "thinking... esc to interrupt\n> \n";
    const TRUST: &str = "Do you trust the files in this folder?\n 1. Yes\n 2. No\n";

    fn facts<'a>(screen: Option<&'a str>) -> Facts<'a> {
        Facts {
            running: true,
            screen,
            quiet_for: None,
            mark: None,
            delivery: None,
            undelivered: None,
            seen_at: Some(t0()),
            ever_ready: true,
            parked_until: None,
            now: t0(),
        }
    }

    fn rules(p: &Patterns) -> Rules<'_> {
        Rules { patterns: p, has_ready: true, quiet: Duration::from_millis(1500) }
    }

    fn state(v: View) -> (AgentState, Source) {
        (v.state, v.source)
    }

    #[test]
    fn the_screen_alone() {
        let p = pats();
        let r = rules(&p);
        assert_eq!(state(decide(&facts(Some(READY)), &r)), (Ready, Source::Screen));
        assert_eq!(state(decide(&facts(Some(BUSY)), &r)), (Busy, Source::Screen), "busy wins");
        assert_eq!(state(decide(&facts(Some(DRAFT)), &r)), (Busy, Source::Quiet), "a draft waits");
        let v = decide(&facts(Some(TRUST)), &r);
        assert_eq!((v.state, v.reason.as_deref()), (Blocked, Some("trust")));
        assert_eq!(v.lines, ["Do you trust the files in this folder?"]);
        let mut f = facts(Some("booting...\n"));
        f.ever_ready = false;
        assert_eq!(state(decide(&f, &r)), (Starting, Source::Start));
        f.running = false;
        assert_eq!(state(decide(&f, &r)), (Unknown, Source::Process));
    }

    #[test]
    fn quiet_means_ready_only_without_a_ready_pattern() {
        let p = Patterns::new(&[], &["esc to interrupt"], &[], None).unwrap();
        let mut r = rules(&p);
        r.has_ready = false;
        let mut f = facts(Some("$ "));
        f.quiet_for = Some(Duration::from_millis(1400));
        assert_eq!(decide(&f, &r).state, Busy);
        f.quiet_for = Some(Duration::from_millis(1500));
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Quiet));
        f.screen = Some(BUSY);
        assert_eq!(decide(&f, &r).state, Busy, "a visible busy pattern beats quiet");
        // With a ready pattern configured, quiet is not enough.
        let p = pats();
        let mut f = facts(Some(DRAFT));
        f.quiet_for = Some(Duration::from_secs(60));
        assert_eq!(decide(&f, &rules(&p)).state, Busy);
    }

    #[test]
    fn a_fresh_mark_wins_a_stale_one_yields_to_a_contradicting_screen() {
        let p = pats();
        let r = rules(&p);
        let busy = Mark { state: Busy, reason: None, at: ago(t0(), Duration::from_secs(5)) };
        let mut f = facts(Some(READY));
        f.mark = Some(&busy);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Mark), "fresh mark beats the screen");
        let stale = Mark { at: ago(t0(), MARK_FRESH + Duration::from_secs(1)), ..busy.clone() };
        f.mark = Some(&stale);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen), "Esc-interrupted turn");
        f.screen = Some("something else\n");
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Mark), "no pattern: the mark stands");
        // An empty prompt that stood still long enough beats a busy mark
        // whose turn's end no hook reported; a moving one does not.
        f.mark = Some(&busy);
        f.screen = Some(READY);
        f.quiet_for = Some(BUSY_MARK_STILL);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen), "a skipped Stop hook");
        f.quiet_for = Some(Duration::from_secs(2));
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Mark), "a turn keeps its screen moving");
        f.quiet_for = None;
        // A dialog during the turn a busy mark announced is a block now.
        f.mark = Some(&busy);
        f.screen = Some(TRUST);
        let v = decide(&f, &r);
        assert_eq!(
            (v.state, v.reason.as_deref(), v.source),
            (Blocked, Some("trust"), Source::Screen)
        );
        f.mark = Some(&stale);
        f.screen = Some("something else\n");
        // Quiet never overrules a mark.
        let q = Patterns::new(&[], &[], &[], None).unwrap();
        let mut rq = rules(&q);
        rq.has_ready = false;
        f.quiet_for = Some(Duration::from_secs(600));
        assert_eq!(decide(&f, &rq).state, Busy);
        let blocked = Mark {
            state: Blocked,
            reason: Some("permission".into()),
            at: ago(t0(), Duration::from_secs(1)),
        };
        f.mark = Some(&blocked);
        let v = decide(&f, &r);
        assert_eq!(
            (v.state, v.reason.as_deref(), v.source),
            (Blocked, Some("permission"), Source::Mark)
        );
    }

    #[test]
    fn a_usage_limit_notice_is_stale_after_its_reset() {
        let p = Patterns::new(&[r"^> *$"], &[], &[("usage-limit", "limit reached")], None).unwrap();
        let r = rules(&p);
        let screen = "usage limit reached, resets 4pm\n> ";
        let mut f = facts(Some(screen));
        f.parked_until = Some(t0() + TimeDelta::hours(1));
        assert_eq!(decide(&f, &r).reason.as_deref(), Some("usage-limit"), "parked");
        f.parked_until = Some(t0());
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen), "the notice is history");
        f.parked_until = None;
        assert_eq!(decide(&f, &r).state, Blocked, "no reset time known: still blocked");
        // Past the reset, another block on the same screen is quoted by its
        // own lines, not by the stale notice's.
        let p = Patterns::new(
            &[r"^> *$"],
            &[],
            &[("usage-limit", "limit reached"), ("permission", "Do you want to")],
            None,
        )
        .unwrap();
        let r = rules(&p);
        let screen = "usage limit reached, resets 4pm\nDo you want to proceed?\n> ";
        let mut f = facts(Some(screen));
        f.parked_until = Some(t0());
        let v = decide(&f, &r);
        assert_eq!(v.reason.as_deref(), Some("permission"));
        assert_eq!(v.lines, ["Do you want to proceed?"]);
    }

    #[test]
    fn after_a_delivery_busy_until_the_screen_changed() {
        let p = pats();
        let r = rules(&p);
        let d = Delivery {
            at: ago(t0(), Duration::from_millis(300)),
            typed_at: None,
            task: "t".into(),
            screen_before: fingerprint(READY),
            changed: false,
        };
        let mut f = facts(Some(READY));
        f.delivery = Some(&d);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Delivery));
        // A different screen counts only if it was captured after the paste.
        let busy = fingerprint("● Thinking… (esc to interrupt)");
        assert!(!d.taken_in_by(busy, ago(t0(), Duration::from_millis(301))), "a stale capture");
        assert!(!d.taken_in_by(fingerprint(READY), t0()), "the same screen");
        assert!(d.taken_in_by(busy, t0()));
        let seen = Delivery { changed: true, ..d.clone() };
        f.delivery = Some(&seen);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen), "the turn ended");
        // ... but not on a screen asked for before the delivery, even once
        // another look saw it change (its record is newer than its screen).
        f.seen_at = Some(ago(t0(), Duration::from_millis(400)));
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Delivery), "a stale screen");
        f.seen_at = Some(t0());
        // A ready mark older than the delivery does not count; a newer one does.
        let old = Mark { state: Ready, reason: None, at: ago(t0(), Duration::from_secs(1)) };
        f.delivery = Some(&d);
        f.mark = Some(&old);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Delivery));
        let new = Mark { state: Ready, reason: None, at: t0() };
        f.mark = Some(&new);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Mark));
        // A screen that never changes stops holding it after MARK_FRESH.
        let long = Delivery { at: ago(t0(), MARK_FRESH), ..d.clone() };
        f.mark = None;
        f.delivery = Some(&long);
        assert_eq!(decide(&f, &r).state, Ready);
    }

    /// Seen under load with Claude Code 2.1.332 and the README's hooks:
    /// a delivery confirmed by the screen, the spinner moving, and the
    /// agent's `UserPromptSubmit` hook not yet run. The `ready` mark of the
    /// turn before must not make it ready: four more messages were typed
    /// into the working agent within 2 s (tests/conformance, case
    /// `burst_slow_hook`).
    #[test]
    fn a_mark_from_before_a_delivery_no_longer_speaks_for_the_agent() {
        let p = pats();
        let r = rules(&p);
        let typed = ago(t0(), Duration::from_millis(500));
        let d = Delivery {
            at: ago(t0(), Duration::from_millis(400)),
            typed_at: Some(typed),
            task: "t".into(),
            screen_before: fingerprint(READY),
            changed: true,
        };
        let before = Mark { state: Ready, reason: None, at: ago(t0(), Duration::from_secs(1)) };
        let mut f = facts(Some("● Thinking… (esc to interrupt)"));
        f.delivery = Some(&d);
        f.mark = Some(&before);
        assert_eq!(
            state(decide(&f, &r)),
            (Busy, Source::Screen),
            "the screen speaks, not the old mark"
        );
        f.screen = Some(READY);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen), "the turn ended on the screen");
        // A ready mark made while the message was typed is the turn before's, late.
        let late = Mark { state: Ready, reason: None, at: ago(t0(), Duration::from_millis(450)) };
        f.screen = Some("● Thinking… (esc to interrupt)");
        f.mark = Some(&late);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Screen));
        // A busy mark made since the paste began is this turn's, even before the commit.
        let submit = Mark { state: Busy, reason: None, at: ago(t0(), Duration::from_millis(450)) };
        f.screen = Some(READY);
        f.mark = Some(&submit);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Mark));
        // The Stop hook's ready mark, after the commit, ends the turn.
        let stop = Mark { state: Ready, reason: None, at: ago(t0(), Duration::from_millis(100)) };
        f.screen = Some("● Thinking… (esc to interrupt)");
        f.mark = Some(&stop);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Mark));
        // A record from an older muxvisor has no typed_at: the commit stands for it.
        let old = Delivery { typed_at: None, ..d.clone() };
        f.delivery = Some(&old);
        f.mark = Some(&submit);
        assert_eq!(state(decide(&f, &r)).0, Busy);
        f.screen = Some(READY);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen), "that busy mark predates `at`");
    }

    #[test]
    fn the_screen_of_the_confirmed_delivery_holds_it_busy_for_quiet_only() {
        let p = pats();
        let r = rules(&p);
        // Confirmed on a screen that already shows the empty prompt again
        // (before the turn's first output): busy, until it changes ...
        let d = Delivery {
            at: ago(t0(), Duration::from_millis(200)),
            typed_at: None,
            task: "t".into(),
            screen_before: fingerprint(READY),
            changed: false,
        };
        let mut f = facts(Some(READY));
        f.delivery = Some(&d);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Delivery));
        // ... or until it has stood unchanged for --quiet: the turn printed
        // nothing more.
        let quiet = Delivery { at: ago(t0(), r.quiet), ..d.clone() };
        f.delivery = Some(&quiet);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen));
        // Another screen not yet seen by a writing look still waits MARK_FRESH.
        let other = Delivery { screen_before: fingerprint("typed\n> \n"), ..quiet.clone() };
        f.delivery = Some(&other);
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Delivery));
    }

    /// Issue 17, items 6 and 7: Codex 0.171 keeps its empty prompt drawn
    /// while an answer streams, and draws it before its login picker.
    #[test]
    fn a_preset_s_settle_holds_a_ready_prompt_until_the_screen_stood_still() {
        let p = pats().with_settle(Duration::from_secs(3));
        let r = rules(&p);
        let mut f = facts(Some(READY));
        f.quiet_for = Some(Duration::from_millis(500));
        assert_eq!(state(decide(&f, &r)), (Busy, Source::Quiet), "streaming: not ready");
        f.ever_ready = false;
        assert_eq!(decide(&f, &r).state, Starting, "before a login screen: not ready");
        f.quiet_for = Some(Duration::from_secs(3));
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Screen));
        f.quiet_for = None;
        assert_eq!(decide(&f, &r).state, Starting, "quiet unknown: not yet");
        let ready = Mark { state: Ready, reason: None, at: t0() };
        f.mark = Some(&ready);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Mark), "a mark is never delayed");
    }

    #[test]
    fn an_undelivered_message_blocks_until_a_newer_mark() {
        let p = pats();
        let r = rules(&p);
        let u = Undelivered {
            at: ago(t0(), Duration::from_secs(5)),
            task: "t".into(),
            lines: vec!["> first message".into()],
        };
        let mut f = facts(Some(READY));
        f.undelivered = Some(&u);
        let v = decide(&f, &r);
        assert_eq!((v.state, v.reason.as_deref()), (Blocked, Some(UNDELIVERED)));
        assert_eq!(v.lines, ["> first message"]);
        let old = Mark { state: Ready, reason: None, at: ago(t0(), Duration::from_secs(9)) };
        f.mark = Some(&old);
        assert_eq!(decide(&f, &r).state, Blocked, "a mark from before does not clear it");
        let new = Mark { state: Ready, reason: None, at: t0() };
        f.mark = Some(&new);
        assert_eq!(state(decide(&f, &r)), (Ready, Source::Mark));
        f.running = false;
        f.mark = None;
        assert_eq!(decide(&f, &r).state, Unknown);
    }
}
