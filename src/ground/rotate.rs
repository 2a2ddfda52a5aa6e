//! Size caps for the logs, so nothing under the root grows without bound:
//! a log past its cap is renamed to `<name>.1` (replacing the older copy), so
//! at most one old copy is kept and the next writer starts a fresh file.
//!
//! Renaming is safe for the event logs and the service logs because their
//! writers open, append one line and close. Pane logs are different: the
//! `_pane-log` copier of a live server holds its file open and rotates it
//! itself, so a pane log is rotated here only when no server answers for that
//! identity (the caller says which are live).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ground::paths::Root;

/// Default cap per log: 10 MiB.
pub const DEFAULT_MAX: u64 = 10 * 1024 * 1024;

/// The caps in force: `MUXVISOR_LOG_MAX` for the event and service logs,
/// `MUXVISOR_PANE_LOG_MAX` (else `MUXVISOR_LOG_MAX`) for pane logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub events: u64,
    pub panes: u64,
}

fn bytes(v: Option<String>) -> Option<u64> {
    v.and_then(|s| s.trim().parse::<u64>().ok()).filter(|n| *n > 0)
}

impl Caps {
    /// Pure: caps from the two variables' values.
    pub fn from_values(log_max: Option<String>, pane_max: Option<String>) -> Caps {
        let events = bytes(log_max).unwrap_or(DEFAULT_MAX);
        Caps { events, panes: bytes(pane_max).unwrap_or(events) }
    }

    pub fn from_env() -> Caps {
        Caps::from_values(
            std::env::var("MUXVISOR_LOG_MAX").ok(),
            std::env::var("MUXVISOR_PANE_LOG_MAX").ok(),
        )
    }
}

/// `<log>.1`
pub fn rotated_name(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// Pure: rotate a file of `size` bytes under `cap`?
pub fn needs_rotation(size: u64, cap: u64) -> bool {
    size > cap
}

/// One rotation, done or planned.
#[derive(Clone, Debug, Serialize)]
pub struct Rotation {
    pub path: PathBuf,
    pub size: u64,
    pub cap: u64,
}

/// The event and service logs (always safe to rotate).
pub fn event_logs(root: &Root) -> Vec<PathBuf> {
    vec![root.lifecycle_log(), root.exits_log(), root.service_out(), root.service_err()]
}

/// Rotate `log` if it is a regular file past `cap`; `None` if not needed.
pub fn rotate(log: &Path, cap: u64, dry_run: bool) -> Result<Option<Rotation>> {
    let md = match std::fs::symlink_metadata(log) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("checking {}", log.display())),
    };
    if !md.is_file() || !needs_rotation(md.len(), cap) {
        return Ok(None);
    }
    if !dry_run {
        std::fs::rename(log, rotated_name(log)).with_context(|| {
            format!("rotating {} to {}", log.display(), rotated_name(log).display())
        })?;
        if let Some(dir) = log.parent() {
            crate::ground::fsutil::fsync_dir(dir)?;
        }
    }
    Ok(Some(Rotation { path: log.to_path_buf(), size: md.len(), cap }))
}

/// Copy `input` to `log` until EOF, rotating to `log.1` when the next chunk
/// would take it past `cap` bytes, so neither copy grows past the cap (a
/// single read of more than `cap` bytes aside). For writers whose output
/// muxvisor does not control: a pane's (`_pane-log`), the notification
/// hook's (`logs/notify.log`).
pub fn copy_rotating(mut input: impl std::io::Read, log: &Path, cap: u64) -> Result<()> {
    use std::io::Write;
    let old = rotated_name(log);
    let mut out = crate::ground::fsutil::open_append(log)?;
    let mut size = out.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if size > 0 && size + n as u64 > cap {
            std::fs::rename(log, &old)?;
            out = crate::ground::fsutil::open_append(log)?;
            size = 0;
        }
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
}

/// Rotate every log of the root past its cap. `live` says whether an
/// identity's server answers (its pane log is then left to its copier).
pub fn rotate_all(
    root: &Root,
    caps: Caps,
    live: &dyn Fn(&str) -> bool,
    dry_run: bool,
) -> Result<Vec<Rotation>> {
    let mut out = Vec::new();
    for log in event_logs(root) {
        out.extend(rotate(&log, caps.events, dry_run)?);
    }
    let logs = crate::ground::fsutil::list_dir(&root.panes_dir())?;
    let idle = |p: &&PathBuf| {
        p.file_name().and_then(|n| n.to_str()?.strip_suffix(".log")).is_some_and(|id| !live(id))
    };
    for log in logs.iter().filter(idle) {
        out.extend(rotate(log, caps.panes, dry_run)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_from_values() {
        assert_eq!(Caps::from_values(None, None), Caps { events: DEFAULT_MAX, panes: DEFAULT_MAX });
        assert_eq!(Caps::from_values(Some("100".into()), None), Caps { events: 100, panes: 100 });
        assert_eq!(
            Caps::from_values(Some("100".into()), Some("7".into())),
            Caps { events: 100, panes: 7 }
        );
        assert_eq!(Caps::from_values(Some("0".into()), Some("x".into())).events, DEFAULT_MAX);
    }

    #[test]
    fn a_copy_rotates_before_it_would_pass_the_cap() {
        let t = tempfile::Builder::new().prefix("mvh").tempdir_in("/tmp").unwrap();
        let log = t.path().join("p.log");
        copy_rotating(&b"0123456789"[..], &log, 8).unwrap();
        copy_rotating(&b"abcdef"[..], &log, 8).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"abcdef");
        assert_eq!(std::fs::read(rotated_name(&log)).unwrap(), b"0123456789");
        copy_rotating(&b"xyz"[..], &log, 8).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"xyz");
        assert_eq!(std::fs::read(rotated_name(&log)).unwrap(), b"abcdef");
    }

    #[test]
    fn rotation_keeps_one_old_copy() {
        let t = tempfile::Builder::new().prefix("mvr").tempdir_in("/tmp").unwrap();
        let root = crate::ground::fsutil::open_root(&t.path().join("r")).unwrap();
        let log = root.lifecycle_log();
        std::fs::write(&log, b"first generation\n").unwrap();
        assert!(rotate(&log, 100, false).unwrap().is_none());
        assert!(rotate(&log, 5, true).unwrap().is_some());
        assert!(log.exists(), "dry run renamed");
        assert!(rotate(&log, 5, false).unwrap().is_some());
        std::fs::write(&log, b"second generation\n").unwrap();
        rotate(&log, 5, false).unwrap();
        assert_eq!(std::fs::read(rotated_name(&log)).unwrap(), b"second generation\n");
        assert!(!log.exists());
        let panes = root.panes_dir();
        std::fs::write(panes.join("live.log"), b"0123456789").unwrap();
        std::fs::write(panes.join("dead.log"), b"0123456789").unwrap();
        let caps = Caps { events: 1000, panes: 5 };
        let done = rotate_all(&root, caps, &|id| id == "live", false).unwrap();
        assert_eq!(done.len(), 1);
        assert!(panes.join("dead.log.1").exists() && panes.join("live.log").exists());
    }
}
