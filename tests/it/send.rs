//! `send` against real tmux: the kick starts a worker at once with the task
//! in its environment and argv, `--deliver keys` types the task, a
//! persistent peer is woken and typed into, hostile text stays inert.

use std::fs;
use std::time::Duration;

use muxvisor::model::peer::{Deliver, Policy};

use crate::fixture::*;

const WAIT: Duration = Duration::from_secs(15);

fn read(env: &Env, name: &str) -> Option<String> {
    fs::read_to_string(env.scratch().join(name)).ok()
}

#[test]
fn kick_starts_a_worker_with_the_task_in_env_and_argv() {
    let env = Env::new();
    let script = "printf '%s\\n' \"$MUXVISOR_TASK_ID\" \"$MUXVISOR_IDENTITY\" > ids; \
                  cat \"$MUXVISOR_TASK_FILE\" > file; printf %s \"$1\" > arg.tmp; mv arg.tmp arg";
    add_peer_as(&env, "w", Policy::Ephemeral, &["sh", "-c", script, "sh", "{task}"], Deliver::Argv);
    let text = "'; touch pwned #$(touch pwned2) `touch pwned3` #{pane_pid};";
    let out = env.mv(&["--json", "send", "w", text]).ok().json();
    assert_eq!(out["queued"], true);
    let task = out["task"].as_str().unwrap().to_string();
    assert!(wait_until(WAIT, || read(&env, "arg").is_some()), "worker never ran");
    assert_eq!(read(&env, "arg").unwrap(), text);
    assert!(wait_until(WAIT, || read(&env, "file").is_some_and(|f| f == text)));
    assert!(wait_until(WAIT, || read(&env, "ids").is_some_and(|s| s == format!("{task}\nw\n"))));
    for p in ["pwned", "pwned2", "pwned3"] {
        assert!(!env.scratch().join(p).exists(), "{p} was created: the text was interpreted");
    }
    let starts = env.events("lifecycle", "task-start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(starts[0].contains(&format!("task={task}")) && starts[0].contains("attempt=1"));
    // Its runner acknowledges it when the program exits, with no tick (the
    // outcome, with the screen's last lines, follows the commit).
    assert!(wait_until(WAIT, || {
        env.mv(&["--json", "queue", "w", "show", &task]).ok().json()["outcome"].is_object()
    }));
    let shown = env.mv(&["--json", "queue", "w", "show", &task]).ok().json();
    assert_eq!(shown["outcome"]["status"], 0, "{shown}");
    // A second send is picked up by the same runner (one launch).
    env.mv(&["send", "w", "second"]).ok();
    assert!(wait_until(WAIT, || env.events("lifecycle", "task-done").len() == 2));
    assert_eq!(env.events("lifecycle", "launch").len(), 1);
}

#[test]
fn no_kick_only_queues_and_dedupe_covers_the_running_task() {
    let env = Env::new();
    add_peer_as(&env, "w", Policy::Ephemeral, &["sleep", "30"], Deliver::Argv);
    env.mv(&["send", "w", "job", "--no-kick", "--dedupe", "cron"]).ok();
    assert!(env.events("lifecycle", "task-start").is_empty());
    assert!(env.tmux("w", &["has-session", "-t", "=w:"]).code != 0, "--no-kick started a worker");
    // Kick with another task: the head (the deduped one) starts.
    env.mv(&["send", "w", "other"]).ok();
    assert!(wait_until(WAIT, || env.events("lifecycle", "task-start").len() == 1));
    let again = env.mv(&["--json", "send", "w", "job", "--dedupe", "cron"]).ok().json();
    assert_eq!(again["deduped"], true, "{again}");
    let l = env.mv(&["--json", "queue", "w", "list"]).ok().json();
    assert_eq!(l["running"].as_array().unwrap().len(), 1);
    assert_eq!(l["pending"].as_array().unwrap().len(), 1);
}

#[test]
fn a_failed_kick_is_a_warning_and_the_task_stays_queued() {
    let env = Env::new();
    add_peer_as(&env, "w", Policy::Ephemeral, &["/nonexistent/program"], Deliver::Argv);
    let out = env.mv(&["send", "w", "job"]);
    out.ok();
    assert!(out.stdout.starts_with("queued for w, depth 1, task "), "{out:#?}");
    assert!(out.stderr.contains("the task is queued"), "{out:#?}");
    assert!(out.stderr.contains("/nonexistent/program"), "{out:#?}");
    // Each attempt fails to start the program and counts; then it is dead.
    assert!(wait_until(WAIT, || env.events("lifecycle", "task-dead").len() == 1));
    let retries = env.events("lifecycle", "task-retry");
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(retries.iter().all(|l| l.contains("launch-failed")), "{retries:?}");
    let l = env.mv(&["--json", "queue", "w", "list", "--dead"]).ok().json();
    assert_eq!(l["dead"].as_array().unwrap().len(), 1, "{l}");
}

#[test]
fn deliver_keys_types_the_task_into_a_quiet_worker() {
    let env = Env::new();
    let script = "echo ready; IFS= read -r line; printf %s \"$line\" > got.tmp; mv got.tmp got";
    add_peer_as(&env, "w", Policy::Ephemeral, &["sh", "-c", script], Deliver::Keys);
    let text = "hello keys $(touch pwned) 'q' \"dq\"";
    env.mv(&["send", "w", text]).ok();
    assert!(wait_until(WAIT, || read(&env, "got").is_some()), "the task was never typed");
    assert_eq!(read(&env, "got").unwrap(), text);
    assert!(!env.scratch().join("pwned").exists());
    // A task that would be typed may not carry ESC or other controls.
    let out = env.mv(&["send", "w", "x\x1b[201~y", "--no-kick"]);
    out.code(1);
    assert!(out.stderr.contains("NOT queued") && out.stderr.contains("control character"));
}

#[test]
fn persistent_peer_is_woken_and_typed_into() {
    let env = Env::new();
    let script = "while IFS= read -r l; do printf '%s\\n' \"$l\" >> got; done";
    add_peer_as(&env, "p", Policy::Persistent, &["sh", "-c", script], Deliver::Argv);
    let out = env.mv(&["--json", "send", "p", "first $(touch pwned)"]).ok().json();
    assert_eq!(out, serde_json::json!({"delivered": true, "identity": "p"}));
    assert!(wait_until(WAIT, || read(&env, "got").is_some_and(|g| g.lines().count() == 1)));
    let out = env.mv(&["send", "p", "second"]).ok().stdout.clone();
    assert_eq!(out.trim(), "delivered to p");
    assert!(wait_until(WAIT, || read(&env, "got").is_some_and(|g| g.lines().count() == 2)));
    // Multi-line text from stdin arrives as lines, byte for byte: its own
    // trailing newline is kept, and the final Enter adds an empty line.
    env.mv_stdin(&["send", "p", "-"], b"third\nfourth\n").ok();
    assert!(wait_until(WAIT, || read(&env, "got").is_some_and(|g| g.lines().count() == 5)));
    assert_eq!(read(&env, "got").unwrap(), "first $(touch pwned)\nsecond\nthird\nfourth\n\n");
    assert!(!env.scratch().join("pwned").exists());
    // ESC (which could end a bracketed paste) and other controls are refused.
    for bad in ["evil\x1b[201~; touch pwned", "bell\x07", "cr\rx"] {
        let out = env.mv(&["send", "p", bad]);
        out.code(1);
        assert!(out.stderr.contains("control character"), "{out:#?}");
    }
    env.mv(&["send", "p", "x", "--dedupe", "k"]).code(1);
}

#[test]
fn a_send_after_the_runner_retired_starts_a_new_one() {
    let env = Env::new();
    let script = "printf %s \"$1\" > \"out-$MUXVISOR_TASK_ID\"";
    add_peer_as(&env, "w", Policy::Ephemeral, &["sh", "-c", script, "sh", "{task}"], Deliver::Argv);
    let out = env.mv(&["--json", "send", "w", "one"]).ok().json();
    let first = out["task"].as_str().unwrap().to_string();
    assert!(wait_until(WAIT, || read(&env, &format!("out-{first}")).is_some()));
    // The runner retires once the queue has been empty for its linger.
    assert!(wait_until(WAIT, || !env.root().join("run/w.sock").exists()));
    let out = env.mv(&["--json", "send", "w", "two"]).ok().json();
    let second = out["task"].as_str().unwrap().to_string();
    assert!(
        wait_until(WAIT, || read(&env, &format!("out-{second}")).is_some_and(|s| s == "two")),
        "no worker for the second task: {:?}",
        env.events("lifecycle", "task-start")
    );
    let shown = env.mv(&["--json", "queue", "w", "show", &first]).ok().json();
    assert_eq!(shown["stage"], "done");
    assert_eq!(shown["outcome"]["status"], 0);
    assert_eq!(env.events("lifecycle", "launch").len(), 2, "one runner per burst");
}

#[test]
fn concurrent_kicks_start_exactly_one_worker() {
    let env = Env::new();
    add_peer_as(&env, "w", Policy::Ephemeral, &["sleep", "30"], Deliver::Argv);
    std::thread::scope(|s| {
        for k in 0..6 {
            let env = &env;
            s.spawn(move || env.mv(&["send", "w", &format!("job {k}")]).ok().code);
        }
    });
    assert!(wait_until(WAIT, || env.events("lifecycle", "task-start").len() == 1));
    let l = env.mv(&["--json", "queue", "w", "list"]).ok().json();
    assert_eq!(l["running"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["pending"].as_array().unwrap().len(), 5, "{l}");
    assert_eq!(env.events("lifecycle", "task-start").len(), 1);
    assert_eq!(env.events("lifecycle", "launch").len(), 1, "one runner for all");
}

/// Issue 10, item 5: `send` to a persistent peer with a corrupt state file
/// started the server, then failed to record it: no `ev=launch`, and a
/// session that nothing accounted for.
#[test]
fn a_corrupt_state_file_is_refused_before_anything_starts() {
    let env = Env::new();
    env.mv(&["add", "p", "--", "sh", "-c", "while read -r l; do echo got:$l; done"]).ok();
    let state = env.root().join("state/p.json");
    std::fs::write(&state, b"{ torn").unwrap();
    for args in [&["send", "p", "hello"][..], &["launch", "p"][..]] {
        let out = env.mv(args);
        out.code(1);
        assert!(out.stderr.contains(state.to_str().unwrap()), "{args:?}: {out:?}");
        assert!(out.stderr.contains("nothing was started"), "{args:?}: {out:?}");
        assert!(out.stderr.contains("remove it"), "{args:?}: {out:?}");
    }
    assert!(!env.root().join("run/p.sock").exists(), "no server was started");
    assert!(env.events("lifecycle", "launch").is_empty());
    // The advice works.
    std::fs::remove_file(&state).unwrap();
    env.mv(&["send", "p", "hello"]).ok();
    assert_eq!(env.events("lifecycle", "launch").len(), 1);
}

/// Soak regression (issue 10): `paste-buffer` into a dead pane makes tmux
/// 3.3a segfault. The soak killed runners and programs while a task or a
/// message was being typed, and their servers crashed (each recorded as an
/// `ev=server-exit` nobody caused). Typing now checks, in the same tmux
/// command, that the pane is alive, and reports a dead one.
#[test]
fn typing_into_a_dead_pane_reports_it_and_the_server_survives() {
    use std::os::unix::fs::DirBuilderExt;
    let env = Env::new();
    fs::DirBuilder::new().recursive(true).mode(0o700).create(env.root().join("run")).unwrap();
    env.tmux(
        "d",
        &["set-option", "-g", "remain-on-exit", "on", ";", "new-session", "-d", "-s", "d", "true"],
    )
    .ok();
    assert!(wait_until(WAIT, || {
        env.tmux("d", &["display", "-p", "-t", "=d:", "#{pane_dead}"]).stdout.trim() == "1"
    }));
    let server: i32 = env.tmux("d", &["display", "-p", "#{pid}"]).stdout.trim().parse().unwrap();
    let tmux = muxvisor::tmux::Tmux::new(env.root().join("run/d.sock")).unwrap();
    let id = muxvisor::model::peer::Identity::parse("d").unwrap();
    let typed = muxvisor::tmux::paste::type_text(&tmux, &id, b"hello", true);
    let e = typed.expect_err("typed into a dead pane without a word");
    assert!(e.to_string().contains("dead"), "{e}");
    let e = muxvisor::tmux::paste::submit(&tmux, &id).expect_err("Enter into a dead pane");
    assert!(e.to_string().contains("dead"), "{e}");
    assert!(muxvisor::ground::proc::alive(server), "the tmux server crashed");
    env.tmux("d", &["has-session", "-t", "=d:"]).ok();
    let buffers = env.tmux("d", &["list-buffers"]).stdout;
    assert!(buffers.is_empty(), "the buffer was left behind: {buffers}");
}
