//! The mailbox of a persistent peer: its queue (the same durable FIFO as an
//! ephemeral peer's, `queues/<id>/`), whose tasks are messages and whose
//! "run" is "paste it once the agent is ready". One place delivers
//! ([`deliver_next`]), and three things call it:
//! - `send --when idle`, once its message is durable (delivered at once if
//!   the agent is ready);
//! - `mark <id> ready`, the agent's own hook saying its turn ended (through
//!   the courier: a hook must not wait while its agent is typed at);
//! - the **courier** (`_courier <id>`, [`run_courier`]): a small detached
//!   process, at most one per identity (`queues/<id>/courier.lock`), alive
//!   only while the mailbox holds messages, that looks at the agent a few
//!   times a second through a control-mode client and delivers the moment
//!   it is ready. The tick starts one when messages wait and none runs.
//!
//! A delivery, under the queue's worker lock (so two deliverers never race):
//! look at the agent (under the lock, so a delivery that just happened is
//! seen); if it is ready, claim the head and type it, confirmed
//! (`agent::confirm`: paste, Enter as its own step unless it was sent
//! `--no-enter`, and proof that the agent took it in). Taken in: note the
//! delivery in the agent record (the agent now counts as busy until its
//! screen moves on) and commit it (`done/`, `ev=msg-delivered`,
//! `delivered_at` in its outcome). Not taken in: put it back at the head
//! uncounted, log `ev=msg-undelivered` with the screen quoted, and note it
//! in the record, which makes the agent `blocked` (reason `undelivered`)
//! until a person or a hook marks it. The server hung while it was typed
//! (a tmux command timed out; it may still run it): logged
//! `ev=delivery-unknown`, and settled once the server answers
//! (`confirm::Unsure::settle`): taken in -> delivered as above; nothing
//! typed -> back at the head uncounted; undecidable -> dead-lettered
//! `delivery-unknown`, never typed again by itself (a hung server's late
//! Enter would make a retry a second message), and the agent blocked
//! (`undelivered`) as for a message not taken in. Only an entry queued as a message is
//! ever typed, and only text that `tmux::paste::typable` allows; anything
//! else is dead-lettered (`not-a-message`, `untypable`), never typed.
//! A message left claimed by a deliverer that died is retried (counted,
//! with backoff): at least once, like a task whose runner died.
//!
//! The courier retires like a runner, race-free with a sender: it releases
//! its lock, then looks at the queue once more (a sender that saw it alive
//! published its message before that release), and goes on if anything
//! arrived.

use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::confirm::{self, Confirmed};
use super::watch::Looker;
use crate::ground::paths::Root;
use crate::model::agent::classify::{self, AgentState, Delivery, Undelivered, View};
use crate::model::agent::record;
use crate::model::peer::{self, Identity, PeerSpec, Policy};
use crate::model::queue::{Claim, Queue, QueueLock};
use crate::tmux::TmuxError;

/// How often the courier looks at a busy agent.
const POLL: Duration = Duration::from_millis(200);
/// How often it looks at a blocked one (a person is needed; no hurry).
const POLL_BLOCKED: Duration = Duration::from_secs(1);
/// A courier gives up on a peer whose program is not running after this
/// (the tick restarts the program, and a courier with it).
const NOT_RUNNING_GIVE_UP: Duration = Duration::from_secs(30);

/// What [`deliver_next`] did.
#[derive(Clone, Debug)]
pub enum DeliveryOutcome {
    /// The head message was typed and the agent took it in.
    Delivered { task: String },
    /// The head message was typed but not taken in: it is back at the head
    /// and the agent is blocked (`undelivered`).
    Undelivered { task: String },
    /// The head entry may never be typed; it was dead-lettered.
    Refused { task: String, reason: String },
    /// The server hung while the head message was typed, and showed none
    /// of it once it answered: it is back at the head, uncounted.
    NotTyped { task: String },
    /// The server hung while the head message was typed, and whether the
    /// agent took it in cannot be told: dead-lettered (`delivery-unknown`),
    /// neither typed again nor receipted.
    Unknown { task: String, reason: String },
    /// The agent is not ready (its view says why).
    NotReady(View),
    /// Nothing to deliver (empty, or the head backs off).
    Empty,
    /// Another deliverer holds the lock right now.
    Busy,
}

/// Deliver the head of `spec`'s mailbox if the agent is ready.
pub fn deliver_next(
    root: &Root,
    spec: &PeerSpec,
    q: &Queue,
    looker: &mut Looker,
) -> Result<DeliveryOutcome> {
    // A look without any lock first: most looks find the agent busy.
    let first = looker.look_and_record(root, spec)?;
    if first.view.state != AgentState::Ready {
        return Ok(DeliveryOutcome::NotReady(first.view));
    }
    let Some(_held) = q.try_worker_lock()? else { return Ok(DeliveryOutcome::Busy) };
    if let Some(c) = q.running()? {
        // Left by a deliverer that died between claim and commit.
        q.nack(
            c.task(),
            "delivery-interrupted",
            spec.backoff,
            spec.max_backoff,
            spec.max_attempts,
            Utc::now(),
        )?;
    }
    // A delivery made by another deliverer since that look makes the agent
    // busy: look again only if the record shows one.
    let launched_at = crate::model::peer_state::load(root, &spec.identity)?.launched_at;
    let now_rec = record::load(root, &spec.identity).for_incarnation(launched_at);
    if now_rec.delivery != first.record.delivery {
        let again = looker.look_and_record(root, spec)?;
        if again.view.state != AgentState::Ready {
            return Ok(DeliveryOutcome::NotReady(again.view));
        }
    }
    let c = match q.claim(Utc::now(), Some(spec.task_ttl))? {
        Claim::Claimed(c) => c,
        Claim::Empty | Claim::NotBefore(_) | Claim::Busy | Claim::Full => {
            return Ok(DeliveryOutcome::Empty);
        }
    };
    let task = c.task().to_string();
    let id = &spec.identity;
    if !c.header.message {
        // A task queued for a worker (before a re-add made this peer an
        // agent) is data for an argv, never keystrokes.
        let reason = "not-a-message";
        q.dead_letter(&task, reason)?;
        return Ok(DeliveryOutcome::Refused { task, reason: reason.into() });
    }
    let (patterns, _) = looker.patterns(spec)?;
    let typed_at = Utc::now();
    let confirmed = match confirm::deliver(root, id, &patterns, &c.payload, !c.header.no_enter) {
        Ok(Confirmed::Unsure(u)) => {
            let _ = crate::model::logfmt::Event::new("delivery-unknown")
                .id(id)
                .kv("task", &task)
                .kv("reason", u.reason())
                .append_to(&root.lifecycle_log());
            confirm::settle(root, id, &patterns, u)
        }
        Ok(c) => c,
        Err(TmuxError::Refused(why)) => {
            q.dead_letter(&task, "untypable")?;
            return Ok(DeliveryOutcome::Refused { task, reason: format!("untypable: {why}") });
        }
        Err(e) => {
            let e = e.into_anyhow();
            let reason = format!("deliver-failed: {e:#}");
            q.nack(&task, &reason, spec.backoff, spec.max_backoff, spec.max_attempts, Utc::now())?;
            return Err(e.context(format!("typing message {task} into {id}")));
        }
    };
    let now = Utc::now();
    match confirmed {
        Confirmed::Taken { screen, .. } => {
            record::update(root, id, launched_at, |rec| {
                rec.delivery = Some(Delivery {
                    at: now,
                    typed_at: Some(typed_at),
                    task: task.clone(),
                    screen_before: classify::fingerprint(&screen),
                    changed: false,
                });
            })?;
            q.delivered(&task, now)?;
            Ok(DeliveryOutcome::Delivered { task })
        }
        Confirmed::NotTaken { screen } => {
            let lines = confirm::tail_lines(&screen, 4);
            q.release(&task)?;
            record::update(root, id, launched_at, |rec| {
                rec.undelivered =
                    Some(Undelivered { at: now, task: task.clone(), lines: lines.clone() });
            })?;
            let _ = crate::model::logfmt::Event::new("msg-undelivered")
                .id(id)
                .kv("task", &task)
                .kv("screen", lines.join(" | "))
                .append_to(&root.lifecycle_log());
            Ok(DeliveryOutcome::Undelivered { task })
        }
        Confirmed::NotTyped => {
            q.release(&task)?;
            Ok(DeliveryOutcome::NotTyped { task })
        }
        Confirmed::Unknown { reason } => unknown(root, id, q, launched_at, task, reason),
        Confirmed::Unsure(u) => unknown(root, id, q, launched_at, task, u.reason()),
    }
}

/// A message whose delivery could not be settled: dead-lettered
/// (`delivery-unknown`), and the agent reads blocked (`undelivered`) until
/// a person or a hook marks it, as for a message not taken in: what is
/// left of it (its text in the prompt, a turn) must not meet the next one.
fn unknown(
    root: &Root,
    id: &Identity,
    q: &Queue,
    launched_at: Option<DateTime<Utc>>,
    task: String,
    reason: String,
) -> Result<DeliveryOutcome> {
    q.dead_letter_because(&task, "delivery-unknown", &reason)?;
    let lines = vec![format!("delivery-unknown: {reason}")];
    record::update(root, id, launched_at, |rec| {
        rec.undelivered = Some(Undelivered { at: Utc::now(), task: task.clone(), lines });
    })?;
    Ok(DeliveryOutcome::Unknown { task, reason })
}

/// True while a courier serves `q` (it holds `courier.lock`).
pub fn courier_alive(q: &Queue) -> bool {
    q.lock_held(QueueLock::Courier)
}

/// The live courier's pid, as it wrote it into its lock.
pub fn courier_pid(q: &Queue) -> Option<i32> {
    q.lock_holder(QueueLock::Courier)
}

/// Start a courier for `id` unless one serves it. It detaches itself.
pub fn ensure_courier(root: &Root, id: &Identity) -> Result<bool> {
    let q = Queue::open(root, id)?;
    if courier_alive(&q) {
        return Ok(false);
    }
    crate::ground::detach::spawn_detached(
        root,
        &["_courier", id.as_str()],
        &format!("the courier of {id}"),
    )?;
    Ok(true)
}

/// `_courier <id>`.
pub fn run_courier(root: &Root, id: &Identity) -> Result<()> {
    if !crate::ground::detach::detach()? {
        return Ok(());
    }
    if let Err(e) = courier(root, id) {
        let _ = crate::model::logfmt::Event::new("courier-error")
            .id(id)
            .kv("reason", format!("{e:#}"))
            .append_to(&root.lifecycle_log());
    }
    Ok(())
}

fn courier(root: &Root, id: &Identity) -> Result<()> {
    let q = Queue::open(root, id)?;
    let Some(lock) = q.take_lock(QueueLock::Courier)? else { return Ok(()) };
    let mut lock = Some(lock);
    let mut looker = Looker::for_loop();
    let mut not_running: Option<Instant> = None;
    loop {
        let Some(spec) = peer::load(root, id)?.filter(|s| s.policy == Policy::Persistent) else {
            return Ok(());
        };
        let c = q.counts()?;
        if c.pending + c.running == 0 {
            // Retire, race-free with a sender (see the module header).
            drop(lock.take());
            let c = q.counts()?;
            if c.pending + c.running == 0 {
                return Ok(());
            }
            let Some(again) = q.take_lock(QueueLock::Courier)? else { return Ok(()) };
            lock = Some(again);
        }
        let state = match deliver_next(root, &spec, &q, &mut looker)? {
            DeliveryOutcome::Delivered { .. }
            | DeliveryOutcome::Refused { .. }
            | DeliveryOutcome::Unknown { .. } => continue,
            DeliveryOutcome::Undelivered { .. } => Some(AgentState::Blocked),
            DeliveryOutcome::NotReady(v) => Some(v.state),
            DeliveryOutcome::NotTyped { .. } | DeliveryOutcome::Empty | DeliveryOutcome::Busy => {
                None
            }
        };
        if state == Some(AgentState::Unknown) {
            let since = *not_running.get_or_insert_with(Instant::now);
            if since.elapsed() >= NOT_RUNNING_GIVE_UP {
                return Ok(());
            }
        } else {
            not_running = None;
        }
        let slow = matches!(state, Some(AgentState::Unknown | AgentState::Blocked));
        std::thread::sleep(if slow { POLL_BLOCKED } else { POLL });
        debug_assert!(lock.is_some());
    }
}
