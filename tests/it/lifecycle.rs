//! launch, stop, restart and the exit hook, against real tmux on private
//! sockets. Peers are registered by writing their spec file directly (the
//! same JSON `add` writes), so these tests depend only on the lifecycle.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use muxvisor::ground::paths::Root;
use muxvisor::lifecycle::observe::{self, Seen};
use muxvisor::model::peer::{Identity, PeerSpec, Policy};

use crate::fixture::*;

/// Observe `id` in-process with the library (status belongs elsewhere).
pub fn seen(env: &Env, id: &str, timeout: Duration) -> Seen {
    let root = Root::new(env.root().to_path_buf());
    observe::observe(&root, &Identity::parse(id).unwrap(), timeout).unwrap().seen
}

#[test]
fn launch_runs_and_second_launch_says_already() {
    let env = Env::new();
    add_peer(&env, "p1", &["sleep", "1000"]);
    let out = env.mv(&["launch", "p1"]);
    out.ok();
    assert!(out.stdout.starts_with("launched p1 (pid "), "{out:?}");
    let pid = pane_pid(&env, "p1");
    assert!(alive(pid));
    assert_eq!(seen(&env, "p1", Duration::from_secs(5)), Seen::Alive);
    let panes = env.tmux("p1", &["list-panes", "-t", "=p1:", "-F", "#{pane_pid} #{pane_dead}"]);
    assert_eq!(panes.stdout.trim(), format!("{pid} 0"));

    let again = env.mv(&["launch", "p1"]);
    again.ok();
    assert!(again.stdout.contains("already running"), "{again:?}");
    let j = env.mv(&["--json", "launch", "p1"]);
    j.ok();
    let v = j.json();
    assert_eq!(v["already"], true);
    assert_eq!(v["started"], false);
    assert_eq!(v["identity"], "p1");
    assert_eq!(v["pid"], pid);
    assert_eq!(env.events("lifecycle", "launch").len(), 1);
    let l = &env.events("lifecycle", "launch")[0];
    assert!(l.contains(&format!("pid={pid}")) && l.contains("policy=persistent"), "{l}");
}

#[test]
fn launch_json_reports_started() {
    let env = Env::new();
    add_peer(&env, "pj", &["sleep", "1000"]);
    let v = env.mv(&["--json", "launch", "pj"]).json();
    assert_eq!(v["started"], true);
    assert_eq!(v["already"], false);
    assert_eq!(v["pid"], pane_pid(&env, "pj"));
}

/// `add --env PATH=...`: the program is looked up on, and runs with, the
/// peer's PATH (tmux gives a new pane its client's PATH over `-e PATH`).
#[test]
fn a_peer_s_path_finds_its_program() {
    let env = Env::new();
    let bin = env.scratch().join("own-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let out = env.scratch().join("path.txt");
    let prog = bin.join("own-program");
    std::fs::write(
        &prog,
        format!("#!/bin/sh\necho \"$PATH\" > '{}'\nexec sleep 1000\n", out.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("PATH={}:/usr/bin:/bin", bin.display());
    env.mv(&["add", "pp", "--env", &path, "--", "own-program"]).ok();
    env.mv(&["launch", "pp"]).ok();
    assert!(wait_until(Duration::from_secs(10), || out.exists()));
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).unwrap_or_default().trim() == &path["PATH=".len()..]
    }));
}

#[test]
fn program_dying_at_once_fails_the_launch_with_its_status() {
    let env = Env::new();
    add_peer(&env, "p3", &["sh", "-c", "exit 3"]);
    let out = env.mv(&["launch", "p3"]);
    out.code(1);
    assert!(out.stderr.contains("exit status 3"), "{out:?}");
    assert!(!out.stdout.contains("launched"), "{out:?}");

    add_peer(&env, "px", &["no-such-program-xyz"]);
    let out = env.mv(&["launch", "px"]);
    out.code(1);
    assert!(out.stderr.contains("no-such-program-xyz"), "{out:?}");
    assert!(!env.root().join("run/px.sock").exists(), "no server for a missing program");

    let gone = env.scratch().join("gone");
    add_peer_with(&env, "pc", &["sleep", "1"], |s| s.cwd = gone.clone());
    let out = env.mv(&["launch", "pc"]);
    out.code(1);
    assert!(out.stderr.contains("is not a directory"), "{out:?}");
}

#[test]
fn ephemeral_peer_cannot_be_launched_by_hand() {
    let env = Env::new();
    add_peer_with(&env, "eph", &["true"], |s| s.policy = Policy::Ephemeral);
    let out = env.mv(&["launch", "eph"]);
    out.code(1);
    assert!(out.stderr.contains("muxvisor send eph"), "{out:?}");
}

#[test]
fn exit_hook_records_status_and_signals() {
    let env = Env::new();
    let cases = [
        ("e0", "exit 0", "status=0 signal= "),
        ("e3", "exit 3", "status=3 signal= "),
        ("eterm", "kill -TERM $$", "status= signal=15 "),
        ("ekill", "kill -KILL $$", "status= signal=9 "),
    ];
    for (id, script, _) in &cases {
        add_peer(&env, id, &["sh", "-c", script]);
        env.mv(&["launch", id]).code(1);
    }
    for (id, _, want) in &cases {
        assert!(
            wait_until(Duration::from_secs(5), || exits(&env, "session-exit", id).len() == 1),
            "{id}: {}",
            env.read("logs/exits.log")
        );
        let line = &exits(&env, "session-exit", id)[0];
        assert!(line.contains(want), "{id}: {line}");
    }
    assert!(exits(&env, "session-exit", "eterm")[0].contains("signal_name=SIGTERM"));
}

#[test]
fn clean_stop_is_silent_and_removes_the_socket() {
    let env = Env::new();
    add_peer(&env, "s1", &["sleep", "1000"]);
    env.mv(&["launch", "s1"]).ok();
    let pid = pane_pid(&env, "s1");
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "s1")));
    let out = env.mv(&["stop", "s1"]);
    out.ok();
    assert!(out.stdout.contains("stopped s1 (term)"), "{out:?}");
    assert!(!alive(pid));
    assert!(!env.root().join("run/s1.sock").exists());
    // The canary has seen the intent and left; only then is silence proven.
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, "s1")));
    let stops = env.events("lifecycle", "stop");
    assert_eq!(stops.len(), 1);
    assert!(stops[0].contains("how=term") && stops[0].contains("grace_ms=10000"), "{stops:?}");
    assert!(env.events("exits", "session-exit").is_empty(), "{}", env.read("logs/exits.log"));
    assert!(env.events("exits", "server-exit").is_empty(), "{}", env.read("logs/exits.log"));
    assert_eq!(state(&env, "s1")["stopped"], true);
    assert_eq!(seen(&env, "s1", Duration::from_secs(2)), Seen::NoSocket);

    let again = env.mv(&["--json", "stop", "s1"]);
    assert_eq!(again.json()["was_running"], false);
}

#[test]
fn stop_lets_a_term_trapping_program_clean_up() {
    let env = Env::new();
    let marker = env.scratch().join("bye");
    add_peer_with(
        &env,
        "trap",
        &["sh", "-c", "trap 'echo bye > \"$MARK\"; exit 0' TERM; while :; do sleep 0.1; done"],
        |s| {
            s.env.insert("MARK".into(), marker.display().to_string());
        },
    );
    env.mv(&["launch", "trap"]).ok();
    let v = env.mv(&["--json", "stop", "trap"]).json();
    assert_eq!(v["how"], "term");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "bye\n");
    assert!(env.events("lifecycle", "stop")[0].contains("how=term"));
}

#[test]
fn stop_kills_a_program_that_ignores_term_and_hup() {
    let env = Env::new();
    add_peer(&env, "stub", &["sh", "-c", "trap '' TERM HUP; while :; do sleep 0.1; done"]);
    env.mv(&["launch", "stub"]).ok();
    let pid = pane_pid(&env, "stub");
    let out = env.mv(&["stop", "stub", "--grace", "300ms"]);
    out.ok();
    assert!(out.stdout.contains("(kill)"), "{out:?}");
    assert!(!alive(pid));
    let l = &env.events("lifecycle", "stop")[0];
    assert!(l.contains("how=kill") && l.contains("grace_ms=300"), "{l}");
}

/// Register an interactive bash (no rc files) and wait for its prompt, so
/// that it has set up its signal handling (it ignores SIGTERM).
fn interactive_shell(env: &Env, id: &str, f: impl FnOnce(&mut PeerSpec)) -> i32 {
    add_peer_with(env, id, &["bash", "--norc", "--noprofile", "-i"], |s| {
        s.env.insert("PS1".into(), "ready$ ".into());
        f(s);
    });
    env.mv(&["launch", id]).ok();
    let shown = || env.tmux(id, &["capture-pane", "-p", "-t", &format!("={id}:")]).stdout;
    assert!(wait_until(Duration::from_secs(10), || shown().contains("ready$")), "{}", shown());
    pane_pid(env, id)
}

/// Regression (issue 10, item 10): an interactive shell ignores SIGTERM, so
/// a stop took the whole 10 s grace and ended in SIGKILL. SIGHUP, which a
/// closing terminal sends and a shell obeys, now follows at once.
#[test]
fn stop_ends_an_interactive_shell_with_hup_long_before_the_grace() {
    let env = Env::new();
    let pid = interactive_shell(&env, "sh1", |_| {});
    let t = std::time::Instant::now();
    let out = env.mv(&["stop", "sh1"]);
    out.ok();
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
    assert!(out.stdout.contains("(hup)"), "{out:?}");
    assert!(!alive(pid));
    let l = &env.events("lifecycle", "stop")[0];
    assert!(l.contains("how=hup") && l.contains("grace_ms=10000"), "{l}");
    assert!(env.events("exits", "session-exit").is_empty(), "{}", env.read("logs/exits.log"));
}

/// Regression (issue 10, item 10): the tick's stop of an orphan worker (a
/// live session of an ephemeral peer running no task; here a shell that was
/// a persistent peer) blocked the tick for its 5 s grace.
#[test]
fn a_tick_stops_an_orphan_shell_worker_quickly() {
    let env = Env::new();
    let pid = interactive_shell(&env, "ow", |_| {});
    add_peer_with(&env, "ow", &["bash", "--norc", "--noprofile", "-i"], |s| {
        s.policy = Policy::Ephemeral;
    });
    let t = std::time::Instant::now();
    let out = env.mv(&["--json", "supervise", "--once"]);
    out.ok();
    assert!(t.elapsed() < Duration::from_secs(4), "tick took {:?}: {out:?}", t.elapsed());
    assert!(!alive(pid), "{out:?}");
    let stops = env.events("lifecycle", "stop");
    assert!(stops.iter().any(|l| l.contains("how=hup")), "{stops:?}");
}

#[test]
fn stale_socket_after_server_sigkill_is_cleaned_by_next_launch() {
    let env = Env::new();
    add_peer(&env, "st", &["sleep", "1000"]);
    env.mv(&["launch", "st"]).ok();
    let server = env.server_pid("st").expect("server pid");
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !alive(server)));
    assert!(env.root().join("run/st.sock").exists(), "tmux leaves its socket behind");
    assert_eq!(seen(&env, "st", Duration::from_secs(2)), Seen::StaleSocket);

    let out = env.mv(&["launch", "st"]);
    out.ok();
    assert!(out.stdout.starts_with("launched st"), "{out:?}");
    let new_server = env.server_pid("st").unwrap();
    assert_ne!(new_server, server);
    assert_eq!(seen(&env, "st", Duration::from_secs(5)), Seen::Alive);
    assert_eq!(env.events("lifecycle", "launch").len(), 2);
}

#[test]
fn launch_replaces_a_dead_pane() {
    let env = Env::new();
    add_peer(&env, "dp", &["sh", "-c", "exit 4"]);
    env.mv(&["launch", "dp"]).code(1);
    assert!(matches!(seen(&env, "dp", Duration::from_secs(5)), Seen::PaneDead { .. }));
    add_peer(&env, "dp", &["sleep", "1000"]);
    env.mv(&["launch", "dp"]).ok();
    assert_eq!(seen(&env, "dp", Duration::from_secs(5)), Seen::Alive);
    // The pre-clean was deliberate: no server-exit for the replaced server.
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "dp")));
    assert!(env.events("exits", "server-exit").is_empty(), "{}", env.read("logs/exits.log"));
}

#[test]
fn hung_server_is_observed_as_hung_and_stop_does_not_hang() {
    let env = Env::new();
    add_peer(&env, "hung", &["sleep", "1000"]);
    env.mv(&["launch", "hung"]).ok();
    let server = env.server_pid("hung").unwrap();
    let pane = pane_pid(&env, "hung");
    unsafe { libc::kill(server, libc::SIGSTOP) };
    assert_eq!(seen(&env, "hung", Duration::from_millis(300)), Seen::Hung);
    let out = env.mv(&["stop", "hung", "--grace", "500ms"]);
    unsafe { libc::kill(server, libc::SIGCONT) };
    out.ok();
    assert!(wait_until(Duration::from_secs(5), || !alive(server)));
    assert!(wait_until(Duration::from_secs(5), || !alive(pane)));
    assert!(!env.root().join("run/hung.sock").exists());
    assert_eq!(env.events("lifecycle", "stop").len(), 1);
    // The canary was blocked behind the stopped server; it must stay silent.
    assert!(wait_until(Duration::from_secs(5), || !canary_watching(&env, "hung")));
    assert!(env.events("exits", "server-exit").is_empty(), "{}", env.read("logs/exits.log"));
}

#[test]
fn restart_stops_then_launches_again() {
    let env = Env::new();
    add_peer(&env, "rs", &["sleep", "1000"]);
    env.mv(&["launch", "rs"]).ok();
    let first = pane_pid(&env, "rs");
    let v = env.mv(&["--json", "restart", "rs", "--grace", "1s"]).json();
    assert_eq!(v["started"], true);
    let second = pane_pid(&env, "rs");
    assert_ne!(first, second);
    assert!(!alive(first));
    assert_eq!(env.events("lifecycle", "launch").len(), 2);
    assert_eq!(env.events("lifecycle", "stop").len(), 1);
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "rs")));
    assert!(env.events("exits", "server-exit").is_empty());
    assert!(env.events("exits", "session-exit").is_empty());
}

#[test]
fn concurrent_launches_start_one_server() {
    let env = Env::new();
    add_peer(&env, "cc", &["sleep", "1000"]);
    let spawn = || {
        let mut c = env.command(&["launch", "cc"]);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        c.spawn().unwrap()
    };
    let mut a = spawn();
    let mut b = spawn();
    let mut codes = vec![];
    for ch in [&mut a, &mut b] {
        assert!(wait_until(CMD_DEADLINE, || ch.try_wait().unwrap().is_some()));
        codes.push(ch.wait().unwrap().code());
    }
    assert_eq!(codes, [Some(0), Some(0)]);
    assert_eq!(env.events("lifecycle", "launch").len(), 1);
    let sessions = env.tmux("cc", &["list-sessions", "-F", "#{session_name}"]);
    assert_eq!(sessions.stdout.trim(), "cc");
}

#[test]
fn pane_output_goes_to_the_log_and_rotates() {
    let env = Env::new();
    add_peer(
        &env,
        "pl",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 12 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; sleep 0.05; i=$((i+1)); done; sleep 1000",
        ],
    );
    let mut c = env.command(&["launch", "pl"]);
    c.env("MUXVISOR_PANE_LOG_MAX", "300");
    run_deadline(c, None, CMD_DEADLINE).ok();
    let log = env.root().join("logs/panes/pl.log");
    let old = env.root().join("logs/panes/pl.log.1");
    assert!(
        wait_until(Duration::from_secs(5), || env.read("logs/panes/pl.log").contains("line-11")),
        "{}",
        env.read("logs/panes/pl.log")
    );
    assert!(old.exists(), "rotated copy");
    assert!(fs::metadata(&log).unwrap().len() <= 300);
    assert!(fs::metadata(&old).unwrap().len() <= 300);
    assert!(!Path::new(&format!("{}.2", log.display())).exists());
}

/// Regression (seen in CI under load): the pane-died hook runs
/// asynchronously, and a late one of a deliberately stopped pane, running
/// after `restart`'s launch removed the intent, recorded a death. A stop now
/// unhooks pane-died before signalling. The test build delays every hook.
#[cfg(feature = "fault-injection")]
#[test]
fn a_late_hook_of_a_deliberate_stop_records_no_death() {
    let env = Env::new();
    add_peer(&env, "lh", &["sleep", "1000"]);
    let mut c = env.command(&["launch", "lh"]);
    c.env("MUXVISOR_FAULT_HOOK_DELAY_MS", "1500").env("MUXVISOR_SETTLE_MS", "0");
    run_deadline(c, None, CMD_DEADLINE).ok();
    let mut c = env.command(&["restart", "lh", "--grace", "2s"]);
    c.env("MUXVISOR_SETTLE_MS", "0");
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert_eq!(env.events("lifecycle", "launch").len(), 2);
    // Watch past the hook's delay: no death record may appear.
    let recorded = wait_until(Duration::from_secs(4), || {
        !env.events("exits", "session-exit").is_empty()
            || !env.events("exits", "server-exit").is_empty()
    });
    assert!(
        !recorded,
        "a deliberate restart was recorded as a death:\n{}",
        env.read("logs/exits.log")
    );
}

/// Regression (issue 10, item 1): `rm run/<id>.sock` under a running peer
/// made `status` say server-dead and `launch` start a second server and a
/// second program next to the first. The recorded server is ours (pid,
/// start time, socket in its argv): it is asked to re-create its socket.
#[test]
fn a_deleted_socket_is_recreated_and_the_peer_is_never_duplicated() {
    let env = Env::new();
    add_peer(&env, "ds", &["sleep", "1000"]);
    env.mv(&["launch", "ds"]).ok();
    let server = env.server_pid("ds").unwrap();
    let pane = pane_pid(&env, "ds");
    let sock = env.root().join("run/ds.sock");

    fs::remove_file(&sock).unwrap();
    let v = env.mv(&["--json", "status", "ds"]).json();
    assert_eq!(v[0]["state"], "running", "{v}");
    assert!(sock.exists(), "the server re-created its socket");
    assert_eq!(env.events("lifecycle", "socket-recreated").len(), 1);

    fs::remove_file(&sock).unwrap();
    let v = env.mv(&["--json", "launch", "ds"]).json();
    assert_eq!((v["already"].as_bool(), v["pid"].as_i64()), (Some(true), Some(pane as i64)));

    fs::remove_file(&sock).unwrap();
    let v = env.mv(&["--json", "send", "ds", "hello"]).json();
    assert_eq!(v["delivered"], true, "{v}");

    fs::remove_file(&sock).unwrap();
    let ticks = env.mv(&["--json", "supervise", "--once"]);
    ticks.ok();
    assert!(ticks.json().as_array().unwrap().iter().all(|r| r["action"] != "restart"), "{ticks:?}");

    assert_eq!(env.server_pid("ds"), Some(server));
    assert_eq!(env.events("lifecycle", "launch").len(), 1, "no second launch");
    assert!(env.events("lifecycle", "gone").is_empty(), "{}", env.read("logs/lifecycle.log"));
    assert!(alive(server) && alive(pane));
    // One server, one program, one canary: stopping it leaves nothing.
    env.mv(&["stop", "ds"]).ok();
    assert!(wait_until(Duration::from_secs(5), || !alive(server) && !alive(pane)));
    assert!(env.events("exits", "server-exit").is_empty(), "{}", env.read("logs/exits.log"));
}

/// The same, when the server cannot re-create its socket (it is stopped):
/// launch refuses instead of starting a duplicate, and stop still ends the
/// server and its program, found by the recorded (and verified) pids.
#[test]
fn a_lost_socket_that_cannot_be_recreated_is_refused_and_stop_still_ends_it() {
    let env = Env::new();
    add_peer(&env, "dl", &["sleep", "1000"]);
    env.mv(&["launch", "dl"]).ok();
    let server = env.server_pid("dl").unwrap();
    let pane = pane_pid(&env, "dl");
    unsafe { libc::kill(server, libc::SIGSTOP) };
    fs::remove_file(env.root().join("run/dl.sock")).unwrap();

    let out = env.mv(&["launch", "dl"]);
    out.code(1);
    assert!(out.stderr.contains(&format!("(pid {server}) is still running")), "{out:?}");
    assert!(out.stderr.contains("muxvisor stop dl"), "{out:?}");
    assert_eq!(env.events("lifecycle", "launch").len(), 1, "no second launch");
    let v = env.mv(&["--json", "status", "dl"]).json();
    assert_eq!(v[0]["state"], "hung", "{v}");

    let out = env.mv(&["stop", "dl", "--grace", "500ms"]);
    unsafe { libc::kill(server, libc::SIGCONT) };
    out.ok();
    assert!(wait_until(Duration::from_secs(5), || !alive(server)), "server survived the stop");
    assert!(wait_until(Duration::from_secs(5), || !alive(pane)), "program survived the stop");
    assert!(!env.root().join("run/dl.sock").exists());
}

/// Soak regression (issue 10): tmux 3.3a can accept a `kill-server` and
/// never exit: a control-mode client whose terminal went away while the
/// server was stopped stays on its client list (a killed runner's client
/// did this in the soak; a terminal's `tmux -CC` can too). `stop` waited
/// 2 s, removed the socket and left the server, and its program, running
/// unreachable. A server that outlives its `kill-server` is now killed.
#[test]
fn stop_ends_a_server_that_outlives_its_kill_server() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let env = Env::new();
    add_peer(&env, "stuck", &["sleep", "1000"]);
    env.mv(&["launch", "stuck"]).ok();
    let server = env.server_pid("stuck").expect("a server");
    let sock = env.root().join("run/stuck.sock");
    let mut client = Command::new("tmux")
        .arg("-S")
        .arg(&sock)
        .args(["-f", "/dev/null", "-C", "attach-session", "-t", "=stuck:"])
        .env_remove("TMUX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // A command the stopped server will answer into a pipe nobody reads.
    unsafe { libc::kill(server, libc::SIGSTOP) };
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"capture-pane -p -t =stuck:\n").unwrap();
    drop(stdin);
    drop(client.stdout.take());
    unsafe { libc::kill(server, libc::SIGCONT) };
    env.mv(&["stop", "stuck", "--grace", "1s"]).ok();
    let gone = wait_until(Duration::from_secs(10), || !alive(server));
    if muxvisor::ground::proc::is_tmux_server(server, &sock, None) {
        unsafe { libc::kill(server, libc::SIGKILL) };
    }
    let _ = client.kill();
    let _ = client.wait();
    assert!(gone, "the server outlived its stop");
}

/// Soak regression (issue 10): a launch whose launcher was killed after
/// tmux started the server, before the state recorded it, leaves a server
/// the state does not name. Stopped (SIGSTOP) it cannot name itself either;
/// `stop` then could not kill it, removed its socket anyway and left it
/// (and its program) running unreachable. The server is now found by its
/// socket path among the processes.
#[test]
fn stop_ends_a_hung_server_the_state_does_not_name() {
    let env = Env::new();
    add_peer(&env, "unrec", &["sleep", "1000"]);
    env.mv(&["launch", "unrec"]).ok();
    let server = env.server_pid("unrec").expect("a server");
    // As if its launch had never been recorded: the state names another
    // (long gone) incarnation.
    let mut st = state(&env, "unrec");
    st["server_pid"] = serde_json::json!(i32::MAX - 1);
    st["server_start"] = serde_json::Value::Null;
    fs::write(env.root().join("state/unrec.json"), serde_json::to_vec(&st).unwrap()).unwrap();
    unsafe { libc::kill(server, libc::SIGSTOP) };
    env.mv(&["stop", "unrec", "--grace", "1s"]).ok();
    let sock = env.root().join("run/unrec.sock");
    let gone = wait_until(Duration::from_secs(10), || !alive(server));
    if muxvisor::ground::proc::is_tmux_server(server, &sock, None) {
        unsafe {
            libc::kill(server, libc::SIGCONT);
            libc::kill(server, libc::SIGKILL);
        }
    }
    assert!(gone, "the hung server outlived its stop");
}
