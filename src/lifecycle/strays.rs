//! What a peer's program leaves behind when its tmux server goes: processes
//! that still carry the peer's identity in their environment. Agent CLIs
//! make them: Codex CLI 0.171 starts a background `codex app-server`
//! daemon (two processes, each in a session of its own) that outlives its
//! TUI, its pane and `kill-server`; Gemini CLI 0.61 ignores SIGHUP, so a
//! server killed any way but a stop leaves it running without a terminal.
//! Killing the pane's process group reaches neither.
//!
//! Every pane gets `MUXVISOR_IDENTITY` and `MUXVISOR_ROOT` (`session::
//! launch_env`), and a child inherits them, detached or not: a process
//! whose environment holds both, once the peer's server is gone, is a
//! stray of that peer. A stop ends them (SIGTERM, then SIGKILL after the
//! grace), so does the launch of the next incarnation of a program (before
//! it starts; a runner's start, the hot path of `send`, skips the scan: its
//! programs die with it), and `clean` names and ends them. Never touched: muxvisor's own
//! processes (a courier or canary that a hook started from inside the
//! pane inherits the identity too, and so do the shells tmux runs for
//! muxvisor's pane log and exit hook: any argv that names muxvisor), tmux
//! servers and clients (a peer's server runs with the peer's environment),
//! the notification hook and what it starts (it carries the identity of
//! the event it reports, and `MUXVISOR_EVENT`, a name a peer's program can
//! never be given: a `launch` right after an `add` ended the hook still
//! busy with the `add` line), and the process that asks, with its
//! ancestors (`stop` run from inside the pane).
//!
//! Finding them is a scan of every process's environment: a stop, a
//! program's launch and `clean` pay it, never a tick's routine look or a
//! runner's start.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::ground::paths::Root;
use crate::ground::proc;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;

/// One process left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stray {
    pub pid: i32,
    /// Its argv, joined by spaces (for people; lossy).
    pub argv: String,
}

/// True for an argv that is muxvisor's own or tmux's: muxvisor itself, a
/// shell tmux runs for one of muxvisor's commands (the pane log, the exit
/// hook: `sh -c '... muxvisor ... _pane-log ID'`), or a hook calling
/// `muxvisor mark`; a tmux server or client. Since a peer's tmux server runs
/// with the peer's own environment, its helpers carry the identity too, and
/// they end with the server on their own. Pure.
fn exempt(argv: &[Vec<u8>]) -> bool {
    let Some(first) = argv.first() else { return true };
    let name = Path::new(std::ffi::OsStr::new(&*String::from_utf8_lossy(first)))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with("tmux") || argv.iter().any(|w| String::from_utf8_lossy(w).contains("muxvisor"))
}

/// Our own pid and our ancestors'.
fn lineage() -> Vec<i32> {
    let mut out = vec![std::process::id() as i32];
    let mut pid = out[0];
    for _ in 0..64 {
        match proc::info(pid).map(|p| p.ppid) {
            Some(pp) if pp > 1 && !out.contains(&pp) => {
                out.push(pp);
                pid = pp;
            }
            _ => break,
        }
    }
    out
}

/// The processes that carry `id`'s identity under `root`. Call it only
/// once the peer's server is gone: its live program carries it too.
pub fn find(root: &Root, id: &Identity) -> Vec<Stray> {
    let root_dir = root.dir().to_string_lossy();
    let pairs: [(&str, &[u8]); 2] =
        [("MUXVISOR_IDENTITY", id.as_str().as_bytes()), ("MUXVISOR_ROOT", root_dir.as_bytes())];
    let spare = lineage();
    proc::find_by_env(&pairs)
        .into_iter()
        .filter(|p| !spare.contains(p))
        .filter_map(|pid| {
            let argv = proc::argv(pid)?;
            if exempt(&argv) || messenger(pid) || !proc::alive(pid) {
                return None;
            }
            let argv: Vec<String> =
                argv.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
            Some(Stray { pid, argv: argv.join(" ") })
        })
        .collect()
}

/// End `id`'s strays: SIGTERM, then SIGKILL those left after `grace`.
/// Logs `ev=strays-ended` once with how many and what (if any). Returns
/// them.
pub fn end(root: &Root, id: &Identity, grace: Duration, when: &str) -> Vec<Stray> {
    let strays = find(root, id);
    if strays.is_empty() {
        return strays;
    }
    for s in &strays {
        let _ = kill(Pid::from_raw(s.pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while strays.iter().any(|s| proc::alive(s.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = 0;
    for s in strays.iter().filter(|s| proc::alive(s.pid)) {
        // Still the same process? Its environment still says so.
        if find_one(root, id, s.pid) {
            let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
            killed += 1;
        }
    }
    let what: Vec<String> = strays.iter().map(|s| format!("{}:{}", s.pid, s.argv)).collect();
    let _ = Event::new("strays-ended")
        .id(id)
        .kv("when", when)
        .kv("count", strays.len())
        .kv("killed", killed)
        .kv("pids", what.join(" | "))
        .append_to(&root.lifecycle_log());
    strays
}

/// True for the notification hook or anything it started: its environment
/// holds `MUXVISOR_EVENT` (reserved: never in a peer's environment).
fn messenger(pid: i32) -> bool {
    proc::environ(pid).is_some_and(|e| e.iter().any(|w| w.starts_with(b"MUXVISOR_EVENT=")))
}

fn find_one(root: &Root, id: &Identity, pid: i32) -> bool {
    let root_dir = root.dir().to_string_lossy();
    proc::environ(pid).is_some_and(|e| {
        proc::env_has(
            &e,
            &[
                ("MUXVISOR_IDENTITY", id.as_str().as_bytes()),
                ("MUXVISOR_ROOT", root_dir.as_bytes()),
            ],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muxvisor_and_tmux_are_never_strays() {
        let w = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(exempt(&w(&["/usr/local/bin/muxvisor", "_courier", "a"])));
        assert!(exempt(&w(&[
            "sh",
            "-c",
            "'/usr/bin/env' '/x/muxvisor' '--root' '/r' '_pane-log' 'a'"
        ])));
        assert!(exempt(&w(&["tmux", "-S", "/r/run/b.sock"])));
        assert!(exempt(&w(&["/usr/bin/tmux: server"])) || exempt(&w(&["tmux: server"])));
        assert!(exempt(&[]));
        assert!(!exempt(&w(&["/opt/codex/bin/codex", "app-server"])));
        assert!(!exempt(&w(&["node", "/x/gemini"])));
    }

    #[test]
    fn we_and_our_parent_are_in_our_lineage() {
        let l = lineage();
        assert_eq!(l[0], std::process::id() as i32);
        assert!(l.contains(&(std::os::unix::process::parent_id() as i32)));
    }
}
