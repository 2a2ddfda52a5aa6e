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

/// What `counter` holds: the last sequence handed out, the pending count
/// (`None`: unknown, recounted by the next reader), and the inbox's extent
/// (see `inbox`): `end`, where its last published record ends, and
/// `absorbed`, how much of it has been copied into `new/`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counter {
    pub seq: u64,
    pub depth: Option<u64>,
    pub end: u64,
    pub absorbed: u64,
}

impl Counter {
    /// The pending count ([`Queue::read_counter`] always knows it).
    pub fn pending(&self) -> u64 {
        self.depth.unwrap_or(0)
    }
}

impl Queue {
    pub(super) fn counter_path(&self) -> PathBuf {
        self.dir.join("counter")
    }

    /// The counter, its depth known. A depth marked unknown (a change of
    /// `new/` was interrupted) is recounted: `new/` and the records of the
    /// inbox not yet absorbed. A counter that is missing, torn, written
    /// during an earlier boot (its writes were not synced, so a crash may
    /// have lost the newest ones), or without the inbox's extent while the
    /// inbox holds records (written by an earlier version), is rebuilt: the
    /// inbox reconciled with the stages first ([`Queue::reconcile_inbox`]),
    /// then the highest sequence anywhere and the count of `new/`.
    pub(super) fn read_counter(&self) -> Result<Counter> {
        if let Some(mut c) = self.peek_counter()? {
            if c.depth.is_none() {
                c.depth = Some(self.pending_count(&c)?);
            }
            return Ok(c);
        }
        self.reconcile_inbox()?;
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
        let depth = task_names(&self.sub("new"))?.len() as u64;
        Ok(Counter { seq: max, depth: Some(depth), end: 0, absorbed: 0 })
    }

    /// The counter as written, if it can be trusted as it is (this boot's,
    /// whole, with the inbox's extent or an empty inbox); `None` if it
    /// must be rebuilt. Its depth may be unknown. No lock needed to read.
    pub(super) fn peek_counter(&self) -> Result<Option<Counter>> {
        let Some(bytes) = fsutil::read_if_exists(&self.counter_path())? else { return Ok(None) };
        let Some((c, extent)) = trusted(&bytes) else { return Ok(None) };
        if !extent && self.inbox_len()? > 0 {
            return Ok(None);
        }
        Ok(Some(c))
    }

    /// Write the counter in place (one small pwrite), tagged with this
    /// boot's id and NOT synced: only a crash of the whole machine can lose
    /// it, and that means a new boot id, so the next reader rebuilds it
    /// (see the module header). Where no boot id can be read it is synced.
    pub(super) fn write_counter(&self, c: &Counter) -> Result<()> {
        let path = self.counter_path();
        let f = fsutil::open_private_rw(&path)?;
        let boot = crate::ground::proc::boot_id();
        f.write_all_at(&encode_counter(c, boot.as_deref()), 0)
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
        let c = self.read_counter()?;
        self.write_counter(&Counter { depth: None, ..c })?;
        let out = change()?;
        match delta {
            Some(d) => {
                // (A change of `new/` never touches the inbox.)
                let depth = c.pending().saturating_add_signed(d);
                self.write_counter(&Counter { depth: Some(depth), ..c })?;
            }
            None => {
                self.recount()?;
            }
        }
        Ok(out)
    }

    /// Mark the depth unknown (its next reader recounts it).
    pub(super) fn mark_depth_unknown(&self) -> Result<()> {
        let c = self.read_counter()?;
        self.write_counter(&Counter { depth: None, ..c })
    }

    /// Recount the pending tasks into the counter; returns the depth.
    pub(super) fn recount(&self) -> Result<usize> {
        let mut c = self.read_counter()?;
        let depth = self.pending_count(&c)?;
        c.depth = Some(depth);
        self.write_counter(&c)?;
        Ok(depth as usize)
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

/// `dir`'s counter as written, if it can be trusted as it is (this boot's,
/// whole): for readers without the lock.
pub(super) fn peek(dir: &std::path::Path) -> Option<Counter> {
    // The counter is rewritten in place, so a read without the lock may
    // see half of a write: read again rather than take it for untrusted.
    for _ in 0..3 {
        let bytes = fsutil::read_if_exists(&dir.join("counter")).ok()??;
        if let Some(parsed) = parse_counter(&bytes) {
            return of_this_boot(parsed).map(|(c, _)| c);
        }
    }
    None
}

/// A counter record that is whole and was written during this boot (or
/// synced), with whether it holds the inbox's extent.
fn trusted(bytes: &[u8]) -> Option<(Counter, bool)> {
    of_this_boot(parse_counter(bytes)?)
}

/// A parsed counter if this boot wrote it (or it was synced).
fn of_this_boot((c, boot, extent): (Counter, Option<String>, bool)) -> Option<(Counter, bool)> {
    boot.is_none_or(|b| Some(b) == crate::ground::proc::boot_id()).then_some((c, extent))
}

/// `<seq> <depth or -> <boot id or -> <inbox end> <absorbed> <fnv>`: a depth
/// of `-` is unknown (see [`Queue::changing_new`]); the boot id says which
/// boot wrote it (see `read_counter`), `-` that it was synced. Every record
/// has one length. Earlier versions read the first three fields and ignore
/// the rest.
pub(super) fn encode_counter(c: &Counter, boot: Option<&str>) -> Vec<u8> {
    let depth = c.depth.map_or_else(|| "-".repeat(20), |d| format!("{d:020}"));
    let body =
        format!("{:020} {depth} {} {:020} {:020}", c.seq, boot.unwrap_or("-"), c.end, c.absorbed);
    format!("{body} {:016x}\n", task::fnv1a64(body.as_bytes())).into_bytes()
}

/// `(counter, boot id, whether it holds the inbox's extent)`; `None` for a
/// torn or foreign record. The two-field form of earlier versions was
/// always synced: no boot id; theirs hold no inbox extent.
pub(super) fn parse_counter(bytes: &[u8]) -> Option<(Counter, Option<String>, bool)> {
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
    let (end, absorbed, extent) = match (f.next(), f.next()) {
        (Some(e), Some(a)) => (e.parse().ok()?, a.parse().ok()?, true),
        _ => (0, 0, false),
    };
    if absorbed > end {
        return None;
    }
    Some((Counter { seq, depth, end, absorbed }, boot, extent))
}
