//! `screen`, `logs` and `attach` through the binary.

use std::fs;
use std::io::Write;
use std::time::Duration;

use crate::events::Follow;
use crate::fixture::*;

#[test]
fn screen_shows_output_with_ansi_stripped() {
    let env = Env::new();
    let script = "printf '\\033[31mRED-TEXT\\033[0m plain\\n'; printf 'second\\n'; exec sleep 1000";
    env.mv(&["add", "w", "--restart", "never", "--", "sh", "-c", script]).ok();
    env.mv(&["launch", "w"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || env.mv(&["screen", "w"]).stdout.contains("second")),
        "{:?}",
        env.mv(&["screen", "w"])
    );
    let out = env.mv(&["screen", "w"]);
    let s = &out.ok().stdout;
    assert!(s.contains("RED-TEXT plain\n"), "{s:?}");
    assert!(!s.contains('\u{1b}'), "{s:?}");
    assert!(s.ends_with("second\n"), "trailing blank lines trimmed: {s:?}");

    let raw = env.mv(&["screen", "w", "--raw"]);
    assert!(raw.ok().stdout.contains("\u{1b}[31mRED-TEXT"), "{raw:?}");

    let one = env.mv(&["screen", "w", "--lines", "1"]);
    assert_eq!(one.ok().stdout, "second\n");

    let j = env.mv(&["screen", "w", "--json"]).ok().json();
    assert_eq!(j["identity"], "w");
    assert_eq!(j["lines"].as_array().unwrap().last().unwrap(), "second");
}

#[test]
fn screen_logs_attach_refuse_what_is_not_there() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    for cmd in ["screen", "attach"] {
        let out = env.mv(&[cmd, "w"]);
        out.code(1);
        assert!(out.stderr.contains("not running"), "{cmd}: {out:?}");
    }
    let out = env.mv(&["logs", "w"]);
    out.code(1);
    assert!(out.stderr.contains("no pane log"), "{out:?}");
    for cmd in ["screen", "logs", "attach"] {
        let out = env.mv(&[cmd, "ghost"]);
        out.code(1);
        assert!(out.stderr.contains("no peer named ghost"), "{cmd}: {out:?}");
    }
}

#[test]
fn logs_tail_the_pane_log_and_its_rotation() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    let panes = env.root().join("logs/panes");
    let mut big = String::new();
    for i in 0..20_000 {
        big.push_str(&format!("line {i}\n"));
    }
    fs::write(panes.join("w.log.1"), "old-1\nold-2\n").unwrap();
    fs::write(panes.join("w.log"), &big).unwrap();
    let out = env.mv(&["logs", "w", "--lines", "2"]);
    assert_eq!(out.ok().stdout, "line 19998\nline 19999\n");
    let out = env.mv(&["logs", "w"]);
    assert_eq!(out.ok().stdout.lines().count(), 100, "the default is 100 lines");

    fs::write(panes.join("w.log"), "new-1\n").unwrap();
    let out = env.mv(&["logs", "w", "--lines", "3"]);
    assert_eq!(out.ok().stdout, "old-1\nold-2\nnew-1\n", "continues into w.log.1");
    let j = env.mv(&["logs", "w", "--json", "--lines", "2"]).ok().json();
    assert_eq!(j["lines"], serde_json::json!(["old-2", "new-1"]));
}

#[test]
fn logs_follow_survives_rotation_and_truncation() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    let log = env.root().join("logs/panes/w.log");
    fs::write(&log, "before\n").unwrap();
    let mut f = Follow::start(&env, &["logs", "w", "--follow", "--lines", "1"]);
    assert!(wait_until(Duration::from_secs(10), || f.text() == "before\n"), "{:?}", f.text());

    let append = |s: &str| {
        fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(s.as_bytes()).unwrap()
    };
    append("grown\n");
    assert!(
        wait_until(Duration::from_secs(10), || f.text().ends_with("grown\n")),
        "{:?}",
        f.text()
    );

    append("last-before-rotation\n");
    fs::rename(&log, env.root().join("logs/panes/w.log.1")).unwrap();
    fs::write(&log, "after-rotation\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || f.text().ends_with("after-rotation\n")),
        "{:?}",
        f.text()
    );
    assert_eq!(f.text(), "before\ngrown\nlast-before-rotation\nafter-rotation\n");

    // Truncated in place and written again, shorter than before: the
    // follower sees the shrink whenever it polls and starts over at 0.
    fs::write(&log, "cut\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || f.text().ends_with("rotation\ncut\n")),
        "{:?}",
        f.text()
    );
}

#[test]
fn logs_show_pane_output() {
    let env = Env::new();
    env.mv(&[
        "add",
        "w",
        "--restart",
        "never",
        "--",
        "sh",
        "-c",
        "echo hello-from-pane; exec sleep 1000",
    ])
    .ok();
    env.mv(&["launch", "w"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || env
            .mv(&["logs", "w"])
            .stdout
            .contains("hello-from-pane")),
        "{:?}",
        env.mv(&["logs", "w"])
    );
}

#[test]
fn screen_of_a_dead_pane_shows_its_last_output() {
    let env = Env::new();
    env.mv(&[
        "add",
        "w",
        "--restart",
        "never",
        "--",
        "sh",
        "-c",
        "echo last-words; read x; exit 3",
    ])
    .ok();
    env.mv(&["launch", "w"]).ok();
    assert!(wait_until(Duration::from_secs(10), || env
        .mv(&["screen", "w"])
        .stdout
        .contains("last-words")));
    env.tmux("w", &["send-keys", "-t", "=w:", "x", "Enter"]).ok();
    assert!(wait_until(Duration::from_secs(10), || {
        let j = env.mv(&["status", "w", "--json"]).ok().json();
        j[0]["state"] == "exited"
    }));
    let out = env.mv(&["screen", "w"]);
    assert!(out.ok().stdout.contains("last-words"), "{out:?}");
}

#[test]
fn logs_follow_ends_when_its_reader_goes_away() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    let log = env.root().join("logs/panes/w.log");
    fs::write(&log, "first\n").unwrap();
    let mut child = env
        .command(&["logs", "w", "--follow"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    assert_eq!(&buf, b"first\n");
    drop(stdout);
    let mut w = fs::OpenOptions::new().append(true).open(&log).unwrap();
    let exited = wait_until(Duration::from_secs(10), || {
        // Keep writing: the follower notices the closed pipe on its next write.
        w.write_all(b"more\n").unwrap();
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(exited, "logs --follow kept running after its reader went away");
    assert!(status.success(), "a closed pipe is not an error: {status:?}");
}

/// Issue 10, item 13: `screen` on an ephemeral peer suggested `muxvisor
/// launch`, which refuses ephemeral peers.
#[test]
fn advice_for_an_ephemeral_peer_without_a_worker_is_advice_that_works() {
    let env = Env::new();
    env.mv(&["add", "e", "--ephemeral", "--", "sh", "-c", "echo {task}"]).ok();
    for cmd in ["screen", "attach"] {
        let out = env.mv(&[cmd, "e"]);
        out.code(1);
        assert!(!out.stderr.contains("muxvisor launch"), "{cmd}: {out:?}");
        assert!(out.stderr.contains("muxvisor send e"), "{cmd}: {out:?}");
        assert!(out.stderr.contains("muxvisor logs e"), "{cmd}: {out:?}");
    }
    // The advice given does what it says.
    let out = env.mv(&["launch", "e"]);
    out.code(1);
    env.mv(&["send", "e", "hi", "--no-kick"]).ok();
    env.mv(&["queue", "e", "list"]).ok();
}

/// Issue 10, item 7: `logs` passed a program's terminal escapes (OSC 52
/// clipboard writes, title changes) straight to the user's terminal.
#[test]
fn logs_strip_terminal_escapes_unless_raw_also_when_following() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    let log = env.root().join("logs/panes/w.log");
    let hostile: &[u8] = b"\x1b]0;owned title\x07\x1b]52;c;c2VjcmV0\x1b\\\x1b[31mred\x1b[0m\r\n\
        \x1bP1$qm\x1b\\\x1b_apc\x1b\\\x9b2Jplain \xc2\x9d0;t\xc2\x9cend\r\n";
    fs::write(&log, hostile).unwrap();
    let out = env.mv(&["logs", "w"]);
    assert_eq!(out.ok().stdout, "red\nplain end\n");
    let j = env.mv(&["logs", "w", "--json"]).ok().json();
    assert_eq!(j["lines"], serde_json::json!(["red", "plain end"]));

    let mut c = env.command(&["logs", "w", "--raw"]);
    c.stdout(std::process::Stdio::piped());
    let raw = c.output().unwrap();
    assert_eq!(raw.stdout, hostile, "--raw prints the bytes as written");

    // Following: a sequence split across two reads never leaks.
    let append = |b: &[u8]| fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b);
    append(b"start\n").unwrap();
    let mut f = Follow::start(&env, &["logs", "w", "--follow", "--lines", "1"]);
    // Once the backlog is out, the follower reads from where it ended.
    assert!(wait_until(Duration::from_secs(10), || f.text() == "start\n"), "{:?}", f.text());
    append(b"A\x1b]52;c;c2Vj").unwrap();
    assert!(wait_until(Duration::from_secs(10), || f.text().contains('A')), "{:?}", f.text());
    append(b"cmV0\x07B\x1b[3").unwrap();
    assert!(wait_until(Duration::from_secs(10), || f.text().contains('B')), "{:?}", f.text());
    append(b"1mC\n").unwrap();
    assert!(wait_until(Duration::from_secs(10), || f.text().ends_with('\n')), "{:?}", f.text());
    assert_eq!(f.text(), "start\nABC\n");
}
