//! Observation of one identity's tmux server in (ideally) one round trip:
//! is the socket there, does a server answer, does the session exist, is the
//! pane alive, and if dead with what status. Used by `status`, the tick,
//! `launch` (settle) and `stop`.
//!
//! Acting is kept apart from deciding: [`observe`] only asks tmux (plus one
//! `SIGCHLD` nudge, see below), and the pure [`classify`] turns an
//! observation and the recorded state into the user-facing [`PeerState`].
//!
//! The nudge: tmux before 3.6 sometimes marks a pane dead without reaping its
//! program, so status and signal are both empty and `pane-died` never fires
//! until some other child of the server exits. `SIGCHLD` to the server makes
//! it reap at once; we send it and read once more.
//!
//! A lost socket: something deleted `run/<id>.sock` (a tmp cleaner, a
//! hand) while the server kept running. Without the file nobody can reach
//! the server, and taking it for dead would start a second program next to
//! the first. So when the socket is missing, [`observe`] asks whether the
//! recorded server pid is still OUR tmux server (name, session leader,
//! socket in its argv, and the recorded start time, so a reused pid never
//! passes) and if so sends it `SIGUSR1`, on which tmux re-creates its
//! socket; the re-creation is logged (`ev=socket-recreated`). A server that
//! does not re-create it is observed as [`Seen::Hung`] with its pid: it is
//! there but cannot be reached, and nothing starts a duplicate of it.
//!
//! The kernel's word ([`kernel_look`], decided by the pure [`vouch`]): for
//! a peer the tick only needs to know is still running, the OS can say so
//! without a tmux round trip, whose cost grows with the number of servers
//! on the machine. It vouches only when the recorded server is still OUR
//! tmux server (pid, start time, session leader, socket in its argv), the
//! socket file is there, neither process is stopped (a SIGSTOPped server
//! answers nobody: tmux must time out on it and report it hung) and the
//! recorded pane program is still that server's live child with the
//! recorded start time (a dead pane's program is a zombie or gone; a reused
//! pid has another start time). Anything else, or anything the OS does not
//! tell (macOS's stop status), is no answer: the caller asks tmux as before.
//! What the kernel cannot see (the session's name, a server that runs but
//! does not answer) is why the tick still asks tmux now and then.

use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::ground::paths::Root;
use crate::ground::proc;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;
use crate::model::peer_state::{self, State};
use crate::tmux::{Cmd, Tmux, TmuxError};

/// What tmux says about an identity right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Seen {
    /// Server up, session up, pane's program alive.
    Alive,
    /// Server up, pane dead (remain-on-exit). `status`/`signal` may both be
    /// `None` when tmux < 3.6 lost them.
    PaneDead { status: Option<i32>, signal: Option<String> },
    /// Server answers but the session is missing.
    SessionGone,
    /// No socket file.
    NoSocket,
    /// Socket file present but nothing answers (ECONNREFUSED).
    StaleSocket,
    /// The server did not answer in time.
    Hung,
}

/// One observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub seen: Seen,
    pub pane_pid: Option<i32>,
    pub server_pid: Option<i32>,
    /// Last pane output (tmux `window_activity`).
    pub last_output: Option<DateTime<Utc>>,
    /// When the pane died (tmux `pane_dead_time`, 3.3+).
    pub dead_at: Option<DateTime<Utc>>,
}

impl Observed {
    /// An observation with nothing but `seen` (no server to ask).
    pub fn bare(seen: Seen) -> Observed {
        Observed { seen, pane_pid: None, server_pid: None, last_output: None, dead_at: None }
    }

    /// True when the pane's program is running.
    pub fn is_alive(&self) -> bool {
        self.seen == Seen::Alive
    }

    /// True when a server answers on the socket (alive, dead pane, or no session).
    pub fn server_answers(&self) -> bool {
        matches!(self.seen, Seen::Alive | Seen::PaneDead { .. } | Seen::SessionGone)
    }
}

/// The state of a peer as `status` shows it (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerState {
    Running,
    Exited,
    SessionGone,
    ServerDead,
    Hung,
    Stopped,
    Failed,
    /// Its launch waits for admission (capacity or memory).
    Queued,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Running => "running",
            PeerState::Exited => "exited",
            PeerState::SessionGone => "session-gone",
            PeerState::ServerDead => "server-dead",
            PeerState::Hung => "hung",
            PeerState::Stopped => "stopped",
            PeerState::Failed => "failed",
            PeerState::Queued => "queued",
        }
    }
}

impl std::fmt::Display for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decide the user-facing state from what tmux said and what we recorded.
///
/// A live program is `running` and a server that does not answer is `hung`
/// whatever the record says. With no server: never launched or stopped on
/// purpose is `stopped`, else `failed` if the restart budget is spent, else
/// `server-dead`. With a server but no live program: `failed` if the budget
/// is spent, else `exited` (dead pane) or `session-gone`. A launch held by
/// admission makes a peer that is not running `queued`.
pub fn classify(obs: &Observed, st: &State) -> PeerState {
    if st.held.is_some() && !matches!(obs.seen, Seen::Alive | Seen::Hung) {
        return PeerState::Queued;
    }
    match obs.seen {
        Seen::Alive => PeerState::Running,
        Seen::Hung => PeerState::Hung,
        Seen::NoSocket | Seen::StaleSocket => {
            if st.launched_at.is_none() || st.stopped {
                PeerState::Stopped
            } else if st.failed {
                PeerState::Failed
            } else {
                PeerState::ServerDead
            }
        }
        Seen::PaneDead { .. } if st.failed => PeerState::Failed,
        Seen::PaneDead { .. } => PeerState::Exited,
        Seen::SessionGone if st.failed => PeerState::Failed,
        Seen::SessionGone if st.stopped => PeerState::Stopped,
        Seen::SessionGone => PeerState::SessionGone,
    }
}

/// The `list-panes` format: fields are numeric or empty, so `|` is a safe
/// separator that keeps empty fields visible.
const FORMAT: &str = "#{pid}|#{pane_pid}|#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{window_activity}|#{pane_dead_time}";

/// Parse one `list-panes` line in [`FORMAT`]. Pure.
pub fn parse_panes(stdout: &str) -> Option<Observed> {
    let line = stdout.lines().next()?;
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 7 {
        return None;
    }
    let int = |s: &str| s.trim().parse::<i32>().ok();
    let time = |s: &str| {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|t| *t > 0)
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
    };
    let dead = f[2].trim() == "1";
    let seen = if dead {
        Seen::PaneDead {
            status: int(f[3]),
            signal: Some(f[4].trim()).filter(|s| !s.is_empty()).map(str::to_string),
        }
    } else {
        Seen::Alive
    };
    Some(Observed {
        seen,
        server_pid: int(f[0]),
        pane_pid: int(f[1]),
        last_output: time(f[5]),
        dead_at: if dead { time(f[6]) } else { None },
    })
}

/// Observe `id`'s server, spending at most about `timeout` on tmux.
pub fn observe(root: &Root, id: &Identity, timeout: Duration) -> Result<Observed> {
    let socket = root.socket(id);
    if !socket_exists(&socket) {
        match recover_socket(root, id, timeout.min(SOCKET_WAIT)) {
            None => return Ok(Observed::bare(Seen::NoSocket)),
            Some(SocketRecovery { server_pid, recreated: false }) => {
                return Ok(Observed { server_pid: Some(server_pid), ..Observed::bare(Seen::Hung) });
            }
            Some(SocketRecovery { recreated: true, .. }) => {}
        }
    }
    let start = Instant::now();
    let tmux = Tmux::new(socket.clone()).map_err(TmuxError::into_anyhow)?.with_timeout(timeout);
    let first = read_once(&tmux, id)?;
    let lost_status = matches!(first.seen, Seen::PaneDead { status: None, signal: None });
    if !lost_status {
        return Ok(first);
    }
    let Some(server) = first.server_pid else { return Ok(first) };
    nudge(server);
    // Give the server a moment to reap; bounded by what is left of
    // `timeout` (at most 500 ms), and only on this rare path.
    let deadline = start + timeout.min(start.elapsed() + Duration::from_millis(500));
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(first);
        }
        let again = read_once(&tmux.clone().with_timeout(left), id)?;
        match again.seen {
            Seen::PaneDead { status: None, signal: None } => {}
            // A re-read cut short by our own deadline says nothing new.
            Seen::Hung => return Ok(first),
            _ => return Ok(again),
        }
    }
}

/// What the OS says about a recorded incarnation's two processes, gathered
/// by [`kernel_look`] and judged by [`vouch`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelFacts {
    /// The socket file is there.
    pub socket: bool,
    /// The process that now has the recorded server pid.
    pub server: Option<proc::Process>,
    /// Its argv names the socket (a tmux server keeps the argv of the
    /// client that started it).
    pub serves_socket: bool,
    /// The process that now has the recorded pane pid.
    pub pane: Option<proc::Process>,
}

/// The observation tmux would give of `st`'s incarnation, if the kernel's
/// facts `k` prove its program runs (see the module header): `Alive`, with
/// the recorded pids and no output time (tmux alone knows it; a caller that
/// needs it asks tmux). `None` as soon as anything is off or unknown. Pure.
pub fn vouch(st: &State, k: &KernelFacts) -> Option<Observed> {
    let (server_pid, server_start) = (st.server_pid?, st.server_start?);
    let (pane_pid, pane_start) = (st.pane_pid?, st.pane_start?);
    let server = k.server.as_ref()?;
    let pane = k.pane.as_ref()?;
    let running = |p: &proc::Process| !p.zombie && p.stopped == Some(false);
    let server_ok = server.pid == server_pid
        && server.start == server_start
        && running(server)
        && server.sid == server_pid
        && server.name.starts_with("tmux")
        && k.serves_socket;
    let pane_ok = pane.pid == pane_pid
        && pane.start == pane_start
        && running(pane)
        && pane.ppid == server_pid
        && pane.pgid == pane_pid;
    (k.socket && server_ok && pane_ok).then_some(Observed {
        seen: Seen::Alive,
        pane_pid: Some(pane_pid),
        server_pid: Some(server_pid),
        last_output: None,
        dead_at: None,
    })
}

/// Ask the OS (never tmux) about `st`'s recorded server and pane; see
/// [`vouch`]. A handful of small reads of `/proc` on Linux.
pub fn kernel_look(root: &Root, id: &Identity, st: &State) -> Option<Observed> {
    let socket = root.socket(id);
    let server = proc::info(st.server_pid?);
    // The argv is read only for a server that passes the cheaper checks.
    let serves_socket = server.as_ref().is_some_and(|p| !p.zombie && p.stopped == Some(false))
        && proc::argv(st.server_pid?)
            .is_some_and(|a| proc::argv_has(&a, socket.as_os_str().as_encoded_bytes()));
    let k = KernelFacts {
        socket: socket_exists(&socket),
        server,
        serves_socket,
        pane: proc::info(st.pane_pid?),
    };
    vouch(st, &k)
}

/// How long to wait for a server to re-create its socket after SIGUSR1
/// (tmux does it at once; this bounds a busy machine).
const SOCKET_WAIT: Duration = Duration::from_secs(1);

/// What [`recover_socket`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketRecovery {
    /// The recorded server, verified to be our tmux server still.
    pub server_pid: i32,
    /// True when the socket is back.
    pub recreated: bool,
}

/// The recorded server of `id` when it still runs as OUR tmux server (the
/// recorded start time is checked, so a reused pid never passes).
pub fn recorded_server(root: &Root, id: &Identity) -> Option<i32> {
    // An unreadable state names no server: nothing to recover, and the
    // commands that need the state report its corruption themselves.
    let st = peer_state::load(root, id).ok()?;
    let pid = st.server_pid?;
    proc::is_tmux_server(pid, &root.socket(id), st.server_start).then_some(pid)
}

/// When `id`'s socket is missing but its recorded server still runs, ask
/// the server to re-create the socket (tmux does on `SIGUSR1`) and wait up
/// to `wait` for it. `None` when the socket is there or no server of ours
/// runs. A re-creation is logged once, as `ev=socket-recreated`.
pub fn recover_socket(root: &Root, id: &Identity, wait: Duration) -> Option<SocketRecovery> {
    let socket = root.socket(id);
    if socket_exists(&socket) {
        return None;
    }
    let server_pid = recorded_server(root, id)?;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server_pid),
        nix::sys::signal::Signal::SIGUSR1,
    );
    let deadline = Instant::now() + wait;
    while !socket_exists(&socket) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let recreated = socket_exists(&socket);
    if recreated {
        let _ = crate::ground::fsutil::chmod_600(&socket);
        let _ = Event::new("socket-recreated")
            .id(id)
            .kv("server_pid", server_pid)
            .kv("socket", socket.display().to_string())
            .append_to(&root.lifecycle_log());
    }
    Some(SocketRecovery { server_pid, recreated })
}

/// `kill(server, SIGCHLD)`: makes a tmux < 3.6 server reap a zombie pane.
pub fn nudge(server_pid: i32) {
    if server_pid > 1 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server_pid),
            nix::sys::signal::Signal::SIGCHLD,
        );
    }
}

fn socket_exists(p: &std::path::Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn read_once(tmux: &Tmux, id: &Identity) -> Result<Observed> {
    let cmd = Cmd::new("list-panes").arg("-t").arg(id.target()).arg("-F").arg(FORMAT);
    match tmux.run(&cmd) {
        Ok(out) => {
            Ok(parse_panes(&out.stdout).unwrap_or_else(|| Observed::bare(Seen::SessionGone)))
        }
        Err(TmuxError::NoServer { .. }) => Ok(Observed::bare(if socket_exists(tmux.socket()) {
            Seen::StaleSocket
        } else {
            Seen::NoSocket
        })),
        Err(TmuxError::Timeout { .. }) => Ok(Observed::bare(Seen::Hung)),
        Err(e @ TmuxError::Failed { .. }) if e.is_gone() => Ok(Observed::bare(Seen::SessionGone)),
        Err(e) => Err(e.into_anyhow().context(format!("observing {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(seen: Seen) -> Observed {
        Observed::bare(seen)
    }

    #[test]
    fn classify_table() {
        let never = State::default();
        let launched = State { launched_at: Some(Utc::now()), ..State::default() };
        let stopped = State { stopped: true, ..launched.clone() };
        let failed = State { failed: true, ..launched.clone() };
        let dead = Seen::PaneDead { status: Some(3), signal: None };
        use PeerState::*;
        let table: Vec<(Seen, &State, PeerState)> = vec![
            (Seen::Alive, &never, Running),
            (Seen::Alive, &stopped, Running),
            (Seen::Alive, &failed, Running),
            (Seen::Hung, &launched, Hung),
            (Seen::Hung, &never, Hung),
            (Seen::NoSocket, &never, Stopped),
            (Seen::StaleSocket, &never, Stopped),
            (Seen::NoSocket, &stopped, Stopped),
            (Seen::StaleSocket, &stopped, Stopped),
            (Seen::NoSocket, &launched, ServerDead),
            (Seen::StaleSocket, &launched, ServerDead),
            (Seen::NoSocket, &failed, Failed),
            (dead.clone(), &launched, Exited),
            (dead.clone(), &failed, Failed),
            (Seen::SessionGone, &launched, SessionGone),
            (Seen::SessionGone, &failed, Failed),
            (Seen::SessionGone, &stopped, Stopped),
        ];
        for (seen, st, want) in table {
            assert_eq!(classify(&obs(seen.clone()), st), want, "{seen:?} {st:?}");
        }
    }

    #[test]
    fn states_serialise_as_the_contract_says() {
        use PeerState::*;
        for (s, want) in [
            (Running, "running"),
            (Exited, "exited"),
            (SessionGone, "session-gone"),
            (ServerDead, "server-dead"),
            (Hung, "hung"),
            (Stopped, "stopped"),
            (Failed, "failed"),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{want}\""));
            assert_eq!(s.as_str(), want);
        }
    }

    /// A record of server 100 (started at tick 5000) and its pane 200
    /// (started at 5001), and what the OS says when both still run.
    fn recorded_and_running() -> (State, KernelFacts) {
        let st = State {
            launched_at: Some(Utc::now()),
            server_pid: Some(100),
            server_start: Some(proc::StartTime(5000)),
            pane_pid: Some(200),
            pane_start: Some(proc::StartTime(5001)),
            ..State::default()
        };
        let process = |pid, ppid, pgid, sid, start, name: &str| proc::Process {
            pid,
            ppid,
            pgid,
            sid,
            zombie: false,
            stopped: Some(false),
            start: proc::StartTime(start),
            name: name.into(),
        };
        let k = KernelFacts {
            socket: true,
            server: Some(process(100, 1, 100, 100, 5000, "tmux: server")),
            serves_socket: true,
            pane: Some(process(200, 100, 200, 200, 5001, "sleep")),
        };
        (st, k)
    }

    #[test]
    fn the_kernel_vouches_only_for_the_recorded_processes_running() {
        let (st, k) = recorded_and_running();
        let alive = vouch(&st, &k).expect("both run as recorded");
        assert_eq!(alive.seen, Seen::Alive);
        assert_eq!((alive.server_pid, alive.pane_pid), (Some(100), Some(200)));
        assert_eq!(alive.last_output, None, "only tmux knows the last output");

        type Change = fn(&mut State, &mut KernelFacts);
        let doubts: Vec<(&str, Change)> = vec![
            ("the pane's pid reused by another program", |_, k| {
                k.pane.as_mut().unwrap().start = proc::StartTime(9999)
            }),
            ("the server's pid reused", |_, k| {
                k.server.as_mut().unwrap().start = proc::StartTime(9999)
            }),
            ("the pane's program gone", |_, k| k.pane = None),
            ("the server gone", |_, k| k.server = None),
            ("the pane's program a zombie (dead, unreaped)", |_, k| {
                k.pane.as_mut().unwrap().zombie = true
            }),
            ("the server a zombie", |_, k| k.server.as_mut().unwrap().zombie = true),
            ("the server stopped (it answers nobody)", |_, k| {
                k.server.as_mut().unwrap().stopped = Some(true)
            }),
            ("the pane's program stopped", |_, k| k.pane.as_mut().unwrap().stopped = Some(true)),
            ("the OS does not say whether the server is stopped", |_, k| {
                k.server.as_mut().unwrap().stopped = None
            }),
            ("the pane's program orphaned (its server killed, SIGHUP ignored)", |_, k| {
                k.pane.as_mut().unwrap().ppid = 1
            }),
            ("the pane's program not leading its group", |_, k| k.pane.as_mut().unwrap().pgid = 7),
            ("the socket file missing", |_, k| k.socket = false),
            ("the server serving another socket", |_, k| k.serves_socket = false),
            ("the server no session leader (a tmux client)", |_, k| {
                k.server.as_mut().unwrap().sid = 1
            }),
            ("the server not tmux", |_, k| k.server.as_mut().unwrap().name = "sleep".into()),
            ("no pane start on record", |st, _| st.pane_start = None),
            ("no server start on record", |st, _| st.server_start = None),
            ("no pane on record", |st, _| st.pane_pid = None),
            ("no server on record", |st, _| st.server_pid = None),
            ("another pid described", |_, k| k.pane.as_mut().unwrap().pid = 201),
        ];
        for (why, change) in doubts {
            let (mut st, mut k) = recorded_and_running();
            change(&mut st, &mut k);
            assert_eq!(vouch(&st, &k), None, "{why}");
        }
    }

    #[test]
    fn parses_alive_and_dead_panes() {
        let a = parse_panes("100|200|0|||1795316917|\n").unwrap();
        assert_eq!(a.seen, Seen::Alive);
        assert_eq!((a.server_pid, a.pane_pid), (Some(100), Some(200)));
        assert_eq!(a.last_output.map(|t| t.timestamp()), Some(1795316917));
        assert_eq!(a.dead_at, None);

        let d = parse_panes("100|200|1|3||1795316917|1795316918").unwrap();
        assert_eq!(d.seen, Seen::PaneDead { status: Some(3), signal: None });
        assert_eq!(d.dead_at.map(|t| t.timestamp()), Some(1795316918));

        let s = parse_panes("100|200|1||15|1|1").unwrap();
        assert_eq!(s.seen, Seen::PaneDead { status: None, signal: Some("15".into()) });

        let lost = parse_panes("100|200|1||||").unwrap();
        assert_eq!(lost.seen, Seen::PaneDead { status: None, signal: None });

        assert!(parse_panes("").is_none());
        assert!(parse_panes("garbage").is_none());
    }
}
