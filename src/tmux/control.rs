//! A long-lived control-mode client (`tmux -C attach-session`) for code that
//! asks one server the same small questions many times (the runner's screen
//! tail after every task): each question is one round trip on a socket the
//! client already holds, instead of a tmux process per question.
//!
//! The protocol: every command we write produces one block, `%begin <time>
//! <number> <flags>`, its output lines, then `%end` (or `%error`) with the
//! same time and number; notifications (`%session-changed`, ...) may come
//! between blocks and are skipped. Pane output notifications are switched
//! off (`refresh-client -f no-output`) so nothing accumulates while we do
//! not read. A control client without a size does not resize the window.
//!
//! Only fixed command lines built here are written (tmux parses them as
//! text): identities are already safe (`[a-z0-9_-]`), and a line that would
//! need quoting is refused. Every read has a deadline: a stopped server
//! makes the call fail with [`TmuxError::Timeout`], and the client is then
//! dropped (killed and reaped) by its owner.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Tmux, TmuxError};
use crate::model::peer::Identity;

/// One control-mode connection to an identity's server.
pub struct Control {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    buf: Vec<u8>,
    socket: std::path::PathBuf,
}

impl Control {
    /// Attach to `id`'s session in control mode, with pane output
    /// notifications off.
    pub fn attach(tmux: &Tmux, id: &Identity, timeout: Duration) -> Result<Control, TmuxError> {
        let io = |err| TmuxError::Io { socket: tmux.socket().to_path_buf(), err };
        let mut cmd =
            tmux.command(&super::Cmd::new("-C").arg("attach-session").arg("-t").arg(id.target()));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // A control client that outlives its owner can keep tmux 3.3a from
        // ever finishing a kill-server (seen when the owner was killed while
        // the server was stopped): it dies with the thread attaching it,
        // which must be the one that keeps it (the runner's and the
        // courier's main threads).
        crate::ground::proc::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(io)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io(std::io::Error::other("no pipes to the control client")));
        };
        let mut c = Control { child, stdin, stdout, buf: Vec::new(), socket: tmux.socket().into() };
        // The attach itself answers with an (empty) block first.
        c.read_block(timeout)?;
        c.run_line("refresh-client -f no-output", timeout)?;
        Ok(c)
    }

    /// The last `lines` non-empty-trailing lines of the visible screen.
    pub fn screen_tail(
        &mut self,
        id: &Identity,
        lines: usize,
        timeout: Duration,
    ) -> Result<String, TmuxError> {
        let out = self.run_line(&format!("capture-pane -p -t {}", id.target()), timeout)?;
        let all: Vec<&str> = out.trim_end().lines().collect();
        Ok(all[all.len().saturating_sub(lines)..].join("\n"))
    }

    /// The visible screen of `id`'s pane, whether its program is dead, and
    /// the time of its last output (unix seconds), in one round trip.
    pub fn look(
        &mut self,
        id: &Identity,
        timeout: Duration,
    ) -> Result<(String, bool, Option<i64>), TmuxError> {
        let t = id.target();
        let line = format!(
            "capture-pane -p -t {t} ; display-message -p -t {t} '#{{pane_dead}} #{{window_activity}}'\n"
        );
        let io = |err| TmuxError::Io { socket: self.socket.clone(), err };
        self.stdin.write_all(line.as_bytes()).map_err(io)?;
        let screen = self.read_block(timeout);
        let meta = self.read_block(timeout)?;
        let (dead, activity) = parse_meta(&meta);
        Ok((screen?, dead, activity))
    }

    /// Write one fixed command line and return its output.
    pub fn run_line(&mut self, line: &str, timeout: Duration) -> Result<String, TmuxError> {
        if line.contains(['\n', '\'', '"', '\\', '#', ';']) {
            return Err(self.failed(format!("refusing to write {line:?} to a control client")));
        }
        let io = |err| TmuxError::Io { socket: self.socket.clone(), err };
        self.stdin.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
        self.read_block(timeout)
    }

    fn failed(&self, stderr: String) -> TmuxError {
        TmuxError::Io { socket: self.socket.clone(), err: std::io::Error::other(stderr) }
    }

    /// Read up to the next complete `%begin` ... `%end`/`%error` block.
    fn read_block(&mut self, timeout: Duration) -> Result<String, TmuxError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((ok, body)) = self.take_block() {
                return if ok { Ok(body) } else { Err(self.failed(body)) };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TmuxError::Timeout { socket: self.socket.clone(), after: timeout });
            }
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.stdout.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX))
                .map_err(|e| self.failed(format!("poll: {e}")))?;
            if ready == 0 {
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stdout
                .read(&mut chunk)
                .map_err(|err| TmuxError::Io { socket: self.socket.clone(), err })?;
            if n == 0 {
                return Err(TmuxError::NoServer { socket: self.socket.clone() });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Cut the first complete block out of the buffer: (succeeded, body).
    fn take_block(&mut self) -> Option<(bool, String)> {
        let (consumed, block) = parse_block(&self.buf)?;
        self.buf.drain(..consumed);
        Some(block)
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<pane_dead> <window_activity>` as `display-message` prints it. Pure.
pub fn parse_meta(s: &str) -> (bool, Option<i64>) {
    let mut it = s.split_whitespace();
    let dead = it.next() == Some("1");
    (dead, it.next().and_then(|a| a.parse().ok()).filter(|a| *a > 0))
}

/// Find the first complete block in `buf`: the bytes it spans (including
/// anything skipped before it) and (ok, body). Lines outside a block are
/// notifications. The end line must repeat the begin line's time and
/// number, so output that merely starts with `%end` does not end it. Pure.
pub fn parse_block(buf: &[u8]) -> Option<(usize, (bool, String))> {
    let mut pos = 0;
    let mut open: Option<(String, usize)> = None;
    while let Some(nl) = buf[pos..].iter().position(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(&buf[pos..pos + nl]).into_owned();
        let next = pos + nl + 1;
        match &open {
            None => {
                if let Some(rest) = line.strip_prefix("%begin ") {
                    let key: String = rest.split(' ').take(2).collect::<Vec<_>>().join(" ");
                    open = Some((key, next));
                }
            }
            Some((key, start)) => {
                for (tag, ok) in [("%end ", true), ("%error ", false)] {
                    if let Some(rest) = line.strip_prefix(tag)
                        && rest.split(' ').take(2).collect::<Vec<_>>().join(" ") == *key
                    {
                        let body = String::from_utf8_lossy(&buf[*start..pos]).into_owned();
                        return Some((next, (ok, body)));
                    }
                }
            }
        }
        pos = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_cut_by_their_own_end_line() {
        let buf = b"%session-changed $0 t\n%begin 17 5 1\nline one\n%end 17 4 1\nlast\n%end 17 5 1\n%begin 17 6 1\n";
        let (n, (ok, body)) = parse_block(buf).unwrap();
        assert!(ok);
        assert_eq!(body, "line one\n%end 17 4 1\nlast\n");
        assert_eq!(&buf[n..], b"%begin 17 6 1\n");
        assert_eq!(parse_block(&buf[n..]), None, "incomplete");
        let (_, (ok, body)) = parse_block(b"%begin 1 2 1\nno such pane\n%error 1 2 1\n").unwrap();
        assert!(!ok);
        assert_eq!(body, "no such pane\n");
        let (_, (ok, body)) = parse_block(b"%begin 1 2 0\n%end 1 2 0\n").unwrap();
        assert!(ok && body.is_empty());
    }
}
