//! The real-agent conformance kit (`tests/conformance/kit.py`), run against
//! the real Claude Code CLI (pinned in `tests/conformance/cli_claude.py`)
//! talking to a local mock of its vendor's API: first start, the first
//! message after a start, bursts during turns, a multi-line message, the
//! permission prompt, resume after kill -9, API errors, first-start screens,
//! the usage limit and an agent pool, each from a fresh HOME and root. The
//! kit drives the real muxvisor binary and tmux on private sockets, and ends
//! only what it started.
//!
//! The CLI is installed by `.ci/run` (`kit.py --cli claude --install-only`)
//! into `MUXVISOR_CONFORMANCE_CACHE` (default `~/.cache/muxvisor-conformance`).
//! Where it is not installed the test says SKIPPED on the test output, and
//! fails instead when `MUXVISOR_REQUIRE_CLAUDE` is set (CI sets it). Codex
//! CLI, Gemini CLI and Aider run from the same kit by hand (README,
//! "Conformance"): their runs take longer than CI's budget.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{BIN, skip};

/// A whole kit run stays well under this.
const KIT_DEADLINE: Duration = Duration::from_secs(20 * 60);

fn cache() -> PathBuf {
    if let Some(c) = std::env::var_os("MUXVISOR_CONFORMANCE_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/tmp".into());
    home.join(".cache/muxvisor-conformance")
}

/// Run the kit for `cli` with `args`; its output when it passed, `None`
/// when the CLI is not installed (kit exit 3).
fn kit(cli: &str, args: &[&str]) -> Option<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("kit.out");
    let out = File::create(&out_path).expect("kit output file");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/kit.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--cli", cli, "--no-install", "--muxvisor", BIN])
        .arg("--cache")
        .arg(cache())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("python3 runs the kit");
    let deadline = Instant::now() + KIT_DEADLINE;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the kit") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the kit ran past {KIT_DEADLINE:?}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    if status.code() == Some(3) {
        return None;
    }
    assert!(status.success(), "kit {cli} {args:?} failed ({status}):\n{text}");
    assert!(text.contains(" passed, 0 failed"), "no closing line:\n{text}");
    Some(text)
}

fn require_or_skip(test: &str, cli: &str, var: &str) {
    assert!(
        std::env::var_os(var).is_none(),
        "{var} is set, but {cli} is not installed in {}: run `python3 tests/conformance/kit.py \
         --cli {cli} --install-only --cache {}`",
        cache().display(),
        cache().display()
    );
    skip(
        &format!("conformance::{test}"),
        &format!(
            "{cli} is not installed in {} (python3 tests/conformance/kit.py --cli {cli} \
             --install-only)",
            cache().display()
        ),
    );
}

/// Issue 17's cases against Claude Code, screens only (no hooks): the
/// hardest way to read an agent, and the one a user gets by default.
#[test]
fn claude_code_keeps_muxvisor_s_promises_read_from_its_screen() {
    if kit("claude", &[]).is_none() {
        require_or_skip(
            "claude_code_keeps_muxvisor_s_promises_read_from_its_screen",
            "claude",
            "MUXVISOR_REQUIRE_CLAUDE",
        );
    }
}

/// The README's hook settings: marks drive the state. Bursts of concurrent
/// sends during slow turns arrive one turn each, in order, with the Stop
/// hook's `mark ready` starting the next delivery.
#[test]
fn claude_code_with_the_readme_hooks_takes_bursts_one_turn_each() {
    if kit("claude", &["--hooks", "--cases", "burst,ready_after_turn,permission", "--runs", "2"])
        .is_none()
    {
        require_or_skip(
            "claude_code_with_the_readme_hooks_takes_bursts_one_turn_each",
            "claude",
            "MUXVISOR_REQUIRE_CLAUDE",
        );
    }
}

/// The README's hooks on a loaded machine, where the `UserPromptSubmit`
/// hook takes seconds (the kit slows it by 1.5 s): between a delivery and
/// that hook's `busy` mark, the newest mark is the `ready` of the turn
/// before. It must not let the next message in while Claude Code works
/// (which queues it: no model turn shows the fault, only the times of the
/// deliveries against the ends of the replies, which the kit compares).
#[test]
fn claude_code_with_a_slow_prompt_submit_hook_takes_no_message_mid_turn() {
    if kit("claude", &["--hooks", "--cases", "burst_slow_hook"]).is_none() {
        require_or_skip(
            "claude_code_with_a_slow_prompt_submit_hook_takes_no_message_mid_turn",
            "claude",
            "MUXVISOR_REQUIRE_CLAUDE",
        );
    }
}

/// Issue 22's Done-means with the real CLI: an agent pool (`--ephemeral
/// --workers 2 --reset /clear`) with the README's hooks. Two scripts'
/// `send --wait` at once each print the mock's answer to their own prompt;
/// a third prompt is answered by an instance that already answered one,
/// after `/clear` (its model turn carries no earlier prompt, no instance
/// starts for it), and prints the mock's answer with its markdown marks,
/// which the panes show rendered: the reply came from the transcript the
/// `Stop` hook named.
#[test]
fn claude_code_pool_prints_the_mock_s_answer_to_each_script() {
    if kit("claude", &["--hooks", "--cases", "pool"]).is_none() {
        require_or_skip(
            "claude_code_pool_prints_the_mock_s_answer_to_each_script",
            "claude",
            "MUXVISOR_REQUIRE_CLAUDE",
        );
    }
}
