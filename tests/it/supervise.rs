//! The tick, driven by repeated `supervise --once` against real tmux with
//! short TTLs and backoffs: restarts with growing backoff until `failed`,
//! reaping, canary retrofit, queue draining and recovery after kill -9,
//! overlap, and hung servers. Peers are registered by writing their spec
//! (the lifecycle helpers); tasks are queued with `send --no-kick` so that
//! the ticks do the work.

use std::fs;
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use muxvisor::ground::paths::Root;
use muxvisor::model::peer::{Identity, PeerSpec, Policy, Restart};
use muxvisor::model::queue::{self, Queue};

use crate::fixture::*;

/// One tick with `--json`; it must succeed and print one array.
fn tick(env: &Env) -> Vec<serde_json::Value> {
    let out = env.mv(&["--json", "supervise", "--once"]);
    out.ok();
    out.json().as_array().cloned().unwrap_or_else(|| panic!("not an array: {out:?}"))
}

/// Tick until `cond` holds; false if it did not within `timeout`.
fn ticks_until(env: &Env, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        tick(env);
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// lifecycle.log lines with `ev` for `id`.
fn life(env: &Env, ev: &str, id: &str) -> Vec<String> {
    env.events("lifecycle", ev)
        .into_iter()
        .filter(|l| {
            l.contains(&format!(" identity={id} ")) || l.ends_with(&format!(" identity={id}"))
        })
        .collect()
}

fn has(actions: &[serde_json::Value], id: &str, action: &str) -> bool {
    actions.iter().any(|a| a["identity"] == id && a["action"] == action)
}

fn root(env: &Env) -> Root {
    Root::new(env.root().to_path_buf())
}

fn ident(id: &str) -> Identity {
    Identity::parse(id).unwrap()
}

fn ephemeral(env: &Env, id: &str, argv: &[&str], f: impl FnOnce(&mut PeerSpec)) -> PeerSpec {
    add_peer_with(env, id, argv, |s| {
        s.policy = Policy::Ephemeral;
        f(s)
    })
}

fn send(env: &Env, id: &str, text: &str) {
    env.mv(&["send", id, text, "--no-kick"]).ok();
}

fn lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// A shell loop that waits for `flag` and then exits 3; once the flag exists
/// every new incarnation dies at once.
fn die_on(flag: &std::path::Path) -> String {
    format!("while [ ! -e {} ]; do sleep 0.05; done; exit 3", flag.display())
}

#[test]
fn crash_loop_restarts_with_growing_backoff_then_fails() {
    let env = Env::new();
    let flag = env.scratch().join("die");
    add_peer_with(&env, "crash", &["sh", "-c", &die_on(&flag)], |s| {
        s.restart = Restart::OnFailure;
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(400);
        s.restart_burst = 3;
        s.restart_window = Duration::from_secs(60);
    });
    env.mv(&["launch", "crash"]).ok();
    let quiet = tick(&env);
    assert!(!has(&quiet, "crash", "restart"), "{quiet:?}");
    fs::write(&flag, "").unwrap();
    assert!(
        ticks_until(&env, Duration::from_secs(30), || !life(&env, "failed", "crash").is_empty()),
        "never marked failed: {}",
        env.read("logs/lifecycle.log")
    );
    let restarts = life(&env, "restart", "crash");
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    let attempts: Vec<String> = restarts.iter().map(|l| field(l, "attempt")).collect();
    assert_eq!(attempts, ["1", "2"]);
    let backoffs: Vec<u64> =
        restarts.iter().map(|l| field(l, "backoff_ms").parse().unwrap()).collect();
    assert!(backoffs[0] < backoffs[1], "backoff grows: {backoffs:?}");
    assert!(backoffs[1] <= 400, "capped: {backoffs:?}");
    let failed = &life(&env, "failed", "crash")[0];
    assert_eq!(field(failed, "restarts"), "2", "{failed}");
    assert_eq!(field(failed, "window_s"), "60", "{failed}");
    assert_eq!(state(&env, "crash")["failed"], true);
    // Failed is final until launch: more ticks restart nothing.
    for _ in 0..3 {
        let v = tick(&env);
        assert!(!has(&v, "crash", "restart"), "{v:?}");
    }
    assert_eq!(life(&env, "restart", "crash").len(), 2);
    assert_eq!(life(&env, "failed", "crash").len(), 1, "failed is recorded once");
    assert_eq!(exits(&env, "session-exit", "crash").len(), 3, "three deaths, three records");
    assert!(life(&env, "gone", "crash").is_empty(), "a dead pane is not a missing session");
}

#[test]
fn server_death_is_recorded_gone_once_and_restarted() {
    let env = Env::new();
    add_peer_with(&env, "sd", &["sleep", "1000"], |s| {
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(400);
    });
    env.mv(&["launch", "sd"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "sd")));
    let old_canary = muxvisor::lifecycle::canary::pid(&root(&env), &ident("sd")).unwrap();
    let server = env.server_pid("sd").unwrap();
    unsafe { libc::kill(server, libc::SIGKILL) };
    // The old canary records the death and leaves; only then tick, so that
    // the restart's own canary is not mistaken for the leaving one.
    assert!(wait_until(Duration::from_secs(5), || !alive(old_canary)));
    assert_eq!(exits(&env, "server-exit", "sd").len(), 1);
    // The tick that sees the death records it; the restart waits its
    // backoff from that moment (issue 10, item 14) and the tick says so.
    let v = tick(&env);
    assert!(has(&v, "sd", "gone") && has(&v, "sd", "restart-pending"), "{v:?}");
    assert!(!has(&v, "sd", "restart"), "not before its backoff: {v:?}");
    let gone = life(&env, "gone", "sd");
    assert_eq!(gone.len(), 1);
    assert_eq!(field(&gone[0], "death"), "server-dead");
    assert!(ticks_until(&env, Duration::from_secs(10), || !life(&env, "restart", "sd").is_empty()));
    let restart = &life(&env, "restart", "sd")[0];
    let waited = chrono::DateTime::parse_from_rfc3339(&field(restart, "ts")).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&field(&gone[0], "ts")).unwrap();
    let backoff: i64 = field(restart, "backoff_ms").parse().unwrap();
    assert!(waited.num_milliseconds() >= backoff, "restarted {waited} after the death: {restart}");
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "sd")));
    let v = tick(&env);
    assert!(v.iter().all(|a| a["identity"] != "sd"), "a healthy peer has no actions: {v:?}");
    assert_eq!(life(&env, "gone", "sd").len(), 1, "logged once");
}

#[test]
fn idle_peer_is_reaped_and_not_restarted() {
    let env = Env::new();
    add_peer_with(&env, "idle", &["sh", "-c", "echo hello; exec sleep 1000"], |s| {
        s.idle_ttl = Some(Duration::from_secs(1));
        s.restart = Restart::Always;
    });
    env.mv(&["launch", "idle"]).ok();
    let pid = state(&env, "idle")["pane_pid"].as_i64().unwrap() as i32;
    assert!(ticks_until(&env, Duration::from_secs(20), || !life(&env, "reaped-idle", "idle")
        .is_empty()));
    let st = state(&env, "idle");
    assert_eq!(st["stopped"], true);
    assert_eq!(st["stop_reason"], "reaped-idle");
    assert!(!env.root().join("run/idle.sock").exists());
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    for _ in 0..2 {
        let v = tick(&env);
        assert!(v.iter().all(|a| a["identity"] != "idle"), "{v:?}");
    }
    assert_eq!(life(&env, "launch", "idle").len(), 1, "not restarted");
    assert!(life(&env, "gone", "idle").is_empty(), "no false death");
    assert!(exits(&env, "session-exit", "idle").is_empty());
    assert!(exits(&env, "server-exit", "idle").is_empty());
}

#[test]
fn old_peer_is_reaped_by_max_age() {
    let env = Env::new();
    add_peer_with(&env, "old", &["sh", "-c", "while :; do echo busy; sleep 0.2; done"], |s| {
        s.max_age = Some(Duration::from_secs(2));
        s.idle_ttl = Some(Duration::from_secs(60));
        s.restart = Restart::Always;
    });
    env.mv(&["launch", "old"]).ok();
    assert!(
        ticks_until(&env, Duration::from_secs(20), || !life(&env, "reaped-age", "old").is_empty())
    );
    assert_eq!(state(&env, "old")["stop_reason"], "max-age");
    let v = tick(&env);
    assert!(!has(&v, "old", "restart"), "{v:?}");
    assert_eq!(life(&env, "launch", "old").len(), 1);
    assert!(life(&env, "reaped-idle", "old").is_empty(), "it was busy, not idle");
    assert!(exits(&env, "server-exit", "old").is_empty());
}

#[test]
fn missing_canary_is_retrofitted_once_without_a_restart() {
    let env = Env::new();
    add_peer(&env, "can", &["sleep", "1000"]);
    env.mv(&["launch", "can"]).ok();
    let r = root(&env);
    let id = ident("can");
    // The canary takes its lock, then writes its pid into it: wait for the
    // pid, not only the lock (issue #19, item 13: a loaded machine caught
    // the lock held and the pid not yet written).
    let mut old = None;
    assert!(wait_until(Duration::from_secs(10), || {
        old = muxvisor::lifecycle::canary::pid(&r, &id);
        old.is_some()
    }));
    let old = old.expect("the canary records its pid in its lock");
    unsafe { libc::kill(old, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, "can")));
    let v = tick(&env);
    assert!(has(&v, "can", "canary"), "{v:?}");
    let mut new = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            new = muxvisor::lifecycle::canary::pid(&r, &id).filter(|p| *p != old);
            new.is_some()
        }),
        "a new canary records its pid"
    );
    let new = new.unwrap();
    let v = tick(&env);
    assert!(!has(&v, "can", "canary"), "one canary is enough: {v:?}");
    assert_eq!(muxvisor::lifecycle::canary::pid(&r, &id), Some(new));
    assert_eq!(life(&env, "launch", "can").len(), 1, "the session was not restarted");
}

/// A tick with one SIGSTOPped server: reported hung (logged once), and the
/// other peer's death is still handled in the same tick.
#[test]
fn hung_server_is_reported_and_the_others_still_handled() {
    let env = Env::new();
    let flag = env.scratch().join("die");
    add_peer(&env, "frozen", &["sleep", "1000"]);
    add_peer_with(&env, "other", &["sh", "-c", &die_on(&flag)], |s| {
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(100);
    });
    env.mv(&["launch", "frozen"]).ok();
    env.mv(&["launch", "other"]).ok();
    fs::write(&flag, "").unwrap();
    assert!(wait_until(Duration::from_secs(5), || !exits(&env, "session-exit", "other").is_empty()));
    let server = env.server_pid("frozen").unwrap();
    unsafe { libc::kill(server, libc::SIGSTOP) };
    let v = tick(&env);
    let v2 = tick(&env);
    unsafe { libc::kill(server, libc::SIGCONT) };
    assert!(has(&v, "frozen", "hung"), "{v:?}");
    assert!(has(&v, "other", "restart") || has(&v, "other", "restart-pending"), "{v:?}");
    assert!(has(&v2, "frozen", "hung"), "still reported: {v2:?}");
    assert_eq!(life(&env, "hung", "frozen").len(), 1, "logged once");
    assert_eq!(env.events("lifecycle", "tick").len(), 2);
}

#[test]
fn a_tick_finding_another_running_exits_zero_saying_so() {
    let env = Env::new();
    env.mv(&["supervise", "--once"]).ok();
    let lock = fs::File::open(env.root().join("supervise.lock")).unwrap();
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let human = env.mv(&["supervise", "--once"]);
    human.ok();
    assert!(human.stdout.contains("another tick is running"), "{human:?}");
    let json = env.mv(&["--json", "supervise", "--once"]);
    json.ok();
    assert_eq!(json.json(), serde_json::json!([]));
    assert!(json.stderr.contains("another tick is running"), "{json:?}");
    drop(lock);
    let free = env.mv(&["supervise", "--once"]);
    free.ok();
    assert!(free.stdout.contains("tick: 0 peers"), "{free:?}");
    assert_eq!(env.events("lifecycle", "tick").len(), 2);
}

/// Two ticks started together (one slowed by a hung server so that they
/// overlap): one works, the other exits 0 at once saying so.
#[test]
fn two_ticks_started_together_one_works() {
    let env = Env::new();
    add_peer(&env, "slow", &["sleep", "1000"]);
    env.mv(&["launch", "slow"]).ok();
    let server = env.server_pid("slow").unwrap();
    unsafe { libc::kill(server, libc::SIGSTOP) };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| env.mv(&["supervise", "--once"]));
        let b = s.spawn(|| env.mv(&["supervise", "--once"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    unsafe { libc::kill(server, libc::SIGCONT) };
    a.ok();
    b.ok();
    let busy = [&a, &b].iter().filter(|o| o.stdout.contains("another tick is running")).count();
    assert_eq!(busy, 1, "{a:?}\n{b:?}");
    assert_eq!(env.events("lifecycle", "tick").len(), 1);
}

#[test]
fn loop_mode_ticks_until_sigterm() {
    let env = Env::new();
    let mut child = env
        .command(&["supervise", "--interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let ticked = wait_until(Duration::from_secs(20), || env.events("lifecycle", "tick").len() >= 2);
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut status = None;
    assert!(wait_until(Duration::from_secs(10), || {
        status = child.try_wait().unwrap();
        status.is_some()
    }));
    if status.is_none() {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = child.wait();
    }
    assert!(ticked);
    assert_eq!(status.unwrap().code(), Some(0));
}

/// The worker of the drain tests: appends "<task id> <payload> <pid>".
fn recorder(out: &std::path::Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("printf '%s %s %s\\n' \"$MUXVISOR_TASK_ID\" \"$1\" \"$$\" >> {}", out.display()),
        "sh".into(),
        "{task}".into(),
    ]
}

#[test]
fn twenty_tasks_drain_in_order_each_in_its_own_process() {
    let env = Env::new();
    let out = env.scratch().join("out");
    let argv = recorder(&out);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ephemeral(&env, "drain", &argv, |_| {});
    let payloads: Vec<String> = (1..=20).map(|i| format!("t{i:02}")).collect();
    for p in &payloads {
        send(&env, "drain", p);
    }
    assert!(
        ticks_until(&env, Duration::from_secs(120), || lines(&out).len() >= 20),
        "drained only {:?}",
        lines(&out)
    );
    for _ in 0..2 {
        tick(&env);
    }
    let got = lines(&out);
    assert_eq!(got.len(), 20, "{got:?}");
    let fields: Vec<Vec<&str>> = got.iter().map(|l| l.split(' ').collect()).collect();
    let order: Vec<&str> = fields.iter().map(|f| f[1]).collect();
    assert_eq!(order, payloads, "strict FIFO");
    let mut pids: Vec<&str> = fields.iter().map(|f| f[2]).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 20, "a fresh program per task");
    assert_eq!(life(&env, "task-done", "drain").len(), 20);
    let c = queue::counts(&root(&env), &ident("drain")).unwrap();
    assert_eq!((c.pending, c.running, c.dead), (0, 0, 0));
    assert!(
        wait_until(Duration::from_secs(30), || !env.root().join("run/drain.sock").exists()),
        "the runner retires its server once the queue is drained"
    );
}

#[test]
fn failing_workers_retry_then_finish_or_are_dead_lettered() {
    let env = Env::new();
    let cnt = env.scratch().join("cnt");
    let flaky = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ \"$n\" -ge 3 ]",
        c = cnt.display()
    );
    ephemeral(&env, "flaky", &["sh", "-c", &flaky], |s| {
        s.max_attempts = 3;
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(200);
    });
    ephemeral(&env, "doomed", &["sh", "-c", "exit 7"], |s| {
        s.max_attempts = 2;
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(200);
    });
    send(&env, "flaky", "work");
    send(&env, "doomed", "work");
    assert!(
        ticks_until(&env, Duration::from_secs(60), || {
            life(&env, "task-done", "flaky").len() == 1
                && life(&env, "task-dead", "doomed").len() == 1
        }),
        "{}",
        env.read("logs/lifecycle.log")
    );
    let retries: Vec<String> =
        life(&env, "task-retry", "flaky").iter().map(|l| field(l, "attempt")).collect();
    assert_eq!(retries, ["1", "2"]);
    assert_eq!(fs::read_to_string(&cnt).unwrap().trim(), "3");
    assert_eq!(field(&life(&env, "task-done", "flaky")[0], "status"), "0");
    assert_eq!(life(&env, "task-retry", "doomed").len(), 1);
    assert_eq!(field(&life(&env, "task-dead", "doomed")[0], "reason"), "max-attempts");
    let c = queue::counts(&root(&env), &ident("doomed")).unwrap();
    assert_eq!((c.pending, c.running, c.dead), (0, 0, 1));
}

/// A claimer that died before it started the program (as a runner killed
/// -9 there would) leaves a task in `cur/` with no runner: the next tick
/// puts it back (the attempt counts) and it runs to completion exactly
/// once, still first.
#[test]
fn claimed_task_without_a_worker_is_recovered_and_runs_once() {
    let env = Env::new();
    let out = env.scratch().join("out");
    let argv = recorder(&out);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ephemeral(&env, "rec", &argv, |_| {});
    for p in ["a", "b", "c"] {
        send(&env, "rec", p);
    }
    let q = Queue::open(&root(&env), &ident("rec")).unwrap();
    // Claimed a minute ago by a claimer that died before launching.
    let then = Utc::now() - chrono::TimeDelta::seconds(60);
    let claimed = q.claim_head(then).unwrap().expect("head claimed");
    let v = tick(&env);
    assert!(has(&v, "rec", "task-retry"), "{v:?}");
    assert!(ticks_until(&env, Duration::from_secs(30), || lines(&out).len() >= 3));
    tick(&env);
    let got: Vec<String> =
        lines(&out).iter().map(|l| l.split(' ').nth(1).unwrap().to_string()).collect();
    assert_eq!(got, ["a", "b", "c"]);
    assert!(lines(&out)[0].starts_with(claimed.task()));
    let done = life(&env, "task-done", "rec");
    assert_eq!(done.iter().filter(|l| field(l, "task") == claimed.task()).count(), 1);
}

/// Ticks killed with -9 at assorted moments of a drain: the survivors'
/// ticks finish every task exactly once, in order.
#[test]
fn ticks_killed_mid_drain_lose_nothing_and_repeat_nothing() {
    let env = Env::new();
    let out = env.scratch().join("out");
    let script = format!("sleep 0.1; printf '%s\\n' \"$1\" >> {}", out.display());
    ephemeral(&env, "k9", &["sh", "-c", &script, "sh", "{task}"], |_| {});
    let payloads: Vec<String> = (1..=6).map(|i| format!("p{i}")).collect();
    for p in &payloads {
        send(&env, "k9", p);
    }
    for k in 0..10u64 {
        let mut child = env
            .command(&["supervise", "--once"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a different moment each time (a trial, not a settle wait).
        std::thread::sleep(Duration::from_millis(5 + (k * 37) % 160));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
    }
    assert!(
        ticks_until(&env, Duration::from_secs(60), || lines(&out).len() >= payloads.len()),
        "{:?}",
        lines(&out)
    );
    for _ in 0..2 {
        tick(&env);
    }
    assert_eq!(lines(&out), payloads, "each task exactly once, in order");
    let c = queue::counts(&root(&env), &ident("k9")).unwrap();
    assert_eq!((c.pending, c.running, c.dead), (0, 0, 0));
}

/// A worker past `--task-timeout` is stopped on purpose (no death record)
/// and its task retried, then dead-lettered at `max_attempts`.
#[test]
fn a_worker_past_its_task_timeout_is_stopped_and_the_task_retried() {
    let env = Env::new();
    ephemeral(&env, "slowpoke", &["sleep", "1000"], |s| {
        s.task_timeout = Duration::from_millis(500);
        s.max_attempts = 2;
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(100);
    });
    send(&env, "slowpoke", "forever");
    assert!(
        ticks_until(&env, Duration::from_secs(30), || !life(&env, "task-dead", "slowpoke")
            .is_empty()),
        "{}",
        env.read("logs/lifecycle.log")
    );
    let retry = life(&env, "task-retry", "slowpoke");
    assert_eq!(retry.len(), 1, "{retry:?}");
    assert_eq!(field(&retry[0], "reason"), "timeout");
    assert_eq!(field(&life(&env, "task-dead", "slowpoke")[0], "reason"), "max-attempts");
    assert_eq!(life(&env, "task-start", "slowpoke").len(), 2);
    // The runner ends the program at its timeout and records that end as
    // the task's (issue #19 item 5): SIGTERM, with the task id; never as a
    // death of the peer.
    let ends = exits(&env, "session-exit", "slowpoke");
    assert!(ends.iter().all(|l| l.contains(" task=") && l.contains("signal=15")), "{ends:?}");
    assert_eq!(life(&env, "task-timeout", "slowpoke").len(), 2);
    // The runner retires once its queue has been empty for its --linger.
    let sock = env.root().join("run/slowpoke.sock");
    assert!(wait_until(Duration::from_secs(20), || !sock.exists()));
}

/// The event logs stay bounded with no `clean`: every tick rotates those
/// past their cap to `.1`, keeping one old copy.
#[test]
fn ticks_keep_the_event_logs_under_their_cap() {
    let env = Env::new();
    let cap = 600u64;
    for _ in 0..12 {
        let mut c = env.command(&["supervise", "--once"]);
        c.env("MUXVISOR_LOG_MAX", cap.to_string());
        run_deadline(c, None, CMD_DEADLINE).ok();
    }
    let log = env.root().join("logs/lifecycle.log");
    let old = env.root().join("logs/lifecycle.log.1");
    let size = |p: &std::path::Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(old.is_file(), "12 ticks of ~80 bytes past a {cap}-byte cap rotate the log");
    // Each tick adds one line after rotating at most once, so neither copy
    // can be more than one line past the cap.
    assert!(size(&log) <= cap + 200, "lifecycle.log is {} bytes", size(&log));
    assert!(size(&old) <= cap + 200, "lifecycle.log.1 is {} bytes", size(&old));
    assert!(env.read("logs/lifecycle.log").lines().all(|l| l.contains(" ev=tick ")));
}

/// Soak regression (issue 10): a launcher killed inside its tmux
/// invocation (after the server started, before the state recorded it: the
/// soak killed a tick there, mid-restart) leaves a running server that the
/// state does not name and no `ev=launch`. The next tick adopts it: the
/// state names the server that runs, the launch is logged (`adopted=1`),
/// and its later death is recorded and restarted like any other.
#[test]
fn a_tick_adopts_a_server_whose_launch_was_never_recorded() {
    let env = Env::new();
    add_peer_with(&env, "adopt", &["sleep", "1000"], |s| {
        s.restart = Restart::Always;
        s.backoff = Duration::from_millis(100);
        s.max_backoff = Duration::from_millis(200);
    });
    env.mv(&["launch", "adopt"]).ok();
    let server = env.server_pid("adopt").expect("a server");
    let pane = state(&env, "adopt")["pane_pid"].as_i64().unwrap();
    // As if this launch had never been recorded: the state still describes
    // an earlier incarnation, dead and due for a restart.
    let mut st = state(&env, "adopt");
    let earlier = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    st["server_pid"] = serde_json::json!(i32::MAX - 1);
    st["server_start"] = serde_json::Value::Null;
    st["pane_pid"] = serde_json::json!(i32::MAX - 2);
    st["launched_at"] = serde_json::json!(earlier);
    st["dead_incarnation"] = serde_json::json!(earlier);
    st["next_restart_at"] = serde_json::json!(earlier);
    st["pending_attempt"] = serde_json::json!(1);
    fs::write(env.root().join("state/adopt.json"), serde_json::to_vec(&st).unwrap()).unwrap();
    tick(&env);
    let st = state(&env, "adopt");
    assert_eq!(st["server_pid"].as_i64(), Some(i64::from(server)), "{st}");
    assert_eq!(st["pane_pid"].as_i64(), Some(pane), "{st}");
    let launches = life(&env, "launch", "adopt");
    assert!(launches.last().is_some_and(|l| l.contains(" adopted=1")), "{launches:?}");
    assert_eq!(launches.len(), 2, "{launches:?}");
    // Its death is news, and is restarted.
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert!(ticks_until(&env, Duration::from_secs(20), || {
        env.server_pid("adopt").is_some_and(|p| p != server && alive(p))
    }));
    let gone = life(&env, "gone", "adopt");
    assert_eq!(gone.len(), 1, "{gone:?}");
}

// ---------------------------------------------------------------------------
// The kernel's word: a healthy plain peer is looked at through the OS, not
// tmux (issue 21); every death and every hung server is still found.

/// A tmux that logs each call (one line of arguments) to `log`, then runs
/// the real one: `MUXVISOR_TMUX` for a tick proves which peers it asked.
fn logging_tmux(env: &Env, log: &std::path::Path) -> std::path::PathBuf {
    let real = String::from_utf8(
        std::process::Command::new("sh").args(["-c", "command -v tmux"]).output().unwrap().stdout,
    )
    .unwrap();
    let script = env.scratch().join("logging-tmux");
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.trim()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// One tick through [`logging_tmux`]: its actions, and the tmux calls it
/// made that name `id`'s socket.
fn tick_logged(env: &Env, id: &str) -> (Vec<serde_json::Value>, Vec<String>) {
    let log = env.scratch().join("tmux-calls");
    let _ = fs::remove_file(&log);
    let tmux = logging_tmux(env, &log);
    let out = mv_env(
        env,
        &["--json", "supervise", "--once"],
        &[("MUXVISOR_TMUX", tmux.to_str().unwrap())],
    );
    out.ok();
    let sock = format!("run/{id}.sock");
    let calls = lines(&log).into_iter().filter(|l| l.contains(&sock)).collect();
    (out.json().as_array().cloned().unwrap_or_default(), calls)
}

/// An identity `prefix<n>` whose periodic tmux look is not due in the next
/// few minutes, so that a test sees the kernel's word and not that look.
fn no_tmux_look_soon(prefix: &str) -> String {
    let now = Utc::now();
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|id| {
            (0..4).all(|m| {
                !muxvisor::tick::decide::tmux_look_due(
                    &ident(id),
                    now + chrono::Duration::minutes(m),
                )
            })
        })
        .unwrap()
}

/// A launched plain peer whose `pane-died` hook is removed (a hook can
/// fail: the tick is the witness of last resort), seen running by one
/// tick, and then taken on the kernel's word: a tick asks tmux nothing
/// about it.
fn healthy_without_hook(env: &Env, id: &str, argv: &[&str]) {
    add_peer_with(env, id, argv, |s| s.restart = Restart::Never);
    env.mv(&["launch", id]).ok();
    assert!(wait_until(Duration::from_secs(10), || canary_watching(env, id)));
    env.tmux(id, &["set-hook", "-gu", "pane-died"]).ok();
    tick(env);
    assert_eq!(state(env, id)["last_observed"], "running");
    let (v, calls) = tick_logged(env, id);
    assert!(v.iter().all(|a| a["identity"] != id), "a healthy peer has no actions: {v:?}");
    assert!(calls.is_empty(), "the kernel vouched for {id}, no tmux call: {calls:?}");
}

/// The pane's program SIGKILLed with no hook to record it: the kernel no
/// longer vouches (its pid is gone or a zombie), tmux is asked, and the
/// tick records the death (`source=tick`).
#[test]
fn a_pane_death_no_hook_recorded_is_found_by_the_tick_despite_the_kernel_look() {
    let env = Env::new();
    let id = no_tmux_look_soon("kp");
    healthy_without_hook(&env, &id, &["sleep", "1000"]);
    let pid = pane_pid(&env, &id);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    let (_, calls) = tick_logged(&env, &id);
    assert!(!calls.is_empty(), "tmux is asked about a peer the kernel cannot vouch for");
    assert!(
        ticks_until(&env, Duration::from_secs(10), || !exits(&env, "session-exit", &id).is_empty()),
        "the death was never recorded: {}",
        env.read("logs/lifecycle.log")
    );
    let died = exits(&env, "session-exit", &id);
    assert_eq!(died.len(), 1, "{died:?}");
    assert!(died[0].contains("source=tick") && died[0].contains("signal=9"), "{died:?}");
    assert_eq!(state(&env, &id)["last_observed"], "exited");
}

/// The server SIGKILLed after its canary (so the tick is the only witness),
/// while the pane's program ignores SIGHUP and outlives it as an orphan:
/// the kernel does not vouch for an orphan, and the tick records the
/// server's death.
#[test]
fn a_server_death_no_canary_saw_is_found_by_the_tick_despite_the_kernel_look() {
    let env = Env::new();
    let id = no_tmux_look_soon("ks");
    healthy_without_hook(&env, &id, &["sh", "-c", "trap '' HUP; exec sleep 1000"]);
    let pane = pane_pid(&env, &id);
    let server = env.server_pid(&id).unwrap();
    let canary = muxvisor::lifecycle::canary::pid(&root(&env), &ident(&id)).unwrap();
    unsafe { libc::kill(canary, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, &id)));
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !alive(server)));
    let orphan = alive(pane);
    let v = tick(&env);
    unsafe { libc::kill(pane, libc::SIGKILL) };
    assert!(orphan, "the program outlived its server (it ignores SIGHUP)");
    assert!(has(&v, &id, "gone"), "{v:?}");
    let gone = life(&env, "gone", &id);
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(field(&gone[0], "death"), "server-dead");
    assert!(exits(&env, "server-exit", &id).is_empty(), "no canary recorded it: the tick did");
}

/// A SIGSTOPped server answers nobody: the kernel sees it stopped and does
/// not vouch, so the tick asks tmux, times out and reports it hung.
#[test]
fn a_stopped_server_is_reported_hung_despite_the_kernel_look() {
    let env = Env::new();
    let id = no_tmux_look_soon("kh");
    healthy_without_hook(&env, &id, &["sleep", "1000"]);
    let server = env.server_pid(&id).unwrap();
    unsafe { libc::kill(server, libc::SIGSTOP) };
    let stopped = wait_until(Duration::from_secs(5), || {
        muxvisor::ground::proc::info(server).is_some_and(|p| p.stopped == Some(true))
    });
    let v = tick(&env);
    unsafe { libc::kill(server, libc::SIGCONT) };
    assert!(stopped);
    assert!(has(&v, &id, "hung"), "{v:?}");
    assert_eq!(life(&env, "hung", &id).len(), 1);
    // Continued, it is running again and the kernel's again once tmux said so.
    assert!(ticks_until(&env, Duration::from_secs(10), || {
        state(&env, &id)["last_observed"] == "running"
    }));
    let (_, calls) = tick_logged(&env, &id);
    assert!(calls.is_empty(), "{calls:?}");
}

/// A record written before pane start times were kept: the tick asks tmux
/// (the kernel cannot tell a reused pid without it), records the start
/// time of the pane tmux shows alive, and takes the kernel's word after.
#[test]
fn a_record_without_the_pane_start_gets_it_from_a_tick() {
    let env = Env::new();
    let id = no_tmux_look_soon("kr");
    add_peer(&env, &id, &["sleep", "1000"]);
    env.mv(&["launch", &id]).ok();
    let recorded = state(&env, &id)["pane_start"].clone();
    assert!(recorded.is_u64(), "launch records it: {recorded}");
    let mut st = state(&env, &id);
    st["pane_start"] = serde_json::Value::Null;
    st["last_observed"] = serde_json::json!("running");
    fs::write(env.root().join(format!("state/{id}.json")), serde_json::to_vec(&st).unwrap())
        .unwrap();
    let (_, calls) = tick_logged(&env, &id);
    assert!(!calls.is_empty(), "without it, tmux is asked");
    assert_eq!(state(&env, &id)["pane_start"], recorded);
    let (v, calls) = tick_logged(&env, &id);
    assert!(calls.is_empty(), "then the kernel's word: {calls:?}");
    assert!(v.iter().all(|a| a["identity"] != id.as_str()), "{v:?}");
}

/// A launch that replaces an incarnation whose pane died unrecorded (its
/// `pane-died` hook removed here; in the soak, the hook was killed by
/// pid before it wrote, and a `send` woke the peer before any tick
/// looked) records that death first, `source=launch`, with its signal:
/// the old server, and the pane's status with it, are gone a moment later.
/// Before, the launch tore the server down and the death had no record.
#[test]
fn a_launch_over_a_dead_pane_nobody_recorded_records_the_death_first() {
    let env = Env::new();
    let id = "lp";
    add_peer_with(&env, id, &["sleep", "1000"], |s| s.restart = Restart::Never);
    env.mv(&["launch", id]).ok();
    assert!(wait_until(Duration::from_secs(10), || canary_watching(&env, id)));
    env.tmux(id, &["set-hook", "-gu", "pane-died"]).ok();
    let pid = pane_pid(&env, id);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let dead = wait_until(Duration::from_secs(10), || {
        env.tmux(id, &["list-panes", "-F", "#{pane_dead}"]).stdout.trim() == "1"
    });
    assert!(dead, "tmux never showed the pane dead");
    assert!(exits(&env, "session-exit", id).is_empty(), "nothing recorded it yet");
    env.mv(&["launch", id]).ok();
    let died = exits(&env, "session-exit", id);
    assert_eq!(died.len(), 1, "{died:?}");
    let pid_kv = format!(" pid={pid} ");
    assert!(
        died[0].contains("source=launch")
            && died[0].contains("signal=9")
            && format!("{} ", died[0]).contains(&pid_kv),
        "{died:?}"
    );
    assert_ne!(pane_pid(&env, id), pid, "a new incarnation runs");
    env.mv(&["stop", id]).ok();
}
