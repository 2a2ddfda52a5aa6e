//! The hook file `hooks/on-event`: whether it is absent, switched off,
//! ready, or refused (not trusted: a symlink, not ours, writable by others),
//! and one run of it for one line, in its own process group under a
//! deadline, its output copied into `logs/notify.log` (rotated at
//! `LOG_MAX`).

use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, DurationRound, Utc};

use super::LOG_MAX;
use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::events::Record;

/// What `hooks/on-event` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// No `hooks/` or no `hooks/on-event`.
    Absent,
    /// Present but not executable by its owner: off, like a git hook.
    Disabled,
    /// Runs; `since` is its ctime to the millisecond (lines stamped
    /// earlier are not delivered).
    Ready { path: PathBuf, since: DateTime<Utc> },
    /// Present but not trusted: what is wrong, and what to do.
    Refused { why: String, fix: String },
}

/// Look at the hook (two `lstat`s, no following).
pub fn check(root: &Root) -> Hook {
    let dir = root.hooks_dir();
    let md = match std::fs::symlink_metadata(&dir) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Hook::Absent,
        Err(e) => return refused(format!("cannot read {}: {e}", dir.display()), "check it"),
    };
    if let Some(r) = untrusted(&dir, &md, true) {
        return r;
    }
    let path = root.on_event_hook();
    let md = match std::fs::symlink_metadata(&path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Hook::Absent,
        Err(e) => return refused(format!("cannot read {}: {e}", path.display()), "check it"),
    };
    if let Some(r) = untrusted(&path, &md, false) {
        return r;
    }
    if md.mode() & 0o100 == 0 {
        return Hook::Disabled;
    }
    let ctime = DateTime::from_timestamp(md.ctime(), md.ctime_nsec() as u32).unwrap_or_default();
    let since = ctime.duration_trunc(chrono::Duration::milliseconds(1)).unwrap_or(ctime);
    Hook::Ready { path, since }
}

pub(super) fn refused(why: String, fix: impl Into<String>) -> Hook {
    Hook::Refused { why, fix: fix.into() }
}

/// Why `path` (the hooks directory, or the hook) is not to be trusted. Pure
/// over its metadata.
pub(super) fn untrusted(path: &Path, md: &std::fs::Metadata, dir: bool) -> Option<Hook> {
    let p = path.display();
    if md.file_type().is_symlink() {
        return Some(refused(
            format!("{p} is a symlink; muxvisor runs only a real file inside the root"),
            format!(
                "replace {p} with a copy, or with a script that runs yours \
                 (`exec /path/to/yours`)"
            ),
        ));
    }
    if dir && !md.is_dir() {
        return Some(refused(format!("{p} is not a directory"), format!("remove {p}")));
    }
    if !dir && !md.is_file() {
        return Some(refused(format!("{p} is not a regular file"), format!("remove {p}")));
    }
    let euid = fsutil::euid();
    if md.uid() != euid {
        return Some(refused(
            format!("{p} is owned by uid {}, not by you (uid {euid})", md.uid()),
            format!("remove {p}, or chown it to yourself"),
        ));
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(refused(
            format!("{p} has mode {mode:04o}: others can change what it runs"),
            format!("chmod go-w {p}"),
        ));
    }
    None
}

/// How one hook run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Ok,
    Failed { status: Option<i32>, signal: Option<i32>, reason: String },
}

/// Run the hook once with `line` on stdin, under `timeout`.
pub(super) fn execute(
    root: &Root,
    hook: &Path,
    line: &str,
    rec: &Record,
    timeout: Duration,
) -> Result<HookOutcome> {
    use std::os::unix::process::ExitStatusExt;
    let log = root.notify_log();
    // The hook writes into a pipe, not the file: a copier keeps the file
    // under LOG_MAX however much one run prints (rotating mid-run).
    drop(fsutil::open_append(&log)?); // refused (a symlink, say): recorded as a failure
    let (from_hook, out) = std::io::pipe().context("creating the hook's output pipe")?;
    let err = out.try_clone().context("duplicating the hook's output pipe")?;
    let copier = {
        let log = log.clone();
        std::thread::spawn(move || crate::ground::rotate::copy_rotating(from_hook, &log, LOG_MAX))
    };
    // A fresh unnamed file each time: something the last hook left running
    // in the background can never read this line.
    let mut input = tempfile::tempfile_in(root.run_dir()).context("creating the hook's stdin")?;
    input.write_all(line.as_bytes()).context("writing the hook's stdin")?;
    input.rewind().context("writing the hook's stdin")?;
    let mut c = Command::new(hook);
    c.current_dir(root.dir())
        .stdin(input)
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("MUXVISOR_TASK_ID")
        .env_remove("MUXVISOR_TASK_FILE")
        .env("MUXVISOR_ROOT", root.dir())
        .env("MUXVISOR_EVENT", rec.ev())
        .env("MUXVISOR_IDENTITY", rec.identity().unwrap_or_default());
    let spawned = c.spawn();
    // Our copies of the pipe's write end go, so the copier sees EOF once
    // the hook (and whatever it left running) closed it.
    drop(c);
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ok(HookOutcome::Failed {
                status: None,
                signal: None,
                reason: format!("cannot run {}: {e}", hook.display()),
            });
        }
    };
    let ended = crate::ground::proc::wait_deadline(child, timeout)?;
    // A background process the hook left holding the pipe must not hold up
    // the next line: wait for the copier briefly, then leave it.
    let copied = std::time::Instant::now() + Duration::from_millis(500);
    while !copier.is_finished() && std::time::Instant::now() < copied {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(match ended {
        Some(st) if st.success() => HookOutcome::Ok,
        Some(st) => match (st.code(), st.signal()) {
            (Some(code), _) => HookOutcome::Failed {
                status: Some(code),
                signal: None,
                reason: format!("exit-{code}"),
            },
            (None, sig) => HookOutcome::Failed {
                status: None,
                signal: sig,
                reason: format!("signal-{}", sig.unwrap_or_default()),
            },
        },
        None => HookOutcome::Failed {
            status: None,
            signal: Some(libc::SIGKILL),
            reason: format!("timeout: killed after {}", crate::ground::duration::format(timeout)),
        },
    })
}
