//! A wake-up on a change in a few directories, so that a process waiting
//! for files to appear blocks instead of polling. On Linux it is inotify:
//! [`DirWatch::wait`] returns as soon as an entry of a watched directory is
//! created, written, renamed or removed, when a signal arrives, or at the
//! deadline. Elsewhere (or when inotify is refused: a user has 128
//! inotify instances by default, `fs.inotify.max_user_instances`) it
//! sleeps in growing steps, as a poll would.
//!
//! A wake-up is a hint, never the truth: the caller re-reads what it waits
//! for after every return, and an event that arrived between its last look
//! and the wait is still queued in the descriptor, so nothing is missed.

use std::path::Path;
use std::time::{Duration, Instant};

/// Directories watched for changes (see the module header).
#[derive(Debug)]
pub struct DirWatch {
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
    /// The sleep of the polling fallback, doubled at each wait.
    pause: std::cell::Cell<Duration>,
}

/// The fallback's first and longest sleep.
const PAUSE_MIN: Duration = Duration::from_millis(2);
const PAUSE_MAX: Duration = Duration::from_millis(50);

impl DirWatch {
    /// Watch `dirs` (best effort: a directory that cannot be watched makes
    /// the whole watch fall back to polling).
    pub fn new(dirs: &[&Path]) -> DirWatch {
        #[cfg(not(target_os = "linux"))]
        let _ = dirs;
        DirWatch {
            #[cfg(target_os = "linux")]
            fd: inotify(dirs),
            pause: std::cell::Cell::new(PAUSE_MIN),
        }
    }

    /// True when changes wake [`DirWatch::wait`] (inotify), false when it polls.
    pub fn is_live(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Block until a watched directory changes, a signal arrives, or
    /// `until`; with no live watch, sleep one growing step (at most until
    /// `until`). Call [`DirWatch::reset`] when what was waited for came.
    pub fn wait(&self, until: Instant) {
        let left = until.saturating_duration_since(Instant::now());
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            wait_readable(fd, left);
            drain(fd);
            return;
        }
        let pause = self.pause.get();
        std::thread::sleep(pause.min(left));
        self.pause.set((pause * 2).min(PAUSE_MAX));
    }

    /// Start the polling fallback's steps from the shortest again.
    pub fn reset(&self) {
        self.pause.set(PAUSE_MIN);
    }
}

#[cfg(target_os = "linux")]
fn inotify(dirs: &[&Path]) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain syscall; the descriptor is owned below.
    let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mask = libc::IN_CREATE
        | libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_MOVED_TO
        | libc::IN_MOVED_FROM
        | libc::IN_DELETE;
    for dir in dirs {
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        if unsafe { libc::inotify_add_watch(raw, path.as_ptr(), mask | libc::IN_ONLYDIR) } < 0 {
            return None;
        }
    }
    Some(fd)
}

#[cfg(target_os = "linux")]
fn wait_readable(fd: &std::os::fd::OwnedFd, left: Duration) {
    use std::os::fd::AsRawFd;
    let ms = left.as_millis().min(i32::MAX as u128) as i32;
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd. EINTR (a signal) returns early, as documented.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Read the queued events away (their content does not matter).
#[cfg(target_os = "linux")]
fn drain(fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reads into a buffer we own; the descriptor is non-blocking.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_wakes_a_wait_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let w = DirWatch::new(&[dir.path()]);
        if !w.is_live() {
            return; // polling platform: nothing to wake
        }
        let p = dir.path().join("x");
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(p, b"x").unwrap();
        });
        let start = Instant::now();
        w.wait(start + Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5), "woken by the write, not the deadline");
        t.join().unwrap();
    }

    #[test]
    fn a_wait_ends_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let w = DirWatch::new(&[dir.path()]);
        let start = Instant::now();
        w.wait(start + Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
