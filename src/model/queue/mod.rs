//! The durable per-identity FIFO. Only this module touches queue files,
//! the lock files among them (other modules take them through [`Queue`]).
//!
//! ```text
//! queues/<id>/queue.lock   flock taken for EVERY change below; never deleted, never broken
//! queues/<id>/worker.lock  held by whoever starts a runner, and by a runner retiring
//! queues/<id>/runner.lock  held by the live runner (its pid inside); of worker slot 0
//! queues/<id>/runner.<k>.lock  held by the live runner of worker slot k (`--workers N`, k in 1..N)
//! queues/<id>/courier.lock held by the live courier of a mailbox (its pid inside)
//! queues/<id>/counter      "<seq> <depth> <boot-id> <end> <absorbed> <fnv>": last sequence handed
//!                          out, pending count, how far the inbox is published and copied into new/
//! queues/<id>/inbox        tasks as `send` makes them durable: one record each, appended (see `inbox`)
//! queues/<id>/tmp/         files being written (complete only once renamed out)
//! queues/<id>/new/         pending tasks, <seq:020>.<task-id>; byte order = FIFO order
//! queues/<id>/cur/         the claimed (running) tasks: at most one per worker slot
//! queues/<id>/done/        finished tasks, + <name>.outcome (status, signal, duration, screen)
//! queues/<id>/dead/        dead letters, + <name>.reason
//! queues/<id>/quarantine/  anything foreign or damaged found in new/ or cur/, + <name>.reason
//! queues/<id>/work/        <task-id>: the payload handed to the running program;
//!                          .spare: the last one's file, rewritten for the next
//! ```
//!
//! A task file is one JSON header line (task id, seq, enqueued_at, attempt,
//! not_before, dedupe key, payload length and FNV-1a 64 checksum) and then the
//! payload bytes. To enqueue, a sender takes `queue.lock`, reads `counter`,
//! appends the task file's bytes to `inbox` at its published end and
//! fdatasyncs it, writes the counter with the next sequence and the new end
//! (which publishes the task), and only then releases the lock and reports
//! success. Every other holder of the lock first copies the inbox's new
//! records into `new/` as task files (`inbox` has the protocol and its
//! crash argument), so that `new/` read in byte order is exactly the order
//! in which sends became durable: sequence numbers are assigned and
//! published under the one lock, and names sort by sequence.
//!
//! **Why one sync is enough.** Exit 0 promises that the task survives
//! power loss: its bytes and the inbox's size (the fdatasync) must be on
//! disk, and the inbox's name, which has been since it was created.
//! - `counter` is written but not synced. Within one boot every writer sees
//!   the page cache, so sequences never repeat; only a crash of the whole
//!   machine can lose a write, and a crash means a new boot. The counter
//!   carries the id of the boot that wrote it (Linux
//!   `/proc/sys/kernel/random/boot_id`, macOS `kern.bootsessionuuid`), and
//!   one written during another boot (or torn: it has a checksum) is
//!   rebuilt: the inbox reconciled with the stages, then the highest
//!   sequence anywhere. Where the OS gives no boot id, the counter is
//!   synced as before.
//! - The copy of a record into `new/` is not synced: the record stays in
//!   the inbox until a compaction has synced every copy, and reconciling
//!   after a crash of the machine rewrites a copy the crash lost or
//!   damaged.
//!
//! A crash (kill -9, power loss) of a sender leaves: before the counter is
//! written, bytes beyond the inbox's published end, which the next sender
//! cuts off (within the boot) or reconciling keeps if they form a whole,
//! checksummed record (after a crash of the machine); either way the send
//! was not acknowledged, so either outcome is allowed, and a sequence
//! number is never handed out twice. A torn record is never published, and
//! one damaged later fails its checksum and is quarantined. A failed write
//! or fsync is never retried: the inbox is cut back to its published end
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
//! Claiming (`claim`; a runner's `claim_to_run`, below) for worker slot 0
//! MOVES the head into `cur/` as it is: its modification time set to the
//! claim's time, one rename, then `cur/` and `new/` synced, except by a
//! runner (see "Why a claim may move"). A claim for a slot above 0, or of an entry written by
//! an earlier version, rewrites the head into `cur/` with attempt+1,
//! started_at and the slot (through `tmp/`, synced, `cur/` synced: the
//! attempt counts even if the program never starts), then unlinks the
//! `new/` copy and syncs `new/`. With one worker only one
//! task is in `cur/` at a time. With `--workers N` (`claim_for`), a task
//! is claimed for a worker slot (0..N; the header records a slot above 0,
//! so one worker's entries are unchanged) while fewer than N are in `cur/`
//! and none is that slot's: at most one task per slot, and as every claim
//! takes the head under the lock, tasks start in queue order whatever N. The slot ties a
//! task to the runner holding `runner.<k>.lock`: a task whose slot's lock
//! is free was left by a dead runner (read `cur/` first, the locks after,
//! so a runner that finished and retired in between is seen as finished:
//! its ack is already durable and the retry finds the task gone). Every
//! transition out of `cur/` writes its destination first and removes the
//! `cur/` copy last, so a crash in between leaves the same name twice; the
//! rule "a `cur/` entry with a twin in `new/`, `done/` or `dead/` is stale"
//! (applied under the lock by `running`) resolves it the only safe way.
//! An ack (`complete`) is one rename `cur/` -> `done/` and one sync of
//! `done/` (a runner's is batched, below), taken the moment the program's
//! exit is known: a task completes
//! once, and the window in which a finished task could still be retried is
//! that rename. Its outcome file follows, unsynced (informational). A task
//! whose runner died stays in `cur/`; the next per-peer step (the runner's
//! hand-over, or the tick) sees it with `running` (`running_all`, by slot)
//! and retries it. Acks, nacks and releases name their task, so with N
//! workers each finishes its own and never another slot's; a requeued task
//! drops its slot.
//!
//! **Why a claim may move.** Every entry written into `new/` is marked
//! `movable`. A claim that moves it leaves its header one claim behind;
//! whoever reads a movable entry from `cur/`, `done/` or `dead/` counts
//! that claim (attempt+1) and reads its start from the entry's
//! modification time, which the claim set just before the rename
//! (`Header::claimed_by_move`, in `load`). Every header written back from
//! there (a requeue into `new/`, a dead letter) is the true one. The move
//! is one rename, so it creates and deletes no file: a rewrite cost a new
//! file, a deleted one and two syncs before the program could start, and on
//! a file system without a journal each file created shortly after one was
//! deleted costs a scan of the recently freed inodes. The rename is atomic
//! and the file system keeps it whole across a crash, as every ack relies
//! on (below): the task is in `new/` or in `cur/`, never in neither, never
//! twice. A runner's move (`claim_to_run`) syncs nothing, so its program
//! starts at once: the claim becomes durable with the next sync of
//! `done/`, which that runner makes while the program starts (`settle`,
//! for its previous ack) or, at the latest, for the task's own ack. A
//! file system that journals a rename as one change also commits the
//! changes before it first (ext4, xfs, apfs), so an ack is never durable
//! while the claim before it is not. Until then a power loss can undo the
//! claim, which brings the task back to `new/` with the attempt uncounted,
//! as the late `new/` sync below can. Any other claim syncs `cur/`, then
//! `new/`, before it returns. A kill -9 right after the rename leaves an
//! entry in `cur/` whose runner is gone, as a kill after a rewrite does.
//! Slots above 0 keep the rewrite, because the slot is in the header. On a
//! file system without a journal (ext4 made without one, say) no rename
//! is kept whole across a power loss, this one, every ack's and `send`'s
//! included; only a rewrite claim is safe there.
//!
//! **Why a runner's claim may sync `new/` late.** For a rewrite,
//! `claim_to_run` leaves the last sync of a claim (`new/`, after its unlink) to `settle`, which
//! the runner calls once the program has been started, so that the sync
//! overlaps the program's start instead of delaying it. Until `new/` is
//! synced, a power loss can bring the `new/` copy back next to the `cur/`
//! one; the twin rule then drops the `cur/` copy, and the task is pending
//! again with that attempt uncounted, as if the power had failed just
//! before the claim. The task was not acknowledged, so running it again
//! is what any crash during its run does; a kill -9 changes nothing (the
//! unlink is in the page cache, seen by every process). A finished task
//! must never have such a twin, so every change that makes a task's end
//! durable syncs `new/` first: the ack (`commit` settles before its
//! rename) and a dead-letter from `cur/` (which syncs `new/` whoever
//! claimed the task, a dead runner included); a requeue writes and syncs
//! `new/` itself.
//!
//! **Why a runner's acks may sync `done/` late.** A runner acks and
//! claims in turn, and each ack's sync of `done/` was a journal commit of
//! its own. A handle set to `batch_acks` (the runner's) renames the task
//! into `done/` and leaves the sync for later, at the latest: when its
//! next program has started (`settle`, so the sync overlaps that program
//! instead of delaying it; it is then the only sync of that task's claim
//! too), before any sync of `cur/`, before a claim that finds nothing to
//! run returns (the runner then waits), and when the handle is dropped.
//! Until then a power loss can undo the rename: the task is back in `cur/`
//! and is retried, which is the documented exit-to-ack window, made one
//! claim and one start longer (a millisecond or two on a busy runner) and
//! no longer. It can never end in neither
//! place: this handle never syncs `cur/` (which would make the task's
//! removal durable) before `done/`. Another process syncing `cur/` in the
//! meantime (a second worker's claim) is covered as every ack always was,
//! between its rename and its sync: the file system keeps a rename whole
//! (ext4, xfs, btrfs and apfs journal it as one change). A kill -9 changes
//! nothing: the rename is in the page cache for every process.
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
//!
//! The rooms: [`task`] the task file format; `fifo` the protocol above
//! (enqueue, claim, ack, nack, release); `inbox` where a send appends and
//! how its records reach `new/`; `entries` reading, verifying,
//! moving and quarantining one entry; `counter` the counter; `lock` the
//! lock files ([`QueueLock`]); `admin` the verbs of `muxvisor queue`;
//! `upkeep` what the tick and `clean` remove.

mod admin;
mod counter;
mod entries;
mod fifo;
mod inbox;
mod lock;
pub mod task;
mod upkeep;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;
pub use admin::{DeadMeta, Listing, QuarantineMeta, Shown};
use entries::{name_task, task_names};
pub use lock::QueueLock;
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

/// Where the running program of task `task` of `id` finds its payload
/// (`queues/<id>/work/<task-id>`): what `{task_file}` becomes. A path, no I/O.
pub fn work_path(root: &Root, id: &Identity, task: &str) -> PathBuf {
    work_in(&root.queue_dir(id), task)
}

fn work_in(dir: &Path, task: &str) -> PathBuf {
    dir.join("work").join(task)
}

/// The payload file of the last finished task, kept for the next one.
fn spare_work(dir: &Path) -> PathBuf {
    dir.join("work").join(".spare")
}

/// The id of the task in `cur/`, if any (a directory listing, no lock).
pub fn running_task(root: &Root, id: &Identity) -> Result<Option<String>> {
    Ok(running_tasks(root, id)?.into_iter().next())
}

/// The ids of the tasks in `cur/`, in queue order (a listing, no lock).
pub fn running_tasks(root: &Root, id: &Identity) -> Result<Vec<String>> {
    let names = task_names(&root.queue_dir(id).join("cur"))?;
    Ok(names.iter().filter_map(|n| name_task(n)).map(str::to_string).collect())
}

/// Without the lock, a task may move while it is counted. The stages are
/// read in the order tasks flow (the inbox, `new/`, `cur/`), so a task that
/// moves on between two reads is seen in both, never in neither: a count
/// may be one high, never low. Those who retire when nothing is pending
/// (the courier, the runner) rely on that: a message published before
/// their look is counted, whoever moves it meanwhile.
fn counts_in(dir: &Path) -> Result<Counts> {
    let n = |sub: &str| -> Result<usize> { Ok(task_names(&dir.join(sub))?.len()) };
    // Pending: the inbox's tasks not moved into `new/` yet, then `new/`.
    let inbox = inbox::unabsorbed_names(dir);
    let new = task_names(&dir.join("new"))?;
    let pending = inbox::pending(&new, &inbox);
    let running = n("cur")?;
    let quarantined = fsutil::list_dir(&dir.join("quarantine"))?
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "reason"))
        .count();
    Ok(Counts { pending, running, dead: n("dead")?, quarantined })
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
    /// A running task: the worker slot that runs it (0 unless the peer
    /// runs several workers, `add --workers N`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
}

impl TaskMeta {
    /// A task in `cur/`, with the slot of the worker that claimed it.
    pub fn running(h: &Header) -> TaskMeta {
        TaskMeta { worker: Some(h.slot.unwrap_or(0)), ..TaskMeta::from(h) }
    }
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
            worker: None,
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

    /// The worker slot that claimed it (0 for one worker).
    pub fn slot(&self) -> u32 {
        self.header.slot.unwrap_or(0)
    }
}

/// How a task finished (kept in `done/<name>.outcome`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub status: Option<i32>,
    pub signal: Option<String>,
    pub duration_ms: u64,
    /// The last lines of the worker's screen.
    pub screen_tail: String,
    /// A mailbox message: when it was pasted into the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// An agent pool's task: the agent's reply (SPEC §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

/// What [`Queue::claim`] found.
#[derive(Clone, Debug)]
pub enum Claim {
    /// The head was due and is now in `cur/`.
    Claimed(Claimed),
    /// Nothing pending.
    Empty,
    /// A task is already claimed by this worker slot (left by its dead
    /// runner: the hand-over resolves it), or, for one worker, at all.
    Busy,
    /// Every worker slot runs a task (`--workers N`, N > 1): wait for one.
    Full,
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

/// One identity's queue.
#[derive(Clone, Debug)]
pub struct Queue {
    id: Identity,
    dir: PathBuf,
    log: PathBuf,
    /// A claim of ours removed its `new/` entry without syncing `new/` yet
    /// ([`Queue::claim_to_run`]); [`Queue::settle`] syncs it, and so does
    /// any change that makes a task's end durable, first.
    unsettled: std::cell::Cell<bool>,
    /// Acks of this handle leave `done/` unsynced ([`Queue::batch_acks`]).
    batch_acks: std::cell::Cell<bool>,
    /// An ack of ours renamed a task into `done/` and did not sync it yet.
    acks_unsynced: std::cell::Cell<bool>,
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
            created |= fsutil::ensure_dir_created(d)?;
        }
        if created {
            // A new queue's directories must survive a crash as surely as
            // the first task written into them.
            fsutil::fsync_dir(root.dir())?;
            fsutil::fsync_dir(&root.queues_dir())?;
            fsutil::fsync_dir(&dir)?;
        }
        Ok(Queue {
            id: id.clone(),
            dir,
            log: root.lifecycle_log(),
            unsettled: std::cell::Cell::new(false),
            batch_acks: std::cell::Cell::new(false),
            acks_unsynced: std::cell::Cell::new(false),
        })
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

    // ----- internals; callers hold the lock -----

    pub(super) fn event(&self, ev: Event) {
        if let Err(e) = ev.append_to(&self.log) {
            crate::ground::output::warn(format!(
                "could not log a queue event for {}: {e:#}",
                self.id
            ));
        }
    }

    pub(super) fn forget_work(&self, task: &str) {
        // Kept for the next task's payload (`Queue::work_file`).
        let _ = fs::rename(work_in(&self.dir, task), spare_work(&self.dir));
    }

    /// Let this handle's acks leave the sync of `done/` for later: before
    /// its next sync of `cur/`, when a claim finds nothing to run, or when
    /// it is dropped (see "Why a runner's acks may sync `done/` late" in
    /// the module header). For a runner, which acks and claims in turn.
    pub fn batch_acks(&self) {
        self.batch_acks.set(true);
    }

    /// Make the acks this handle left unsynced durable.
    pub(super) fn sync_acks(&self) -> Result<()> {
        if self.acks_unsynced.get() {
            fsutil::fsync_dir_barrier(&self.sub("done"))?;
            self.acks_unsynced.set(false);
        }
        Ok(())
    }

    /// fsync of a stage directory. `cur/` waits for our unsynced acks: a
    /// task's removal from `cur/` must never be durable before its arrival
    /// in `done/`.
    pub(super) fn sync_stage(&self, stage: &str) -> Result<()> {
        if stage == "cur" {
            self.sync_acks()?;
        }
        fsutil::fsync_dir(&self.sub(stage))
    }

    /// Remove entry `name` of `stage` and sync the stage ([`Queue::sync_stage`]).
    pub(super) fn remove_durably_in(&self, stage: &str, name: &str) -> Result<()> {
        fsutil::remove_if_exists(&self.sub(stage).join(name))?;
        self.sync_stage(stage)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // An ack left unsynced is synced before the handle goes (a failure
        // here leaves it to the file system's own commit: the task is done
        // for every process, and only a power loss could still undo it).
        let _ = self.sync_acks();
    }
}

/// The id of the task a queue numbers `seq`: the time, the low 16 bits of
/// `seq`, 64 random bits. Enqueues of one queue are serialized by its lock,
/// so its ids sort in its order even when two fall in one millisecond
/// (before, a process-local counter took that place, and two senders in
/// one millisecond sorted by their random bits). Only a clock set back can
/// make a later task's id sort first; the entry's sequence number stays
/// the queue's order.
pub fn new_task_id(seq: u64) -> String {
    let ms = Utc::now().timestamp_millis().max(0) as u64;
    task::task_id(ms, (seq & 0xffff) as u16, random_u64())
}

/// 64 random bits from the kernel (one `getrandom` call where there is
/// one, else /dev/urandom), or (if neither answers) a mix of clock and pid.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    #[cfg(target_os = "linux")]
    {
        // SAFETY: writes at most 8 bytes into a buffer of 8.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
        if n == b.len() as isize {
            return u64::from_le_bytes(b);
        }
    }
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok() {
        return u64::from_le_bytes(b);
    }
    let t = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    task::fnv1a64(&[t.to_le_bytes(), u64::from(std::process::id()).to_le_bytes()].concat())
}

use crate::ground::fault::{eio as fault_eio, point as fault};

/// The crash points of `send` that `MUXVISOR_FAULT` accepts, in protocol
/// order: the record written into the inbox, synced, published by the
/// counter (the last one leaves the task queued).
pub const FAULT_STEPS: [&str; 3] = ["appended", "appended-synced", "published"];

#[cfg(test)]
mod tests;
