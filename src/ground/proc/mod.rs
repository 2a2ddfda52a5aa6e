//! Every question muxvisor asks the operating system about a process, in one
//! place: does it exist, is it a zombie, who is its parent, its process group
//! and session, when did it start, what is it called, what is its argv, who
//! is in a process group, and which processes hold the most memory.
//!
//! One portable API, one implementation per OS: [`linux`] reads `/proc`,
//! [`macos`] asks the kernel through `proc_pidinfo(PROC_PIDTBSDINFO)`,
//! `proc_listpgrppids`, `proc_listallpids` and `sysctl(KERN_PROCARGS2)`.
//! Nothing else in muxvisor reads `/proc` or calls those functions, so a
//! question answered wrongly on one OS is fixed here, once.
//!
//! A pid alone names nothing for long: the kernel reuses them. Before
//! muxvisor signals a process it recorded earlier (a tmux server, a pane's
//! group), it checks that the pid still names the same process: for a tmux
//! server, [`is_tmux_server`] compares the recorded [`StartTime`] as well as
//! the name, the session and the socket in its argv.
//!
//! Answers are best effort and never fail: a process that vanished, or one
//! that the OS will not describe to us, is simply not there (`None`, empty).
//!
//! Three things here are not questions: [`die_with_parent`] ties a child's
//! life to ours where the OS can (Linux), [`wait_deadline`] waits for a child
//! no longer than a deadline, killing and reaping it past that, and
//! [`ExitWatch`] wakes us the moment a process that is not our child exits
//! (a pidfd on Linux, a kqueue on macOS).

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "linux")]
use linux as os;

// Its pure parser is unit-tested on every OS.
#[cfg(any(target_os = "macos", test))]
pub mod macos;
#[cfg(target_os = "macos")]
use macos as os;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!("muxvisor knows how to ask Linux and macOS about processes; port src/proc first");

use std::path::Path;

use serde::{Deserialize, Serialize};

/// When a process started, as the OS records it: on Linux the kernel's start
/// time in clock ticks since boot, on macOS microseconds since the epoch.
/// Only equality means anything: two readings of the same process are
/// equal, and a new process that reuses the pid has another start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StartTime(pub u64);

/// What the OS says about one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Session (the session leader's pid).
    pub sid: i32,
    /// Exited but not yet reaped by its parent: it holds nothing and runs
    /// nothing (where no init reaps orphans, as in some containers, a
    /// zombie can stay forever).
    pub zombie: bool,
    /// Stopped by a signal (SIGSTOP, SIGTSTP...) or a debugger: it runs no
    /// code until continued, so a stopped tmux server answers nobody.
    /// `None` where the OS does not say (macOS here: its BSD info has a
    /// stop status, but it has not been checked against real stops), so a
    /// caller that must know falls back to asking the process itself.
    pub stopped: Option<bool>,
    pub start: StartTime,
    /// The short name the kernel keeps (Linux `comm`, at most 15 bytes;
    /// macOS `p_comm`/`p_name`). A tmux server on Linux calls itself
    /// `tmux: server`; on macOS both servers and clients are `tmux`.
    pub name: String,
}

/// One line of a memory snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rss {
    pub pid: i32,
    /// Resident set size in KiB.
    pub kib: u64,
    pub name: String,
}

/// The id of the running boot of the OS (Linux
/// `/proc/sys/kernel/random/boot_id`, macOS `kern.bootsessionuuid`), read
/// once per process: it changes when the machine restarts, so a file
/// stamped with it tells a write of this boot from one made before a crash.
/// `None` where the OS does not say.
pub fn boot_id() -> Option<String> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let raw = os::boot_id()?;
        let id: String =
            raw.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        (!id.is_empty()).then_some(id)
    })
    .clone()
}

#[cfg(test)]
mod mem_tests {
    #[test]
    fn mem_available_is_parsed_and_read() {
        let m = "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(super::parse_mem_available(m), Some(2048 * 1024));
        assert_eq!(super::parse_mem_available("MemTotal: 1 kB\n"), None);
        assert!(super::mem_available().is_some_and(|b| b > 0));
    }
}

/// Memory the OS could give new programs without swapping, in bytes: Linux
/// `MemAvailable` from `/proc/meminfo`; macOS `kern.memorystatus_level` (the
/// percentage available) of `hw.memsize`. `None` where it cannot be read.
pub fn mem_available() -> Option<u64> {
    os::mem_available()
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes. Pure.
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The process `pid`, zombie or not; `None` when there is none (or the OS
/// will not describe it).
pub fn info(pid: i32) -> Option<Process> {
    if pid <= 0 {
        return None;
    }
    os::info(pid)
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    info(pid).is_some_and(|p| !p.zombie)
}

/// True when `pid` is a zombie (exited, not reaped).
pub fn is_zombie(pid: i32) -> bool {
    info(pid).is_some_and(|p| p.zombie)
}

/// The start time of `pid`, to record next to the pid.
pub fn start_time(pid: i32) -> Option<StartTime> {
    info(pid).map(|p| p.start)
}

/// The argv of `pid` (each word as bytes); `None` when it cannot be read.
/// A zombie has none.
pub fn argv(pid: i32) -> Option<Vec<Vec<u8>>> {
    if pid <= 0 {
        return None;
    }
    os::argv(pid)
}

/// Every pid on the machine (that the OS shows us), in no promised order.
pub fn all_pids() -> Vec<i32> {
    os::all_pids()
}

/// The live (non-zombie) members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    if pgid <= 1 {
        return Vec::new();
    }
    os::group_pids(pgid)
        .into_iter()
        .filter(|p| info(*p).is_some_and(|i| !i.zombie && i.pgid == pgid))
        .collect()
}

/// True while some non-zombie process is in group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    !group_members(pgid).is_empty()
}

/// True when `pid` is a live child of `parent` and leads its own group (a
/// pane's program under its tmux server).
pub fn leads_group_under(pid: i32, parent: i32) -> bool {
    info(pid).is_some_and(|p| !p.zombie && p.ppid == parent && p.pgid == pid)
}

/// Whether `pid` ignores signal `sig` (its disposition is `SIG_IGN`), if
/// the OS tells: Linux does, macOS does not (`None`). An interactive shell
/// ignores SIGTERM, which is why a stop follows it with SIGHUP.
pub fn ignores(pid: i32, sig: i32) -> Option<bool> {
    if pid <= 0 || !(1..=64).contains(&sig) {
        return None;
    }
    os::ignored_signals(pid).map(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// The `n` processes with the largest resident sets, largest first.
pub fn top_rss(n: usize) -> Vec<Rss> {
    let mut v = os::all_rss();
    v.sort_by_key(|r| std::cmp::Reverse(r.kib));
    v.truncate(n);
    v
}

/// True when `argv` has `word` as one whole word. Pure.
pub fn argv_has(argv: &[Vec<u8>], word: &[u8]) -> bool {
    argv.iter().any(|w| w.as_slice() == word)
}

/// True when `pid` is the tmux server serving `socket`: a live session
/// leader (tmux daemonizes its server; its clients are not) whose name
/// starts with `tmux` and whose argv names `socket` (the server is forked
/// from the client that started it, so it keeps that client's argv). With
/// `start`, the process must also have started then, so that a reused pid
/// is never taken for our server. Without it (a state file written before
/// start times were recorded) the other checks decide.
pub fn is_tmux_server(pid: i32, socket: &Path, start: Option<StartTime>) -> bool {
    let Some(p) = info(pid) else { return false };
    if p.zombie || p.sid != p.pid || !p.name.starts_with("tmux") {
        return false;
    }
    if start.is_some_and(|s| s != p.start) {
        return false;
    }
    argv(pid).is_some_and(|a| argv_has(&a, socket.as_os_str().as_encoded_bytes()))
}

/// Make the child `cmd` will spawn get SIGKILL the moment we die, on Linux
/// (`PR_SET_PDEATHSIG`; the signal follows the death of the spawning
/// thread, so spawn from the thread that lives as long as the child
/// should). Elsewhere nothing is set up: callers clean up orphans
/// themselves.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid) between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl: then nobody would
                // ever send the signal.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            })
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// A wake-up on the exit of a process that is not our child (a tmux server,
/// for its canary): a pidfd on Linux 5.3 and later, a kqueue
/// `EVFILT_PROC`/`NOTE_EXIT` on macOS. It costs a descriptor, no process and
/// no polling. Like a pid it names the process only if that process still
/// ran when the watch was made: callers check who they watch after [`new`].
///
/// [`new`]: ExitWatch::new
#[derive(Debug)]
pub struct ExitWatch {
    fd: std::os::fd::OwnedFd,
}

impl ExitWatch {
    /// Watch `pid`. Fails with ESRCH when it is already gone, and with
    /// ENOSYS (or EPERM under some sandboxes) where the OS cannot do it:
    /// callers then watch another way.
    pub fn new(pid: i32) -> std::io::Result<ExitWatch> {
        os::watch_exit(pid).map(|fd| ExitWatch { fd })
    }

    /// Wait at most `limit`; true once the process has exited.
    pub fn wait(&self, limit: std::time::Duration) -> std::io::Result<bool> {
        os::wait_exit(&self.fd, limit)
    }
}

/// Wait for `child` until `timeout`; on timeout SIGKILL its process group,
/// reap it, and return `Ok(None)`.
pub fn wait_deadline(
    mut child: std::process::Child,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// The environment (`K=V` words) of `pid`, where the OS shows it to us
/// (our own uid's processes).
pub fn environ(pid: i32) -> Option<Vec<Vec<u8>>> {
    if pid <= 0 {
        return None;
    }
    os::environ(pid)
}

/// True when an environment holds every `K=V` of `pairs`. Pure.
pub fn env_has(env: &[Vec<u8>], pairs: &[(&str, &[u8])]) -> bool {
    pairs.iter().all(|(k, v)| {
        env.iter().any(|w| {
            w.len() == k.len() + 1 + v.len()
                && w.starts_with(k.as_bytes())
                && w[k.len()] == b'='
                && w.ends_with(v)
        })
    })
}

/// Pids of the processes whose environment holds every `K=V` of `pairs`
/// (a scan of every process: for a stop and `clean`, never a tick's hot path).
pub fn find_by_env(pairs: &[(&str, &[u8])]) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|p| *p != me)
        .filter(|p| environ(*p).is_some_and(|e| env_has(&e, pairs)))
        .collect()
}

/// Pids of the processes whose argv satisfies `pred` (a scan of every
/// process: for `clean` and rare recoveries, never for a tick's hot path).
pub fn find_by_argv(mut pred: impl FnMut(&[Vec<u8>]) -> bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|p| *p != me)
        .filter(|p| argv(*p).is_some_and(|a| pred(&a)))
        .collect()
}

#[cfg(test)]
mod env_tests {
    #[test]
    fn env_has_matches_whole_pairs_only() {
        let env: Vec<Vec<u8>> = vec![b"A=1".to_vec(), b"MUXVISOR_IDENTITY=ab".to_vec()];
        assert!(super::env_has(&env, &[("MUXVISOR_IDENTITY", b"ab"), ("A", b"1")]));
        assert!(!super::env_has(&env, &[("MUXVISOR_IDENTITY", b"a")]), "a prefix of the value");
        assert!(!super::env_has(&env, &[("MUXVISOR_IDENTIT", b"Y=ab")]), "a split key");
        assert!(!super::env_has(&env, &[("B", b"1")]));
    }

    #[test]
    fn our_own_environment_reads_back() {
        let me = std::process::id() as i32;
        let env = super::environ(me).expect("our own environment");
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(super::env_has(&env, &[("PATH", path.as_bytes())]));
    }
}

#[cfg(test)]
mod wait_tests {
    use super::wait_deadline;
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    #[test]
    fn deadline_kills_and_reaps() {
        let child = Command::new("sleep").arg("5").process_group(0).spawn().unwrap();
        let pid = child.id();
        let t = Instant::now();
        let r = wait_deadline(child, Duration::from_millis(50)).unwrap();
        assert!(r.is_none());
        assert!(t.elapsed() < Duration::from_secs(4));
        // Reaped: the pid no longer names our child.
        assert!(nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None).is_err());
    }
}

/// The conformance test: written once against the API above, run on
/// whichever OS runs the tests, so that both implementations answer the
/// same questions the same way.
#[cfg(test)]
mod conformance {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn poll(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_child_is_described_from_birth_to_reaping() {
        let me = std::process::id() as i32;
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        // exec may not be complete the instant spawn returns (Linux names
        // the process before it publishes the new argv).
        assert!(
            poll(|| info(pid).is_some_and(|p| p.name == "sleep") && argv(pid).is_some()),
            "{:?}",
            info(pid)
        );
        let p = info(pid).unwrap();
        assert_eq!(p.pid, pid);
        assert_eq!(p.ppid, me);
        assert_eq!(p.pgid, pid, "it leads its own group");
        assert_eq!(p.sid, info(me).unwrap().sid, "same session as its parent");
        assert!(!p.zombie);
        assert!(alive(pid) && !is_zombie(pid));
        assert!(leads_group_under(pid, me));
        if cfg!(target_os = "linux") {
            assert_eq!(ignores(pid, libc::SIGTERM), Some(false));
        } else {
            assert_eq!(ignores(pid, libc::SIGTERM), None, "macOS does not tell");
        }
        assert!(!leads_group_under(pid, pid));
        // Stopped and continued: Linux says so; macOS does not tell.
        let told = if cfg!(target_os = "linux") { Some(false) } else { None };
        assert_eq!(p.stopped, told);
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        assert!(poll(|| info(pid).unwrap().stopped == told.map(|_| true)), "{:?}", info(pid));
        assert!(alive(pid), "a stopped process is alive");
        unsafe { libc::kill(pid, libc::SIGCONT) };
        assert!(poll(|| info(pid).unwrap().stopped == told), "{:?}", info(pid));
        assert_eq!(argv(pid).unwrap(), vec![b"sleep".to_vec(), b"30".to_vec()]);
        assert!(argv_has(&argv(pid).unwrap(), b"30"));
        assert!(find_by_argv(|a| a.len() == 2 && a[0] == b"sleep" && a[1] == b"30").contains(&pid));

        // The start time is stable for one process and differs for another
        // (Linux counts in 10 ms ticks, so compare with one started long ago).
        let start = start_time(pid).unwrap();
        assert_eq!(start_time(pid), Some(start));
        assert_ne!(start_time(1), Some(start));
        assert!(all_pids().contains(&pid) && all_pids().contains(&me));
        assert_eq!(group_members(pid), vec![pid]);
        assert!(group_alive(pid));

        // Our own process has a resident set; the snapshot is sorted.
        let top = top_rss(usize::MAX);
        assert!(top.iter().any(|r| r.pid == me && r.kib > 0), "{top:?}");
        assert!(top.windows(2).all(|w| w[0].kib >= w[1].kib));
        assert_eq!(top_rss(3).len(), 3.min(top.len()));

        // Killed but not reaped: a zombie, no longer alive, not in its group.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(poll(|| is_zombie(pid)), "{:?}", info(pid));
        assert!(!alive(pid));
        assert!(group_members(pid).is_empty());
        assert!(!group_alive(pid));
        assert!(!leads_group_under(pid, me));

        child.wait().unwrap();
        assert_eq!(info(pid), None);
        assert_eq!(argv(pid), None);
        assert!(!alive(pid));
    }

    #[test]
    fn nonsense_pids_are_nobody() {
        for pid in [0, -1, i32::MAX] {
            assert_eq!(info(pid), None, "{pid}");
            assert!(!alive(pid));
            assert!(argv(pid).is_none());
        }
        assert!(group_members(0).is_empty() && group_members(1).is_empty());
    }

    #[test]
    fn a_tmux_server_is_recognised_by_socket_session_and_start_time() {
        let Ok(tmux) = which::which("tmux") else {
            crate::ground::testing::skip(
                "proc::tests::a_tmux_server_is_recognised_by_socket_session_and_start_time",
                "no tmux",
            );
            return;
        };
        let dir = tempfile::Builder::new().prefix("mvp").tempdir_in("/tmp").unwrap();
        let sock = dir.path().join("s.sock");
        let other = dir.path().join("other.sock");
        let tm = |args: &[&str]| {
            let mut c = Command::new(&tmux);
            c.arg("-S").arg(&sock).arg("-f").arg("/dev/null").args(args).env_remove("TMUX");
            c.stdin(Stdio::null()).stderr(Stdio::null()).process_group(0);
            c
        };
        // Output through a file, with a deadline (a tmux client hands its
        // stdio to the server).
        let run = |args: &[&str]| {
            let mut out = tempfile::tempfile().unwrap();
            let child = tm(args).stdout(out.try_clone().unwrap()).spawn().unwrap();
            let st = wait_deadline(child, Duration::from_secs(5)).unwrap();
            assert!(st.is_some_and(|s| s.success()), "tmux {args:?}");
            let mut s = String::new();
            std::io::Seek::rewind(&mut out).unwrap();
            std::io::Read::read_to_string(&mut out, &mut s).unwrap();
            s
        };
        run(&["new-session", "-d", "-s", "a", "sleep 1000"]);
        let server: i32 = run(&["display-message", "-p", "#{pid}"]).trim().parse().unwrap();
        let start = start_time(server).unwrap();
        let checks = (
            is_tmux_server(server, &sock, Some(start)),
            is_tmux_server(server, &sock, None),
            is_tmux_server(server, &sock, Some(StartTime(start.0 ^ 1))),
            is_tmux_server(server, &other, Some(start)),
            is_tmux_server(std::process::id() as i32, &sock, None),
        );
        // A client on the same socket is not the server.
        let mut client = tm(&["wait-for", "mvp-never"]).stdout(Stdio::null()).spawn().unwrap();
        let client_pid = client.id() as i32;
        assert!(poll(|| argv(client_pid).is_some_and(|a| argv_has(&a, b"wait-for"))));
        let client_is_server = is_tmux_server(client_pid, &sock, None);
        let _ = client.kill();
        let _ = client.wait();
        run(&["kill-server"]);
        assert_eq!(checks, (true, true, false, false, false));
        assert!(!client_is_server);
    }
}
