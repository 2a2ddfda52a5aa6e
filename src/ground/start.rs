//! What a muxvisor process does before its command line is parsed, in place
//! of std's runtime start-up, and how it ends.
//!
//! The binary's `main` is a plain C `main` (`#![no_main]`), so std's
//! `lang_start` never runs. That start-up reads `/proc/self/maps` to find the
//! main thread's stack guard and maps an alternate signal stack, so that a
//! stack overflow prints a message instead of a bare SIGSEGV: about 0.15 ms
//! of every process on this project's 2-core VM, 5 % of a `send`
//! (BENCHMARKS.md, "Start-up without std's runtime"). muxvisor keeps the two
//! parts of it that matter to what it does, here:
//!
//! - **File descriptors 0, 1 and 2 are open.** One that was closed (a caller
//!   that started muxvisor with `>&-`) is opened on `/dev/null`. Otherwise
//!   the first file muxvisor opens (a task file, a lock) would get that
//!   number, and an answer printed to stdout would be written into it.
//! - **SIGPIPE is ignored**, so a closed stdout is an `EPIPE` error that
//!   `main` treats as success (`muxvisor status | head -1`), not a death.
//!   Children start with it back at the default: std's `Command` resets it
//!   because no `-Zon-broken-pipe` was asked for.
//!
//! What is given up: a stack overflow ends the process with SIGSEGV and no
//! message (the kernel's guard gap still stops it), and a panic names the
//! main thread `<unnamed>` instead of `main`. [`finish`] ends the process
//! through `std::process::exit`, which flushes stdout as returning from a
//! Rust `main` does.

use std::process::ExitCode;

/// Make sure fds 0 to 2 are open and SIGPIPE is ignored; see the module doc.
/// Aborts, as std's start-up does, when a closed one cannot be opened on
/// `/dev/null`: printing into a file opened later would be worse.
pub fn init() {
    for fd in 0..=2 {
        // SAFETY: fcntl(F_GETFD) on any number only reads the table.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        // SAFETY: a constant NUL-terminated path; the lowest free number is
        // `fd` itself, since every lower one is open by now.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != fd {
            std::process::abort();
        }
    }
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code of ours.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The exit status `code` carries: std keeps it private, but an `ExitCode`
/// compares equal to the one made from its status.
pub fn status_of(code: ExitCode) -> u8 {
    (0..=u8::MAX).find(|&k| ExitCode::from(k) == code).unwrap_or(1)
}

/// End the process with `code`'s status, stdout flushed.
pub fn finish(code: ExitCode) -> ! {
    std::process::exit(i32::from(status_of(code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_of_reads_back_every_status() {
        for k in [0u8, 1, 2, 69, 75, 130, 255] {
            assert_eq!(status_of(ExitCode::from(k)), k);
        }
        assert_eq!(status_of(ExitCode::SUCCESS), 0);
        assert_eq!(status_of(ExitCode::FAILURE), 1);
    }
}
