//! `status` through the binary, one scenario per state: stopped, running,
//! exited (with its status), server-dead, session-gone, hung; several peers.

use std::time::Duration;

use serde_json::Value;

use crate::fixture::*;

const KEYS: [&str; 10] = [
    "identity",
    "policy",
    "state",
    "pid",
    "uptime_s",
    "idle_s",
    "exit_status",
    "exit_signal",
    "canary",
    "queue",
];

fn status_of(env: &Env, id: &str) -> Value {
    let j = env.mv(&["status", id, "--json"]).ok().json();
    let rows = j.as_array().expect("status --json is an array");
    assert_eq!(rows.len(), 1, "{j}");
    for k in KEYS {
        assert!(rows[0].get(k).is_some(), "missing {k}: {j}");
    }
    rows[0].clone()
}

fn state_of(env: &Env, id: &str) -> String {
    status_of(env, id)["state"].as_str().unwrap_or_default().to_string()
}

fn launch(env: &Env, id: &str, program: &[&str]) {
    let mut args = vec!["add", id, "--restart", "never", "--"];
    args.extend_from_slice(program);
    env.mv(&args).ok();
    env.mv(&["launch", id]).ok();
}

/// SIGCONTs a stopped server even when the test fails half-way.
struct Resume(i32);
impl Drop for Resume {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn never_launched_peer_is_stopped_and_unknown_ids_fail() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    let row = status_of(&env, "w");
    assert_eq!(row["state"], "stopped");
    assert_eq!(row["policy"], "persistent");
    for k in ["pid", "uptime_s", "idle_s", "exit_status", "exit_signal"] {
        assert!(row[k].is_null(), "{k} must be null: {row}");
    }
    assert_eq!(row["canary"], false);
    assert_eq!(
        row["queue"],
        serde_json::json!({"pending": 0, "running": 0, "dead": 0, "quarantined": 0})
    );

    let out = env.mv(&["status", "nobody"]);
    out.code(1);
    assert!(out.stderr.contains("no peer named nobody"), "{out:?}");

    let empty = Env::new();
    assert_eq!(empty.mv(&["status", "--json"]).ok().json(), serde_json::json!([]));
}

#[test]
fn running_then_exited_with_its_status() {
    let env = Env::new();
    launch(&env, "w", &["sh", "-c", "echo ready; read line; exit 3"]);
    let row = status_of(&env, "w");
    assert_eq!(row["state"], "running", "{row}");
    let pid = row["pid"].as_i64().expect("a running peer has a pid");
    assert_eq!(unsafe { libc::kill(pid as i32, 0) }, 0, "pid {pid} must be a live process");
    assert!(row["uptime_s"].as_i64().is_some_and(|u| u >= 0), "{row}");
    assert!(row["idle_s"].as_i64().is_some_and(|u| u >= 0), "{row}");
    assert!(row["exit_status"].is_null() && row["exit_signal"].is_null(), "{row}");
    assert!(
        wait_until(Duration::from_secs(10), || status_of(&env, "w")["canary"] == true),
        "a launched peer gets a canary: {}",
        status_of(&env, "w")
    );

    env.tmux("w", &["send-keys", "-t", "=w:", "go", "Enter"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = status_of(&env, "w");
            r["state"] == "exited" && r["exit_status"] == 3
        }),
        "never saw exited with status 3: {}",
        status_of(&env, "w")
    );
    let row = status_of(&env, "w");
    assert!(row["uptime_s"].is_null() && row["idle_s"].is_null(), "{row}");
}

#[test]
fn killed_server_is_server_dead() {
    let env = Env::new();
    launch(&env, "w", &["sleep", "1000"]);
    assert_eq!(state_of(&env, "w"), "running");
    let server = env.server_pid("w").expect("launch records the server pid");
    assert_eq!(unsafe { libc::kill(server, libc::SIGKILL) }, 0);
    assert!(
        wait_until(Duration::from_secs(10), || state_of(&env, "w") == "server-dead"),
        "{}",
        status_of(&env, "w")
    );
    let row = status_of(&env, "w");
    assert!(row["pid"].is_null(), "{row}");
}

/// Regression: with its only session killed, tmux answers "no current
/// target" (not "can't find session"), which once made status fail.
#[test]
fn killed_session_is_session_gone() {
    let env = Env::new();
    launch(&env, "w", &["sleep", "1000"]);
    env.tmux("w", &["set-option", "-g", "exit-empty", "off"]).ok();
    env.tmux("w", &["kill-session", "-t", "=w:"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || state_of(&env, "w") == "session-gone"),
        "{}",
        status_of(&env, "w")
    );
}

#[test]
fn stopped_server_is_hung_not_a_hang() {
    let env = Env::new();
    launch(&env, "w", &["sleep", "1000"]);
    let server = env.server_pid("w").expect("launch records the server pid");
    let _resume = Resume(server);
    assert_eq!(unsafe { libc::kill(server, libc::SIGSTOP) }, 0);
    // The fixture's deadline (60 s) fails the test if status blocks.
    let row = status_of(&env, "w");
    assert_eq!(row["state"], "hung", "{row}");
    assert_eq!(unsafe { libc::kill(server, libc::SIGCONT) }, 0);
    assert!(
        wait_until(Duration::from_secs(10), || state_of(&env, "w") == "running"),
        "{}",
        status_of(&env, "w")
    );
}

#[test]
fn several_peers_sorted_with_a_table() {
    let env = Env::new();
    launch(&env, "c-run", &["sleep", "1000"]);
    env.mv(&["add", "a-idle", "--", "sleep", "1000"]).ok();
    env.mv(&["add", "b-eph", "--ephemeral", "--", "echo", "{task}"]).ok();
    let j = env.mv(&["status", "--json"]).ok().json();
    let rows = j.as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["identity"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a-idle", "b-eph", "c-run"]);
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["stopped", "stopped", "running"]);
    assert_eq!(rows[1]["policy"], "ephemeral");

    let human = env.mv(&["status"]);
    let lines: Vec<&str> = human.ok().stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{human:?}");
    assert!(lines[0].starts_with("IDENTITY"), "{human:?}");
    let col = lines[0].find("STATE").unwrap();
    assert_eq!(&lines[3][col..col + 7], "running", "{human:?}");
    assert_eq!(&lines[1][col..col + 7], "stopped", "{human:?}");
}

#[test]
fn an_unreadable_peer_is_reported_not_fatal() {
    let env = Env::new();
    env.mv(&["add", "good", "--", "sleep", "1000"]).ok();
    env.mv(&["add", "bad", "--", "sleep", "1000"]).ok();
    std::fs::write(env.root().join("peers/bad.json"), b"{ not json").unwrap();
    let out = env.mv(&["status", "--json"]);
    out.code(1);
    let j = out.json();
    let rows = j.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{j}");
    assert_eq!(rows[0]["identity"], "bad");
    assert_eq!(rows[0]["state"], "unknown");
    assert!(rows[0]["error"].as_str().unwrap().contains("bad.json"), "{j}");
    assert_eq!(rows[1]["state"], "stopped");
    assert!(out.stderr.contains("bad.json"), "{out:?}");

    // rm still removes it; add replaces it.
    std::fs::copy(env.root().join("peers/bad.json"), env.scratch().join("bad.json")).unwrap();
    let out = env.mv(&["rm", "bad"]);
    out.ok();
    assert!(out.stderr.contains("removing it anyway"), "{out:?}");
    std::fs::copy(env.scratch().join("bad.json"), env.root().join("peers/bad.json")).unwrap();
    let out = env.mv(&["add", "bad", "--", "cat"]);
    out.ok();
    assert!(out.stderr.contains("replacing it"), "{out:?}");
    assert_eq!(env.mv(&["status", "--json"]).ok().json().as_array().unwrap().len(), 2);
}

/// Issue 18, item 4: `status ID --json` of a peer whose spec is broken
/// prints its row, as `status --json` does, and exits 1.
#[test]
fn status_of_one_broken_peer_is_an_unknown_row_with_its_error() {
    let env = Env::new();
    env.mv(&["add", "bad", "--", "sleep", "1000"]).ok();
    std::fs::write(env.root().join("peers/bad.json"), b"{ not json").unwrap();
    let out = env.mv(&["status", "bad", "--json"]);
    out.code(1);
    let j = out.json();
    let rows = j.as_array().expect("an array");
    assert_eq!(rows.len(), 1, "{j}");
    assert_eq!(rows[0]["identity"], "bad");
    assert_eq!(rows[0]["state"], "unknown");
    assert!(rows[0]["error"].as_str().unwrap().contains("bad.json"), "{j}");
    let human = env.mv(&["status", "bad"]);
    human.code(1);
    assert!(human.stdout.contains("unknown"), "{human:#?}");
    assert!(human.stderr.contains("bad.json"), "{human:#?}");
    env.mv(&["status", "nobody", "--json"]).code(1);
}

#[test]
fn several_hung_servers_do_not_hide_the_healthy_one() {
    let env = Env::new();
    for id in ["h1", "h2", "ok"] {
        launch(&env, id, &["sleep", "1000"]);
    }
    let mut resume = Vec::new();
    for id in ["h1", "h2"] {
        let server = env.server_pid(id).expect("launch records the server pid");
        resume.push(Resume(server));
        assert_eq!(unsafe { libc::kill(server, libc::SIGSTOP) }, 0);
    }
    let j = env.mv(&["status", "--json"]).ok().json();
    let states: Vec<&str> =
        j.as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["hung", "hung", "running"], "{j}");
    drop(resume);
    assert!(wait_until(Duration::from_secs(10), || {
        let j = env.mv(&["status", "--json"]).ok().json();
        j.as_array().unwrap().iter().all(|r| r["state"] == "running")
    }));
}
