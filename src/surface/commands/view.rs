//! `screen`, `logs`, `attach`: look at a peer's pane.
//!
//! `screen` asks the live server for the pane's last lines (a dead pane kept
//! by remain-on-exit still has a screen, and it is shown). `logs` reads the
//! pane log the pipe-pane copier writes, in bounded memory, continuing into
//! the rotated `.log.1` when the current file holds fewer lines than asked,
//! with terminal escape sequences removed (`crate::ground::ansi`) unless `--raw`;
//! `--follow` polls every 200 ms and reopens across rotation and truncation
//! until interrupted or its reader goes away. With `--json`, `screen` and
//! `logs` print `{"identity", "lines": [...]}`; `logs --follow --json` prints
//! JSON Lines, `{"identity", "line"}` per line. `attach` replaces muxvisor
//! with a tmux client.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::Ctx;
use crate::ground::ansi::Stripper;
use crate::ground::fsutil;
use crate::ground::output;
use crate::ground::paths::Root;
use crate::ground::tail::{self, Follower};
use crate::lifecycle::observe::{self, Seen};
use crate::model::peer::{self, Identity, PeerSpec, Policy};
use crate::surface::cli::{IdArgs, LogsArgs, ScreenArgs};
use crate::tmux::{self, Tmux, TmuxError, query};

const POLL: Duration = Duration::from_millis(200);

/// "Not running", with the advice that works for the peer's policy:
/// `launch` refuses an ephemeral peer, whose workers exist only per task.
fn not_running(spec: &PeerSpec) -> anyhow::Error {
    let id = &spec.identity;
    match spec.policy {
        Policy::Persistent => anyhow::anyhow!(
            "peer {id} is not running (no tmux session); start it with `muxvisor launch {id}`"
        ),
        Policy::Ephemeral => anyhow::anyhow!(
            "no worker of ephemeral peer {id} is running (a worker runs only while a task \
             does); `muxvisor logs {id}` shows what its workers printed, `muxvisor queue {id} \
             list` its tasks, and `muxvisor send {id} TEXT` starts one"
        ),
    }
}

pub fn screen(ctx: &Ctx, args: ScreenArgs) -> Result<ExitCode> {
    let root = &ctx.root;
    let id = Identity::parse(&args.id)?;
    let spec = peer::require(root, &id)?;
    let socket = root.socket(&id);
    if std::fs::symlink_metadata(&socket).is_err() {
        return Err(not_running(&spec));
    }
    let tmux = Tmux::new(socket).map_err(TmuxError::into_anyhow)?;
    let text = match query::capture_pane(&tmux, &id, args.lines, args.raw) {
        Ok(t) => t,
        Err(e) if e.is_gone() => return Err(not_running(&spec)),
        Err(e) => return Err(e.into_anyhow().context(format!("capturing the pane of {id}"))),
    };
    if ctx.json {
        let lines: Vec<&str> = text.lines().collect();
        output::json(&json!({ "identity": id, "lines": lines }))?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The rotated pane log next to `path` (`<id>.log.1`).
fn rotated(path: &std::path::Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// The last `n` lines of the pane log (continuing into the rotated file) and
/// where the current file ended; `None` when neither file exists.
fn tail_pane_log(root: &Root, id: &Identity, n: usize) -> Result<Option<(Vec<u8>, u64)>> {
    let path = root.pane_log(id);
    let old = rotated(&path);
    let current = match fsutil::open_read(&path)? {
        Some(mut f) => Some(
            tail::last_lines_of(&mut f, n)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let (mut bytes, end) = current.clone().unwrap_or_default();
    let have = tail::count_lines(&bytes);
    let mut found = current.is_some();
    if have < n
        && let Some(mut f) = fsutil::open_read(&old)?
    {
        found = true;
        let (mut older, _) = tail::last_lines_of(&mut f, n - have)
            .with_context(|| format!("reading {}", old.display()))?;
        if !older.is_empty() && older.last() != Some(&b'\n') {
            older.push(b'\n');
        }
        older.extend_from_slice(&bytes);
        bytes = older;
    }
    Ok(found.then_some((bytes, end)))
}

pub fn logs(ctx: &Ctx, args: LogsArgs) -> Result<ExitCode> {
    let root = &ctx.root;
    let id = Identity::parse(&args.id)?;
    peer::require(root, &id)?;
    let path = root.pane_log(&id);
    let (bytes, end) = match tail_pane_log(root, &id, args.lines)? {
        Some(t) => t,
        None if args.follow => (Vec::new(), 0),
        None => {
            bail!(
                "no pane log for {id} yet ({} does not exist); it is written while the peer runs",
                path.display()
            );
        }
    };
    // One stripper for the backlog and everything followed after it, so a
    // sequence split across reads is still removed whole.
    let mut clean = (!args.raw).then(Stripper::new);
    let mut shown = |raw: &[u8]| -> Vec<u8> {
        let Some(s) = clean.as_mut() else { return raw.to_vec() };
        let mut out = Vec::with_capacity(raw.len());
        s.push(raw, &mut out);
        out
    };
    let bytes = shown(&bytes);
    if ctx.json && !args.follow {
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        output::json(&json!({ "identity": id, "path": path, "lines": lines }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let json_lines = ctx.json;
    let mut pending = Vec::new();
    emit(&id, &bytes, json_lines, &mut pending)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut f = Follower::new(&path, end)?;
    loop {
        thread::sleep(POLL);
        let new = shown(&f.poll()?);
        emit(&id, &new, json_lines, &mut pending)?;
    }
}

/// Print raw bytes as they come, or (JSON Lines) one object per complete line.
fn emit(id: &Identity, bytes: &[u8], json_lines: bool, pending: &mut Vec<u8>) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if !json_lines {
        out.write_all(bytes)?;
        out.flush()?;
        return Ok(());
    }
    pending.extend_from_slice(bytes);
    let Some(last) = pending.iter().rposition(|b| *b == b'\n') else { return Ok(()) };
    let done: Vec<u8> = pending.drain(..=last).collect();
    for l in String::from_utf8_lossy(&done).lines() {
        let s = output::json_string(&json!({ "identity": id, "line": l }))?;
        out.write_all(s.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

pub fn attach(ctx: &Ctx, args: IdArgs) -> Result<ExitCode> {
    let root = &ctx.root;
    let id = Identity::parse(&args.id)?;
    let spec = peer::require(root, &id)?;
    let obs = observe::observe(root, &id, tmux::DEFAULT_TIMEOUT)?;
    match obs.seen {
        Seen::Alive | Seen::PaneDead { .. } => {}
        Seen::Hung => {
            bail!("the tmux server of {id} does not answer (hung or stopped); not attaching");
        }
        Seen::SessionGone | Seen::NoSocket | Seen::StaleSocket => return Err(not_running(&spec)),
    }
    let tmux = Tmux::new(root.socket(&id)).map_err(TmuxError::into_anyhow)?;
    let err = query::exec_attach(&tmux, &id);
    Err(anyhow::Error::new(err).context(format!("running {} attach", tmux.bin().display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_name() {
        assert_eq!(
            rotated(std::path::Path::new("/r/logs/panes/a.log")),
            PathBuf::from("/r/logs/panes/a.log.1")
        );
    }

    #[test]
    fn tail_continues_into_the_rotated_log() {
        let t = tempfile::Builder::new().prefix("mvlog").tempdir_in("/tmp").unwrap();
        let root = fsutil::open_root(&t.path().join("r")).unwrap();
        let id = Identity::parse("a").unwrap();
        assert!(tail_pane_log(&root, &id, 5).unwrap().is_none());
        std::fs::write(rotated(&root.pane_log(&id)), b"o1\no2\no3").unwrap();
        std::fs::write(root.pane_log(&id), b"n1\nn2\n").unwrap();
        let (b, end) = tail_pane_log(&root, &id, 4).unwrap().unwrap();
        assert_eq!(b, b"o2\no3\nn1\nn2\n");
        assert_eq!(end, 6);
        let (b, _) = tail_pane_log(&root, &id, 1).unwrap().unwrap();
        assert_eq!(b, b"n2\n");
    }
}
