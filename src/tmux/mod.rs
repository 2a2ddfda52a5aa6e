//! The only code that runs tmux. Every call:
//! - uses the absolute tmux path found once, `-S <socket>` and `-f /dev/null`
//!   (a user's ~/.tmux.conf can make detached servers exit);
//! - runs with `TMUX`/`TMUX_PANE` removed, stdin from /dev/null or a file,
//!   stdout/stderr into anonymous temp files (a tmux client hands its stdio to
//!   the server, so waiting for EOF on a pipe could block forever);
//! - has a deadline: past it the client's process group is SIGKILLed and
//!   reaped, and the caller gets [`TmuxError::Timeout`] (a SIGSTOPped server
//!   accepts connections and never answers).
//!
//! Arguments go through [`Cmd`], which escapes a trailing `;` (tmux's own
//! parser treats it as a command separator even in an exec'd argv) and keeps
//! real separators distinct. Anything that tmux will later hand to `/bin/sh`
//! or format-expand is built with the helpers in [`quote`].

pub mod control;
pub mod launch;
pub mod paste;
pub mod query;
pub mod quote;

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Default deadline for one tmux call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a tmux call did not succeed. Callers branch on this.
#[derive(Debug)]
pub enum TmuxError {
    /// tmux is not installed (exit 69 material).
    Missing(String),
    /// Nothing is listening on the socket: missing file or stale socket.
    NoServer { socket: PathBuf },
    /// The server did not answer within the deadline (hung or stopped).
    Timeout { socket: PathBuf, after: Duration },
    /// tmux ran and failed; its stderr is kept verbatim.
    Failed { socket: PathBuf, status: ExitStatus, stderr: String },
    /// The client could not be spawned or reaped.
    Io { socket: PathBuf, err: std::io::Error },
    /// Nothing was sent: the text may not be typed into a pane (the reason
    /// says why; see `paste::typable`).
    Refused(String),
}

impl fmt::Display for TmuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TmuxError::Missing(m) => write!(f, "{m}"),
            TmuxError::Refused(why) => write!(f, "nothing was typed: {why}"),
            TmuxError::NoServer { socket } => {
                write!(f, "no tmux server is running on {}", socket.display())
            }
            TmuxError::Timeout { socket, after } => write!(
                f,
                "tmux server on {} did not answer within {} ms (hung or stopped?)",
                socket.display(),
                after.as_millis()
            ),
            TmuxError::Failed { socket, status, stderr } => {
                write!(f, "tmux on {} failed ({status}): {}", socket.display(), stderr.trim())
            }
            TmuxError::Io { socket, err } => {
                write!(f, "running tmux on {}: {err}", socket.display())
            }
        }
    }
}

impl std::error::Error for TmuxError {}

impl TmuxError {
    /// True for "no server" and for tmux's own "can't find session/pane".
    pub fn is_gone(&self) -> bool {
        match self {
            TmuxError::NoServer { .. } => true,
            TmuxError::Failed { stderr, .. } => {
                // "no current target": a server with no session left at all.
                stderr.contains("can't find")
                    || stderr.contains("no such session")
                    || stderr.contains("no current target")
            }
            _ => false,
        }
    }
}

/// Convert into an anyhow error carrying the right exit status (69 when tmux
/// is missing).
impl TmuxError {
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            TmuxError::Missing(_) => {
                anyhow::Error::new(crate::ground::exit::Exit::Unavailable).context(self.to_string())
            }
            other => anyhow::Error::new(other),
        }
    }
}

/// Where tmux is looked for after PATH: Homebrew on Apple silicon, Homebrew
/// on Intel Macs (and hand-built installs), MacPorts. launchd and cron run
/// the tick with a minimal PATH (`/usr/bin:/bin:/usr/sbin:/sbin` under
/// launchd) that has none of them.
pub const FALLBACK_DIRS: [&str; 3] = ["/opt/homebrew/bin", "/usr/local/bin", "/opt/local/bin"];

/// The absolute path of tmux, looked up once per process: `MUXVISOR_TMUX`
/// if set, else PATH, then [`FALLBACK_DIRS`]. See [`find_tmux`].
pub fn tmux_path() -> Result<&'static Path, TmuxError> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let fallbacks: Vec<&Path> = FALLBACK_DIRS.iter().map(Path::new).collect();
    PATH.get_or_init(|| {
        find_tmux(std::env::var_os("MUXVISOR_TMUX"), std::env::var_os("PATH"), &fallbacks)
    })
    .as_deref()
    .map_err(|m| TmuxError::Missing(m.clone()))
}

/// Find tmux. An explicit `MUXVISOR_TMUX` wins and is not second-guessed: a
/// path must be an executable file (else the error names the variable, not
/// PATH); a bare name is searched like tmux itself. Otherwise `tmux` on
/// `path`, then in `fallbacks`. The error names every place it looked.
pub fn find_tmux(
    explicit: Option<OsString>,
    path: Option<OsString>,
    fallbacks: &[&Path],
) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = path.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let dirs: Vec<String> = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .chain(fallbacks.iter().map(|d| d.display().to_string()))
        .collect();
    let search = |name: &str| which::which_in(name, Some(dirs.join(":")), "/").ok();
    let places = || {
        format!(
            "PATH ({}) and {}",
            if path.is_empty() { "empty".to_string() } else { path.clone() },
            fallbacks.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    };
    match explicit.filter(|p| !p.is_empty()) {
        Some(p) if Path::new(&p).components().count() > 1 => {
            let p = PathBuf::from(p);
            match std::fs::metadata(&p) {
                Ok(md) if md.is_file() && md.permissions().mode() & 0o111 != 0 => Ok(p),
                Ok(_) => Err(format!(
                    "MUXVISOR_TMUX={} is not an executable file; point it at tmux, or unset it \
                     to search PATH and {}",
                    p.display(),
                    FALLBACK_DIRS.join(", ")
                )),
                Err(e) => Err(format!(
                    "MUXVISOR_TMUX={} cannot be used ({e}); point it at tmux, or unset it to \
                     search PATH and {}",
                    p.display(),
                    FALLBACK_DIRS.join(", ")
                )),
            }
        }
        Some(name) => {
            let name = name.to_string_lossy().into_owned();
            search(&name).ok_or_else(|| {
                format!(
                    "MUXVISOR_TMUX={name} was not found in {}; give its absolute path",
                    places()
                )
            })
        }
        None => search("tmux").ok_or_else(|| {
            format!(
                "tmux was not found in {}; install it (apt-get install tmux, brew install tmux) \
                 or point MUXVISOR_TMUX at it",
                places()
            )
        }),
    }
}

/// One tmux command line (possibly several commands joined by [`Cmd::sep`]).
#[derive(Clone, Debug, Default)]
pub struct Cmd {
    args: Vec<OsString>,
}

impl Cmd {
    pub fn new(verb: &str) -> Cmd {
        Cmd { args: vec![verb.into()] }
    }

    /// A literal argument; a trailing `;` is escaped so tmux keeps it.
    pub fn arg(mut self, a: impl AsRef<str>) -> Cmd {
        self.args.push(quote::escape_trailing_semicolon(a.as_ref()).into());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for a in it {
            self = self.arg(a);
        }
        self
    }

    /// End this command and start `verb` in the same invocation.
    pub fn then(mut self, verb: &str) -> Cmd {
        self.args.push(";".into());
        self.args.push(verb.into());
        self
    }

    pub fn as_args(&self) -> &[OsString] {
        &self.args
    }
}

/// A tmux client bound to one socket.
#[derive(Clone, Debug)]
pub struct Tmux {
    bin: PathBuf,
    socket: PathBuf,
    timeout: Duration,
    /// The client's whole environment, when it must not be ours (see
    /// [`Tmux::with_env`]).
    env: Option<Vec<(String, String)>>,
}

/// What a successful call printed.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Tmux {
    /// A client for the server on `socket`, with the default deadline.
    pub fn new(socket: PathBuf) -> Result<Tmux, TmuxError> {
        Ok(Tmux { bin: tmux_path()?.to_path_buf(), socket, timeout: DEFAULT_TIMEOUT, env: None })
    }

    pub fn with_timeout(mut self, t: Duration) -> Tmux {
        self.timeout = t;
        self
    }

    /// Run the client with exactly `env` as its environment. A client that
    /// starts a server gives it its environment, which becomes the
    /// server's global environment and so every pane's; and `new-session`
    /// gives the new pane the *client's* PATH, over a `-e PATH=...` (tmux
    /// 3.3a, verified: `env PATH=/usr/bin tmux new-session -e PATH=/x --
    /// sh -c 'echo $PATH'` prints `/usr/bin`), and looks the program up on
    /// it. So a launch runs its client with the peer's environment only.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Tmux {
        self.env = Some(env);
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The client command line: our socket, no user config, no inherited
    /// `TMUX` (which would make tmux talk to the caller's own server).
    pub(super) fn command(&self, cmd: &Cmd) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(cmd.as_args())
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        if let Some(env) = &self.env {
            c.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        }
        c
    }

    /// Run `cmd` against this server.
    pub fn run(&self, cmd: &Cmd) -> Result<Output, TmuxError> {
        self.run_with_stdin(cmd, None)
    }

    /// Run `cmd` with `input` as its stdin (for `load-buffer -`).
    pub fn run_with_stdin(&self, cmd: &Cmd, input: Option<&[u8]>) -> Result<Output, TmuxError> {
        let io = |err| TmuxError::Io { socket: self.socket.clone(), err };
        let stdin = match input {
            None => Stdio::null(),
            Some(bytes) => {
                let mut f = tempfile::tempfile().map_err(io)?;
                f.write_all(bytes).map_err(io)?;
                f.seek(SeekFrom::Start(0)).map_err(io)?;
                Stdio::from(f)
            }
        };
        let mut out = tempfile::tempfile().map_err(io)?;
        let mut err = tempfile::tempfile().map_err(io)?;
        let mut command = self.command(cmd);
        command
            .stdin(stdin)
            .stdout(out.try_clone().map_err(io)?)
            .stderr(err.try_clone().map_err(io)?)
            .process_group(0);
        let child = command.spawn().map_err(io)?;
        let status = crate::ground::proc::wait_deadline(child, self.timeout).map_err(io)?;
        let Some(status) = status else {
            return Err(TmuxError::Timeout { socket: self.socket.clone(), after: self.timeout });
        };
        let read = |f: &mut File| -> std::io::Result<String> {
            let mut s = String::new();
            f.seek(SeekFrom::Start(0))?;
            f.read_to_string(&mut s).or(Ok::<_, std::io::Error>(0))?;
            Ok(s)
        };
        let stdout = read(&mut out).map_err(io)?;
        let stderr = read(&mut err).map_err(io)?;
        if status.success() {
            return Ok(Output { stdout, stderr });
        }
        if stderr.contains("no server running on")
            || stderr.contains("error connecting to")
            || stderr.contains("server exited unexpectedly")
        {
            return Err(TmuxError::NoServer { socket: self.socket.clone() });
        }
        Err(TmuxError::Failed { socket: self.socket.clone(), status, stderr })
    }

    /// Spawn a long-lived client (the canary's `wait-for`): same hygiene, no
    /// deadline, stdio null, its own process group. The caller owns the child
    /// and must spawn it from the thread that lives as long as it should: on
    /// Linux the client is SIGKILLed when that thread's process dies (so a
    /// killed canary leaves no client blocked forever); elsewhere the caller
    /// reaps orphans itself (`canary::end_orphan_waiters`).
    pub fn spawn(&self, cmd: &Cmd) -> Result<Child, TmuxError> {
        let mut c = self.command(cmd);
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        crate::ground::proc::die_with_parent(&mut c);
        c.spawn().map_err(|err| TmuxError::Io { socket: self.socket.clone(), err })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_escapes_trailing_semicolons_but_not_separators() {
        let c = Cmd::new("send-keys").arg("a;").arg(";").arg("x").then("list-panes");
        let v: Vec<_> = c.as_args().iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(v, ["send-keys", "a\\;", "\\;", "x", ";", "list-panes"]);
    }

    #[test]
    fn tmux_is_found_on_path_then_in_the_fallbacks_and_errors_name_every_place() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::Builder::new().prefix("mvt").tempdir_in("/tmp").unwrap();
        let (on_path, brew, empty) =
            (t.path().join("p"), t.path().join("brew"), t.path().join("e"));
        for d in [&on_path, &brew, &empty] {
            std::fs::create_dir_all(d).unwrap();
        }
        let exe = |p: &Path| {
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        exe(&brew.join("tmux"));
        let os = |p: &Path| Some(p.as_os_str().to_owned());
        let fb = [empty.as_path(), brew.as_path()];

        // Not on PATH: the fallback directories are searched in order.
        assert_eq!(find_tmux(None, os(&on_path), &fb).unwrap(), brew.join("tmux"));
        assert_eq!(find_tmux(None, None, &fb).unwrap(), brew.join("tmux"));
        // PATH first.
        exe(&on_path.join("tmux"));
        assert_eq!(find_tmux(None, os(&on_path), &fb).unwrap(), on_path.join("tmux"));
        // Nowhere: every place is named.
        let e = find_tmux(None, os(&empty), &[empty.as_path()]).unwrap_err();
        assert!(e.contains("tmux was not found in PATH") && e.contains(&*empty.to_string_lossy()));
        assert!(e.contains("MUXVISOR_TMUX"), "{e}");

        // An explicit path wins, and a bad one is named as such.
        let mine = t.path().join("my-tmux");
        exe(&mine);
        assert_eq!(find_tmux(os(&mine), os(&on_path), &fb).unwrap(), mine);
        let e = find_tmux(Some("/nonexistent/tmux".into()), os(&on_path), &fb).unwrap_err();
        assert!(e.starts_with("MUXVISOR_TMUX=/nonexistent/tmux cannot be used"), "{e}");
        assert!(!e.contains("not found on PATH"), "{e}");
        let e = find_tmux(os(&empty), os(&on_path), &fb).unwrap_err();
        assert!(e.contains("is not an executable file"), "{e}");
        // A bare name is searched like tmux; empty means unset.
        assert_eq!(find_tmux(Some("my-tmux".into()), os(t.path()), &fb).unwrap(), mine);
        assert!(find_tmux(Some("nope".into()), os(&on_path), &fb).unwrap_err().contains("nope"));
        assert_eq!(find_tmux(Some("".into()), os(&on_path), &fb).unwrap(), on_path.join("tmux"));
    }
}
