//! The durable per-identity FIFO. Only this module touches queue files.
//!
//! ```text
//! queues/<id>/queue.lock   flock taken for EVERY change below; never deleted, never broken
//! queues/<id>/worker.lock  held by whoever starts a runner, and by a runner retiring
//! queues/<id>/runner.lock  held by the live runner (its pid inside)
//! queues/<id>/counter      "<seq> <depth> <boot-id> <fnv>": last sequence handed out, pending count
//! queues/<id>/tmp/         files being written (complete only once renamed out)
//! queues/<id>/new/         pending tasks, <seq:020>.<task-id>; byte order = FIFO order
//! queues/<id>/cur/         the claimed (running) task
//! queues/<id>/done/        finished tasks, + <name>.outcome (status, signal, duration, screen)
//! queues/<id>/dead/        dead letters, + <name>.reason
//! queues/<id>/quarantine/  anything foreign or damaged found in new/ or cur/, + <name>.reason
//! queues/<id>/work/        <task-id>: the payload handed to the running program
//! ```
//!
//! A task file is one JSON header line (task id, seq, enqueued_at, attempt,
//! not_before, dedupe key, payload length and FNV-1a 64 checksum) and then the
//! payload bytes. To enqueue, a sender takes `queue.lock`, reads `counter`,
//! writes `tmp/<name>` (create-exclusive, O_NOFOLLOW, 0600) and fdatasyncs
//! it, writes the incremented counter, renames the file into `new/`, fsyncs
//! `new/`, and only then releases the lock and reports success. Because
//! sequence numbers are assigned and published under the one lock, and
//! names sort by sequence, `new/` read in byte order is exactly the order in
//! which sends became durable, whatever the number of concurrent senders.
//!
//! **Why two syncs are enough.** Exit 0 promises that the task survives
//! power loss: its bytes (the file's fdatasync) and its name in `new/` (the
//! directory's fsync, after the rename) must be on disk, and they are.
//! - `tmp/` is not synced: the rename is atomic, and if a crash resurrects
//!   the `tmp/` name, that is a stray file nobody reads (`clean` removes
//!   it), never a second copy in `new/`.
//! - `counter` is written but not synced. Within one boot every writer sees
//!   the page cache, so sequences never repeat; only a crash of the whole
//!   machine can lose a write, and a crash means a new boot. The counter
//!   carries the id of the boot that wrote it (Linux
//!   `/proc/sys/kernel/random/boot_id`, macOS `kern.bootsessionuuid`), and
//!   one written during another boot (or torn: it has a checksum) is
//!   rebuilt from the directories, the highest sequence anywhere. Where the
//!   OS gives no boot id, the counter is synced as before.
//!
//! A crash (kill -9, power loss) at each step leaves: before the rename, at
//! most a stray `tmp/` file (every `tmp/` file seen by a lock holder is
//! abandoned; `clean` removes old ones) and possibly a consumed sequence
//! number, i.e. a gap, never a duplicate; after the rename, a complete,
//! checksummed task, whose send may not have said so (it was not
//! acknowledged, so either outcome is allowed). A torn file cannot be
//! published, and one damaged later fails its checksum and is quarantined.
//! A failed write or fsync is never retried: the partial file is removed
//! and the send fails with exit 75, "NOT queued".
//!
//! `counter` also carries the pending count, so that `send` can report the
//! depth without listing `new/` (its cost must not grow with depth); claims
//! and requeues adjust it by one, and operations that list `new/` anyway
//! (rm, purge, expiry, ...) rewrite it. A change of `new/` takes several
//! steps and a process can be killed between any two, so every change marks
//! the depth unknown first (`-` in the counter, the sequence kept) and
//! writes the depth after it last: a counter left unknown is recounted from
//! `new/` by its next reader, never trusted one off.
//!
//! Claiming (`claim`, the runner's) rewrites the head into `cur/` with
//! attempt+1 and started_at (through `tmp/`, synced, `cur/` synced: the
//! attempt counts even if the program never starts), then unlinks the
//! `new/` copy and syncs `new/`; only one task is in `cur/` at a time. Every
//! transition out of `cur/` writes its destination first and removes the
//! `cur/` copy last, so a crash in between leaves the same name twice; the
//! rule "a `cur/` entry with a twin in `new/`, `done/` or `dead/` is stale"
//! (applied under the lock by `running`) resolves it the only safe way.
//! An ack (`complete`) is one rename `cur/` -> `done/` and one sync of
//! `done/`, taken the moment the program's exit is known: a task completes
//! once, and the window in which a finished task could still be retried is
//! that rename. Its outcome file follows, unsynced (informational). A task
//! whose runner died stays in `cur/`; the next per-peer step (the runner's
//! hand-over, or the tick) sees it with `running` and retries it.
//!
//! A nacked task goes back to `new/` under its old name, so it stays at the
//! HEAD, with `not_before` set by capped exponential backoff: while it waits,
//! the tasks behind it wait too (strict FIFO, by design). After
//! `max_attempts` it is dead-lettered. Anything in `new/` or `cur/` that is
//! not a regular file of ours (symlink, FIFO, hard link, foreign owner,
//! oversize, bad name, bad checksum) is moved to `quarantine/` with a reason
//! file and an `ev=task-dead reason=corrupt` event; nothing is ever silently
//! dropped and nothing is followed.
//!
//! Events: this module logs `enqueue`, `task-done`, `task-retry` and
//! `task-dead` (after the change is durable); the runner logs `task-start`.
//! A logging failure never undoes a durable change; it is a warning.

pub mod task;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::exit::{Exit, fail};
use crate::fsutil::{self, LockGuard};
use crate::logfmt::Event;
use crate::paths::Root;
use crate::peer::Identity;
pub use task::{Header, MAX_PAYLOAD};

/// How long a command waits for another holder of the queue lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// `tmp/` files older than this are abandoned (writers hold them for ms).
pub const TMP_MAX_AGE: Duration = Duration::from_secs(300);

/// Queue depth by stage, as `status` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: usize,
    pub running: usize,
    pub dead: usize,
    /// Damaged or foreign entries moved out of `new/` or `cur/`.
    pub quarantined: usize,
}

/// Count `id`'s tasks by stage (a missing queue counts as empty). Reads
/// directory listings only, without the lock.
pub fn counts(root: &Root, id: &Identity) -> Result<Counts> {
    counts_in(&root.queue_dir(id))
}

/// The id of the task in `cur/`, if any (a directory listing, no lock).
pub fn running_task(root: &Root, id: &Identity) -> Result<Option<String>> {
    let names = task_names(&root.queue_dir(id).join("cur"))?;
    Ok(names.first().and_then(|n| name_task(n)).map(str::to_string))
}

fn counts_in(dir: &Path) -> Result<Counts> {
    let n = |sub: &str| -> Result<usize> { Ok(task_names(&dir.join(sub))?.len()) };
    let quarantined = fsutil::list_dir(&dir.join("quarantine"))?
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "reason"))
        .count();
    Ok(Counts { pending: n("new")?, running: n("cur")?, dead: n("dead")?, quarantined })
}

/// An entry in `quarantine/`, as `queue list` and `queue show` report it.
#[derive(Clone, Debug, Serialize)]
pub struct QuarantineMeta {
    /// Its name in `quarantine/` (what `queue show` takes).
    pub entry: String,
    /// Where it was found: `new/<name>` or `cur/<name>`.
    pub from: String,
    pub reason: String,
    /// The task id its name carried, if it was a task's name.
    pub task: Option<String>,
    pub bytes: u64,
    /// When it was quarantined.
    pub at: Option<DateTime<Utc>>,
}

/// What `enqueue` did.
#[derive(Clone, Debug, Serialize)]
pub struct Enqueued {
    pub task: String,
    /// Pending tasks including this one.
    pub depth: usize,
    /// True when a pending or running task with the same dedupe key already
    /// existed; `task` is that task and nothing new was queued.
    pub deduped: bool,
}

/// A task as `list` and the tick see it.
#[derive(Clone, Debug, Serialize)]
pub struct TaskMeta {
    pub task: String,
    pub seq: u64,
    pub attempt: u32,
    pub enqueued_at: DateTime<Utc>,
    pub not_before: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub dedupe: Option<String>,
    pub bytes: u64,
}

impl From<&Header> for TaskMeta {
    fn from(h: &Header) -> TaskMeta {
        TaskMeta {
            task: h.task.clone(),
            seq: h.seq,
            attempt: h.attempt,
            enqueued_at: h.enqueued_at,
            not_before: h.not_before,
            started_at: h.started_at,
            last_error: h.last_error.clone(),
            dedupe: h.dedupe.clone(),
            bytes: h.len,
        }
    }
}

/// The task in `cur/`.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Claimed {
    pub fn task(&self) -> &str {
        &self.header.task
    }
}

/// How a task finished (kept in `done/<name>.outcome`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Option<i32>,
    pub signal: Option<String>,
    pub duration_ms: u64,
    /// The last lines of the worker's screen.
    pub screen_tail: String,
    /// A mailbox message: when it was pasted into the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What [`Queue::claim`] found.
#[derive(Clone, Debug)]
pub enum Claim {
    /// The head was due and is now in `cur/`.
    Claimed(Claimed),
    /// Nothing pending.
    Empty,
    /// A task is already claimed.
    Busy,
    /// The head is backing off until then (and blocks the queue).
    NotBefore(DateTime<Utc>),
}

/// What `nack` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Nacked {
    /// Back at the head; not started before `not_before`.
    Retry { attempt: u32, not_before: DateTime<Utc> },
    /// Out of attempts: dead-lettered with reason `max-attempts`.
    Dead,
}

/// A dead letter as `list --dead` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeadMeta {
    #[serde(flatten)]
    pub meta: TaskMeta,
    pub reason: String,
}

/// Everything `queue list` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    pub pending: Vec<TaskMeta>,
    pub running: Vec<TaskMeta>,
    pub dead: Vec<DeadMeta>,
    pub quarantined: Vec<QuarantineMeta>,
}

/// One task in full, for `queue show`.
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    /// `pending`, `running`, `done` or `dead`.
    pub stage: &'static str,
    #[serde(flatten)]
    pub meta: TaskMeta,
    /// 1-based place in the FIFO when pending.
    pub position: Option<usize>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
}

/// One identity's queue.
#[derive(Clone, Debug)]
pub struct Queue {
    id: Identity,
    dir: PathBuf,
    log: PathBuf,
}

const SUBDIRS: [&str; 7] = ["tmp", "new", "cur", "done", "dead", "quarantine", "work"];

impl Queue {
    /// Open (creating if needed, 0700) `id`'s queue under `root`.
    pub fn open(root: &Root, id: &Identity) -> Result<Queue> {
        let dir = root.queue_dir(id);
        let mut chain = vec![root.queues_dir(), dir.clone()];
        chain.extend(SUBDIRS.iter().map(|s| dir.join(s)));
        let mut created = false;
        for d in &chain {
            let fresh = fs::symlink_metadata(d).is_err();
            fsutil::ensure_dir(d)?;
            created |= fresh;
        }
        if created {
            // A new queue's directories must survive a crash as surely as
            // the first task written into them.
            fsutil::fsync_dir(root.dir())?;
            fsutil::fsync_dir(&root.queues_dir())?;
            fsutil::fsync_dir(&dir)?;
        }
        Ok(Queue { id: id.clone(), dir, log: root.lifecycle_log() })
    }

    /// Open `id`'s queue only if it exists (the exit hook of a persistent
    /// peer must not create one).
    pub fn open_existing(root: &Root, id: &Identity) -> Result<Option<Queue>> {
        if fs::symlink_metadata(root.queue_dir(id)).is_err() {
            return Ok(None);
        }
        Queue::open(root, id).map(Some)
    }

    /// Pending / running / dead counts (directory listings, no lock).
    pub fn counts(&self) -> Result<Counts> {
        counts_in(&self.dir)
    }

    pub fn identity(&self) -> &Identity {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sub(&self, s: &str) -> PathBuf {
        self.dir.join(s)
    }

    fn lock(&self) -> Result<LockGuard> {
        fsutil::lock_within(
            &self.dir.join("queue.lock"),
            LOCK_WAIT,
            &format!("queue of {}", self.id),
        )
    }

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
    fn enqueue_entry(
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
        let _lock = self.lock().context("task NOT queued")?;
        if let Some(k) = dedupe
            && let Some(existing) = self.find_dedupe(k)?
        {
            let depth = self.read_counter()?.1;
            return Ok(Enqueued { task: existing, depth: depth as usize, deduped: true });
        }
        let (seq, depth) = self.read_counter()?;
        crate::trace::mark("locked");
        let (seq, depth) = (seq + 1, depth + 1);
        let task = new_task_id();
        let mut h = Header::new(&task, seq, Utc::now(), dedupe, payload);
        h.message = message.is_some();
        h.no_enter = message.unwrap_or(false);
        let name = h.name();
        let bytes = task::encode(&h, payload)?;
        let tmp = self.sub("tmp").join(&name);
        let dest = self.sub("new").join(&name);
        let mut published = false;
        let result = (|| -> Result<()> {
            write_new_file(&tmp, &bytes, "tmp-written")?;
            crate::trace::mark("file-synced");
            fault("tmp-synced");
            // The sequence is taken; the depth is unknown until published.
            self.write_counter(seq, None)?;
            fault("counter-persisted");
            fs::rename(&tmp, &dest).with_context(|| format!("publishing {}", dest.display()))?;
            crate::trace::mark("renamed");
            published = true;
            fault("published");
            fault_eio("eio-dir-fsync").context("fsync of new/")?;
            // The acknowledgement point: on macOS also the one full flush.
            fsutil::fsync_dir_barrier(&self.sub("new"))?;
            crate::trace::mark("dir-synced");
            fault("synced");
            self.write_counter(seq, Some(depth))
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            if published {
                // Not durable for sure: take it back rather than run a task
                // whose sender was told it was not queued.
                let _ = fs::remove_file(&dest);
                let _ = fsutil::fsync_dir(&self.sub("new"));
            }
            let code = if is_temp_io(&e) { Exit::TempFail } else { Exit::Failure };
            let msg = format!("task NOT queued for {}: {e:#}", self.id);
            return Err(fail(code, msg));
        }
        self.event(Event::new("enqueue").id(&self.id).kv("task", &task).kv("depth", depth));
        crate::trace::mark("logged");
        Ok(Enqueued { task, depth: depth as usize, deduped: false })
    }

    /// The head of the FIFO (quarantining damaged entries in front of it).
    pub fn head(&self) -> Result<Option<TaskMeta>> {
        let _lock = self.lock()?;
        Ok(self.first_valid("new")?.map(|(h, _)| TaskMeta::from(&h)))
    }

    /// Move the head to `cur/` and return it, or `None` when the queue is
    /// empty, a task is already running, or the head's `not_before` is still
    /// in the future: a backed-off head blocks the whole queue (strict FIFO).
    pub fn claim_head(&self, now: DateTime<Utc>) -> Result<Option<Claimed>> {
        Ok(match self.claim(now, None)? {
            Claim::Claimed(c) => Some(c),
            _ => None,
        })
    }

    /// Claim the head if it is due: it is rewritten into `cur/` with
    /// attempt+1 and `started_at` (durable before this returns, so an
    /// attempt is counted even if its worker never starts), then its `new/`
    /// entry is removed. With `ttl`, heads enqueued longer ago than that are
    /// dead-lettered (reason `ttl`) on the way instead of being run.
    pub fn claim(&self, now: DateTime<Utc>, ttl: Option<Duration>) -> Result<Claim> {
        let _lock = self.lock()?;
        if self.running_locked()?.is_some() {
            return Ok(Claim::Busy);
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
            h.attempt += 1;
            h.started_at = Some(now);
            let name = h.name();
            self.changing_new(Some(-1), || {
                self.install(&h, &payload, "cur")?;
                fault("claim-installed");
                remove_durably(&self.sub("new").join(&name))?;
                fault("claim-taken");
                Ok(())
            })?;
            return Ok(Claim::Claimed(Claimed { header: h, payload }));
        }
    }

    /// The claimed task, if any (resolving leftovers of interrupted moves).
    ///
    /// A claim whose worker is gone (its claimer died between `claim_head`
    /// and the launch, or the worker's server died) is recovered by the
    /// caller: take [`Queue::try_worker_lock`] first (`worker::start_next`
    /// holds it from claim to launch, so holding it means no launch is in
    /// flight), confirm no session is alive, then `release` (nothing ran) or
    /// `nack` (something ran and failed).
    pub fn running(&self) -> Result<Option<Claimed>> {
        let _lock = self.lock()?;
        self.running_locked()
    }

    /// Finish the running task `task` with `outcome`: it moves to `done/`
    /// in one rename (the commit point: a task completes once), then its
    /// outcome is written beside it. Acking a task that is already done is
    /// a no-op.
    pub fn ack(&self, task: &str, outcome: &Outcome) -> Result<()> {
        if let Some(name) = self.complete(task, outcome)? {
            self.write_outcome(&name, outcome)?;
        }
        Ok(())
    }

    /// The commit of an ack: `cur/<name>` renamed into `done/`, `ev=task-done`
    /// logged (from `outcome`'s status, signal and duration), `done/`
    /// synced, nothing else, so that the window between a program's exit
    /// and its durable record is one rename and one sync. Returns the entry
    /// name for [`Queue::write_outcome`], or `None` when the task was
    /// already done.
    pub fn complete(&self, task: &str, outcome: &Outcome) -> Result<Option<String>> {
        self.commit(task, || {
            Event::new("task-done")
                .id(&self.id)
                .kv("task", task)
                .opt("status", outcome.status)
                .opt("signal", outcome.signal.clone())
                .kv("duration_ms", outcome.duration_ms)
        })
    }

    /// The commit of a mailbox message pasted at `at`: like [`Queue::ack`]
    /// (one rename, then its outcome), logged as `ev=msg-delivered`.
    pub fn delivered(&self, task: &str, at: DateTime<Utc>) -> Result<()> {
        let name = self.commit(task, || {
            Event::new("msg-delivered")
                .id(&self.id)
                .kv("task", task)
                .kv("delivered_at", at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        })?;
        if let Some(name) = name {
            let outcome = Outcome { delivered_at: Some(at), ..Outcome::default() };
            self.write_outcome(&name, &outcome)?;
        }
        Ok(())
    }

    fn commit(&self, task: &str, event: impl FnOnce() -> Event) -> Result<Option<String>> {
        let _lock = self.lock()?;
        let c = match self.running_locked()? {
            Some(c) if c.header.task == task => c,
            _ => {
                if self.find_in("done", task)?.is_some() {
                    return Ok(None);
                }
                bail!("task {task} of {} is not running; nothing to acknowledge", self.id);
            }
        };
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
        fsutil::fsync_dir_barrier(&self.sub("done"))?;
        fault("acked");
        Ok(Some(name))
    }

    /// Write the outcome of a task [`Queue::complete`] just finished (entry
    /// `name`). Informational and not synced: the task is done whether or
    /// not this lands, and a crash can only lose the outcome.
    pub fn write_outcome(&self, name: &str, outcome: &Outcome) -> Result<()> {
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
        let c = match self.running_locked()? {
            Some(c) if c.header.task == task => c,
            _ => bail!("task {task} of {} is not running; nothing to retry", self.id),
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

    /// Dead-letter a pending or running task with `reason`.
    pub fn dead_letter(&self, task: &str, reason: &str) -> Result<()> {
        let _lock = self.lock()?;
        let _ = self.running_locked()?;
        for stage in ["cur", "new"] {
            if let Some(name) = self.find_in(stage, task)? {
                let (h, payload) = self.load(stage, &name)?;
                self.changing_new(None, || {
                    self.dead_letter_locked(stage, &h, &payload, reason, None)
                })?;
                return Ok(());
            }
        }
        bail!("no pending or running task {task} in the queue of {}", self.id)
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
        let running = self.running_locked()?.map(|c| c.header.task);
        for p in fsutil::list_dir(&self.sub("work"))? {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if running.as_deref() != Some(name.as_str()) {
                out.push(p);
            }
        }
        if !dry_run {
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
        let mut gone = 0;
        for (i, name) in names.iter().enumerate() {
            let p = done.join(name);
            let old = fs::symlink_metadata(&p)
                .ok()
                .and_then(|m| m.modified().ok())
                .map(DateTime::<Utc>::from)
                .is_some_and(|t| now - t > age);
            if i < excess || old {
                remove_any(&done.join(format!("{name}.outcome")))?;
                remove_any(&p)?;
                gone += 1;
            }
        }
        if gone > 0 {
            fsutil::fsync_dir(&done)?;
        }
        Ok(gone)
    }

    /// Pending (FIFO order), running, and dead tasks. Damaged entries are
    /// quarantined on the way.
    pub fn list(&self) -> Result<Listing> {
        let _lock = self.lock()?;
        let running = self.running_locked()?.map(|c| TaskMeta::from(&c.header));
        let pending = self.all_valid("new")?.iter().map(|(h, _)| TaskMeta::from(h)).collect();
        let mut dead = Vec::new();
        for name in task_names(&self.sub("dead"))? {
            let Ok((h, _)) = self.load("dead", &name) else { continue };
            let reason = read_text(&self.sub("dead").join(format!("{name}.reason")));
            dead.push(DeadMeta { meta: TaskMeta::from(&h), reason: first_word(&reason) });
        }
        let quarantined = self.quarantined_locked()?;
        Ok(Listing { pending, running: running.into_iter().collect(), dead, quarantined })
    }

    /// One quarantined entry, by its `quarantine/` name or the task id its
    /// name carried, with the first `head` bytes of its content.
    pub fn show_quarantined(&self, key: &str, head: usize) -> Result<(QuarantineMeta, Vec<u8>)> {
        let _lock = self.lock()?;
        let Some(m) = self
            .quarantined_locked()?
            .into_iter()
            .find(|m| m.entry == key || m.task.as_deref() == Some(key))
        else {
            return Err(unknown_task(&self.id, key));
        };
        let mut content = Vec::new();
        if let Ok(Some(f)) = fsutil::open_read(&self.sub("quarantine").join(&m.entry))
            && f.metadata().is_ok_and(|md| md.is_file())
        {
            let _ = f.take(head as u64).read_to_end(&mut content);
        }
        Ok((m, content))
    }

    /// Every entry of `quarantine/` with its reason (oldest first).
    fn quarantined_locked(&self) -> Result<Vec<QuarantineMeta>> {
        let dir = self.sub("quarantine");
        let mut out = Vec::new();
        for p in fsutil::list_dir(&dir)? {
            let Some(entry) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            if entry.ends_with(".reason") {
                continue;
            }
            let text = read_text(&dir.join(format!("{entry}.reason")));
            let mut lines = text.lines();
            let from = lines
                .next()
                .and_then(|l| l.strip_prefix("from "))
                .map(|l| l.replace('"', ""))
                .unwrap_or_default();
            let reason = lines
                .next()
                .and_then(|l| l.strip_prefix("reason: "))
                .unwrap_or("(no reason recorded)")
                .to_string();
            let task = from
                .rsplit('/')
                .next()
                .and_then(task::parse_entry_name)
                .map(|(_, t)| t.to_string());
            let md = fs::symlink_metadata(&p).ok();
            let at = fs::symlink_metadata(dir.join(format!("{entry}.reason")))
                .ok()
                .and_then(|m| m.modified().ok())
                .map(DateTime::<Utc>::from);
            out.push(QuarantineMeta {
                entry,
                from,
                reason,
                task,
                bytes: md.map(|m| m.len()).unwrap_or(0),
                at,
            });
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.entry.cmp(&b.entry)));
        Ok(out)
    }

    /// One task wherever it is.
    pub fn show(&self, task: &str) -> Result<Shown> {
        let task = &task.to_ascii_lowercase();
        let _lock = self.lock()?;
        let running = self.running_locked()?;
        if let Some(c) = running.filter(|c| &c.header.task == task) {
            return Ok(Shown {
                stage: "running",
                meta: TaskMeta::from(&c.header),
                position: None,
                payload: c.payload,
                outcome: None,
                reason: None,
            });
        }
        let pending = task_names(&self.sub("new"))?;
        if let Some(pos) = pending.iter().position(|n| name_task(n) == Some(task)) {
            let (h, payload) = self.load("new", &pending[pos])?;
            return Ok(Shown {
                stage: "pending",
                meta: TaskMeta::from(&h),
                position: Some(pos + 1),
                payload,
                outcome: None,
                reason: None,
            });
        }
        for stage in ["done", "dead"] {
            if let Some(name) = self.find_in(stage, task)? {
                let (h, payload) = self.load(stage, &name)?;
                let outcome =
                    fsutil::read_if_exists(&self.sub("done").join(format!("{name}.outcome")))?
                        .filter(|_| stage == "done")
                        .and_then(|b| serde_json::from_slice(&b).ok());
                let reason = (stage == "dead")
                    .then(|| read_text(&self.sub("dead").join(format!("{name}.reason"))));
                return Ok(Shown {
                    stage: if stage == "done" { "done" } else { "dead" },
                    meta: TaskMeta::from(&h),
                    position: None,
                    payload,
                    outcome,
                    reason,
                });
            }
        }
        Err(unknown_task(&self.id, task))
    }

    /// Put dead letter `task` back at the TAIL (new sequence number, attempts
    /// reset). Returns the new depth.
    pub fn retry(&self, task: &str) -> Result<usize> {
        let _lock = self.lock()?;
        let Some(name) = self.find_in("dead", task)? else {
            if self.find_in("new", task)?.is_some() {
                bail!("task {task} of {} is already pending", self.id);
            }
            return Err(unknown_task(&self.id, task).context("only dead letters can be retried"));
        };
        if self.find_in("new", task)?.is_some() {
            // An earlier retry published it and died before removing this copy.
            fsutil::remove_if_exists(&self.sub("dead").join(format!("{name}.reason")))?;
            remove_durably(&self.sub("dead").join(&name))?;
            return self.recount();
        }
        let (old, payload) = self.load("dead", &name)?;
        let (seq, _) = self.read_counter()?;
        // A fresh enqueue time: the TTL that may have killed it restarts.
        let mut h = Header::new(task, seq + 1, Utc::now(), old.dedupe.as_deref(), &payload);
        h.last_error = old.last_error;
        self.write_counter(seq + 1, None)?;
        self.install(&h, &payload, "new")?;
        fsutil::remove_if_exists(&self.sub("dead").join(format!("{name}.reason")))?;
        remove_durably(&self.sub("dead").join(&name))?;
        let depth = self.recount()?;
        self.event(
            Event::new("enqueue").id(&self.id).kv("task", task).kv("depth", depth).kv("retry", 1),
        );
        Ok(depth)
    }

    /// Remove one pending or dead task (never the running one).
    pub fn rm(&self, task: &str) -> Result<&'static str> {
        let _lock = self.lock()?;
        if self.running_locked()?.is_some_and(|c| c.header.task == task) {
            bail!(
                "task {task} of {} is running; stop the worker first (`muxvisor stop {}`)",
                self.id,
                self.id
            );
        }
        for stage in ["new", "dead"] {
            if let Some(name) = self.find_in(stage, task)? {
                if stage == "dead" {
                    fsutil::remove_if_exists(&self.sub("dead").join(format!("{name}.reason")))?;
                }
                self.changing_new(None, || remove_durably(&self.sub(stage).join(&name)))?;
                return Ok(if stage == "new" { "pending" } else { "dead" });
            }
        }
        Err(unknown_task(&self.id, task))
    }

    /// Remove every pending and dead task (not the running one). Returns
    /// how many.
    pub fn purge(&self) -> Result<usize> {
        let _lock = self.lock()?;
        self.mark_depth_unknown()?;
        let mut n = 0;
        for stage in ["new", "dead"] {
            for p in fsutil::list_dir(&self.sub(stage))? {
                let is_task = p
                    .file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| task::parse_entry_name(f).is_some());
                remove_any(&p)?;
                n += usize::from(is_task);
            }
            fsutil::fsync_dir(&self.sub(stage))?;
        }
        self.recount()?;
        Ok(n)
    }

    /// Put the running task back at the head WITHOUT counting the attempt
    /// (its attempt never ran to an end that counts, e.g. a policy change
    /// stopped its worker). No backoff, no event.
    pub fn release(&self, task: &str) -> Result<()> {
        let _lock = self.lock()?;
        let c = match self.running_locked()? {
            Some(c) if c.header.task == task => c,
            _ => bail!("task {task} of {} is not running; nothing to release", self.id),
        };
        let mut h = c.header.clone();
        h.attempt = h.attempt.saturating_sub(1);
        h.started_at = None;
        self.requeue_locked(&h, &c.payload)
    }

    /// Put the running task back at the head of new/ with header `h`: the
    /// new/ copy is durable before the cur/ entry (and its exit note) goes,
    /// so a crash in between leaves the task in both places, never in none
    /// (`running` drops a cur/ entry whose name is also in new/). Hold the
    /// queue lock.
    fn requeue_locked(&self, h: &Header, payload: &[u8]) -> Result<()> {
        let name = h.name();
        self.changing_new(Some(1), || {
            self.install(h, payload, "new")?;
            remove_durably(&self.sub("cur").join(&name))?;
            self.forget_work(&h.task);
            Ok(())
        })
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

    /// `runner.lock`: held by the live runner for its whole life.
    pub fn runner_lock_path(&self) -> PathBuf {
        self.dir.join("runner.lock")
    }

    /// True while a runner lives and has not begun to retire.
    pub fn runner_alive(&self) -> bool {
        fsutil::is_locked(&self.runner_lock_path()).unwrap_or(false)
    }

    /// The live runner's pid, as it wrote it into its lock file.
    pub fn runner_pid(&self) -> Option<i32> {
        if !self.runner_alive() {
            return None;
        }
        let b = fsutil::read_if_exists(&self.runner_lock_path()).ok()??;
        String::from_utf8_lossy(&b).trim().parse().ok()
    }

    /// A cheap fingerprint of the queue's last change (the counter file's
    /// size, mtime and inode): every enqueue, claim and requeue rewrites the
    /// counter, so a runner polls this instead of listing `new/`.
    pub fn change_mark(&self) -> Option<(u64, i64, i64, u64)> {
        let md = fs::symlink_metadata(self.counter_path()).ok()?;
        Some((md.len(), md.mtime(), md.mtime_nsec(), md.ino()))
    }

    /// Write the payload of the running task where its worker can read it
    /// (`work/<task-id>`, 0600) and return that path. Not synced: after a
    /// crash the task runs again and its payload file is written again.
    pub fn work_file(&self, c: &Claimed) -> Result<PathBuf> {
        let p = self.sub("work").join(c.task());
        let _ = fs::remove_file(&p);
        fsutil::create_private(&p, &c.payload)?;
        Ok(p)
    }

    // ----- internals; callers hold the lock -----

    fn event(&self, ev: Event) {
        if let Err(e) = ev.append_to(&self.log) {
            crate::output::warn(format!("could not log a queue event for {}: {e:#}", self.id));
        }
    }

    fn forget_work(&self, task: &str) {
        let _ = fs::remove_file(self.sub("work").join(task));
    }

    fn counter_path(&self) -> PathBuf {
        self.dir.join("counter")
    }

    /// `(last seq, depth)`. A depth marked unknown (a change of `new/` was
    /// interrupted) is recounted from `new/`. A counter that is missing, torn, or written
    /// during an earlier boot (its writes were not synced, so a crash may
    /// have lost the newest ones) is rebuilt from the directories: the
    /// highest sequence anywhere, the count of `new/`.
    fn read_counter(&self) -> Result<(u64, u64)> {
        let path = self.counter_path();
        if let Some(bytes) = fsutil::read_if_exists(&path)?
            && let Some((seq, depth, boot)) = parse_counter(&bytes)
            && boot.is_none_or(|b| Some(b) == crate::proc::boot_id())
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
    fn write_counter(&self, seq: u64, depth: Option<u64>) -> Result<()> {
        let path = self.counter_path();
        let f = fsutil::open_private_rw(&path)?;
        let boot = crate::proc::boot_id();
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
    fn changing_new<T>(&self, delta: Option<i64>, change: impl FnOnce() -> Result<T>) -> Result<T> {
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
    fn mark_depth_unknown(&self) -> Result<()> {
        let (seq, _) = self.read_counter()?;
        self.write_counter(seq, None)
    }

    /// Recount `new/` into the counter; returns the depth.
    fn recount(&self) -> Result<usize> {
        let (seq, _) = self.read_counter()?;
        let depth = task_names(&self.sub("new"))?.len();
        self.write_counter(seq, Some(depth as u64))?;
        Ok(depth)
    }

    /// Write `h`+`payload` via `tmp/` into `stage/<name>`, durably.
    fn install(&self, h: &Header, payload: &[u8], stage: &str) -> Result<()> {
        let name = h.name();
        let tmp = self.sub("tmp").join(&name);
        let _ = fs::remove_file(&tmp);
        write_new_file(&tmp, &task::encode(h, payload)?, "install-written")?;
        let dest = self.sub(stage).join(&name);
        fs::rename(&tmp, &dest)
            .with_context(|| format!("moving {} into {stage}/", tmp.display()))?;
        fsutil::fsync_dir(&self.sub(stage))
    }

    fn dead_letter_locked(
        &self,
        stage: &str,
        h: &Header,
        payload: &[u8],
        reason: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let name = h.name();
        let text = match detail {
            Some(d) => format!("{reason}\n{d}\n"),
            None => format!("{reason}\n"),
        };
        fsutil::atomic_write(&self.sub("dead").join(format!("{name}.reason")), text.as_bytes())?;
        self.install(h, payload, "dead")?;
        remove_durably(&self.sub(stage).join(&name))?;
        self.forget_work(&h.task);
        self.event(
            Event::new("task-dead")
                .id(&self.id)
                .kv("task", &h.task)
                .kv("reason", reason)
                .kv("attempt", h.attempt),
        );
        Ok(())
    }

    fn find_in(&self, stage: &str, task: &str) -> Result<Option<String>> {
        let task = task.to_ascii_lowercase();
        Ok(task_names(&self.sub(stage))?.into_iter().find(|n| name_task(n) == Some(task.as_str())))
    }

    /// Read and verify `stage/name`. Refuses anything that is not a regular,
    /// singly linked, own, bounded file, without following or blocking on it.
    fn load(&self, stage: &str, name: &str) -> Result<(Header, Vec<u8>)> {
        let path = self.sub(stage).join(name);
        let md =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        check_entry(&md)?;
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let md2 = f.metadata()?;
        if md2.ino() != md.ino() || md2.dev() != md.dev() {
            bail!("the entry changed while it was being opened");
        }
        check_entry(&md2)?;
        let mut bytes = Vec::with_capacity(md2.len() as usize);
        (&mut f).take(task::MAX_FILE + 1).read_to_end(&mut bytes)?;
        task::decode(name, &bytes)
    }

    /// First verified task of `stage` in FIFO order; damaged ones in front
    /// of it are quarantined.
    fn first_valid(&self, stage: &str) -> Result<Option<(Header, Vec<u8>)>> {
        self.sweep_names(stage)?;
        for name in task_names(&self.sub(stage))? {
            match self.load(stage, &name) {
                Ok(v) => return Ok(Some(v)),
                Err(e) if is_not_found(&e) => continue,
                Err(e) => self.quarantine(stage, &name, &format!("{e:#}"))?,
            }
        }
        Ok(None)
    }

    fn all_valid(&self, stage: &str) -> Result<Vec<(Header, Vec<u8>)>> {
        self.sweep_names(stage)?;
        let mut out = Vec::new();
        for name in task_names(&self.sub(stage))? {
            match self.load(stage, &name) {
                Ok(v) => out.push(v),
                Err(e) if is_not_found(&e) => continue,
                Err(e) => self.quarantine(stage, &name, &format!("{e:#}"))?,
            }
        }
        Ok(out)
    }

    fn sweep_locked(&self, stage: &str) -> Result<usize> {
        let mut n = self.sweep_names(stage)?;
        for name in task_names(&self.sub(stage))? {
            if let Err(e) = self.load(stage, &name)
                && !is_not_found(&e)
            {
                self.quarantine(stage, &name, &format!("{e:#}"))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Quarantine entries whose names are not ours. (`cur/<name>.exit`
    /// notes of earlier versions are dropped: the runner records exits now.)
    fn sweep_names(&self, stage: &str) -> Result<usize> {
        let mut n = 0;
        for p in fsutil::list_dir(&self.sub(stage))? {
            let name = p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            if stage == "cur"
                && name.strip_suffix(".exit").is_some_and(|b| task::parse_entry_name(b).is_some())
            {
                remove_any(&p)?;
                continue;
            }
            if task::parse_entry_name(&name).is_none() {
                self.quarantine(stage, &name, "unexpected entry name (not <seq>.<task-id>)")?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Move `stage/name` (whatever it is; rename never follows it) into
    /// `quarantine/` with a reason file, and log it.
    fn quarantine(&self, stage: &str, name: &str, reason: &str) -> Result<()> {
        let from = self.sub(stage).join(name);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' }
            })
            .collect();
        let safe = safe.trim_start_matches('.').to_string();
        let mut dest_name = format!("{stage}-{safe}");
        if fs::symlink_metadata(self.sub("quarantine").join(&dest_name)).is_ok() {
            dest_name = format!("{dest_name}.{}", fsutil::unique_suffix());
        }
        let dest = self.sub("quarantine").join(&dest_name);
        if stage == "new" {
            self.mark_depth_unknown()?;
        }
        match fs::rename(&from, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("quarantining {} (reason: {reason})", from.display())
                });
            }
        }
        let text = format!("from {stage}/{name:?}\nreason: {reason}\n");
        fsutil::atomic_write(
            &self.sub("quarantine").join(format!("{dest_name}.reason")),
            text.as_bytes(),
        )?;
        fsutil::fsync_dir(&self.sub(stage))?;
        let task = task::parse_entry_name(name).map(|(_, t)| t.to_string()).unwrap_or_default();
        self.event(
            Event::new("task-dead")
                .id(&self.id)
                .kv("task", task)
                .kv("reason", "corrupt")
                .kv("entry", format!("{stage}/{name}"))
                .kv("detail", reason),
        );
        Ok(())
    }

    /// The task in `cur/`, after removing stale copies whose move already
    /// completed elsewhere (`new/`, `done/` or `dead/` has the same name).
    fn running_locked(&self) -> Result<Option<Claimed>> {
        self.sweep_names("cur")?;
        for name in task_names(&self.sub("cur"))? {
            let twin = ["new", "done", "dead"]
                .iter()
                .any(|s| fs::symlink_metadata(self.sub(s).join(&name)).is_ok());
            if twin {
                remove_durably(&self.sub("cur").join(&name))?;
                continue;
            }
            match self.load("cur", &name) {
                Ok((header, payload)) => return Ok(Some(Claimed { header, payload })),
                Err(e) if is_not_found(&e) => continue,
                Err(e) => self.quarantine("cur", &name, &format!("{e:#}"))?,
            }
        }
        Ok(None)
    }

    /// A pending or running task carrying dedupe key `key`.
    fn find_dedupe(&self, key: &str) -> Result<Option<String>> {
        if let Some(c) = self.running_locked()?
            && c.header.dedupe.as_deref() == Some(key)
        {
            return Ok(Some(c.header.task));
        }
        Ok(self
            .all_valid("new")?
            .into_iter()
            .find(|(h, _)| h.dedupe.as_deref() == Some(key))
            .map(|(h, _)| h.task))
    }
}

fn unknown_task(id: &Identity, task: &str) -> anyhow::Error {
    anyhow!("no task {task:?} in the queue of {id}; see `muxvisor queue {id} list --dead`")
}

fn check_entry(md: &fs::Metadata) -> Result<()> {
    let ft = md.file_type();
    if ft.is_symlink() {
        bail!("entry is a symlink");
    }
    if !ft.is_file() {
        bail!("entry is not a regular file (FIFO, socket, device or directory)");
    }
    if md.nlink() > 1 {
        bail!("entry has {} hard links (a foreign link into the queue?)", md.nlink());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if md.uid() != euid {
        bail!("entry is owned by uid {}, not by us (uid {euid})", md.uid());
    }
    if md.len() > task::MAX_FILE {
        bail!("entry is {} bytes, over the {} byte limit", md.len(), task::MAX_FILE);
    }
    Ok(())
}

/// `<seq> <depth or -> <boot id or -> <fnv>`: a depth of `-` is unknown
/// (see [`Queue::changing_new`]); the boot id says which boot wrote it (see
/// `read_counter`), `-` that it was synced. Every record has one length.
fn encode_counter(seq: u64, depth: Option<u64>, boot: Option<&str>) -> Vec<u8> {
    let depth = depth.map_or_else(|| "-".repeat(20), |d| format!("{d:020}"));
    let body = format!("{seq:020} {depth} {}", boot.unwrap_or("-"));
    format!("{body} {:016x}\n", task::fnv1a64(body.as_bytes())).into_bytes()
}

/// `(seq, depth (None: unknown), boot id)`; `None` for a torn or foreign
/// record. The two-field form of earlier versions was always synced: no
/// boot id.
fn parse_counter(bytes: &[u8]) -> Option<(u64, Option<u64>, Option<String>)> {
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

/// The task id part of an entry name.
fn name_task(name: &str) -> Option<&str> {
    task::parse_entry_name(name).map(|(_, t)| t)
}

/// Entry names of `dir` that are task names, sorted (= FIFO order). A
/// missing directory is empty.
fn task_names(dir: &Path) -> Result<Vec<String>> {
    // `list_dir` sorts full paths; in one directory that is name order.
    Ok(fsutil::list_dir(dir)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .filter(|n| task::parse_entry_name(n).is_some())
        .map(str::to_string)
        .collect())
}

fn remove_any(p: &Path) -> Result<()> {
    let md = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    if md.is_dir() {
        fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))
    } else {
        fsutil::remove_if_exists(p)
    }
}

fn remove_durably(p: &Path) -> Result<()> {
    fsutil::remove_if_exists(p)?;
    fsutil::fsync_dir(p.parent().context("a queue entry has a parent")?)
}

fn read_text(p: &Path) -> String {
    fsutil::read_if_exists(p)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn first_word(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Create `path` exclusively (0600, never through a symlink), write `bytes`
/// and fsync it. A failure removes the partial file; nothing is retried.
fn write_new_file(path: &Path, bytes: &[u8], step: &str) -> Result<()> {
    let result = (|| -> Result<()> {
        let f = fsutil::create_private(path, bytes)?;
        crate::trace::mark("written");
        fault(step);
        fault_eio("eio-file-fsync").with_context(|| format!("fsync of {}", path.display()))?;
        fsutil::sync_file_data(&f).with_context(|| format!("fsync of {}", path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::NotFound)
    })
}

/// Disk full, quota exceeded, or an I/O error: the caller should retry later.
fn is_temp_io(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|n| n == libc::ENOSPC || n == libc::EDQUOT || n == libc::EIO)
    })
}

/// A fresh task id (time, process counter, 64 random bits).
pub fn new_task_id() -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    static COUNTER: AtomicU16 = AtomicU16::new(0);
    let ms = Utc::now().timestamp_millis().max(0) as u64;
    task::task_id(ms, COUNTER.fetch_add(1, Ordering::Relaxed), random_u64())
}

/// 64 random bits from /dev/urandom, or (if unreadable) a mix of clock and pid.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok() {
        return u64::from_le_bytes(b);
    }
    let t = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    task::fnv1a64(&[t.to_le_bytes(), u64::from(std::process::id()).to_le_bytes()].concat())
}

use crate::fault::{eio as fault_eio, point as fault};

/// The crash points `MUXVISOR_FAULT` accepts, in protocol order.
pub const FAULT_STEPS: [&str; 5] =
    ["tmp-written", "tmp-synced", "counter-persisted", "published", "synced"];

#[cfg(test)]
mod tests;
