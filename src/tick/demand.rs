//! The per-peer step on demand, for one ephemeral identity, between ticks:
//!
//! - the **kick** ([`kick`]): `send`, once a task is durable, makes sure a
//!   runner works on the queue;
//! - the **hand-over** ([`handover`]): a runner that died (its `pane-died`
//!   hook) or lost its server (the runner itself, on SIGHUP) has its
//!   leftovers finished and a new runner started at once, by a detached
//!   process that its entry point forks.
//!
//! Both run exactly the tick's code ([`act::handle_ephemeral`]), without
//! its housekeeping ([`TickConfig::on_demand`]), under the queue's worker
//! lock: a task left by a dead runner is always finished before the next
//! runner starts. They live with the tick, not in the lifecycle they serve:
//! the lifecycle never calls the tick, so the hook and the runner say that a
//! hand-over is due and their entry points (`commands::internal`) run it.

use std::time::Duration;

use anyhow::Result;

use super::{Step, TickConfig, act};
use crate::ground::paths::Root;
use crate::model::logfmt::Event;
use crate::model::peer::{self, Identity, PeerSpec, Policy};
use crate::model::queue::Queue;

/// How long a kick waits for the worker lock (a tick stopping a worker may
/// hold it for its grace) before leaving the start to the tick.
pub const KICK_LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a hand-over waits for the worker lock: whoever holds it is
/// starting or stopping a runner; afterwards the step finds nothing to do,
/// or what is left.
const HANDOVER_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Make sure a runner works on `spec`'s queue `q` (open already): nothing to do while one
/// lives (it polls the queue) and, with `--workers N`, no worker slot is
/// wanted; otherwise the per-peer step under the worker lock. A failed action is this call's error. Called by `send` once the
/// task is durable.
pub fn kick(root: &Root, spec: &PeerSpec, q: &Queue) -> Result<()> {
    if q.runner_alive() && !slots_wanted(root, spec, q)? {
        return Ok(());
    }
    let guard = q.worker_lock_within(KICK_LOCK_WAIT)?;
    let cfg = TickConfig::on_demand();
    match act::handle_ephemeral(root, spec, q, guard, &cfg)? {
        Step::Failed { action, error, .. } => anyhow::bail!("{action}: {error:#}"),
        Step::Skipped | Step::Done(_) => Ok(()),
    }
}

/// `--workers N`: a live runner polls the queue, but one runner takes one
/// task at a time; a worker slot is started when pending tasks outnumber
/// the live runners free to take them.
fn slots_wanted(root: &Root, spec: &PeerSpec, q: &Queue) -> Result<bool> {
    if spec.workers <= 1 {
        return Ok(false);
    }
    let slots = crate::lifecycle::dispatch::Slots::read(root, q, spec)?;
    let wanted = slots.wanted(spec, q.counts()?.pending, chrono::Utc::now());
    Ok(!slots.to_fill(wanted).is_empty())
}

/// The hand-over: the per-peer step for one ephemeral identity, waiting for
/// the worker lock. A failed action is logged (`ev=handover-error`): nobody
/// waits for a detached hand-over's answer.
pub fn handover(root: &Root, id: &Identity) -> Result<()> {
    let Some(spec) = peer::load(root, id)?.filter(|s| s.policy == Policy::Ephemeral) else {
        return Ok(());
    };
    let q = Queue::open(root, id)?;
    let guard = q.worker_lock_within(HANDOVER_LOCK_WAIT)?;
    let cfg = TickConfig::on_demand();
    if let Step::Failed { action, error, .. } = act::handle_ephemeral(root, &spec, &q, guard, &cfg)?
    {
        Event::new("handover-error")
            .id(id)
            .kv("reason", format!("{action}: {error:#}"))
            .append_to(&root.lifecycle_log())?;
    }
    Ok(())
}
