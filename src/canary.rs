//! The server-death canary: one small process per live tmux server, outside
//! it, blocked in `tmux wait-for muxvisor-canary-<id>`. tmux has no hook for
//! its own death, but a waiting client returns within milliseconds when the
//! server is SIGKILLed or crashes, so this is how a dirty server death gets a
//! recorded cause (`ev=server-exit` plus a forensics snapshot).
//!
//! Rules it keeps:
//! - One canary per identity: it holds `run/<id>.canary.lock` (flock) for its
//!   whole life and writes its pid there; a second one gives up at once.
//!   [`ensure`] is therefore idempotent and cheap (one lock probe, no scan of
//!   the process table), and [`is_watching`] is a lock probe.
//! - Silent on purpose: deliberate teardowns write `run/<id>.stopping` before
//!   signalling the channel; the canary re-checks it after every wake-up,
//!   because `wait-for` also returns 0 on a clean server exit.
//! - Fires at most once, then exits. It never restarts or kills anything.
//! - While it waits it sends the server `SIGCHLD` about once a second: tmux
//!   before 3.6 can leave a dead pane unreaped (no status, no `pane-died`)
//!   until some child exits, and the nudge bounds that to about a second.

use std::fmt::Write as _;
use std::io::{Read, Seek, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::Ctx;
use crate::cli::CanaryArgs;
use crate::fsutil::{self, LockGuard};
use crate::logfmt::Event;
use crate::observe;
use crate::paths::Root;
use crate::peer::Identity;
use crate::state;
use crate::tmux::launch::canary_channel;
use crate::tmux::{Cmd, Tmux, TmuxError, wait_deadline};

/// `_canary <id> [--foreground]`.
pub fn run(ctx: &Ctx, args: CanaryArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    if !args.foreground && !detach()? {
        return Ok(ExitCode::SUCCESS);
    }
    watch(&ctx.root, &id)?;
    Ok(ExitCode::SUCCESS)
}

/// True when a canary watches `id`'s server right now.
pub fn is_watching(root: &Root, id: &Identity) -> bool {
    fsutil::is_locked(&root.canary_lock(id)).unwrap_or(false)
}

/// The live canary's pid, as it wrote it into its lock file.
pub fn pid(root: &Root, id: &Identity) -> Option<i32> {
    if !is_watching(root, id) {
        return None;
    }
    let b = fsutil::read_if_exists(&root.canary_lock(id)).ok()??;
    String::from_utf8_lossy(&b).trim().parse().ok()
}

/// Make sure a canary watches `id`'s server; `Ok(true)` if one was spawned.
pub fn ensure(root: &Root, id: &Identity) -> Result<bool> {
    if is_watching(root, id) {
        return Ok(false);
    }
    let exe = std::env::current_exe().context("finding the muxvisor binary for the canary")?;
    let child = Command::new(&exe)
        .arg("--root")
        .arg(root.dir())
        .arg("_canary")
        .arg(id.as_str())
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawning the canary of {id}"))?;
    // The parent forks and exits at once; the canary lives on detached.
    match wait_deadline(child, Duration::from_secs(5)) {
        Ok(Some(st)) if st.success() => {
            // Wait (briefly, bounded) until it holds its lock, so that a
            // teardown right after this launch finds it watching and waits
            // for it to see the intent, instead of racing its start-up.
            let deadline = Instant::now() + Duration::from_millis(500);
            while !is_watching(root, id) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(true)
        }
        Ok(Some(st)) => anyhow::bail!("the canary of {id} failed to start ({st})"),
        Ok(None) => anyhow::bail!("the canary of {id} did not detach within 5 s"),
        Err(e) => Err(e).with_context(|| format!("waiting for the canary of {id} to detach")),
    }
}

/// Fork; the parent returns `false` (and exits), the child becomes a session
/// leader with stdio on /dev/null and returns `true`.
fn detach() -> Result<bool> {
    use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid};
    // SAFETY: called before this process starts any thread.
    match unsafe { fork() }.context("fork for the canary")? {
        ForkResult::Parent { .. } => Ok(false),
        ForkResult::Child => {
            let _ = setsid();
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .context("opening /dev/null")?;
            let _ = dup2_stdin(&null);
            let _ = dup2_stdout(&null);
            let _ = dup2_stderr(&null);
            Ok(true)
        }
    }
}

/// Take the canary lock, retrying for about a second (a `status` probe holds
/// a shared lock for microseconds); `None` if another canary holds it.
fn take_lock(root: &Root, id: &Identity) -> Result<Option<LockGuard>> {
    let path = root.canary_lock(id);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(g) = fsutil::try_lock(&path)? {
            return Ok(Some(g));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The canary's life: lock, learn the server, wait, decide, record once.
pub fn watch(root: &Root, id: &Identity) -> Result<()> {
    // Learn the server before claiming to watch it: once the lock is held
    // (and `is_watching` says yes), a death at any instant is caught, because
    // a `wait-for` on a dead server returns at once with rc 1.
    let intent = root.stop_intent(id);
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let Some(server_pid) = server_pid(root, id, &tmux) else {
        // Nothing answers: nothing to watch (the tick records a gone server).
        return Ok(());
    };
    let Some(lock) = take_lock(root, id)? else { return Ok(()) };
    {
        let mut f = lock.file();
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = writeln!(f, "{}", std::process::id());
    }
    loop {
        if intent.exists() {
            return Ok(());
        }
        let rc = wait_once(&tmux, id, server_pid)?;
        let intended = intent.exists();
        let alive = !intended && server_alive(&tmux, server_pid);
        match decide(intended, alive) {
            Verdict::Silent => return Ok(()),
            Verdict::WaitAgain => {
                // Someone signalled the channel without an intent, or a
                // client glitch: keep watching, without spinning.
                std::thread::sleep(Duration::from_millis(200));
            }
            Verdict::Record => {
                // Committed to recording this death: let a canary for the
                // next incarnation watch while forensics are gathered.
                drop(lock);
                return record_death(root, id, server_pid, rc);
            }
        }
    }
}

/// What a woken canary does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A deliberate teardown: exit without a word.
    Silent,
    /// The server is fine: wait on the channel again.
    WaitAgain,
    /// The server died on its own: record it once and exit.
    Record,
}

/// The canary's whole decision after `wait-for` returns. `wait-for`'s exit
/// code is not an input: it is 0 for a signal and a clean shutdown alike.
/// Pure.
pub fn decide(intent_exists: bool, server_alive: bool) -> Verdict {
    match (intent_exists, server_alive) {
        (true, _) => Verdict::Silent,
        (false, true) => Verdict::WaitAgain,
        (false, false) => Verdict::Record,
    }
}

/// The server's pid: asked from the server itself, else the recorded one.
fn server_pid(root: &Root, id: &Identity, tmux: &Tmux) -> Option<i32> {
    let quick = tmux.clone().with_timeout(Duration::from_secs(2));
    match quick.run(&Cmd::new("display-message").arg("-p").arg("#{pid}")) {
        Ok(out) => out.stdout.trim().parse().ok(),
        Err(TmuxError::NoServer { .. }) => None,
        Err(_) => state::load(root, id).ok().and_then(|s| s.server_pid),
    }
}

/// Block in `wait-for`, nudging the server about once a second. The client
/// is reaped by a helper thread, so the canary wakes the instant `wait-for`
/// returns (a death is recorded in milliseconds, and a deliberate teardown
/// does not wait on a poll) while sleeping the rest of the time. Returns the
/// client's exit code (-1 if it had none).
fn wait_once(tmux: &Tmux, id: &Identity, server_pid: i32) -> Result<i32> {
    let mut child = tmux
        .spawn(&Cmd::new("wait-for").arg(canary_channel(id)))
        .map_err(TmuxError::into_anyhow)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(status) => {
                let status = status.context("waiting for the canary's wait-for")?;
                return Ok(status.code().unwrap_or(-1));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => observe::nudge(server_pid),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the thread reaping the canary's wait-for of {id} died")
            }
        }
    }
}

/// Alive = our server's pid still runs (a zombie does not count: a
/// container without a reaper keeps a killed server as one) AND the server
/// answering on the socket is that same pid. A new incarnation that a quick
/// restart put on the same socket must never be taken for ours, or this
/// death would go unrecorded while the canary watched the wrong server.
fn server_alive(tmux: &Tmux, server_pid: i32) -> bool {
    if kill(Pid::from_raw(server_pid), None).is_err() || is_zombie(server_pid) {
        return false;
    }
    let quick = tmux.clone().with_timeout(Duration::from_secs(1));
    match quick.run(&Cmd::new("display-message").arg("-p").arg("#{pid}")) {
        Ok(out) => answered_by(&out.stdout, server_pid),
        // Ours still exists and did not answer plainly (stopped, or busy).
        Err(TmuxError::Timeout { .. }) | Err(TmuxError::Failed { .. }) => true,
        Err(_) => false,
    }
}

/// True when `display -p '#{pid}'` printed `server_pid`. Pure.
pub fn answered_by(stdout: &str, server_pid: i32) -> bool {
    stdout.trim().parse::<i32>().ok() == Some(server_pid)
}

/// A zombie (`Z` in /proc/<pid>/stat). Linux only; elsewhere false.
fn is_zombie(pid: i32) -> bool {
    crate::session::proc_stat(pid).is_some_and(|st| st.is_zombie())
}

/// Write the forensics snapshot and the one `ev=server-exit` line.
fn record_death(root: &Root, id: &Identity, server_pid: i32, rc: i32) -> Result<()> {
    let now = Utc::now();
    let mut path = root.forensics_file(id, now.timestamp());
    if path.exists() {
        path = path.with_extension(format!("{}.txt", fsutil::unique_suffix()));
    }
    let report = forensics(id, server_pid, rc, now);
    let written = fsutil::atomic_write(&path, report.as_bytes()).is_ok();
    Event::new("server-exit")
        .id(id)
        .kv("server_pid", server_pid)
        .kv("wait_rc", rc)
        .kv("forensics", if written { path.display().to_string() } else { String::new() })
        .append_to(&root.exits_log())
}

/// The snapshot: memory, pressure, top processes by RSS, OOM-killer lines.
/// Every part is optional and bounded in time.
pub fn forensics(id: &Identity, server_pid: i32, rc: i32, now: chrono::DateTime<Utc>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "muxvisor server-death forensics");
    let _ = writeln!(s, "identity: {id}\nserver_pid: {server_pid}\nwait_rc: {rc}\ntime: {now}\n");
    for (title, path) in
        [("/proc/meminfo", "/proc/meminfo"), ("/proc/pressure/memory", "/proc/pressure/memory")]
    {
        let _ = writeln!(s, "== {title}");
        match std::fs::read_to_string(path) {
            Ok(t) => s.push_str(&t),
            Err(e) => {
                let _ = writeln!(s, "(unreadable: {e})");
            }
        }
        s.push('\n');
    }
    let _ = writeln!(s, "== top processes by RSS");
    for (rss, pid, name) in top_rss(15) {
        let _ = writeln!(s, "{rss:>10} kB  {pid:>7}  {name}");
    }
    s.push('\n');
    let _ = writeln!(s, "== recent OOM-killer lines");
    let mut found = false;
    for argv in [&["dmesg", "-T"][..], &["journalctl", "-k", "-n", "500", "--no-pager"][..]] {
        if let Some(out) = run_bounded(argv, Duration::from_millis(700)) {
            for l in out.lines().filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("oom") || l.contains("killed process") || l.contains("out of memory")
            }) {
                let _ = writeln!(s, "{l}");
                found = true;
            }
            if found {
                break;
            }
        }
    }
    if !found {
        let _ = writeln!(s, "(none found, or the kernel log is not readable)");
    }
    s
}

/// The `n` largest resident sets: (kB, pid, name). Only at death time.
fn top_rss(n: usize) -> Vec<(u64, i32, String)> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return v };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else { continue };
        let mut name = String::new();
        let mut rss = 0u64;
        for l in status.lines() {
            if let Some(x) = l.strip_prefix("Name:") {
                name = x.trim().to_string();
            } else if let Some(x) = l.strip_prefix("VmRSS:") {
                rss = x.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
        v.push((rss, pid, name));
    }
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v.truncate(n);
    v
}

/// Run `argv` with a deadline; its stdout if it exited 0.
fn run_bounded(argv: &[&str], limit: Duration) -> Option<String> {
    let path = which::which(argv[0]).ok()?;
    let mut out = tempfile::tempfile().ok()?;
    let child = Command::new(path)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(out.try_clone().ok()?)
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let st = wait_deadline(child, limit).ok()??;
    if !st.success() {
        return None;
    }
    let mut s = String::new();
    out.rewind().ok()?;
    out.read_to_string(&mut s).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        assert_eq!(decide(true, true), Verdict::Silent);
        assert_eq!(decide(true, false), Verdict::Silent);
        assert_eq!(decide(false, true), Verdict::WaitAgain);
        assert_eq!(decide(false, false), Verdict::Record);
    }

    #[test]
    fn only_our_own_pid_counts_as_an_answer() {
        assert!(answered_by("4242\n", 4242));
        assert!(!answered_by("4243\n", 4242));
        assert!(!answered_by("", 4242));
    }

    #[test]
    fn forensics_has_every_section() {
        let id = Identity::parse("w").unwrap();
        let r = forensics(&id, 42, 1, Utc::now());
        for needle in [
            "identity: w",
            "server_pid: 42",
            "wait_rc: 1",
            "== /proc/meminfo",
            "== top processes by RSS",
            "== recent OOM-killer lines",
        ] {
            assert!(r.contains(needle), "{needle}\n{r}");
        }
    }
}
