//! The server-death canary: a dirty death is recorded exactly once with
//! forensics; ensuring is idempotent; a lost canary comes back.

use std::fs;
use std::time::Duration;

use muxvisor::model::peer::Identity;

use crate::fixture::*;

/// The canary's pid, as it wrote it into its lock file.
fn canary_pid(env: &Env, id: &str) -> Option<i32> {
    env.read(&format!("run/{id}.canary.lock")).trim().parse().ok()
}

/// Canary processes of THIS root only (argv names our root and `_canary`).
fn canaries_of_this_root(env: &Env, id: &str) -> Vec<i32> {
    let root = env.root().as_os_str().as_encoded_bytes().to_vec();
    let id = Identity::parse(id).unwrap();
    muxvisor::ground::proc::find_by_argv(|a| {
        muxvisor::ground::proc::argv_has(a, &root)
            && muxvisor::lifecycle::canary::is_canary_argv(a, &id)
    })
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
    // Content, not headings: memory figures of the OS that runs the test.
    let memory = if cfg!(target_os = "macos") { "Pages free:" } else { "MemTotal:" };
    assert!(report.contains(memory) && report.contains("top processes by RSS"), "{report}");
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

/// Children of `pid` (a canary's `tmux wait-for` client, if it has one).
#[cfg(target_os = "linux")]
fn children_of(pid: i32) -> Vec<i32> {
    muxvisor::ground::proc::all_pids()
        .into_iter()
        .filter(|p| muxvisor::ground::proc::info(*p).is_some_and(|i| i.ppid == pid))
        .collect()
}

/// The pid a pidfd held by `pid` names (`Pid:` in its fdinfo), if any.
#[cfg(target_os = "linux")]
fn pidfd_targets(pid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return vec![] };
    dir.flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .filter_map(|info| {
            info.lines().find_map(|l| l.strip_prefix("Pid:").and_then(|v| v.trim().parse().ok()))
        })
        .collect()
}

/// Issue 21 (weight per peer): a running peer costs two helper processes
/// besides its server and program. The canary watches the server's process
/// itself (a pidfd; before, it kept a `tmux wait-for` client, a second
/// process), and the pane-log copier is the process tmux starts for
/// `pipe-pane` (before, a `sh -c` waited on it). A killed canary is replaced
/// by the next launch and leaves nothing behind.
#[cfg(target_os = "linux")]
#[test]
fn a_running_peer_costs_a_canary_and_a_pane_log_copier_and_nothing_else() {
    let env = Env::new();
    add_peer(&env, "c4", &["sleep", "1000"]);
    env.mv(&["launch", "c4"]).ok();
    let server = env.server_pid("c4").unwrap();
    let mut first = None;
    assert!(wait_until(Duration::from_secs(5), || {
        first = canary_pid(&env, "c4").filter(|p| pidfd_targets(*p).contains(&server));
        first.is_some() && canary_watching(&env, "c4")
    }));
    let first = first.unwrap();
    assert_eq!(children_of(first), Vec::<i32>::new(), "the canary needs no wait-for client");
    let root = env.root().as_os_str().as_encoded_bytes().to_vec();
    let ours = || {
        muxvisor::ground::proc::find_by_argv(|a| muxvisor::ground::proc::argv_has(a, &root))
            .into_iter()
            .filter(|p| *p != server)
            .collect::<Vec<_>>()
    };
    let copier = muxvisor::ground::proc::find_by_argv(|a| {
        muxvisor::ground::proc::argv_has(a, &root)
            && muxvisor::ground::proc::argv_has(a, b"_pane-log")
    });
    assert_eq!(copier.len(), 1, "one pane-log copier: {copier:?}");
    assert_eq!(
        muxvisor::ground::proc::info(copier[0]).unwrap().ppid,
        server,
        "no shell in between"
    );
    let mut helpers = ours();
    helpers.sort();
    let mut expected = vec![first, copier[0]];
    expected.sort();
    assert_eq!(helpers, expected, "helpers naming the root besides the server");

    unsafe { libc::kill(first, libc::SIGKILL) };
    // The retrofit (a launch of the running peer ensures its canary).
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, "c4")));
    env.mv(&["launch", "c4"]).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_pid(&env, "c4")
        .is_some_and(|p| p != first && pidfd_targets(p).contains(&server))));
    assert!(!alive(first));
    // The launch's own processes (the detaching parent of the new canary)
    // are on their way out: wait for them, not for a fixed time.
    assert!(
        wait_until(Duration::from_secs(5), || ours().len() == 2),
        "still a canary and a copier: {:?}",
        ours()
    );
}
