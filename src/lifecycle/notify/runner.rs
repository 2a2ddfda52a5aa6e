//! `_notify`: the one runner (under `run/_notify.lock`), which delivers
//! until caught up. A pass reads both logs past the cursor, merges them in
//! time order, cuts a backlog past its cap from the oldest end, and runs
//! the hook once per line, saving the cursor after each; a refused hook is
//! recorded once and its lines skipped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::cursor::{Cursor, Item, keep_present, read_batch};
use super::hook::{Hook, HookOutcome, check, execute};
use super::{Config, deliverable};
use crate::ground::fsutil::{self, LockGuard};
use crate::ground::paths::Root;
use crate::model::events::Record;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;

/// `_notify`: fork away, then deliver until caught up.
pub fn run(root: &Root) -> Result<()> {
    if !crate::ground::detach::detach()? {
        return Ok(());
    }
    if let Err(e) = serve(root, Config::from_env()) {
        let _ = Event::new("notify-failed")
            .kv("reason", format!("runner: {e:#}"))
            .append_to(&root.lifecycle_log());
    }
    Ok(())
}

/// Take the runner lock. Retried for a moment: a probe (an appender's, or
/// doctor's) holds it shared for microseconds, and a runner that gave up on
/// a probe would leave a line for the next event.
pub(super) fn take_lock(root: &Root) -> Result<Option<LockGuard>> {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        if let Some(g) = fsutil::try_lock(&root.notify_lock())? {
            return Ok(Some(g));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deliver until caught up, as the one runner; exit only after a look at
/// the logs with the lock released finds nothing new.
pub fn serve(root: &Root, cfg: Config) -> Result<()> {
    loop {
        let Some(lock) = take_lock(root)? else { return Ok(()) };
        while pass(root, cfg)? {}
        drop(lock);
        if !pending(root)? {
            return Ok(());
        }
    }
}

/// Is a line waiting for a ready hook?
pub(super) fn pending(root: &Root) -> Result<bool> {
    let Hook::Ready { since, .. } = check(root) else { return Ok(false) };
    let batch = read_batch(root, &Cursor::load(root))?;
    Ok(batch.items.iter().flatten().any(|i| i.rec.as_ref().is_some_and(|r| deliverable(r, since))))
}

/// One read of the logs and delivery of what it found. True if it ran the
/// hook (another pass may find more).
pub(super) fn pass(root: &Root, cfg: Config) -> Result<bool> {
    let hook = check(root);
    let (path, since) = match hook {
        Hook::Absent | Hook::Disabled => return Ok(false),
        Hook::Ready { path, since } => (path, since),
        Hook::Refused { why, .. } => {
            // Refused is off, like absent, but said once: skip what is there.
            let mut cursor = Cursor::load(root);
            let before = cursor.clone();
            let batch = read_batch(root, &cursor)?;
            keep_present(&mut cursor, &batch);
            for (log, end) in &batch.ends {
                cursor.advance(log, end, end.offset);
            }
            if cursor.refused.as_deref() != Some(why.as_str()) {
                Event::new("notify-refused")
                    .kv("reason", &why)
                    .kv("path", root.on_event_hook().display())
                    .append_to(&root.lifecycle_log())?;
                cursor.refused = Some(why);
            }
            if cursor != before {
                cursor.save(root)?;
            }
            return Ok(false);
        }
    };
    let mut cursor = Cursor::load(root);
    let before = cursor.clone();
    cursor.refused = None;
    let batch = read_batch(root, &cursor)?;
    keep_present(&mut cursor, &batch);
    let ordered =
        merge(batch.items, |i: &Item| i.rec.as_ref().map_or(DateTime::UNIX_EPOCH, |r| r.ts));
    let wanted: Vec<Item> = ordered
        .into_iter()
        .filter(|i| i.rec.as_ref().is_some_and(|r| deliverable(r, since)))
        .collect();
    if wanted.is_empty() {
        for (log, end) in &batch.ends {
            cursor.advance(log, end, end.offset);
        }
        if cursor != before {
            cursor.save(root)?;
        }
        return Ok(false);
    }
    let (send, dropped) = cut(wanted, cfg.backlog);
    if !dropped.is_empty() {
        for i in &dropped {
            cursor.advance(i.log, &i.file, i.end);
        }
        cursor.save(root)?;
        let ts = |i: Option<&Item>| i.and_then(|i| i.rec.as_ref()).map(|r| r.ts);
        let ev = Event::new("notify-dropped")
            .kv("dropped", dropped.len())
            .opt("first_ts", ts(dropped.first()).map(rfc3339))
            .opt("last_ts", ts(dropped.last()).map(rfc3339));
        ev.append_to(&root.lifecycle_log())?;
        let line = ev.line();
        if let Some(rec) = Record::parse(&line) {
            deliver(root, &path, &line, &rec, cfg, &mut cursor)?;
        }
    }
    for item in send {
        // Removed, switched off or replaced meanwhile: the next pass decides.
        if !matches!(check(root), Hook::Ready { since: s, .. } if s == since) {
            return Ok(true);
        }
        let Some(rec) = &item.rec else { continue };
        let line = format!("{}\n", rec.raw);
        cursor.advance(item.log, &item.file, item.end);
        deliver(root, &path, &line, rec, cfg, &mut cursor)?;
    }
    Ok(true)
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Run the hook for one line, record a failure, and save the cursor (which
/// the caller has already moved past the line).
pub(super) fn deliver(
    root: &Root,
    hook: &Path,
    line: &str,
    rec: &Record,
    cfg: Config,
    cursor: &mut Cursor,
) -> Result<()> {
    let started = Instant::now();
    let outcome = execute(root, hook, line, rec, cfg.timeout);
    match outcome {
        Ok(HookOutcome::Ok) => cursor.last_ok = Some(Utc::now()),
        Ok(HookOutcome::Failed { status, signal, reason }) => {
            failure(rec, status, signal, &reason, started).append_to(&root.lifecycle_log())?
        }
        Err(e) => {
            failure(rec, None, None, &format!("{e:#}"), started).append_to(&root.lifecycle_log())?
        }
    }
    cursor.save(root)
}

pub(super) fn failure(
    rec: &Record,
    status: Option<i32>,
    signal: Option<i32>,
    reason: &str,
    started: Instant,
) -> Event {
    let mut ev = Event::new("notify-failed");
    if let Some(id) = rec.identity().and_then(|i| Identity::parse(i).ok()) {
        ev = ev.id(&id);
    }
    ev.kv("event", rec.ev())
        .kv("event_ts", rfc3339(rec.ts))
        .opt("status", status)
        .opt("signal", signal)
        .kv("reason", reason)
        .kv("duration_ms", started.elapsed().as_millis())
}

/// Merge per-log sequences by time, keeping each log's own order (so that
/// each log's cursor only moves forward). Pure.
pub(super) fn merge<T>(logs: Vec<Vec<T>>, ts: impl Fn(&T) -> DateTime<Utc>) -> Vec<T> {
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<T>>> =
        logs.into_iter().map(|v| v.into_iter().peekable()).collect();
    let mut out = Vec::new();
    loop {
        let next = heads
            .iter_mut()
            .enumerate()
            .filter_map(|(i, h)| h.peek().map(|t| (ts(t), i)))
            .min()
            .map(|(_, i)| i);
        match next.and_then(|i| heads[i].next()) {
            Some(t) => out.push(t),
            None => return out,
        }
    }
}

/// The lines to deliver now, in order, after cutting a backlog past `cap`
/// from its oldest end; also the lines cut. Pure.
pub(super) fn cut<T>(mut lines: Vec<T>, cap: usize) -> (Vec<T>, Vec<T>) {
    if lines.len() <= cap {
        return (lines, Vec::new());
    }
    let keep = lines.split_off(lines.len() - cap);
    (keep, lines)
}
