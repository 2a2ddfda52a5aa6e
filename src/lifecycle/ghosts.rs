//! Ghosts: what crashes and kill -9 leave behind under a root. `doctor`
//! reports them and `clean` removes them, so both use this one scan:
//!
//! - a stale socket: `run/<id>.sock` with no server behind it (tmux never
//!   removes its socket, not even after a SIGKILL);
//! - an orphan canary: a process holding `run/<id>.canary.lock` while no
//!   server answers on the socket it was meant to watch;
//! - a lost socket: `run/<id>.sock` deleted while its server runs; the
//!   scan's observation asks the server to re-create it (see `observe`) and
//!   says whether it did;
//! - an orphan `wait-for` client of a killed canary (`canary::orphan_waiters`);
//! - abandoned temp files of `fsutil::atomic_write` (`.<name>.tmp.<nonce>`)
//!   older than ten minutes, outside `queues/` (the queue cleans its own,
//!   under its lock);
//! - an unaccounted server: a tmux server up on `run/<id>.sock` whose peer
//!   spec is missing or invalid, so that no tick supervises it and `status`
//!   has no spec to show it by (the spec was removed by hand, or corrupted).
//!
//! Deciding is pure ([`is_tmp_name`], [`is_orphan`], `canary::is_canary_argv`);
//! acting ([`kill_orphan_canary`], [`remove_stale_socket`]) re-checks under the
//! identity lock and guards against pid reuse before signalling anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::ground::proc;
use crate::lifecycle::canary;
use crate::lifecycle::observe::{self, Seen};
use crate::model::peer::{self, Identity};

/// How old an `atomic_write` temp file must be before it counts as abandoned.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(600);

/// How long to spend asking one server whether it is there.
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// One identity's socket and canary, as found now.
#[derive(Clone, Debug, Serialize)]
pub struct IdScan {
    pub identity: Identity,
    pub socket: PathBuf,
    pub seen: Found,
    /// The server's pid: as tmux reports it, or for a hung server the
    /// recorded one, if that process still is this socket's tmux server.
    pub server_pid: Option<i32>,
    pub canary_watching: bool,
    pub canary_pid: Option<i32>,
    /// Why `peers/<id>.json` is no valid spec (missing, or the parse
    /// error); `None` when it is one.
    pub spec_problem: Option<String>,
    /// The socket was missing while the recorded server ran: `recreated`
    /// (the server re-created it) or `unrecoverable`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_lost: Option<&'static str>,
}

impl IdScan {
    pub fn stale_socket(&self) -> bool {
        self.seen == Found::StaleSocket
    }
    pub fn orphan_canary(&self) -> bool {
        is_orphan(self.canary_watching, self.seen)
    }
    /// A server is up on the socket (answering, or hung).
    pub fn server_up(&self) -> bool {
        server_up(self.seen)
    }
    /// A server is up but no valid spec accounts for it.
    pub fn unaccounted(&self) -> bool {
        self.server_up() && self.spec_problem.is_some()
    }
}

/// What a scan found at one identity's socket: observe's [`Seen`] without
/// the details of a dead pane (serialized `alive`, `pane-dead`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    Alive,
    PaneDead,
    SessionGone,
    NoSocket,
    StaleSocket,
    Hung,
}

impl Found {
    pub fn of(seen: &Seen) -> Found {
        match seen {
            Seen::Alive => Found::Alive,
            Seen::PaneDead { .. } => Found::PaneDead,
            Seen::SessionGone => Found::SessionGone,
            Seen::NoSocket => Found::NoSocket,
            Seen::StaleSocket => Found::StaleSocket,
            Seen::Hung => Found::Hung,
        }
    }

    /// No server is there: the socket is missing, or nothing answers on it.
    pub fn no_server(self) -> bool {
        matches!(self, Found::NoSocket | Found::StaleSocket)
    }
}

/// True when `seen` means a server is there (answering, or hung).
pub fn server_up(seen: Found) -> bool {
    !seen.no_server()
}

/// A canary is an orphan when it holds its lock but no server is there to
/// watch. A hung server is still there: its canary is doing its job.
pub fn is_orphan(watching: bool, seen: Found) -> bool {
    watching && seen.no_server()
}

/// `.<name>.tmp.<nonce>`, the temp-file shape of `fsutil::atomic_write`.
pub fn is_tmp_name(name: &str) -> bool {
    name.starts_with('.') && name.len() > 1 && name[1..].contains(".tmp.")
}

/// Every identity that has a peer file, a socket, a canary lock or a queue.
pub fn identities(root: &Root) -> Result<Vec<Identity>> {
    let mut ids: BTreeSet<Identity> = peer::list(root)?.into_iter().collect();
    for name in names(&root.run_dir())? {
        let stem = name.strip_suffix(".canary.lock").or_else(|| name.strip_suffix(".sock"));
        ids.extend(stem.and_then(|s| Identity::parse(s).ok()));
    }
    // A removed peer can leave its queue behind (rm without --purge).
    for name in names(&root.queues_dir())? {
        ids.extend(Identity::parse(&name).ok());
    }
    Ok(ids.into_iter().collect())
}

/// Every identity with a socket file under `run/`.
pub fn socket_ids(root: &Root) -> Result<Vec<Identity>> {
    Ok(names(&root.run_dir())?
        .iter()
        .filter_map(|n| Identity::parse(n.strip_suffix(".sock")?).ok())
        .collect())
}

/// Entry names of `dir`; none if it does not exist.
fn names(dir: &Path) -> Result<Vec<String>> {
    Ok(fsutil::list_dir(dir)?
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect())
}

/// Look at one identity's socket, canary and spec.
pub fn scan_id(root: &Root, id: &Identity) -> Result<IdScan> {
    let socket = root.socket(id);
    let lost =
        std::fs::symlink_metadata(&socket).is_err() && observe::recorded_server(root, id).is_some();
    // Re-creates a lost socket if it can.
    let obs = observe::observe(root, id, OBSERVE_TIMEOUT)?;
    let socket_lost = lost.then(|| {
        if std::fs::symlink_metadata(&socket).is_ok() { "recreated" } else { "unrecoverable" }
    });
    let watching = canary::is_watching(root, id);
    let server_pid = match obs.seen {
        // A stopped server cannot tell its pid: trust the recorded one only
        // while it still is this socket's tmux server (pid reuse).
        Seen::Hung => crate::model::peer_state::load(root, id).ok().and_then(|st| {
            st.server_pid.filter(|p| {
                crate::ground::proc::is_tmux_server(*p, &root.socket(id), st.server_start)
            })
        }),
        _ => obs.server_pid,
    };
    let spec_problem = match peer::load(root, id) {
        Ok(Some(_)) => None,
        Ok(None) => Some(format!("its peer spec {} does not exist", root.peer_file(id).display())),
        Err(e) => Some(format!("{e:#}")),
    };
    Ok(IdScan {
        identity: id.clone(),
        socket,
        seen: Found::of(&obs.seen),
        server_pid,
        canary_watching: watching,
        canary_pid: if watching { canary::pid(root, id) } else { None },
        spec_problem,
        socket_lost,
    })
}

/// Scan every identity under the root.
pub fn scan(root: &Root) -> Result<Vec<IdScan>> {
    identities(root)?.iter().map(|id| scan_id(root, id)).collect()
}

/// Abandoned temp files under the root (outside `queues/`), older than `age`.
pub fn tmp_files(root: &Root, age: Duration, now: SystemTime) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let skip = root.queues_dir();
    walk(root.dir(), &skip, 0, &mut |p, md| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let old =
            md.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|a| a > age);
        if md.is_file() && is_tmp_name(&name) && old {
            out.push(p.to_path_buf());
        }
    })?;
    out.sort();
    Ok(out)
}

/// Depth-limited walk that never follows a symlink.
fn walk(
    dir: &Path,
    skip: &Path,
    depth: usize,
    f: &mut dyn FnMut(&Path, &std::fs::Metadata),
) -> Result<()> {
    if depth > 4 || dir == skip {
        return Ok(());
    }
    for p in fsutil::list_dir(dir)? {
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.is_dir() {
            walk(&p, skip, depth + 1, f)?;
        } else {
            f(&p, &md);
        }
    }
    Ok(())
}

/// What happened to one orphan canary.
#[derive(Clone, Debug, Serialize)]
pub struct Killed {
    pub pid: i32,
    /// `term` or `kill`.
    pub how: &'static str,
}

/// End the orphan canary of `id`: only if it still holds the lock, still no
/// server answers, and its pid really is that canary (pid reuse guard). The
/// stop intent is written first so that it records nothing on its way out.
pub fn kill_orphan_canary(root: &Root, id: &Identity) -> Result<Option<Killed>> {
    let Some(_id_lock) = fsutil::try_lock(&root.id_lock(id))? else {
        anyhow::bail!("{id} is busy (launching or stopping); run clean again later");
    };
    let now = scan_id(root, id)?;
    if !now.orphan_canary() {
        return Ok(None);
    }
    let pid = now.canary_pid.with_context(|| {
        format!(
            "the canary lock {} of {id} is held but names no pid; find the holder with \
             `fuser {}` and end it",
            root.canary_lock(id).display(),
            root.canary_lock(id).display()
        )
    })?;
    let is_canary = proc::argv(pid).is_some_and(|a| canary::is_canary_argv(&a, id));
    if pid <= 1 || !is_canary {
        anyhow::bail!(
            "the canary lock of {id} names pid {pid}, which is not a muxvisor canary of {id}; \
             not signalling it"
        );
    }
    let intent = root.stop_intent(id);
    let wrote_intent = !intent.exists();
    if wrote_intent {
        fsutil::atomic_write(&intent, b"clean: orphan canary\n")?;
    }
    let result = signal_until_released(root, id, pid);
    if wrote_intent {
        let _ = fsutil::remove_if_exists(&intent);
    }
    result
}

fn signal_until_released(root: &Root, id: &Identity, pid: i32) -> Result<Option<Killed>> {
    use nix::sys::signal::{Signal, kill};
    let target = nix::unistd::Pid::from_raw(pid);
    for (sig, how) in [(Signal::SIGTERM, "term"), (Signal::SIGKILL, "kill")] {
        if kill(target, sig).is_err() {
            // Gone already: the lock is free or about to be.
            return Ok(Some(Killed { pid, how }));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !canary::is_watching(root, id) {
                return Ok(Some(Killed { pid, how }));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    anyhow::bail!(
        "the orphan canary of {id} (pid {pid}) survived SIGKILL; is it stopped in D state?"
    )
}

/// Stop the server of `id` if it is still up with no valid spec (checked
/// again right before: an `add` may have registered it since the scan).
/// `session::stop` takes the identity lock itself. `None`: nothing to stop.
pub fn stop_unaccounted(
    root: &Root,
    id: &Identity,
    grace: Duration,
) -> Result<Option<crate::lifecycle::session::Stopped>> {
    if !scan_id(root, id)?.unaccounted() {
        return Ok(None);
    }
    crate::lifecycle::session::stop(root, id, grace, "unaccounted").map(Some)
}

/// Remove `id`'s socket if it is still stale (checked again under the
/// identity lock, so a launch in progress is never undercut).
pub fn remove_stale_socket(root: &Root, id: &Identity) -> Result<bool> {
    let Some(_id_lock) = fsutil::try_lock(&root.id_lock(id))? else {
        anyhow::bail!("{id} is busy (launching or stopping); run clean again later");
    };
    if !scan_id(root, id)?.stale_socket() {
        return Ok(false);
    }
    fsutil::remove_if_exists(&root.socket(id))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_names() {
        assert!(is_tmp_name(".w1.json.tmp.4242.1a2b"));
        assert!(is_tmp_name(".lifecycle.log.tmp.1.2"));
        for no in ["w1.json", ".w1.json", "x.tmp.1", ".", ".tmp", "tmp.1"] {
            assert!(!is_tmp_name(no), "{no}");
        }
    }

    #[test]
    fn orphans_need_a_lock_and_no_server() {
        assert!(is_orphan(true, Found::NoSocket));
        assert!(is_orphan(true, Found::StaleSocket));
        for seen in [Found::Alive, Found::PaneDead, Found::SessionGone, Found::Hung] {
            assert!(!is_orphan(true, seen), "{seen:?}");
        }
        assert!(!is_orphan(false, Found::StaleSocket));
    }

    #[test]
    fn a_server_is_up_when_it_answers_or_hangs() {
        for up in [Found::Alive, Found::PaneDead, Found::SessionGone, Found::Hung] {
            assert!(server_up(up), "{up:?}");
        }
        for down in [Found::NoSocket, Found::StaleSocket] {
            assert!(!server_up(down), "{down:?}");
        }
    }

    #[test]
    fn tmp_files_are_found_by_age_outside_queues() {
        let t = tempfile::Builder::new().prefix("mvg").tempdir_in("/tmp").unwrap();
        let root = fsutil::open_root(&t.path().join("r")).unwrap();
        let old = root.state_dir().join(".w1.json.tmp.1.a");
        let fresh = root.peers_dir().join(".w1.json.tmp.2.b");
        let q = root.queues_dir().join("w1");
        std::fs::create_dir_all(&q).unwrap();
        let queued = q.join(".x.tmp.3.c");
        for p in [&old, &fresh, &queued] {
            std::fs::write(p, b"x").unwrap();
        }
        let later = SystemTime::now() + Duration::from_secs(3600);
        let found = tmp_files(&root, TMP_MAX_AGE, later).unwrap();
        let mut want = vec![old.clone(), fresh.clone()];
        want.sort();
        assert_eq!(found, want);
        assert!(tmp_files(&root, TMP_MAX_AGE, SystemTime::now()).unwrap().is_empty());
    }
}
