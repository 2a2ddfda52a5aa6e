//! Issue #19, "Operations keep their promises": stop, restart, timeouts,
//! upgrades and retention. One test per behaviour the issue pins, each named
//! after it; the item number is in its header.

use std::fs;
use std::time::Duration;

use crate::fixture::*;

/// Item 9: `supervise --interval 0s` spun (21,582 ticks in 3 s) where
/// `service install` refused the same value. Both refuse it now.
#[test]
fn a_supervise_loop_refuses_an_interval_under_a_second() {
    let env = Env::new();
    for bad in ["0s", "0", "500ms"] {
        let out = env.mv(&["supervise", "--interval", bad]);
        out.code(2);
        assert!(out.stderr.contains("at least 1s"), "{out:?}");
    }
    assert!(env.events("lifecycle", "tick").is_empty(), "no tick ran");
}

/// Item 10: peers named like a verb of `queue` (`list`, `rm`, `purge`) had
/// no usable queue. `queue --id ID VERB` reaches every identity.
#[test]
fn every_identity_reaches_its_queue_even_one_named_like_a_verb() {
    let env = Env::new();
    for id in ["list", "rm", "purge", "show", "retry"] {
        env.mv(&["add", id, "--ephemeral", "--", "true"]).ok();
        env.mv(&["send", id, "hello", "--no-kick"]).ok();
        let v = env.mv(&["queue", "--id", id, "list", "--json"]).ok().json();
        assert_eq!(v["identity"], id, "{v}");
        assert_eq!(v["pending"].as_array().map(Vec::len), Some(1), "{v}");
        let v = env.mv(&["queue", "--id", id, "--json"]).ok().json();
        assert_eq!(v["identity"], id, "{v}");
        env.mv(&["queue", "--id", id, "purge"]).ok();
        let v = env.mv(&["queue", "--id", id, "list", "--json"]).ok().json();
        assert_eq!(v["pending"].as_array().map(Vec::len), Some(0), "{v}");
    }
    // The positional form still works for every other name.
    env.mv(&["add", "plain", "--ephemeral", "--", "true"]).ok();
    env.mv(&["queue", "plain", "list"]).ok();
}

/// Item 11: a relative `XDG_STATE_HOME` made the root depend on the current
/// directory. It is ignored, as the XDG spec says: the root is
/// `~/.local/state/muxvisor` from any directory.
#[test]
fn a_relative_xdg_state_home_is_ignored() {
    let env = Env::new();
    let home = env.scratch().join("h");
    let (a, b) = (env.scratch().join("a"), env.scratch().join("b"));
    for d in [&home, &a, &b] {
        fs::create_dir_all(d).unwrap();
    }
    for (cwd, id) in [(&a, "one"), (&b, "two")] {
        let mut c = std::process::Command::new(BIN);
        c.args(["add", id, "--", "true"])
            .current_dir(cwd)
            .env_remove("MUXVISOR_ROOT")
            .env("HOME", &home)
            .env("XDG_STATE_HOME", "state");
        run_deadline(c, None, CMD_DEADLINE).ok();
    }
    let root = home.join(".local/state/muxvisor/peers");
    assert!(root.join("one.json").exists() && root.join("two.json").exists());
    assert!(!a.join("state").exists() && !b.join("state").exists());
}

/// Lines of `logs/<file>.log` with this `ev` and identity.
fn lines(env: &Env, file: &str, ev: &str, id: &str) -> Vec<String> {
    let who = format!(" identity={id} ");
    env.events(file, ev).into_iter().filter(|l| format!("{l} ").contains(&who)).collect()
}

fn queue(env: &Env, id: &str) -> serde_json::Value {
    env.mv(&["queue", "--id", id, "list", "--json"]).ok().json()
}

fn running_task(env: &Env, id: &str) -> Option<String> {
    queue(env, id)["running"].as_array()?.first()?["task"].as_str().map(str::to_string)
}

/// Item 1: `stop` of an ephemeral worker left its task in `cur/`, and the
/// next tick charged it (`server-dead`). A stop is not a crash: the task is
/// back at the head with no attempt charged, said in the log and in the
/// output; `--fail-task` dead-letters it with reason `stopped` instead.
#[test]
fn a_deliberate_stop_puts_the_running_task_back_uncharged() {
    let env = Env::new();
    // One attempt: any charged attempt would dead-letter the task.
    env.mv(&["add", "w", "--ephemeral", "--max-attempts", "1", "--", "sleep", "60"]).ok();
    let task =
        env.mv(&["send", "w", "x", "--json"]).ok().json()["task"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(20), || running_task(&env, "w").is_some()));
    let out = env.mv(&["stop", "w", "--grace", "2s"]).ok().stdout.clone();
    assert!(out.contains(&format!("task {task} is back at the head")), "{out}");
    let q = queue(&env, "w");
    assert_eq!(q["pending"][0]["task"], task.as_str(), "{q}");
    assert_eq!(q["pending"][0]["attempt"], 0, "no attempt charged: {q}");
    assert_eq!(q["dead"].as_array().map(Vec::len), Some(0), "{q}");
    let requeued = lines(&env, "lifecycle", "task-requeued", "w");
    assert!(requeued.iter().any(|l| l.contains("reason=stopped")), "{requeued:?}");
    // The next tick runs it again as attempt 1, rather than charging it.
    let v = env.mv(&["supervise", "--once", "--json"]).ok().json();
    assert!(wait_until(Duration::from_secs(20), || running_task(&env, "w").is_some()), "{v}");
    assert!(lines(&env, "lifecycle", "task-retry", "w").is_empty());
    assert!(lines(&env, "lifecycle", "task-dead", "w").is_empty());
    assert_eq!(queue(&env, "w")["running"][0]["attempt"], 1);
    // --fail-task: dead-lettered, reason stopped, and said so.
    let v = env.mv(&["stop", "w", "--grace", "2s", "--fail-task", "--json"]).ok().json();
    assert_eq!(v["task"], task.as_str(), "{v}");
    assert_eq!(v["task_outcome"], "dead", "{v}");
    let q = queue(&env, "w");
    assert_eq!(q["dead"][0]["task"], task.as_str(), "{q}");
    assert_eq!(q["dead"][0]["reason"], "stopped", "{q}");
}

/// The pid a live runner wrote into `queues/<id>/runner.lock`.
fn runner_pid(env: &Env, id: &str) -> Option<i32> {
    fs::read_to_string(env.root().join(format!("queues/{id}/runner.lock")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A stop of a worker whose tmux server died while its runner lived on
/// (its program ignores the hang-up, so the runner waits for it): the stop
/// ends the runner with its program, so nothing charges the task an
/// attempt behind the stop's back; it is back at the head uncharged, as a
/// stop of a live worker leaves it.
#[test]
fn a_stop_after_the_server_died_puts_the_running_task_back_uncharged() {
    let env = Env::new();
    // One attempt: any charged attempt would dead-letter the task.
    let script = "trap '' HUP; sleep 60";
    env.mv(&["add", "w", "--ephemeral", "--max-attempts", "1", "--", "sh", "-c", script]).ok();
    let task =
        env.mv(&["send", "w", "x", "--json"]).ok().json()["task"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(20), || {
        lines(&env, "lifecycle", "task-start", "w").len() == 1
    }));
    let runner = runner_pid(&env, "w").expect("the runner wrote its pid");
    // A zombie counts as gone: whoever adopts the runner may be slow to reap.
    let alive = muxvisor::ground::proc::alive;
    let server = checked_server_pid(&env, "w");
    nix::sys::signal::kill(server, nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !alive(server.as_raw())), "server lives");
    assert!(alive(runner), "the runner outlives its server while its program runs");
    let v = env.mv(&["stop", "w", "--grace", "2s", "--json"]).ok().json();
    assert_eq!(v["task"], task.as_str(), "{v}");
    assert_eq!(v["task_outcome"], "requeued", "{v}");
    assert!(wait_until(Duration::from_secs(10), || !alive(runner)), "the runner outlived the stop");
    let q = queue(&env, "w");
    assert_eq!(q["pending"][0]["task"], task.as_str(), "{q}");
    assert_eq!(q["pending"][0]["attempt"], 0, "no attempt charged: {q}");
    assert_eq!(q["dead"].as_array().map(Vec::len), Some(0), "{q}");
    assert!(lines(&env, "lifecycle", "task-retry", "w").is_empty());
    assert!(lines(&env, "lifecycle", "task-dead", "w").is_empty());
}

/// A persistent peer whose program runs `muxvisor CMD "$MUXVISOR_IDENTITY"`
/// in its own pane once `flag` exists (output to `out`), then sleeps.
fn self_stopper(env: &Env, id: &str, cmd: &str, flag: &std::path::Path) {
    self_stopper_to(env, id, cmd, flag, true)
}

/// [`self_stopper`], its command's output in a file or (`to_file` false) on
/// the pane's own terminal, which the stop hangs up.
fn self_stopper_to(env: &Env, id: &str, cmd: &str, flag: &std::path::Path, to_file: bool) {
    let out = env.scratch().join(format!("{id}.out"));
    let redirect = if to_file { format!(">>'{}' 2>&1", out.display()) } else { String::new() };
    let script = format!(
        "while [ ! -e '{f}' ]; do sleep 0.05; done; rm -f '{f}'; \
         \"$0\" {cmd} \"$MUXVISOR_IDENTITY\" --grace 3s {redirect}; sleep 1000",
        f = flag.display(),
    );
    env.mv(&[
        "add",
        id,
        "--restart",
        "always",
        "--backoff",
        "100ms",
        "--",
        "sh",
        "-c",
        &script,
        BIN,
    ])
    .ok();
}

/// Item 2: `muxvisor stop "$MUXVISOR_IDENTITY"` run in the peer's own pane
/// killed itself half-way (the peer ended `signal 15`, no `ev=stop`), and
/// the next tick restarted it as crash attempt 1. The stop finishes now.
#[test]
fn stop_from_inside_the_peer_finishes_and_sticks() {
    let env = Env::new();
    let flag = env.scratch().join("go");
    self_stopper(&env, "me", "stop", &flag);
    env.mv(&["launch", "me"]).ok();
    fs::write(&flag, "").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || !lines(&env, "lifecycle", "stop", "me").is_empty()),
        "no ev=stop: {}",
        env.read("logs/lifecycle.log")
    );
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["status", "me", "--json"]).json()[0]["state"] == "stopped"
    }));
    let v = env.mv(&["supervise", "--once", "--json"]).ok().json();
    assert_eq!(v.as_array().map(Vec::len), Some(0), "nothing to do: {v}");
    assert!(lines(&env, "exits", "session-exit", "me").is_empty(), "a stop is not a death");
    assert!(lines(&env, "lifecycle", "gone", "me").is_empty());
    assert!(lines(&env, "lifecycle", "restart", "me").is_empty());
    assert_eq!(lines(&env, "lifecycle", "launch", "me").len(), 1);
}

/// Item 2, `restart` from inside: the peer is stopped and launched again,
/// both recorded, with no death.
#[test]
fn restart_from_inside_the_peer_runs_it_again() {
    let env = Env::new();
    let flag = env.scratch().join("go");
    self_stopper(&env, "again", "restart", &flag);
    env.mv(&["launch", "again"]).ok();
    fs::write(&flag, "").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || lines(&env, "lifecycle", "launch", "again").len()
            == 2),
        "{}",
        env.read("logs/lifecycle.log")
    );
    let stops = lines(&env, "lifecycle", "stop", "again");
    assert!(stops.len() == 1 && stops[0].contains("reason=restart"), "{stops:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["status", "again", "--json"]).json()[0]["state"] == "running"
    }));
    assert!(lines(&env, "exits", "session-exit", "again").is_empty(), "a restart is not a death");
}

/// The soak's finding: run from inside with its output on the pane's own
/// terminal, `restart` stopped the peer and never launched it again: its
/// progress line went to the terminal the stop had hung up (EIO), and the
/// error ended the command before the launch. A reader that went away never
/// stops the work.
#[test]
fn restart_from_inside_with_its_output_on_the_pane_runs_it_again() {
    let env = Env::new();
    let flag = env.scratch().join("go");
    self_stopper_to(&env, "tty", "restart", &flag, false);
    env.mv(&["launch", "tty"]).ok();
    fs::write(&flag, "").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || lines(&env, "lifecycle", "launch", "tty").len()
            == 2),
        "{}",
        env.read("logs/lifecycle.log")
    );
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["status", "tty", "--json"]).json()[0]["state"] == "running"
    }));
}

/// Item 5: `--task-timeout` was enforced only by the tick: a 2 s task still
/// ran 15 s later, and under the service up to a minute, with the queue
/// stalled behind it. The runner ends it on time, with no tick.
#[test]
fn a_task_past_its_timeout_is_ended_by_its_runner_without_a_tick() {
    let env = Env::new();
    env.mv(&[
        "add",
        "slow",
        "--ephemeral",
        "--task-timeout",
        "2s",
        "--max-attempts",
        "1",
        "--",
        "sleep",
        "30",
    ])
    .ok();
    let t0 = std::time::Instant::now();
    let task =
        env.mv(&["send", "slow", "x", "--json"]).ok().json()["task"].as_str().unwrap().to_string();
    env.mv(&["send", "slow", "behind", "--no-kick"]).ok();
    assert!(
        wait_until(Duration::from_secs(15), || {
            queue(&env, "slow")["dead"].as_array().is_some_and(|d| d.len() == 1)
        }),
        "{}",
        env.read("logs/lifecycle.log")
    );
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(8), "ended after {took:?}, timeout 2s");
    let q = queue(&env, "slow");
    assert_eq!(q["dead"][0]["task"], task.as_str(), "{q}");
    let timeouts = lines(&env, "lifecycle", "task-timeout", "slow");
    assert!(timeouts.iter().any(|l| l.contains(&task)), "{timeouts:?}");
    assert!(env.events("lifecycle", "tick").is_empty(), "no tick was needed");
    // The queue moved on: the task behind it is running now.
    assert!(wait_until(Duration::from_secs(10), || running_task(&env, "slow").is_some()));
}

/// Item 6: a 20 KB `--env` (or 16 KB of arguments) was accepted by `add`,
/// then tmux refused every start with "command too long". What can never
/// start is refused at `add`, and nothing is registered.
#[test]
fn a_peer_tmux_could_never_start_is_refused_at_add() {
    let env = Env::new();
    let long = "a".repeat(16_500);
    let out = env.mv(&["add", "big", "--", "echo", &long]);
    out.code(1);
    assert!(out.stderr.contains("command too long"), "{out:?}");
    assert!(out.stderr.contains("16000 bytes"), "{out:?}");
    assert!(!env.root().join("peers/big.json").exists());
    // Issue 19: the environment is the tmux client's own, not part of the
    // command, so a 20 KB --env no longer counts and reaches the program.
    let big_env = format!("K={}", "v".repeat(20_000));
    let prog = "test ${#K} -eq 20000 || exit 3; exec sleep 100";
    env.mv(&["add", "big", "--env", &big_env, "--", "sh", "-c", prog]).ok();
    env.mv(&["launch", "big"]).ok();
}

/// Item 6: an ephemeral peer's environment no longer goes through a tmux
/// command line (its runner gives it to each program), so a 20 KB `--env`
/// is accepted and reaches the task.
#[test]
fn a_large_env_reaches_an_ephemeral_worker() {
    let env = Env::new();
    let big_env = format!("BIG={}", "v".repeat(20_000));
    env.mv(&[
        "add",
        "w",
        "--ephemeral",
        "--env",
        &big_env,
        "--",
        "sh",
        "-c",
        "test ${#BIG} -eq 20000",
    ])
    .ok();
    let task =
        env.mv(&["send", "w", "x", "--json"]).ok().json()["task"].as_str().unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(20), || {
            lines(&env, "lifecycle", "task-done", "w").iter().any(|l| l.contains(&task))
        }),
        "{}",
        env.read("logs/lifecycle.log")
    );
}

/// Item 6: a start that tmux refuses left the task pending at attempt 0
/// forever. A refused start costs the head task an attempt, with its
/// reason, so the task is dead-lettered after --max-attempts.
#[test]
fn a_start_tmux_refuses_costs_the_head_task_an_attempt() {
    let env = Env::new();
    // A tmux that refuses to create sessions, as it does a command too long.
    let real = String::from_utf8(
        std::process::Command::new("sh").args(["-c", "command -v tmux"]).output().unwrap().stdout,
    )
    .unwrap();
    let fake = env.scratch().join("tmux");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \" $* \" in *' new-session '*) echo 'command too long' >&2; exit 1;; \
             esac\nexec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("755").arg(&fake).status().unwrap();
    env.mv(&["add", "w", "--ephemeral", "--max-attempts", "2", "--backoff", "100ms", "--", "true"])
        .ok();
    let task = env.mv(&["send", "w", "x", "--no-kick", "--json"]).ok().json()["task"]
        .as_str()
        .unwrap()
        .to_string();
    let tick = || {
        let mut c = env.command(&["supervise", "--once", "--json"]);
        c.env("MUXVISOR_TMUX", &fake);
        run_deadline(c, None, CMD_DEADLINE).ok().json()
    };
    let v = tick();
    let retries = lines(&env, "lifecycle", "task-retry", "w");
    assert!(
        retries.iter().any(|l| l.contains(&task) && l.contains("launch-failed")),
        "{v}\n{retries:?}"
    );
    assert!(wait_until(Duration::from_secs(10), || {
        tick();
        queue(&env, "w")["dead"].as_array().is_some_and(|d| d.len() == 1)
    }));
}

/// A copy of muxvisor at a path of its own (a hard link: same bytes, no
/// copying), to be "moved" away as an upgrade would.
fn old_binary(env: &Env) -> std::path::PathBuf {
    let dir = env.scratch().join("old-bin");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("muxvisor");
    if fs::hard_link(BIN, &p).is_err() {
        fs::copy(BIN, &p).unwrap();
    }
    p
}

/// `muxvisor ARGS` run by `bin` instead of the test binary.
fn mv_with(env: &Env, bin: &std::path::Path, args: &[&str]) -> Out {
    let mut c = std::process::Command::new(bin);
    c.arg("--root").arg(env.root()).args(args);
    c.env_remove("MUXVISOR_ROOT").env_remove("TMUX").env_remove("TMUX_PANE");
    run_deadline(c, None, CMD_DEADLINE)
}

/// Item 4: after the binary moved (an upgrade), the pane-died hook could
/// not run, and the tick restarted a SIGKILLed peer with no recorded cause.
/// The tick records every death it finds (`source=tick`).
#[test]
fn a_death_the_hook_missed_is_recorded_by_the_tick() {
    let env = Env::new();
    let old = old_binary(&env);
    env.mv(&["add", "p", "--restart", "always", "--backoff", "100ms", "--", "sleep", "1000"]).ok();
    mv_with(&env, &old, &["launch", "p"]).ok();
    fs::remove_file(&old).unwrap(); // the upgrade moved it away
    let pid = pane_pid(&env, "p");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["status", "p", "--json"]).json()[0]["state"] == "exited"
    }));
    let v = env.mv(&["supervise", "--once", "--json"]).ok().json();
    let exits = lines(&env, "exits", "session-exit", "p");
    assert_eq!(exits.len(), 1, "{v}\n{exits:?}");
    assert!(exits[0].contains("signal=9") && exits[0].contains(&format!("pid={pid}")), "{exits:?}");
    assert!(exits[0].contains("source=tick"), "{exits:?}");
    // Once: the next ticks do not record it again.
    env.mv(&["supervise", "--once"]).ok();
    assert_eq!(lines(&env, "exits", "session-exit", "p").len(), 1);
}

/// Item 4: the hooks must survive an upgrade: a tick run by the new binary
/// re-points a live server's pane-died hook at itself, so the next death is
/// recorded at once, by the hook, with no tick.
#[test]
fn a_tick_repoints_the_exit_hook_of_a_moved_binary() {
    let env = Env::new();
    let old = old_binary(&env);
    env.mv(&["add", "p", "--restart", "never", "--", "sleep", "1000"]).ok();
    mv_with(&env, &old, &["launch", "p"]).ok();
    fs::remove_file(&old).unwrap();
    let v = env.mv(&["supervise", "--once", "--json"]).ok().json();
    assert!(
        v.as_array().unwrap().iter().any(|r| r["action"] == "rehook"),
        "the tick re-points the hook: {v}"
    );
    let v = env.mv(&["supervise", "--once", "--json"]).ok().json();
    assert!(v.as_array().unwrap().iter().all(|r| r["action"] != "rehook"), "once: {v}");
    let pid = pane_pid(&env, "p");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(10), || {
            lines(&env, "exits", "session-exit", "p").iter().any(|l| l.contains("signal=9"))
        }),
        "the hook recorded the death: {}",
        env.read("logs/exits.log")
    );
    assert!(!env.read("logs/exits.log").contains("source=tick"), "by the hook, not a tick");
}

/// Item 8: installed with a chosen tmux (`MUXVISOR_TMUX`), the entry ran
/// `/usr/bin/tmux`. The entry carries the tmux and the settings chosen at
/// install.
#[test]
fn the_service_entry_carries_the_tmux_and_settings_chosen_at_install() {
    let env = Env::new();
    let real = String::from_utf8(
        std::process::Command::new("sh").args(["-c", "command -v tmux"]).output().unwrap().stdout,
    )
    .unwrap();
    let chosen = env.scratch().join("my-tmux");
    std::os::unix::fs::symlink(real.trim(), &chosen).unwrap();
    for kind in ["--cron", "--systemd"] {
        let mut c = env.command(&["service", "install", kind, "--print"]);
        c.env("HOME", env.scratch())
            .env("MUXVISOR_TMUX", &chosen)
            .env("MUXVISOR_LOG_MAX", "123456");
        let out = run_deadline(c, None, CMD_DEADLINE);
        // A preview shows the entry even where this machine could not
        // install it (no crontab here: exit 1, saying so).
        let cannot = out.code == 1 && out.stderr.contains("install would fail here");
        assert!(out.code == 0 || cannot, "{kind}: {out:?}");
        let want = format!("MUXVISOR_TMUX={}", chosen.display());
        let quoted = format!("MUXVISOR_TMUX='{}'", chosen.display());
        assert!(out.stdout.contains(&want) || out.stdout.contains(&quoted), "{kind}: {out:?}");
        assert!(out.stdout.contains("MUXVISOR_LOG_MAX"), "{kind}: {out:?}");
    }
}

/// Item 7: only a manual `clean` pruned `done/`; 50,000 finished tasks
/// piled up. Retention (age and count, flags with documented defaults)
/// runs as part of the tick.
#[test]
fn the_tick_keeps_finished_tasks_by_age_and_count() {
    let env = Env::new();
    env.mv(&["add", "w", "--ephemeral", "--linger", "0s", "--", "true"]).ok();
    for i in 0..5 {
        env.mv(&["send", "w", &format!("t{i}"), "--no-kick"]).ok();
    }
    let done = env.root().join("queues/w/done");
    let finished = || {
        fs::read_dir(&done)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().ends_with(".outcome"))
                    .count()
            })
            .unwrap_or(0)
    };
    env.mv(&["supervise", "--once"]).ok();
    assert!(wait_until(Duration::from_secs(20), || finished() == 5), "{}", finished());
    // Count: the newest 2 stay.
    let v = env.mv(&["supervise", "--once", "--retention-count", "2", "--json"]).ok().json();
    assert!(v.as_array().unwrap().iter().any(|r| r["action"] == "retention"), "{v}");
    assert_eq!(finished(), 2);
    let outcomes = fs::read_dir(&done).unwrap().flatten().count();
    assert_eq!(outcomes, 4, "each kept task keeps its outcome, the others went with theirs");
    // Age: tasks finished two days ago go under a one-day retention.
    for e in fs::read_dir(&done).unwrap().flatten() {
        let ok = std::process::Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(e.path())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    env.mv(&["supervise", "--once", "--retention", "1d"]).ok();
    assert_eq!(finished(), 0);
}

/// Item 12: a launch killed after tmux started the server but before the
/// launch was recorded and the canary armed left a server nobody accounted
/// for: its runner ran tasks, and when the server was SIGKILLed later there
/// was no `server-exit`, `gone` or forensics. The incarnation is on record
/// before the server starts, and the runner arms its own canary.
#[cfg(feature = "fault-injection")]
#[test]
fn a_launch_killed_half_way_leaves_a_server_that_is_still_accounted_for() {
    let env = Env::new();
    env.mv(&["add", "w", "--ephemeral", "--", "sleep", "600"]).ok();
    let once = env.scratch().join("fault-once");
    let mut c = env.command(&["send", "w", "x"]);
    c.env("MUXVISOR_FAULT", "launch-started").env("MUXVISOR_FAULT_ONCE", &once);
    run_deadline(c, None, CMD_DEADLINE); // its kick dies half-way; the task is durable
    assert!(once.exists(), "the fault point was reached");
    assert!(wait_until(Duration::from_secs(20), || running_task(&env, "w").is_some()));
    let r = muxvisor::ground::paths::Root::new(env.root().to_path_buf());
    let id = muxvisor::model::peer::Identity::parse("w").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || muxvisor::lifecycle::canary::is_watching(&r, &id)),
        "the runner armed the canary its starter did not"
    );
    let out = env.tmux("w", &["display-message", "-p", "#{pid}"]);
    let server: i32 = out.stdout.trim().parse().unwrap();
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(10), || !lines(&env, "exits", "server-exit", "w")
            .is_empty()),
        "{}\n{}",
        env.read("logs/lifecycle.log"),
        env.read("logs/exits.log")
    );
    // The runner outlives its killed server while its program (sleep 600)
    // runs, as designed; end what this test started (its program dies with
    // it).
    let q = muxvisor::model::queue::Queue::open(&r, &id).unwrap();
    if let Some(pid) = q.lock_holder(muxvisor::model::queue::QueueLock::Runner) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(wait_until(Duration::from_secs(10), || !muxvisor::ground::proc::alive(pid)));
    }
}
