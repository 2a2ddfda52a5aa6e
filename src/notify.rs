//! Notification with no daemon. An executable `hooks/on-event` under the root
//! receives each event worth telling someone about (a death, an agent state
//! change, a dead task, a failed peer, ...), one line at a time on its stdin.
//! Like a git hook: one file, nothing to keep running.
//!
//! The event logs are the queue. Nothing is copied anywhere:
//! - **Appending** ([`appended`], which the binary registers as the log
//!   writer's append listener, so `Event::append_to` calls it after its one
//!   write): a [`QUIET`] event costs nothing; any other costs one `lstat` of
//!   `hooks/on-event`, and that is all when there is no hook. With a hook,
//!   if no runner holds `run/_notify.lock`, it starts `muxvisor _notify`,
//!   which forks away at once (setsid, stdio on /dev/null): the caller waits
//!   for one fork and exec, never for the hook.
//! - **The runner** (`_notify`, at most one under that flock) reads both logs
//!   past `run/_notify.cursor`, merges them in time order, and runs the hook
//!   once per line: the line on stdin, `MUXVISOR_EVENT`, `MUXVISOR_IDENTITY`
//!   and `MUXVISOR_ROOT` set, cwd the root, no `TMUX`, stdout and stderr
//!   into a pipe whose copier appends them to `logs/notify.log` and rotates
//!   it before it would pass 1 MiB (one old copy), however much one run
//!   prints, in its own process
//!   group, which is killed at the deadline (`MUXVISOR_NOTIFY_TIMEOUT`,
//!   10 s). After each line the cursor is replaced atomically, so lines go
//!   out once, in order; a runner killed mid-hook repeats that one line.
//!   A hook that fails or times out is recorded (`ev=notify-failed`) and the
//!   next line goes out. A backlog past `MUXVISOR_NOTIFY_BACKLOG` (1000)
//!   lines is cut from the oldest end, recorded (`ev=notify-dropped`) and
//!   told to the hook first. The runner exits when it is caught up.
//! - **No lost wake-up**: a runner re-reads the logs after releasing the
//!   lock and takes it again if a line arrived; an appender that saw the lock
//!   held had written its line before looking.
//! - **Rotation** (`rotate.rs` renames `x.log` to `x.log.1`): the cursor keeps
//!   one mark per file it has seen: device, inode, the start of the first
//!   line (inodes are reused) and the offset delivered up to. A renamed file
//!   keeps its inode, so its unread tail is read before the new file; a file
//!   never seen is read from its start. `x.log` is opened before `x.log.1`,
//!   so a rotation between the two opens shows one file twice (read once),
//!   never hides one.
//! - **Which lines**: those stamped no earlier than the hook's ctime (when it
//!   was installed, written or chmodded), so a new hook is not fed history,
//!   and an absent or non-executable hook lets no backlog build up.
//! - **Trust**: the hook runs only if `hooks/` and `hooks/on-event` are ours,
//!   not group/other-writable and not symlinks, and the hook is a regular
//!   file; otherwise it is refused (`ev=notify-refused`, once per reason) and
//!   `doctor` says why. The `ev=notify-*` events are quiet: no loops.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::events::Record;
use crate::fsutil::{self, LockGuard};
use crate::logfmt::Event;
use crate::paths::Root;
use crate::peer::Identity;

/// Events that never notify: the chatty ones of every task and tick, and
/// the notifier's own (so a failing hook cannot feed itself). Every other
/// event notifies, including ones added later. A `session-exit` with a
/// `task=` (an ephemeral peer's program ending a task) is quiet too: its
/// outcome follows as `task-retry` or `task-dead`.
pub const QUIET: &[&str] = &[
    "tick",
    "enqueue",
    "task-start",
    "task-done",
    "msg-delivered",
    "notify-failed",
    "notify-dropped",
    "notify-refused",
];

/// Default deadline of one hook run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap of undelivered lines before the oldest are dropped.
pub const DEFAULT_BACKLOG: usize = 1000;
/// Cap of `logs/notify.log` before it is rotated to `notify.log.1`.
pub const LOG_MAX: u64 = 1024 * 1024;

/// The two event logs, by the name the cursor keeps them under.
const LOGS: [&str; 2] = ["lifecycle", "exits"];

/// Does an event with this `ev` (and `task`, if any) notify? Pure.
pub fn notifies(ev: &str, task: Option<&str>) -> bool {
    let task_exit = ev == "session-exit" && task.is_some_and(|t| !t.is_empty());
    !QUIET.contains(&ev) && !task_exit
}

/// The runner's settings, from `MUXVISOR_NOTIFY_TIMEOUT` and
/// `MUXVISOR_NOTIFY_BACKLOG` (read by the runner, which inherits the
/// environment of whatever wrote the event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub timeout: Duration,
    pub backlog: usize,
}

impl Config {
    /// Pure: settings from the two variables' values.
    pub fn from_values(timeout: Option<String>, backlog: Option<String>) -> Config {
        let timeout = timeout
            .and_then(|v| crate::duration::parse(v.trim()).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        let backlog = backlog
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_BACKLOG);
        Config { timeout, backlog }
    }

    pub fn from_env() -> Config {
        Config::from_values(
            std::env::var("MUXVISOR_NOTIFY_TIMEOUT").ok(),
            std::env::var("MUXVISOR_NOTIFY_BACKLOG").ok(),
        )
    }
}

// ---------------------------------------------------------------------------
// The appender's side.

/// Called after `ev` was appended to `log`. Never fails and never waits for
/// the hook: at worst it waits for `_notify` to fork away.
pub fn appended(log: &Path, ev: &Event) {
    if !notifies(ev.ev(), ev.get("task")) {
        return;
    }
    let Some(root) = root_of_log(log) else { return };
    // The one stat paid when there is no hook.
    let Ok(md) = std::fs::symlink_metadata(root.on_event_hook()) else { return };
    // A symlink goes on so that the runner can refuse it where doctor sees.
    if !md.file_type().is_symlink() && md.mode() & 0o100 == 0 {
        return;
    }
    // A runner holding the lock re-reads the logs before it exits.
    if fsutil::is_locked(&root.notify_lock()).unwrap_or(false) {
        return;
    }
    let _ = spawn_runner(&root);
}

/// The root of `<root>/logs/lifecycle.log` or `<root>/logs/exits.log`;
/// `None` for any other file. Pure.
fn root_of_log(log: &Path) -> Option<Root> {
    let name = log.file_name()?.to_str()?;
    if name != "lifecycle.log" && name != "exits.log" {
        return None;
    }
    let logs = log.parent()?;
    if logs.file_name()? != "logs" {
        return None;
    }
    Some(Root::new(logs.parent()?.to_path_buf()))
}

/// Start `muxvisor _notify`, which forks and exits at once.
pub fn spawn_runner(root: &Root) -> Result<()> {
    crate::detach::spawn_detached(root, &["_notify"], "the notification runner").map(|_| ())
}

// ---------------------------------------------------------------------------
// The hook file.

/// What `hooks/on-event` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// No `hooks/` or no `hooks/on-event`.
    Absent,
    /// Present but not executable by its owner: off, like a git hook.
    Disabled,
    /// Runs; `since` is its ctime to the millisecond (lines stamped
    /// earlier are not delivered).
    Ready { path: PathBuf, since: DateTime<Utc> },
    /// Present but not trusted: what is wrong, and what to do.
    Refused { why: String, fix: String },
}

/// Look at the hook (two `lstat`s, no following).
pub fn check(root: &Root) -> Hook {
    let dir = root.hooks_dir();
    let md = match std::fs::symlink_metadata(&dir) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Hook::Absent,
        Err(e) => return refused(format!("cannot read {}: {e}", dir.display()), "check it"),
    };
    if let Some(r) = untrusted(&dir, &md, true) {
        return r;
    }
    let path = root.on_event_hook();
    let md = match std::fs::symlink_metadata(&path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Hook::Absent,
        Err(e) => return refused(format!("cannot read {}: {e}", path.display()), "check it"),
    };
    if let Some(r) = untrusted(&path, &md, false) {
        return r;
    }
    if md.mode() & 0o100 == 0 {
        return Hook::Disabled;
    }
    let ctime = DateTime::from_timestamp(md.ctime(), md.ctime_nsec() as u32).unwrap_or_default();
    let since = ctime.duration_trunc(chrono::Duration::milliseconds(1)).unwrap_or(ctime);
    Hook::Ready { path, since }
}

fn refused(why: String, fix: impl Into<String>) -> Hook {
    Hook::Refused { why, fix: fix.into() }
}

/// Why `path` (the hooks directory, or the hook) is not to be trusted. Pure
/// over its metadata.
fn untrusted(path: &Path, md: &std::fs::Metadata, dir: bool) -> Option<Hook> {
    let p = path.display();
    if md.file_type().is_symlink() {
        return Some(refused(
            format!("{p} is a symlink; muxvisor runs only a real file inside the root"),
            format!(
                "replace {p} with a copy, or with a script that runs yours \
                 (`exec /path/to/yours`)"
            ),
        ));
    }
    if dir && !md.is_dir() {
        return Some(refused(format!("{p} is not a directory"), format!("remove {p}")));
    }
    if !dir && !md.is_file() {
        return Some(refused(format!("{p} is not a regular file"), format!("remove {p}")));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if md.uid() != euid {
        return Some(refused(
            format!("{p} is owned by uid {}, not by you (uid {euid})", md.uid()),
            format!("remove {p}, or chown it to yourself"),
        ));
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(refused(
            format!("{p} has mode {mode:04o}: others can change what it runs"),
            format!("chmod go-w {p}"),
        ));
    }
    None
}

// ---------------------------------------------------------------------------
// The cursor.

/// How far one file has been delivered. `head` is the start of its first
/// line, which tells a reused inode from the file it was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub dev: u64,
    pub ino: u64,
    pub head: String,
    pub offset: u64,
}

/// `run/_notify.cursor`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Per log (`lifecycle`, `exits`): a mark for each file of it on disk.
    #[serde(default)]
    pub logs: std::collections::BTreeMap<String, Vec<Mark>>,
    /// When a hook run last succeeded.
    #[serde(default)]
    pub last_ok: Option<DateTime<Utc>>,
    /// The refusal last recorded, so that it is recorded once.
    #[serde(default)]
    pub refused: Option<String>,
}

impl Cursor {
    /// The cursor on disk; missing or unreadable is empty (lines are then
    /// chosen by the hook's ctime alone).
    pub fn load(root: &Root) -> Cursor {
        fsutil::read_if_exists(&root.notify_cursor())
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, root: &Root) -> Result<()> {
        let bytes = serde_json::to_vec(self).context("encoding the notification cursor")?;
        fsutil::atomic_write(&root.notify_cursor(), &bytes)
    }

    /// Record that `log`'s file `file` is delivered up to `offset`.
    fn advance(&mut self, log: &str, file: &Mark, offset: u64) {
        let marks = self.logs.entry(log.to_string()).or_default();
        match marks.iter_mut().find(|m| same_file(m, file)) {
            Some(m) => {
                m.offset = offset;
                m.head.clone_from(&file.head);
            }
            None => marks.push(Mark { offset, ..file.clone() }),
        }
    }
}

fn same_file(known: &Mark, file: &Mark) -> bool {
    known.dev == file.dev
        && known.ino == file.ino
        && (known.head.is_empty() || known.head == file.head)
}

/// Where to start reading a file of `size` bytes that `file` describes
/// (its offset ignored). Pure: a known file from its mark, an unknown one
/// (new, or renamed from a generation never seen) from its start, one that
/// shrank (truncated by hand) from its start.
pub fn start_offset(known: &[Mark], file: &Mark, size: u64) -> u64 {
    match known.iter().find(|m| same_file(m, file)) {
        Some(m) if m.offset <= size => m.offset,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------
// Reading the logs.

/// One complete line read past the cursor.
#[derive(Clone, Debug)]
struct Item {
    log: &'static str,
    file: Mark,
    /// Offset just past the line in its file.
    end: u64,
    rec: Option<Record>,
}

/// What is new in both logs: per log, its items in file order, and a mark
/// per file at the end of what was read.
#[derive(Debug, Default)]
struct Batch {
    items: Vec<Vec<Item>>,
    ends: Vec<(&'static str, Mark)>,
}

const HEAD_LEN: usize = 64;

fn open_generation(path: &Path) -> Result<Option<(File, Mark, u64)>> {
    let Some(mut f) = fsutil::open_read(path)? else { return Ok(None) };
    let md = f.metadata().with_context(|| format!("reading {}", path.display()))?;
    let mut head = vec![0u8; HEAD_LEN];
    let n = f.read_at(&mut head, 0).with_context(|| format!("reading {}", path.display()))?;
    head.truncate(n);
    if let Some(nl) = head.iter().position(|b| *b == b'\n') {
        head.truncate(nl);
    }
    f.rewind().with_context(|| format!("reading {}", path.display()))?;
    let mark = Mark {
        dev: md.dev(),
        ino: md.ino(),
        head: String::from_utf8_lossy(&head).into_owned(),
        offset: 0,
    };
    Ok(Some((f, mark, md.len())))
}

/// Read every complete line of `log` (and of `log.1` first) past `known`
/// into `batch`.
fn read_log(log: &Path, name: &'static str, known: &[Mark], batch: &mut Batch) -> Result<()> {
    // The live file first: see the module header.
    let current = open_generation(log)?;
    let old = open_generation(&crate::rotate::rotated_name(log))?;
    let mut gens = Vec::new();
    if let Some(o) = old
        && current.as_ref().is_none_or(|c| (c.1.dev, c.1.ino) != (o.1.dev, o.1.ino))
    {
        gens.push(o);
    }
    gens.extend(current);
    let mut items = Vec::new();
    for (mut f, file, size) in gens {
        let start = start_offset(known, &file, size);
        f.seek(std::io::SeekFrom::Start(start))
            .with_context(|| format!("reading {}", log.display()))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).with_context(|| format!("reading {}", log.display()))?;
        // A last line without its newline may still be being written.
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut at = start;
        for line in buf[..complete].split_inclusive(|b| *b == b'\n') {
            at += line.len() as u64;
            let text = String::from_utf8_lossy(line);
            items.push(Item { log: name, file: file.clone(), end: at, rec: Record::parse(&text) });
        }
        batch.ends.push((name, Mark { offset: start + complete as u64, ..file }));
    }
    batch.items.push(items);
    Ok(())
}

fn read_batch(root: &Root, cursor: &Cursor) -> Result<Batch> {
    let mut batch = Batch::default();
    for (name, path) in LOGS.iter().zip([root.lifecycle_log(), root.exits_log()]) {
        let known = cursor.logs.get(*name).map(Vec::as_slice).unwrap_or_default();
        read_log(&path, name, known, &mut batch)?;
    }
    Ok(batch)
}

/// Is this line one to deliver to a hook installed at `since`? Pure.
fn deliverable(rec: &Record, since: DateTime<Utc>) -> bool {
    rec.ts >= since && notifies(rec.ev(), rec.get("task"))
}

/// Merge per-log sequences by time, keeping each log's own order (so that
/// each log's cursor only moves forward). Pure.
fn merge<T>(logs: Vec<Vec<T>>, ts: impl Fn(&T) -> DateTime<Utc>) -> Vec<T> {
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
fn cut<T>(mut lines: Vec<T>, cap: usize) -> (Vec<T>, Vec<T>) {
    if lines.len() <= cap {
        return (lines, Vec::new());
    }
    let keep = lines.split_off(lines.len() - cap);
    (keep, lines)
}

// ---------------------------------------------------------------------------
// The runner.

/// `_notify`: fork away, then deliver until caught up.
pub fn run(root: &Root) -> Result<()> {
    if !crate::detach::detach()? {
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
fn take_lock(root: &Root) -> Result<Option<LockGuard>> {
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
fn pending(root: &Root) -> Result<bool> {
    let Hook::Ready { since, .. } = check(root) else { return Ok(false) };
    let batch = read_batch(root, &Cursor::load(root))?;
    Ok(batch.items.iter().flatten().any(|i| i.rec.as_ref().is_some_and(|r| deliverable(r, since))))
}

/// One read of the logs and delivery of what it found. True if it ran the
/// hook (another pass may find more).
fn pass(root: &Root, cfg: Config) -> Result<bool> {
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

/// Drop the marks of files no longer on disk.
fn keep_present(cursor: &mut Cursor, batch: &Batch) {
    for (log, marks) in cursor.logs.iter_mut() {
        marks.retain(|m| batch.ends.iter().any(|(l, e)| l == log && same_file(m, e)));
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Run the hook for one line, record a failure, and save the cursor (which
/// the caller has already moved past the line).
fn deliver(
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
        Ok(Outcome::Ok) => cursor.last_ok = Some(Utc::now()),
        Ok(Outcome::Failed { status, signal, reason }) => {
            failure(rec, status, signal, &reason, started).append_to(&root.lifecycle_log())?
        }
        Err(e) => {
            failure(rec, None, None, &format!("{e:#}"), started).append_to(&root.lifecycle_log())?
        }
    }
    cursor.save(root)
}

fn failure(
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

/// How one hook run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed { status: Option<i32>, signal: Option<i32>, reason: String },
}

/// Run the hook once with `line` on stdin, under `timeout`.
fn execute(
    root: &Root,
    hook: &Path,
    line: &str,
    rec: &Record,
    timeout: Duration,
) -> Result<Outcome> {
    use std::os::unix::process::ExitStatusExt;
    let log = root.notify_log();
    // The hook writes into a pipe, not the file: a copier keeps the file
    // under LOG_MAX however much one run prints (rotating mid-run).
    drop(fsutil::open_append(&log)?); // refused (a symlink, say): recorded as a failure
    let (from_hook, out) = std::io::pipe().context("creating the hook's output pipe")?;
    let err = out.try_clone().context("duplicating the hook's output pipe")?;
    let copier = {
        let log = log.clone();
        std::thread::spawn(move || crate::rotate::copy_rotating(from_hook, &log, LOG_MAX))
    };
    // A fresh unnamed file each time: something the last hook left running
    // in the background can never read this line.
    let mut input = tempfile::tempfile_in(root.run_dir()).context("creating the hook's stdin")?;
    input.write_all(line.as_bytes()).context("writing the hook's stdin")?;
    input.rewind().context("writing the hook's stdin")?;
    let mut c = Command::new(hook);
    c.current_dir(root.dir())
        .stdin(input)
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("MUXVISOR_TASK_ID")
        .env_remove("MUXVISOR_TASK_FILE")
        .env("MUXVISOR_ROOT", root.dir())
        .env("MUXVISOR_EVENT", rec.ev())
        .env("MUXVISOR_IDENTITY", rec.identity().unwrap_or_default());
    let spawned = c.spawn();
    // Our copies of the pipe's write end go, so the copier sees EOF once
    // the hook (and whatever it left running) closed it.
    drop(c);
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ok(Outcome::Failed {
                status: None,
                signal: None,
                reason: format!("cannot run {}: {e}", hook.display()),
            });
        }
    };
    let ended = crate::proc::wait_deadline(child, timeout)?;
    // A background process the hook left holding the pipe must not hold up
    // the next line: wait for the copier briefly, then leave it.
    let copied = std::time::Instant::now() + Duration::from_millis(500);
    while !copier.is_finished() && std::time::Instant::now() < copied {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(match ended {
        Some(st) if st.success() => Outcome::Ok,
        Some(st) => match (st.code(), st.signal()) {
            (Some(code), _) => {
                Outcome::Failed { status: Some(code), signal: None, reason: format!("exit-{code}") }
            }
            (None, sig) => Outcome::Failed {
                status: None,
                signal: sig,
                reason: format!("signal-{}", sig.unwrap_or_default()),
            },
        },
        None => Outcome::Failed {
            status: None,
            signal: Some(libc::SIGKILL),
            reason: format!("timeout: killed after {}", crate::duration::format(timeout)),
        },
    })
}

// ---------------------------------------------------------------------------
// For doctor.

/// The last `ev=notify-*` line in the lifecycle log (its last MiB), if any.
pub fn last_trouble(root: &Root) -> Option<Record> {
    let mut f = fsutil::open_read(&root.lifecycle_log()).ok()??;
    let len = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(1 << 20))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .rev()
        .filter_map(Record::parse)
        .find(|r| matches!(r.ev(), "notify-failed" | "notify-dropped" | "notify-refused"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, s).unwrap()
    }

    #[test]
    fn quiet_events_and_task_exits_do_not_notify() {
        for ev in QUIET {
            assert!(!notifies(ev, None), "{ev}");
        }
        for ev in ["server-exit", "gone", "failed", "agent-state", "task-dead", "resume-failed"] {
            assert!(notifies(ev, None), "{ev}");
        }
        assert!(notifies("session-exit", None));
        assert!(notifies("session-exit", Some("")));
        assert!(!notifies("session-exit", Some("t-1")));
        assert!(notifies("task-dead", Some("t-1")));
    }

    #[test]
    fn the_manual_names_every_quiet_event() {
        let (_, text) = crate::manual::FILES.iter().find(|(f, _)| *f == "hooks/on-event").unwrap();
        for ev in QUIET {
            assert!(text.contains(ev), "{ev}");
        }
    }

    #[test]
    fn config_from_values() {
        let d = Config { timeout: DEFAULT_TIMEOUT, backlog: DEFAULT_BACKLOG };
        assert_eq!(Config::from_values(None, None), d);
        assert_eq!(Config::from_values(Some("0".into()), Some("0".into())), d);
        assert_eq!(Config::from_values(Some("x".into()), Some("-1".into())), d);
        let c = Config::from_values(Some("500ms".into()), Some("7".into()));
        assert_eq!(c, Config { timeout: Duration::from_millis(500), backlog: 7 });
    }

    #[test]
    fn only_the_event_logs_of_a_root_notify() {
        let r = root_of_log(Path::new("/t/r/logs/lifecycle.log")).unwrap();
        assert_eq!(r.dir(), Path::new("/t/r"));
        assert!(root_of_log(Path::new("/t/r/logs/exits.log")).is_some());
        assert!(root_of_log(Path::new("/t/r/logs/notify.log")).is_none());
        assert!(root_of_log(Path::new("/t/r/other/lifecycle.log")).is_none());
        assert!(root_of_log(Path::new("lifecycle.log")).is_none());
    }

    #[test]
    fn start_offsets() {
        let m = |ino, head: &str, offset| Mark { dev: 1, ino, head: head.into(), offset };
        let known = [m(10, "ts=a", 100), m(11, "", 0)];
        // Known file: from its mark; shrunk: from its start.
        assert_eq!(start_offset(&known, &m(10, "ts=a", 0), 150), 100);
        assert_eq!(start_offset(&known, &m(10, "ts=a", 0), 100), 100);
        assert_eq!(start_offset(&known, &m(10, "ts=a", 0), 50), 0);
        // A reused inode with another first line is another file.
        assert_eq!(start_offset(&known, &m(10, "ts=b", 0), 150), 0);
        // Marked while empty: any first line is that file's.
        assert_eq!(start_offset(&known, &m(11, "ts=c", 0), 10), 0);
        // Never seen (a new file, or a generation renamed in between).
        assert_eq!(start_offset(&known, &m(12, "ts=a", 0), 150), 0);
        let other_dev = Mark { dev: 2, ..m(10, "ts=a", 0) };
        assert_eq!(start_offset(&known, &other_dev, 150), 0);
    }

    #[test]
    fn merge_orders_by_time_and_keeps_each_logs_order() {
        // The lifecycle log holds a line stamped before the one ahead of it
        // (concurrent writers): it stays behind it.
        let a = vec![(1, "a1"), (5, "a2"), (3, "a3"), (9, "a4")];
        let b = vec![(2, "b1"), (4, "b2"), (10, "b3")];
        let got: Vec<&str> = merge(vec![a, b], |t| at(t.0)).into_iter().map(|t| t.1).collect();
        assert_eq!(got, ["a1", "b1", "b2", "a2", "a3", "a4", "b3"]);
        let none: Vec<Vec<(u32, &str)>> = vec![vec![], vec![]];
        assert!(merge(none, |t| at(t.0)).is_empty());
    }

    #[test]
    fn a_backlog_is_cut_from_its_oldest_end() {
        assert_eq!(cut(vec![1, 2, 3], 3), (vec![1, 2, 3], vec![]));
        assert_eq!(cut(vec![1, 2, 3, 4, 5], 2), (vec![4, 5], vec![1, 2, 3]));
    }

    fn tmp_root() -> (tempfile::TempDir, Root) {
        let t = tempfile::Builder::new().prefix("mvn").tempdir_in("/tmp").unwrap();
        let root = fsutil::open_root(&t.path().join("r")).unwrap();
        (t, root)
    }

    fn line(s: u32, ev: &str) -> String {
        Event::at(at(s), ev).kv("n", s).line()
    }

    fn items(b: &Batch) -> Vec<String> {
        b.items
            .iter()
            .flatten()
            .filter_map(|i| i.rec.as_ref().and_then(|r| r.get("n")).map(str::to_string))
            .collect()
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// Read everything new and move the cursor to its end, as a pass that
    /// delivered it all would.
    fn consume(root: &Root, cursor: &mut Cursor) -> Vec<String> {
        let b = read_batch(root, cursor).unwrap();
        keep_present(cursor, &b);
        for (log, end) in &b.ends {
            cursor.advance(log, end, end.offset);
        }
        items(&b)
    }

    #[test]
    fn rotation_loses_and_repeats_nothing() {
        let (_t, root) = tmp_root();
        let log = root.lifecycle_log();
        let mut c = Cursor::default();
        append(&log, &line(1, "gone"));
        append(&log, &line(2, "gone"));
        assert_eq!(consume(&root, &mut c), ["1", "2"]);
        assert!(consume(&root, &mut c).is_empty());
        // A partial line waits for its newline.
        append(&log, &line(3, "gone"));
        append(&log, "ts=2026-11-22T03:00:04.000Z ev=gone n=4");
        assert_eq!(consume(&root, &mut c), ["3"]);
        append(&log, "\n");
        assert_eq!(consume(&root, &mut c), ["4"]);
        // Rotated with an unread tail, which comes before the new file.
        append(&log, &line(5, "gone"));
        crate::rotate::rotate(&log, 1, false).unwrap().unwrap();
        append(&log, &line(6, "gone"));
        assert_eq!(consume(&root, &mut c), ["5", "6"]);
        // A late write to the renamed file is still seen.
        append(&crate::rotate::rotated_name(&log), &line(7, "gone"));
        assert_eq!(consume(&root, &mut c), ["7"]);
        // Rotated twice unseen: both generations on disk are read whole.
        append(&log, &line(8, "gone"));
        crate::rotate::rotate(&log, 1, false).unwrap().unwrap();
        append(&log, &line(9, "gone"));
        crate::rotate::rotate(&log, 1, false).unwrap().unwrap();
        append(&log, &line(10, "gone"));
        assert_eq!(consume(&root, &mut c), ["9", "10"]);
        assert!(consume(&root, &mut c).is_empty());
        assert_eq!(c.logs["lifecycle"].len(), 2, "{c:?}");
    }

    #[test]
    fn a_first_read_starts_at_the_start_of_both_generations() {
        let (_t, root) = tmp_root();
        let log = root.exits_log();
        append(&log, &line(1, "server-exit"));
        crate::rotate::rotate(&log, 1, false).unwrap().unwrap();
        append(&log, &line(2, "server-exit"));
        let b = read_batch(&root, &Cursor::default()).unwrap();
        assert_eq!(items(&b), ["1", "2"]);
        let since = at(2);
        let chosen: Vec<bool> =
            b.items.iter().flatten().map(|i| deliverable(i.rec.as_ref().unwrap(), since)).collect();
        assert_eq!(chosen, [false, true], "lines from before the hook are not delivered");
    }

    #[test]
    fn hook_checks() {
        use std::os::unix::fs::PermissionsExt;
        let (_t, root) = tmp_root();
        assert_eq!(check(&root), Hook::Absent);
        std::fs::create_dir(root.hooks_dir()).unwrap();
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(&root.hooks_dir(), 0o755);
        assert_eq!(check(&root), Hook::Absent);
        let hook = root.on_event_hook();
        std::fs::write(&hook, "#!/bin/sh\n").unwrap();
        set(&hook, 0o644);
        assert_eq!(check(&root), Hook::Disabled);
        set(&hook, 0o755);
        assert!(matches!(check(&root), Hook::Ready { .. }));
        set(&hook, 0o757);
        assert!(matches!(check(&root), Hook::Refused { fix, .. } if fix.contains("chmod go-w")));
        set(&hook, 0o700);
        set(&root.hooks_dir(), 0o777);
        assert!(matches!(check(&root), Hook::Refused { why, .. } if why.contains("hooks")));
        set(&root.hooks_dir(), 0o700);
        std::fs::remove_file(&hook).unwrap();
        std::os::unix::fs::symlink("/bin/true", &hook).unwrap();
        assert!(matches!(check(&root), Hook::Refused { why, .. } if why.contains("symlink")));
        std::fs::remove_file(&hook).unwrap();
        std::fs::create_dir(&hook).unwrap();
        assert!(matches!(check(&root), Hook::Refused { why, .. } if why.contains("regular file")));
    }
}
