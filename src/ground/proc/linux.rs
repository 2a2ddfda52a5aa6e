//! Linux: everything comes from `/proc`. `/proc/<pid>/stat` gives state,
//! parent, group, session and start time in one read; `cmdline` the argv;
//! `status` the resident set. The parsers are pure and unit-tested with the
//! awkward cases (a name with spaces and parentheses, kernel threads).

use std::path::Path;

use super::{Process, Rss, StartTime};

/// The fields of `/proc/<pid>/stat` that muxvisor uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub name: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Field 22: clock ticks after boot.
    pub starttime: u64,
}

/// Parse a `/proc/<pid>/stat` line. The name may hold spaces and
/// parentheses, so it is what lies between the first `(` and the LAST `)`,
/// and the numbered fields are counted after that. Pure.
pub fn parse_stat(stat: &str) -> Option<Stat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the name: state is field 3, starttime field 22.
    let field = |n: usize| f.get(n - 3).copied();
    Some(Stat {
        name,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        starttime: field(22)?.parse().ok()?,
    })
}

/// Split `/proc/<pid>/cmdline` into words (the final NUL ends the last
/// word; it does not start an empty one). Pure.
pub fn parse_cmdline(raw: &[u8]) -> Vec<Vec<u8>> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

/// `Name:` and `VmRSS:` (KiB) from `/proc/<pid>/status`; kernel threads
/// have no `VmRSS`. Pure.
pub fn parse_status_rss(status: &str) -> Option<(String, u64)> {
    let mut name = None;
    let mut rss = None;
    for l in status.lines() {
        if let Some(x) = l.strip_prefix("Name:") {
            name = Some(x.trim().to_string());
        } else if let Some(x) = l.strip_prefix("VmRSS:") {
            rss = x.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    Some((name?, rss?))
}

/// The `SigIgn:` mask of `/proc/<pid>/status` (bit `n - 1` set: signal `n`
/// is ignored). Pure.
pub fn parse_sig_ignored(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn proc_file(pid: i32, leaf: &str) -> std::path::PathBuf {
    Path::new("/proc").join(pid.to_string()).join(leaf)
}

/// `MemAvailable`, in bytes.
pub fn mem_available() -> Option<u64> {
    super::parse_mem_available(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// The running boot's id.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()
}

pub fn info(pid: i32) -> Option<Process> {
    let st = parse_stat(&std::fs::read_to_string(proc_file(pid, "stat")).ok()?)?;
    Some(Process {
        pid,
        ppid: st.ppid,
        pgid: st.pgrp,
        sid: st.session,
        // `X` (dead) is only ever seen for an instant; it is no more alive.
        zombie: matches!(st.state, 'Z' | 'X'),
        // `T`: stopped by a signal; `t`: stopped by a tracer.
        stopped: Some(matches!(st.state, 'T' | 't')),
        start: StartTime(st.starttime),
        name: st.name,
    })
}

pub fn argv(pid: i32) -> Option<Vec<Vec<u8>>> {
    let raw = std::fs::read(proc_file(pid, "cmdline")).ok()?;
    let words = parse_cmdline(&raw);
    // A zombie (and a kernel thread) has an empty cmdline: no argv.
    (!words.is_empty()).then_some(words)
}

pub fn environ(pid: i32) -> Option<Vec<Vec<u8>>> {
    Some(parse_cmdline(&std::fs::read(proc_file(pid, "environ")).ok()?))
}

pub fn ignored_signals(pid: i32) -> Option<u64> {
    parse_sig_ignored(&std::fs::read_to_string(proc_file(pid, "status")).ok()?)
}

pub fn all_pids() -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).collect()
}

/// Candidates for group `pgid` (the caller keeps the live members).
pub fn group_pids(pgid: i32) -> Vec<i32> {
    // No /proc index by group: the group leader is usually the answer, and
    // the scan runs only while a stop waits for a group to go.
    all_pids()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(proc_file(*p, "stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
                .is_some_and(|st| st.pgrp == pgid)
        })
        .collect()
}

pub fn all_rss() -> Vec<Rss> {
    all_pids()
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(proc_file(pid, "status")).ok()?;
            let (name, kib) = parse_status_rss(&status)?;
            Some(Rss { pid, kib, name })
        })
        .collect()
}

/// A pidfd for `pid` (`pidfd_open(2)`, Linux 5.3): readable once it exits.
pub fn watch_exit(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // (or -1), which we own from here on.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Poll the pidfd for at most `limit`: true once its process has exited.
pub fn wait_exit(fd: &std::os::fd::OwnedFd, limit: std::time::Duration) -> std::io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let ms = PollTimeout::try_from(limit.as_millis().min(i32::MAX as u128) as i32)
        .unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, ms) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, state: char, ppid: i32, pgrp: i32, sid: i32, start: u64) -> String {
        // pid (name) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime prio nice threads itreal starttime ...
        format!(
            "4242 ({name}) {state} {ppid} {pgrp} {sid} 34816 4242 4194304 120 0 0 0 1 0 0 0 \
             20 0 1 0 {start} 2445312 220 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0"
        )
    }

    #[test]
    fn stat_lines_with_odd_names() {
        let st = parse_stat(&line("tmux: server", 'S', 1, 77, 77, 52395)).unwrap();
        assert_eq!(
            st,
            Stat {
                name: "tmux: server".into(),
                state: 'S',
                ppid: 1,
                pgrp: 77,
                session: 77,
                starttime: 52395
            }
        );
        let st = parse_stat(&line("a) b (c", 'Z', 9, 5, 4, 7)).unwrap();
        assert_eq!((st.name.as_str(), st.state, st.ppid, st.starttime), ("a) b (c", 'Z', 9, 7));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("12 (sleep) Z 1 5 5"), None, "too short to hold a start time");
    }

    #[test]
    fn cmdlines_split_on_nul() {
        assert_eq!(
            parse_cmdline(b"tmux\0-S\0/r/a b.sock\0"),
            [&b"tmux"[..], b"-S", b"/r/a b.sock"]
        );
        assert_eq!(parse_cmdline(b"sh\0\0x\0"), [&b"sh"[..], b"", b"x"]);
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn status_gives_name_and_rss() {
        let s = "Name:\ttmux: server\nUmask:\t0022\nState:\tS (sleeping)\nVmRSS:\t    3968 kB\n";
        assert_eq!(parse_status_rss(s), Some(("tmux: server".into(), 3968)));
        assert_eq!(parse_status_rss("Name:\tkthreadd\nState:\tS\n"), None);
    }

    #[test]
    fn ignored_signals_mask() {
        // An interactive bash: QUIT (3) and TERM (15) among others.
        let s = "Name:\tbash\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000384004\n";
        let m = parse_sig_ignored(s).unwrap();
        assert!(m & (1 << (15 - 1)) != 0 && m & (1 << (3 - 1)) != 0);
        assert!(m & (1 << (1 - 1)) == 0, "HUP is not ignored");
        assert_eq!(parse_sig_ignored("Name:\tx\n"), None);
    }

    #[test]
    fn our_own_process_reads_back() {
        let me = std::process::id() as i32;
        let p = info(me).unwrap();
        assert_eq!(p.pid, me);
        assert!(!p.zombie);
        assert_eq!(p.ppid, nix::unistd::getppid().as_raw());
        assert_eq!(p.pgid, nix::unistd::getpgrp().as_raw());
        assert!(argv(me).is_some_and(|a| !a.is_empty()));
        assert!(all_rss().iter().any(|r| r.pid == me && r.kib > 0));
    }
}
