//! Hostile input on the way into tmux and sh: a root path full of quoting
//! metacharacters, and program arguments that tmux or a shell would
//! interpret. Nothing may be executed, and everything must still work.

use std::fs;
use std::time::Duration;

use crate::fixture::*;

#[test]
fn hostile_root_path_keeps_hook_pane_log_and_canary_working() {
    let env = Env::with_root_name("r'$#(touch X);b c");
    let x_in_scratch = env.scratch().join("X");
    add_peer(&env, "h1", &["sh", "-c", "echo hello-from-pane; sleep 0.5; exit 7"]);
    let mut c = env.command(&["launch", "h1"]);
    c.current_dir(env.scratch());
    run_deadline(c, None, CMD_DEADLINE).code(1);
    assert!(
        wait_until(Duration::from_secs(5), || exits(&env, "session-exit", "h1").len() == 1),
        "hook did not run: {:?}",
        env.read("logs/exits.log")
    );
    assert!(exits(&env, "session-exit", "h1")[0].contains("status=7 "));
    assert!(
        wait_until(Duration::from_secs(5), || env
            .read("logs/panes/h1.log")
            .contains("hello-from-pane")),
        "pane log: {:?}",
        env.read("logs/panes/h1.log")
    );

    // The canary works under this root too.
    add_peer(&env, "h2", &["sleep", "1000"]);
    let mut c = env.command(&["launch", "h2"]);
    c.current_dir(env.scratch());
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert!(wait_until(Duration::from_secs(5), || canary_watching(&env, "h2")));
    let server = env.server_pid("h2").unwrap();
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || exits(&env, "server-exit", "h2").len() == 1));

    assert!(!x_in_scratch.exists(), "a #(...) in the root path was executed");
    assert!(!std::path::Path::new("X").exists(), "a #(...) ran in the test's cwd");
}

#[test]
fn hostile_argv_and_env_arrive_literally() {
    let env = Env::new();
    let out = env.scratch().join("args");
    let args = ["a;", "$(id)", "#{pane_pid}", "#(touch Y)", "b c", "'q'", "\\", ";"];
    let mut argv =
        vec!["sh", "-c", "printf '%s\\n' \"$@\" \"$HOSTILE\" > \"$OUT\"; sleep 1000", "sh"];
    argv.extend(args);
    add_peer_with(&env, "argv", &argv, |s| {
        s.env.insert("OUT".into(), out.display().to_string());
        s.env.insert("HOSTILE".into(), "#{pane_pid} $(id) x;".into());
    });
    let mut c = env.command(&["launch", "argv"]);
    c.current_dir(env.scratch());
    run_deadline(c, None, CMD_DEADLINE).ok();
    assert!(wait_until(Duration::from_secs(5), || fs::read_to_string(&out)
        .is_ok_and(|s| s.lines().count() == args.len() + 1)));
    let got = fs::read_to_string(&out).unwrap();
    let mut want: Vec<&str> = args.to_vec();
    want.push("#{pane_pid} $(id) x;");
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
    assert!(!env.scratch().join("Y").exists());
}

/// Control characters an agent could plant in a reason, a payload or its
/// screen: a window title, a clipboard write (OSC 52), an 8-bit CSI, DEL,
/// a bell, and a newline that would start a fake table row.
const HOSTILE: &str = "why\x1b]0;pwned\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\u{9b}2J\x7f\nFAKE-ROW";

/// No byte below 0x20 other than newline and tab, no DEL, no C1 control.
fn assert_inert(what: &str, text: &str) {
    for c in text.chars() {
        assert!(
            !c.is_control() || c == '\n' || c == '\t',
            "{what} printed control {c:?}: {text:?}"
        );
    }
}

/// Issue 18, item 3: every printer makes text from outside inert, and a
/// newline in a blocked reason does not break the status table.
#[test]
fn no_command_prints_a_control_byte_that_came_from_outside() {
    let env = Env::new();
    let screen = "printf 'A\\001\\177\\033]0;title\\007\\033]52;c;eA==\\007B\\302\\233\\n'; \
                  sleep 1000";
    env.mv(&["add", "p", "--ready-pattern", "^never$", "--", "sh", "-c", screen]).ok();
    env.mv(&["launch", "p"]).ok();
    env.mv(&["mark", "p", "blocked", "--reason", HOSTILE]).ok();
    env.mv(&["add", "w", "--ephemeral", "--", "sh", "-c", "cat \"$MUXVISOR_TASK_FILE\""]).ok();
    let task = env.mv(&["send", "w", HOSTILE, "--no-kick", "--json"]).ok().json()["task"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(wait_until(Duration::from_secs(10), || env.mv(&["screen", "p"]).stdout.contains("AB")));

    let human = env.mv(&["status"]);
    assert_inert("status", &human.stdout);
    assert_inert("status (stderr)", &human.stderr);
    let rows: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "a reason's newline made a fake row: {human:#?}");
    assert!(rows.iter().all(|r| !r.starts_with("FAKE-ROW")), "{human:#?}");
    let one = env.mv(&["status", "p"]);
    assert_eq!(one.stdout.lines().count(), 2, "{one:#?}");
    let j = env.mv(&["status", "p", "--json"]);
    assert_eq!(j.json()[0]["agent"]["reason"], HOSTILE, "JSON keeps the value, escaped");

    for args in [
        &["status", "--json"][..],
        &["screen", "p"],
        &["screen", "p", "--json"],
        &["events"],
        &["events", "--json"],
        &["events", "--id", "p"],
        &["queue", "w", "list"],
        &["queue", "w", "list", "--json"],
        &["queue", "w", "show", &task],
        &["queue", "w", "show", &task, "--json"],
        &["send", "w", HOSTILE, "--no-kick"],
    ] {
        let out = env.mv(args);
        assert_inert(&format!("{args:?}"), &out.stdout);
        assert_inert(&format!("{args:?} (stderr)"), &out.stderr);
    }
}
