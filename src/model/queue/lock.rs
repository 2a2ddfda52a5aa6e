//! The queue's lock files: every lock under `queues/<id>/` is taken here.
//!
//! - `queue.lock`: taken (waiting at most [`LOCK_WAIT`]) for every change
//!   of the queue's files; never deleted, never broken.
//! - `worker.lock`: held by whoever starts a runner or delivers a message,
//!   from its decision until the runner holds `runner.lock`, and by a runner
//!   while it retires.
//! - `runner.lock`, `runner.<k>.lock` and `courier.lock` ([`QueueLock`]):
//!   each held for its whole life by the one long-lived process that
//!   serves the queue or one worker slot of it (the runner of an ephemeral
//!   peer's slot, the courier of a persistent peer's mailbox), which writes
//!   its pid into it. Taken without waiting: a second
//!   runner or courier finds it held and leaves. Alive means "held"; the pid
//!   inside is for `status` and `clean`, never proof of life.

use std::io::{Seek, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::{LOCK_WAIT, Queue};
use crate::ground::fsutil::{self, LockGuard};

/// A lock held by the one process that serves a queue, its pid inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueLock {
    /// `runner.lock`: the runner of an ephemeral peer (`_run <id>`).
    Runner,
    /// `courier.lock`: the courier of a persistent peer's mailbox
    /// (`_courier <id>`).
    Courier,
    /// `runner.<k>.lock`: the runner of worker slot `k` (1..N) of a peer
    /// that runs N workers (`_run <id> --slot k`); slot 0 is `Runner`.
    Slot(u32),
}

impl QueueLock {
    /// The lock of worker slot `slot`: `runner.lock` for slot 0 (the only
    /// slot of one worker), `runner.<k>.lock` for the others.
    pub fn slot(slot: u32) -> QueueLock {
        if slot == 0 { QueueLock::Runner } else { QueueLock::Slot(slot) }
    }

    /// Its file name in the queue's directory.
    pub fn file_name(self) -> String {
        match self {
            QueueLock::Runner | QueueLock::Slot(0) => "runner.lock".into(),
            QueueLock::Courier => "courier.lock".into(),
            QueueLock::Slot(k) => format!("runner.{k}.lock"),
        }
    }
}

impl Queue {
    /// `queue.lock`, waiting at most [`LOCK_WAIT`]: held for every change
    /// and every read of the stages. Taken here, the tasks still in the
    /// inbox are first moved into `new/` (see `inbox`), so that whoever
    /// holds the lock sees every pending task there. That move failing (a
    /// full disk, say) is a warning: they wait in the inbox, durable, and
    /// what holds the lock (an ack, a nack) still works.
    pub(super) fn lock(&self) -> Result<LockGuard> {
        let guard = self.lock_for_append()?;
        if let Err(e) = self.absorb() {
            crate::ground::output::warn(format!(
                "could not move the newest tasks of {} from {} into new/: {e:#}; they stay \
                 queued there and are moved by the next command that succeeds",
                self.id,
                self.dir.join("inbox").display()
            ));
        }
        Ok(guard)
    }

    /// `queue.lock` as a sender takes it: the inbox is left as it is.
    pub(super) fn lock_for_append(&self) -> Result<LockGuard> {
        fsutil::lock_within(
            &self.dir.join("queue.lock"),
            LOCK_WAIT,
            &format!("queue of {}", self.id),
        )
    }

    /// The per-identity worker lock, without waiting. Held by whoever
    /// starts a runner (the kick, the tick, the hand-over) from its decision
    /// until the runner holds `runner.lock`, and by a runner while it
    /// retires; so a runner is never started twice and never retires while
    /// a starter is deciding. `Ok(None)`: someone else holds it right now.
    pub fn try_worker_lock(&self) -> Result<Option<LockGuard>> {
        fsutil::try_lock(&self.dir.join("worker.lock"))
    }

    /// The worker lock, waiting at most `wait` (then exit 75).
    pub fn worker_lock_within(&self, wait: Duration) -> Result<LockGuard> {
        fsutil::lock_within(&self.dir.join("worker.lock"), wait, &format!("worker of {}", self.id))
    }

    fn lock_path(&self, kind: QueueLock) -> PathBuf {
        self.dir.join(kind.file_name())
    }

    /// Take `kind`'s lock without waiting and write our pid into it.
    /// `Ok(None)`: another process holds it (it serves the queue).
    pub fn take_lock(&self, kind: QueueLock) -> Result<Option<LockGuard>> {
        let Some(lock) = fsutil::try_lock(&self.lock_path(kind))? else { return Ok(None) };
        {
            let mut f = lock.file();
            let _ = f.set_len(0);
            let _ = f.rewind();
            let _ = writeln!(f, "{}", std::process::id());
        }
        Ok(Some(lock))
    }

    /// True while a process holds `kind`'s lock.
    pub fn lock_held(&self, kind: QueueLock) -> bool {
        fsutil::is_locked(&self.lock_path(kind)).unwrap_or(false)
    }

    /// The pid the holder of `kind`'s lock wrote into it; `None` when
    /// nobody holds it.
    pub fn lock_holder(&self, kind: QueueLock) -> Option<i32> {
        if !self.lock_held(kind) {
            return None;
        }
        let b = fsutil::read_if_exists(&self.lock_path(kind)).ok()??;
        String::from_utf8_lossy(&b).trim().parse().ok()
    }

    /// True while a runner lives and has not begun to retire.
    pub fn runner_alive(&self) -> bool {
        self.lock_held(QueueLock::Runner)
    }

    /// The worker slot whose runner wrote `pid` into its lock, alive or
    /// not (the `pane-died` hook asks after its runner died).
    pub fn slot_of_pid(&self, pid: i32) -> Option<u32> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        entries.flatten().find_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            let slot = match name {
                "runner.lock" => 0,
                _ => name.strip_prefix("runner.")?.strip_suffix(".lock")?.parse().ok()?,
            };
            let b = fsutil::read_if_exists(&e.path()).ok()??;
            (String::from_utf8_lossy(&b).trim().parse::<i32>().ok()? == pid).then_some(slot)
        })
    }

    /// The worker slots found in the queue's directory (`runner.lock` is
    /// slot 0, `runner.<k>.lock` slot k), in slot order, whatever the spec
    /// says now: a runner of a slot that a smaller `--workers` no longer
    /// has still works until its task ends.
    fn slot_files(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut slots: Vec<u32> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                match name {
                    "runner.lock" => Some(0),
                    _ => name.strip_prefix("runner.")?.strip_suffix(".lock")?.parse().ok(),
                }
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    /// The pids of the live runners of worker slots 1.. (whatever the
    /// spec says now: every `runner.<k>.lock` in the queue's directory).
    pub fn live_worker_pids(&self) -> Vec<i32> {
        self.live_slots().into_iter().filter(|(k, _)| *k > 0).filter_map(|(_, p)| p).collect()
    }

    /// The worker slots whose runner lives, each with the pid its runner
    /// wrote, in slot order: every slot with a lock file, including those
    /// beyond the spec's `--workers` (lowered while they ran).
    pub fn live_slots(&self) -> Vec<(u32, Option<i32>)> {
        self.slot_files()
            .into_iter()
            .filter_map(|k| {
                let kind = QueueLock::slot(k);
                self.lock_held(kind).then(|| (k, self.lock_holder(kind)))
            })
            .collect()
    }
}
