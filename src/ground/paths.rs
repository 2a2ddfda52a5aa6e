//! Where everything lives under the root. Pure functions, no I/O: every other
//! module asks here for a path, so the layout is written down exactly once.
//! An `id` here is a plain name that the caller has validated as an
//! identity (`peer::Identity` reads as one): the ground knows no peers.
//!
//! ```text
//! peers/<id>.json            peer spec
//! run/<id>.sock              tmux socket of the identity's private server
//! run/<id>.lock              per-identity lock (launch, stop, restart)
//! run/<id>.canary.lock       held by the live canary (flock; never deleted)
//! run/<id>.stopping          deliberate-teardown intent (canary and hook stay silent)
//! state/<id>.json            last observed state, restart counters, current task
//! queues/<id>/               the durable FIFO (see queue/)
//! logs/lifecycle.log         lifecycle events
//! logs/exits.log             session-exit and server-exit events
//! logs/server-deaths/        forensics snapshots
//! logs/panes/<id>.log        pane output, size-capped
//! logs/notify.log            output of hooks/on-event, size-capped
//! logs/service.out, .err     output of the scheduled tick (launchd, cron)
//! hooks/on-event             the user's notification hook (never created here)
//! run/_notify.lock           held by the one notification runner (flock)
//! run/_notify.cursor         how far the notification runner has delivered
//! supervise.lock             held by a running tick
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a command waits for another muxvisor holding an identity's
/// lock ([`Root::id_lock`]): a launch, a stop, the exit hook.
pub const ID_LOCK_WAIT: Duration = Duration::from_secs(20);

/// Longest socket path the platform's `sun_path` accepts (with its NUL).
#[cfg(target_os = "macos")]
pub const SOCKET_PATH_MAX: usize = 104;
#[cfg(not(target_os = "macos"))]
pub const SOCKET_PATH_MAX: usize = 108;

/// The longest identity, used to check a root against the socket limit once.
pub const LONGEST_ID: usize = 40;

/// Pick the root: `--root` beats `MUXVISOR_ROOT`, which beats
/// `$XDG_STATE_HOME/muxvisor`, which beats `~/.local/state/muxvisor`.
/// Empty values count as unset, and so does a relative `XDG_STATE_HOME`:
/// the XDG Base Directory spec says to ignore it, and honouring it would make
/// the root depend on the current directory (cron and a shell would see two
/// fleets).
pub fn resolve_root(
    flag: Option<PathBuf>,
    muxvisor_root: Option<OsString>,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let nonempty = |v: Option<OsString>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    flag.filter(|p| !p.as_os_str().is_empty())
        .or_else(|| nonempty(muxvisor_root))
        .or_else(|| {
            nonempty(xdg_state_home).filter(|x| x.is_absolute()).map(|x| x.join("muxvisor"))
        })
        .or_else(|| nonempty(home).map(|h| h.join(".local/state/muxvisor")))
}

/// The one spelling of a root directory that muxvisor checks and uses:
/// absolute (relative to `cwd`), without `.` components, repeated or
/// trailing slashes. `link/` and `link/.` name what `link` points to, so
/// checking them as given would follow a symlinked root; their spelling here
/// is `link`, whose `lstat` sees the link. `..` is kept: the kernel resolves
/// it, and it is never a link itself. Pure.
pub fn root_spelling(dir: &Path, cwd: &Path) -> PathBuf {
    let abs = if dir.is_absolute() { dir.to_path_buf() } else { cwd.join(dir) };
    abs.components().collect()
}

/// The state root and every path below it.
#[derive(Clone, Debug)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// `dir` must be absolute; [`crate::ground::fsutil::open_root`] makes it so.
    pub fn new(dir: PathBuf) -> Root {
        Root { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn peers_dir(&self) -> PathBuf {
        self.dir.join("peers")
    }
    pub fn peer_file(&self, id: &str) -> PathBuf {
        self.peers_dir().join(format!("{id}.json"))
    }
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }
    pub fn socket(&self, id: &str) -> PathBuf {
        self.run_dir().join(format!("{id}.sock"))
    }
    pub fn id_lock(&self, id: &str) -> PathBuf {
        self.run_dir().join(format!("{id}.lock"))
    }
    pub fn canary_lock(&self, id: &str) -> PathBuf {
        self.run_dir().join(format!("{id}.canary.lock"))
    }
    pub fn stop_intent(&self, id: &str) -> PathBuf {
        self.run_dir().join(format!("{id}.stopping"))
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn state_file(&self, id: &str) -> PathBuf {
        self.state_dir().join(format!("{id}.json"))
    }
    pub fn queues_dir(&self) -> PathBuf {
        self.dir.join("queues")
    }
    pub fn queue_dir(&self, id: &str) -> PathBuf {
        self.queues_dir().join(id)
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn lifecycle_log(&self) -> PathBuf {
        self.logs_dir().join("lifecycle.log")
    }
    pub fn exits_log(&self) -> PathBuf {
        self.logs_dir().join("exits.log")
    }
    pub fn server_deaths_dir(&self) -> PathBuf {
        self.logs_dir().join("server-deaths")
    }
    pub fn forensics_file(&self, id: &str, unix: i64) -> PathBuf {
        self.server_deaths_dir().join(format!("{id}-{unix}.txt"))
    }
    pub fn panes_dir(&self) -> PathBuf {
        self.logs_dir().join("panes")
    }
    pub fn pane_log(&self, id: &str) -> PathBuf {
        self.panes_dir().join(format!("{id}.log"))
    }
    /// Where the scheduled tick's stdout goes (launchd, cron).
    pub fn service_out(&self) -> PathBuf {
        self.logs_dir().join("service.out")
    }
    /// Where the scheduled tick's stderr goes (launchd, cron).
    pub fn service_err(&self) -> PathBuf {
        self.logs_dir().join("service.err")
    }
    pub fn supervise_lock(&self) -> PathBuf {
        self.dir.join("supervise.lock")
    }
    // The notification files in run/ start with `_`, which no identity can,
    // so they never meet an identity's `run/<id>.lock`.
    pub fn hooks_dir(&self) -> PathBuf {
        self.dir.join("hooks")
    }
    pub fn on_event_hook(&self) -> PathBuf {
        self.hooks_dir().join("on-event")
    }
    pub fn notify_lock(&self) -> PathBuf {
        self.run_dir().join("_notify.lock")
    }
    pub fn notify_cursor(&self) -> PathBuf {
        self.run_dir().join("_notify.cursor")
    }
    pub fn notify_log(&self) -> PathBuf {
        self.logs_dir().join("notify.log")
    }

    /// Every directory muxvisor creates, parents first.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.peers_dir(),
            self.run_dir(),
            self.state_dir(),
            self.queues_dir(),
            self.logs_dir(),
            self.server_deaths_dir(),
            self.panes_dir(),
        ]
    }

    /// Length in bytes of the longest socket path this root can produce.
    pub fn longest_socket_len(&self) -> usize {
        self.run_dir().as_os_str().len() + 1 + LONGEST_ID + ".sock".len()
    }

    /// An error (the message says why and what to do) when some identity's
    /// socket would not fit `sun_path`.
    pub fn check_socket_len(&self) -> anyhow::Result<()> {
        let len = self.longest_socket_len();
        if len >= SOCKET_PATH_MAX {
            anyhow::bail!(
                "root {} is too long: socket paths under it reach {len} bytes, over the \
                 platform limit of {} bytes for a unix socket path; choose a shorter root \
                 with --root or MUXVISOR_ROOT (for example ~/.mv)",
                self.dir.display(),
                SOCKET_PATH_MAX - 1
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn root_precedence() {
        let flag = Some(PathBuf::from("/f"));
        assert_eq!(resolve_root(flag, os("/e"), os("/x"), os("/h")), Some("/f".into()));
        assert_eq!(resolve_root(None, os("/e"), os("/x"), os("/h")), Some("/e".into()));
        assert_eq!(resolve_root(None, None, os("/x"), os("/h")), Some("/x/muxvisor".into()));
        assert_eq!(
            resolve_root(None, os(""), os(""), os("/h")),
            Some("/h/.local/state/muxvisor".into())
        );
        assert_eq!(resolve_root(None, None, None, None), None);
        // Issue #19: a relative XDG_STATE_HOME is ignored, as the XDG spec says.
        assert_eq!(
            resolve_root(None, None, os("state"), os("/h")),
            Some("/h/.local/state/muxvisor".into())
        );
        assert_eq!(
            resolve_root(None, None, os("./x"), os("/h")),
            Some("/h/.local/state/muxvisor".into())
        );
    }

    #[test]
    fn every_spelling_of_a_root_is_one_path() {
        let cwd = Path::new("/home/u");
        for given in ["/t/link", "/t/link/", "/t/link/.", "/t/./link//", "/t//link/./"] {
            assert_eq!(root_spelling(Path::new(given), cwd), Path::new("/t/link"), "{given}");
        }
        assert_eq!(root_spelling(Path::new("link/"), cwd), Path::new("/home/u/link"));
        assert_eq!(root_spelling(Path::new("./link/."), cwd), Path::new("/home/u/link"));
        assert_eq!(root_spelling(Path::new("../s/"), cwd), Path::new("/home/u/../s"));
        assert_eq!(root_spelling(Path::new("/"), cwd), Path::new("/"));
    }

    #[test]
    fn layout() {
        let r = Root::new("/r".into());
        let id = "claude-bob";
        assert_eq!(r.socket(id), Path::new("/r/run/claude-bob.sock"));
        assert_eq!(r.peer_file(id), Path::new("/r/peers/claude-bob.json"));
        assert_eq!(r.state_file(id), Path::new("/r/state/claude-bob.json"));
        assert_eq!(r.queue_dir(id), Path::new("/r/queues/claude-bob"));
        assert_eq!(r.pane_log(id), Path::new("/r/logs/panes/claude-bob.log"));
        assert_eq!(r.forensics_file(id, 7), Path::new("/r/logs/server-deaths/claude-bob-7.txt"));
    }

    #[test]
    fn socket_length_limit_names_the_limit() {
        assert!(Root::new("/tmp/x".into()).check_socket_len().is_ok());
        let long = format!("/tmp/{}", "d".repeat(80));
        let err = Root::new(long.into()).check_socket_len().unwrap_err().to_string();
        assert!(err.contains("limit of"), "{err}");
        assert!(err.contains("shorter root"), "{err}");
    }
}
