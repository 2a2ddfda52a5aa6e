//! Fleet semantics (SPEC §9, issue "fleet"): a fake `claude` on PATH (the
//! fake agent behind a `claude` wrapper, logging its argv) resumes its
//! conversation after a crash, falls back to a fresh start once when the
//! resume fails, starts fresh on `restart --fresh`; admission never lets more
//! than two agents start at once; a usage-limit screen parks the agent and
//! its mailbox holds. (The on-event hook receiving a death: `notify.rs`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::*;

const WAIT: Duration = Duration::from_secs(60);

/// A `claude` on a private PATH: the fake agent, with the flags given here
/// before the real ones (which it reads: --session-id, --resume).
fn fake_claude(env: &Env, fake_args: &str) -> PathBuf {
    let bin = env.scratch().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agent/agent.py");
    let script = format!("#!/bin/sh\nexec python3 '{}' {fake_args} \"$@\"\n", agent.display());
    let path = bin.join("claude");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Register `id` as `--agent claude` running the fake `claude`.
fn add_claude(env: &Env, id: &str, bin: &Path, log: &Path, extra: &[&str]) {
    let path = format!("PATH={}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let cwd = env.scratch().to_string_lossy().into_owned();
    let log = log.to_string_lossy().into_owned();
    let mut args = vec!["add", id, "--agent", "claude", "--cwd", &cwd, "--env", &path];
    args.extend_from_slice(&["--backoff", "100ms", "--max-backoff", "200ms"]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "claude", "--log", &log]);
    env.mv(&args).ok();
}

/// The argv lines the fake logged, one per start.
fn starts(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("argv").is_some())
        .collect()
}

fn agent_json(env: &Env, id: &str) -> serde_json::Value {
    env.mv(&["--json", "status", id]).json()[0].clone()
}

fn kill_program(env: &Env, id: &str) {
    let pid = agent_json(env, id)["pid"].as_i64().expect("a running program") as i32;
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn tick_until(env: &Env, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        env.mv(&["supervise", "--once"]).ok();
        if cond() {
            return true;
        }
    }
    false
}

#[test]
fn a_crash_restarts_with_resume_and_restart_fresh_gets_a_new_id() {
    let env = Env::new();
    let bin = fake_claude(&env, "--busy 0.2");
    let log = env.scratch().join("c1.log");
    add_claude(&env, "c1", &bin, &log, &[]);
    env.mv(&["launch", "c1", "--wait-ready", "30s"]).ok();
    let first = &starts(&log)[0];
    let id = first["session_id"].as_str().expect("a fresh start gets --session-id").to_string();
    assert_eq!(agent_json(&env, "c1")["agent"]["session_id"], id.as_str());
    assert_eq!(agent_json(&env, "c1")["agent"]["session_source"], "assigned");
    // Crash: the tick restarts it in the same conversation.
    kill_program(&env, "c1");
    assert!(tick_until(&env, || starts(&log).len() >= 2), "{}", env.read("logs/lifecycle.log"));
    let second = &starts(&log)[1];
    assert_eq!(second["resume"], id.as_str(), "{second}");
    assert!(second["argv"].to_string().contains("--resume"), "{second}");
    // restart --fresh: a new conversation, a new id.
    env.mv(&["restart", "c1", "--fresh", "--grace", "2s"]).ok();
    let third = &starts(&log)[2];
    let new = third["session_id"].as_str().expect("--session-id again").to_string();
    assert_ne!(new, id);
    assert!(third["resume"].is_null(), "{third}");
    assert!(wait_until(WAIT, || agent_json(&env, "c1")["agent"]["session_id"] == new.as_str()));
    // And a plain restart resumes the new one.
    env.mv(&["restart", "c1", "--grace", "2s"]).ok();
    assert_eq!(starts(&log)[3]["resume"], new.as_str());
}

#[test]
fn a_failing_resume_falls_back_to_a_fresh_start_once() {
    let env = Env::new();
    let bin = fake_claude(&env, "--busy 0.2");
    let log = env.scratch().join("c2.log");
    add_claude(&env, "c2", &bin, &log, &["--env", "FAKE_AGENT_RESUME_FAILS=1"]);
    env.mv(&["launch", "c2", "--wait-ready", "30s"]).ok();
    let id = starts(&log)[0]["session_id"].as_str().unwrap().to_string();
    kill_program(&env, "c2");
    // The resume dies before it is ready; the next start is fresh.
    assert!(
        tick_until(&env, || starts(&log).len() >= 3),
        "{:?}\n{}",
        starts(&log),
        env.read("logs/lifecycle.log")
    );
    let s = starts(&log);
    assert_eq!(s[1]["resume"], id.as_str(), "{s:?}");
    assert!(s[2]["resume"].is_null() && s[2]["session_id"].is_string(), "{s:?}");
    assert_ne!(s[2]["session_id"], id.as_str());
    let failed = env.events("lifecycle", "resume-failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains(&format!("session_id={id}")), "{failed:?}");
    assert!(tick_until(&env, || agent_json(&env, "c2")["agent"]["state"] == "ready"));
    assert_eq!(starts(&log).len(), 3, "one fallback, then it runs");
}

#[test]
fn four_agents_due_at_once_never_have_more_than_two_starting() {
    let env = Env::new();
    let bin = fake_claude(&env, "--slow-start 2");
    let ids = ["a1", "a2", "a3", "a4"];
    for id in ids {
        let log = env.scratch().join(format!("{id}.log"));
        add_claude(&env, id, &bin, &log, &[]);
    }
    // All four asked for at once: two start, two are queued (exit 0).
    let mut queued = 0;
    for id in ids {
        let out = env.mv(&["--json", "launch", id]).ok().json();
        if out["queued"] == true {
            queued += 1;
            assert!(out["reason"].as_str().unwrap().contains("MUXVISOR_MAX_STARTING"), "{out}");
        }
    }
    assert_eq!(queued, 2);
    let rows = env.mv(&["--json", "status"]).json();
    let states: Vec<&str> =
        rows.as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "queued").count(), 2, "{rows}");
    assert_eq!(env.events("lifecycle", "admission-held").len(), 2);
    // Launching one that runs already is no start: never held, never queued
    // (a hold recorded now would show it queued after its next death).
    let started: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "running")
        .map(|r| r["identity"].as_str().unwrap())
        .collect();
    let again = env.mv(&["--json", "launch", started[0]]).ok().json();
    assert_eq!(again["already"], true, "{again}");
    assert_eq!(env.events("lifecycle", "admission-held").len(), 2);
    let st: serde_json::Value =
        serde_json::from_str(&env.read(&format!("state/{}.json", started[0]))).unwrap();
    assert!(st["held"].is_null(), "{st}");
    // With no tick, the admitter launches the held two as the first ones
    // become ready; sample all along.
    let mut peak = 0;
    let all_ready = wait_until(WAIT, || {
        let rows = env.mv(&["--json", "status"]).json();
        let rows = rows.as_array().unwrap();
        let starting = rows.iter().filter(|r| r["agent"]["state"] == "starting").count();
        peak = peak.max(starting);
        rows.iter().all(|r| r["agent"]["state"] == "ready")
    });
    assert!(all_ready, "{}", env.read("logs/lifecycle.log"));
    assert!(peak <= 2, "{peak} agents were starting at once");
    // A fleet-wide crash: the restarts are admitted two at a time as well.
    for id in ids {
        kill_program(&env, id);
    }
    let mut peak = 0;
    let back = tick_until(&env, || {
        let rows = env.mv(&["--json", "status"]).json();
        let rows = rows.as_array().unwrap();
        peak = peak.max(rows.iter().filter(|r| r["agent"]["state"] == "starting").count());
        rows.iter().all(|r| r["agent"]["state"] == "ready")
    });
    assert!(back, "{}", env.read("logs/lifecycle.log"));
    assert!(peak <= 2, "{peak} agents were starting at once after the crash");
}

#[test]
fn a_usage_limit_parks_the_agent_and_its_mailbox_holds() {
    let env = Env::new();
    let bin = fake_claude(&env, "--busy 0.2 --usage-limit-after 1");
    let log = env.scratch().join("c5.log");
    add_claude(&env, "c5", &bin, &log, &["--idle-ttl", "1s"]);
    let mv = |args: &[&str]| {
        let mut c = env.command(args);
        c.env("TZ", "UTC");
        run_deadline(c, None, CMD_DEADLINE)
    };
    mv(&["launch", "c5", "--wait-ready", "30s"]).ok();
    mv(&["send", "c5", "the last turn before the limit"]).ok();
    // The tick's look records the block (status only looks).
    let logged = || {
        env.events("lifecycle", "agent-state")
            .into_iter()
            .find(|l| l.contains("reason=usage-limit"))
    };
    assert!(
        wait_until(WAIT, || {
            mv(&["supervise", "--once"]).ok();
            logged().is_some()
        }),
        "{}\n{}",
        env.read("logs/lifecycle.log"),
        mv(&["screen", "c5"]).stdout
    );
    let a = agent_json(&env, "c5")["agent"].clone();
    assert!(a["state"] == "blocked" && a["reason"] == "usage-limit", "{a}");
    let line = logged().unwrap();
    assert!(line.contains(" until="), "the reset time was read: {line}");
    // A message waits in the mailbox; ticks neither deliver it nor reap the
    // parked agent (its idle TTL is 1 s).
    let q = mv(&["--json", "send", "c5", "after the limit"]).ok().json();
    assert_eq!(q["delivered"], false);
    for _ in 0..3 {
        mv(&["supervise", "--once"]).ok();
    }
    assert!(env.events("lifecycle", "reaped-idle").is_empty());
    let st = agent_json(&env, "c5");
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["mailbox"], 1, "{st}");
    let turns = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!turns.contains("after the limit"), "delivered while parked");
}

/// muxvisor with extra environment variables.
/// An agent (a ready pattern) whose prompt never shows: it stays starting.
fn add_never_ready(env: &Env, id: &str) {
    env.mv(&["add", id, "--ready-pattern", "^never-ready$", "--", "sleep", "1000"]).ok();
}

/// Issue 18, item 10: `launch` refuses `MUXVISOR_MAX_STARTING=0` as
/// `supervise` does, instead of holding the agent forever with exit 0.
#[test]
fn launch_refuses_max_starting_zero_as_supervise_does() {
    let env = Env::new();
    add_never_ready(&env, "a");
    let zero = [("MUXVISOR_MAX_STARTING", "0")];
    let launch = mv_env(&env, &["launch", "a"], &zero);
    let tick = mv_env(&env, &["supervise", "--once"], &zero);
    tick.code(1);
    launch.code(tick.code);
    assert!(launch.stderr.contains("MUXVISOR_MAX_STARTING=0"), "{launch:#?}");
    assert!(tick.stderr.contains("MUXVISOR_MAX_STARTING=0"), "{tick:#?}");
    assert_eq!(agent_json(&env, "a")["state"], "stopped");
    assert!(env.events("lifecycle", "admission-held").is_empty());
}

/// Issue 18, item 8: `stop` of an agent whose launch is held by admission
/// cancels the launch; the next tick (with room again) does not start it.
#[test]
fn stopping_a_held_agent_cancels_its_launch() {
    let env = Env::new();
    add_never_ready(&env, "b1");
    add_never_ready(&env, "b2");
    let one = [("MUXVISOR_MAX_STARTING", "1")];
    mv_env(&env, &["launch", "b1"], &one).ok();
    let held = mv_env(&env, &["--json", "launch", "b2"], &one).ok().json();
    assert_eq!(held["queued"], true, "{held}");
    assert_eq!(agent_json(&env, "b2")["state"], "queued");
    env.mv(&["stop", "b2"]).ok();
    assert_eq!(agent_json(&env, "b2")["state"], "stopped");
    mv_env(&env, &["supervise", "--once"], &[("MUXVISOR_MAX_STARTING", "5")]).ok();
    assert_eq!(agent_json(&env, "b2")["state"], "stopped", "{}", env.read("logs/lifecycle.log"));
    assert!(env.events("lifecycle", "launch").iter().all(|l| !l.contains("identity=b2 ")));
}
