//! `clean`: each kind of ghost, made for real (a SIGKILLed tmux server, a
//! process holding a canary lock with no server, old temp files, old finished
//! tasks, oversized logs), listed by `--dry-run` without being touched, then
//! removed. Processes are ended by the pid the test started, never by name.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use muxvisor::model::peer::Identity;
use muxvisor::model::queue::{Queue, TaskOutcome};

use crate::fixture::*;

/// Set `path`'s mtime `minutes` into the past (with std, not GNU `touch -d`,
/// which macOS does not have).
pub fn age(path: &Path, minutes: u32) {
    let when = std::time::SystemTime::now() - Duration::from_secs(60 * u64::from(minutes));
    fs::File::open(path).and_then(|f| f.set_modified(when)).unwrap();
}

/// A process that holds `lock` (flock) and writes its pid into it, the way a
/// canary does; its argv carries `argv_tail`. Returns once the lock is held.
pub struct Holder {
    child: Child,
}

impl Holder {
    pub fn start(env: &Env, lock: &Path, argv_tail: &[&str]) -> Holder {
        let ready = env.scratch().join(format!("ready-{}", argv_tail.join("-")));
        let script = r#"
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.truncate(0); f.write("%d\n" % os.getpid()); f.flush()
open(sys.argv[2], "w").close()
time.sleep(600)
"#;
        let child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(lock)
            .arg(&ready)
            .args(argv_tail)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || ready.exists()), "holder did not start");
        Holder { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// True once the process has exited (and is reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Register `id` running `sleep 600` (through the library: this test is
/// about clean, not add) and launch it for real, canary included.
pub fn launch_sleeper(env: &Env, id: &str) {
    let root = muxvisor::ground::fsutil::open_root(env.root()).unwrap();
    let spec = muxvisor::model::peer::PeerSpec::new(
        Identity::parse(id).unwrap(),
        muxvisor::model::peer::Policy::Persistent,
        vec!["sleep".into(), "600".into()],
        env.scratch().to_path_buf(),
    );
    muxvisor::model::peer::save(&root, &spec).unwrap();
    env.mv(&["launch", id]).ok();
}

/// Start a real tmux server for `id` on the root's socket, then SIGKILL it:
/// the socket file stays behind, stale. Returns the socket path.
pub fn stale_socket(env: &Env, id: &str) -> PathBuf {
    // The root exists once any command ran.
    env.mv(&["status"]);
    env.tmux(id, &["new-session", "-d", "-s", id, "sleep 600"]).ok();
    let pid: i32 =
        env.tmux(id, &["display-message", "-p", "#{pid}"]).stdout.trim().parse().unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(10), || env.tmux(id, &["has-session"]).code != 0),
        "server did not die"
    );
    let sock = env.root().join(format!("run/{id}.sock"));
    assert!(sock.exists(), "tmux removed its socket?");
    sock
}

#[test]
fn stale_socket_of_a_killed_server_is_listed_then_removed() {
    let env = Env::new();
    let sock = stale_socket(&env, "g1");

    let dry = env.mv(&["clean", "--dry-run", "--json"]);
    dry.ok();
    let v = dry.json();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["stale_sockets"][0], sock.display().to_string(), "{v}");
    assert!(sock.exists(), "dry run removed the socket");

    let out = env.mv(&["clean"]);
    out.ok();
    assert!(out.stdout.contains("removed stale socket"), "{out:?}");
    assert!(!sock.exists());
    assert_eq!(env.events("lifecycle", "clean").len(), 1);
    let again = env.mv(&["clean"]);
    again.ok();
    assert!(again.stdout.contains("nothing to clean"), "{again:?}");
}

#[test]
fn orphan_canary_is_ended_by_its_pid_and_a_live_server_is_left_alone() {
    let env = Env::new();
    env.mv(&["status"]);
    let lock = env.root().join("run/g2.canary.lock");
    let mut orphan = Holder::start(&env, &lock, &["_canary", "g2"]);
    // A healthy peer with its real canary: neither is a ghost.
    launch_sleeper(&env, "ok1");
    let ok_lock = env.root().join("run/ok1.canary.lock");
    assert!(
        wait_until(Duration::from_secs(10), || muxvisor::ground::fsutil::is_locked(&ok_lock)
            .unwrap()),
        "the healthy peer has no canary"
    );

    let dry = env.mv(&["clean", "--dry-run", "--json"]);
    dry.ok();
    let v = dry.json();
    assert_eq!(v["orphan_canaries"][0]["identity"], "g2", "{v}");
    assert_eq!(v["orphan_canaries"][0]["pid"], orphan.pid(), "{v}");
    assert!(v["stale_sockets"].as_array().unwrap().is_empty(), "{v}");
    assert!(!orphan.exited());

    let out = env.mv(&["clean", "--json"]);
    out.ok();
    assert_eq!(out.json()["orphan_canaries"][0]["how"], "term");
    assert!(wait_until(Duration::from_secs(5), || orphan.exited()), "orphan still runs");
    assert_eq!(env.tmux("ok1", &["has-session", "-t", "=ok1"]).code, 0, "live server touched");
    assert!(muxvisor::ground::fsutil::is_locked(&ok_lock).unwrap(), "a healthy canary was ended");
    assert!(!env.root().join("run/g2.stopping").exists(), "left its stop intent behind");
    assert!(env.read("logs/exits.log").is_empty());
}

#[test]
fn a_lock_holder_that_is_not_a_canary_is_never_signalled() {
    let env = Env::new();
    env.mv(&["status"]);
    let lock = env.root().join("run/g3.canary.lock");
    let mut stranger = Holder::start(&env, &lock, &["not-a-canary", "g3"]);
    let out = env.mv(&["clean"]);
    out.code(1);
    assert!(out.stderr.contains("not a muxvisor canary"), "{out:?}");
    assert!(!stranger.exited(), "clean signalled a process that is not a canary");
}

#[test]
fn old_temp_files_go_and_fresh_ones_stay() {
    let env = Env::new();
    env.mv(&["status"]);
    let old = env.root().join("state/.w1.json.tmp.4242.abc");
    let fresh = env.root().join("peers/.w1.json.tmp.4243.abd");
    fs::write(&old, b"{").unwrap();
    fs::write(&fresh, b"{").unwrap();
    age(&old, 20);

    let dry = env.mv(&["clean", "--dry-run"]);
    dry.ok();
    assert!(dry.stdout.contains(&format!("would remove abandoned temp file {}", old.display())));
    assert!(old.exists());
    env.mv(&["clean"]).ok();
    assert!(!old.exists());
    assert!(fresh.exists(), "a temp file still being written was removed");
}

#[test]
fn finished_tasks_past_retention_are_removed_and_newer_ones_kept() {
    let env = Env::new();
    env.mv(&["status"]);
    let root = muxvisor::ground::fsutil::open_root(env.root()).unwrap();
    let id = Identity::parse("w1").unwrap();
    let q = Queue::open(&root, &id).unwrap();
    let finish = |text: &[u8]| {
        q.enqueue(text, None).unwrap();
        let c = q.claim_head(Utc::now()).unwrap().expect("claimed");
        let out = TaskOutcome { status: Some(0), duration_ms: 1, ..TaskOutcome::default() };
        q.ack(c.task(), &out).unwrap();
    };
    finish(b"old task");
    let done = env.root().join("queues/w1/done");
    let old: Vec<PathBuf> = fs::read_dir(&done).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!old.is_empty());
    for p in &old {
        age(p, 3 * 60);
    }
    finish(b"new task");

    let dry = env.mv(&["clean", "--dry-run", "--retention", "1h", "--json"]);
    dry.ok();
    let listed = dry.json()["done_tasks"].as_array().unwrap().len();
    assert_eq!(listed, old.len(), "{dry:?}");
    assert!(old.iter().all(|p| p.exists()));

    env.mv(&["clean", "--retention", "1h"]).ok();
    assert!(old.iter().all(|p| !p.exists()), "old done entries remain");
    assert!(fs::read_dir(&done).unwrap().count() > 0, "the newer task was removed");
    // With the default retention (7 days) nothing else goes.
    let out = env.mv(&["clean", "--json"]);
    assert!(out.json()["done_tasks"].as_array().unwrap().is_empty());
}

#[test]
fn logs_past_their_cap_are_rotated_keeping_one_old_copy() {
    let env = Env::new();
    env.mv(&["status"]);
    let lc = env.root().join("logs/lifecycle.log");
    let exits = env.root().join("logs/exits.log");
    let pane = env.root().join("logs/panes/gone1.log");
    fs::write(&lc, "x".repeat(300)).unwrap();
    fs::write(env.root().join("logs/lifecycle.log.1"), "older copy").unwrap();
    fs::write(&exits, "small\n").unwrap();
    fs::write(&pane, "p".repeat(300)).unwrap();

    let run = |args: &[&str]| {
        let mut c = env.command(args);
        c.env("MUXVISOR_LOG_MAX", "100").env_remove("MUXVISOR_PANE_LOG_MAX");
        run_deadline(c, None, CMD_DEADLINE)
    };
    let dry = run(&["clean", "--dry-run", "--json"]);
    dry.ok();
    assert_eq!(dry.json()["rotated"].as_array().unwrap().len(), 2, "{dry:?}");
    assert_eq!(fs::read_to_string(&lc).unwrap().len(), 300);

    run(&["clean"]).ok();
    assert_eq!(
        fs::read_to_string(env.root().join("logs/lifecycle.log.1")).unwrap(),
        "x".repeat(300)
    );
    assert_eq!(fs::read_to_string(env.root().join("logs/panes/gone1.log.1")).unwrap().len(), 300);
    assert!(!pane.exists());
    assert_eq!(fs::read_to_string(&exits).unwrap(), "small\n");
    assert!(!env.root().join("logs/exits.log.1").exists());
    // The clean itself was recorded in the fresh lifecycle log.
    assert_eq!(env.events("lifecycle", "clean").len(), 1);
}

#[test]
fn hostile_names_and_planted_symlinks_are_never_followed() {
    let env = Env::new();
    env.mv(&["status"]);
    // Names that are not identities are not ours to judge.
    fs::write(env.root().join("run/Not An Id.sock"), b"").unwrap();
    fs::write(env.root().join("run/..x.canary.lock"), b"").unwrap();
    // A planted symlink with a temp-file name must not take its target along.
    let victim = env.scratch().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let planted = env.root().join("state/.w1.json.tmp.1.a");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    // Old enough to count as abandoned, so only its being a link protects it.
    // The link itself (std cannot set a symlink's times; lutimes can, on
    // Linux and macOS alike).
    let ago = nix::sys::time::TimeVal::new(Utc::now().timestamp() - 20 * 60, 0);
    nix::sys::stat::lutimes(&planted, &ago, &ago).unwrap();
    // An oversized "log" that is a symlink is not rotated through.
    let big = env.scratch().join("big");
    fs::write(&big, "b".repeat(500)).unwrap();
    std::os::unix::fs::symlink(&big, env.root().join("logs/panes/w2.log")).unwrap();

    let mut c = env.command(&["clean", "--json"]);
    c.env("MUXVISOR_LOG_MAX", "100");
    let out = run_deadline(c, None, CMD_DEADLINE);
    out.ok();
    let v = out.json();
    assert!(v["rotated"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["tmp_files"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(fs::read(&big).unwrap().len(), 500);
    assert!(env.root().join("run/Not An Id.sock").exists());
}

/// Issue 10, item 4: a running server whose spec was removed vanished from
/// `status`, `doctor` and `clean`, and `stop` refused it.
#[test]
fn a_server_without_a_valid_spec_is_shown_offered_and_stoppable() {
    let env = Env::new();
    env.mv(&["add", "gone", "--", "sleep", "600"]).ok();
    env.mv(&["launch", "gone"]).ok();
    fs::remove_file(env.root().join("peers/gone.json")).unwrap();

    // status shows what runs, says why it is wrong, and exits 1.
    let out = env.mv(&["status", "--json"]);
    out.code(1);
    let rows = out.json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["identity"], "gone");
    assert_eq!(rows[0]["state"], "running");
    assert!(rows[0]["policy"].is_null());
    assert!(rows[0]["error"].as_str().unwrap().contains("does not exist"), "{rows}");
    env.mv(&["status", "gone"]).code(1);

    // doctor reports it.
    let out = env.mv(&["doctor", "--json"]);
    out.code(1);
    let v = out.json();
    let found: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "unaccounted-server")
        .collect();
    assert_eq!(found.len(), 1, "{v}");
    assert!(found[0]["message"].as_str().unwrap().contains("gone.sock"), "{v}");
    assert!(found[0]["fix"].as_str().unwrap().contains("muxvisor stop gone"), "{v}");

    // clean offers to stop it, and does without --dry-run.
    let j = env.mv(&["clean", "--dry-run", "--json"]).ok().json();
    assert_eq!(j["unaccounted_servers"][0]["identity"], "gone", "{j}");
    assert_eq!(env.tmux("gone", &["has-session"]).code, 0, "a dry run stops nothing");
    let j = env.mv(&["clean", "--json"]).ok().json();
    assert_eq!(j["unaccounted_servers"][0]["identity"], "gone", "{j}");
    assert!(j["unaccounted_servers"][0]["how"].is_string(), "{j}");
    assert_ne!(env.tmux("gone", &["has-session"]).code, 0, "clean stopped it");
    assert!(env.events("exits", "server-exit").is_empty(), "a deliberate stop");
    assert_eq!(env.mv(&["status", "--json"]).ok().json(), serde_json::json!([]));

    // stop and rm --force need only the socket, also with a corrupt spec.
    env.mv(&["add", "bad", "--", "sleep", "600"]).ok();
    env.mv(&["launch", "bad"]).ok();
    fs::write(env.root().join("peers/bad.json"), b"{ not json").unwrap();
    let out = env.mv(&["stop", "bad", "--grace", "2s"]);
    assert!(out.ok().stderr.contains("not a valid peer spec"), "{out:?}");
    assert_ne!(env.tmux("bad", &["has-session"]).code, 0, "stop ended it");

    env.mv(&["add", "solo", "--", "sleep", "600"]).ok();
    env.mv(&["launch", "solo"]).ok();
    fs::remove_file(env.root().join("peers/solo.json")).unwrap();
    env.mv(&["rm", "solo"]).code(1);
    let j = env.mv(&["rm", "solo", "--force", "--json"]).ok().json();
    assert_eq!(j["stopped"], true, "{j}");
    assert_ne!(env.tmux("solo", &["has-session"]).code, 0, "rm --force ended it");
    // Nothing left: the usual "no such peer".
    env.mv(&["stop", "solo"]).code(1);
    env.mv(&["rm", "solo"]).code(1);
}

/// A `tmux wait-for` on a canary's channel whose parent is not a canary (a
/// canary killed where nothing ties its client to it, as on macOS; made
/// here by starting the client from the test): doctor reports it, clean
/// lists it on a dry run and ends it.
#[test]
fn an_orphan_wait_for_client_is_reported_and_ended() {
    let env = Env::new();
    launch_sleeper(&env, "ow1");
    let mut orphan = Command::new("tmux")
        .arg("-S")
        .arg(env.root().join("run/ow1.sock"))
        .args(["-f", "/dev/null", "wait-for", "muxvisor-canary-ow1"])
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = orphan.id() as i32;
    let blocked = || {
        muxvisor::ground::proc::argv(pid)
            .is_some_and(|a| muxvisor::ground::proc::argv_has(&a, b"wait-for"))
    };
    assert!(wait_until(Duration::from_secs(5), blocked));

    let dry = env.mv(&["clean", "--dry-run", "--json"]);
    dry.ok();
    let v = dry.json();
    assert_eq!(v["orphan_waiters"], serde_json::json!([{"identity": "ow1", "pid": pid}]), "{v}");
    assert!(matches!(orphan.try_wait(), Ok(None)), "a dry run ended it");
    let fake = crate::service::Fake::new(&env, false);
    let doc = fake.mv(&env, &["doctor", "--json"]).json();
    let found = doc["findings"].as_array().unwrap().iter().any(|f| {
        f["check"] == "orphan-waiter" && f["message"].as_str().unwrap().contains(&pid.to_string())
    });
    assert!(found, "{doc}");

    let out = env.mv(&["clean", "--json"]);
    out.ok();
    assert_eq!(out.json()["orphan_waiters"][0]["pid"], pid);
    assert!(wait_until(Duration::from_secs(5), || matches!(orphan.try_wait(), Ok(Some(_)))));
    // The live canary's own client was left alone, and the server too.
    assert_eq!(env.tmux("ow1", &["has-session", "-t", "=ow1"]).code, 0);
    assert!(
        env.mv(&["clean", "--dry-run", "--json"]).json()["orphan_waiters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A mailbox courier that has nothing left to deliver (here: a stand-in
/// holding the courier lock, its argv naming `_courier idle1`) is listed on
/// a dry run and ended by clean; one with messages waiting is left alone.
#[test]
fn an_idle_courier_is_reported_and_ended() {
    let env = Env::new();
    env.mv(&["add", "idle1", "--agent", "claude", "--", "sleep", "600"]).ok();
    env.mv(&["add", "busy1", "--agent", "claude", "--", "sleep", "600"]).ok();
    // busy1 has a message waiting (queued without a delivery attempt).
    env.mv(&["send", "busy1", "hello", "--no-kick"]).ok();
    env.mv(&["queue", "idle1", "list"]).ok();
    let mut idle =
        Holder::start(&env, &env.root().join("queues/idle1/courier.lock"), &["_courier", "idle1"]);
    let mut busy =
        Holder::start(&env, &env.root().join("queues/busy1/courier.lock"), &["_courier", "busy1"]);
    let dry = env.mv(&["clean", "--dry-run", "--json"]).ok().json();
    assert_eq!(
        dry["orphan_couriers"],
        serde_json::json!([{"identity": "idle1", "pid": idle.pid(), "how": null}]),
        "{dry}"
    );
    assert!(!idle.exited(), "a dry run ended it");
    let done = env.mv(&["clean", "--json"]).ok().json();
    assert_eq!(done["orphan_couriers"][0]["how"], "term", "{done}");
    assert!(wait_until(Duration::from_secs(10), || idle.exited()));
    assert!(!busy.exited(), "a courier with a message to deliver was ended");
}

const STRAY_WAIT: Duration = Duration::from_secs(30);

/// The processes a peer's program left behind outside its process group:
/// a detached daemon in a session of its own (Codex CLI 0.171's `codex
/// app-server`), carrying the pane's MUXVISOR_IDENTITY and MUXVISOR_ROOT.
fn strays(env: &Env, id: &str) -> Vec<i32> {
    let root = env.root().to_string_lossy().into_owned();
    muxvisor::ground::proc::find_by_env(&[
        ("MUXVISOR_IDENTITY", id.as_bytes()),
        ("MUXVISOR_ROOT", root.as_bytes()),
    ])
    .into_iter()
    .filter(|p| muxvisor::ground::proc::argv(*p).is_some_and(|a| a == [&b"sleep"[..], b"987"]))
    .collect()
}

/// Issue 17, item 11: Codex CLI 0.171 starts a detached `codex app-server`
/// that survived `muxvisor stop`, and Gemini CLI, which ignores SIGHUP,
/// survived a killed server. A stop ends what the program left behind,
/// says so, and `clean` finds and ends what a killed server left.
#[test]
fn a_stop_and_clean_end_what_a_program_left_behind_outside_its_group() {
    let env = Env::new();
    let cwd = env.scratch().to_string_lossy().into_owned();
    // `setsid -f`: a child in a new session, as a daemon starts itself.
    let prog = "setsid -f sh -c 'trap \"\" HUP TERM; exec sleep 987'; exec sleep 1000";
    env.mv(&["add", "lk", "--cwd", &cwd, "--", "sh", "-c", prog]).ok();
    env.mv(&["launch", "lk"]).ok();
    assert!(wait_until(STRAY_WAIT, || strays(&env, "lk").len() == 1), "the daemon never started");
    let daemon = strays(&env, "lk")[0];
    env.mv(&["stop", "lk", "--grace", "2s"]).ok();
    assert!(
        wait_until(STRAY_WAIT, || !muxvisor::ground::proc::alive(daemon)),
        "the daemon outlived the stop"
    );
    let stop = env.events("lifecycle", "stop");
    assert!(stop.last().is_some_and(|l| l.contains(" strays=1")), "{stop:?}");
    let ended = env.events("lifecycle", "strays-ended");
    assert!(ended.len() == 1 && ended[0].contains("sleep 987"), "{ended:?}");

    // A server killed the hard way leaves its daemon running: clean names it
    // on a dry run, and ends it.
    env.mv(&["launch", "lk"]).ok();
    assert!(wait_until(STRAY_WAIT, || strays(&env, "lk").len() == 1));
    let daemon = strays(&env, "lk")[0];
    let st = env.mv(&["--json", "status", "lk"]).ok().json();
    let server = st[0]["server_pid"].as_i64().expect("server pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    assert!(wait_until(STRAY_WAIT, || !muxvisor::ground::proc::alive(server)));
    let dry = env.mv(&["--json", "clean", "--dry-run"]).ok().json();
    let listed = dry["strays"].as_array().cloned().unwrap_or_default();
    assert!(
        listed.iter().any(|s| s["pid"] == daemon && s["identity"] == "lk"),
        "clean --dry-run does not name it: {dry}"
    );
    assert!(muxvisor::ground::proc::alive(daemon), "a dry run ended it");
    let done = env.mv(&["--json", "clean"]).ok().json();
    assert!(done["strays"].as_array().is_some_and(|a| !a.is_empty()), "{done}");
    assert!(
        wait_until(STRAY_WAIT, || !muxvisor::ground::proc::alive(daemon)),
        "clean left it running"
    );
}
