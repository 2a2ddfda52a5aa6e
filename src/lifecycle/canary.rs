//! The server-death canary: one small process per live tmux server, outside
//! it, woken the moment the server's process exits. tmux has no hook for its
//! own death, so this is how a dirty server death gets a recorded cause
//! (`ev=server-exit` plus a forensics snapshot). It waits on the server's
//! process itself ([`proc::ExitWatch`]: a pidfd on Linux, a kqueue on macOS),
//! which costs no process; where the OS cannot watch a process that is not
//! its child (Linux before 5.3), it blocks in `tmux wait-for
//! muxvisor-canary-<id>` instead, a client that returns within milliseconds
//! when the server is SIGKILLed or crashes.
//!
//! Rules it keeps:
//! - One canary per identity: it holds `run/<id>.canary.lock` (flock) for its
//!   whole life and writes its pid there; a second one gives up at once.
//!   [`ensure`] is therefore idempotent and cheap (one lock probe, no scan of
//!   the process table), and [`is_watching`] is a lock probe.
//! - Silent on purpose: deliberate teardowns write `run/<id>.stopping` before
//!   signalling the channel and ending the server; the canary re-checks it
//!   after every wake-up (a clean exit wakes it as a kill does).
//! - Fires at most once, then exits. It never restarts or kills anything.
//! - While it waits it sends the server `SIGCHLD` about once a second: tmux
//!   before 3.6 can leave a dead pane unreaped (no status, no `pane-died`)
//!   until some child exits, and the nudge bounds that to about a second.
//! - Its `wait-for` client (where it needs one) must not outlive it. On Linux the client gets
//!   SIGKILL when the canary dies (`PR_SET_PDEATHSIG`, set by `Tmux::spawn`).
//!   Elsewhere a killed canary leaves its client blocked forever, so each new
//!   canary (and `clean`) ends such orphans: a `wait-for` on our channel and
//!   socket whose parent is not a canary ([`orphan_waiters`]).
//!
//! Forensics differ per OS (SPEC §5): Linux reads `/proc/meminfo` and
//! `/proc/pressure/memory`, lists the largest resident sets and greps the
//! kernel log for the OOM killer; macOS runs `vm_stat`, `sysctl vm.swapusage
//! kern.memorystatus_level` and `ps` (sorted by RSS), names recent
//! `JetsamEvent-*.ips` reports, and asks `log show` for the last two minutes
//! of jetsam/memorystatus lines. Every part is bounded in time, and the slow
//! one (`log show`) is added to the snapshot after the death is recorded.

use std::fmt::Write as _;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::ground::fsutil::{self, LockGuard};
use crate::ground::paths::Root;
use crate::ground::proc;
use crate::ground::proc::wait_deadline;
use crate::lifecycle::observe;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;
use crate::model::peer_state;
use crate::tmux::launch::canary_channel;
use crate::tmux::{Cmd, Tmux, TmuxError};

/// `_canary <id> [--foreground]`: detach (unless `foreground`), then watch.
pub fn run(root: &Root, id: &Identity, foreground: bool) -> Result<()> {
    if !foreground && !crate::ground::detach::detach()? {
        return Ok(());
    }
    watch(root, id)
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
    let what = format!("the canary of {id}");
    let st = crate::ground::detach::spawn_detached(root, &["_canary", id.as_str()], &what)?;
    // The parent forks and exits at once; the canary lives on detached.
    if st.success() {
        crate::ground::fault::point("canary-started");
        // Wait (briefly, bounded) until it holds its lock, so that a
        // teardown right after this launch finds it watching and waits
        // for it to see the intent, instead of racing its start-up.
        let deadline = Instant::now() + Duration::from_millis(500);
        while !is_watching(root, id) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(true)
    } else {
        anyhow::bail!("{what} failed to start ({st})")
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

/// The canary's life: lock, learn the server, wait, judge, record once.
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
    if !cfg!(target_os = "linux") {
        // A lost predecessor's client, if any (Linux ties it to its canary).
        end_orphan_waiters(root, Some(id));
    }
    // The process-exit watch, made after learning the pid. If the server
    // died in between (the watch fails with ESRCH, or names a process that
    // reused the pid), the check before the first wait finds it not alive
    // and records the death. Where the OS cannot watch (ENOSYS), wait-for.
    let exit_watch = proc::ExitWatch::new(server_pid).ok();
    let mut checked = false;
    loop {
        if intent.exists() {
            return Ok(());
        }
        let rc = if !checked && !server_alive(&tmux, server_pid) {
            WAIT_SERVER_GONE
        } else {
            match &exit_watch {
                Some(w) => wait_exit(w, &intent, server_pid)?,
                None => wait_once(&tmux, id, server_pid)?,
            }
        };
        checked = true;
        let intended = intent.exists();
        let alive = !intended && server_alive(&tmux, server_pid);
        match verdict(intended, alive) {
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
pub fn verdict(intent_exists: bool, server_alive: bool) -> Verdict {
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
        Err(_) => peer_state::load(root, id).ok().and_then(|s| s.server_pid),
    }
}

/// The `wait_rc` of a death the canary saw by watching the server's process
/// (as `wait-for` exits 1 when its server vanishes).
const WAIT_SERVER_GONE: i32 = 1;

/// Wait for the server's process to exit, nudging it about once a second
/// and returning early when a teardown wrote its intent (it then ends the
/// server, which would wake us anyway). Returns [`WAIT_SERVER_GONE`] when
/// the process exited, 0 for an intent.
fn wait_exit(watch: &proc::ExitWatch, intent: &Path, server_pid: i32) -> Result<i32> {
    loop {
        if watch.wait(Duration::from_secs(1)).context("watching the tmux server's process")? {
            return Ok(WAIT_SERVER_GONE);
        }
        if intent.exists() {
            return Ok(0);
        }
        observe::nudge(server_pid);
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
    if !proc::alive(server_pid) {
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

/// Write the forensics snapshot and the one `ev=server-exit` line.
fn record_death(root: &Root, id: &Identity, server_pid: i32, rc: i32) -> Result<()> {
    let now = Utc::now();
    let mut path = root.forensics_file(id, now.timestamp());
    if path.exists() {
        path = path.with_extension(format!("{}.txt", fsutil::unique_suffix()));
    }
    let (report, crash) = forensics_and_crash(id, server_pid, rc, now);
    let written = fsutil::atomic_write(&path, report.as_bytes()).is_ok();
    let mut ev = Event::new("server-exit").id(id).kv("server_pid", server_pid).kv("wait_rc", rc);
    // The kernel's own word on how the server ended (tmux 3.3a segfaults,
    // rarely, under load), so the cause is in the record, not only in the
    // snapshot.
    if let Some(c) = &crash {
        ev = ev.kv("crash", c);
    }
    ev.kv("forensics", if written { path.display().to_string() } else { String::new() })
        .append_to(&root.exits_log())?;
    // The slow part (macOS `log show`, seconds) comes after the record, so
    // the death is on file within a second; the snapshot is then replaced,
    // whole, by the completed one.
    if written && let Some(more) = slow_forensics() {
        let _ = fsutil::atomic_write(&path, format!("{report}{more}").as_bytes());
    }
    Ok(())
}

/// The snapshot: memory, top processes by RSS, and the kernel's memory
/// killer (OOM killer on Linux, jetsam reports on macOS). Every part is
/// optional and bounded in time; see also [`slow_forensics`].
pub fn forensics(id: &Identity, server_pid: i32, rc: i32, now: chrono::DateTime<Utc>) -> String {
    forensics_and_crash(id, server_pid, rc, now).0
}

/// [`forensics`], and the kernel's line on the server's own crash when it
/// logged one (Linux: `tmux: server[PID]: segfault at ...`).
fn forensics_and_crash(
    id: &Identity,
    server_pid: i32,
    rc: i32,
    now: chrono::DateTime<Utc>,
) -> (String, Option<String>) {
    let mut s = String::new();
    let _ = writeln!(s, "muxvisor server-death forensics");
    let _ = writeln!(s, "identity: {id}\nserver_pid: {server_pid}\nwait_rc: {rc}\ntime: {now}\n");
    let crash = os_forensics(&mut s, server_pid);
    (s, crash)
}

/// The kernel log's report of `pid`'s own fault (a segfault, a general
/// protection fault, a trap), the part after `name[pid]:` (a trap line
/// has no colon there); the last one
/// when there are several (pids wrap). Pure.
pub fn crash_line(kernel_log: &str, pid: i32) -> Option<String> {
    let tag = format!("[{pid}]");
    kernel_log
        .lines()
        .filter_map(|l| l.find(&tag).map(|at| l[at + tag.len()..].trim_start_matches(':').trim()))
        .rfind(|rest| {
            let r = rest.to_ascii_lowercase();
            ["segfault", "general protection", "trap"].iter().any(|w| r.starts_with(w))
        })
        .map(|r| r.chars().take(160).collect())
}

/// One `== title` section; `body` or why there is none.
fn section(s: &mut String, title: &str, body: Option<String>) {
    let _ = writeln!(s, "== {title}");
    match body {
        Some(b) if !b.trim().is_empty() => {
            s.push_str(b.trim_end());
            s.push('\n');
        }
        _ => {
            let _ = writeln!(s, "(none, or not readable)");
        }
    }
    s.push('\n');
}

#[cfg(target_os = "linux")]
fn os_forensics(s: &mut String, server_pid: i32) -> Option<String> {
    for path in ["/proc/meminfo", "/proc/pressure/memory"] {
        section(s, path, std::fs::read_to_string(path).ok());
    }
    let top: String = proc::top_rss(15)
        .iter()
        .map(|r| format!("{:>10} kB  {:>7}  {}\n", r.kib, r.pid, r.name))
        .collect();
    section(s, "top processes by RSS", Some(top));
    let mut oom = None;
    let mut crash = None;
    for argv in [&["dmesg", "-T"][..], &["journalctl", "-k", "-n", "500", "--no-pager"][..]] {
        let Some(out) = run_bounded(argv, Duration::from_millis(700)) else { continue };
        crash = crash.or_else(|| crash_line(&out, server_pid));
        let lines: String = out
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("oom") || l.contains("killed process") || l.contains("out of memory")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if !lines.is_empty() {
            oom = Some(lines);
            break;
        }
    }
    section(s, "recent OOM-killer lines", oom);
    section(s, "the kernel on the server's own crash", crash.clone());
    crash
}

/// `log show` is slow to start (it opens the unified log store): seconds.
#[cfg(target_os = "macos")]
const LOG_SHOW_DEADLINE: Duration = Duration::from_secs(5);

/// macOS: a crashed tmux leaves a report in DiagnosticReports, which the
/// snapshot does not read; no crash line.
#[cfg(target_os = "macos")]
fn os_forensics(s: &mut String, _server_pid: i32) -> Option<String> {
    let quick = Duration::from_secs(2);
    section(s, "vm_stat", run_bounded(&["/usr/bin/vm_stat"], quick));
    section(
        s,
        "sysctl vm.swapusage kern.memorystatus_level",
        run_bounded(&["/usr/sbin/sysctl", "vm.swapusage", "kern.memorystatus_level"], quick),
    );
    let ps = run_bounded(&["/bin/ps", "axo", "pid,rss,etime,command"], quick);
    section(s, "top processes by RSS (ps, RSS in KiB)", ps.map(|t| top_by_rss(&t, 15)));
    let mut dirs = vec![PathBuf::from("/Library/Logs/DiagnosticReports")];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join("Library/Logs/DiagnosticReports"));
    }
    let reports: String = jetsam_reports(&dirs, 10)
        .iter()
        .map(|(p, t)| {
            format!("{}  {}\n", chrono::DateTime::<Utc>::from(*t).to_rfc3339(), p.display())
        })
        .collect();
    section(s, "recent JetsamEvent reports (newest first)", Some(reports));
    None
}

/// Sections too slow to delay the death record: none on Linux.
#[cfg(target_os = "linux")]
fn slow_forensics() -> Option<String> {
    None
}

/// macOS: the unified log's jetsam and memorystatus lines of the last two
/// minutes (`log show` takes seconds to open the log store).
#[cfg(target_os = "macos")]
fn slow_forensics() -> Option<String> {
    let mut s = String::new();
    let log = run_bounded(
        &[
            "/usr/bin/log",
            "show",
            "--last",
            "2m",
            "--style",
            "compact",
            "--predicate",
            "eventMessage CONTAINS[c] \"jetsam\" OR eventMessage CONTAINS[c] \"memorystatus\"",
        ],
        LOG_SHOW_DEADLINE,
    );
    section(
        &mut s,
        "jetsam and memorystatus log lines (last 2 minutes)",
        log.map(|t| last_lines(&t, 60)),
    );
    Some(s)
}

/// `ps axo pid,rss,...` output: the header, then the `n` lines with the
/// largest RSS (second column), largest first. Pure.
pub fn top_by_rss(ps: &str, n: usize) -> String {
    let mut lines = ps.lines();
    let header = lines.next().unwrap_or_default();
    let mut rows: Vec<(u64, &str)> = lines
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            f.next()?.parse::<i32>().ok()?;
            Some((f.next()?.parse::<u64>().ok()?, l))
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = format!("{header}\n");
    for (_, l) in rows.into_iter().take(n) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The last `n` lines of `text`. Pure.
pub fn last_lines(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..].iter().map(|l| format!("{l}\n")).collect()
}

/// `JetsamEvent-*.ips` files in `dirs` (missing directories are skipped),
/// newest first, at most `n`, with their modification times.
pub fn jetsam_reports(dirs: &[PathBuf], n: usize) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut found = Vec::new();
    for d in dirs {
        for p in fsutil::list_dir(d).unwrap_or_default() {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !(name.starts_with("JetsamEvent-") && name.ends_with(".ips")) {
                continue;
            }
            if let Ok(t) = std::fs::symlink_metadata(&p).and_then(|m| m.modified()) {
                found.push((p, t));
            }
        }
    }
    found.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
    found.truncate(n);
    found
}

/// True when `argv` is a canary's (`... _canary <id> ...`). Pure.
pub fn is_canary_argv(argv: &[Vec<u8>], id: &Identity) -> bool {
    argv.windows(2).any(|w| w[0] == b"_canary" && w[1] == id.as_str().as_bytes())
}

/// A `wait-for` client left behind by a canary that was killed: the
/// identity whose channel it waits on, and its pid.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Waiter {
    pub identity: Identity,
    pub pid: i32,
}

/// The identity a `tmux -S <root>/run/<id>.sock ... wait-for
/// muxvisor-canary-<id>` argv waits for, when the socket is under `run_dir`
/// and names the same identity as the channel. Pure.
pub fn waiter_identity(argv: &[Vec<u8>], run_dir: &Path) -> Option<Identity> {
    let at = argv.iter().position(|w| w == b"wait-for")?;
    let channel = std::str::from_utf8(argv.get(at + 1)?).ok()?;
    let id = Identity::parse(channel.strip_prefix("muxvisor-canary-")?).ok()?;
    let socket = run_dir.join(format!("{id}.sock"));
    proc::argv_has(argv, socket.as_os_str().as_encoded_bytes()).then_some(id)
}

/// The orphaned `wait-for` clients of canaries under `root` (of `only`, if
/// given): their parent is not a canary of that identity any more. A scan
/// of every process, so it runs only where needed: in `clean`, `doctor`,
/// and (off Linux) once when a canary starts.
pub fn orphan_waiters(root: &Root, only: Option<&Identity>) -> Vec<Waiter> {
    let run_dir = root.run_dir();
    let mut out = Vec::new();
    for pid in proc::find_by_argv(|a| a.iter().any(|w| w == b"wait-for")) {
        let Some(argv) = proc::argv(pid) else { continue };
        let Some(identity) = waiter_identity(&argv, &run_dir) else { continue };
        if only.is_some_and(|o| *o != identity) {
            continue;
        }
        let Some(me) = proc::info(pid) else { continue };
        let parent_is_canary = proc::argv(me.ppid).is_some_and(|a| is_canary_argv(&a, &identity));
        if !me.zombie && !parent_is_canary {
            out.push(Waiter { identity, pid });
        }
    }
    out.sort_by_key(|w| w.pid);
    out
}

/// End the orphaned waiters of `only` (or all under `root`): SIGTERM (a
/// `wait-for` client exits on it), SIGKILL if it is still there a second
/// later. Each pid is checked again just before it is signalled. Returns
/// the ones ended.
pub fn end_orphan_waiters(root: &Root, only: Option<&Identity>) -> Vec<Waiter> {
    use nix::sys::signal::Signal;
    let run_dir = root.run_dir();
    let still = |w: &Waiter| {
        proc::alive(w.pid)
            && proc::argv(w.pid)
                .is_some_and(|a| waiter_identity(&a, &run_dir).as_ref() == Some(&w.identity))
    };
    let found = orphan_waiters(root, only);
    for w in &found {
        if still(w) {
            let _ = kill(Pid::from_raw(w.pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while found.iter().any(&still) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in &found {
        if still(w) {
            let _ = kill(Pid::from_raw(w.pid), Signal::SIGKILL);
        }
    }
    found
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
        assert_eq!(verdict(true, true), Verdict::Silent);
        assert_eq!(verdict(true, false), Verdict::Silent);
        assert_eq!(verdict(false, true), Verdict::WaitAgain);
        assert_eq!(verdict(false, false), Verdict::Record);
    }

    #[test]
    fn only_our_own_pid_counts_as_an_answer() {
        assert!(answered_by("4242\n", 4242));
        assert!(!answered_by("4243\n", 4242));
        assert!(!answered_by("", 4242));
    }

    #[test]
    fn the_kernel_s_word_on_a_crashed_server_is_found_by_its_pid() {
        let log = "[ 2090.7] tmux: server[26009]: segfault at 0 ip 000055a8092e06b8 error 4\n\
                   [ 3000.1] node[5399]: something else\n\
                   [31007.1] tmux: server[5399]: segfault at 20 ip 0000562303f70a13 error 4\n\
                   [31008.2] tmux: server[53990]: segfault at 8 ip 1\n";
        assert_eq!(
            crash_line(log, 5399).as_deref(),
            Some("segfault at 20 ip 0000562303f70a13 error 4")
        );
        assert_eq!(
            crash_line(log, 26009).as_deref(),
            Some("segfault at 0 ip 000055a8092e06b8 error 4")
        );
        assert_eq!(crash_line(log, 539), None);
        assert_eq!(crash_line(log, 31080), None);
        let gp = "[Mon Dec  7 11:20:36 2026] traps: tmux: server[77] general protection fault ip:1";
        assert_eq!(crash_line(gp, 77).as_deref(), Some("general protection fault ip:1"));
        assert_eq!(crash_line("tmux: server[77]: exited", 77), None);
    }

    #[test]
    fn forensics_has_a_header() {
        let id = Identity::parse("w").unwrap();
        let r = forensics(&id, 42, 1, Utc::now());
        for needle in ["identity: w", "server_pid: 42", "wait_rc: 1", "== top processes by RSS"] {
            assert!(r.contains(needle), "{needle}\n{r}");
        }
    }

    /// Content, not headings: memory figures and a real process.
    #[cfg(target_os = "linux")]
    #[test]
    fn linux_forensics_has_memory_and_real_processes() {
        let r = forensics(&Identity::parse("w").unwrap(), 42, 1, Utc::now());
        assert!(r.contains("== /proc/meminfo\nMemTotal:"), "{r}");
        let top = r.split("== top processes by RSS\n").nth(1).unwrap();
        let pids: Vec<i32> = top
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect();
        assert!(pids.len() >= 2, "{top}");
        assert!(pids.iter().any(|p| proc::info(*p).is_some()), "{pids:?}");
        assert!(r.contains("== recent OOM-killer lines"), "{r}");
    }

    /// Content, not headings (runs only on a Mac).
    #[cfg(target_os = "macos")]
    #[test]
    fn macos_forensics_has_memory_and_real_processes() {
        let r = forensics(&Identity::parse("w").unwrap(), 42, 1, Utc::now());
        assert!(r.contains("Pages free:"), "{r}");
        assert!(r.contains("vm.swapusage:"), "{r}");
        let top = r.split("== top processes by RSS (ps, RSS in KiB)\n").nth(1).unwrap();
        let pids: Vec<i32> = top
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert!(pids.iter().any(|p| proc::info(*p).is_some()), "{top}");
    }

    #[test]
    fn ps_output_is_sorted_by_rss() {
        let ps = "  PID    RSS ELAPSED COMMAND\n    1   1200 01:00 /sbin/launchd\n  
  77  90000 00:10 /Applications/Big.app/Big --flag\n   5    300 00:01 tiny\nbad line\n";
        let top = top_by_rss(ps, 2);
        let lines: Vec<&str> = top.lines().collect();
        assert_eq!(lines[0], "  PID    RSS ELAPSED COMMAND");
        assert!(lines[1].contains("Big --flag") && lines[2].contains("launchd"), "{top}");
        assert_eq!(lines.len(), 3);
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
    }

    #[test]
    fn jetsam_reports_are_named_newest_first() {
        let t = tempfile::Builder::new().prefix("mvj").tempdir_in("/tmp").unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let at = |secs| std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        for (dir, name, secs) in [
            (&a, "JetsamEvent-2026-01-01-100000.ips", 100),
            (&b, "JetsamEvent-2026-01-02-100000.ips", 200),
            (&a, "Other-2026.ips", 300),
            (&b, "JetsamEvent-x.txt", 300),
        ] {
            let f = std::fs::File::create(dir.join(name)).unwrap();
            f.set_modified(at(secs)).unwrap();
        }
        let found = jetsam_reports(&[a.clone(), b.clone(), t.path().join("missing")], 10);
        let names: Vec<String> =
            found.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into()).collect();
        assert_eq!(
            names,
            ["JetsamEvent-2026-01-02-100000.ips", "JetsamEvent-2026-01-01-100000.ips"]
        );
        assert_eq!(jetsam_reports(&[a, b], 1).len(), 1);
    }

    #[test]
    fn canary_argv_guard() {
        let id = Identity::parse("w1").unwrap();
        let words = |s: &str| s.split(' ').map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(is_canary_argv(&words("/bin/muxvisor --root /r _canary w1"), &id));
        assert!(!is_canary_argv(&words("/bin/muxvisor --root /r _canary w10"), &id));
        assert!(!is_canary_argv(&words("sleep w1"), &id));
        assert!(!is_canary_argv(&[], &id));
    }

    #[test]
    fn waiters_are_recognised_by_channel_and_socket() {
        let run = Path::new("/r/run");
        let words = |s: &str| s.split(' ').map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>();
        let w1 = Identity::parse("w1").unwrap();
        assert_eq!(
            waiter_identity(
                &words("/usr/bin/tmux -S /r/run/w1.sock -f /dev/null wait-for muxvisor-canary-w1"),
                run
            ),
            Some(w1)
        );
        for no in [
            // Another root, another identity's socket, another channel.
            "tmux -S /other/run/w1.sock -f /dev/null wait-for muxvisor-canary-w1",
            "tmux -S /r/run/w2.sock -f /dev/null wait-for muxvisor-canary-w1",
            "tmux -S /r/run/w1.sock -f /dev/null wait-for something-else",
            "tmux -S /r/run/w1.sock -f /dev/null wait-for",
            "tmux -S /r/run/w1.sock new-session",
        ] {
            assert_eq!(waiter_identity(&words(no), run), None, "{no}");
        }
    }
}
