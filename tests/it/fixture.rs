//! The test environment: a private root under /tmp (short, so socket paths
//! fit), a way to run the real binary with a deadline, polling helpers, and a
//! `Drop` that tears down every tmux server the test started — by socket and
//! by the pids recorded under this root only. Never by name. Also the one set
//! of helpers the modules share: registering a peer, reading its records,
//! and shortcuts on a queue opened in-process.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use muxvisor::ground::paths::Root;
use muxvisor::model::peer::{Deliver, Identity, PeerSpec, Policy};
use muxvisor::model::queue::{Claim, Claimed, Queue, TaskOutcome};

pub const BIN: &str = env!("CARGO_BIN_EXE_muxvisor");

/// How long one muxvisor invocation may take in a test before it is a failure.
pub const CMD_DEADLINE: Duration = Duration::from_secs(60);

pub struct Env {
    dir: tempfile::TempDir,
    root: PathBuf,
}

/// The result of one invocation.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }
    pub fn code(&self, c: i32) -> &Self {
        assert_eq!(self.code, c, "expected exit {c}, got {self:#?}");
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
    }
}

impl Env {
    pub fn new() -> Env {
        Env::with_root_name("r")
    }

    /// An environment whose root directory is named `name` (hostile-path tests).
    pub fn with_root_name(name: &str) -> Env {
        let dir = tempfile::Builder::new().prefix("mv").tempdir_in("/tmp").expect("temp dir");
        let root = dir.path().join(name);
        Env { dir, root }
    }

    /// The root muxvisor uses (created on first command).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch directory for the test's own files (outside the root).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// A muxvisor command with `--root` set and a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root).args(args);
        c.env_remove("MUXVISOR_ROOT").env_remove("TMUX").env_remove("TMUX_PANE");
        c
    }

    /// Run muxvisor with `args`, stdin null, under [`CMD_DEADLINE`].
    pub fn mv(&self, args: &[&str]) -> Out {
        run_deadline(self.command(args), None, CMD_DEADLINE)
    }

    /// Run muxvisor with `input` on stdin.
    pub fn mv_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        run_deadline(self.command(args), Some(input), CMD_DEADLINE)
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap_or_default()
    }

    /// Lines of `logs/<name>.log` whose `ev=` is `ev`.
    pub fn events(&self, name: &str, ev: &str) -> Vec<String> {
        let needle = format!(" ev={ev} ");
        self.read(&format!("logs/{name}.log"))
            .lines()
            .filter(|l| format!("{l} ").contains(&needle))
            .map(str::to_string)
            .collect()
    }

    /// tmux on this root's socket for `id` (for test set-up and checks).
    pub fn tmux(&self, id: &str, args: &[&str]) -> Out {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(self.root.join(format!("run/{id}.sock")))
            .arg("-f")
            .arg("/dev/null")
            .args(args);
        c.env_remove("TMUX");
        run_deadline(c, None, Duration::from_secs(5))
    }

    /// Pid of `id`'s tmux server from muxvisor's state, if recorded.
    pub fn server_pid(&self, id: &str) -> Option<i32> {
        let s = self.read(&format!("state/{id}.json"));
        let v: serde_json::Value = serde_json::from_str(&s).ok()?;
        v.get("server_pid")?.as_i64().map(|p| p as i32)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // A server whose socket a test deleted: found by its recorded pid,
        // killed only if that pid still is the tmux server of that socket.
        if let Ok(rd) = fs::read_dir(self.root.join("state")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(".json") else { continue };
                let sock = self.root.join(format!("run/{id}.sock"));
                if let Some(p) = self.server_pid(id)
                    && !sock.exists()
                    && muxvisor::ground::proc::is_tmux_server(p, &sock, None)
                {
                    let _ = fs::write(self.root.join(format!("run/{id}.stopping")), b"teardown\n");
                    unsafe {
                        libc::kill(p, libc::SIGCONT);
                        libc::kill(p, libc::SIGKILL);
                    }
                }
            }
        }
        let Ok(rd) = fs::read_dir(self.root.join("run")) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".sock") else { continue };
            // Mark the teardown deliberate so canaries stay silent.
            let _ = fs::write(self.root.join(format!("run/{id}.stopping")), b"test teardown\n");
            let pid = self.server_pid(id);
            if let Some(p) = pid {
                unsafe { libc::kill(p, libc::SIGCONT) };
            }
            let out = self.tmux(id, &["kill-server"]);
            if out.code != 0
                && let Some(p) = pid
            {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

/// Report that `test` was skipped and why, visibly: libtest captures only
/// the `print!`/`eprint!` macros, so this writes to the stderr descriptor
/// itself and `cargo test` shows the line next to the test's "ok". Every
/// skip in the suite goes through here (`docs::every_skip_is_visible`).
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {reason}");
}

/// Poll `cond` until it holds or `timeout` passes; true if it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Run `c` with output in temp files (so a leaked descriptor cannot hang the
/// test) and a deadline; a command past its deadline fails the test.
pub fn run_deadline(mut c: Command, input: Option<&[u8]>, deadline: Duration) -> Out {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let stdin = match input {
        None => Stdio::null(),
        Some(b) => {
            let mut f = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut f, b).unwrap();
            f.seek(SeekFrom::Start(0)).unwrap();
            Stdio::from(f)
        }
    };
    c.stdin(stdin)
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .process_group(0);
    let mut child = c.spawn().expect("spawn");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > deadline {
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("command {c:?} did not finish within {deadline:?}");
        }
        thread::sleep(Duration::from_millis(2));
    };
    let read = |f: &mut fs::File| {
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        s.push_str(&String::from_utf8_lossy(&b));
        s
    };
    Out { code: status.code().unwrap_or(-1), stdout: read(&mut out), stderr: read(&mut err) }
}

// ---------------------------------------------------------------------------
// Peers, their records and their queues, in-process (no command involved).

/// Register a persistent peer running `argv` in the scratch directory, by
/// writing its spec with the library (the same JSON `add` writes), so a
/// test depends on no command.
pub fn add_peer(env: &Env, id: &str, argv: &[&str]) -> PeerSpec {
    add_peer_with(env, id, argv, |_| {})
}

/// [`add_peer`], letting `f` adjust the spec first.
pub fn add_peer_with(
    env: &Env,
    id: &str,
    argv: &[&str],
    f: impl FnOnce(&mut PeerSpec),
) -> PeerSpec {
    let root = muxvisor::ground::fsutil::open_root(env.root()).expect("open root");
    let mut spec = PeerSpec::new(
        Identity::parse(id).unwrap(),
        Policy::Persistent,
        argv.iter().map(|s| s.to_string()).collect(),
        env.scratch().to_path_buf(),
    );
    f(&mut spec);
    muxvisor::model::peer::save(&root, &spec).expect("save peer");
    spec
}

/// [`add_peer`] with `policy` and `deliver`, and retries 100-200 ms apart
/// (so that tests of failing tasks do not wait for the default backoff).
pub fn add_peer_as(env: &Env, id: &str, policy: Policy, command: &[&str], deliver: Deliver) {
    add_peer_with(env, id, command, |spec| {
        spec.policy = policy;
        spec.deliver = deliver;
        spec.backoff = Duration::from_millis(100);
        spec.max_backoff = Duration::from_millis(200);
    });
}

/// `id`'s state record (`state/<id>.json`); `Null` fields when absent.
pub fn state(env: &Env, id: &str) -> serde_json::Value {
    serde_json::from_str(&env.read(&format!("state/{id}.json"))).unwrap_or_default()
}

/// The pane pid `id`'s state records.
pub fn pane_pid(env: &Env, id: &str) -> i32 {
    state(env, id)["pane_pid"].as_i64().expect("pane_pid in state") as i32
}

/// True while `pid` runs. A zombie is dead: in a container whose init does
/// not reap, orphans stay zombies forever.
pub fn alive(pid: i32) -> bool {
    muxvisor::ground::proc::alive(pid)
}

/// Lines of exits.log for `id` with `ev`.
pub fn exits(env: &Env, ev: &str, id: &str) -> Vec<String> {
    env.events("exits", ev)
        .into_iter()
        .filter(|l| l.contains(&format!(" identity={id} ")))
        .collect()
}

/// The value of `key=` in a logfmt line (empty when it has none).
pub fn field(line: &str, key: &str) -> String {
    muxvisor::model::logfmt::parse(line)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// True while a canary holds `id`'s lock.
pub fn canary_watching(env: &Env, id: &str) -> bool {
    let root = Root::new(env.root().to_path_buf());
    muxvisor::lifecycle::canary::is_watching(&root, &Identity::parse(id).unwrap())
}

/// Run muxvisor with extra environment variables.
pub fn mv_env(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let mut c = env.command(args);
    for (k, v) in vars {
        c.env(k, v);
    }
    run_deadline(c, None, CMD_DEADLINE)
}

/// Two steps the tests take as one on a queue opened in-process: the head
/// claimed with no TTL (`None` when nothing was claimed), and a task
/// acknowledged with its outcome written (the runner takes the two halves
/// apart).
pub trait QueueShortcuts {
    fn claim_head(&self, now: DateTime<Utc>) -> anyhow::Result<Option<Claimed>>;
    fn ack(&self, task: &str, outcome: &TaskOutcome) -> anyhow::Result<()>;
}

impl QueueShortcuts for Queue {
    fn claim_head(&self, now: DateTime<Utc>) -> anyhow::Result<Option<Claimed>> {
        Ok(match self.claim(now, None)? {
            Claim::Claimed(c) => Some(c),
            _ => None,
        })
    }

    fn ack(&self, task: &str, outcome: &TaskOutcome) -> anyhow::Result<()> {
        if let Some(name) = self.complete(task, outcome)? {
            self.write_outcome(&name, outcome)?;
        }
        Ok(())
    }
}

/// `muxvisor ARGS` (a `send`) run in a thread with deadline `limit`, its
/// typing held once at the test-only hold point `point` (`typing-read`,
/// `typing-loaded`, `typing-pasted`) until [`stop_server_while_held`]
/// releases it; `extra` is more environment. Returns the thread and the
/// hold file. (`--features fault-injection`.)
#[cfg(feature = "fault-injection")]
pub fn send_held(
    env: &Env,
    args: &[&str],
    point: &str,
    extra: &[(&str, &str)],
    limit: Duration,
) -> (thread::JoinHandle<Out>, PathBuf) {
    let once = env.scratch().join("once");
    let once = once.to_str().expect("a UTF-8 scratch path");
    let mut vars = vec![("MUXVISOR_FAULT_ONCE", once)];
    vars.extend_from_slice(extra);
    send_held_each_time(env, args, point, &vars, limit)
}

/// [`send_held`], but every process that reaches `point` holds there (no
/// `MUXVISOR_FAULT_ONCE`): a runner that types twice holds twice, each
/// time until the test removes the hold file it made.
#[cfg(feature = "fault-injection")]
pub fn send_held_each_time(
    env: &Env,
    args: &[&str],
    point: &str,
    extra: &[(&str, &str)],
    limit: Duration,
) -> (thread::JoinHandle<Out>, PathBuf) {
    let hold = env.scratch().join("hold");
    let mut c = env.command(args);
    c.env("MUXVISOR_FAULT", format!("hold:{point}"))
        .env("MUXVISOR_FAULT_HOLD", &hold)
        .envs(extra.iter().copied())
        .stdin(Stdio::null());
    (thread::spawn(move || run_deadline(c, None, limit)), hold)
}

/// `id`'s tmux server, by its recorded pid, checked to be the server of
/// that socket (so that a test signals only what it started).
pub fn checked_server_pid(env: &Env, id: &str) -> nix::unistd::Pid {
    let server = env.server_pid(id).expect("the state names the server");
    let sock = env.root().join(format!("run/{id}.sock"));
    assert!(muxvisor::ground::proc::is_tmux_server(server, &sock, None), "not {id}'s server");
    nix::unistd::Pid::from_raw(server)
}

/// Stop `id`'s tmux server (found by its recorded pid, checked to be the
/// server of that socket) once a delivery is held at `hold` (the runner
/// or sender created the file), let the delivery go on against the
/// stopped server, and continue the server once `timed_out` holds.
/// (Test-only hold points: `--features fault-injection`.)
#[cfg(feature = "fault-injection")]
pub fn stop_server_while_held(
    env: &Env,
    wait: Duration,
    id: &str,
    hold: &Path,
    timed_out: impl Fn() -> bool,
) -> bool {
    use nix::sys::signal::{Signal, kill};
    assert!(wait_until(wait, || hold.exists()), "the delivery never reached its hold point");
    let pid = checked_server_pid(env, id);
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP the server");
    std::fs::remove_file(hold).expect("release the delivery");
    let seen = wait_until(wait, timed_out);
    kill(pid, Signal::SIGCONT).expect("SIGCONT the server");
    seen
}
