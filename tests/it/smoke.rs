//! The binary starts, parses, and refuses bad input the documented way.

use crate::fixture::*;

#[test]
fn help_and_version() {
    let env = Env::new();
    env.mv(&["--help"]).ok();
    let v = env.mv(&["--version"]);
    assert!(v.stdout.starts_with("muxvisor "), "{v:?}");
}

#[test]
fn usage_error_is_exit_2() {
    let env = Env::new();
    env.mv(&["no-such-command"]).code(2);
    env.mv(&["supervise", "--interval", "5x"]).code(2);
}

/// Exit 69 when tmux is needed and cannot be found, with a message that
/// says what to do. A peer with no socket needs no tmux to be "stopped".
#[test]
fn missing_tmux_is_exit_69() {
    let env = Env::new();
    env.mv(&["add", "t1", "--", "sleep", "100"]).ok();
    let no_tmux = |args: &[&str]| {
        let mut c = env.command(args);
        c.env("MUXVISOR_TMUX", "/nonexistent/tmux");
        run_deadline(c, None, CMD_DEADLINE)
    };
    let out = no_tmux(&["launch", "t1"]);
    out.code(69);
    // The explicit override is named, not "not found on PATH" (issue 10, item 9).
    assert!(out.stderr.contains("MUXVISOR_TMUX=/nonexistent/tmux cannot be used"), "{out:?}");
    let out = no_tmux(&["status", "t1"]);
    out.ok();
    assert!(out.stdout.contains("stopped"), "{out:?}");
}

/// Regression (issue 10, item 9): `supervise --once` exited 0 with tmux
/// missing while `status` exited 69. Both forms of supervise now exit 69.
#[test]
fn supervise_without_tmux_is_exit_69() {
    let env = Env::new();
    env.mv(&["add", "t2", "--", "sleep", "100"]).ok();
    for args in [&["supervise", "--once"][..], &["--json", "supervise", "--once"], &["supervise"]] {
        let mut c = env.command(args);
        c.env("MUXVISOR_TMUX", "/nonexistent/tmux");
        let out = run_deadline(c, None, CMD_DEADLINE);
        out.code(69);
        assert!(out.stderr.contains("MUXVISOR_TMUX=/nonexistent/tmux"), "{args:?}: {out:?}");
    }
    assert!(!env.read("logs/lifecycle.log").contains(" ev=tick "), "no tick ran");
}

/// A root whose socket paths would not fit sun_path is refused up front,
/// naming the limit and suggesting a shorter root, and nothing is created.
#[test]
fn root_too_long_for_sockets_is_refused() {
    let env = Env::new();
    let long = env.scratch().join("d".repeat(90));
    let out = run_deadline(
        {
            let mut c = std::process::Command::new(BIN);
            c.arg("--root").arg(&long).arg("status");
            c
        },
        None,
        CMD_DEADLINE,
    );
    out.code(1);
    assert!(out.stderr.contains("limit of") && out.stderr.contains("shorter root"), "{out:?}");
    assert!(!long.exists(), "nothing is created under a refused root");
}

/// A caller that starts muxvisor with stdin and stdout closed (`<&- >&-`,
/// as some service managers do): descriptors 0 and 1 are opened on
/// /dev/null before any file is, so no file muxvisor opens takes their
/// number and receives what it prints. The binary skips std's runtime
/// start-up, which did this; `ground::start` does it now. Watched on a
/// long-running command (`events --follow`) through /proc, once it has
/// opened the log it follows.
#[cfg(target_os = "linux")]
#[test]
fn a_closed_stdin_or_stdout_is_reopened_on_dev_null() {
    use std::os::unix::process::CommandExt;
    use std::time::Duration;

    let env = Env::new();
    env.mv(&["add", "w", "--ephemeral", "--", "true"]).ok();
    env.mv(&["send", "--no-kick", "w", "x"]).ok();
    let mut c = env.command(&["events", "--follow"]);
    c.stderr(std::process::Stdio::null());
    // SAFETY: close(2) is async-signal-safe; nothing else runs in the child.
    unsafe {
        c.pre_exec(|| {
            libc::close(0);
            libc::close(1);
            Ok(())
        });
    }
    let mut child = c.spawn().expect("spawn events --follow");
    let fds = format!("/proc/{}/fd", child.id());
    let target = |n: &str| std::fs::read_link(format!("{fds}/{n}")).ok();
    let log = env.root().join("logs/lifecycle.log");
    let following = wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&fds)
            .map(|d| d.flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == log)))
            .unwrap_or(false)
    });
    let (stdin, stdout) = (target("0"), target("1"));
    // SAFETY: our own child, by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(following, "events --follow never opened {}", log.display());
    let null = Some(std::path::PathBuf::from("/dev/null"));
    assert_eq!((stdin, stdout), (null.clone(), null));
}

/// A reader that went away (`muxvisor status | head -1` once head has
/// exited) ends the listing quietly, exit 0, and is not a death by
/// SIGPIPE: `ground::start` ignores SIGPIPE, as std's runtime start-up
/// did, so the write fails with EPIPE and `main` treats that as success.
#[test]
fn a_closed_pipe_on_stdout_ends_the_output_with_exit_0_not_sigpipe() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    env.mv(&["add", "w", "--ephemeral", "--", "true"]).ok();
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors, each owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let mut c = env.command(&["status"]);
    c.stdin(std::process::Stdio::null()).stdout(write).stderr(std::process::Stdio::null());
    let mut child = c.spawn().expect("run status");
    let mut status = None;
    let ended = wait_until(CMD_DEADLINE, || {
        status = child.try_wait().expect("wait for status");
        status.is_some()
    });
    if !ended {
        // SAFETY: our own child, by pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
    }
    let status = status.expect("status did not end within its deadline");
    assert_eq!(status.signal(), None, "killed by a signal: {status:?}");
    assert_eq!(status.code(), Some(0), "{status:?}");
}
