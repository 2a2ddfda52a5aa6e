//! Agent presets: what Claude Code, Codex CLI, Gemini CLI and Aider print
//! when they are ready for input, busy with a turn, or blocked on a person,
//! and how each resumes a conversation (SPEC §8, §9).
//!
//! Every string here was read in the program's own source, its test
//! snapshots, or a screen quoted in a public issue; each preset's `source`
//! lists where (and `src/model/agent/PRESETS.md` is the same table for people).
//! Programs change their wording: each preset says which version it matches,
//! and `add --ready-pattern/--busy-pattern/--blocked-pattern` override it.
//!
//! # How patterns are matched
//!
//! Patterns are `regex` crate syntax, compiled in multi-line mode (`^` and
//! `$` match at every line; [`compile`]), and matched against the VISIBLE
//! screen only: `tmux capture-pane -p` output, plain text without ANSI, box
//! drawing as Unicode, trailing spaces present (`-N`, `-J`) or trimmed (the
//! default), so patterns allow both. `\z` still means the end of the screen,
//! which lets a line-oriented program's patterns say "the last line".
//!
//! # Ready means an EMPTY prompt
//!
//! A ready pattern matches only a prompt that holds no text, so a draft a
//! person left half-typed is never clobbered: a prompt line with text after
//! the prompt character is not ready, and the caller waits. Placeholders
//! complicate this. Several agents draw a hint inside the empty prompt
//! (Claude `Try "…"`, Codex "Summarize recent commits", Gemini "Type your
//! message or @path/to/file"); they are dim, which `capture-pane -p` does not
//! show, so a ready pattern lists the program's own placeholder texts and
//! accepts exactly those. What stays ambiguous is said per preset: a draft
//! that equals a placeholder reads as empty, and Claude's dim
//! autosuggestion after a turn reads as a draft (not ready) — a `Stop` hook
//! calling `muxvisor mark <id> ready` settles both.
//!
//! # Precedence
//!
//! [`classify`]: blocked > busy > ready > nothing. A permission prompt shows
//! mid-turn, and agents keep the prompt box drawn while they work, so a
//! visible busy pattern wins over a visible ready one. Blocked patterns are
//! tried in the order listed; the first that matches names the reason.
//!
//! A notice that stays in the transcript (Claude's usage-limit line) keeps
//! matching after the program recovered, until it scrolls off: the caller
//! should treat a `usage-limit` verdict whose [`Patterns::reset_time`] has
//! passed as stale and re-check (SPEC §9 usage-limit parking).

use std::time::Duration;

use regex::{Regex, RegexBuilder};

/// The reasons a preset's blocked patterns give (SPEC §8 `blocked(reason)`).
pub mod reason {
    /// A "do you trust this folder" dialog at a first start in a folder.
    pub const TRUST: &str = "trust";
    /// A tool or command approval prompt.
    pub const PERMISSION: &str = "permission";
    /// Authentication is needed (login picker, expired or missing credentials).
    pub const LOGIN: &str = "login";
    /// A usage or rate limit notice; see [`super::Preset::reset`].
    pub const USAGE_LIMIT: &str = "usage-limit";
    /// An update prompt that waits for an answer.
    pub const UPDATE: &str = "update";
    /// A one-time acceptance dialog (Claude Code's Bypass Permissions warning).
    pub const CONSENT: &str = "consent";
    /// A first-start screen that waits for a person (a theme picker,
    /// security notes, a terminal set-up offer).
    pub const ONBOARDING: &str = "onboarding";
    /// The program asks for an API key, or to confirm the one it found.
    pub const API_KEY: &str = "api-key";
    /// Every reason a preset may give.
    pub const ALL: &[&str] =
        &[TRUST, PERMISSION, LOGIN, USAGE_LIMIT, UPDATE, CONSENT, ONBOARDING, API_KEY];
}

/// The placeholder in [`Resume`] arguments that stands for the conversation id.
pub const SESSION_ID: &str = "{session_id}";

/// How a program is told which conversation to use (issue 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Arguments added at a fresh start to set the id muxvisor chose; empty
    /// when the program cannot be told one (its id then comes from
    /// `mark --session-id`, e.g. from its session-start hook).
    pub fresh: &'static [&'static str],
    /// Arguments that resume the conversation `{session_id}`.
    pub resume: &'static [&'static str],
}

/// The screen patterns and resume arguments of one agent program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The `--agent` name.
    pub name: &'static str,
    /// Which program version's strings these are.
    pub version: &'static str,
    /// An empty prompt waiting for input (never a prompt holding a draft).
    pub ready: &'static [&'static str],
    /// A turn in progress.
    pub busy: &'static [&'static str],
    /// `(reason, pattern)`: a person is needed; reasons from [`reason`].
    pub blocked: &'static [(&'static str, &'static str)],
    /// The usage-limit reset time: a pattern whose group `reset` captures
    /// the time as shown (the format is documented per preset).
    pub reset: Option<&'static str>,
    /// Resume arguments, or `None` when the program cannot resume by id.
    pub resume: Option<Resume>,
    /// How long the screen must stay unchanged before a ready pattern's
    /// match counts: for a program that keeps its empty prompt drawn while
    /// an answer streams in above it, or draws it for a moment before a
    /// login screen replaces it. Zero: at once. A mark is never delayed.
    pub settle: Duration,
    /// Where each string was seen.
    pub source: &'static [&'static str],
}

/// Claude Code. The prompt is a line `❯ ` (`>` in some builds) between two
/// `─` rules since 2.x, and a rounded box `│ > … │` in 1.x and the fake
/// agent. A draft is text after the prompt character on that line, or a
/// further line before the box closes (a draft whose first line is empty);
/// the only text accepted as empty is the idle hint `Try "…"`.
pub const CLAUDE: Preset = Preset {
    name: "claude",
    version: "Claude Code 2.1.332 (screens captured under muxvisor, Dec 2026); strings quoted from 2.1.19 to 2.1.267; the 1.x boxed prompt too",
    ready: &[
        // 2.x: a rule line, the prompt line with nothing (or the `Try "…"`
        // hint) after the prompt character, and the closing rule right
        // below (a draft's further lines would come before it).
        // 2.1.332 draws `Resend your message to try again` (dim) in the
        // empty prompt after a turn ended on an API error.
        r#"^─[^\n]*\n[❯>][ \t\u{a0}]*(?:(?:Try "[^"\n]*"|Resend your message to try again)[ \t\u{a0}]*)?\n─"#,
        // 1.x (and the fake agent): `│ > ` then only blanks up to `│`, and
        // the bottom border right below.
        r#"^│ > (?:Try "[^"\n]*")?[ \t\u{a0}]*│[ \t]*\n╰"#,
    ],
    busy: &[
        // The hint on the spinner line until 2.1.20x, still shown by some builds.
        r"(?i:esc to interrupt)",
        // The spinner line: a spinner glyph at column 0, a verb and `…`,
        // e.g. `✻ Herding… (8m 39s · ↓ 834 tokens)`. A finished turn reads
        // `✻ Cooked for 1m 23s`, without `…`.
        r"^[·✢✳✶✻✽*] \S[^\n]*…",
    ],
    blocked: &[
        (
            reason::TRUST,
            r"Do you trust the files in this folder\?|Quick safety check: Is this a project you created or one you trust\?|Yes, I trust this folder",
        ),
        (reason::CONSENT, r"WARNING: Claude Code running in Bypass Permissions mode"),
        // First start on a fresh HOME (2.1.332): the theme picker, the
        // security notes, the terminal set-up offer (not shown under tmux).
        (
            reason::ONBOARDING,
            r"Choose the text style that looks best with your terminal|(?s:Security notes:.{0,1500}Press Enter to continue)|Use Claude Code's terminal setup\?",
        ),
        // The confirmation of a key found in the environment (2.1.x, as
        // quoted in issue 17; behind the vendor preflight, not captured).
        (
            reason::API_KEY,
            r"Detected a custom API key in your environment|Do you want to use this API key\?",
        ),
        // `You've hit your 5-hour limit · resets 4:54am (UTC)` and the
        // footer `⚠ Usage limit reached · limit resets 4:54am` (2.1.332);
        // either apostrophe.
        (
            reason::USAGE_LIMIT,
            r"You[’']ve hit your (?:[\w-]+ )?limit\b|You[’']re out of extra usage|Claude (?:AI )?usage limit reached|\b\d+-hour limit reached|Stop and wait for limit to reset|⚠ Usage limit reached",
        ),
        (reason::LOGIN, r"Select login method:|Please run /login|OAuth token has expired"),
        (
            reason::PERMISSION,
            // `Do you want to proceed?` (or `… make this edit to x?`) with
            // the options right below; `N. Deny (esc)` for browser prompts.
            r"Do you want to [^\n]*\?[ \t]*\n(?:[^\n]*\n){0,2}?[ \t]*(?:❯[ \t]*)?(?:1\. )?Yes\b|\d\. Deny \(esc\)",
        ),
    ],
    // `resets 4:20pm (Asia/Tbilisi)`, `resets 10pm (America/New_York)`,
    // `resets 10pm`: 12-hour local time, lower-case am/pm, minutes only when
    // not zero, then the IANA zone in parentheses when shown. 1.x said
    // `Your limit will reset at 3pm (America/New_York).`
    reset: Some(r"\breset(?:s| at) (?P<reset>\d{1,2}(?::\d{2})?\s?[ap]m(?: \([^)\n]+\))?)"),
    // One report (claude-code#44607, Apr 2026) says interactive mode saved
    // the session under its own id despite `--session-id`: a SessionStart
    // hook calling `mark --session-id` records the id actually used.
    resume: Some(Resume {
        fresh: &["--session-id", SESSION_ID],
        resume: &["--resume", SESSION_ID],
    }),
    settle: Duration::ZERO,
    source: &[
        "https://github.com/anthropics/claude-code/issues/40002 (trust dialog, Quick safety check)",
        "https://github.com/AgentWorkforce/relay/pull/756 (trust dialog of 2.1.19: Do you trust the files in this folder?)",
        "https://github.com/anthropics/claude-code/issues/90582 (trust dialog, Aug 2026)",
        "https://github.com/anthropics/claude-code/issues/34007 (permission prompt: Do you want to proceed? ❯ 1. Yes)",
        "https://github.com/anthropics/claude-code/issues/156 (permission prompt, numberless options)",
        "https://github.com/kbwo/ccmanager/blob/main/src/services/stateDetector/claude.ts (prompt between ─ rules, spinner glyphs, Deny (esc))",
        "https://github.com/agent-of-empires/agent-of-empires/issues/378 (spinner line without the interrupt hint, 2.1.69+)",
        "https://github.com/qwwiwi/dashi-plugin-claude-code/pull/101 (2.1.201 dropped esc to interrupt)",
        "https://github.com/asheshgoplani/agent-deck/blob/main/internal/send/guard.go (❯ Try \"…\" idle hint, dim autosuggestion)",
        "https://github.com/anthropics/claude-code/issues/20719 (usage limit notice and the empty ❯ prompt between rules)",
        "https://github.com/gastownhall/gastown/issues/1066 (You're out of extra usage, /rate-limit-options menu)",
        "https://github.com/anthropics/claude-code/issues/93343 (You've hit your session limit · resets 4:20pm (Asia/Tbilisi), 2.1.267)",
        "https://github.com/anthropics/claude-code/issues/35744 (5-hour limit reached - resets 3pm)",
        "https://github.com/21st-dev/1code/issues/119 (Select login method:)",
        "https://github.com/kunchenguid/firstmate/pull/4239 (Bypass Permissions mode warning)",
        "https://github.com/kbwo/ccmanager/blob/main/src/utils/promptDetector.ts (1.x boxed prompt │ > │)",
        "https://docs.claude.com/en/docs/claude-code/cli-reference (--session-id, --resume)",
        "https://github.com/anthropics/claude-code/issues/44607 (report: --session-id may not set the persisted id in interactive mode)",
        "tests/conformance/screens/claude-2.1.332/ (2.1.332 run offline against tests/conformance/mock_anthropic.py: onboarding theme and security notes, Quick safety check, Resend your message placeholder, You've hit your 5-hour limit)",
    ],
};

/// Codex CLI's text placeholders for an empty composer, from
/// `codex-rs/tui/src/chatwidget.rs` (`PLACEHOLDERS`, `SIDE_PLACEHOLDERS`),
/// plus the one its test snapshots show, then the footer of a Codex whose
/// start-up finished: 0.171.0 draws `› Ask Codex to do anything` with only
/// `? for shortcuts` below it for a few seconds at start, and a login
/// picker may still replace that prompt (and a message typed into it is
/// lost); once started it shows `← for agents · ? for shortcuts` (and its
/// status line) a few lines below the prompt.
const CODEX_READY: &str = r"^› (?:Explain this codebase|Summarize recent commits|Implement \{feature\}|Find and fix a bug in @filename|Write tests for @filename|Improve documentation in @filename|Run /review on my current changes|Use /skills to list available skills|Check recently modified functions for compatibility|How many files have been modified\?|Will this algorithm scale well\?|Ask Codex to do anything)?[ \t]*\n(?:[^\n]*\n){0,4}?[^\n]*← for agents";

/// Codex CLI (the Rust TUI, `codex-rs/tui`). The composer is a line `› `;
/// when empty it shows one of a fixed list of placeholders, so the ready
/// pattern accepts the prompt character followed by nothing or by exactly
/// one of those texts: any other text is a draft. A draft identical to a
/// placeholder reads as empty.
pub const CODEX: Preset = Preset {
    name: "codex",
    version: "Codex CLI 0.171.0 (screens captured under muxvisor, Dec 2026); 0.14x strings from codex-rs (Aug 2026)",
    ready: &[CODEX_READY],
    busy: &[
        // The status line `• Working (12s • esc to interrupt)`; older builds
        // wrote `Esc`.
        r"(?i:esc to interrupt)",
        // 0.171.0: a message sent before its start-up finished is held
        // (`Waiting for startup  · esc cancel`) and submitted later.
        r"^[ \t]*Waiting for startup\b",
    ],
    blocked: &[
        (
            reason::TRUST,
            r"Do\s+you\s+trust\s+the\s+contents\s+of\s+this\s+directory\?|You are running Codex in |allow\s+Codex\s+to\s+work\s+in\s+this\s+folder|Trust this folder\? Codex can",
        ),
        // `Update available!` (0.14x), `Update available · 0.171.0 → …` (0.171).
        (reason::UPDATE, r"(?s:Update available[!·  ].{0,2000}?Skip until next)"),
        // 0.171.0: the API-key entry of its login flow.
        (reason::API_KEY, r"Paste or type your API key|Use your own OpenAI API key"),
        (
            reason::LOGIN,
            r"Sign in with ChatGPT|Provide your own API key|Finish signing in via your browser|Sign in another way|Choose how you want to use Codex",
        ),
        // 0.171.0 prints a typographic apostrophe (U+2019): `You’ve`.
        (reason::USAGE_LIMIT, r"You[’']ve hit your usage limit|Your workspace is out of credits"),
        (
            reason::PERMISSION,
            r"Would you like to (?:run the following command|make the following edits|grant these permissions)\?",
        ),
    ],
    // `… or try again at 3:28 PM.` the same day, `… try again at Aug 8th,
    // 2026 12:30 PM.` later (local time, chrono `%-I:%M %p` and
    // `%b %-d<st|nd|rd|th>, %Y %-I:%M %p`); older builds: `try again in
    // 3 days 6 hours 57 minutes.` The TUI wraps long lines, so the capture
    // may hold a line break and indentation: normalise the whitespace.
    reset: Some(r"[Tt]ry\s+again\s+(?P<reset>(?:at|in)\s[^.]{1,60}?)\."),
    resume: Some(Resume { fresh: &[], resume: &["resume", SESSION_ID] }),
    // 0.171.0 keeps `› Ask Codex to do anything` drawn while an answer
    // streams in above it (no working line then), and draws it for about a
    // second at a first start before its login picker replaces it (1.3 s
    // in embedded mode). Its hooks (README) are exact; the screen needs this.
    settle: Duration::from_secs(3),
    source: &[
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/status_indicator_widget.rs (Working, (Ns • esc to interrupt))",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/chatwidget/snapshots/codex_tui__chatwidget__tests__chatwidget_tall.snap (full screen: status line, › composer, ? for shortcuts)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/chatwidget.rs (PLACEHOLDERS)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/onboarding/trust_directory.rs (Do you trust the contents of this directory?)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/onboarding/snapshots/codex_tui__onboarding__trust_directory__tests__renders_snapshot_for_git_repo.snap (older trust screen)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/chatwidget/snapshots/codex_tui__chatwidget__tests__approval_modal_exec.snap (Would you like to run the following command?)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/bottom_pane/approval_overlay.rs (Would you like to make the following edits?)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/onboarding/auth.rs (Sign in with ChatGPT, Provide your own API key)",
        "https://github.com/openai/codex/blob/main/codex-rs/core/src/error.rs (UsageLimitReachedError, retry_suffix, format_retry_timestamp)",
        "https://github.com/openai/codex/blob/main/codex-rs/tui/src/update_prompt.rs (Update available! … Skip until next version; screen quoted in public code for 0.128 -> 0.144.5)",
        "https://github.com/kbwo/ccmanager/blob/main/src/services/stateDetector/codex.ts",
        "codex --help: resume  Resume a previous interactive session (picker by default; use --last to continue the most recent)",
        "tests/conformance/screens/codex-0.171.0/ (0.171.0 run offline against tests/conformance/mock_openai.py: trust, update, login, api-key, usage-limit with U+2019, Waiting for startup, streaming with the prompt drawn)",
    ],
};

/// Gemini CLI (`packages/cli/src/ui`). The input prompt is ` > ` between two
/// rules (a rounded box in older builds); when empty it shows the
/// placeholder `Type your message or @path/to/file`, which the ready pattern
/// requires, so any other text after `>` is a draft. The prompt stays drawn
/// while a turn runs; the loading line `(esc to cancel, 5s)` is the busy sign.
pub const GEMINI: Preset = Preset {
    name: "gemini",
    version: "Gemini CLI 0.61.0 (screens captured under muxvisor, Dec 2026); 0.56 strings from its source",
    ready: &[r"^[│ ]*[>*] +Type your message or @path/to/file[ \t│]*$"],
    busy: &[r"\(esc to cancel, \d"],
    blocked: &[
        (reason::TRUST, r"Do you trust the files in this folder\?|Do you trust this folder\?"),
        // 0.61.0: the key entry that follows `2. Use Gemini API Key`.
        (reason::API_KEY, r"Enter Gemini API Key|Paste your API key here"),
        (
            reason::LOGIN,
            r"How would you like to authenticate for this project\?|Waiting for auth\b",
        ),
        // The dialogs only: the `✕ [API Error: You have exhausted your daily
        // quota …]` line stays in the history after the dialog is answered,
        // and read as blocked at an empty prompt (0.61.0).
        (
            reason::USAGE_LIMIT,
            r"Usage limit reached for |We are currently experiencing high demand for ",
        ),
        (reason::PERMISSION, r"\d\. Allow once\b|Waiting for user confirmation"),
    ],
    // `Access resets at 3:45 PM PDT.`: Intl en-US `h:mm AM/PM` and the short
    // zone name, local time.
    reset: Some(r"Access resets at (?P<reset>\d{1,2}:\d{2}\s?[AP]M(?: [A-Za-z][\w+:-]*)?)"),
    resume: Some(Resume {
        fresh: &["--session-id", SESSION_ID],
        resume: &["--resume", SESSION_ID],
    }),
    settle: Duration::ZERO,
    source: &[
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/components/InputPrompt.tsx (placeholder)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/components/__snapshots__/InputPrompt.test.tsx.snap (empty, yolo and draft prompts)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/components/LoadingIndicator.tsx ((esc to cancel, Ns))",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/components/FolderTrustDialog.tsx (Do you trust the files in this folder?)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/components/messages/ToolConfirmationMessage.tsx (Apply this change?, Allow once)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/components/messages/__snapshots__/ToolConfirmationMessage.test.tsx.snap",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/auth/AuthDialog.tsx (How would you like to authenticate for this project?)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/ui/hooks/useQuotaAndFallback.ts (Usage limit reached for, Access resets at)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/config/config.ts (--session-id, --resume)",
        "https://github.com/google-gemini/gemini-cli/blob/main/packages/cli/src/utils/sessionUtils.ts (--resume takes a session UUID, an index or latest)",
        "tests/conformance/screens/gemini-0.61.0/ (0.61.0 run offline against tests/conformance/mock_gemini.py: Enter Gemini API Key, the usage-limit dialogs, an API error line left in the history)",
    ],
};

/// Aider (`aider/io.py`), a line-oriented prompt_toolkit program: its prompt
/// `> ` (or `<edit-format>> `, `multi> `) is the last line on the screen, and
/// everything it printed before stays above. Patterns are therefore anchored
/// to the end of the screen (`\z`, after any blank rows): an empty prompt
/// there is ready, text after `> ` is a draft, and a `(Y)es/(N)o … [Yes]: `
/// question there is blocked (an answered one, `… [Yes]: y`, is history).
pub const AIDER: Preset = Preset {
    name: "aider",
    version: "Aider 0.86.2 (screens captured under muxvisor, Dec 2026)",
    // The line above the empty prompt holds no `>`: Aider draws `> ` before
    // each line of a multi-line draft, so a draft ending in a newline ends
    // with an empty `> ` line (0.86.2) under its own text.
    ready: &[r"(?:\A|^[^>\n]*\n)(?:[\w-]+(?: multi)?|multi)?>[ \t]*(?:\n[ \t]*)*\z"],
    // The WaitingSpinner line, `░█        Waiting for <model>` (ASCII `#=`
    // on terminals without Unicode), printed with `\r` on the last line.
    // While the answer streams nothing marks the turn: the verdict is
    // `Nothing` (neither ready nor blocked).
    busy: &[r"^[░█=# ]{10} Waiting for "],
    blocked: &[
        (
            reason::UPDATE,
            r"(?s:Newer aider version v\S+ is available\..*\(Y\)es/\(N\)o[^\n]*\]:[ \t]*(?:\n[ \t]*)*\z)",
        ),
        (
            reason::LOGIN,
            r"Login to OpenRouter or create a free account\? \(Y\)es/\(N\)o[^\n]*\]:[ \t]*(?:\n[ \t]*)*\z",
        ),
        // First-start questions (0.86.2): analytics, a git repo, release
        // notes, the documentation of an unknown model's warning.
        (
            reason::ONBOARDING,
            r"(?:Allow collection of anonymous analytics|No git repo found, create one|Would you like to see what's new in this version\?|(?i:Open documentation url for more info\?))[^\n]*\(Y\)es/\(N\)o[^\n]*\]:[ \t]*(?:\n[ \t]*)*\z",
        ),
        // Every other confirm_ask question: add a file, run a shell command,
        // create a file, allow an edit.
        (reason::PERMISSION, r"\(Y\)es/\(N\)o[^\n]*\]:[ \t]*(?:\n[ \t]*)*\z"),
    ],
    // Aider retries rate limits itself (`Retrying in N seconds...`) and
    // returns to the prompt; it shows no reset time.
    reset: None,
    // `--restore-chat-history` reloads `.aider.chat.history.md`; there is no
    // conversation id to resume.
    resume: None,
    settle: Duration::ZERO,
    source: &[
        "https://github.com/Aider-AI/aider/blob/main/aider/io.py (get_input prompt_prefix, confirm_ask (Y)es/(N)o … [Yes]: )",
        "https://github.com/Aider-AI/aider/blob/main/aider/waiting.py (WaitingSpinner frames ░█ / #=)",
        "https://github.com/Aider-AI/aider/blob/main/aider/coders/base_coder.py (Waiting for <model>, banner)",
        "https://github.com/Aider-AI/aider/blob/main/aider/versioncheck.py (Newer aider version v… is available.)",
        "https://github.com/Aider-AI/aider/blob/main/aider/utils.py (Run pip install?)",
        "https://github.com/Aider-AI/aider/blob/main/aider/onboarding.py (Login to OpenRouter or create a free account?)",
        "tests/conformance/screens/aider-0.86.2/ (0.86.2 run offline against tests/conformance/mock_openai.py: first-start questions, confirmations, a draft ending in a newline, the spinner during a 429 retry)",
    ],
};

/// The presets `--agent` selects.
pub const PRESETS: &[Preset] = &[CLAUDE, CODEX, GEMINI, AIDER];

/// The preset named `name`, if any.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// What a screen says about an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A person is needed; the reason names the first blocked pattern that matched.
    Blocked(String),
    /// A turn is in progress.
    Busy,
    /// An empty prompt is waiting for input.
    Ready,
    /// None of the patterns matched.
    Nothing,
}

/// Compile one pattern the way every screen pattern is compiled: multi-line
/// (`^`/`$` at each line).
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).multi_line(true).build()
}

/// A compiled set of screen patterns: a preset's, or one a user gave (the
/// caller merges explicit patterns over a preset's before compiling).
#[derive(Debug, Clone)]
pub struct Patterns {
    ready: Vec<Regex>,
    busy: Vec<Regex>,
    blocked: Vec<(String, Regex)>,
    reset: Option<Regex>,
    settle: Duration,
}

impl Patterns {
    /// Compile patterns; `blocked` is `(reason, pattern)` in priority order,
    /// `reset` a pattern with a group named `reset`.
    pub fn new(
        ready: &[&str],
        busy: &[&str],
        blocked: &[(&str, &str)],
        reset: Option<&str>,
    ) -> Result<Patterns, regex::Error> {
        let all = |ps: &[&str]| ps.iter().map(|p| compile(p)).collect::<Result<Vec<_>, _>>();
        Ok(Patterns {
            ready: all(ready)?,
            busy: all(busy)?,
            blocked: blocked
                .iter()
                .map(|(why, p)| Ok((why.to_string(), compile(p)?)))
                .collect::<Result<Vec<_>, regex::Error>>()?,
            reset: reset.map(compile).transpose()?,
            settle: Duration::ZERO,
        })
    }

    /// The same patterns, with a ready match counting only after the screen
    /// stood still for `settle` (see [`Preset::settle`]).
    pub fn with_settle(mut self, settle: Duration) -> Patterns {
        self.settle = settle;
        self
    }

    /// True when a busy pattern is configured: the agent shows a turn.
    pub fn has_busy(&self) -> bool {
        !self.busy.is_empty()
    }

    /// How long the screen must stand still before a ready match counts.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// Compile a preset's patterns.
    pub fn preset(p: &Preset) -> Result<Patterns, regex::Error> {
        Ok(Patterns::new(p.ready, p.busy, p.blocked, p.reset)?.with_settle(p.settle))
    }

    /// Blocked > busy > ready > nothing (see the module doc).
    pub fn classify(&self, screen: &str) -> Verdict {
        self.classify_without(screen, None)
    }

    /// [`Patterns::classify`] ignoring the blocked patterns of reason
    /// `skip`, if given (a notice known to be stale, such as a usage limit
    /// past its reset).
    pub fn classify_without(&self, screen: &str, skip: Option<&str>) -> Verdict {
        if let Some((why, _)) = self.blocked_match_without(screen, skip) {
            return Verdict::Blocked(why.to_string());
        }
        if self.busy.iter().any(|r| r.is_match(screen)) {
            return Verdict::Busy;
        }
        if self.ready.iter().any(|r| r.is_match(screen)) {
            return Verdict::Ready;
        }
        Verdict::Nothing
    }

    /// The first blocked pattern that matches: its reason and the whole
    /// screen lines the match touches (to quote in a message).
    pub fn blocked_match<'s>(&self, screen: &'s str) -> Option<(&str, Vec<&'s str>)> {
        self.blocked_match_without(screen, None)
    }

    /// [`Patterns::blocked_match`] ignoring the patterns of reason `skip`.
    pub fn blocked_match_without<'s>(
        &self,
        screen: &'s str,
        skip: Option<&str>,
    ) -> Option<(&str, Vec<&'s str>)> {
        self.blocked.iter().filter(|(why, _)| Some(why.as_str()) != skip).find_map(|(why, r)| {
            let m = r.find(screen)?;
            Some((why.as_str(), lines_of(screen, m.start(), m.end())))
        })
    }

    /// Where the last ready-pattern match in `text` starts (a byte offset),
    /// if any: the ready prompt drawn last.
    pub fn last_ready_at(&self, text: &str) -> Option<usize> {
        self.ready.iter().filter_map(|r| r.find_iter(text).last().map(|m| m.start())).max()
    }

    /// The usage-limit reset time as the screen shows it, if the patterns
    /// have a reset pattern and it matches.
    pub fn reset_time<'s>(&self, screen: &'s str) -> Option<&'s str> {
        let caps = self.reset.as_ref()?.captures(screen)?;
        caps.name("reset").map(|m| m.as_str())
    }
}

/// The screen lines that the byte range `start..end` touches.
fn lines_of(screen: &str, start: usize, end: usize) -> Vec<&str> {
    let first = screen[..start].rfind('\n').map_or(0, |i| i + 1);
    // A match that ends right after a newline does not touch the next line.
    let end = if end > start && screen[..end].ends_with('\n') { end - 1 } else { end };
    let last = screen[end..].find('\n').map_or(screen.len(), |i| end + i);
    screen[first..last.max(first)].lines().collect()
}

/// Classify a screen with a preset's patterns (compiled on each call; keep
/// a [`Patterns`] to classify many screens).
pub fn classify(screen: &str, p: &Preset) -> Verdict {
    Patterns::preset(p).expect("preset patterns compile (tested)").classify(screen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> Vec<(String, String)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).expect("read fixture"))
            })
            .collect();
        out.sort();
        out
    }

    /// `claude-usage-limit.notice.txt` -> ("claude", "usage-limit").
    fn parse_name(name: &str) -> (&str, &str) {
        let stem = name.strip_suffix(".txt").unwrap();
        let stem = stem.split('.').next().unwrap();
        stem.split_once('-').expect("<agent>-<state>")
    }

    fn preset_for(agent: &str) -> &'static Preset {
        // The fake agent stands in for Claude Code.
        preset(if agent == "fake" { "claude" } else { agent }).expect("known agent")
    }

    #[test]
    fn patterns_compile_and_are_documented() {
        assert_eq!(
            PRESETS.iter().map(|p| p.name).collect::<Vec<_>>(),
            ["claude", "codex", "gemini", "aider"]
        );
        for p in PRESETS {
            let compiled = Patterns::preset(p).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(
                !p.ready.is_empty() && !p.busy.is_empty() && !p.blocked.is_empty(),
                "{}",
                p.name
            );
            assert!(!p.version.is_empty() && !p.source.is_empty(), "{}", p.name);
            for (why, _) in p.blocked {
                assert!(reason::ALL.contains(why), "{}: reason {why}", p.name);
            }
            if let Some(r) = p.reset {
                assert!(
                    compile(r).unwrap().capture_names().any(|n| n == Some("reset")),
                    "{}",
                    p.name
                );
            }
            if let Some(r) = p.resume {
                assert!(r.resume.contains(&SESSION_ID), "{}", p.name);
                assert!(r.fresh.is_empty() || r.fresh.contains(&SESSION_ID), "{}", p.name);
            }
            assert!(compiled.classify("").eq(&Verdict::Nothing), "{}: empty screen", p.name);
        }
    }

    #[test]
    fn every_fixture_classifies_as_its_name_says() {
        let all = fixtures();
        assert!(all.len() >= 20, "fixtures found: {}", all.len());
        let mut failures = Vec::new();
        for (name, screen) in &all {
            let (agent, state) = parse_name(name);
            let got = classify(screen, preset_for(agent));
            let ok = match state {
                "ready" => got == Verdict::Ready,
                "busy" => got == Verdict::Busy,
                // A prompt holding typed text: never ready, never blocked.
                "draft" => matches!(got, Verdict::Nothing | Verdict::Busy),
                why => got == Verdict::Blocked(why.to_string()),
            };
            if !ok {
                failures.push(format!("{name}: expected {state}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The captures of the real CLIs (tests/conformance/screens/<cli>-<version>/),
    /// each read as its folder's EXPECT file says: every capture listed.
    #[test]
    fn every_capture_of_a_real_cli_reads_as_expected() {
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/screens");
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir(&base).expect("captures").map(|e| e.unwrap().path()).collect();
        dirs.sort();
        let mut failures = Vec::new();
        let mut checked = 0;
        for dir in dirs {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let agent = name.split('-').next().unwrap();
            let p = Patterns::preset(preset(agent).expect("a preset per capture folder")).unwrap();
            let expect = std::fs::read_to_string(dir.join("EXPECT"))
                .unwrap_or_else(|e| panic!("{name}/EXPECT: {e}"));
            let listed: Vec<(&str, &str)> = expect
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.split_once(char::is_whitespace).expect("FILE STATE"))
                .collect();
            for e in std::fs::read_dir(&dir).unwrap() {
                let f = e.unwrap().file_name().to_string_lossy().into_owned();
                if f.ends_with(".txt") && !listed.iter().any(|(l, _)| *l == f) {
                    failures.push(format!("{name}/{f}: not in EXPECT"));
                }
            }
            for (file, want) in listed {
                let raw = std::fs::read_to_string(dir.join(file))
                    .unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
                let screen = crate::model::agent::classify::normalize(&raw);
                let got = p.classify(&screen);
                let ok = match want.trim() {
                    "ready" => got == Verdict::Ready,
                    "busy" => got == Verdict::Busy,
                    "nothing" => got == Verdict::Nothing,
                    "draft" => matches!(got, Verdict::Nothing | Verdict::Busy),
                    why => got == Verdict::Blocked(why.to_string()),
                };
                checked += 1;
                if !ok {
                    failures.push(format!("{name}/{file}: expected {}, got {got:?}", want.trim()));
                }
            }
        }
        assert!(checked >= 20, "captures checked: {checked}");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn each_preset_has_ready_busy_and_draft_fixtures() {
        let all = fixtures();
        for agent in ["claude", "codex", "gemini", "aider", "fake"] {
            for state in ["ready", "busy", "draft"] {
                assert!(
                    all.iter().any(|(n, _)| parse_name(n) == (agent, state)),
                    "missing fixture {agent}-{state}.txt"
                );
            }
        }
        for state in ["trust", "permission", "usage-limit"] {
            assert!(all.iter().any(|(n, _)| parse_name(n) == ("fake", state)), "fake-{state}");
        }
    }

    #[test]
    fn drafts_are_not_ready_even_without_their_context() {
        // The prompt line alone, as a ready pattern sees it.
        let claude = Patterns::preset(&CLAUDE).unwrap();
        for screen in [
            "────\n❯ fix the tests\n────\n",
            "────\n❯ Try \"x\" and more\n────\n",
            "│ > half a sentence        │\n╰──╯\n",
        ] {
            assert_ne!(claude.classify(screen), Verdict::Ready, "{screen:?}");
        }
        assert_eq!(claude.classify("────\n❯ \n────\n"), Verdict::Ready);
        assert_eq!(claude.classify("│ >                        │\n╰──╯\n"), Verdict::Ready);
        // A draft whose first line is empty: the prompt line alone looks
        // empty, the line below it is not the box's end.
        assert_eq!(claude.classify("────\n❯ \n  second line\n────\n"), Verdict::Nothing);
        assert_eq!(claude.classify("│ >        │\n│   second │\n╰──╯\n"), Verdict::Nothing);
        let codex = Patterns::preset(&CODEX).unwrap();
        assert_ne!(codex.classify("› Summarize recent commits please\n"), Verdict::Ready);
        let footer = "\n\n  gpt-5-codex default · /w\n  ← for agents · ? for shortcuts\n";
        assert_eq!(codex.classify(&format!("› Summarize recent commits{footer}")), Verdict::Ready);
        assert_eq!(codex.classify(&format!("› {footer}")), Verdict::Ready);
        // At start, before the footer: a login picker may still replace it.
        assert_ne!(
            codex.classify("› Ask Codex to do anything\n\n  ? for shortcuts\n"),
            Verdict::Ready
        );
        let aider = Patterns::preset(&AIDER).unwrap();
        assert_eq!(aider.classify("> \n\n"), Verdict::Ready);
        assert_eq!(aider.classify("> \n> draft\n"), Verdict::Nothing);
        assert_eq!(aider.classify("architect> \n"), Verdict::Ready);
        assert_eq!(aider.classify("───\n> draft with newline\n> \n"), Verdict::Nothing);
    }

    #[test]
    fn reset_times_are_captured() {
        let cases = [
            ("claude-usage-limit.txt", Some("5pm (America/Los_Angeles)")),
            ("claude-usage-limit.notice.txt", Some("10pm (America/New_York)")),
            ("claude-usage-limit.session.txt", Some("4:20pm (Asia/Tbilisi)")),
            ("codex-usage-limit.txt", Some("at 3:28 PM")),
            ("gemini-usage-limit.txt", Some("3:45 PM PDT")),
        ];
        let all = fixtures();
        for (name, want) in cases {
            let screen = &all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name}")).1;
            let p = Patterns::preset(preset_for(parse_name(name).0)).unwrap();
            assert_eq!(p.reset_time(screen), want, "{name}");
        }
        let codex = Patterns::preset(&CODEX).unwrap();
        assert_eq!(
            codex.reset_time("You've hit your usage limit. Try again at Aug 8th, 2026 12:30 PM."),
            Some("at Aug 8th, 2026 12:30 PM")
        );
        assert_eq!(
            codex.reset_time(
                "■ You've hit your usage limit. … or try again in 3 days 6 hours 57 minutes."
            ),
            Some("in 3 days 6 hours 57 minutes")
        );
    }

    #[test]
    fn fake_agent_screens_read_with_the_claude_preset() {
        let p = Patterns::preset(&CLAUDE).unwrap();
        let blocked = |why: &str| Verdict::Blocked(why.to_string());
        let all = fixtures();
        for (name, want) in [
            ("fake-ready.txt", Verdict::Ready),
            ("fake-ready.after-turn.txt", Verdict::Ready),
            ("fake-ready.interrupted.txt", Verdict::Ready),
            ("fake-busy.txt", Verdict::Busy),
            ("fake-busy.with-draft.txt", Verdict::Busy),
            ("fake-draft.txt", Verdict::Nothing),
            ("fake-draft.multiline.txt", Verdict::Nothing),
            ("fake-draft.empty-first-line.txt", Verdict::Nothing),
            ("fake-trust.txt", blocked("trust")),
            ("fake-permission.txt", blocked("permission")),
            ("fake-usage-limit.txt", blocked("usage-limit")),
        ] {
            let screen = &all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name}")).1;
            assert_eq!(p.classify(screen), want, "{name}");
        }
        let limit = &all.iter().find(|(n, _)| n == "fake-usage-limit.txt").unwrap().1;
        let reset = p.reset_time(limit).expect("reset time");
        assert!(reset.ends_with("m (UTC)"), "{reset}");
    }

    #[test]
    fn blocked_match_quotes_whole_lines() {
        let p = Patterns::preset(&CLAUDE).unwrap();
        let screen = "text\n Do you want to proceed?\n ❯ 1. Yes\n   2. No\n";
        let (why, lines) = p.blocked_match(screen).unwrap();
        assert_eq!(why, "permission");
        assert_eq!(lines, [" Do you want to proceed?", " ❯ 1. Yes"]);
    }

    #[test]
    fn user_patterns_override_and_compile_multiline() {
        let ipython =
            Patterns::new(&[r"In \[\d+\]: *$"], &[], &[("oops", "Traceback")], None).unwrap();
        assert_eq!(ipython.classify("Out[1]: 2\n\nIn [2]: \n"), Verdict::Ready);
        assert_eq!(ipython.classify("In [2]: x = 1\n"), Verdict::Nothing);
        assert_eq!(
            ipython.classify("Traceback (most recent call last):\nIn [3]: \n"),
            Verdict::Blocked("oops".into())
        );
        assert!(Patterns::new(&["("], &[], &[], None).is_err());
    }
}
