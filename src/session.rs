//! Launch and deliberate stop of one identity's private tmux server.
//!
//! Both run under the identity's lock (`run/<id>.lock`), so two launches of
//! the same identity start one server, and a stop never interleaves with a
//! launch.
//!
//! **Launch** (race-free): refuse if the program already runs; check that the
//! program exists and is executable (tmux would give a silent dead pane);
//! pre-clean whatever is left on the socket (a stale socket, a dead pane, a
//! hung server) with the stop intent written first so its canary and hook
//! stay silent; then ONE tmux invocation sets `remain-on-exit`, the
//! `pane-died` hook, creates the session, starts `pipe-pane` and reports the
//! pids; then the canary is ensured (never blocking the launch), the state
//! written and `ev=launch` appended. `launch` does not wait for the program
//! to settle, because ephemeral workers need millisecond starts; the CLI
//! calls [`settle`] for that.
//!
//! **Stop**: intent on disk, canary woken, SIGTERM to the pane's process
//! group, up to `grace` for it to vanish, then SIGKILL; `kill-server`, socket
//! removed, `ev=stop`. The intent file stays until the next launch so that a
//! late hook or canary wake-up still sees it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::canary;
use crate::fsutil;
use crate::logfmt::Event;
use crate::observe::{self, Observed, Seen};
use crate::output;
use crate::paths::Root;
use crate::peer::{Identity, PeerSpec};
use crate::state;
use crate::tmux::launch::{self as tl, LaunchPlan};
use crate::tmux::{Tmux, TmuxError};

/// How long launch/stop wait for another muxvisor holding the identity lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(20);

/// The deadline for observations made by launch and stop.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a launch runs in the pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The peer's own program (a persistent peer).
    Program,
    /// `muxvisor _run <id>`, the runner that feeds an ephemeral peer's tasks
    /// to its program one at a time (see `runner`).
    Runner,
}

/// What `launch` did.
#[derive(Clone, Debug)]
pub struct Launched {
    pub started: bool,
    pub already: bool,
    pub pane_pid: Option<i32>,
}

/// How a stop ended.
#[derive(Clone, Debug)]
pub struct Stopped {
    /// Nothing was running.
    pub was_running: bool,
    /// `term` or `kill`.
    pub how: &'static str,
    pub grace_ms: u128,
}

/// How a freshly launched program died while [`settle`] watched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Death {
    pub status: Option<i32>,
    pub signal: Option<String>,
    /// What was seen (a dead pane, or the session/server gone).
    pub seen: Seen,
}

impl Death {
    /// `exit status 3`, `signal 15`, or what vanished.
    pub fn describe(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(g)) => format!("signal {g}"),
            _ => match self.seen {
                Seen::SessionGone => "its session vanished".into(),
                Seen::NoSocket | Seen::StaleSocket => "its tmux server died".into(),
                _ => "unknown status".into(),
            },
        }
    }
}

/// The environment given to the pane with `new-session -e`: the spec's,
/// plus `MUXVISOR_IDENTITY`. Pure.
pub fn launch_env(spec: &PeerSpec) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push(("MUXVISOR_IDENTITY".into(), spec.identity.to_string()));
    env
}

/// The PATH the peer's program will get: its spec's, else ours.
pub fn peer_path(spec: &PeerSpec) -> String {
    spec.env
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/bin:/bin".into())
}

/// Refuse to start `spec`'s program when its working directory is missing
/// or the program cannot be executed (tmux would give a silent dead pane).
pub fn check_startable(spec: &PeerSpec) -> Result<()> {
    let id = &spec.identity;
    if !spec.cwd.is_dir() {
        bail!(
            "cannot launch {id}: its working directory {} is not a directory; create it or \
             change it with `muxvisor add {id} --cwd DIR -- ...`",
            spec.cwd.display()
        );
    }
    let program = spec.command.first().context("peer has no program")?;
    check_program(program, &spec.cwd, Some(&peer_path(spec)))
        .with_context(|| format!("cannot launch {id}"))?;
    Ok(())
}

/// Check that `program` can be executed by the pane: an absolute path (or one
/// relative to `cwd`), or a name on `path`. Returns the resolved path.
pub fn check_program(program: &str, cwd: &Path, path: Option<&str>) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let resolved = if program.contains('/') {
        let p = cwd.join(program);
        if !p.exists() {
            bail!("program {program} does not exist (looked in {})", cwd.display());
        }
        p
    } else {
        let search = path.map(str::to_string).unwrap_or_default();
        which::which_in(program, Some(&search), cwd).map_err(|_| {
            anyhow::anyhow!(
                "program {program:?} was not found on the PATH the peer will get ({search}); \
                 give an absolute path, or set the peer's PATH with \
                 `muxvisor add ID --env PATH=... -- PROGRAM...` (--env replaces all of its env)"
            )
        })?
    };
    let md = std::fs::metadata(&resolved)
        .with_context(|| format!("checking program {}", resolved.display()))?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        bail!("program {} is not an executable file", resolved.display());
    }
    Ok(resolved)
}

/// True when `pid` is a tmux process serving `socket` (guards against pid
/// reuse before we SIGKILL a recorded server pid). Linux only: elsewhere we
/// cannot tell, and say no.
pub fn is_tmux_server(pid: i32, socket: &Path) -> bool {
    if pid <= 1 {
        return false;
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.starts_with("tmux") {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let sock = socket.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|w| w == sock)
}

/// Start `spec`'s session running `start`. Takes the identity lock itself.
pub fn launch(root: &Root, spec: &PeerSpec, start: Start) -> Result<Launched> {
    let id = &spec.identity;
    let _lock = fsutil::lock_within(&root.id_lock(id), LOCK_WAIT, &format!("launch {id}"))?;
    // A launch that could not record itself would run unaccounted for:
    // refuse an unreadable state before anything starts.
    state::load(root, id).with_context(|| format!("cannot launch {id}; nothing was started"))?;
    let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
    if obs.is_alive() {
        return Ok(Launched { started: false, already: true, pane_pid: obs.pane_pid });
    }
    let exe = std::env::current_exe().context("finding the muxvisor binary for the exit hook")?;
    let (argv, cwd) = match start {
        Start::Program => {
            check_startable(spec)?;
            (spec.command.clone(), spec.cwd.clone())
        }
        // The runner checks the program before each task (a task that
        // cannot start uses up an attempt); its own cwd only matters to a
        // person who attaches.
        Start::Runner => {
            let argv = vec![
                exe.to_string_lossy().into_owned(),
                "--root".into(),
                root.dir().to_string_lossy().into_owned(),
                "_run".into(),
                id.to_string(),
            ];
            let cwd = if spec.cwd.is_dir() { spec.cwd.clone() } else { PathBuf::from("/") };
            (argv, cwd)
        }
    };

    teardown_leftovers(root, id, &obs)?;
    // A canary of the previous incarnation may still be about to read the
    // intent (a quick stop-then-launch): let it go before removing it.
    if root.stop_intent(id).exists() {
        wait_canary_gone(root, id);
    }
    fsutil::remove_if_exists(&root.stop_intent(id))?;

    let plan = LaunchPlan {
        id,
        exe: &exe,
        root: root.dir(),
        cwd: &cwd,
        env: launch_env(spec),
        argv,
        has_remain_format: tl::version().is_some_and(|v| v >= (3, 3)),
    };
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let out = match tmux.run(&tl::launch_cmd(&plan)) {
        Ok(out) => out,
        Err(e) => {
            // Do not leave a half-made server (no session, exit-empty off)
            // behind; the intent keeps its hook and canary quiet.
            write_intent(root, id, "failed-launch")?;
            let quick = tmux.clone().with_timeout(Duration::from_secs(1));
            let _ = tl::kill_server(&quick);
            let _ = fsutil::remove_if_exists(&root.socket(id));
            return Err(e.into_anyhow().context(format!("starting the tmux server for {id}")));
        }
    };
    let (server_pid, pane_pid) = tl::parse_pids(&out.stdout);
    let _ = fsutil::chmod_600(&root.socket(id));

    if let Err(e) = canary::ensure(root, id) {
        output::warn(format!("{id}: could not start the server-death canary: {e:#}"));
    }
    state::update(root, id, |st| {
        st.launched_at = Some(Utc::now());
        st.pane_pid = pane_pid;
        st.server_pid = server_pid;
        st.stopped = false;
        st.stop_reason = None;
        st.failed = false;
        st.current_task = None;
    })?;
    let mut ev = Event::new("launch")
        .id(id)
        .kv("pid", pane_pid.map(|p| p.to_string()).unwrap_or_default())
        .kv("policy", spec.policy);
    if start == Start::Runner {
        ev = ev.kv("runner", 1);
    }
    ev.append_to(&root.lifecycle_log())?;
    Ok(Launched { started: true, already: false, pane_pid })
}

/// Watch a freshly launched pane for `dur` (polling every ~50 ms); the
/// program's death if it died in that time.
pub fn settle(root: &Root, id: &Identity, dur: Duration) -> Result<Option<Death>> {
    let deadline = Instant::now() + dur;
    loop {
        let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
        match &obs.seen {
            Seen::Alive | Seen::Hung => {}
            Seen::PaneDead { status, signal } => {
                return Ok(Some(Death {
                    status: *status,
                    signal: signal.clone(),
                    seen: obs.seen.clone(),
                }));
            }
            other => return Ok(Some(Death { status: None, signal: None, seen: other.clone() })),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Deliberately stop `id`: intent, canary, SIGTERM, grace, kill, teardown.
/// `reason` goes to the state (`stop`, `reaped-idle`, ...). Takes the
/// identity lock itself.
pub fn stop(root: &Root, id: &Identity, grace: Duration, reason: &str) -> Result<Stopped> {
    let _lock = fsutil::lock_within(&root.id_lock(id), LOCK_WAIT + grace, &format!("stop {id}"))?;
    let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
    let grace_ms = grace.as_millis();
    let hung = obs.seen == Seen::Hung;
    if !obs.is_alive() && !hung {
        teardown_leftovers(root, id, &obs)?;
        state::update(root, id, |st| {
            st.stopped = true;
            st.stop_reason = Some(reason.to_string());
        })?;
        return Ok(Stopped { was_running: false, how: "term", grace_ms });
    }
    write_intent(root, id, reason)?;
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let quick = tmux.clone().with_timeout(Duration::from_secs(1));
    let (pane_pid, server_pid) = if hung {
        // A stopped server cannot tell us its pids: use the recorded ones,
        // the pane's only while it still is that server's child.
        let st = state::load(root, id).unwrap_or_default();
        let pane = st.pane_pid.filter(|p| st.server_pid.is_some_and(|s| is_child_of(*p, s)));
        (pane, st.server_pid)
    } else {
        let _ = tl::signal_canary(&quick, id);
        // No pane-died hook for a deliberate stop: tmux runs hooks
        // asynchronously (`run-shell -b`), and one that ran late, after the
        // next launch removed the intent, would record this stop as a death.
        let _ = tl::unhook_pane_died(&quick);
        (obs.pane_pid, obs.server_pid)
    };
    let how = match pane_pid {
        Some(pgid) if pgid > 1 => terminate_group(pgid, grace, server_pid),
        _ => "term",
    };
    kill_server_hard(root, id, &quick, server_pid);
    fsutil::remove_if_exists(&root.socket(id))?;
    state::update(root, id, |st| {
        st.stopped = true;
        st.stop_reason = Some(reason.to_string());
    })?;
    Event::new("stop")
        .id(id)
        .kv("how", how)
        .kv("grace_ms", grace_ms)
        .kv("reason", reason)
        .append_to(&root.lifecycle_log())?;
    Ok(Stopped { was_running: true, how, grace_ms })
}

/// SIGTERM the group, wait up to `grace` for it to vanish, else SIGKILL.
/// The server is nudged while we wait so that tmux < 3.6 reaps the leader.
fn terminate_group(pgid: i32, grace: Duration, server_pid: Option<i32>) -> &'static str {
    let pg = Pid::from_raw(pgid);
    if killpg(pg, Signal::SIGTERM) == Err(Errno::ESRCH) {
        return "term";
    }
    let gone = |limit: Duration| {
        let deadline = Instant::now() + limit;
        let mut n = 0u32;
        loop {
            if !group_alive(pgid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            n += 1;
            if n.is_multiple_of(10)
                && let Some(s) = server_pid
            {
                observe::nudge(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    if gone(grace) {
        return "term";
    }
    let _ = killpg(pg, Signal::SIGKILL);
    gone(Duration::from_secs(2));
    "kill"
}

/// True while some non-zombie process is in group `pgid`. A zombie does
/// not count: where no init reaps orphans (containers), an orphaned child
/// of the pane stays a zombie forever, and it holds nothing. Linux reads
/// `/proc` (only during a stop); elsewhere the group's existence is used.
fn group_alive(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None) == Err(Errno::ESRCH) {
        return false;
    }
    let Ok(rd) = std::fs::read_dir("/proc") else { return true };
    for e in rd.flatten() {
        if !e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        if let Some(st) = parse_stat(&stat)
            && st.pgrp == pgid
            && !st.is_zombie()
        {
            return true;
        }
    }
    false
}

/// True when `pid` is a live child of `parent` and leads its own group.
fn is_child_of(pid: i32, parent: i32) -> bool {
    proc_stat(pid).is_some_and(|st| !st.is_zombie() && st.ppid == parent && st.pgrp == pid)
}

/// The fields of `/proc/<pid>/stat` that muxvisor uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
}

impl ProcStat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Parse a `/proc/<pid>/stat` line (the name may hold spaces and
/// parentheses, so parse after the last `)`). Pure.
pub fn parse_stat(stat: &str) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(ProcStat { state, ppid, pgrp })
}

/// `/proc/<pid>/stat` of a live or zombie process; `None` if it is gone
/// or this is not Linux.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Write the deliberate-teardown intent (the hook and the canary read it).
fn write_intent(root: &Root, id: &Identity, reason: &str) -> Result<()> {
    let line = format!("{} {reason} pid={}\n", Utc::now().to_rfc3339(), std::process::id());
    fsutil::atomic_write(&root.stop_intent(id), line.as_bytes())
        .with_context(|| format!("writing the stop intent of {id}"))
}

/// Remove whatever a previous incarnation left on the socket: a server with
/// a dead pane or no session, a hung server, a stale socket file. Silent:
/// the intent is written and the canary signalled first, and we wait for the
/// old canary to leave before returning, so it cannot mistake this for a
/// crash once the intent is removed.
fn teardown_leftovers(root: &Root, id: &Identity, obs: &Observed) -> Result<()> {
    let recorded = state::load(root, id).unwrap_or_default();
    let socket = root.socket(id);
    match obs.seen {
        Seen::NoSocket => {}
        Seen::StaleSocket => fsutil::remove_if_exists(&socket)?,
        _ => {
            write_intent(root, id, "pre-clean")?;
            let quick = Tmux::new(socket.clone())
                .map_err(TmuxError::into_anyhow)?
                .with_timeout(Duration::from_secs(1));
            if obs.seen != Seen::Hung {
                let _ = tl::signal_canary(&quick, id);
            }
            kill_server_hard(root, id, &quick, obs.server_pid.or(recorded.server_pid));
            fsutil::remove_if_exists(&socket)?;
            wait_canary_gone(root, id);
        }
    }
    if let Some(pgid) = obs.pane_pid.or(recorded.pane_pid) {
        kill_orphaned_group(pgid);
    }
    Ok(())
}

/// Kill what is left of a dead pane's program: a child that ignored the
/// SIGHUP of its closing terminal keeps the dead pane process's group alive
/// (and could finish a task that is about to be retried). Only a group
/// whose leader is gone (or a zombie) is touched: a pid is not reused while
/// a process group of that id still has members, so the members of such a
/// group can only be leftovers of our pane. True if a group was killed.
pub fn kill_orphaned_group(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    let leader_alive = kill(Pid::from_raw(pgid), None).is_ok()
        && !proc_stat(pgid).is_some_and(|st| st.is_zombie());
    if leader_alive || killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

/// A runner ends its own session once its queue is drained: the steps of a
/// deliberate stop (intent, no hook, canary told, state, `ev=stop`,
/// `kill-server`, socket removed), taken from inside the pane and without
/// signalling the pane's group, which is the caller. The caller must ignore
/// the SIGHUP that the server's exit sends it.
pub fn retire_self(root: &Root, id: &Identity, reason: &str) -> Result<()> {
    let _lock = fsutil::lock_within(&root.id_lock(id), LOCK_WAIT, &format!("retire {id}"))?;
    write_intent(root, id, reason)?;
    let quick = Tmux::new(root.socket(id))
        .map_err(TmuxError::into_anyhow)?
        .with_timeout(Duration::from_secs(1));
    let _ = tl::unhook_pane_died(&quick);
    let _ = tl::signal_canary(&quick, id);
    state::update(root, id, |st| {
        st.stopped = true;
        st.stop_reason = Some(reason.to_string());
    })?;
    Event::new("stop")
        .id(id)
        .kv("how", "exit")
        .kv("grace_ms", 0)
        .kv("reason", reason)
        .append_to(&root.lifecycle_log())?;
    let server = state::load(root, id).ok().and_then(|s| s.server_pid);
    kill_server_hard(root, id, &quick, server);
    fsutil::remove_if_exists(&root.socket(id))?;
    Ok(())
}

/// Wait (at most 2 s) for a canary woken by a deliberate teardown to see
/// the intent and exit; it wakes the instant its `wait-for` returns.
fn wait_canary_gone(root: &Root, id: &Identity) {
    let lock = root.canary_lock(id);
    let deadline = Instant::now() + Duration::from_secs(2);
    while fsutil::is_locked(&lock).unwrap_or(false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `kill-server`; if the server does not answer, SIGKILL its pid (after
/// checking it is still our tmux server) and wait for it to go.
fn kill_server_hard(root: &Root, id: &Identity, tmux: &Tmux, pid: Option<i32>) {
    match tl::kill_server(tmux) {
        Ok(()) | Err(TmuxError::NoServer { .. }) => {}
        Err(_) => {
            if let Some(p) = pid.filter(|p| is_tmux_server(*p, &root.socket(id))) {
                let pid = Pid::from_raw(p);
                let _ = kill(pid, Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(2);
                while kill(pid, None).is_ok() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            } else {
                output::warn(format!(
                    "{id}: tmux server did not answer kill-server and its pid is unknown or \
                     not tmux; remove it by hand if it lingers"
                ));
            }
        }
    }
    // kill-server returns before the server has exited; wait briefly so the
    // socket is really free for the next launch.
    if let Some(p) = pid {
        let pid = Pid::from_raw(p);
        let deadline = Instant::now() + Duration::from_secs(2);
        while kill(pid, None).is_ok()
            && is_tmux_server(p, &root.socket(id))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Policy;

    #[test]
    fn env_has_the_identity() {
        let mut spec = PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Ephemeral,
            vec!["x".into()],
            "/".into(),
        );
        spec.env.insert("A".into(), "1".into());
        let env = launch_env(&spec);
        assert!(env.contains(&("A".into(), "1".into())));
        assert!(env.contains(&("MUXVISOR_IDENTITY".into(), "w".into())));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn program_checks() {
        let cwd = Path::new("/");
        assert!(check_program("sh", cwd, Some("/usr/bin:/bin")).is_ok());
        assert!(check_program("/bin/sh", cwd, None).is_ok());
        let e = check_program("no-such-prog-x", cwd, Some("/usr/bin")).unwrap_err();
        assert!(format!("{e:#}").contains("not found on the PATH"), "{e:#}");
        assert!(check_program("/etc/passwd", cwd, None).is_err());
        assert!(check_program("/no/such", cwd, None).is_err());
    }

    #[test]
    fn stat_lines() {
        let st = |state, ppid, pgrp| Some(ProcStat { state, ppid, pgrp });
        assert_eq!(parse_stat("12 (a) b) S 1 77 77 0"), st('S', 1, 77));
        assert_eq!(parse_stat("12 (sleep) Z 1 5 5"), st('Z', 1, 5));
        assert!(parse_stat("12 (sleep) Z 1 5 5").unwrap().is_zombie());
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn deaths_describe_themselves() {
        let d = Death { status: Some(3), signal: None, seen: Seen::Alive };
        assert_eq!(d.describe(), "exit status 3");
        let d = Death { status: None, signal: Some("15".into()), seen: Seen::Alive };
        assert_eq!(d.describe(), "signal 15");
    }
}
