//! Issue #19 item 3: a peer runs with its own environment (the base
//! recorded at `add`, its env file, its `--env`, muxvisor's two
//! variables), whoever launches it: you in a shell, or the tick under cron
//! or launchd with a nearly empty environment.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::fixture::*;

/// The environment dumps the program wrote into `dir`, one per run, each
/// as a map without what differs per run by nature (tmux's `TMUX`, which
/// names the server's pid).
fn dumps(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let mut names: Vec<_> =
        fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "env"));
    names.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    names
        .iter()
        .map(|p| {
            fs::read_to_string(p)
                .unwrap_or_default()
                .split('\0')
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| *k != "TMUX")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A program that writes its whole environment (NUL-separated, so values
/// with newlines survive) to `dir/<pid>.env`, then waits.
fn dumper(dir: &Path) -> String {
    format!("env -0 > {d}/$$.tmp && mv {d}/$$.tmp {d}/$$.env; exec sleep 300", d = dir.display())
}

fn secret_file(env: &Env, text: &str) -> std::path::PathBuf {
    let f = env.scratch().join("secrets.env");
    fs::write(&f, text).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    f
}

#[test]
fn a_peer_runs_with_its_own_environment_whoever_launches_it() {
    let env = Env::new();
    let out_dir = env.scratch().join("out");
    fs::create_dir(&out_dir).unwrap();
    let file = secret_file(&env, "# rotated by hand\nFROM_FILE=f1\nBOTH=file\n");
    let prog = dumper(&out_dir);
    env.mv(&[
        "add",
        "p",
        "--env",
        "FROM_ENV=e1",
        "--env",
        "BOTH=flag",
        "--env",
        "MULTI=a\nb",
        "--env-file",
        file.to_str().unwrap(),
        "--backoff",
        "100ms",
        "--",
        "sh",
        "-c",
        &prog,
    ])
    .ok();

    // By hand, from a shell with a variable of its own and another HOME.
    let mut c = env.command(&["launch", "p"]);
    c.env("LAUNCHER_ONLY", "leak").env("HOME", "/nonexistent-launcher-home");
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert!(wait_until(Duration::from_secs(10), || dumps(&out_dir).len() == 1));
    let by_hand = dumps(&out_dir).remove(0);
    assert_eq!(by_hand.get("FROM_ENV").map(String::as_str), Some("e1"), "{by_hand:?}");
    assert_eq!(by_hand.get("FROM_FILE").map(String::as_str), Some("f1"), "{by_hand:?}");
    assert_eq!(by_hand.get("BOTH").map(String::as_str), Some("flag"), "--env wins: {by_hand:?}");
    assert_eq!(by_hand.get("MULTI").map(String::as_str), Some("a\nb"), "{by_hand:?}");
    assert_eq!(by_hand.get("MUXVISOR_IDENTITY").map(String::as_str), Some("p"));
    assert!(!by_hand.contains_key("LAUNCHER_ONLY"), "the launcher's variable leaked: {by_hand:?}");
    let home = std::env::var("HOME").unwrap_or_default();
    if !home.is_empty() {
        assert_eq!(by_hand.get("HOME"), Some(&home), "HOME is the one recorded at add");
    }

    // The program crashes; the tick restarts it from a nearly empty
    // environment, as cron does.
    let pid = pane_pid(&env, "p");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let restarted = wait_until(Duration::from_secs(20), || {
        let mut c = env.command(&["supervise", "--once"]);
        c.env_clear().env("PATH", "/usr/bin:/bin");
        run_deadline(c, None, CMD_DEADLINE);
        dumps(&out_dir).len() == 2
    });
    assert!(restarted, "the tick did not restart p: {}", env.read("logs/lifecycle.log"));
    let by_tick = dumps(&out_dir).remove(1);
    let differing: Vec<_> = by_hand
        .keys()
        .chain(by_tick.keys())
        .filter(|k| by_hand.get(*k) != by_tick.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "a restart by the tick differs from the launch by hand in {differing:?}:\n{by_hand:?}\n{by_tick:?}"
    );
}

#[test]
fn an_ephemeral_peers_programs_get_the_same_environment() {
    let env = Env::new();
    let out_dir = env.scratch().join("out");
    fs::create_dir(&out_dir).unwrap();
    let file = secret_file(&env, "FROM_FILE=f1\n");
    let prog = format!("env -0 > {d}/$$.tmp && mv {d}/$$.tmp {d}/$$.env", d = out_dir.display());
    env.mv(&[
        "add",
        "w",
        "--ephemeral",
        "--env",
        "FROM_ENV=e1",
        "--env-file",
        file.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &prog,
    ])
    .ok();
    let mut c = env.command(&["send", "w", "one"]);
    c.env("LAUNCHER_ONLY", "leak");
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert!(wait_until(Duration::from_secs(15), || dumps(&out_dir).len() == 1));
    // The secret is rotated: the next task gets the new value.
    secret_file(&env, "FROM_FILE=f2\n");
    let mut c = env.command(&["send", "w", "two"]);
    c.env_clear().env("PATH", "/usr/bin:/bin");
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert!(wait_until(Duration::from_secs(15), || dumps(&out_dir).len() == 2));
    let d = dumps(&out_dir);
    for (run, want) in d.iter().zip(["f1", "f2"]) {
        assert_eq!(run.get("FROM_FILE").map(String::as_str), Some(want), "{run:?}");
        assert_eq!(run.get("FROM_ENV").map(String::as_str), Some("e1"), "{run:?}");
        assert_eq!(run.get("MUXVISOR_IDENTITY").map(String::as_str), Some("w"), "{run:?}");
        assert!(run.contains_key("MUXVISOR_TASK_ID"), "{run:?}");
        assert!(!run.contains_key("LAUNCHER_ONLY"), "the launcher's variable leaked: {run:?}");
    }
    let strip = |m: &BTreeMap<String, String>| {
        let mut m = m.clone();
        for k in ["FROM_FILE", "MUXVISOR_TASK_ID", "MUXVISOR_TASK_FILE", "TMUX_PANE", "PWD"] {
            m.remove(k);
        }
        m
    };
    assert_eq!(strip(&d[0]), strip(&d[1]), "a kick from an empty environment changed it");
}

#[test]
fn add_refuses_an_env_file_it_cannot_use_naming_it() {
    let env = Env::new();
    let missing = env.scratch().join("nope.env");
    let out = env.mv(&["add", "p", "--env-file", missing.to_str().unwrap(), "--", "sleep", "9"]);
    out.code(1);
    assert!(out.stderr.contains(&*missing.to_string_lossy()), "{out:?}");
    assert!(!env.root().join("peers/p.json").exists(), "registered anyway");

    let bad = secret_file(&env, "A=1\n# fine\nnot a pair\n");
    let out = env.mv(&["add", "p", "--env-file", bad.to_str().unwrap(), "--", "sleep", "9"]);
    out.code(1);
    let want = format!("env file {} line 3", bad.display());
    assert!(out.stderr.contains(&want), "{out:?}");
    assert!(!env.root().join("peers/p.json").exists(), "registered anyway");

    let bad = secret_file(&env, "MUXVISOR_IDENTITY=other\n");
    let out = env.mv(&["add", "p", "--env-file", bad.to_str().unwrap(), "--", "sleep", "9"]);
    out.code(1);
    assert!(out.stderr.contains("line 1") && out.stderr.contains("reserved"), "{out:?}");
    let out = env.mv(&["add", "p", "--env", "MUXVISOR_ROOT=/x", "--", "sleep", "9"]);
    out.code(1);
    assert!(out.stderr.contains("MUXVISOR_ROOT") && out.stderr.contains("reserved"), "{out:?}");
    assert!(!env.root().join("peers/p.json").exists(), "registered anyway");
}

#[test]
fn status_json_shows_the_environment_without_the_files_secrets() {
    let env = Env::new();
    let file = secret_file(&env, "API_KEY=s3cr3t-value\n");
    env.mv(&[
        "add",
        "p",
        "--env",
        "MODE=fast",
        "--env-file",
        file.to_str().unwrap(),
        "--",
        "sleep",
        "300",
    ])
    .ok();
    let out = env.mv(&["--json", "status", "p"]);
    out.ok();
    assert!(!out.stdout.contains("s3cr3t-value"), "the secret was printed: {}", out.stdout);
    let row = &out.json()[0];
    let e = &row["env"];
    assert_eq!(e["API_KEY"], format!("(from {})", file.display()), "{row}");
    assert_eq!(e["MODE"], "fast", "{row}");
    assert_eq!(e["MUXVISOR_IDENTITY"], "p", "{row}");
    assert!(e["PATH"].as_str().is_some_and(|p| !p.is_empty()), "{row}");
    assert_eq!(row["env_file"], file.to_string_lossy().as_ref(), "{row}");
    assert!(row["env_error"].is_null(), "{row}");

    // The file goes away: status says why, and a launch fails naming it,
    // with nothing started.
    fs::remove_file(&file).unwrap();
    let row = env.mv(&["--json", "status", "p"]).json()[0].clone();
    assert!(row["env_error"].as_str().is_some_and(|e| e.contains("secrets.env")), "{row}");
    let out = env.mv(&["launch", "p"]);
    out.code(1);
    assert!(out.stderr.contains(&*file.to_string_lossy()), "{out:?}");
    assert!(!env.root().join("run/p.sock").exists(), "a server was started");
}

/// A spec written before muxvisor recorded a base still loads, and gets
/// the account's base, the same for every launcher.
#[test]
fn an_older_spec_without_a_recorded_base_gets_the_accounts() {
    let env = Env::new();
    add_peer(&env, "old", &["sleep", "300"]);
    let raw = env.read("peers/old.json");
    assert!(!raw.contains("base_env"), "{raw}");
    let row = env.mv(&["--json", "status", "old"]).json()[0].clone();
    assert_eq!(row["env"]["PATH"], muxvisor::model::peer_env::DEFAULT_PATH, "{row}");
    assert!(row["env"]["HOME"].as_str().is_some_and(|h| h.starts_with('/')), "{row}");
    // An update records it.
    env.mv(&["add", "old", "--", "sleep", "300"]).ok();
    assert!(env.read("peers/old.json").contains("base_env"));
}
