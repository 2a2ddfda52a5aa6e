//! The FIFO protocol of the module header, as its users drive it: enqueue
//! at the tail, claim the head into `cur/`, then one way out of `cur/`
//! (ack into `done/`, a mailbox message delivered, a nack back to the head
//! with backoff or into `dead/`, a release back to the head uncounted), and
//! the payload file handed to the running program. Every change here takes
//! `queue.lock` and follows the write-destination-first, remove-source-last
//! order the header explains.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use super::entries::{check_entry, is_temp_io, remove_durably};
use super::{
    Claim, Claimed, Enqueued, Header, MAX_PAYLOAD, Nacked, Queue, TaskOutcome, fault, new_task_id,
    random_u64, task,
};
use crate::ground::exit::{Exit, fail};
use crate::ground::fsutil;
use crate::model::logfmt::Event;

impl Queue {
    /// Make `payload` durable at the tail. See the module header for the
    /// protocol. Disk full / quota / I/O errors exit 75 with "NOT queued";
    /// nothing partial is left behind.
    pub fn enqueue(&self, payload: &[u8], dedupe: Option<&str>) -> Result<Enqueued> {
        self.enqueue_entry(payload, dedupe, None)
    }

    /// [`Queue::enqueue`] for a mailbox message (marked as one: only
    /// messages are ever typed into a pane), with its delivery flag.
    pub fn enqueue_message(
        &self,
        payload: &[u8],
        dedupe: Option<&str>,
        no_enter: bool,
    ) -> Result<Enqueued> {
        self.enqueue_entry(payload, dedupe, Some(no_enter))
    }

    /// `message`: `Some(no_enter)` for a mailbox message, `None` for a task.
    pub(super) fn enqueue_entry(
        &self,
        payload: &[u8],
        dedupe: Option<&str>,
        message: Option<bool>,
    ) -> Result<Enqueued> {
        if payload.len() > MAX_PAYLOAD {
            bail!(
                "task NOT queued for {}: the payload is {} bytes, over the limit of {} bytes \
                 (1 MiB); put large inputs in a file and send its path",
                self.id,
                payload.len(),
                MAX_PAYLOAD
            );
        }
        if let Some(k) = dedupe {
            task::check_dedupe(k)?;
        }
        let _lock = self.lock_for_append().context("task NOT queued")?;
        if let Some(k) = dedupe {
            // The inbox's tasks must be seen: moved into new/ first.
            self.absorb().context("task NOT queued")?;
            if let Some(existing) = self.find_dedupe(k)? {
                let depth = self.read_counter()?.pending();
                return Ok(Enqueued { task: existing, depth: depth as usize, deduped: true });
            }
        }
        let mut c = self.read_counter().context("task NOT queued")?;
        crate::ground::trace::mark("locked");
        let published = c.end;
        c.seq += 1;
        let depth = c.pending() + 1;
        c.depth = Some(depth);
        let task = new_task_id(c.seq);
        let mut h = Header::new(&task, c.seq, Utc::now(), dedupe, payload);
        h.message = message.is_some();
        h.no_enter = message.unwrap_or(false);
        let result = (|| -> Result<()> {
            self.append(&mut c, &task::encode(&h, payload)?)?;
            // Published (and acknowledged once this returns) by the
            // counter that covers it.
            if let Err(e) = self.write_counter(&c) {
                self.unappend(published);
                return Err(e);
            }
            crate::ground::trace::mark("published");
            fault("published");
            Ok(())
        })();
        if let Err(e) = result {
            let code = if is_temp_io(&e) { Exit::TempFail } else { Exit::Failure };
            let msg = format!("task NOT queued for {}: {e:#}", self.id);
            return Err(fail(code, msg));
        }
        self.event(Event::new("enqueue").id(&self.id).kv("task", &task).kv("depth", depth));
        crate::ground::trace::mark("logged");
        Ok(Enqueued { task, depth: depth as usize, deduped: false })
    }

    /// Claim the head if it is due: it moves into `cur/` (or, for a slot
    /// above 0, is rewritten there), attempt+1 and `started_at` recorded,
    /// durable before this returns, so that an attempt is counted even if
    /// its worker never starts (the module header has the protocol). With
    /// `ttl`, heads enqueued longer ago than that are dead-lettered (reason
    /// `ttl`) on the way instead of being run.
    pub fn claim(&self, now: DateTime<Utc>, ttl: Option<Duration>) -> Result<Claim> {
        self.claim_for(now, ttl, 0, 1)
    }

    /// [`Queue::claim`] for worker slot `slot` of a queue run by `workers`
    /// workers at once: the head is claimed while fewer than `workers` tasks
    /// are in `cur/` and none of them is `slot`'s (a task of this slot
    /// still in `cur/` was left by its dead runner: it is resolved first,
    /// by the hand-over). Claims are made under the one lock and always
    /// take the head, so tasks start in queue order whatever the number of
    /// workers. Slot 0 with one worker is [`Queue::claim`].
    pub fn claim_for(
        &self,
        now: DateTime<Utc>,
        ttl: Option<Duration>,
        slot: u32,
        workers: u32,
    ) -> Result<Claim> {
        self.claim_inner(now, ttl, slot, workers, false)
    }

    /// [`Queue::claim_for`] for a runner about to start the task's program:
    /// the head's `new/` entry is removed but `new/` is not synced yet, so
    /// that the runner can start the program first and sync while it runs
    /// ([`Queue::settle`]). The module header gives the crash argument;
    /// the ack and a dead-letter from `cur/` settle first if it has not.
    pub fn claim_to_run(
        &self,
        now: DateTime<Utc>,
        ttl: Option<Duration>,
        slot: u32,
        workers: u32,
    ) -> Result<Claim> {
        self.claim_inner(now, ttl, slot, workers, true)
    }

    /// What a runner syncs once its program has started: its batched acks
    /// (`done/`; this is also the sync that makes a moved claim durable, see
    /// "Why a claim may move"), then what a rewrite claim left (`new/`).
    pub fn settle(&self) -> Result<()> {
        self.sync_acks()?;
        if self.unsettled.get() {
            fsutil::fsync_dir(&self.sub("new"))?;
            self.unsettled.set(false);
        }
        Ok(())
    }

    /// The claim of `new/<name>` by a move: its modification time set to
    /// the claim's `now` (what its start reads back as), then renamed into
    /// `cur/` unchanged. Synced at once (`cur/`, then `new/`) unless
    /// `defer_sync` (a runner's; see the module header). Hold the queue lock.
    fn move_claimed(&self, name: &str, now: DateTime<Utc>, defer_sync: bool) -> Result<()> {
        let from = self.sub("new").join(name);
        fsutil::set_modified(&from, now.into())?;
        let to = self.sub("cur").join(name);
        fs::rename(&from, &to).with_context(|| format!("moving {} into cur/", from.display()))?;
        fault("claim-installed");
        if !defer_sync {
            self.sync_stage("cur")?;
            fsutil::fsync_dir(&self.sub("new"))?;
        }
        Ok(())
    }

    fn claim_inner(
        &self,
        now: DateTime<Utc>,
        ttl: Option<Duration>,
        slot: u32,
        workers: u32,
        defer_sync: bool,
    ) -> Result<Claim> {
        let claim = self.claim_locked(now, ttl, slot, workers, defer_sync)?;
        if !matches!(claim, Claim::Claimed(_)) {
            // Nothing to run now: our batched acks become durable before
            // the caller waits (see the module header).
            self.sync_acks()?;
        }
        Ok(claim)
    }

    fn claim_locked(
        &self,
        now: DateTime<Utc>,
        ttl: Option<Duration>,
        slot: u32,
        workers: u32,
        defer_sync: bool,
    ) -> Result<Claim> {
        let _lock = self.lock()?;
        let running = self.all_running_locked()?;
        // With one worker, any task in `cur/` is ours (an entry has no slot
        // unless it was claimed for a slot above 0), so this is the strict
        // one-at-a-time rule; with N, only a task of our own slot is.
        if running.iter().any(|c| c.header.slot.unwrap_or(0) == slot) {
            return Ok(Claim::Busy);
        }
        // Tasks of other slots (of a spec that ran more workers before, too)
        // keep theirs until they end.
        if running.len() >= workers.max(1) as usize {
            return Ok(Claim::Full);
        }
        loop {
            let Some((mut h, payload)) = self.first_valid("new")? else { return Ok(Claim::Empty) };
            if let Some(ttl) = ttl
                && h.enqueued_at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
                    < now
            {
                self.changing_new(Some(-1), || {
                    self.dead_letter_locked("new", &h, &payload, "ttl", None)
                })?;
                continue;
            }
            if let Some(nb) = h.not_before.filter(|nb| *nb > now) {
                return Ok(Claim::NotBefore(nb));
            }
            // Worker slot 0 (every queue's only slot, unless `--workers N`)
            // moves the entry as it is; see "Why a claim may move" in the
            // module header. Slots above 0 record theirs in a rewrite.
            let moves = h.movable && slot == 0;
            h.attempt += 1;
            h.started_at = Some(now);
            h.slot = (slot > 0).then_some(slot);
            h.movable = false;
            let name = h.name();
            self.changing_new(Some(-1), || {
                if moves {
                    self.move_claimed(&name, now, defer_sync)?;
                } else {
                    self.install(&h, &payload, "cur")?;
                    fault("claim-installed");
                    if defer_sync {
                        fsutil::remove_if_exists(&self.sub("new").join(&name))?;
                        self.unsettled.set(true);
                    } else {
                        remove_durably(&self.sub("new").join(&name))?;
                    }
                }
                fault("claim-taken");
                Ok(())
            })?;
            return Ok(Claim::Claimed(Claimed { header: h, payload }));
        }
    }

    /// The claimed task, if any (resolving leftovers of interrupted moves).
    ///
    /// A claim whose worker is gone (its claimer died between `claim`
    /// and the launch, or the worker's server died) is recovered by the
    /// caller: take [`Queue::try_worker_lock`] first (whoever starts
    /// a runner holds it from claim to launch, so holding it means no launch is in
    /// flight), confirm no session is alive, then `release` (nothing ran) or
    /// `nack` (something ran and failed).
    pub fn running(&self) -> Result<Option<Claimed>> {
        let _lock = self.lock()?;
        self.running_locked()
    }

    /// Every claimed task, in queue order (up to one per worker slot), with
    /// the same resolution of leftovers as [`Queue::running`].
    pub fn running_all(&self) -> Result<Vec<Claimed>> {
        let _lock = self.lock()?;
        self.all_running_locked()
    }

    /// True while task `task` is claimed.
    pub fn is_running(&self, task: &str) -> Result<bool> {
        let _lock = self.lock()?;
        Ok(self.running_task_locked(task)?.is_some())
    }

    /// The commit of an ack: `cur/<name>` renamed into `done/`, `ev=task-done`
    /// logged (from `outcome`'s status, signal and duration), `done/`
    /// synced, nothing else, so that the window between a program's exit
    /// and its durable record is one rename and one sync. Returns the entry
    /// name for [`Queue::write_outcome`], or `None` when the task was
    /// already done.
    pub fn complete(&self, task: &str, outcome: &TaskOutcome) -> Result<Option<String>> {
        self.commit(task, || {
            Event::new("task-done")
                .id(&self.id)
                .kv("task", task)
                .opt("status", outcome.status)
                .opt("signal", outcome.signal.clone())
                .kv("duration_ms", outcome.duration_ms)
        })
    }

    /// The commit of a mailbox message pasted at `at`: like [`Queue::complete`]
    /// (one rename, then its outcome), logged as `ev=msg-delivered`.
    pub fn delivered(&self, task: &str, at: DateTime<Utc>) -> Result<()> {
        let name = self.commit(task, || {
            Event::new("msg-delivered")
                .id(&self.id)
                .kv("task", task)
                .kv("delivered_at", at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        })?;
        if let Some(name) = name {
            let outcome = TaskOutcome { delivered_at: Some(at), ..TaskOutcome::default() };
            self.write_outcome(&name, &outcome)?;
        }
        Ok(())
    }

    pub(super) fn commit(
        &self,
        task: &str,
        event: impl FnOnce() -> Event,
    ) -> Result<Option<String>> {
        let _lock = self.lock()?;
        let c = match self.running_task_locked(task)? {
            Some(c) => c,
            None => {
                if self.find_in("done", task)?.is_some() {
                    return Ok(None);
                }
                bail!("task {task} of {} is not running; nothing to acknowledge", self.id);
            }
        };
        // A task's end must never be durable while its claim's removal
        // from `new/` is not (see the module header).
        self.settle()?;
        let name = c.header.name();
        let from = self.sub("cur").join(&name);
        fs::rename(&from, self.sub("done").join(&name))
            .with_context(|| format!("moving {} to done/", from.display()))?;
        // Done for every process from here on: record it before the sync,
        // which can take milliseconds, so a kill during the sync does not
        // leave a finished task without its event (or its payload file).
        self.event(event());
        self.forget_work(task);
        fault("ack-renamed");
        if self.batch_acks.get() {
            self.acks_unsynced.set(true);
        } else {
            fsutil::fsync_dir_barrier(&self.sub("done"))?;
        }
        fault("acked");
        Ok(Some(name))
    }

    /// Write the outcome of a task [`Queue::complete`] just finished (entry
    /// `name`). Informational and not synced: the task is done whether or
    /// not this lands, and a crash can only lose the outcome.
    pub fn write_outcome(&self, name: &str, outcome: &TaskOutcome) -> Result<()> {
        let path = self.sub("done").join(format!("{name}.outcome"));
        let tmp = self.sub("tmp").join(format!("{name}.outcome"));
        let _ = fs::remove_file(&tmp);
        fsutil::create_private(&tmp, &serde_json::to_vec(outcome)?)?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// The running task `task` failed for `reason`: back to the head with
    /// `not_before` = now + capped exponential backoff with jitter, or
    /// dead-lettered (reason `max-attempts`) once `max_attempts` were made.
    pub fn nack(
        &self,
        task: &str,
        reason: &str,
        backoff_base: Duration,
        backoff_max: Duration,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Nacked> {
        let _lock = self.lock()?;
        let Some(c) = self.running_task_locked(task)? else {
            bail!("task {task} of {} is not running; nothing to retry", self.id)
        };
        let mut h = c.header.clone();
        h.last_error = Some(reason.to_string());
        if h.attempt >= max_attempts {
            self.dead_letter_locked("cur", &h, &c.payload, "max-attempts", Some(reason))?;
            return Ok(Nacked::Dead);
        }
        let delay = task::backoff_delay(backoff_base, backoff_max, h.attempt, random_u64());
        let not_before = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        h.not_before = Some(not_before);
        h.slot = None;
        self.requeue_locked(&h, &c.payload)?;
        self.event(
            Event::new("task-retry")
                .id(&self.id)
                .kv("task", task)
                .kv("attempt", h.attempt)
                .kv("not_before", not_before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .kv("reason", reason),
        );
        Ok(Nacked::Retry { attempt: h.attempt, not_before })
    }

    /// Put the running task back at the head WITHOUT counting the attempt
    /// (its attempt never ran to an end that counts, e.g. a policy change
    /// stopped its worker). No backoff, no event.
    pub fn release(&self, task: &str) -> Result<()> {
        let _lock = self.lock()?;
        let Some(c) = self.running_task_locked(task)? else {
            bail!("task {task} of {} is not running; nothing to release", self.id)
        };
        let mut h = c.header.clone();
        h.attempt = h.attempt.saturating_sub(1);
        h.started_at = None;
        h.slot = None;
        self.requeue_locked(&h, &c.payload)
    }

    /// Put the running task back at the head of new/ with header `h`: the
    /// new/ copy is durable before the cur/ entry (and its exit note) goes,
    /// so a crash in between leaves the task in both places, never in none
    /// (`running` drops a cur/ entry whose name is also in new/). Hold the
    /// queue lock.
    pub(super) fn requeue_locked(&self, h: &Header, payload: &[u8]) -> Result<()> {
        let name = h.name();
        self.changing_new(Some(1), || {
            self.install(h, payload, "new")?;
            self.remove_durably_in("cur", &name)?;
            self.forget_work(&h.task);
            Ok(())
        })
    }

    /// Dead-letter a pending or running task with `reason`.
    pub fn dead_letter(&self, task: &str, reason: &str) -> Result<()> {
        self.dead_letter_with(task, reason, None)
    }

    /// [`Queue::dead_letter`], with a line of `detail` under the reason.
    pub fn dead_letter_because(&self, task: &str, reason: &str, detail: &str) -> Result<()> {
        self.dead_letter_with(task, reason, Some(detail))
    }

    fn dead_letter_with(&self, task: &str, reason: &str, detail: Option<&str>) -> Result<()> {
        let _lock = self.lock()?;
        let _ = self.all_running_locked()?;
        for stage in ["cur", "new"] {
            if let Some(name) = self.find_in(stage, task)? {
                let (h, payload) = self.load(stage, &name)?;
                self.changing_new(None, || {
                    self.dead_letter_locked(stage, &h, &payload, reason, detail)
                })?;
                return Ok(());
            }
        }
        bail!("no pending or running task {task} in the queue of {}", self.id)
    }

    /// Write the payload of the running task where its worker can read it
    /// (`work/<task-id>`, 0600) and return that path. Not synced: after a
    /// crash the task runs again and its payload file is written again.
    pub fn work_file(&self, c: &Claimed) -> Result<PathBuf> {
        let p = super::work_in(&self.dir, c.task());
        // The file of a finished task is kept as `work/.spare` and reused:
        // taking it is one rename (of two workers, one gets it), so that a
        // busy runner creates and deletes no file per task.
        if fs::rename(super::spare_work(&self.dir), &p).is_ok() && fill_spare(&p, &c.payload) {
            return Ok(p);
        }
        let _ = fs::remove_file(&p);
        fsutil::create_private(&p, &c.payload)?;
        Ok(p)
    }
}

/// Overwrite the taken spare at `path` with `payload`: only what the queue
/// would accept as an entry (`check_entry`: a regular file of ours with one
/// link), never through a symlink. False leaves it to be replaced by a new
/// file.
fn fill_spare(path: &std::path::Path, payload: &[u8]) -> bool {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let ours = f.metadata().is_ok_and(|m| check_entry(&m).is_ok());
    // Written over in place, then cut to length: a payload no longer than
    // the last frees and allocates no block.
    ours && f.write_all(payload).is_ok() && f.set_len(payload.len() as u64).is_ok()
}
