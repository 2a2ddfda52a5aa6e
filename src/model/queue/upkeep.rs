//! The queue's upkeep, which the tick and `clean` run rather than a task's
//! own path: quarantine what is damaged (`sweep`), dead-letter what waited
//! past its TTL (`expire`), remove old `tmp/` and `done/` entries and stale
//! payload files (`clean`), and keep `done/` short (`prune_done`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::entries::{remove_any, task_names};
use super::{Header, Queue, TMP_MAX_AGE};
use crate::ground::fsutil;

impl Queue {
    /// Quarantine every damaged or foreign entry in `new/` and `cur/`.
    /// Returns how many were moved.
    pub fn sweep(&self) -> Result<usize> {
        let _lock = self.lock()?;
        let mut n = 0;
        for stage in ["new", "cur"] {
            // (quarantine marks the depth unknown before it moves a new/ entry)
            n += self.sweep_locked(stage)?;
        }
        if n > 0 {
            self.recount()?;
        }
        Ok(n)
    }

    /// Dead-letter (reason `ttl`) every pending task enqueued more than `ttl`
    /// ago. Returns their ids.
    pub fn expire(&self, ttl: Duration, now: DateTime<Utc>) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expired: Vec<(Header, Vec<u8>)> =
            self.all_valid("new")?.into_iter().filter(|(h, _)| h.enqueued_at + ttl < now).collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        self.changing_new(None, || {
            let mut gone = Vec::new();
            for (h, payload) in expired {
                self.dead_letter_locked("new", &h, &payload, "ttl", None)?;
                gone.push(h.task);
            }
            Ok(gone)
        })
    }

    /// Old `tmp/` files, `done/` entries older than `retention`, and payload
    /// files of tasks no longer running. Returns what was (or, with
    /// `dry_run`, would be) removed.
    pub fn clean(
        &self,
        retention: Duration,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<PathBuf>> {
        let _lock = self.lock()?;
        let mut out = Vec::new();
        let old = |p: &Path, age: Duration| -> bool {
            fs::symlink_metadata(p)
                .ok()
                .and_then(|m| m.modified().ok())
                .map(DateTime::<Utc>::from)
                .is_some_and(|t| {
                    now - t > chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
                })
        };
        for p in fsutil::list_dir(&self.sub("tmp"))? {
            if old(&p, TMP_MAX_AGE) {
                out.push(p);
            }
        }
        for p in fsutil::list_dir(&self.sub("done"))? {
            if old(&p, retention) {
                out.push(p);
            }
        }
        let running: Vec<String> =
            self.all_running_locked()?.into_iter().map(|c| c.header.task).collect();
        for p in fsutil::list_dir(&self.sub("work"))? {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // `.spare` is kept on purpose (`Queue::work_file`).
            if !running.contains(&name) && p != super::spare_work(&self.dir) {
                out.push(p);
            }
        }
        if !dry_run {
            if out.iter().any(|p| p.starts_with(self.sub("done"))) {
                // A removed entry must not come back from the inbox.
                self.compact()?;
            }
            for p in &out {
                remove_any(p)?;
            }
            for d in ["tmp", "done", "work"] {
                fsutil::fsync_dir(&self.sub(d))?;
            }
        }
        Ok(out)
    }

    /// Retention of finished tasks, as the tick keeps it: remove `done/`
    /// entries (each with its outcome) finished more than `max_age` ago,
    /// and all but the newest `max_count`. Returns how many tasks went.
    /// Cost: one listing of `done/`, which this keeps short.
    pub fn prune_done(
        &self,
        max_age: Duration,
        max_count: usize,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let _lock = self.lock()?;
        let done = self.sub("done");
        // Name order is sequence order: oldest first.
        let names = task_names(&done)?;
        let excess = names.len().saturating_sub(max_count);
        let age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let old = |name: &String| {
            fs::symlink_metadata(done.join(name))
                .ok()
                .and_then(|m| m.modified().ok())
                .map(DateTime::<Utc>::from)
                .is_some_and(|t| now - t > age)
        };
        let going: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(i, n)| *i < excess || old(n))
            .map(|(_, n)| n)
            .collect();
        if !going.is_empty() {
            // A removed entry must not come back from the inbox.
            self.compact()?;
        }
        let mut gone = 0;
        for name in going {
            remove_any(&done.join(format!("{name}.outcome")))?;
            remove_any(&done.join(name))?;
            gone += 1;
        }
        if gone > 0 {
            fsutil::fsync_dir(&done)?;
        }
        Ok(gone)
    }
}
