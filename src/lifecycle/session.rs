//! Launch and deliberate stop of one identity's private tmux server.
//!
//! Both run under the identity's lock (`run/<id>.lock`), so two launches of
//! the same identity start one server, and a stop never interleaves with a
//! launch.
//!
//! **Launch** (race-free): refuse if the program already runs, or if its
//! server runs unreachable behind a deleted socket (never a second copy);
//! check that the program exists and is executable (tmux would give a
//! silent dead pane); pre-clean whatever is left on the socket (a stale
//! socket, a dead pane, a hung server) with the stop intent written first
//! so its canary and hook stay silent; then ONE tmux invocation sets
//! `remain-on-exit`, the `pane-died` hook, creates the session, starts
//! `pipe-pane` and reports the pids; the incarnation was recorded in the
//! state BEFORE that invocation (so a launcher killed in between leaves a
//! record the next tick adopts or mourns), the pids (server pid AND start
//! time) are added after it, `ev=launch` appended, and only then the canary
//! ensured (never blocking the launch; it can take half a second, and a
//! launcher killed meanwhile must leave its launch on record). `launch` does not wait for the program to settle,
//! because ephemeral workers need millisecond starts; the CLI calls
//! [`settle`] for that.
//!
//! **Stop**: intent on disk, canary woken, then the pane's process group
//! gets SIGTERM, SIGHUP ([`hup_after`]) and, when `grace` is over, SIGKILL;
//! `kill-server` (or SIGKILL of the server's pid when it cannot be asked),
//! socket removed, `ev=stop`. A recorded pid is signalled only after `proc`
//! confirms it still names the same process. The intent file stays until
//! the next launch so that a late hook or canary wake-up still sees it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::ground::fsutil;
use crate::ground::output;
use crate::ground::paths::Root;
use crate::ground::proc;
use crate::lifecycle::canary;
use crate::lifecycle::observe::{self, Observed, Seen};
use crate::model::logfmt::Event;
use crate::model::peer::{Identity, PeerSpec};
use crate::model::peer_state;
use crate::tmux::launch::{self as tl, LaunchPlan};
use crate::tmux::{Tmux, TmuxError};

/// How long launch/stop wait for another muxvisor holding the identity lock.
pub const LOCK_WAIT: Duration = crate::ground::paths::ID_LOCK_WAIT;

/// The deadline for observations made by launch and stop.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a launch runs in the pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The peer's own program (a persistent peer), resuming its recorded
    /// conversation where it can (see `agent::resume`).
    Program,
    /// The peer's own program, in a new conversation.
    Fresh,
    /// `muxvisor _run <id>`, the runner that feeds an ephemeral peer's tasks
    /// to its program one at a time (see `runner`).
    Runner,
}

/// What `launch` did.
#[derive(Clone, Debug)]
pub struct Launched {
    pub started: bool,
    pub already: bool,
    pub pane_pid: Option<i32>,
}

/// How a stop ended.
#[derive(Clone, Debug)]
pub struct Stopped {
    /// Nothing was running.
    pub was_running: bool,
    /// `term` or `kill`.
    pub how: &'static str,
    pub grace_ms: u128,
}

/// How a freshly launched program died while [`settle`] watched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Death {
    pub status: Option<i32>,
    pub signal: Option<String>,
    /// What was seen (a dead pane, or the session/server gone).
    pub seen: Seen,
}

impl Death {
    /// `exit status 3`, `signal 15`, or what vanished.
    pub fn describe(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(g)) => format!("signal {g}"),
            _ => match self.seen {
                Seen::SessionGone => "its session vanished".into(),
                Seen::NoSocket | Seen::StaleSocket => "its tmux server died".into(),
                _ => "unknown status".into(),
            },
        }
    }
}

/// The environment of a persistent peer's pane: its own (see `peer_env`),
/// its env file read now. It is the whole environment of the tmux client
/// that starts the server, so nothing of the launcher's reaches the pane.
pub fn launch_env(spec: &PeerSpec, root: &Path) -> Result<Vec<(String, String)>> {
    let env = crate::model::peer_env::resolve(spec, root)
        .with_context(|| format!("cannot launch {}", spec.identity))?;
    Ok(env.pairs())
}

/// The most bytes tmux takes for one command line (its arguments with their
/// NULs): a client message is at most 16 KiB with its header, and tmux
/// refuses more with "command too long". Measured on tmux 3.3a: an
/// argument list of 16,337 bytes starts, 16,437 does not; the budget keeps
/// a margin below both.
pub const TMUX_COMMAND_MAX: usize = 16_000;

/// The launch command muxvisor would give tmux for `spec` (a resumed agent
/// start, the longest form), and its size in bytes. The environment is not
/// part of it (it is the client's own). Pure apart from reading nothing:
/// the binary's path and the root are the inputs.
pub fn launch_size(root: &Path, exe: &Path, spec: &PeerSpec) -> usize {
    let argv = match spec.policy {
        crate::model::peer::Policy::Persistent => {
            let rec = crate::model::agent::record::Record::default();
            let uuid = crate::lifecycle::agent::resume::new_uuid();
            let p = crate::lifecycle::agent::resume::plan(spec, &rec, false, &uuid);
            let mut argv = p.argv;
            // Room for a resume's own arguments (a conversation id).
            argv.push("x".repeat(64));
            argv
        }
        crate::model::peer::Policy::Ephemeral => {
            runner_argv(exe, root, spec, spec.workers.saturating_sub(1))
        }
    };
    let plan = LaunchPlan {
        id: &spec.identity,
        exe,
        root,
        cwd: &spec.cwd,
        settings: crate::model::peer_env::settings(),
        argv,
        has_remain_format: true,
    };
    tl::launch_cmd(&plan).as_args().iter().map(|a| a.len() + 1).sum()
}

/// Refuse a spec whose launch tmux would refuse every time ("command too
/// long"): `add` checks it before saving, `launch` before starting.
pub fn check_fits(root: &Path, exe: &Path, spec: &PeerSpec) -> Result<()> {
    let n = launch_size(root, exe, spec);
    if n > TMUX_COMMAND_MAX {
        bail!(
            "{id}'s program and arguments would make a tmux command of {n} bytes, over the \
             {TMUX_COMMAND_MAX} bytes tmux accepts (it refuses with \"command too long\"), so \
             it could never start; put long arguments in a file and pass its path",
            id = spec.identity
        );
    }
    Ok(())
}

/// The environment of a runner's pane: the peer's without its env file
/// (the runner reads the file before each task and gives each program
/// exactly the peer's environment), plus muxvisor's own settings of the
/// launcher, which configure the runner.
pub fn runner_env(spec: &PeerSpec, root: &Path) -> Vec<(String, String)> {
    let mut env = crate::model::peer_env::resolve_without_file(spec, root).pairs();
    env.extend(crate::model::peer_env::settings());
    env
}

/// `muxvisor --root ROOT _run ID [--slot K]`, the argv of a runner's pane
/// (worker slot `slot`; 0, the first runner's, is not written).
pub fn runner_argv(exe: &Path, root: &Path, spec: &PeerSpec, slot: u32) -> Vec<String> {
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        "--root".into(),
        root.to_string_lossy().into_owned(),
        "_run".into(),
        spec.identity.to_string(),
    ];
    if slot > 0 {
        argv.extend(["--slot".to_string(), slot.to_string()]);
    }
    argv
}

/// The PATH the peer's program will get (its `--env`, its env file, or its
/// base; an env file that cannot be read is left out here: the launch
/// reports it).
pub fn peer_path(spec: &PeerSpec) -> String {
    let env = crate::model::peer_env::resolve(spec, Path::new("/"))
        .unwrap_or_else(|_| crate::model::peer_env::resolve_without_file(spec, Path::new("/")));
    env.get("PATH").unwrap_or(crate::model::peer_env::DEFAULT_PATH).to_string()
}

/// Refuse to start `spec`'s program when its working directory is missing
/// or the program cannot be executed (tmux would give a silent dead pane).
pub fn check_startable(spec: &PeerSpec) -> Result<()> {
    let program = spec.command.first().context("peer has no program")?;
    // The peer's PATH (its environment assembled, the password database
    // read when the record lacks a base variable) only for a bare name.
    let path = (!program.contains('/')).then(|| peer_path(spec));
    startable_program(spec, path.as_deref()).map(|_| ())
}

/// [`check_startable`] with the peer's PATH already known (`path`, from
/// its resolved environment); returns the program's resolved path.
pub fn startable_program(spec: &PeerSpec, path: Option<&str>) -> Result<PathBuf> {
    let id = &spec.identity;
    if !spec.cwd.is_dir() {
        bail!(
            "cannot launch {id}: its working directory {} is not a directory; create it or \
             change it with `muxvisor add {id} --cwd DIR -- ...`",
            spec.cwd.display()
        );
    }
    let program = spec.command.first().context("peer has no program")?;
    check_program(program, &spec.cwd, path).with_context(|| format!("cannot launch {id}"))
}

/// Check that `program` can be executed by the pane: an absolute path (or one
/// relative to `cwd`), or a name on `path`. Returns the resolved path.
pub fn check_program(program: &str, cwd: &Path, path: Option<&str>) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let resolved = if program.contains('/') {
        let p = cwd.join(program);
        if !p.exists() {
            bail!("program {program} does not exist (looked in {})", cwd.display());
        }
        p
    } else {
        let search = path.map(str::to_string).unwrap_or_default();
        which::which_in(program, Some(&search), cwd).map_err(|_| {
            anyhow::anyhow!(
                "program {program:?} was not found on the PATH the peer will get ({search}); \
                 give an absolute path, or set the peer's PATH with \
                 `muxvisor add ID --env PATH=... -- PROGRAM...` (it replaces the PATH recorded \
                 at the peer's first add)"
            )
        })?
    };
    let md = std::fs::metadata(&resolved)
        .with_context(|| format!("checking program {}", resolved.display()))?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        bail!("program {} is not an executable file", resolved.display());
    }
    Ok(resolved)
}

/// Start `spec`'s session running `start`. Takes the identity lock itself.
pub fn launch(root: &Root, spec: &PeerSpec, start: Start) -> Result<Launched> {
    let id = &spec.identity;
    let _lock = fsutil::lock_within(&root.id_lock(id), LOCK_WAIT, &format!("launch {id}"))?;
    // A launch that could not record itself would run unaccounted for:
    // refuse an unreadable state before anything starts.
    peer_state::load(root, id)
        .with_context(|| format!("cannot launch {id}; nothing was started"))?;
    let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
    if obs.is_alive() {
        return Ok(Launched { started: false, already: true, pane_pid: obs.pane_pid });
    }
    if let Some(pid) = lost_socket(root, id, &obs) {
        bail!(
            "{id}'s tmux server (pid {pid}) is still running, but its socket {} was deleted \
             and the server did not re-create it on SIGUSR1; not starting a second copy of \
             {id} next to it. End it with `muxvisor stop {id}` (it is found by its pid), \
             then launch again",
            root.socket(id).display()
        );
    }
    let exe = std::env::current_exe().context("finding the muxvisor binary for the exit hook")?;
    let mut start_plan = None;
    let (argv, cwd) = match start {
        Start::Program | Start::Fresh => {
            check_startable(spec)?;
            let prev = crate::model::agent::record::load(root, id);
            let new_id = crate::lifecycle::agent::resume::new_uuid();
            let p =
                crate::lifecycle::agent::resume::plan(spec, &prev, start == Start::Fresh, &new_id);
            let argv = p.argv.clone();
            start_plan = Some(p);
            (argv, spec.cwd.clone())
        }
        // The runner checks the program before each task (a task that
        // cannot start uses up an attempt); its own cwd only matters to a
        // person who attaches.
        Start::Runner => {
            let argv = runner_argv(&exe, root.dir(), spec, 0);
            let cwd = if spec.cwd.is_dir() { spec.cwd.clone() } else { PathBuf::from("/") };
            (argv, cwd)
        }
    };
    check_fits(root.dir(), &exe, spec).with_context(|| format!("cannot launch {id}"))?;
    // An env file that cannot be read fails the launch before anything is
    // touched, naming the file.
    let env = match start {
        Start::Runner => runner_env(spec, root.dir()),
        Start::Program | Start::Fresh => launch_env(spec, root.dir())?,
    };

    // A runner start (the hot path of `send`) skips the scan for strays:
    // its programs die with their runner, and `stop` and `clean` still
    // sweep; an agent's launch pays it (a daemon its last incarnation left).
    let when = if start == Start::Runner { None } else { Some("launch") };
    // The incarnation this launch replaces died, and nobody recorded it
    // (its pane-died hook was killed or never ran, and no tick looked yet):
    // record it now, before its pane and its status go with its server.
    // Every death has a recorded cause, whoever launches next.
    if let Seen::PaneDead { status, signal } = &obs.seen {
        crate::lifecycle::hook::record_missed_exit_locked(
            root,
            id,
            *status,
            signal.as_deref(),
            obs.pane_pid,
            "launch",
        )?;
    }
    teardown_leftovers(root, id, &obs, when)?;
    // A canary of the previous incarnation may still be about to read the
    // intent (a quick stop-then-launch): let it go before removing it.
    if root.stop_intent(id).exists() {
        wait_canary_gone(root, id);
    }
    fsutil::remove_if_exists(&root.stop_intent(id))?;

    let plan = LaunchPlan {
        id,
        exe: &exe,
        root: root.dir(),
        cwd: &cwd,
        settings: crate::model::peer_env::settings(),
        argv,
        has_remain_format: tl::version().is_some_and(|v| v >= (3, 3)),
    };
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?.with_env(env);
    // The record first, the server second: a launcher killed after tmux
    // started the server but before it recorded the pids leaves a live
    // incarnation on record, so the next tick adopts the server (and arms
    // its canary), or records its death.
    let launched_at = Utc::now();
    let before = peer_state::load(root, id)?;
    peer_state::update(root, id, |st| {
        st.launched_at = Some(launched_at);
        st.pane_pid = None;
        st.pane_start = None;
        st.server_pid = None;
        st.server_start = None;
        st.stopped = false;
        st.stop_reason = None;
        st.failed = false;
        st.current_task = None;
        st.held = None;
        st.exe = Some(exe.clone());
    })?;
    let out = match tmux.run(&tl::launch_cmd(&plan)) {
        Ok(out) => out,
        Err(e) => {
            // Nothing started: the record goes back to what it was.
            let _ = peer_state::save(root, id, &before);
            // Do not leave a half-made server (no session, exit-empty off)
            // behind; the intent keeps its hook and canary quiet.
            write_intent(root, id, "failed-launch")?;
            let quick = tmux.clone().with_timeout(Duration::from_secs(1));
            let _ = tl::kill_server(&quick);
            let _ = fsutil::remove_if_exists(&root.socket(id));
            return Err(e.into_anyhow().context(format!("starting the tmux server for {id}")));
        }
    };
    crate::ground::fault::point("launch-started");
    let (server_pid, pane_pid) = tl::parse_pids(&out.stdout);
    let _ = fsutil::chmod_600(&root.socket(id));

    peer_state::update(root, id, |st| {
        st.pane_pid = pane_pid;
        st.pane_start = pane_start(pane_pid, server_pid);
        st.server_pid = server_pid;
        st.server_start = server_pid.and_then(proc::start_time);
    })?;
    if let Some(p) = &start_plan {
        note_start(root, spec, launched_at, p);
    }
    let mut ev = Event::new("launch")
        .id(id)
        .kv("pid", pane_pid.map(|p| p.to_string()).unwrap_or_default())
        .kv("policy", spec.policy);
    if start == Start::Runner {
        ev = ev.kv("runner", 1);
    }
    let logged = ev.append_to(&root.lifecycle_log());
    // The canary last: starting it can take half a second, and a launcher
    // killed meanwhile must leave its launch on record.
    if let Err(e) = canary::ensure(root, id) {
        output::warn(format!("{id}: could not start the server-death canary: {e:#}"));
    }
    logged?;
    Ok(Launched { started: true, already: false, pane_pid })
}

/// The start time of the pane's program `pane`, to record next to its pid:
/// only while it still is the live child of `server` that leads its own
/// group (a program that already ended left nothing to name, and its pid
/// may already be someone else's).
pub fn pane_start(pane: Option<i32>, server: Option<i32>) -> Option<proc::StartTime> {
    let (pane, server) = (pane?, server?);
    let p = proc::info(pane)?;
    (!p.zombie && p.ppid == server && p.pgid == pane).then_some(p.start)
}

/// Start the agent record of a new incarnation: how it was started, the
/// conversation id it uses, and `starting` (so that admission counts it at
/// once); log a resume that fell back to a fresh start. Failures are
/// warnings: the program runs.
fn note_start(
    root: &Root,
    spec: &PeerSpec,
    launched_at: chrono::DateTime<Utc>,
    p: &crate::lifecycle::agent::resume::Plan,
) {
    use crate::model::agent::classify::{AgentState, Source};
    use crate::model::agent::record::{self, Logged, SessionId};
    let id = &spec.identity;
    let tracked = spec.is_agent();
    let noted = record::update(root, id, Some(launched_at), |rec| {
        rec.started_as = Some(p.started_as.to_string());
        if let Some((sid, assigned)) = &p.session_id
            && (*assigned || rec.session_id.as_ref().is_none_or(|s| s.id != *sid))
        {
            rec.session_id = Some(SessionId {
                id: sid.clone(),
                source: if *assigned { "assigned" } else { "resumed" }.into(),
                at: launched_at,
            });
        }
        if tracked {
            rec.last = Some(Logged {
                state: AgentState::Starting,
                reason: None,
                since: launched_at,
                source: Source::Start,
            });
        }
    });
    if let Err(e) = noted {
        output::warn(format!("{id}: could not record its start: {e:#}"));
    }
    let mut events = Vec::new();
    if let Some(old) = &p.resume_failed {
        events.push(
            Event::new("resume-failed")
                .id(id)
                .kv("session_id", old)
                .kv("reason", "its program died before it was ever ready")
                .opt("new_session_id", p.session_id.as_ref().map(|s| s.0.clone())),
        );
    }
    if tracked {
        events.push(
            Event::new("agent-state")
                .id(id)
                .kv("state", "starting")
                .kv("reason", "")
                .kv("source", "start")
                .kv("started_as", p.started_as)
                .opt("session_id", p.session_id.as_ref().map(|s| s.0.clone())),
        );
    }
    for ev in events {
        if let Err(e) = ev.append_to(&root.lifecycle_log()) {
            output::warn(format!("{id}: could not log its start: {e:#}"));
        }
    }
}

/// Watch a freshly launched pane for `dur` (polling every ~50 ms); the
/// program's death if it died in that time.
pub fn settle(root: &Root, id: &Identity, dur: Duration) -> Result<Option<Death>> {
    let deadline = Instant::now() + dur;
    loop {
        let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
        match &obs.seen {
            Seen::Alive | Seen::Hung => {}
            Seen::PaneDead { status, signal } => {
                return Ok(Some(Death {
                    status: *status,
                    signal: signal.clone(),
                    seen: obs.seen.clone(),
                }));
            }
            other => return Ok(Some(Death { status: None, signal: None, seen: other.clone() })),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Deliberately stop `id`: intent, canary, SIGTERM, grace, kill, teardown.
/// `reason` goes to the state (`stop`, `reaped-idle`, ...). Takes the
/// identity lock itself.
pub fn stop(root: &Root, id: &Identity, grace: Duration, reason: &str) -> Result<Stopped> {
    let _lock = fsutil::lock_within(&root.id_lock(id), LOCK_WAIT + grace, &format!("stop {id}"))?;
    let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
    let grace_ms = grace.as_millis();
    let hung = obs.seen == Seen::Hung;
    if !obs.is_alive() && !hung {
        // Runners may outlive what is dead: worker slots' runners after a
        // dead first pane (`--workers N`), and the first runner itself after
        // its server died (it waits for a program that ignores the
        // hang-up). They end first, with their programs and without a hook
        // to record them, as a stop of a live server ends them: a runner
        // left alive would see its program die of the teardown's signals
        // and charge its task an attempt behind the caller's back.
        if let Ok(Some(q)) = crate::model::queue::Queue::open_existing(root, id)
            && !q.live_slots().is_empty()
        {
            if let Ok(tmux) = Tmux::new(root.socket(id)) {
                let _ = tl::unhook_pane_died(&tmux.with_timeout(Duration::from_secs(1)));
            }
            end_slots(root, id, grace, |_| true);
        }
        teardown_leftovers(root, id, &obs, Some("stop"))?;
        peer_state::update(root, id, |st| {
            st.stopped = true;
            st.stop_reason = Some(reason.to_string());
            // A launch held by admission is cancelled: stopped means stopped.
            st.held = None;
        })?;
        return Ok(Stopped { was_running: false, how: "term", grace_ms });
    }
    write_intent(root, id, reason)?;
    let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let quick = tmux.clone().with_timeout(Duration::from_secs(1));
    let server = server_to_end(root, id, &obs);
    let pane_pid = if hung {
        // A stopped server (or one whose socket is lost) cannot tell us its
        // pane: use the recorded one, only while it still is the child of
        // our verified server.
        let st = peer_state::load(root, id).unwrap_or_default();
        let ours = server.filter(|s| s.is_ours(&root.socket(id))).map(|s| s.pid);
        st.pane_pid.filter(|p| ours.is_some_and(|s| proc::leads_group_under(*p, s)))
    } else {
        let _ = tl::signal_canary(&quick, id);
        // No pane-died hook for a deliberate stop: tmux runs hooks
        // asynchronously (`run-shell -b`), and one that ran late, after the
        // next launch removed the intent, would record this stop as a death.
        let _ = tl::unhook_pane_died(&quick);
        obs.pane_pid
    };
    // Every worker slot's runner ends first (after the hook is gone), hung
    // server or not: a hung server cannot end them, and one left running
    // would see its program die of the server's kill and charge its task a
    // retry behind the caller's back.
    end_worker_slots(root, id, grace);
    let how = match pane_pid {
        Some(pgid) if pgid > 1 => terminate_group(pgid, grace, server.map(|s| s.pid)),
        _ => "term",
    };
    kill_server_hard(root, id, &quick, server);
    fsutil::remove_if_exists(&root.socket(id))?;
    let strays = crate::lifecycle::strays::end(root, id, STRAY_GRACE, "stop").len();
    peer_state::update(root, id, |st| {
        st.stopped = true;
        st.stop_reason = Some(reason.to_string());
        st.held = None;
    })?;
    Event::new("stop")
        .id(id)
        .kv("how", how)
        .kv("strays", strays)
        .kv("grace_ms", grace_ms)
        .kv("reason", reason)
        .append_to(&root.lifecycle_log())?;
    Ok(Stopped { was_running: true, how, grace_ms })
}

/// `--workers N`: the runners of the worker windows end with the server,
/// as the first runner does, before anything of theirs can record a task's
/// end: SIGTERM to each one's group (it is its pane's program, and its
/// program shares its group), after the intent is written, SIGKILL to the
/// groups whose runner still holds its lock after `grace`; returns once
/// every slot's lock is free (or 2 s after the SIGKILL), so that the
/// caller settles tasks nobody can finish any more. A pid is only taken
/// from a lock its runner holds. The tasks they ran stay claimed, for the
/// caller to settle.
fn end_worker_slots(root: &Root, id: &Identity, grace: Duration) {
    end_slots(root, id, grace, |k| k > 0);
}

/// `--workers N`: end the runners of the worker slots `which` picks (and
/// with them their programs, which share their groups) as a stop ends
/// them all: SIGTERM, then SIGKILL to those still holding their lock after
/// `grace`; returns once their locks are free (or 2 s after the SIGKILL).
/// The tick's `--task-timeout` backstop ends one slot so, leaving the
/// others and the server running. Returns how many were signalled.
pub fn end_slots(
    root: &Root,
    id: &Identity,
    grace: Duration,
    which: impl Fn(u32) -> bool,
) -> usize {
    let Ok(Some(q)) = crate::model::queue::Queue::open_existing(root, id) else { return 0 };
    let pids = || -> Vec<i32> {
        q.live_slots()
            .into_iter()
            .filter(|(k, _)| which(*k))
            .filter_map(|(_, p)| p)
            .filter(|p| *p > 1)
            .collect()
    };
    let signal_all = |sig: Signal| {
        for pid in pids() {
            let _ = killpg(Pid::from_raw(pid), sig);
        }
    };
    let gone_by = |deadline: Instant| loop {
        if pids().is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let n = pids().len();
    signal_all(Signal::SIGTERM);
    if gone_by(Instant::now() + grace) {
        return n;
    }
    signal_all(Signal::SIGKILL);
    gone_by(Instant::now() + Duration::from_secs(2));
    n
}

/// When a stop sends SIGHUP after SIGTERM, given whether the group's
/// leader ignores SIGTERM (`None`: the OS does not say). Pure.
///
/// - It ignores SIGTERM (an interactive shell): SIGHUP at once, which is
///   what a closing terminal sends and what a shell obeys.
/// - It does not: SIGTERM is being handled; give it half the grace to
///   clean up before SIGHUP (which a program without a HUP handler dies of).
/// - Unknown (macOS): SIGHUP after at most a second, so a shell does not
///   take the whole grace, and half the grace for shorter graces.
pub fn hup_after(grace: Duration, leader_ignores_term: Option<bool>) -> Duration {
    match leader_ignores_term {
        Some(true) => Duration::ZERO,
        Some(false) => grace / 2,
        None => (grace / 2).min(Duration::from_secs(1)),
    }
}

/// The stop sequence for the pane's process group, spread over `grace`:
/// SIGTERM; SIGHUP at [`hup_after`]; SIGKILL when the grace is over. Returns
/// the signal that ended it (`term`, `hup` or `kill`). The server is nudged
/// while we wait so that tmux < 3.6 reaps the leader.
fn terminate_group(pgid: i32, grace: Duration, server_pid: Option<i32>) -> &'static str {
    let pg = Pid::from_raw(pgid);
    let ignores_term = proc::ignores(pgid, libc::SIGTERM);
    if killpg(pg, Signal::SIGTERM) == Err(Errno::ESRCH) {
        return "term";
    }
    let start = Instant::now();
    let gone_by = |deadline: Instant| {
        let mut n = 0u32;
        loop {
            if !proc::group_alive(pgid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            n += 1;
            if n.is_multiple_of(10)
                && let Some(s) = server_pid
            {
                observe::nudge(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    if gone_by(start + hup_after(grace, ignores_term)) {
        return "term";
    }
    let _ = killpg(pg, Signal::SIGHUP);
    if gone_by(start + grace) {
        return "hup";
    }
    let _ = killpg(pg, Signal::SIGKILL);
    gone_by(Instant::now() + Duration::from_secs(2));
    "kill"
}

/// The socket of `id` was deleted under a server that still runs and did
/// not re-create it (observe tried): that server's pid.
fn lost_socket(root: &Root, id: &Identity, obs: &Observed) -> Option<i32> {
    if obs.seen != Seen::Hung || root.socket(id).exists() {
        return None;
    }
    obs.server_pid
}

/// A server to end: its pid and, when known, its start time.
#[derive(Clone, Copy, Debug)]
struct Server {
    pid: i32,
    start: Option<proc::StartTime>,
}

impl Server {
    /// Still our tmux server on `socket` (pid reuse guard).
    fn is_ours(&self, socket: &Path) -> bool {
        proc::is_tmux_server(self.pid, socket, self.start)
    }
}

/// The server a stop or pre-clean ends: the one tmux just named, else the
/// recorded one; with the recorded start time whenever it is the recorded
/// pid, so a pid seen only in the state file is checked against it. When
/// neither is our server on the socket (a hung server whose launch was never
/// recorded: its launcher was killed), the server started for the socket.
fn server_to_end(root: &Root, id: &Identity, obs: &Observed) -> Option<Server> {
    let st = peer_state::load(root, id).unwrap_or_default();
    let recorded = st.server_pid.map(|pid| Server { pid, start: st.server_start });
    let named = match obs.server_pid {
        Some(pid) if Some(pid) == st.server_pid => recorded,
        // Named by tmux just now: read its start time now.
        Some(pid) => Some(Server { pid, start: proc::start_time(pid) }),
        None => recorded,
    };
    let socket = root.socket(id);
    named.filter(|s| s.is_ours(&socket)).or_else(|| serving(&socket))
}

/// The tmux server started for `socket` (its argv names the socket), found
/// by a scan of every process: only when nothing else names it, which is
/// rare, so the scan's cost does not matter.
fn serving(socket: &Path) -> Option<Server> {
    let word = socket.as_os_str().as_encoded_bytes();
    proc::find_by_argv(|a| proc::argv_has(a, word))
        .into_iter()
        .find(|pid| proc::is_tmux_server(*pid, socket, None))
        .map(|pid| Server { pid, start: proc::start_time(pid) })
}

/// Write the deliberate-teardown intent (the hook and the canary read it).
fn write_intent(root: &Root, id: &Identity, reason: &str) -> Result<()> {
    let line = format!("{} {reason} pid={}\n", Utc::now().to_rfc3339(), std::process::id());
    fsutil::atomic_write(&root.stop_intent(id), line.as_bytes())
        .with_context(|| format!("writing the stop intent of {id}"))
}

/// Remove whatever a previous incarnation left on the socket: a server with
/// a dead pane or no session, a hung server, a stale socket file. Silent:
/// the intent is written and the canary signalled first, and we wait for the
/// old canary to leave before returning, so it cannot mistake this for a
/// crash once the intent is removed.
/// `strays`: sweep the processes the program left behind (see `strays`),
/// logged with this word; `None` skips the scan.
fn teardown_leftovers(
    root: &Root,
    id: &Identity,
    obs: &Observed,
    strays: Option<&str>,
) -> Result<()> {
    let recorded = peer_state::load(root, id).unwrap_or_default();
    let socket = root.socket(id);
    match obs.seen {
        Seen::NoSocket => {}
        Seen::StaleSocket => fsutil::remove_if_exists(&socket)?,
        _ => {
            write_intent(root, id, "pre-clean")?;
            let quick = Tmux::new(socket.clone())
                .map_err(TmuxError::into_anyhow)?
                .with_timeout(Duration::from_secs(1));
            if obs.seen != Seen::Hung {
                let _ = tl::signal_canary(&quick, id);
            }
            kill_server_hard(root, id, &quick, server_to_end(root, id, obs));
            fsutil::remove_if_exists(&socket)?;
            wait_canary_gone(root, id);
        }
    }
    if let Some(pgid) = obs.pane_pid.or(recorded.pane_pid) {
        kill_orphaned_group(pgid);
    }
    // What the last incarnation left behind outside its group (a daemon it
    // started, a program that ignored SIGHUP).
    if let Some(when) = strays {
        crate::lifecycle::strays::end(root, id, STRAY_GRACE, when);
    }
    Ok(())
}

/// How long a stray gets between SIGTERM and SIGKILL.
const STRAY_GRACE: Duration = Duration::from_secs(2);

/// Kill what is left of a dead pane's program: a child that ignored the
/// SIGHUP of its closing terminal keeps the dead pane process's group alive
/// (and could finish a task that is about to be retried). Only a group
/// whose leader is gone (or a zombie) is touched: a pid is not reused while
/// a process group of that id still has members, so the members of such a
/// group can only be leftovers of our pane. True if a group was killed.
pub fn kill_orphaned_group(pgid: i32) -> bool {
    if pgid <= 1 || proc::alive(pgid) || !proc::group_alive(pgid) {
        return false;
    }
    killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

/// A runner ends its own session once its queue is drained: the steps of a
/// deliberate stop (intent, no hook, canary told, state, `ev=stop`,
/// `kill-server`, socket removed), taken from inside the pane and without
/// signalling the pane's group, which is the caller. The caller must ignore
/// the SIGHUP that the server's exit sends it.
pub fn retire_self(root: &Root, id: &Identity, reason: &str) -> Result<()> {
    let _lock = fsutil::lock_within(&root.id_lock(id), LOCK_WAIT, &format!("retire {id}"))?;
    write_intent(root, id, reason)?;
    let quick = Tmux::new(root.socket(id))
        .map_err(TmuxError::into_anyhow)?
        .with_timeout(Duration::from_secs(1));
    let _ = tl::unhook_pane_died(&quick);
    let _ = tl::signal_canary(&quick, id);
    peer_state::update(root, id, |st| {
        st.stopped = true;
        st.stop_reason = Some(reason.to_string());
    })?;
    Event::new("stop")
        .id(id)
        .kv("how", "exit")
        .kv("grace_ms", 0)
        .kv("reason", reason)
        .append_to(&root.lifecycle_log())?;
    let server = server_to_end(root, id, &Observed::bare(Seen::Hung));
    kill_server_hard(root, id, &quick, server);
    fsutil::remove_if_exists(&root.socket(id))?;
    Ok(())
}

/// Wait (at most 2 s) for a canary woken by a deliberate teardown to see
/// the intent and exit; it wakes the instant its `wait-for` returns.
fn wait_canary_gone(root: &Root, id: &Identity) {
    let lock = root.canary_lock(id);
    let deadline = Instant::now() + Duration::from_secs(2);
    while fsutil::is_locked(&lock).unwrap_or(false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `kill-server`; if the server does not answer (hung), or cannot be asked
/// (its socket is lost), SIGKILL its pid after checking that it still is
/// our tmux server; then wait for it to go.
fn kill_server_hard(root: &Root, id: &Identity, tmux: &Tmux, server: Option<Server>) {
    let socket = root.socket(id);
    let ours = server.filter(|s| s.is_ours(&socket));
    match tl::kill_server(tmux) {
        Ok(()) => {}
        Err(e) => {
            if let Some(s) = ours {
                let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
            } else if !matches!(e, TmuxError::NoServer { .. }) {
                output::warn(format!(
                    "{id}: tmux server did not answer kill-server and its pid is unknown or \
                     not tmux; remove it by hand if it lingers"
                ));
            }
        }
    }
    // kill-server returns before the server has exited; wait briefly so the
    // socket is really free for the next launch. tmux 3.3a can accept it and
    // never exit (a control client stuck on its list): then it is killed,
    // or removing its socket would leave it running unreachable.
    if let Some(s) = ours {
        let gone_within = |wait: Duration| {
            let deadline = Instant::now() + wait;
            while s.is_ours(&socket) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            !s.is_ours(&socket)
        };
        if !gone_within(Duration::from_secs(2)) {
            let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
            gone_within(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::peer::Policy;

    #[test]
    fn env_has_the_identity() {
        let mut spec = PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Ephemeral,
            vec!["x".into()],
            "/".into(),
        );
        spec.env.insert("A".into(), "1".into());
        spec.base_env = Some([("HOME".to_string(), "/h".to_string())].into());
        let env = launch_env(&spec, Path::new("/r")).unwrap();
        assert!(env.contains(&("A".into(), "1".into())));
        assert!(env.contains(&("HOME".into(), "/h".into())));
        assert!(env.contains(&("MUXVISOR_IDENTITY".into(), "w".into())));
        assert!(env.contains(&("MUXVISOR_ROOT".into(), "/r".into())));
        assert!(env.iter().any(|(k, _)| k == "PATH"), "{env:?}");
    }

    #[test]
    fn program_checks() {
        let cwd = Path::new("/");
        assert!(check_program("sh", cwd, Some("/usr/bin:/bin")).is_ok());
        assert!(check_program("/bin/sh", cwd, None).is_ok());
        let e = check_program("no-such-prog-x", cwd, Some("/usr/bin")).unwrap_err();
        assert!(format!("{e:#}").contains("not found on the PATH"), "{e:#}");
        assert!(check_program("/etc/passwd", cwd, None).is_err());
        assert!(check_program("/no/such", cwd, None).is_err());
    }

    #[test]
    fn hup_follows_term_at_once_for_a_shell_and_later_for_a_cleaner() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let table = [
            (s(10), Some(true), Duration::ZERO),
            (s(10), Some(false), s(5)),
            (s(10), None, s(1)),
            (ms(600), None, ms(300)),
            (ms(600), Some(false), ms(300)),
            (Duration::ZERO, None, Duration::ZERO),
        ];
        for (grace, ignores, want) in table {
            assert_eq!(hup_after(grace, ignores), want, "{grace:?} {ignores:?}");
        }
    }

    #[test]
    fn deaths_describe_themselves() {
        let d = Death { status: Some(3), signal: None, seen: Seen::Alive };
        assert_eq!(d.describe(), "exit status 3");
        let d = Death { status: None, signal: Some("15".into()), seen: Seen::Alive };
        assert_eq!(d.describe(), "signal 15");
    }
}
