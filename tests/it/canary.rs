//! The server-death canary: a dirty death is recorded exactly once with
//! forensics; ensuring is idempotent; a lost canary comes back.

use std::fs;
use std::time::Duration;

use crate::fixture::*;
use crate::lifecycle::{add_peer, alive, canary_watching, exits};

/// The canary's pid, as it wrote it into its lock file.
fn canary_pid(env: &Env, id: &str) -> Option<i32> {
    env.read(&format!("run/{id}.canary.lock")).trim().parse().ok()
}

/// Canary processes of THIS root only (cmdline names our root and `_canary`).
fn canaries_of_this_root(env: &Env, id: &str) -> Vec<i32> {
    let root = env.root().to_string_lossy().into_owned();
    let mut v = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else { continue };
        let words: Vec<String> =
            cmd.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        if words.iter().any(|w| w == &root)
            && words.iter().any(|w| w == "_canary")
            && words.iter().any(|w| w == id)
        {
            v.push(pid);
        }
    }
    v
}

#[test]
fn server_sigkill_is_recorded_once_with_forensics() {
    let env = Env::new();
    add_peer(&env, "k1", &["sleep", "1000"]);
    env.mv(&["launch", "k1"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "k1")));
    let server = env.server_pid("k1").unwrap();
    unsafe { libc::kill(server, libc::SIGKILL) };
    // The contract says "within seconds"; the canary answers in milliseconds.
    assert!(
        wait_until(Duration::from_secs(5), || exits(&env, "server-exit", "k1").len() == 1),
        "{}",
        env.read("logs/exits.log")
    );
    let line = exits(&env, "server-exit", "k1").remove(0);
    assert!(line.contains(&format!("server_pid={server} ")), "{line}");
    assert!(line.contains("wait_rc=1"), "{line}");
    let path = line.split("forensics=").nth(1).unwrap().trim().trim_matches('"').to_string();
    let report = fs::read_to_string(&path).expect("forensics file");
    assert!(report.contains("== /proc/meminfo") && report.contains("top processes by RSS"));
    assert!(path.starts_with(&env.root().join("logs/server-deaths/k1-").display().to_string()));
    // The canary fired and left: nothing more can come.
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, "k1")));
    assert_eq!(exits(&env, "server-exit", "k1").len(), 1);
    assert!(exits(&env, "session-exit", "k1").is_empty());
}

/// Regression: a restart that puts a new server on the same socket before
/// the old canary looks must not make that canary take the new server for
/// its own and stay silent (seen when the README tour's tick restarted the
/// peer within the canary's 200 ms poll).
#[test]
fn server_sigkill_then_instant_relaunch_is_still_recorded() {
    let env = Env::new();
    add_peer(&env, "k3", &["sleep", "1000"]);
    env.mv(&["launch", "k3"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "k3")));
    let old = env.server_pid("k3").unwrap();
    unsafe { libc::kill(old, libc::SIGKILL) };
    let mut relaunch = env.command(&["launch", "k3"]);
    relaunch.env("MUXVISOR_SETTLE_MS", "0");
    run_deadline(relaunch, None, CMD_DEADLINE).ok();
    assert_ne!(env.server_pid("k3"), Some(old), "a new server runs");
    assert!(
        wait_until(Duration::from_secs(5), || exits(&env, "server-exit", "k3").len() == 1),
        "the old server's death must be recorded: {}",
        env.read("logs/exits.log")
    );
    let line = exits(&env, "server-exit", "k3").remove(0);
    assert!(line.contains(&format!("server_pid={old} ")), "{line}");
}

#[test]
fn ensuring_twice_keeps_one_canary() {
    let env = Env::new();
    add_peer(&env, "c2", &["sleep", "1000"]);
    env.mv(&["launch", "c2"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_pid(&env, "c2").is_some()
        && canary_watching(&env, "c2")));
    let first = canary_pid(&env, "c2").unwrap();
    // A second and third canary (detached and foreground) give up at once.
    env.mv(&["_canary", "c2"]).ok();
    env.mv(&["_canary", "c2", "--foreground"]).ok();
    // An ensure through launch of a running peer sees the live canary.
    env.mv(&["launch", "c2"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canaries_of_this_root(&env, "c2") == [first]));
    assert_eq!(canary_pid(&env, "c2"), Some(first));
    assert!(alive(first));
}

#[test]
fn a_killed_canary_is_brought_back_by_ensure() {
    let env = Env::new();
    add_peer(&env, "c3", &["sleep", "1000"]);
    env.mv(&["launch", "c3"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_pid(&env, "c3").is_some()
        && canary_watching(&env, "c3")));
    let first = canary_pid(&env, "c3").unwrap();
    unsafe { libc::kill(first, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, "c3")));
    env.mv(&["launch", "c3"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "c3")
        && canary_pid(&env, "c3").is_some_and(|p| p != first)));
    // The new canary still records a dirty death.
    let server = env.server_pid("c3").unwrap();
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || exits(&env, "server-exit", "c3").len() == 1));
}

#[test]
fn lost_exit_status_is_recovered_by_the_nudge() {
    // Many quick deaths: with tmux < 3.6 some lose their status until the
    // server is nudged; every one must still be recorded with its status.
    let env = Env::new();
    let ids: Vec<String> = (0..6).map(|i| format!("n{i}")).collect();
    for id in &ids {
        add_peer(&env, id, &["sh", "-c", "sleep 0.2; exit 5"]);
        env.mv(&["launch", id]).code(1);
    }
    for id in &ids {
        assert!(
            wait_until(Duration::from_secs(5), || exits(&env, "session-exit", id).len() == 1),
            "{id}: {}",
            env.read("logs/exits.log")
        );
        assert!(exits(&env, "session-exit", id)[0].contains("status=5 "));
    }
}
