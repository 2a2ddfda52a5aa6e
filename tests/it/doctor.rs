//! `doctor` on a healthy root (exit 0) and on each failure we can build for
//! real: a stale socket, an orphan canary, a missing program, a directory
//! opened to others, no tmux, an old tmux, ticks that stopped. The service
//! managers are the fakes of `service.rs`, so the real crontab and systemd
//! are never asked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chrono::Utc;
use muxvisor::model::logfmt::Event;
use muxvisor::model::peer::{Identity, PeerSpec, Policy};

use crate::clean::{Holder, launch_sleeper, stale_socket};
use crate::fixture::*;
use crate::service::Fake;

fn doctor(fake: &Fake, env: &Env, extra: &[(&str, &str)]) -> (Out, serde_json::Value) {
    let mut c = fake.cmd(env.root(), &["doctor", "--json"]);
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = run_deadline(c, None, CMD_DEADLINE);
    let v = out.json();
    (out, v)
}

/// Findings of `check` at `level`.
fn findings<'a>(v: &'a serde_json::Value, check: &str, level: &str) -> Vec<&'a serde_json::Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && f["level"] == level)
        .collect()
}

fn record_tick(env: &Env, ago: chrono::Duration) {
    Event::at(Utc::now() - ago, "tick")
        .kv("peers", 1)
        .kv("duration_ms", 3)
        .kv("actions", 0)
        .append_to(&env.root().join("logs/lifecycle.log"))
        .unwrap();
}

#[test]
fn healthy_root_with_service_and_recent_tick_is_ok() {
    let env = Env::new();
    let fake = Fake::new(&env, true);
    fake.mv(&env, &["service", "install", "--systemd"]).ok();
    launch_sleeper(&env, "ok1");
    let lock = env.root().join("run/ok1.canary.lock");
    assert!(
        wait_until(Duration::from_secs(10), || muxvisor::ground::fsutil::is_locked(&lock).unwrap())
    );
    record_tick(&env, chrono::Duration::seconds(5));

    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["warnings"], 0, "{v}");
    for check in ["tmux", "root", "sockets", "permissions", "service", "tick", "ghosts", "peers"] {
        assert_eq!(findings(&v, check, "ok").len(), 1, "{check}: {v}");
    }
    assert!(findings(&v, "tmux", "ok")[0]["message"].as_str().unwrap().contains("tmux 3."));

    // The human form says the same, with the fixes.
    let human = run_deadline(fake.cmd(env.root(), &["doctor"]), None, CMD_DEADLINE);
    human.ok();
    assert!(human.stdout.contains("0 problem(s), 0 warning(s)"), "{human:?}");
}

#[test]
fn stale_socket_is_an_error_until_clean_removes_it() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let sock = stale_socket(&env, "g1");
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "stale-socket", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains(&sock.display().to_string()));
    assert_eq!(f[0]["fix"], "muxvisor clean");

    env.mv(&["clean"]).ok();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 0, "{v}");
}

#[test]
fn orphan_canary_is_an_error() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["status"]);
    let holder = Holder::start(&env, &env.root().join("run/g2.canary.lock"), &["_canary", "g2"]);
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "orphan-canary", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains(&format!("pid {}", holder.pid())));
}

#[test]
fn a_peer_whose_program_is_missing_is_an_error_naming_it() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["status"]);
    let root = muxvisor::ground::fsutil::open_root(env.root()).unwrap();
    let spec = PeerSpec::new(
        Identity::parse("p1").unwrap(),
        Policy::Persistent,
        vec!["no-such-program-zz9".into()],
        env.scratch().to_path_buf(),
    );
    muxvisor::model::peer::save(&root, &spec).unwrap();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "peers", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("no-such-program-zz9"));
    assert!(f[0]["fix"].as_str().unwrap().contains("absolute path"));
}

#[test]
fn a_directory_open_to_others_is_an_error_that_doctor_can_still_report() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["status"]);
    let state = env.root().join("state");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    // Other commands refuse the root; doctor explains it.
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "permissions", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(
        f[0]["fix"].as_str().unwrap(),
        format!("chmod 700 {} (and check who changed it)", state.display())
    );

    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    // A readable file is a warning, not a failure.
    let log = env.root().join("logs/lifecycle.log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(findings(&v, "permissions", "warn").len(), 1, "{v}");
}

/// Issue 18, item 11: a symlink planted at logs/lifecycle.log makes every
/// launch fail; doctor reports it (exit 1) and its fix removes the link,
/// never a `chmod` that would follow it to someone else's file.
#[test]
fn a_symlink_under_the_root_is_an_error_whose_fix_does_not_follow_it() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["status"]);
    let victim = env.scratch().join("someone-elses-file");
    fs::write(&victim, "theirs\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let log = env.root().join("logs/lifecycle.log");
    let _ = fs::remove_file(&log);
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    env.mv(&["add", "p", "--", "sleep", "1000"]);
    env.mv(&["launch", "p"]).code(1);

    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "permissions", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("symlink"), "{v}");
    let fix = f[0]["fix"].as_str().unwrap();
    assert!(fix.starts_with(&format!("rm {}", log.display())), "{fix}");
    assert!(!v.to_string().contains("chmod 600"), "a chmod would follow the link: {v}");
    let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "doctor changed the target");
}

#[test]
fn missing_tmux_is_an_error_and_an_old_one_a_warning() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["status"]);
    let (out, v) = doctor(&fake, &env, &[("MUXVISOR_TMUX", "/nonexistent/tmux")]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(findings(&v, "tmux", "error").len(), 1, "{v}");

    let old = fake.bin.join("tmux-old");
    fs::write(&old, "#!/bin/sh\necho 'tmux 3.1c'\n").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
    let (out, v) = doctor(&fake, &env, &[("MUXVISOR_TMUX", old.to_str().unwrap())]);
    assert_eq!(out.code, 0, "{out:?}");
    let f = findings(&v, "tmux", "warn");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("older than 3.2"));
}

#[test]
fn ticks_that_stopped_arriving_are_a_warning_naming_where_to_look() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fake.mv(&env, &["service", "install", "--cron"]).ok();
    record_tick(&env, chrono::Duration::minutes(10));
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let f = findings(&v, "tick", "warn");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("every 60 s"), "{v}");
    assert!(f[0]["fix"].as_str().unwrap().contains("service.err"), "{v}");

    // Without any service, doctor says how to install one.
    fake.mv(&env, &["service", "uninstall", "--cron"]).ok();
    let (_, v) = doctor(&fake, &env, &[]);
    assert_eq!(findings(&v, "service", "warn")[0]["fix"], "muxvisor service install");
}

/// Regression (issue 12, item 8): launchd runs a job at most every 10 s,
/// so a plist asking for 5 s ticks every 10 s, and doctor warned that ticks
/// had stopped. (install now refuses such intervals; an older plist may
/// still carry one.)
#[test]
fn a_launchd_interval_under_ten_seconds_is_judged_by_what_launchd_does() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fake.mv(&env, &["service", "install", "--launchd", "--interval", "10s"]).ok();
    let plist = fs::read_to_string(fake.plist()).unwrap();
    let old = plist.replace("<integer>10</integer>", "<integer>5</integer>");
    assert_ne!(plist, old);
    fs::write(fake.plist(), old).unwrap();
    record_tick(&env, chrono::Duration::seconds(20));
    let (_, v) = doctor(&fake, &env, &[]);
    assert!(findings(&v, "tick", "warn").is_empty(), "{v}");
    let ok = findings(&v, "tick", "ok");
    assert!(ok[0]["message"].as_str().unwrap().contains("every 10 s"), "{v}");
}

#[test]
fn a_root_too_long_for_socket_paths_is_an_error_naming_the_limit() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let long = env.scratch().join("d".repeat(90));
    let out = run_deadline(fake.cmd(&long, &["doctor", "--json"]), None, CMD_DEADLINE);
    assert_eq!(out.code, 1, "{out:?}");
    let v = out.json();
    let f = findings(&v, "sockets", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("limit of"), "{v}");
    assert!(!long.exists(), "doctor created the root");
}

#[test]
fn programs_and_tmux_are_looked_up_on_the_path_the_service_gives_the_tick() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fake.mv(&env, &["service", "install", "--cron"]).ok();
    // A program only our shell can see (its dir is added after install).
    let extra = env.scratch().join("extra");
    fs::create_dir_all(&extra).unwrap();
    let prog = extra.join("only-here-prog");
    fs::write(&prog, "#!/bin/sh\nexec sleep 600\n").unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    let root = muxvisor::ground::fsutil::open_root(env.root()).unwrap();
    let spec = PeerSpec::new(
        Identity::parse("p2").unwrap(),
        Policy::Persistent,
        vec!["only-here-prog".into()],
        env.scratch().to_path_buf(),
    );
    muxvisor::model::peer::save(&root, &spec).unwrap();
    let with_extra = format!("{}:{}", extra.display(), std::env::var("PATH").unwrap());

    let (out, v) =
        doctor(&fake, &env, &[("PATH", &format!("{}:{with_extra}", fake.bin.display()))]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "peers", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("only-here-prog"), "{v}");

    // Reinstalling from the shell that sees it records that PATH: fixed.
    let mut c = fake.cmd(env.root(), &["service", "install", "--cron"]);
    c.env("PATH", format!("{}:{with_extra}", fake.bin.display()));
    run_deadline(c, None, CMD_DEADLINE).ok();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(findings(&v, "peers", "error").len(), 0, "{out:?}");

    // A service PATH without tmux is an error too.
    let ct = fs::read_to_string(fake.state.join("crontab")).unwrap();
    let start = ct.find("PATH='").unwrap() + "PATH='".len();
    let end = start + ct[start..].find('\'').unwrap();
    let broken = format!("{}/nowhere{}", &ct[..start], &ct[end..]);
    fs::write(fake.state.join("crontab"), broken).unwrap();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "service", "error");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["message"].as_str().unwrap().contains("no tmux"), "{v}");
}

/// Issue 10, item 3: `--root link/` (and `link/.`) passed the symlink check
/// because a trailing slash makes `lstat` follow the link, and `doctor`
/// called the linked root "yours and private".
#[test]
fn a_symlinked_root_is_refused_in_every_spelling() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let real = env.scratch().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, env.root()).unwrap();
    let link = env.root().display().to_string();
    for spelling in [link.clone(), format!("{link}/"), format!("{link}/."), format!("{link}//./")] {
        let out = run_deadline(
            fake.cmd(std::path::Path::new(&spelling), &["status"]),
            None,
            CMD_DEADLINE,
        );
        assert_eq!(out.code, 1, "{spelling}: {out:?}");
        assert!(out.stderr.contains("is a symlink"), "{spelling}: {out:?}");
        let c = fake.cmd(std::path::Path::new(&spelling), &["doctor", "--json"]);
        let out = run_deadline(c, None, CMD_DEADLINE);
        assert_eq!(out.code, 1, "{spelling}: {out:?}");
        let v = out.json();
        let f = findings(&v, "root", "error");
        assert_eq!(f.len(), 1, "{spelling}: {v}");
        assert!(f[0]["message"].as_str().unwrap().contains("symlink"), "{v}");
        assert!(findings(&v, "root", "ok").is_empty(), "{spelling}: {v}");
    }
    // The same through MUXVISOR_ROOT.
    let mut c = std::process::Command::new(BIN);
    c.arg("status").env("MUXVISOR_ROOT", format!("{link}/")).env_remove("TMUX");
    let out = run_deadline(c, None, CMD_DEADLINE);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is a symlink"), "{out:?}");
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0, "nothing was created through the link");
}

/// Issue 10, item 13: the fix for a stopped server said `kill -CONT <pid>`
/// although the pid was recorded; it must be the command to run.
#[test]
fn a_hung_server_gets_a_fix_with_its_real_pid() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["add", "h", "--", "sleep", "600"]).ok();
    env.mv(&["launch", "h"]).ok();
    let server = env.server_pid("h").unwrap();
    assert_eq!(unsafe { libc::kill(server, libc::SIGSTOP) }, 0);
    let (out, v) = doctor(&fake, &env, &[]);
    unsafe { libc::kill(server, libc::SIGCONT) };
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "hung-server", "error");
    assert_eq!(f.len(), 1, "{v}");
    let fix = f[0]["fix"].as_str().unwrap();
    assert!(fix.contains(&format!("kill -CONT {server} ")), "{fix}");
    assert!(fix.contains("muxvisor stop h"), "{fix}");
    assert!(!fix.contains('<'), "no placeholder: {fix}");
}

/// Issue 10, item 1: a socket deleted under a running server. doctor says
/// so: a warning once the server re-created it (something deletes files
/// under the root), an error while it cannot.
#[test]
fn a_deleted_socket_is_reported() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    launch_sleeper(&env, "ls1");
    let sock = env.root().join("run/ls1.sock");
    fs::remove_file(&sock).unwrap();
    let (_, v) = doctor(&fake, &env, &[]);
    let w = findings(&v, "lost-socket", "warn");
    assert_eq!(w.len(), 1, "{v}");
    assert!(w[0]["message"].as_str().unwrap().contains("re-create"), "{v}");
    assert!(sock.exists());

    let server: i32 = serde_json::from_str::<serde_json::Value>(&env.read("state/ls1.json"))
        .unwrap()["server_pid"]
        .as_i64()
        .unwrap() as i32;
    unsafe { libc::kill(server, libc::SIGSTOP) };
    fs::remove_file(&sock).unwrap();
    let (out, v) = doctor(&fake, &env, &[]);
    unsafe { libc::kill(server, libc::SIGCONT) };
    assert_eq!(out.code, 1, "{out:?}");
    let e = findings(&v, "lost-socket", "error");
    assert_eq!(e.len(), 1, "{v}");
    assert!(e[0]["fix"].as_str().unwrap().contains("muxvisor stop ls1"), "{v}");
    assert!(findings(&v, "hung-server", "error").is_empty(), "reported once: {v}");
    // Resumed, the server re-creates it (SIGUSR1 was pending).
    assert!(wait_until(Duration::from_secs(5), || sock.exists()));
}

/// Issue #19 item 6: a spec that `add` would refuse today (written by hand,
/// or by an older muxvisor) can never start, because tmux refuses its launch
/// command as too long; doctor says so instead of "0 problems".
#[test]
fn a_peer_tmux_can_never_start_is_an_error_naming_it() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    env.mv(&["status"]);
    let root = muxvisor::ground::fsutil::open_root(env.root()).unwrap();
    let spec = PeerSpec::new(
        Identity::parse("huge").unwrap(),
        Policy::Persistent,
        vec!["sleep".into(), "9".repeat(17_000)],
        env.scratch().to_path_buf(),
    );
    muxvisor::model::peer::save(&root, &spec).unwrap();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let f = findings(&v, "peers", "error");
    assert_eq!(f.len(), 1, "{v}");
    let msg = f[0]["message"].as_str().unwrap();
    assert!(msg.contains("huge") && msg.contains("command too long"), "{msg}");
    assert!(f[0]["fix"].as_str().unwrap().contains("muxvisor add huge"), "{v}");
}

/// Issue #19 item 4: the installed entry runs the path muxvisor was installed
/// from; when an upgrade moves the binary away, no tick runs at all, and
/// doctor says so with the fix.
#[test]
fn a_service_whose_binary_was_moved_away_is_an_error() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let dir = env.scratch().join("old-bin");
    fs::create_dir_all(&dir).unwrap();
    let link = dir.join("muxvisor");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let mut install = fake.cmd(env.root(), &["service", "install", "--cron"]);
    install.env("PATH", format!("{}:{}", fake.bin.display(), std::env::var("PATH").unwrap()));
    let mut c = std::process::Command::new(&link);
    c.args(install.get_args());
    for (k, v) in install.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert!(fake.crontab().contains(&link.display().to_string()), "{}", fake.crontab());
    let moved = |v: &serde_json::Value| {
        findings(v, "service", "error")
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains("does not exist"))
    };
    let (_, v) = doctor(&fake, &env, &[]);
    assert!(!moved(&v), "the binary is there: {v}");
    fs::remove_file(&link).unwrap();
    let (out, v) = doctor(&fake, &env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(moved(&v), "{v}");
    let f = findings(&v, "service", "error");
    assert!(f[0]["message"].as_str().unwrap().contains(&link.display().to_string()), "{v}");
    assert!(f[0]["fix"].as_str().unwrap().contains("service install"), "{v}");
}
