//! Unit tests of the queue protocol on a real filesystem (no tmux).

use super::counter::{Counter, encode_counter, parse_counter};
use super::*;
use std::os::unix::fs::symlink;

/// Two steps the tests take as one: the head claimed with no TTL (`None`
/// when nothing was claimed), and a task acknowledged with its outcome
/// written (the runner takes the two halves apart, see `dispatch::finish`).
trait Shortcuts {
    fn claim_head(&self, now: DateTime<Utc>) -> Result<Option<Claimed>>;
    fn ack(&self, task: &str, outcome: &TaskOutcome) -> Result<()>;
}

impl Shortcuts for Queue {
    fn claim_head(&self, now: DateTime<Utc>) -> Result<Option<Claimed>> {
        Ok(match self.claim(now, None)? {
            Claim::Claimed(c) => Some(c),
            _ => None,
        })
    }

    fn ack(&self, task: &str, outcome: &TaskOutcome) -> Result<()> {
        if let Some(name) = self.complete(task, outcome)? {
            self.write_outcome(&name, outcome)?;
        }
        Ok(())
    }
}

struct T {
    _dir: tempfile::TempDir,
    root: Root,
    q: Queue,
}

fn setup() -> T {
    let dir = tempfile::Builder::new().prefix("mvq").tempdir_in("/tmp").unwrap();
    let root = fsutil::open_root(&dir.path().join("r")).unwrap();
    let q = Queue::open(&root, &Identity::parse("w").unwrap()).unwrap();
    T { _dir: dir, root, q }
}

fn pending(q: &Queue) -> Vec<String> {
    q.list().unwrap().pending.into_iter().map(|m| m.task).collect()
}

fn quarantined(q: &Queue) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(q.dir().join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[test]
fn fifo_order_and_depth() {
    let t = setup();
    let mut ids = Vec::new();
    for i in 0..20 {
        let e = t.q.enqueue(format!("task {i}").as_bytes(), None).unwrap();
        assert_eq!(e.depth, i + 1);
        assert!(!e.deduped);
        ids.push(e.task);
    }
    assert_eq!(pending(&t.q), ids);
    assert_eq!(
        counts(&t.root, t.q.identity()).unwrap(),
        Counts { pending: 20, running: 0, dead: 0, quarantined: 0 }
    );
    assert_eq!(t.q.counts().unwrap(), Counts { pending: 20, running: 0, dead: 0, quarantined: 0 });
    let c = t.q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.task(), ids[0]);
    assert_eq!(c.payload, b"task 0");
    assert_eq!(c.header.attempt, 1);
    // One task at a time.
    assert!(t.q.claim_head(now()).unwrap().is_none());
    t.q.ack(&ids[0], &TaskOutcome { status: Some(0), ..Default::default() }).unwrap();
    t.q.ack(&ids[0], &TaskOutcome::default()).unwrap(); // idempotent
    assert_eq!(t.q.claim_head(now()).unwrap().unwrap().task(), ids[1]);
    assert_eq!(t.q.show(&ids[0]).unwrap().stage, "done");
    assert_eq!(t.q.show(&ids[0]).unwrap().outcome.unwrap().status, Some(0));
    assert_eq!(t.q.show(&ids[5]).unwrap().position, Some(4));
}

#[test]
fn payload_limit_and_dedupe() {
    let t = setup();
    let e = t.q.enqueue(&vec![b'x'; MAX_PAYLOAD + 1], None).unwrap_err();
    assert!(format!("{e:#}").contains("NOT queued"), "{e:#}");
    t.q.enqueue(&vec![b'x'; MAX_PAYLOAD], None).unwrap();
    let a = t.q.enqueue(b"cron", Some("k")).unwrap();
    let b = t.q.enqueue(b"cron", Some("k")).unwrap();
    assert!(b.deduped);
    assert_eq!(a.task, b.task);
    assert_eq!(pending(&t.q).len(), 2);
    // Still deduped while running; a new task once done.
    t.q.rm(&pending(&t.q)[0]).unwrap();
    let c = t.q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.task(), a.task);
    assert!(t.q.enqueue(b"cron", Some("k")).unwrap().deduped);
    t.q.ack(&a.task, &TaskOutcome::default()).unwrap();
    assert!(!t.q.enqueue(b"cron", Some("k")).unwrap().deduped);
}

#[test]
fn nack_keeps_the_head_and_backs_off_then_dead_letters() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let b = t.q.enqueue(b"b", None).unwrap().task;
    let t0 = now();
    t.q.claim_head(t0).unwrap().unwrap();
    let base = Duration::from_secs(10);
    let r = t.q.nack(&a, "exit 1", base, Duration::from_secs(60), 2, t0).unwrap();
    let Nacked::Retry { attempt, not_before } = r else { panic!("{r:?}") };
    assert_eq!(attempt, 1);
    assert!(not_before >= t0 + chrono::Duration::seconds(5), "{not_before}");
    assert_eq!(pending(&t.q), [a.clone(), b.clone()]);
    // The backed-off head blocks the queue (b does not overtake).
    assert!(t.q.claim_head(t0).unwrap().is_none());
    let later = not_before + chrono::Duration::seconds(1);
    let c = t.q.claim_head(later).unwrap().unwrap();
    assert_eq!((c.task(), c.header.attempt), (a.as_str(), 2));
    assert_eq!(t.q.nack(&a, "exit 1", base, base, 2, later).unwrap(), Nacked::Dead);
    let l = t.q.list().unwrap();
    assert_eq!(l.dead.len(), 1);
    assert_eq!(l.dead[0].reason, "max-attempts");
    assert_eq!(t.q.claim_head(later).unwrap().unwrap().task(), b);
    // Retry puts the dead letter at the tail with a new sequence.
    t.q.retry(&a).unwrap();
    let l = t.q.list().unwrap();
    assert!(l.dead.is_empty());
    assert_eq!(l.pending.len(), 1);
    assert_eq!(l.pending[0].attempt, 0);
}

#[test]
fn expire_and_dead_letter() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let b = t.q.enqueue(b"b", None).unwrap().task;
    assert!(t.q.expire(Duration::from_secs(60), now()).unwrap().is_empty());
    let gone = t.q.expire(Duration::from_secs(60), now() + chrono::Duration::seconds(61)).unwrap();
    assert_eq!(gone, [a.clone(), b.clone()]);
    assert_eq!(t.q.show(&a).unwrap().reason.unwrap().trim(), "ttl");
    t.q.retry(&b).unwrap();
    assert!(t.q.expire(Duration::from_secs(60), now()).unwrap().is_empty(), "TTL restarts");
    t.q.dead_letter(&b, "operator").unwrap();
    assert_eq!(t.q.list().unwrap().dead.len(), 2);
    assert_eq!(t.q.purge().unwrap(), 2);
    assert!(t.q.rm(&a).is_err());
}

#[test]
fn ack_commits_first_and_claim_expires_and_waits() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let c = t.q.claim_head(now()).unwrap().unwrap();
    // The commit alone: done/ has the task, no outcome yet, not running.
    let name = t.q.complete(&a, &TaskOutcome::default()).unwrap().expect("it was running");
    assert_eq!(name, c.header.name());
    assert!(t.q.running().unwrap().is_none());
    assert_eq!(t.q.show(&a).unwrap().stage, "done");
    assert!(t.q.show(&a).unwrap().outcome.is_none());
    assert_eq!(
        t.q.complete(&a, &TaskOutcome::default()).unwrap(),
        None,
        "a second commit is a no-op"
    );
    t.q.write_outcome(&name, &TaskOutcome { status: Some(0), ..Default::default() }).unwrap();
    assert_eq!(t.q.show(&a).unwrap().outcome.unwrap().status, Some(0));
    assert_eq!(fs::read_dir(t.q.dir().join("cur")).unwrap().count(), 0);

    // Heads past the TTL are dead-lettered on the way, not run.
    let old = t.q.enqueue(b"old", None).unwrap().task;
    let older = t.q.enqueue(b"older", None).unwrap().task;
    let later = Utc::now() + chrono::Duration::seconds(120);
    assert!(matches!(t.q.claim(later, Some(Duration::from_secs(60))).unwrap(), Claim::Empty));
    assert_eq!(t.q.show(&old).unwrap().stage, "dead");
    assert_eq!(t.q.show(&older).unwrap().reason.unwrap().trim(), "ttl");
    let fresh = t.q.enqueue(b"fresh", None).unwrap().task;
    let Claim::Claimed(c) = t.q.claim(Utc::now(), Some(Duration::from_secs(60))).unwrap() else {
        panic!("a fresh head is claimed")
    };
    assert_eq!(c.task(), fresh);
    assert!(matches!(t.q.claim(Utc::now(), None).unwrap(), Claim::Busy));
}

#[test]
fn a_backed_off_head_reports_when_it_is_due() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    assert!(matches!(t.q.claim(now(), None).unwrap(), Claim::Claimed(_)));
    let base = Duration::from_secs(10);
    let Nacked::Retry { not_before, .. } = t.q.nack(&a, "exit-1", base, base, 3, now()).unwrap()
    else {
        panic!("not retried")
    };
    match t.q.claim(now(), None).unwrap() {
        Claim::NotBefore(t) => assert_eq!(t, not_before),
        other => panic!("{other:?}"),
    }
    assert!(matches!(t.q.claim(not_before, None).unwrap(), Claim::Claimed(_)));
    t.q.ack(&a, &TaskOutcome::default()).unwrap();
    assert!(matches!(t.q.claim(now(), None).unwrap(), Claim::Empty));
}

#[test]
fn depth_follows_claims_and_requeues_without_a_listing() {
    let t = setup();
    for i in 0..3 {
        t.q.enqueue(format!("{i}").as_bytes(), None).unwrap();
    }
    let c = t.q.claim_head(now()).unwrap().unwrap();
    assert_eq!(t.q.enqueue(b"x", None).unwrap().depth, 3, "3 - 1 claimed + 1 new");
    let d = Duration::from_millis(1);
    t.q.nack(c.task(), "exit-1", d, d, 3, now()).unwrap();
    assert_eq!(t.q.enqueue(b"y", None).unwrap().depth, 5, "+1 requeued, +1 new");
}

#[test]
fn a_counter_from_an_earlier_boot_is_rebuilt() {
    let t = setup();
    for _ in 0..3 {
        t.q.enqueue(b"x", None).unwrap();
    }
    // Unsynced counter writes of a boot that ended in a crash: stale.
    let stale = Counter { seq: 1, depth: Some(1), end: 0, absorbed: 0 };
    fs::write(t.q.dir().join("counter"), encode_counter(&stale, Some("another-boot"))).unwrap();
    let e = t.q.enqueue(b"y", None).unwrap();
    assert_eq!(e.depth, 4);
    let seqs: Vec<u64> = t.q.list().unwrap().pending.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "no sequence reused");
}

#[test]
fn interrupted_moves_leave_a_stale_cur_copy_that_is_dropped() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let c = t.q.claim_head(now()).unwrap().unwrap();
    let name = c.header.name();
    // Simulate a crash after a claim's first rename: same name in new/ and cur/.
    fs::copy(t.q.dir().join("cur").join(&name), t.q.dir().join("new").join(&name)).unwrap();
    assert!(t.q.running().unwrap().is_none());
    assert_eq!(pending(&t.q), std::slice::from_ref(&a));
    // A crash after ack's rename: the done/ copy wins.
    let c = t.q.claim_head(now()).unwrap().unwrap();
    fs::copy(t.q.dir().join("cur").join(&name), t.q.dir().join("done").join(&name)).unwrap();
    assert!(t.q.running().unwrap().is_none());
    assert!(t.q.claim_head(now()).unwrap().is_none(), "{c:?} must not run twice");
}

#[test]
fn counter_survives_damage_without_reusing_sequences() {
    let t = setup();
    for _ in 0..3 {
        t.q.enqueue(b"x", None).unwrap();
    }
    fs::write(t.q.dir().join("counter"), b"garbage").unwrap();
    let e = t.q.enqueue(b"y", None).unwrap();
    let l = t.q.list().unwrap();
    let seqs: Vec<u64> = l.pending.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(e.depth, 4);
    fs::remove_file(t.q.dir().join("counter")).unwrap();
    assert_eq!(t.q.enqueue(b"z", None).unwrap().depth, 5);
}

#[test]
fn hostile_entries_are_quarantined_not_followed() {
    let t = setup();
    let good = t.q.enqueue(b"good", None).unwrap().task;
    let new = t.q.dir().join("new");
    let outside = t.root.dir().join("secret");
    fs::write(&outside, b"secret").unwrap();
    let id = |n: u64| task::task_id(n, 0, n);
    // A symlink, a FIFO, a hard link, a foreign file, a torn file, an
    // oversize file, garbage, and a badly named file, all before `good`.
    symlink(&outside, new.join(task::entry_name(0, &id(1)))).unwrap();
    nix::unistd::mkfifo(&new.join(task::entry_name(0, &id(2))), nix::sys::stat::Mode::S_IRWXU)
        .unwrap();
    let h = Header::new(&id(3), 0, now(), None, b"linked");
    let linked = t.root.dir().join("linked");
    fs::write(&linked, task::encode(&h, b"linked").unwrap()).unwrap();
    fs::hard_link(&linked, new.join(h.name())).unwrap();
    let h = Header::new(&id(4), 0, now(), None, b"torn!");
    let mut torn = task::encode(&h, b"torn!").unwrap();
    torn.truncate(torn.len() - 1);
    fs::write(new.join(h.name()), torn).unwrap();
    fs::write(new.join(task::entry_name(0, &id(5))), vec![b'x'; task::MAX_FILE as usize + 1])
        .unwrap();
    fs::write(new.join(task::entry_name(0, &id(6))), b"{not json\npayload").unwrap();
    fs::write(new.join("$(id);rm -rf ~"), b"x").unwrap();
    fs::create_dir(new.join(task::entry_name(0, &id(7)))).unwrap();
    let foreign = Header::new(&id(8), 0, now(), None, b"f");
    let fp = new.join(foreign.name());
    fs::write(&fp, task::encode(&foreign, b"f").unwrap()).unwrap();
    let chowned = nix::unistd::chown(&fp, Some(nix::unistd::Uid::from_raw(4242)), None).is_ok();
    if !chowned {
        fs::remove_file(&fp).unwrap();
    }

    let c = t.q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.task(), good);
    assert_eq!(fs::read(&outside).unwrap(), b"secret", "the symlink target is untouched");
    let q = quarantined(&t.q);
    let moved = q.iter().filter(|n| !n.ends_with(".reason")).count();
    let reasons = q.iter().filter(|n| n.ends_with(".reason")).count();
    assert_eq!(moved, 8 + usize::from(chowned), "{q:#?}");
    assert_eq!(reasons, moved);
    let all: String = q
        .iter()
        .filter(|n| n.ends_with(".reason"))
        .map(|n| fs::read_to_string(t.q.dir().join("quarantine").join(n)).unwrap())
        .collect();
    for needle in [
        "symlink",
        "regular file",
        "hard links",
        "torn",
        "byte limit",
        "not a valid",
        "unexpected entry name",
    ] {
        assert!(all.contains(needle), "{needle} missing in {all}");
    }
    if chowned {
        assert!(all.contains("owned by uid 4242"), "{all}");
    }
    assert_eq!(fs::read_dir(&new).unwrap().count(), 0);
    let log = fs::read_to_string(t.root.lifecycle_log()).unwrap();
    assert_eq!(log.matches("reason=corrupt").count(), moved, "{log}");
}

#[test]
fn clean_removes_old_tmp_and_done_only() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let c = t.q.claim_head(now()).unwrap().unwrap();
    let wf = t.q.work_file(&c).unwrap();
    assert_eq!(fs::read(&wf).unwrap(), b"a");
    t.q.ack(&a, &TaskOutcome::default()).unwrap();
    assert!(!wf.exists());
    fs::write(t.q.dir().join("tmp").join("abandoned"), b"x").unwrap();
    assert!(t.q.clean(Duration::from_secs(3600), now(), false).unwrap().is_empty());
    let later = now() + chrono::Duration::hours(2);
    let dry = t.q.clean(Duration::from_secs(3600), later, true).unwrap();
    assert_eq!(dry.len(), 3, "{dry:?}"); // tmp file, done task, its outcome
    assert!(dry.iter().all(|p| p.exists()));
    let done = t.q.clean(Duration::from_secs(3600), later, false).unwrap();
    assert_eq!(done, dry);
    assert!(done.iter().all(|p| !p.exists()));
}

#[test]
fn counter_format_detects_torn_records() {
    let c = Counter { seq: 7, depth: Some(3), end: 600, absorbed: 300 };
    let b = encode_counter(&c, Some("b00t"));
    assert_eq!(parse_counter(&b), Some((c, Some("b00t".to_string()), true)));
    assert_eq!(parse_counter(&encode_counter(&c, None)), Some((c, None, true)));
    let unknown = encode_counter(&Counter { depth: None, ..c }, Some("b00t"));
    assert_eq!(unknown.len(), b.len(), "one length for every record");
    assert_eq!(
        parse_counter(&unknown),
        Some((Counter { depth: None, ..c }, Some("b00t".into()), true))
    );
    let mut torn = b.clone();
    torn[5] = b'9';
    assert_eq!(parse_counter(&torn), None);
    assert_eq!(parse_counter(b""), None);
    // An earlier version's record: no inbox extent.
    let body = format!("{:020} {:020} b00t", 7, 3);
    let old = format!("{body} {:016x}\n", task::fnv1a64(body.as_bytes()));
    let plain = Counter { end: 0, absorbed: 0, ..c };
    assert_eq!(parse_counter(old.as_bytes()), Some((plain, Some("b00t".into()), false)));
}

/// Issue 18, item 6: a change of new/ interrupted between its steps (a
/// deliverer killed between taking a message and noting it) leaves the
/// depth marked unknown, and the next reader recounts it instead of
/// reporting one too many for every later message.
#[test]
fn an_interrupted_change_leaves_the_depth_unknown_and_it_is_recounted() {
    let t = setup();
    for i in 0..3 {
        t.q.enqueue(format!("{i}").as_bytes(), None).unwrap();
    }
    let boot = crate::ground::proc::boot_id();
    // What a claim killed after it took the head out of new/ and before it
    // wrote the depth leaves behind: the head in cur/, the depth unknown.
    let head = t.q.list().unwrap().pending[0].task.clone();
    let c = t.q.read_counter().unwrap();
    t.q.write_counter(&Counter { depth: None, ..c }).unwrap();
    let name = fs::read_dir(t.q.dir().join("new"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.contains(&head))
        .unwrap();
    fs::rename(t.q.dir().join("new").join(&name), t.q.dir().join("cur").join(&name)).unwrap();
    assert_eq!(t.q.enqueue(b"x", None).unwrap().depth, 3, "2 pending + 1 new");
    let c = t.q.running().unwrap().unwrap();
    let d = Duration::from_millis(1);
    t.q.nack(c.task(), "delivery-interrupted", d, d, 3, now()).unwrap();
    assert_eq!(t.q.enqueue(b"y", None).unwrap().depth, 5, "+1 requeued, +1 new");
    let bytes = fs::read(t.q.dir().join("counter")).unwrap();
    assert_eq!(parse_counter(&bytes).unwrap().0.depth, Some(5), "written exact again ({boot:?})");
}

/// `--workers N`: up to N tasks claimed at once, one per slot, in queue
/// order; a slot with a task still in `cur/` (its runner died) claims
/// nothing more; acks, nacks and releases find their task among several;
/// a requeued task forgets its slot and goes back to its place at the head.
#[test]
fn several_workers_claim_in_queue_order_one_task_per_slot() {
    let t = setup();
    let ids: Vec<String> =
        (0..5).map(|i| t.q.enqueue(format!("t{i}").as_bytes(), None).unwrap().task).collect();
    let claim = |slot| match t.q.claim_for(now(), None, slot, 3).unwrap() {
        Claim::Claimed(c) => Ok(c),
        other => Err(Box::new(other)),
    };
    let c0 = claim(0).unwrap();
    assert!(matches!(claim(0).map_err(|e| *e), Err(Claim::Busy)), "one task per slot");
    let c2 = claim(2).unwrap();
    let c1 = claim(1).unwrap();
    // Claim order is queue order, whichever slot asks.
    assert_eq!([c0.task(), c2.task(), c1.task()], [&ids[0], &ids[1], &ids[2]]);
    assert_eq!((c0.slot(), c1.slot(), c2.slot()), (0, 1, 2));
    assert!(matches!(claim(3).map_err(|e| *e), Err(Claim::Full)), "three workers at most");
    let listed = t.q.list().unwrap().running;
    assert_eq!(listed.iter().map(|m| m.worker).collect::<Vec<_>>(), [Some(0), Some(2), Some(1)]);
    // One worker's queue is strict as ever: busy while anything runs.
    assert!(matches!(t.q.claim(now(), None).unwrap(), Claim::Busy));

    t.q.ack(c2.task(), &TaskOutcome::default()).unwrap();
    let r = t.q.nack(c1.task(), "exit-1", Duration::ZERO, Duration::ZERO, 3, now()).unwrap();
    assert!(matches!(r, Nacked::Retry { .. }));
    t.q.release(c0.task()).unwrap();
    assert!(t.q.running_all().unwrap().is_empty());
    // Both back at the head, in their order, with no slot.
    assert_eq!(pending(&t.q), [ids[0].clone(), ids[2].clone(), ids[3].clone(), ids[4].clone()]);
    let again = claim(1).unwrap();
    assert_eq!((again.task(), again.slot(), again.header.attempt), (ids[0].as_str(), 1, 1));
    assert_eq!(t.q.show(&ids[1]).unwrap().stage, "done");
}

/// A slot's lock is its own file; slot 0's is the one runner's
/// `runner.lock`, so a one-worker peer's runner is found where it was.
#[test]
fn worker_slot_locks() {
    let t = setup();
    assert_eq!(QueueLock::slot(0), QueueLock::Runner);
    assert_eq!(QueueLock::slot(3).file_name(), "runner.3.lock");
    let _l0 = t.q.take_lock(QueueLock::slot(0)).unwrap().unwrap();
    let l2 = t.q.take_lock(QueueLock::slot(2)).unwrap().unwrap();
    assert!(t.q.take_lock(QueueLock::slot(2)).unwrap().is_none(), "held");
    let me = std::process::id() as i32;
    assert_eq!(t.q.live_slots(), [(0, Some(me)), (2, Some(me))]);
    assert_eq!(t.q.live_worker_pids(), [me]);
    assert_eq!(t.q.slot_of_pid(me).map(|k| k == 0 || k == 2), Some(true));
    drop(l2);
    assert_eq!(t.q.live_slots(), [(0, Some(me))]);
    assert!(t.q.live_worker_pids().is_empty());
    let _ = &t.root;
}

/// `--workers` lowered while tasks run: the tasks of slots the spec no
/// longer has stay their runners' (never "busy", which means a dead
/// runner's leftover, to the first runner), and a slot still in the spec
/// waits for a free place.
#[test]
fn a_lowered_worker_count_leaves_the_other_slots_tasks_alone() {
    let t = setup();
    for i in 0..3 {
        t.q.enqueue(format!("t{i}").as_bytes(), None).unwrap();
    }
    let Claim::Claimed(c2) = t.q.claim_for(now(), None, 2, 3).unwrap() else { panic!() };
    assert_eq!(c2.slot(), 2);
    assert!(matches!(t.q.claim(now(), None).unwrap(), Claim::Full), "one worker now");
    assert!(matches!(t.q.claim_for(now(), None, 1, 2).unwrap(), Claim::Claimed(_)));
    assert!(matches!(t.q.claim_for(now(), None, 0, 2).unwrap(), Claim::Full));
    // One worker's own leftover is busy, as ever.
    let u = setup();
    u.q.enqueue(b"x", None).unwrap();
    assert!(matches!(u.q.claim(now(), None).unwrap(), Claim::Claimed(_)));
    assert!(matches!(u.q.claim(now(), None).unwrap(), Claim::Busy));
}

/// The live slots are every held slot lock, not only those of the spec's
/// current `--workers`.
#[test]
fn live_slots_include_slots_beyond_the_spec() {
    let t = setup();
    let _l5 = t.q.take_lock(QueueLock::slot(5)).unwrap().unwrap();
    let me = std::process::id() as i32;
    assert_eq!(t.q.live_slots(), [(5, Some(me))]);
    assert_eq!(t.q.live_worker_pids(), [me]);
}

/// A runner's claim leaves `new/` unsynced until it settles, and its
/// batched acks leave `done/` unsynced; every step that makes a task's end
/// durable, or lets the runner wait, syncs what was left first (see the
/// module header: the crash arguments depend on that order).
#[test]
fn a_runners_deferred_syncs_are_made_before_anything_depends_on_them() {
    let t = setup();
    let q = &t.q;
    q.batch_acks();
    let a = q.enqueue(b"a", None).unwrap().task;
    let b = q.enqueue(b"b", None).unwrap().task;
    // A rewrite claim (an entry of an earlier version) leaves its new/
    // sync to settle.
    make_head_legacy(q);
    let Claim::Claimed(c) = q.claim_to_run(now(), None, 0, 1).unwrap() else { panic!() };
    assert_eq!(c.task(), a);
    assert!(q.unsettled.get(), "the claim's new/ sync is left to settle");
    q.settle().unwrap();
    assert!(!q.unsettled.get());
    q.ack(&a, &TaskOutcome::default()).unwrap();
    assert!(q.acks_unsynced.get(), "a batched ack leaves done/ unsynced");
    // A move claim syncs nothing before its program starts: settling
    // syncs the batched ack, the one sync that also covers the claim.
    let Claim::Claimed(c) = q.claim_to_run(now(), None, 0, 1).unwrap() else { panic!() };
    assert_eq!(c.task(), b);
    assert!(q.acks_unsynced.get() && !q.unsettled.get());
    q.settle().unwrap();
    assert!(!q.acks_unsynced.get(), "the started program's settle syncs the batched ack");
    q.ack(&b, &TaskOutcome::default()).unwrap();
    assert!(q.acks_unsynced.get());
    // Nothing left: the claim syncs the ack before the runner would wait.
    assert!(matches!(q.claim_to_run(now(), None, 0, 1).unwrap(), Claim::Empty));
    assert!(!q.acks_unsynced.get());
    assert_eq!(q.list().unwrap().pending.len(), 0);
}

fn ino(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(p).unwrap().ino()
}

/// Rewrite the head of `new/` as an earlier version wrote it (not
/// movable); its entry name.
fn make_head_legacy(q: &Queue) -> String {
    q.list().unwrap(); // the inbox moved into new/
    let name = task_names(&q.dir().join("new")).unwrap().remove(0);
    let p = q.dir().join("new").join(&name);
    let (mut h, payload) = task::decode(&name, &fs::read(&p).unwrap()).unwrap();
    h.movable = false;
    fs::write(&p, task::encode(&h, &payload).unwrap()).unwrap();
    name
}

fn raw_header(p: &std::path::Path) -> Header {
    let bytes = fs::read(p).unwrap();
    let nl = bytes.iter().position(|b| *b == b'\n').unwrap();
    serde_json::from_slice(&bytes[..nl]).unwrap()
}

/// A slot-0 claim moves the entry as it is (the same file, its header on
/// disk one claim behind), and every reader still sees the claim: attempt
/// and start while it runs, when it is done, after a retry and in the dead
/// letters, never counted twice.
#[test]
fn a_claim_moves_the_entry_and_every_reader_counts_the_claim_once() {
    let t = setup();
    let q = &t.q;
    let a = q.enqueue(b"payload a", None).unwrap().task;
    q.list().unwrap(); // the inbox moved into new/
    let name = task_names(&q.dir().join("new")).unwrap().remove(0);
    let before = ino(&q.dir().join("new").join(&name));
    assert!(raw_header(&q.dir().join("new").join(&name)).movable);
    let claimed_at = now() - chrono::Duration::seconds(30);
    let c = q.claim_head(claimed_at).unwrap().unwrap();
    assert_eq!((c.header.attempt, c.header.started_at), (1, Some(claimed_at)));
    let cur = q.dir().join("cur").join(&name);
    assert_eq!(ino(&cur), before, "the claim moved the file, it wrote no new one");
    let on_disk = raw_header(&cur);
    assert_eq!((on_disk.attempt, on_disk.started_at, on_disk.movable), (0, None, true));
    let shown = q.show(&a).unwrap();
    assert_eq!(shown.stage, "running");
    assert_eq!(shown.meta.attempt, 1);
    let start = shown.meta.started_at.unwrap();
    assert!((start - claimed_at).num_milliseconds().abs() < 1000, "{start} vs {claimed_at}");
    // A retry writes the true header back into new/: one attempt made.
    q.nack(&a, "exit-1", Duration::ZERO, Duration::ZERO, 3, now()).unwrap();
    let back = raw_header(&q.dir().join("new").join(&name));
    assert_eq!((back.attempt, back.movable), (1, true));
    let c = q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.header.attempt, 2);
    assert_eq!(q.show(&a).unwrap().meta.attempt, 2);
    q.ack(&a, &TaskOutcome::default()).unwrap();
    let done = q.show(&a).unwrap();
    assert_eq!((done.stage, done.meta.attempt), ("done", 2));
    assert!(done.meta.started_at.is_some());
    // The last attempt's failure dead-letters with the count the header
    // would have had: max-attempts 2 reached at the second claim.
    let b = q.enqueue(b"b", None).unwrap().task;
    q.claim_head(now()).unwrap().unwrap();
    q.nack(&b, "exit-1", Duration::ZERO, Duration::ZERO, 2, now()).unwrap();
    q.claim_head(now()).unwrap().unwrap();
    assert!(matches!(
        q.nack(&b, "exit-1", Duration::ZERO, Duration::ZERO, 2, now()).unwrap(),
        Nacked::Dead
    ));
    let dead = q.show(&b).unwrap();
    assert_eq!((dead.stage, dead.meta.attempt), ("dead", 2));
    // Released (nothing ran): the attempt is not counted.
    let d = q.enqueue(b"d", None).unwrap().task;
    q.claim_head(now()).unwrap().unwrap();
    q.release(&d).unwrap();
    assert_eq!(q.show(&d).unwrap().meta.attempt, 0);
    assert_eq!(q.claim_head(now()).unwrap().unwrap().header.attempt, 1);
}

/// Entries written by an earlier version (not movable) and claims for a
/// worker slot above 0 are rewritten into cur/ as before: the header on
/// disk is the true one, counted once.
#[test]
fn legacy_entries_and_slots_above_zero_are_claimed_by_a_rewrite() {
    let t = setup();
    let q = &t.q;
    let a = q.enqueue(b"old", None).unwrap().task;
    let name = make_head_legacy(q);
    let c = q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.header.attempt, 1);
    let on_disk = raw_header(&q.dir().join("cur").join(&name));
    assert_eq!((on_disk.attempt, on_disk.movable), (1, false));
    assert_eq!(q.show(&a).unwrap().meta.attempt, 1);
    q.ack(&a, &TaskOutcome::default()).unwrap();
    assert_eq!(q.show(&a).unwrap().meta.attempt, 1);
    let b = q.enqueue(b"slot", None).unwrap().task;
    let Claim::Claimed(c) = q.claim_for(now(), None, 1, 2).unwrap() else { panic!() };
    assert_eq!((c.header.attempt, c.header.slot), (1, Some(1)));
    let name = task_names(&q.dir().join("cur")).unwrap().remove(0);
    let on_disk = raw_header(&q.dir().join("cur").join(&name));
    assert_eq!((on_disk.attempt, on_disk.slot, on_disk.movable), (1, Some(1), false));
    assert_eq!(q.show(&b).unwrap().meta.attempt, 1);
}

/// The payload file of a finished task is reused for the next one (no
/// file created or deleted per task), holding only the new payload.
#[test]
fn the_next_task_reuses_the_last_payload_file() {
    let t = setup();
    let q = &t.q;
    let a = q.enqueue(b"a much longer first payload", None).unwrap().task;
    let b = q.enqueue(b"short", None).unwrap().task;
    let c = q.claim_head(now()).unwrap().unwrap();
    let first = q.work_file(&c).unwrap();
    let first_ino = ino(&first);
    q.ack(&a, &TaskOutcome::default()).unwrap();
    assert!(!first.exists());
    let c = q.claim_head(now()).unwrap().unwrap();
    let second = q.work_file(&c).unwrap();
    assert_eq!(second.file_name().unwrap().to_str().unwrap(), b);
    assert_eq!(ino(&second), first_ino);
    assert_eq!(fs::read(&second).unwrap(), b"short");
    q.ack(&b, &TaskOutcome::default()).unwrap();
    // A spare that is not a plain file of ours is never written through.
    let spare = q.dir().join("work").join(".spare");
    fs::remove_file(&spare).unwrap();
    let target = q.dir().join("elsewhere");
    fs::write(&target, b"keep").unwrap();
    symlink(&target, &spare).unwrap();
    let d = q.enqueue(b"third", None).unwrap().task;
    let c = q.claim_head(now()).unwrap().unwrap();
    let third = q.work_file(&c).unwrap();
    assert_eq!(fs::read(&third).unwrap(), b"third");
    assert!(!fs::symlink_metadata(&third).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    q.ack(&d, &TaskOutcome::default()).unwrap();
}

// ----- the inbox (see `inbox`) -----

fn names_in(q: &Queue, stage: &str) -> Vec<String> {
    task_names(&q.dir().join(stage)).unwrap()
}

fn inbox_len(q: &Queue) -> u64 {
    fs::metadata(q.dir().join("inbox")).map(|m| m.len()).unwrap_or(0)
}

/// What a crash of the whole machine leaves for the counter: one written
/// during another boot, which cannot be trusted.
fn counter_from_another_boot(q: &Queue) {
    let c = Counter { seq: 1, depth: Some(0), end: 0, absorbed: 0 };
    fs::write(q.dir().join("counter"), encode_counter(&c, Some("another-boot"))).unwrap();
}

/// A send writes one record into the inbox and nothing into new/; the
/// next holder of the lock moves it there; the record stays in the inbox
/// (durable) until a compaction, and is never moved twice.
#[test]
fn a_send_appends_to_the_inbox_and_the_next_reader_moves_it_into_new() {
    let t = setup();
    let a = t.q.enqueue(b"first", None).unwrap();
    let b = t.q.enqueue(b"second", None).unwrap();
    assert_eq!((a.depth, b.depth), (1, 2));
    assert!(names_in(&t.q, "new").is_empty(), "a send writes no file into new/");
    let len = inbox_len(&t.q);
    assert!(len > 0);
    assert_eq!(counts(&t.root, t.q.identity()).unwrap().pending, 2, "counted without the lock");
    assert_eq!(pending(&t.q), [a.task.clone(), b.task.clone()]);
    assert_eq!(names_in(&t.q, "new").len(), 2);
    assert_eq!(inbox_len(&t.q), len, "kept until a compaction");
    // Read again: nothing is moved twice.
    assert_eq!(pending(&t.q), [a.task.clone(), b.task.clone()]);
    let c = t.q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.task(), a.task);
    t.q.ack(c.task(), &TaskOutcome::default()).unwrap();
    assert_eq!(pending(&t.q), [b.task]);
    // A removal compacts first: the inbox is empty, the entries durable.
    t.q.purge().unwrap();
    assert_eq!(inbox_len(&t.q), 0);
    assert!(pending(&t.q).is_empty());
}

/// A send killed between its write and its counter was never
/// acknowledged: the next send cuts its record off, so it never runs.
#[test]
fn a_record_beyond_the_published_end_is_cut_off() {
    let t = setup();
    let a = t.q.enqueue(b"acknowledged", None).unwrap().task;
    let published = inbox_len(&t.q);
    // The half-written record of a sender that died.
    let mut f = fs::OpenOptions::new().append(true).open(t.q.dir().join("inbox")).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"task\":\"never acknowl").unwrap();
    std::io::Write::write_all(&mut f, &[b'x'; 4000]).unwrap();
    let b = t.q.enqueue(b"next", None).unwrap().task;
    assert_eq!(inbox_len(&t.q), t.q.read_counter().unwrap().end, "the torn write is gone");
    assert!(inbox_len(&t.q) > published);
    assert_eq!(pending(&t.q), [a, b]);
    assert!(quarantined(&t.q).is_empty());
}

/// After a crash of the machine (the counter from another boot), the inbox
/// is reconciled with the stages: a record whose entry was lost is
/// restored, one whose entry is damaged (its data never synced) is
/// rewritten, one that finished is left alone, and the end a crash cut
/// short is quarantined, never run. Nothing runs twice, nothing is lost.
#[test]
fn after_a_crash_of_the_machine_the_inbox_is_reconciled_with_the_stages() {
    let t = setup();
    let ids: Vec<String> =
        (0..4).map(|i| t.q.enqueue(format!("task {i}").as_bytes(), None).unwrap().task).collect();
    let c = t.q.claim_head(now()).unwrap().unwrap();
    t.q.ack(c.task(), &TaskOutcome::default()).unwrap();
    let new = names_in(&t.q, "new");
    assert_eq!(new.len(), 3);
    // What the power loss took: the data of one entry, the name of the
    // last; and the end of the inbox was being written.
    fs::write(t.q.dir().join("new").join(&new[0]), b"").unwrap();
    fs::remove_file(t.q.dir().join("new").join(&new[2])).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(t.q.dir().join("inbox")).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"task\":\"cut sh").unwrap();
    counter_from_another_boot(&t.q);
    assert_eq!(pending(&t.q), ids[1..]);
    assert_eq!(names_in(&t.q, "done").len(), 1, "the finished task is not back");
    assert_eq!(inbox_len(&t.q), 0, "emptied once everything is in place");
    let q = quarantined(&t.q);
    assert_eq!(q.len(), 2, "the cut-short end and its reason: {q:?}");
    assert!(fs::read(t.q.dir().join("quarantine").join(&q[0])).unwrap().starts_with(b"{\"v\":1"));
    // Sequences go on from the highest.
    let e = t.q.enqueue(b"after", None).unwrap();
    assert_eq!(e.depth, 4);
    assert_eq!(t.q.list().unwrap().pending.last().unwrap().seq, 5);
}

/// A task removed while its record is still in the inbox (`rm`, or a
/// finished one pruned) must not come back after a crash of the machine:
/// the removal compacts the inbox first.
#[test]
fn a_removed_task_does_not_come_back_from_the_inbox() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let b = t.q.enqueue(b"b", None).unwrap().task;
    assert_eq!(t.q.rm(&b).unwrap(), "pending");
    counter_from_another_boot(&t.q);
    assert_eq!(pending(&t.q), std::slice::from_ref(&a));
    let c = t.q.claim_head(now()).unwrap().unwrap();
    t.q.ack(c.task(), &TaskOutcome::default()).unwrap();
    let d = t.q.enqueue(b"d", None).unwrap().task;
    let c = t.q.claim_head(now()).unwrap().unwrap();
    assert_eq!(c.task(), d);
    t.q.ack(c.task(), &TaskOutcome::default()).unwrap();
    assert_eq!(t.q.prune_done(Duration::from_secs(3600), 0, now()).unwrap(), 2);
    counter_from_another_boot(&t.q);
    assert!(pending(&t.q).is_empty(), "pruned tasks stay gone");
}

/// An absorb killed after it renamed a record into new/ and before it
/// wrote the counter: the next one finds the entry in place, copies
/// nothing twice, and the depth is recounted right.
#[test]
fn an_interrupted_absorb_copies_nothing_twice() {
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let before = t.q.read_counter().unwrap();
    assert_eq!(pending(&t.q), std::slice::from_ref(&a));
    // Put the counter back as it was before that absorb, depth unknown.
    t.q.write_counter(&Counter { depth: None, ..before }).unwrap();
    let b = t.q.enqueue(b"b", None).unwrap();
    assert_eq!(b.depth, 2, "the task in new/ and its record counted once");
    assert_eq!(pending(&t.q), [a, b.task]);
}

/// The inbox is never followed through a symlink nor used when it is not
/// our own regular file: the send fails, says what and where, and
/// nothing is written through it.
#[test]
fn a_foreign_inbox_is_refused_not_followed() {
    let t = setup();
    let target = t._dir.path().join("target");
    fs::write(&target, b"").unwrap();
    symlink(&target, t.q.dir().join("inbox")).unwrap();
    let err = format!("{:#}", t.q.enqueue(b"x", None).unwrap_err());
    assert!(
        err.contains("NOT queued") && err.contains("inbox") && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"");
    fs::remove_file(t.q.dir().join("inbox")).unwrap();
    fs::hard_link(&target, t.q.dir().join("inbox")).unwrap();
    let err = format!("{:#}", t.q.enqueue(b"x", None).unwrap_err());
    assert!(err.contains("not a regular file of ours"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"");
}

/// The inbox's name must be on disk before the first task in it is
/// acknowledged, even if the sender that created it died before it synced
/// the queue's directory: the inbox carries a mark until then, and the
/// next holder of the lock syncs and clears it.
#[test]
fn an_inbox_whose_creator_died_before_syncing_its_name_is_synced_by_the_next_sender() {
    use std::os::unix::fs::PermissionsExt;
    let t = setup();
    let a = t.q.enqueue(b"a", None).unwrap().task;
    let inbox = t.q.dir().join("inbox");
    assert_eq!(fs::metadata(&inbox).unwrap().permissions().mode() & 0o7777, 0o600);
    // What a creator killed between its create and its sync leaves.
    fs::set_permissions(&inbox, fs::Permissions::from_mode(0o1600)).unwrap();
    let b = t.q.enqueue(b"b", None).unwrap().task;
    assert_eq!(fs::metadata(&inbox).unwrap().permissions().mode() & 0o7777, 0o600);
    assert_eq!(pending(&t.q), [a, b]);
}

/// The inbox does not grow without bound: once it passes COMPACT_AT, the
/// next reader compacts it, and every task is still pending, in order.
#[test]
fn an_inbox_past_its_bound_is_compacted_by_the_next_reader() {
    let t = setup();
    let big = vec![b'x'; (super::inbox::COMPACT_AT / 2) as usize];
    let ids: Vec<String> = (0..3).map(|_| t.q.enqueue(&big, None).unwrap().task).collect();
    assert!(inbox_len(&t.q) >= super::inbox::COMPACT_AT);
    assert_eq!(pending(&t.q), ids);
    assert_eq!(inbox_len(&t.q), 0, "compacted");
    let c = t.q.read_counter().unwrap();
    assert_eq!((c.end, c.absorbed, c.pending()), (0, 0, 3));
    counter_from_another_boot(&t.q);
    assert_eq!(pending(&t.q), ids, "nothing to reconcile, nothing lost");
}

/// A count without the lock reads the stages in the order tasks flow, so a
/// task that moves meanwhile (inbox -> new/ -> cur/) is never missed: the
/// courier and the runner retire on a count of zero, and one that missed a
/// published message would strand it until the next tick.
#[test]
fn a_count_without_the_lock_never_misses_a_task_that_moves_meanwhile() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    let t = setup();
    let (root, id) = (&t.root, t.q.identity().clone());
    // Odd while the mover's one task is published and not yet finished.
    let generation = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let (checked, misses) = std::thread::scope(|s| {
        s.spawn(|| {
            let q = Queue::open(root, &id).unwrap();
            for i in 0..300 {
                q.enqueue(format!("task {i}").as_bytes(), None).unwrap();
                generation.fetch_add(1, SeqCst);
                drop(q.lock().unwrap()); // the inbox into new/
                let c = q.claim_head(now()).unwrap().unwrap(); // new/ into cur/
                generation.fetch_add(1, SeqCst);
                q.ack(c.task(), &TaskOutcome::default()).unwrap();
            }
            done.store(true, SeqCst);
        });
        let (mut checked, mut misses) = (0u64, Vec::new());
        while !done.load(SeqCst) {
            let before = generation.load(SeqCst);
            if before.is_multiple_of(2) {
                continue;
            }
            let c = counts(root, &id).unwrap();
            if generation.load(SeqCst) == before {
                checked += 1;
                if c.pending + c.running == 0 {
                    misses.push(before / 2);
                }
            }
        }
        (checked, misses)
    });
    assert!(checked > 0, "the reader never counted while a task was in flight");
    assert!(misses.is_empty(), "{} of {checked} counts missed the task: {misses:?}", misses.len());
}

/// Two sends of one queue in one millisecond: their ids still sort in the
/// queue's order (the counter part is the sequence number, not a
/// process's own counter that every new `send` process starts at 0).
#[test]
fn task_ids_of_one_queue_sort_in_its_order_within_a_millisecond() {
    let ids: Vec<String> = (1..=2000u64).map(new_task_id).collect();
    let ms = |id: &str| id[..10].to_string();
    assert!(
        ids.windows(2).any(|w| ms(&w[0]) == ms(&w[1])),
        "no two ids fell in one millisecond: the test proves nothing"
    );
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids sort in sequence order");
}
