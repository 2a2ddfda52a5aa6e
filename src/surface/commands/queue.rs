//! `queue <id> [list|show T|retry T|rm T|purge] [--dead]`: inspect and manage
//! a peer's FIFO and its dead letters. Works for an unregistered identity
//! whose queue was kept by `rm`; an unknown task is exit 1.

use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::Ctx;
use crate::ground::output::{self, inert_line};
use crate::model::peer::{self, Identity};
use crate::model::queue::{Queue, TaskMeta};
use crate::surface::cli::{QueueAction, QueueArgs};

pub fn run(ctx: &Ctx, args: QueueArgs) -> Result<ExitCode> {
    let id = Identity::parse(args.identity())?;
    let q = match Queue::open_existing(&ctx.root, &id)? {
        Some(q) => q,
        None if peer::load(&ctx.root, &id)?.is_some() => Queue::open(&ctx.root, &id)?,
        None => bail!(
            "no peer and no queue named {id} under {}; see `muxvisor status`",
            ctx.root.dir().display()
        ),
    };
    match args.action.unwrap_or(QueueAction::List) {
        QueueAction::List => list(ctx, &q, args.dead),
        QueueAction::Show { task } => show(ctx, &q, &task),
        QueueAction::Retry { task } => {
            let task = task.to_ascii_lowercase();
            let depth = q.retry(&task)?;
            report(
                ctx,
                json!({"identity": id, "task": task, "retried": true, "depth": depth}),
                || format!("task {task} is back at the tail of {id}'s queue, depth {depth}"),
            )
        }
        QueueAction::Rm { task } => {
            let task = task.to_ascii_lowercase();
            let stage = q.rm(&task)?;
            report(
                ctx,
                json!({"identity": id, "task": task, "removed": true, "stage": stage}),
                || format!("removed {stage} task {task} from {id}'s queue"),
            )
        }
        QueueAction::Purge => {
            let n = q.purge()?;
            report(ctx, json!({"identity": id, "purged": n}), || {
                format!("purged {n} pending and dead tasks from {id}'s queue")
            })
        }
    }
}

fn report(ctx: &Ctx, v: serde_json::Value, human: impl FnOnce() -> String) -> Result<ExitCode> {
    if ctx.json {
        output::json(&v)?
    } else {
        output::line(human())?
    }
    Ok(ExitCode::SUCCESS)
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn describe(m: &TaskMeta) -> String {
    let mut s = format!("{}  attempt {}  enqueued {}", m.task, m.attempt, ts(&m.enqueued_at));
    if let Some(nb) = &m.not_before {
        s.push_str(&format!("  not before {}", ts(nb)));
    }
    if let Some(st) = &m.started_at {
        s.push_str(&format!("  started {}", ts(st)));
    }
    if let Some(k) = &m.dedupe {
        s.push_str(&format!("  dedupe {k:?}"));
    }
    s
}

fn list(ctx: &Ctx, q: &Queue, dead: bool) -> Result<ExitCode> {
    let l = q.list()?;
    if ctx.json {
        output::json(&json!({
            "identity": q.identity(),
            "pending": l.pending,
            "running": l.running,
            "dead": l.dead,
            "quarantined": l.quarantined,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let id = q.identity();
    output::line(format!(
        "{id}: {} pending, {} running, {} dead, {} quarantined",
        l.pending.len(),
        l.running.len(),
        l.dead.len(),
        l.quarantined.len()
    ))?;
    if !ctx.root.peer_file(id).exists() && l.pending.len() + l.running.len() > 0 {
        output::line(format!(
            "(peer {id} is not registered: nothing runs these tasks; `muxvisor add {id} ... -- \
             PROGRAM` runs them again, `muxvisor queue {id} purge` drops them)"
        ))?;
    }
    // Several workers: which one runs each task (slot, runner pid).
    let workers = crate::model::peer::load(&ctx.root, id).ok().flatten().map_or(1, |s| s.workers);
    let live = if workers > 1 { q.live_slots() } else { Vec::new() };
    for m in &l.running {
        let mut line = format!("running  {}", describe(m));
        if let Some(k) = m.worker.filter(|_| workers > 1) {
            line.push_str(&format!("  worker {k}"));
            match live.iter().find(|(s, _)| *s == k) {
                Some((_, Some(pid))) => line.push_str(&format!(" (pid {pid})")),
                Some((_, None)) => {}
                None => line.push_str(" (its runner is gone: the task is retried)"),
            }
        }
        output::line(line)?;
    }
    for (i, m) in l.pending.iter().enumerate() {
        output::line(format!("{:>7}  {}", i + 1, describe(m)))?;
    }
    if dead {
        for d in &l.dead {
            output::line(format!("dead     {}  reason {}", describe(&d.meta), d.reason))?;
        }
    }
    // Damaged entries are always shown: they are work that did not run.
    for m in &l.quarantined {
        output::line(format!(
            "quarantined  {}  from {}  {}",
            inert_line(&m.entry),
            inert_line(&m.from),
            inert_line(&m.reason)
        ))?;
    }
    if !l.quarantined.is_empty() {
        output::line(format!(
            "(quarantined entries are kept in {}; see `muxvisor queue {id} show ENTRY`)",
            q.dir().join("quarantine").display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `queue show` of something that is not a task: a quarantined entry.
fn show_quarantined(ctx: &Ctx, q: &Queue, key: &str) -> Result<ExitCode> {
    const HEAD: usize = 4096;
    let (m, content) = q.show_quarantined(key, HEAD)?;
    let text = String::from_utf8_lossy(&content).into_owned();
    if ctx.json {
        let mut v = serde_json::to_value(&m)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("identity".into(), json!(q.identity()));
            o.insert("stage".into(), json!("quarantined"));
            o.insert("head".into(), json!(text));
        }
        output::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    output::line(format!("entry:       {}", m.entry))?;
    output::line(format!("identity:    {}", q.identity()))?;
    output::line("stage:       quarantined")?;
    output::line(format!("from:        {}", inert_line(&m.from)))?;
    output::line(format!("reason:      {}", inert_line(&m.reason)))?;
    if let Some(t) = &m.task {
        output::line(format!("task:        {t}"))?;
    }
    if let Some(t) = &m.at {
        output::line(format!("quarantined: {}", ts(t)))?;
    }
    output::line(format!("content ({} bytes, first {} shown):", m.bytes, content.len()))?;
    output::line(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Ctx, q: &Queue, task: &str) -> Result<ExitCode> {
    let s = match q.show(task) {
        Ok(s) => s,
        Err(e) => return show_quarantined(ctx, q, task).map_err(|_| e),
    };
    let payload = String::from_utf8_lossy(&s.payload).into_owned();
    if ctx.json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("identity".into(), json!(q.identity()));
            o.insert("payload".into(), json!(payload));
            // An agent pool's task: the agent's reply (SPEC §10).
            let reply = s.outcome.as_ref().and_then(|o| o.reply.clone());
            o.insert("reply".into(), json!(reply));
        }
        output::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    output::line(format!("task:        {}", s.meta.task))?;
    output::line(format!("identity:    {}", q.identity()))?;
    let pos = s.position.map(|p| format!(" (position {p})")).unwrap_or_default();
    output::line(format!("stage:       {}{pos}", s.stage))?;
    output::line(format!("attempts:    {}", s.meta.attempt))?;
    output::line(format!("enqueued:    {}", ts(&s.meta.enqueued_at)))?;
    if let Some(t) = &s.meta.started_at {
        output::line(format!("started:     {}", ts(t)))?;
    }
    if let Some(t) = &s.meta.not_before {
        output::line(format!("not before:  {}", ts(t)))?;
    }
    if let Some(e) = &s.meta.last_error {
        output::line(format!("last error:  {}", inert_line(e)))?;
    }
    if let Some(r) = &s.reason {
        output::line(format!("dead reason: {}", inert_line(&r.trim().replace('\n', "; "))))?;
    }
    if let Some(o) = &s.outcome {
        let st = o.status.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let sig = o.signal.clone().unwrap_or_else(|| "-".into());
        output::line(format!("outcome:     status {st}, signal {sig}, {} ms", o.duration_ms))?;
        if let Some(r) = &o.reply {
            output::line("reply:")?;
            for l in r.lines() {
                output::line(format!("  {}", inert_line(l)))?;
            }
        }
        if !o.screen_tail.is_empty() {
            output::line("screen:")?;
            for l in o.screen_tail.lines() {
                output::line(format!("  {}", inert_line(l)))?;
            }
        }
    }
    output::line(format!("payload ({} bytes):", s.meta.bytes))?;
    output::line(&payload)?;
    Ok(ExitCode::SUCCESS)
}
