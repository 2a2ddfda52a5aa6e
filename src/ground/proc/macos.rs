//! macOS: there is no `/proc`; the kernel answers through libproc and
//! sysctl, all in the `libc` crate:
//! - `proc_pidinfo(PROC_PIDTBSDINFO)`: parent, group, status (`SZOMB` for a
//!   zombie, which this flavour still describes), name, start time;
//! - `getsid(pid)`: the session (not in the BSD info);
//! - `sysctl(KERN_PROCARGS2)`: the argv (layout in [`parse_procargs2`]);
//! - `proc_listallpids`, `proc_listpgrppids`: pids, all or of one group;
//! - `proc_pidinfo(PROC_PIDTASKINFO)`: the resident set.
//!
//! Not answered here: which signals a process ignores (see
//! [`ignored_signals`](kernel::ignored_signals)).
//!
//! The kernel describes other users' processes only partly (no task info,
//! no argv): those answers are `None`, which the callers already expect.
//!
//! [`parse_procargs2`] is pure and compiled everywhere, so its unit tests
//! run on Linux too; the calls into the kernel compile only for macOS.

/// Split a `KERN_PROCARGS2` buffer into argv: a native-endian `int argc`,
/// the executable path and its NUL padding, then `argc` NUL-terminated
/// words (the environment follows; it is not read). Pure.
pub fn parse_procargs2(buf: &[u8]) -> Option<Vec<Vec<u8>>> {
    parse_procargs2_all(buf).map(|(argv, _)| argv)
}

/// The environment strings (`K=V`) that follow the argv in a
/// `KERN_PROCARGS2` buffer. Pure.
pub fn parse_procargs2_env(buf: &[u8]) -> Option<Vec<Vec<u8>>> {
    parse_procargs2_all(buf).map(|(_, env)| env)
}

/// NUL-separated words, as the kernel keeps argv and the environment.
type Words = Vec<Vec<u8>>;

/// `(argv, environment)` of a `KERN_PROCARGS2` buffer: argc, the executable
/// path and its NUL padding, argc words, then `K=V` words up to an empty one.
fn parse_procargs2_all(buf: &[u8]) -> Option<(Words, Words)> {
    let argc = i32::from_ne_bytes(buf.get(..4)?.try_into().ok()?);
    let argc = usize::try_from(argc).ok()?;
    let rest = &buf[4..];
    // Skip the executable path, then the NULs that pad it.
    let path_end = rest.iter().position(|b| *b == 0)?;
    let mut at = path_end;
    while rest.get(at) == Some(&0) {
        at += 1;
    }
    let mut words = Vec::with_capacity(argc);
    for _ in 0..argc {
        let tail = rest.get(at..)?;
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        words.push(tail[..end].to_vec());
        at += end + 1;
    }
    let mut env = Vec::new();
    while let Some(tail) = rest.get(at..).filter(|t| !t.is_empty()) {
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        if end == 0 {
            break;
        }
        env.push(tail[..end].to_vec());
        at += end + 1;
    }
    Some((words, env))
}

#[cfg(target_os = "macos")]
pub use kernel::*;

#[cfg(target_os = "macos")]
mod kernel {
    use std::mem::{MaybeUninit, size_of};
    use std::ptr::null_mut;

    use libc::{c_char, c_int};

    use super::super::{Process, Rss, StartTime};
    use super::parse_procargs2;

    fn text(buf: &[c_char]) -> String {
        let bytes: Vec<u8> = buf.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn bsdinfo(pid: i32) -> Option<libc::proc_bsdinfo> {
        let mut info = MaybeUninit::<libc::proc_bsdinfo>::zeroed();
        let size = size_of::<libc::proc_bsdinfo>() as c_int;
        // SAFETY: the kernel writes at most `size` bytes into a buffer of
        // that size; all-zero bytes are a valid proc_bsdinfo.
        let n = unsafe {
            libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, info.as_mut_ptr().cast(), size)
        };
        if n != size {
            return None;
        }
        // SAFETY: fully written (n == size), and zeroed before that.
        let info = unsafe { info.assume_init() };
        (info.pbi_pid as i32 == pid).then_some(info)
    }

    fn sysctl_u64(name: &std::ffi::CStr) -> Option<u64> {
        let mut v: u64 = 0;
        let mut len = size_of::<u64>();
        // SAFETY: `v` is writable for `len` bytes and `name` ends in NUL.
        let rc = unsafe {
            libc::sysctlbyname(name.as_ptr(), (&mut v as *mut u64).cast(), &mut len, null_mut(), 0)
        };
        (rc == 0).then_some(if len == 4 { v & 0xffff_ffff } else { v })
    }

    /// A kqueue that reports `pid`'s exit (`EVFILT_PROC`, `NOTE_EXIT`).
    pub fn watch_exit(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: kqueue() returns a new descriptor or -1.
        let kq = unsafe { libc::kqueue() };
        if kq < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: we own the new descriptor from here on.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(kq) };
        // SAFETY: all-zero bytes are a valid kevent.
        let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
        ev.ident = pid as libc::uintptr_t;
        ev.filter = libc::EVFILT_PROC;
        ev.flags = libc::EV_ADD | libc::EV_ONESHOT;
        ev.fflags = libc::NOTE_EXIT;
        // SAFETY: one change in, no events out; `ev` lives across the call.
        let rc = unsafe { libc::kevent(kq, &ev, 1, null_mut(), 0, std::ptr::null()) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }

    /// Wait on the kqueue for at most `limit`: true once the process exited.
    pub fn wait_exit(
        fd: &std::os::fd::OwnedFd,
        limit: std::time::Duration,
    ) -> std::io::Result<bool> {
        use std::os::fd::AsRawFd;
        let ts = libc::timespec {
            tv_sec: limit.as_secs() as libc::time_t,
            tv_nsec: limit.subsec_nanos() as libc::c_long,
        };
        // SAFETY: all-zero bytes are a valid kevent.
        let mut out: libc::kevent = unsafe { std::mem::zeroed() };
        // SAFETY: room for one event in `out`; `ts` lives across the call.
        let n = unsafe { libc::kevent(fd.as_raw_fd(), std::ptr::null(), 0, &mut out, 1, &ts) };
        match n {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Available memory: `kern.memorystatus_level` percent of `hw.memsize`.
    pub fn mem_available() -> Option<u64> {
        let total = sysctl_u64(c"hw.memsize")?;
        let level = sysctl_u64(c"kern.memorystatus_level")?.min(100);
        Some(total / 100 * level)
    }

    /// The running boot's id (`kern.bootsessionuuid`).
    pub fn boot_id() -> Option<String> {
        let name = c"kern.bootsessionuuid";
        let mut buf = [0u8; 64];
        let mut len = buf.len();
        // SAFETY: `buf` is writable for `len` bytes and `name` ends in NUL.
        let rc = unsafe {
            libc::sysctlbyname(name.as_ptr(), buf.as_mut_ptr().cast(), &mut len, null_mut(), 0)
        };
        if rc != 0 {
            return None;
        }
        let end = buf[..len].iter().position(|b| *b == 0).unwrap_or(len);
        Some(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    pub fn info(pid: i32) -> Option<Process> {
        let b = bsdinfo(pid)?;
        let name = match text(&b.pbi_name) {
            n if n.is_empty() => text(&b.pbi_comm),
            n => n,
        };
        // SAFETY: getsid only reads the process table.
        let sid = unsafe { libc::getsid(pid) };
        Some(Process {
            pid,
            ppid: b.pbi_ppid as i32,
            pgid: b.pbi_pgid as i32,
            sid: sid.max(0),
            zombie: b.pbi_status == libc::SZOMB,
            stopped: None,
            start: StartTime(
                b.pbi_start_tvsec.saturating_mul(1_000_000).saturating_add(b.pbi_start_tvusec),
            ),
            name,
        })
    }

    /// Not told: the BSD info has no signal dispositions, and the
    /// `kinfo_proc` that has them is not in the libc crate.
    pub fn ignored_signals(_pid: i32) -> Option<u64> {
        None
    }

    fn sysctl_int(mib: &mut [c_int]) -> Option<c_int> {
        let mut v: c_int = 0;
        let mut len = size_of::<c_int>();
        // SAFETY: `v` is an int and `len` says so.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as libc::c_uint,
                (&mut v as *mut c_int).cast(),
                &mut len,
                null_mut(),
                0,
            )
        };
        (rc == 0).then_some(v)
    }

    pub fn argv(pid: i32) -> Option<Vec<Vec<u8>>> {
        parse_procargs2(&procargs2(pid)?).filter(|w| !w.is_empty())
    }

    pub fn environ(pid: i32) -> Option<Vec<Vec<u8>>> {
        super::parse_procargs2_env(&procargs2(pid)?)
    }

    fn procargs2(pid: i32) -> Option<Vec<u8>> {
        let argmax = sysctl_int(&mut [libc::CTL_KERN, libc::KERN_ARGMAX])?;
        let mut buf = vec![0u8; usize::try_from(argmax).ok()?];
        let mut len = buf.len();
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
        // SAFETY: the kernel writes at most `len` bytes into `buf`.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as libc::c_uint,
                buf.as_mut_ptr().cast(),
                &mut len,
                null_mut(),
                0,
            )
        };
        if rc != 0 {
            return None;
        }
        buf.truncate(len);
        Some(buf)
    }

    /// Call a libproc lister (which returns a COUNT of pids) with a buffer
    /// that grows until the answer fits.
    fn list(f: impl Fn(*mut libc::c_void, c_int) -> c_int) -> Vec<i32> {
        let mut cap = usize::try_from(f(null_mut(), 0)).unwrap_or(0) + 64;
        for _ in 0..4 {
            let mut buf = vec![0 as libc::pid_t; cap];
            let bytes = (buf.len() * size_of::<libc::pid_t>()) as c_int;
            let got = f(buf.as_mut_ptr().cast(), bytes);
            let Ok(got) = usize::try_from(got) else { return Vec::new() };
            if got < cap {
                buf.truncate(got);
                buf.retain(|p| *p > 0);
                return buf;
            }
            cap *= 2;
        }
        Vec::new()
    }

    pub fn all_pids() -> Vec<i32> {
        // SAFETY: libproc writes at most `n` bytes into the buffer.
        list(|buf, n| unsafe { libc::proc_listallpids(buf, n) })
    }

    pub fn group_pids(pgid: i32) -> Vec<i32> {
        // SAFETY: as above.
        list(|buf, n| unsafe { libc::proc_listpgrppids(pgid, buf, n) })
    }

    fn rss_kib(pid: i32) -> Option<u64> {
        let mut ti = MaybeUninit::<libc::proc_taskinfo>::zeroed();
        let size = size_of::<libc::proc_taskinfo>() as c_int;
        // SAFETY: as in bsdinfo.
        let n = unsafe {
            libc::proc_pidinfo(pid, libc::PROC_PIDTASKINFO, 0, ti.as_mut_ptr().cast(), size)
        };
        if n != size {
            return None;
        }
        // SAFETY: fully written.
        Some(unsafe { ti.assume_init() }.pti_resident_size / 1024)
    }

    pub fn all_rss() -> Vec<Rss> {
        all_pids()
            .into_iter()
            .filter_map(|pid| {
                let kib = rss_kib(pid)?;
                Some(Rss { pid, kib, name: info(pid)?.name })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(argc: i32, path: &[u8], pad: usize, words: &[&[u8]]) -> Vec<u8> {
        let mut b = argc.to_ne_bytes().to_vec();
        b.extend_from_slice(path);
        b.extend(std::iter::repeat_n(0u8, pad));
        for w in words {
            b.extend_from_slice(w);
            b.push(0);
        }
        b.extend_from_slice(b"PATH=/usr/bin\0HOME=/Users/u\0");
        b
    }

    #[test]
    fn procargs2_gives_argv_without_path_padding_or_environment() {
        let b = buf(3, b"/opt/homebrew/bin/tmux", 5, &[b"tmux", b"-S", b"/r/run/a b.sock"]);
        assert_eq!(parse_procargs2(&b).unwrap(), [&b"tmux"[..], b"-S", b"/r/run/a b.sock"]);
        let b = buf(2, b"/bin/sh", 1, &[b"sh", b""]);
        assert_eq!(parse_procargs2(&b).unwrap(), [&b"sh"[..], b""]);
        assert_eq!(parse_procargs2(&buf(0, b"/x", 1, &[])).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn procargs2_gives_the_environment_after_the_argv() {
        let b = buf(2, b"/bin/sh", 3, &[b"sh", b"-c"]);
        assert_eq!(parse_procargs2_env(&b).unwrap(), [&b"PATH=/usr/bin"[..], b"HOME=/Users/u"]);
        let mut b = buf(1, b"/x", 1, &[b"x"]);
        b.truncate(b.len() - b"HOME=/Users/u\0".len());
        b.extend_from_slice(b"\0junk after the end\0");
        assert_eq!(
            parse_procargs2_env(&b).unwrap(),
            [&b"PATH=/usr/bin"[..]],
            "ends at an empty word"
        );
    }

    #[test]
    fn truncated_procargs2_is_refused() {
        assert_eq!(parse_procargs2(b"\x01\x00"), None);
        assert_eq!(parse_procargs2(&(-1i32).to_ne_bytes()), None);
        let mut b = 5i32.to_ne_bytes().to_vec();
        b.extend_from_slice(b"/x\0a\0");
        assert_eq!(parse_procargs2(&b), None, "fewer words than argc");
    }
}
