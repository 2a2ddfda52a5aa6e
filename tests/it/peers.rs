//! `add` and `rm` through the binary: the spec file, updates, hostile
//! identities, root permission checks, and removal of running peers.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, symlink};
use std::time::Duration;

use crate::fixture::*;

const RULE: &str = "^[a-z0-9][a-z0-9_-]{0,39}$";

#[test]
fn add_rm_round_trip() {
    let env = Env::new();
    let cwd = env.scratch().to_path_buf();
    let out = env.mv(&[
        "add",
        "w1",
        "--json",
        "--env",
        "A=one two",
        "--idle-ttl",
        "5m",
        "--cwd",
        cwd.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo hi",
    ]);
    let j = out.ok().json();
    assert_eq!(j["identity"], "w1");
    assert_eq!(j["policy"], "persistent");
    assert_eq!(j["command"], serde_json::json!(["sh", "-c", "echo hi"]));
    assert_eq!(j["cwd"], fs::canonicalize(&cwd).unwrap().to_str().unwrap());
    assert_eq!(j["env"]["A"], "one two");
    assert_eq!(j["idle_ttl"], "5m");

    let file = env.root().join("peers/w1.json");
    let md = fs::symlink_metadata(&file).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored, j, "the file holds exactly the printed spec");
    let names: Vec<String> = fs::read_dir(env.root().join("peers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["w1.json"], "no temp files left behind");

    // An update keeps every option not given and replaces the program.
    let j = env.mv(&["add", "w1", "--json", "--restart", "always", "--", "cat"]).ok().json();
    assert_eq!(j["command"], serde_json::json!(["cat"]));
    assert_eq!(j["restart"], "always");
    assert_eq!(j["idle_ttl"], "5m");
    assert_eq!(j["env"]["A"], "one two");
    assert_eq!(j["cwd"], stored["cwd"]);

    // Human output names the peer and says it was updated.
    let h = env.mv(&["add", "w1", "--", "cat"]);
    assert!(h.ok().stdout.contains("peer w1 (persistent) updated"), "{h:?}");

    let j = env.mv(&["rm", "w1", "--json"]).ok().json();
    assert_eq!(
        j,
        serde_json::json!({"identity": "w1", "removed": true, "stopped": false, "purged": false})
    );
    assert!(!file.exists());
    assert_eq!(env.events("lifecycle", "rm").len(), 1);
    assert_eq!(env.events("lifecycle", "add").len(), 3);

    let again = env.mv(&["rm", "w1"]);
    again.code(1);
    assert!(again.stderr.contains("no peer named w1"), "{again:?}");
}

#[test]
fn rm_keeps_queue_state_and_logs_unless_purge() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "cat"]).ok();
    env.mv(&["add", "w2", "--", "cat"]).ok();
    let plant = |env: &Env| {
        let r = env.root();
        fs::DirBuilder::new().mode(0o700).recursive(true).create(r.join("queues/w/new")).unwrap();
        fs::write(r.join("queues/w/new/t1"), b"task").unwrap();
        fs::write(r.join("state/w.json"), b"{}").unwrap();
        fs::write(r.join("logs/panes/w.log"), b"out\n").unwrap();
        fs::write(r.join("logs/panes/w.log.1"), b"older\n").unwrap();
        fs::write(r.join("logs/panes/w2.log"), b"other peer\n").unwrap();
    };
    plant(&env);
    env.mv(&["rm", "w"]).ok();
    let r = env.root();
    for kept in ["queues/w/new/t1", "state/w.json", "logs/panes/w.log", "logs/panes/w.log.1"] {
        assert!(r.join(kept).exists(), "{kept} must survive rm without --purge");
    }

    env.mv(&["add", "w", "--", "cat"]).ok();
    let out = env.mv(&["rm", "w", "--purge"]);
    assert!(out.ok().stdout.contains("deleted"), "{out:?}");
    for gone in ["queues/w", "state/w.json", "logs/panes/w.log", "logs/panes/w.log.1"] {
        assert!(!r.join(gone).exists(), "{gone} must be purged");
    }
    assert!(r.join("logs/panes/w2.log").exists(), "another peer's log is untouched");
    assert!(r.join("peers/w2.json").exists());
}

/// Refused with exit 1 (a refused value, like an unknown peer; clap's own
/// usage errors are 2), the rule quoted, before even the root is created.
#[test]
fn hostile_identities_are_refused_before_any_file() {
    let env = Env::new();
    let marker = env.scratch().join("p");
    let hash = format!("#(touch {})", marker.display());
    let long = "a".repeat(41);
    let hostile = ["../x", "-t", "a;kill-server", &hash, "$(id)", &long, "", "é", "A", "a.b"];
    for bad in hostile {
        let out = env.mv(&["add", bad, "--", "sh"]);
        out.code(1);
        assert!(out.stderr.contains(RULE), "{bad:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{bad:?}: {out:?}");
        // Positional identities after `--`, and --id values, are checked the same way.
        for args in [
            vec!["rm", "--", bad],
            vec!["status", "--", bad],
            vec!["screen", "--", bad],
            vec!["logs", "--", bad],
            vec!["attach", "--", bad],
            vec!["launch", "--", bad],
            vec!["stop", "--", bad],
            vec!["queue", "--", bad],
        ] {
            let out = env.mv(&args);
            out.code(1);
            assert!(out.stderr.contains(RULE), "{args:?}: {out:?}");
        }
        let id_eq = format!("--id={bad}");
        let out = env.mv(&["events", &id_eq]);
        out.code(1);
        assert!(out.stderr.contains(RULE), "{bad:?}: {out:?}");
    }
    assert!(!env.root().exists(), "not even the root may be created for a hostile identity");
    assert!(!marker.exists());
}

#[test]
fn add_validates_cwd_env_and_warns_about_the_program() {
    let env = Env::new();
    let out = env.mv(&["add", "w", "--cwd", "/no/such/dir", "--", "sh"]);
    out.code(1);
    assert!(out.stderr.contains("/no/such/dir"), "{out:?}");
    let file = env.scratch().join("plain-file");
    fs::write(&file, b"").unwrap();
    let out = env.mv(&["add", "w", "--cwd", file.to_str().unwrap(), "--", "sh"]);
    out.code(1);
    assert!(out.stderr.contains("not a directory"), "{out:?}");
    let out = env.mv(&["add", "w", "--env", "1BAD=x", "--", "sh"]);
    out.code(1);
    assert!(out.stderr.contains("1BAD"), "{out:?}");
    assert!(!env.root().join("peers/w.json").exists());

    let out = env.mv(&["add", "w", "--", "no-such-program-muxvisor-test"]);
    out.ok();
    assert!(out.stderr.contains("was not found"), "{out:?}");
    assert!(out.stderr.contains("will fail to launch"), "{out:?}");
    // Issue 18: the hint says what --env PATH does (issue 19: it replaces
    // the PATH recorded at add; nothing is inherited from the launcher).
    assert!(out.stderr.contains("replaces the PATH recorded"), "{out:?}");
    assert!(!out.stderr.contains("replaces all"), "{out:?}");
    assert!(env.root().join("peers/w.json").exists(), "a missing program only warns");

    let out = env.mv(&["add", "w", "--deliver", "keys", "--", "cat", "{task}"]);
    out.ok();
    assert!(out.stderr.contains("only applies to ephemeral"), "{out:?}");
}

#[test]
fn root_permission_checks() {
    // A symlinked root.
    let env = Env::new();
    let real = env.scratch().join("real");
    fs::DirBuilder::new().mode(0o700).create(&real).unwrap();
    symlink(&real, env.root()).unwrap();
    let out = env.mv(&["status"]);
    out.code(1);
    assert!(out.stderr.contains("symlink"), "{out:?}");

    // A root open to others.
    let env = Env::new();
    fs::DirBuilder::new().mode(0o700).create(env.root()).unwrap();
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.mv(&["add", "w", "--", "sh"]);
    out.code(1);
    assert!(out.stderr.contains("0755") && out.stderr.contains("chmod 700"), "{out:?}");
    assert!(!env.root().join("peers").exists());

    // A root owned by someone else (we run as root, so chown works).
    let env = Env::new();
    fs::DirBuilder::new().mode(0o700).create(env.root()).unwrap();
    if nix::unistd::chown(env.root(), Some(nix::unistd::Uid::from_raw(4242)), None).is_err() {
        skip("peers::root_permission_checks", "the foreign-owner case: cannot chown as this user");
        return;
    }
    let out = env.mv(&["status"]);
    out.code(1);
    assert!(out.stderr.contains("owned by uid 4242"), "{out:?}");
}

#[test]
fn rm_refuses_a_running_peer_without_force() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    env.mv(&["launch", "w"]).ok();
    let out = env.mv(&["add", "w", "--", "sleep", "999"]);
    assert!(out.ok().stderr.contains("takes effect at its next launch"), "{out:?}");
    let out = env.mv(&["rm", "w"]);
    out.code(1);
    assert!(out.stderr.contains("--force"), "{out:?}");
    assert!(env.root().join("peers/w.json").exists());
    let status = env.mv(&["status", "w", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "running");

    let j = env.mv(&["rm", "w", "--force", "--json"]).ok().json();
    assert_eq!(j["stopped"], true);
    assert!(!env.root().join("peers/w.json").exists());
    assert!(
        wait_until(Duration::from_secs(5), || env.tmux("w", &["has-session"]).code != 0),
        "the server must be gone after rm --force"
    );
    assert_eq!(env.events("lifecycle", "stop").len(), 1);
    assert!(env.events("exits", "server-exit").is_empty(), "a forced rm is deliberate");
    assert!(env.events("exits", "session-exit").is_empty(), "a forced rm is deliberate");
}

/// Issue 10, item 2: `add --ephemeral` on a running persistent peer exited 0,
/// and the next tick then stopped the live session as an "orphan worker".
#[test]
fn a_policy_change_on_a_running_peer_needs_force_which_stops_it() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    env.mv(&["launch", "w"]).ok();
    let before = env.read("peers/w.json");

    let out = env.mv(&["add", "w", "--ephemeral", "--", "sh", "-c", "echo {task}"]);
    out.code(1);
    for want in ["peer w is running", "persistent to ephemeral", "muxvisor stop w", "--force"] {
        assert!(out.stderr.contains(want), "{want}: {out:?}");
    }
    assert_eq!(env.read("peers/w.json"), before, "a refused change writes nothing");
    env.mv(&["supervise", "--once"]).ok();
    let status = env.mv(&["status", "w", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "running", "the tick must leave the session alone");
    assert_eq!(status[0]["policy"], "persistent");

    // --force stops it first (a deliberate stop: no death records).
    let out = env.mv(&["add", "w", "--ephemeral", "--force", "--json", "--", "sh", "-c", "true"]);
    assert_eq!(out.ok().json()["policy"], "ephemeral");
    assert!(out.stderr.contains("stopped peer w"), "{out:?}");
    assert!(env.tmux("w", &["has-session"]).code != 0, "the server is gone");
    let stops = env.events("lifecycle", "stop");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0].contains("reason=policy-change"), "{stops:?}");
    assert!(env.events("exits", "server-exit").is_empty());
    assert!(env.events("exits", "session-exit").is_empty());

    // --persistent turns it back; with no server running, no --force is needed.
    let j = env.mv(&["add", "w", "--persistent", "--json", "--", "sleep", "1000"]).ok().json();
    assert_eq!(j["policy"], "persistent");
    let out = env.mv(&["add", "w", "--ephemeral", "--persistent", "--", "x"]);
    out.code(2);
}

/// Issue 18, item 9: a pattern that is not a regex and an unknown preset
/// are refused by `add`, before anything is written, and a spec file that
/// holds one (edited by hand) is refused by everything that loads it.
#[test]
fn add_refuses_a_bad_pattern_or_an_unknown_agent_and_so_does_every_loader() {
    let env = Env::new();
    for (args, says) in [
        (&["--ready-pattern", "("][..], "--ready-pattern"),
        (&["--busy-pattern", "[a-"], "--busy-pattern"),
        (&["--blocked-pattern", "limit=x{2,1}"], "--blocked-pattern"),
        (&["--agent", "claud"], "claude, codex"),
    ] {
        let mut argv = vec!["add", "a"];
        argv.extend_from_slice(args);
        argv.extend(["--", "cat"]);
        let out = env.mv(&argv);
        out.code(1);
        assert!(out.stderr.contains(says), "{args:?}: {out:#?}");
        assert!(!env.root().join("peers/a.json").exists(), "{args:?} was saved");
    }

    env.mv(&["add", "c", "--", "sleep", "1000"]).ok();
    let file = env.root().join("peers/c.json");
    let text = fs::read_to_string(&file).unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    spec["agent"] = "claud".into();
    fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let launch = env.mv(&["launch", "c"]);
    launch.code(1);
    assert!(launch.stderr.contains("c.json") && launch.stderr.contains("claud"), "{launch:#?}");
    let status = env.mv(&["status", "c", "--json"]);
    status.code(1);
    assert_eq!(status.json()[0]["state"], "unknown");
    let tick = env.mv(&["supervise", "--once", "--json"]).ok().json();
    assert!(
        tick.as_array().unwrap().iter().any(|r| r["identity"] == "c" && r["action"] == "error"),
        "{tick}"
    );
}

/// Issue 18: the screen capture drops the blanks at the end of each line,
/// so a ready pattern that requires the prompt's trailing space never
/// matches; `add` says so, with the fix.
#[test]
fn add_warns_about_a_pattern_that_needs_a_trailing_blank() {
    let env = Env::new();
    let out = env.mv(&["add", "r", "--ready-pattern", r"^READY> \z", "--", "cat"]);
    out.ok();
    assert!(out.stderr.contains("never matches") && out.stderr.contains(r" ?\z"), "{out:#?}");
    let out = env.mv(&["add", "r", "--ready-pattern", r"^READY> ?\z", "--", "cat"]);
    out.ok();
    assert!(!out.stderr.contains("never matches"), "{out:#?}");
}

/// Issue 18: `add` on an ephemeral peer whose worker runs says what is
/// true: the running task keeps the old spec, the next task runs with the
/// new one (the runner reads the spec for every task).
#[test]
fn re_adding_a_busy_ephemeral_peer_says_its_next_task_uses_the_new_spec() {
    let env = Env::new();
    let out = env.scratch().join("out");
    let env_out = format!("OUT={}", out.display());
    let gate = env.scratch().join("gate");
    // Bounded, so that a failing test leaves no program behind for long.
    let old = format!(
        "echo old >> \"$OUT\"; for i in $(seq 300); do [ -e '{}' ] && break; sleep 0.05; done",
        gate.display()
    );
    env.mv(&["add", "w", "--ephemeral", "--env", &env_out, "--", "sh", "-c", &old]).ok();
    env.mv(&["send", "w", "one"]).ok();
    env.mv(&["send", "w", "two", "--no-kick"]).ok();
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(&out).is_ok()));
    let readd = env.mv(&["add", "w", "--", "sh", "-c", "echo new >> \"$OUT\""]);
    readd.ok();
    assert!(readd.stderr.contains("its next task runs with the new one"), "{readd:#?}");
    fs::write(&gate, b"").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || fs::read_to_string(&out)
            .is_ok_and(|s| s.lines().count() == 2)),
        "{:?}",
        fs::read_to_string(&out)
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "old\nnew\n");
}

/// Issue 18: after `rm --force`, `status` shows no peer while its queue
/// still holds tasks; `rm` says where they are, and `queue ID list` says
/// nothing runs them.
#[test]
fn rm_force_names_the_tasks_it_leaves_behind() {
    let env = Env::new();
    env.mv(&["add", "w", "--ephemeral", "--", "sleep", "1000"]).ok();
    env.mv(&["send", "w", "one"]).ok();
    env.mv(&["send", "w", "two", "--no-kick"]).ok();
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["queue", "w", "list", "--json"]).json()["running"].as_array().unwrap().len() == 1
    }));
    let out = env.mv(&["rm", "--force", "w"]);
    out.ok();
    assert!(out.stderr.contains("1 pending and 1 running"), "{out:#?}");
    assert!(out.stderr.contains("muxvisor queue w list"), "{out:#?}");
    let list = env.mv(&["queue", "w", "list"]);
    list.ok();
    assert!(list.stdout.contains("peer w is not registered"), "{list:#?}");
}
