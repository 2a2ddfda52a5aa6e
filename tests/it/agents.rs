//! Agents (SPEC §8, issue "agents, not just processes"): the fake agent
//! (`tests/fake-agent/agent.py`: raw tty, bracketed paste, a live spinner
//! while busy, a log of every submitted turn with the state it arrived in)
//! against the mailbox, marks, readiness and raw input; then real programs:
//! `python3 -i`, `bash -i`, and IPython when it is installed.
//!
//! No test runs a tick unless it says so: delivery must happen without one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::*;

const WAIT: Duration = Duration::from_secs(40);

fn fake() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agent/agent.py")
}

/// The turns the fake agent logged: (text, state it arrived in).
fn turns(log: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("turn").is_some())
        .map(|v| {
            (v["text"].as_str().unwrap_or("").to_string(), v["state"].as_str().unwrap_or("").into())
        })
        .collect()
}

/// Register the fake agent as `id` with `--agent claude` (its screens are
/// Claude Code's) and the given extra flags for it.
fn add_fake(env: &Env, id: &str, log: &Path, fake_args: &[&str]) {
    let cwd = env.scratch().to_string_lossy().into_owned();
    let fake = fake();
    let log = log.to_string_lossy().into_owned();
    let mut args = vec!["add", id, "--agent", "claude", "--cwd", &cwd, "--", "python3"];
    let fake = fake.to_string_lossy().into_owned();
    args.push(&fake);
    args.extend_from_slice(&["--log", &log]);
    args.extend_from_slice(fake_args);
    env.mv(&args).ok();
}

fn ready(env: &Env, id: &str) {
    let out = env.mv(&["launch", id, "--wait-ready", "30s"]);
    assert_eq!(out.code, 0, "{out:#?}\n{}", screen(env, id));
}

/// The bottom of the pane (`screen` also shows history, where a redrawn
/// agent's old lines stay).
fn screen(env: &Env, id: &str) -> String {
    env.mv(&["screen", id, "--lines", "12"]).stdout.clone()
}

fn life(env: &Env, ev: &str) -> Vec<String> {
    env.events("lifecycle", ev)
}

#[test]
fn five_messages_back_to_back_arrive_as_five_turns_in_order_none_while_busy() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "ag", &log, &["--busy", "0.4"]);
    ready(&env, "ag");
    let sent: Vec<String> = (1..=5).map(|i| format!("message {i}")).collect();
    for m in &sent {
        let out = env.mv(&["--json", "send", "ag", m]).ok().json();
        assert_eq!(out["queued"], true, "{out}");
    }
    assert!(
        wait_until(WAIT, || turns(&log).len() >= 5),
        "{:?}\n{}",
        turns(&log),
        screen(&env, "ag")
    );
    let got = turns(&log);
    assert_eq!(got.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), sent, "in order, each once");
    assert!(got.iter().all(|t| t.1 == "ready"), "a message landed mid-turn: {got:?}");
    // The deliverer logs after its paste, so the agent may have taken the
    // last message in before its event is written.
    assert!(wait_until(WAIT, || life(&env, "msg-delivered").len() >= 5));
    assert_eq!(life(&env, "msg-delivered").len(), 5);
    assert!(life(&env, "tick").is_empty(), "no tick ran");
    // The courier ends with the mailbox.
    assert!(wait_until(WAIT, || {
        env.mv(&["--json", "status", "ag"]).ok().json()[0]["courier"].is_null()
    }));
    let st = env.mv(&["--json", "status", "ag"]).ok().json();
    assert_eq!(st[0]["mailbox"], 0, "{st}");
    assert!(["ready", "busy"].contains(&st[0]["agent"]["state"].as_str().unwrap()), "{st}");
    // Each delivery is kept with its message.
    let first = life(&env, "msg-delivered")[0].clone();
    let task = first.split(" task=").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let shown = env.mv(&["--json", "queue", "ag", "show", &task]).ok().json();
    assert_eq!(shown["stage"], "done");
    assert!(shown["outcome"]["delivered_at"].is_string(), "{shown}");
}

#[test]
fn six_concurrent_senders_three_messages_each_arrive_once_in_each_senders_order() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "crowd", &log, &["--busy", "0.15"]);
    ready(&env, "crowd");
    std::thread::scope(|s| {
        for k in 0..6 {
            let env = &env;
            s.spawn(move || {
                for m in 0..3 {
                    env.mv(&["send", "crowd", &format!("s{k} m{m}")]).ok();
                }
            });
        }
    });
    assert!(wait_until(WAIT, || turns(&log).len() >= 18), "{:?}", turns(&log));
    let got = turns(&log);
    assert_eq!(got.len(), 18, "{got:?}");
    assert!(got.iter().all(|t| t.1 == "ready"), "a message landed mid-turn: {got:?}");
    for k in 0..6 {
        let mine: Vec<&str> =
            got.iter().map(|t| t.0.as_str()).filter(|t| t.starts_with(&format!("s{k} "))).collect();
        assert_eq!(mine, [format!("s{k} m0"), format!("s{k} m1"), format!("s{k} m2")], "{got:?}");
    }
}

/// The same bursts, five times each, with every core kept busy by this process's
/// own spinning threads: a slow looker must never let a message land
/// mid-turn. (Outside the default run: `cargo test --test it -- --ignored
/// agents::under_load`.)
#[test]
#[ignore]
fn under_load_concurrent_senders_never_land_mid_turn() {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..cores {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let result = std::panic::catch_unwind(|| {
            for _ in 0..5 {
                five_messages_back_to_back_arrive_as_five_turns_in_order_none_while_busy();
                six_concurrent_senders_three_messages_each_arrive_once_in_each_senders_order();
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    });
}

#[test]
fn launch_wait_ready_waits_for_a_slow_start_and_reports_a_trust_dialog() {
    let env = Env::new();
    let log = env.scratch().join("slow");
    add_fake(&env, "slow", &log, &["--slow-start", "2"]);
    let out = env.mv(&["--json", "launch", "slow", "--wait-ready", "30s"]);
    out.ok();
    assert_eq!(out.json()["agent"]["state"], "ready", "{out:?}");
    let starting = life(&env, "agent-state");
    assert!(starting.iter().any(|l| l.contains(" state=starting ")), "{starting:?}");

    let log = env.scratch().join("trust");
    add_fake(&env, "wary", &log, &["--trust-dialog"]);
    let out = env.mv(&["--json", "launch", "wary", "--wait-ready", "30s"]);
    out.code(1);
    let v = out.json();
    assert_eq!(v["agent"]["state"], "blocked", "{v}");
    assert_eq!(v["agent"]["reason"], "trust", "{v}");
    assert!(out.stderr.contains("blocked (trust)") && out.stderr.contains("trust"), "{out:?}");
    assert!(
        v["agent"]["screen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("trust")),
        "{v}"
    );
    // A deadline that passes while starting is 75.
    let log = env.scratch().join("late");
    add_fake(&env, "late", &log, &["--slow-start", "20"]);
    env.mv(&["launch", "late", "--wait-ready", "1s"]).code(75);
    // A person answers the dialog (keys, at once): then it is ready.
    env.mv(&["send", "wary", "--keys", "1", "Enter"]).ok();
    env.mv(&["launch", "wary", "--wait-ready", "20s"]).ok();
}

#[test]
fn marks_gate_delivery_and_mark_ready_delivers_at_once() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "hooked", &log, &["--busy", "0.1"]);
    ready(&env, "hooked");
    // The agent's hook says it is busy: its ready-looking screen does not count.
    env.mv(&["mark", "hooked", "busy"]).ok();
    let q = env.mv(&["--json", "send", "hooked", "held back"]).ok().json();
    assert_eq!(q["delivered"], false, "{q}");
    let status = || env.mv(&["--json", "status", "hooked"]).ok().json()[0].clone();
    assert_eq!(status()["agent"]["source"], "mark");
    assert!(turns(&log).is_empty(), "delivered against a busy mark");
    // Its Stop hook marks it ready: the message goes at once, delivered by
    // the mark itself or by the courier that saw the mark first.
    let m = env.mv(&["--json", "mark", "hooked", "ready", "--session-id", "abc-123"]).ok().json();
    assert!(m["delivered"] == q["task"] || m["delivered"].is_null(), "{m}");
    assert!(wait_until(WAIT, || turns(&log).len() == 1));
    let task = q["task"].as_str().unwrap();
    let logged = || life(&env, "msg-delivered").iter().any(|l| l.contains(task));
    assert!(wait_until(WAIT, logged), "{:?}", life(&env, "msg-delivered"));
    assert_eq!(turns(&log)[0].0, "held back");
    assert_eq!(status()["agent"]["session_id"], "abc-123");
    // A blocked mark holds messages too; --hook-json reads Claude's payload.
    let out = env.mv_stdin(
        &["--json", "mark", "hooked", "blocked", "--hook-json"],
        br#"{"session_id":"abc-123","message":"Claude needs your permission to use Bash"}"#,
    );
    assert_eq!(out.ok().json()["reason"], "Claude needs your permission to use Bash");
    assert_eq!(status()["agent"]["state"], "blocked");
    let states = life(&env, "agent-state");
    assert!(
        states.iter().any(|l| l.contains(" state=blocked ") && l.contains("source=mark")),
        "{states:?}"
    );
    env.mv(&["mark", "hooked", "nonsense"]).code(2);
    env.mv(&["mark", "hooked", "ready", "--session-id", "../x"]).code(1);
}

#[test]
fn send_wait_returns_on_delivery_and_75_when_the_agent_stays_busy() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "w8", &log, &["--busy", "1.0"]);
    ready(&env, "w8");
    env.mv(&["send", "w8", "first"]).ok();
    // The second waits for the first turn to end, then returns delivered.
    let out = env.mv(&["--json", "send", "w8", "second", "--wait", "30s"]);
    assert_eq!(out.ok().json()["delivered"], true, "{out:?}");
    assert_eq!(turns(&log).len(), 2);
    // Busy by its own mark for longer than the wait: 75, still queued.
    env.mv(&["mark", "w8", "busy"]).ok();
    let out = env.mv(&["--json", "send", "w8", "third", "--wait", "700ms"]);
    out.code(75);
    assert_eq!(out.json()["delivered"], false);
    assert!(out.stderr.contains("stays queued"), "{out:?}");
    let l = env.mv(&["--json", "queue", "w8", "list"]).ok().json();
    assert_eq!(l["pending"].as_array().unwrap().len(), 1, "{l}");
}

#[test]
fn keys_no_enter_and_empty_text() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "raw", &log, &["--busy", "30"]);
    ready(&env, "raw");
    // Esc interrupts a busy turn (keys go at once, not through the mailbox).
    env.mv(&["send", "raw", "long job"]).ok();
    assert!(wait_until(WAIT, || screen(&env, "raw").contains("esc to interrupt")));
    env.mv(&["send", "raw", "--keys", "Escape"]).ok();
    assert!(wait_until(WAIT, || !screen(&env, "raw").contains("esc to interrupt")));
    // --no-enter leaves a draft (no turn), and the next message waits for it.
    env.mv(&["send", "raw", "a draft", "--no-enter"]).ok();
    assert!(wait_until(WAIT, || screen(&env, "raw").contains("a draft")));
    let q = env.mv(&["--json", "send", "raw", "after the draft"]).ok().json();
    assert_eq!(q["delivered"], false, "a person's (or a --no-enter) draft is never clobbered");
    assert_eq!(turns(&log).len(), 1);
    // Submitting the draft by hand frees the prompt; Ctrl-U is not needed.
    env.mv(&["send", "raw", "--keys", "Enter"]).ok();
    assert!(wait_until(WAIT, || turns(&log).len() == 2));
    assert_eq!(turns(&log)[1].0, "a draft");
    env.mv(&["send", "raw", "--keys", "Escape"]).ok();
    assert!(wait_until(WAIT, || turns(&log).len() == 3), "{:?}", turns(&log));
    assert_eq!(turns(&log)[2].0, "after the draft");
    // An empty message is a valid turn (it waits for the interrupted turn:
    // an Enter right behind an Esc would read as Alt+Enter).
    env.mv(&["send", "raw", "--keys", "Escape"]).ok();
    env.mv(&["send", "raw", ""]).ok();
    assert!(wait_until(WAIT, || turns(&log).len() == 4), "{:?}", turns(&log));
    assert_eq!(turns(&log)[3].0, "");
    // Bad key names are refused before anything is sent.
    let out = env.mv(&["send", "raw", "--keys", "hello world"]);
    out.code(1);
    assert!(out.stderr.contains("not a tmux key name"), "{out:?}");
}

/// A real REPL without bracketed paste support in its prompt: a `def`
/// block ends with its own blank line, kept byte for byte, and the next
/// message is not glued into its body.
#[test]
fn python_repl_block_ended_by_its_own_blank_line() {
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    env.mv(&[
        "add",
        "py",
        "--cwd",
        &cwd,
        "--ready-pattern",
        r"^>>> ?\z",
        "--env",
        "PYTHONSTARTUP=",
        "--",
        "python3",
        "-q",
        "-i",
    ])
    .ok();
    ready(&env, "py");
    env.mv(&["send", "py", "def f():\n    return 41 + 1\n", "--when", "idle"]).ok();
    env.mv(&["send", "py", "print('answer', f())", "--when", "idle"]).ok();
    assert!(
        wait_until(WAIT, || screen(&env, "py").contains("answer 42")),
        "{}",
        screen(&env, "py")
    );
    assert!(!screen(&env, "py").contains("SyntaxError"), "{}", screen(&env, "py"));
}

/// `bash -i` with its prompt as the ready pattern: a command that runs a
/// while without output (`sleep`) is not mistaken for an idle shell.
#[test]
fn bash_interactive_gets_one_command_per_prompt() {
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    env.mv(&[
        "add",
        "sh",
        "--cwd",
        &cwd,
        "--when",
        "idle",
        "--env",
        "PS1=mv$ ",
        "--ready-pattern",
        r"^mv\$ ?\z",
        "--",
        "bash",
        "--norc",
        "--noprofile",
        "-i",
    ])
    .ok();
    ready(&env, "sh");
    for cmd in ["sleep 1; echo one-$((40+1))", "echo two-$((40+2))", "echo three-$((40+3))"] {
        env.mv(&["send", "sh", cmd]).ok();
    }
    assert!(wait_until(WAIT, || screen(&env, "sh").contains("three-43")), "{}", screen(&env, "sh"));
    let s = screen(&env, "sh");
    let at = |w: &str| s.find(w).unwrap_or_else(|| panic!("{w} missing:\n{s}"));
    assert!(at("one-41") < at("two-42") && at("two-42") < at("three-43"), "{s}");
    // Nothing was typed while `sleep 1` ran: each command got its own prompt.
    assert_eq!(s.matches("echo two").count(), 1, "{s}");
}

/// IPython (prompt_toolkit, bracketed paste, like the agents): a block
/// sent as one message. Runs where IPython is installed; `.ci/run` installs
/// it and sets MUXVISOR_REQUIRE_IPYTHON=1 so that it cannot be skipped there.
#[test]
fn ipython_block_in_one_message() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import IPython"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("MUXVISOR_REQUIRE_IPYTHON").is_none(),
            "IPython is required here: pip install ipython"
        );
        skip(
            "agents::ipython_block_in_one_message",
            "IPython is not installed (pip install ipython)",
        );
        return;
    }
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    env.mv(&[
        "add",
        "ipy",
        "--cwd",
        &cwd,
        "--ready-pattern",
        r"^In \[\d+\]: *$",
        "--when",
        "idle",
        "--",
        "python3",
        "-m",
        "IPython",
        "--no-banner",
        "--colors=NoColor",
        "--no-confirm-exit",
    ])
    .ok();
    ready(&env, "ipy");
    env.mv(&["send", "ipy", "def g():\n    return 6 * 7\n\n"]).ok();
    env.mv(&["send", "ipy", "print('ipy', g())"]).ok();
    assert!(wait_until(WAIT, || screen(&env, "ipy").contains("ipy 42")), "{}", screen(&env, "ipy"));
}

/// Without a ready pattern, output quiet for `--quiet` (and no busy pattern)
/// is ready: a chatty program gets its next message once it pauses.
#[test]
fn quiet_output_counts_as_ready_without_a_ready_pattern() {
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    let script = "while IFS= read -r l; do for i in 1 2 3 4 5; do echo \"$l $i\"; sleep 0.1; \
                  done; done";
    env.mv(&[
        "add", "chat", "--cwd", &cwd, "--when", "idle", "--quiet", "800ms", "--", "sh", "-c",
        script,
    ])
    .ok();
    env.mv(&["launch", "chat", "--wait-ready", "20s"]).ok();
    env.mv(&["send", "chat", "a"]).ok();
    env.mv(&["send", "chat", "b"]).ok();
    assert!(wait_until(WAIT, || screen(&env, "chat").contains("b 5")), "{}", screen(&env, "chat"));
    let s = screen(&env, "chat");
    assert!(s.find("a 5").unwrap() < s.find("b 1").unwrap(), "b arrived while a printed:\n{s}");
}

/// Issue 17, item 1: Claude Code (2.1.x) drops an Enter that arrives while
/// it still takes a paste in. With the paste and its Enter in one tmux
/// command, the first message after every start stayed unsent in the
/// prompt while `ev=msg-delivered` was written and `send --wait` exited 0.
/// The fake agent drops an Enter within 100 ms of a paste's end.
#[test]
fn a_message_is_submitted_when_the_agent_drops_an_enter_that_comes_with_the_paste() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "dr", &log, &["--busy", "0.3", "--drop-enter-after-paste", "100"]);
    ready(&env, "dr");
    let sent = ["first message", "second\nmessage"];
    for m in sent {
        let out = env.mv(&["send", "dr", m, "--wait", "30s"]);
        assert_eq!(out.code, 0, "{out:#?}\n{}", screen(&env, "dr"));
    }
    assert!(wait_until(WAIT, || turns(&log).len() >= 2), "{:?}", turns(&log));
    let got = turns(&log);
    assert_eq!(got.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), sent, "{got:?}");
    assert!(got.iter().all(|t| t.1 == "ready"), "a message landed mid-turn: {got:?}");
    assert_eq!(life(&env, "msg-delivered").len(), 2);
    assert!(life(&env, "msg-undelivered").is_empty());
}

/// Issue 17 and SPEC §8: a receipt is never false. An agent that takes
/// neither the Enter nor the retried one leaves the message undelivered: no
/// `msg-delivered`, an `msg-undelivered` quoting the screen, the message at
/// the head of the mailbox, and the agent `blocked (undelivered)` until a
/// person clears the prompt and marks it; then it goes out, once.
#[test]
fn a_message_the_agent_never_takes_in_is_undelivered_blocks_the_agent_and_stays_queued() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "nt", &log, &["--busy", "0.3", "--drop-enters", "2"]);
    ready(&env, "nt");
    let out = env.mv(&["send", "nt", "stuck message", "--wait", "5s"]);
    assert_eq!(out.code, 75, "not delivered, so not a success: {out:#?}");
    assert!(out.stderr.contains("did not take it in"), "{}", out.stderr);
    assert!(life(&env, "msg-delivered").is_empty(), "a false receipt");
    let undelivered = life(&env, "msg-undelivered");
    assert_eq!(undelivered.len(), 1, "{undelivered:?}");
    assert!(undelivered[0].contains("stuck message"), "the screen is quoted: {undelivered:?}");
    let st = env.mv(&["--json", "status", "nt"]).json();
    assert_eq!(st[0]["agent"]["state"], "blocked", "{st}");
    assert_eq!(st[0]["agent"]["reason"], "undelivered", "{st}");
    assert_eq!(st[0]["mailbox"], 1, "the message stays at the head: {st}");
    assert!(turns(&log).is_empty(), "{:?}", turns(&log));
    // A person clears the prompt and says the agent is ready.
    let bs: Vec<&str> = std::iter::repeat_n("BSpace", 20).collect();
    let mut args = vec!["send", "nt", "--keys"];
    args.extend(bs);
    env.mv(&args).ok();
    env.mv(&["mark", "nt", "ready"]).ok();
    assert!(wait_until(WAIT, || !turns(&log).is_empty()), "{}", screen(&env, "nt"));
    assert!(wait_until(WAIT, || life(&env, "msg-delivered").len() == 1));
    assert_eq!(turns(&log), [("stuck message".to_string(), "ready".to_string())]);
}

/// Issue 17, item 2 (and issue 18, item 5): once a delivered message's turn
/// ended, `status` said `busy (source delivery)` until a tick ran, with a
/// `since` that changed on every call. Now `status` concludes what a tick
/// would, without one, and its `since` is the recorded one.
#[test]
fn status_reads_ready_after_the_turn_without_a_tick_and_its_since_is_stable() {
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    let script = r#"while IFS= read -r -p "rdy> " l; do echo "got: $l"; sleep 1; done"#;
    env.mv(&[
        "add",
        "rdy",
        "--cwd",
        &cwd,
        "--when",
        "idle",
        "--ready-pattern",
        r"^rdy> ?\z",
        "--",
        "bash",
        "-c",
        script,
    ])
    .ok();
    ready(&env, "rdy");
    env.mv(&["send", "rdy", "one", "--wait", "20s"]).ok();
    let state = || env.mv(&["--json", "status", "rdy"]).ok().json()[0]["agent"].clone();
    assert!(
        wait_until(WAIT, || state()["state"] == "ready"),
        "{}\n{}",
        state(),
        screen(&env, "rdy")
    );
    let (a, b) = (state(), state());
    assert_eq!(a["since"], b["since"], "since moves on every call: {a} {b}");
    assert!(screen(&env, "rdy").contains("got: one"));
    assert!(life(&env, "tick").is_empty(), "no tick ran");
}

/// Issue 18, items 1 and 2: a task queued for an argv worker is data, never
/// keystrokes. Re-added as an interactive peer, the old queue was typed
/// into a shell: `touch …` ran, and a payload's `ESC[201~` ended the
/// bracketed paste early so the rest arrived as typed keys. Only an entry
/// queued as a message is ever typed; these are dead-lettered instead.
#[test]
fn tasks_queued_for_an_argv_worker_are_never_typed_after_a_re_add_as_an_agent() {
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    let plain = env.scratch().join("plain-ran");
    let hostile = env.scratch().join("hostile-ran");
    env.mv(&["add", "cv", "--ephemeral", "--cwd", &cwd, "--", "cat", "{task_file}"]).ok();
    let t1 = format!("touch {}", plain.display());
    let t2 = format!("x\x1b[201~touch {}\r", hostile.display());
    env.mv(&["send", "cv", "--no-kick", &t1]).ok();
    env.mv(&["send", "cv", "--no-kick", &t2]).ok();
    env.mv(&["add", "cv", "--persistent", "--when", "idle", "--", "bash", "--norc", "-i"]).ok();
    env.mv(&["launch", "cv"]).ok();
    env.mv(&["supervise", "--once"]).ok();
    let dead = || env.mv(&["--json", "queue", "cv", "list"]).ok().json()["dead"].clone();
    assert!(
        wait_until(WAIT, || dead().as_array().is_some_and(|d| d.len() == 2)),
        "{}\n{}",
        dead(),
        screen(&env, "cv")
    );
    for d in dead().as_array().unwrap() {
        assert_eq!(d["reason"], "not-a-message", "{d}");
    }
    assert!(!plain.exists() && !hostile.exists(), "a task was typed into the shell");
    assert!(!screen(&env, "cv").contains("touch"), "{}", screen(&env, "cv"));
    assert!(life(&env, "msg-delivered").is_empty());
}

/// Issue 18, item 2: what may be typed is checked at the moment of typing,
/// not only by `send`. A message that reached the mailbox another way (here
/// written by the library, as an older muxvisor or a hand could) with an
/// `ESC[201~` that would end the bracketed paste early is dead-lettered
/// `untypable`; nothing of it reaches the agent.
#[test]
fn a_message_with_control_bytes_is_never_typed_whatever_queued_it() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "esc", &log, &["--busy", "0.3"]);
    ready(&env, "esc");
    let root = muxvisor::ground::paths::Root::new(env.root().to_path_buf());
    let id = muxvisor::model::peer::Identity::parse("esc").unwrap();
    let q = muxvisor::model::queue::Queue::open(&root, &id).unwrap();
    q.enqueue_message(b"x\x1b[201~INJECTED\r", None, false).unwrap();
    env.mv(&["supervise", "--once"]).ok();
    let dead = || env.mv(&["--json", "queue", "esc", "list"]).ok().json()["dead"].clone();
    assert!(
        wait_until(WAIT, || dead().as_array().is_some_and(|d| d.len() == 1)),
        "{}\n{}",
        dead(),
        screen(&env, "esc")
    );
    assert_eq!(dead()[0]["reason"], "untypable", "{}", dead());
    assert!(turns(&log).is_empty(), "{:?}", turns(&log));
    assert!(!screen(&env, "esc").contains("INJECTED"), "{}", screen(&env, "esc"));
}

/// Soak regression (a prompt typed twice after a hung server), the
/// mailbox's side: the agent's tmux server was SIGSTOPped between the
/// paste of a message and its Enter. The Enter timed out, the message was
/// put back and typed again later, but the server ran the Enter once it
/// was continued: the agent took the message twice. Now the delivery is
/// unknown, not failed (`ev=delivery-unknown`): the deliverer waits for the
/// server, sees the agent took the message in, and writes its receipt.
#[cfg(feature = "fault-injection")]
#[test]
fn a_message_whose_enter_a_stopped_server_did_not_answer_is_delivered_once() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "hm", &log, &["--busy", "0.3"]);
    ready(&env, "hm");
    let (sender, hold) = send_held(
        &env,
        &["send", "hm", "only once", "--wait", "60s"],
        "typing-pasted",
        &[],
        Duration::from_secs(90),
    );
    // Before the fix the timeout put the message back (task-retry).
    let timed_out = stop_server_while_held(&env, WAIT, "hm", &hold, || {
        !life(&env, "delivery-unknown").is_empty() || !life(&env, "task-retry").is_empty()
    });
    assert!(timed_out, "the Enter never timed out: {}", env.read("logs/lifecycle.log"));
    let out = sender.join().expect("the sender");
    out.ok();
    assert!(out.stdout.contains("delivered message"), "{out:#?}");
    let listed = env.mv(&["queue", "hm", "list", "--json"]).json();
    assert_eq!(listed["pending"].as_array().map(Vec::len), Some(0), "{listed}");
    let texts: Vec<String> = turns(&log).into_iter().map(|t| t.0).collect();
    assert_eq!(texts, ["only once"], "taken in once");
    let unknown = life(&env, "delivery-unknown");
    assert!(
        unknown.len() == 1
            && unknown[0].contains("task=")
            && unknown[0].contains("reason=\"enter: "),
        "{unknown:#?}"
    );
    assert_eq!(life(&env, "msg-delivered").len(), 1, "one receipt");
}

/// The mailbox's side of a server that stays stopped too long (here the
/// test-only build shortens the wait to 3 s): whether the agent took the
/// message in cannot be told, so it is dead-lettered `delivery-unknown`
/// (`send --wait` exits 1 and says so), never typed again, and the agent
/// reads blocked (`undelivered`) until a mark. Before the fix it was put
/// back, typed again once the server answered, and taken in twice.
#[cfg(feature = "fault-injection")]
#[test]
fn a_message_still_unanswered_when_the_wait_ends_is_dead_lettered_not_retyped() {
    let env = Env::new();
    let log = env.scratch().join("turns");
    add_fake(&env, "hu", &log, &["--busy", "0.3"]);
    ready(&env, "hu");
    let (sender, hold) = send_held(
        &env,
        &["send", "hu", "at most once", "--wait", "60s"],
        "typing-pasted",
        &[("MUXVISOR_FAULT_SETTLE_MAX_MS", "3000")],
        Duration::from_secs(90),
    );
    // The server stays stopped until the message has ended one way or another.
    let ended = stop_server_while_held(&env, WAIT, "hu", &hold, || {
        !life(&env, "task-dead").is_empty() || !life(&env, "task-retry").is_empty()
    });
    assert!(ended, "{}", env.read("logs/lifecycle.log"));
    let out = sender.join().expect("the sender");
    out.code(1);
    assert!(out.stderr.contains("delivery-unknown"), "{out:#?}");
    assert!(life(&env, "task-retry").is_empty(), "never put back");
    assert!(life(&env, "msg-delivered").is_empty(), "no receipt");
    let blocked = || {
        let v = env.mv(&["status", "hu", "--json"]).json();
        v[0]["agent"]["state"] == "blocked" && v[0]["agent"]["reason"] == "undelivered"
    };
    assert!(wait_until(WAIT, blocked), "{}", env.mv(&["status", "hu", "--json"]).stdout);
    // The Enter the server ran late gave the agent the message at most once.
    let texts: Vec<String> = turns(&log).into_iter().map(|t| t.0).collect();
    assert!(texts.len() <= 1 && texts.iter().all(|t| t == "at most once"), "{texts:?}");
}
