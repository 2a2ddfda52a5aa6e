//! `counter`: the last sequence handed out and the pending count, so that
//! `send` learns both without listing `new/`. The module header says why it
//! is written in place and unsynced (tagged with the boot id instead), and
//! how a depth marked unknown (`-`) keeps it true across a crash at any
//! step of a change of `new/`.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::entries::task_names;
use super::{Queue, SUBDIRS, task};
use crate::ground::fsutil;

impl Queue {
    pub(super) fn counter_path(&self) -> PathBuf {
        self.dir.join("counter")
    }

    /// `(last seq, depth)`. A depth marked unknown (a change of `new/` was
    /// interrupted) is recounted from `new/`. A counter that is missing, torn, or written
    /// during an earlier boot (its writes were not synced, so a crash may
    /// have lost the newest ones) is rebuilt from the directories: the
    /// highest sequence anywhere, the count of `new/`.
    pub(super) fn read_counter(&self) -> Result<(u64, u64)> {
        let path = self.counter_path();
        if let Some(bytes) = fsutil::read_if_exists(&path)?
            && let Some((seq, depth, boot)) = parse_counter(&bytes)
            && boot.is_none_or(|b| Some(b) == crate::ground::proc::boot_id())
        {
            let depth = match depth {
                Some(d) => d,
                None => task_names(&self.sub("new"))?.len() as u64,
            };
            return Ok((seq, depth));
        }
        let mut max = 0;
        for stage in SUBDIRS {
            for p in fsutil::list_dir(&self.sub(stage))? {
                if let Some((seq, _)) = p.file_name().and_then(|f| f.to_str()).and_then(|f| {
                    let base = f.split('.').take(2).collect::<Vec<_>>().join(".");
                    task::parse_entry_name(&base).map(|(s, t)| (s, t.to_string()))
                }) {
                    max = max.max(seq);
                }
            }
        }
        Ok((max, task_names(&self.sub("new"))?.len() as u64))
    }

    /// Write the counter in place (one small pwrite), tagged with this
    /// boot's id and NOT synced: only a crash of the whole machine can lose
    /// it, and that means a new boot id, so the next reader rebuilds it
    /// (see the module header). Where no boot id can be read it is synced.
    pub(super) fn write_counter(&self, seq: u64, depth: Option<u64>) -> Result<()> {
        let path = self.counter_path();
        let f = fsutil::open_private_rw(&path)?;
        let boot = crate::ground::proc::boot_id();
        f.write_all_at(&encode_counter(seq, depth, boot.as_deref()), 0)
            .with_context(|| format!("writing {}", path.display()))?;
        if boot.is_none() {
            fsutil::sync_file_data(&f).with_context(|| format!("fsync of {}", path.display()))?;
        }
        Ok(())
    }

    /// Run `change`, which changes what `new/` holds, keeping the depth in
    /// the counter true whatever step a crash stops it at: the depth is
    /// marked unknown first, and written last, adjusted by `delta` (a claim
    /// is -1, a requeue +1: no listing of `new/`) or, with `None`,
    /// recounted. A change that fails leaves it unknown: recounted later.
    pub(super) fn changing_new<T>(
        &self,
        delta: Option<i64>,
        change: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let (seq, depth) = self.read_counter()?;
        self.write_counter(seq, None)?;
        let out = change()?;
        match delta {
            Some(d) => self.write_counter(seq, Some(depth.saturating_add_signed(d)))?,
            None => {
                self.recount()?;
            }
        }
        Ok(out)
    }

    /// Mark the depth unknown (its next reader recounts `new/`).
    pub(super) fn mark_depth_unknown(&self) -> Result<()> {
        let (seq, _) = self.read_counter()?;
        self.write_counter(seq, None)
    }

    /// Recount `new/` into the counter; returns the depth.
    pub(super) fn recount(&self) -> Result<usize> {
        let (seq, _) = self.read_counter()?;
        let depth = task_names(&self.sub("new"))?.len();
        self.write_counter(seq, Some(depth as u64))?;
        Ok(depth)
    }

    /// A wake-up for a process waiting on this queue: changes of the
    /// counter (every enqueue, claim and requeue) and of `cur/` (a task
    /// ending), so a runner blocks instead of polling [`Queue::change_mark`].
    pub fn change_watch(&self) -> crate::ground::watch::DirWatch {
        crate::ground::watch::DirWatch::new(&[&self.dir, &self.sub("cur")])
    }

    /// A cheap fingerprint of the queue's last change (the counter file's
    /// size, mtime and inode): every enqueue, claim and requeue rewrites the
    /// counter, so a runner polls this instead of listing `new/`.
    pub fn change_mark(&self) -> Option<(u64, i64, i64, u64)> {
        let md = fs::symlink_metadata(self.counter_path()).ok()?;
        Some((md.len(), md.mtime(), md.mtime_nsec(), md.ino()))
    }
}

/// `<seq> <depth or -> <boot id or -> <fnv>`: a depth of `-` is unknown
/// (see [`Queue::changing_new`]); the boot id says which boot wrote it (see
/// `read_counter`), `-` that it was synced. Every record has one length.
pub(super) fn encode_counter(seq: u64, depth: Option<u64>, boot: Option<&str>) -> Vec<u8> {
    let depth = depth.map_or_else(|| "-".repeat(20), |d| format!("{d:020}"));
    let body = format!("{seq:020} {depth} {}", boot.unwrap_or("-"));
    format!("{body} {:016x}\n", task::fnv1a64(body.as_bytes())).into_bytes()
}

/// `(seq, depth (None: unknown), boot id)`; `None` for a torn or foreign
/// record. The two-field form of earlier versions was always synced: no
/// boot id.
pub(super) fn parse_counter(bytes: &[u8]) -> Option<(u64, Option<u64>, Option<String>)> {
    let s = std::str::from_utf8(bytes).ok()?;
    let line = s.lines().next()?;
    let (body, sum) = line.rsplit_once(' ')?;
    if format!("{:016x}", task::fnv1a64(body.as_bytes())) != sum {
        return None;
    }
    let mut f = body.split(' ');
    let seq = f.next()?.parse().ok()?;
    let depth = match f.next()? {
        d if !d.is_empty() && d.bytes().all(|b| b == b'-') => None,
        d => Some(d.parse().ok()?),
    };
    let boot = match f.next() {
        None | Some("-") => None,
        Some(b) => Some(b.to_string()),
    };
    Some((seq, depth, boot))
}
