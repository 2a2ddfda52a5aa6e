//! The inbox: `queues/<id>/inbox`, where `send` makes a task durable with
//! one write and one data sync, and from where every other holder of
//! `queue.lock` moves it into `new/` before it reads the queue.
//!
//! A record is a task file's bytes (header line, payload), records one
//! after another. The counter says how far the inbox is published (`end`)
//! and how far it has been copied into `new/` (`absorbed`); both are
//! written, unsynced, with the rest of the counter.
//!
//! **Send** ([`Queue::append`]): under the lock, write the record at `end`
//! (a write the crash of the sender left beyond `end` is cut off first: it
//! was never acknowledged), fdatasync the inbox (on macOS also the full
//! flush), then write the counter with the new `end`. Exit 0 after that.
//! The inbox file's name is durable since it was created (its directory
//! synced then), and fdatasync makes the data and the size durable: the
//! record survives power loss. A failed write or sync cuts the inbox back
//! and the send fails, "NOT queued".
//!
//! **Absorb** ([`Queue::absorb`], taken with the lock by everyone but a
//! sender): each record in `absorbed..end` is written into `tmp/` and
//! renamed into `new/` (skipped if its name is already in a stage: an
//! earlier absorb was interrupted), NOT synced, then `absorbed = end`.
//! The record stays in the inbox, durable, until a compaction: within one
//! boot every process sees the page cache, and after a crash of the
//! machine the inbox is reconciled (below) before anything else.
//!
//! **Compact** ([`Queue::compact`], before anything removes entries, and
//! once the inbox passes [`COMPACT_AT`] bytes): absorb, then fdatasync the
//! entry of every record (wherever it is now: `new/`, `cur/`, `done/`,
//! `dead/`), fsync those directories (arrivals before departures: `done/`,
//! `dead/`, `cur/`, `new/`), write the counter with an empty extent, and
//! truncate and fdatasync the inbox. A crash before the truncation is
//! durable brings back records whose entries are durable: reconciling
//! finds each of them in place.
//!
//! **Reconcile** ([`Queue::reconcile_inbox`], when the counter cannot be
//! trusted: another boot wrote it, or it is torn): the records are read
//! from the start up to the first that does not verify (what follows was
//! never acknowledged: a write cut short by the power loss; its bytes are
//! kept in `quarantine/`). Each record whose entry is in a stage and
//! verifies is left alone; one whose entry is there but damaged (its
//! data never synced) is rewritten from the record; one whose entry is
//! nowhere is written into `new/` if its sequence is above every entry's,
//! and is otherwise one that was consumed and removed since (claims take
//! the head, so tasks leave `new/` in sequence order). Then the inbox is
//! truncated as a compaction does. This relies on what the claim by a
//! move already relies on (see "Why a claim may move"): a journaling file
//! system keeps renames in one directory, and into another, in order.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::counter::Counter;
use super::entries::{task_names, write_new_file};
use super::{Header, Queue, fault, fault_eio, task};
use crate::ground::fsutil;
use crate::model::logfmt::Event;

/// The stages an absorbed record can be found in, arrivals first (the
/// order in which their directories are synced).
const STAGES: [&str; 4] = ["done", "dead", "cur", "new"];

/// The mode of an inbox whose name is not known to be durable yet (the
/// sticky bit, meaningless on a file, as the mark; see `open_inbox`).
const NOT_SYNCED: u32 = 0o1600;

/// A compaction runs once the inbox holds this many bytes.
pub const COMPACT_AT: u64 = 256 * 1024;

impl Queue {
    fn inbox_path(&self) -> PathBuf {
        self.dir.join("inbox")
    }

    /// The inbox's size (0 if there is none). Refuses a symlink.
    pub(super) fn inbox_len(&self) -> Result<u64> {
        match fs::symlink_metadata(self.inbox_path()) {
            Ok(md) => {
                check_inbox(&md, &self.inbox_path())?;
                Ok(md.len())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.inbox_path().display())),
        }
    }

    /// Open the inbox read-write. With `create`, a missing inbox is
    /// created and its name made durable (the queue's directory synced),
    /// whoever created it: a lock holder that finds it marked syncs first.
    /// Never follows a symlink; refuses anything but our own regular,
    /// singly linked file.
    fn open_inbox(&self, create: bool) -> Result<Option<(File, u64)>> {
        let path = self.inbox_path();
        let open = |create_new: bool| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(create_new)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
        };
        let f = match open(false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let f = open(true).with_context(|| format!("creating {}", path.display()))?;
                // Not known durable yet: marked until the directory is synced.
                f.set_permissions(fs::Permissions::from_mode(NOT_SYNCED))
                    .with_context(|| format!("marking {}", path.display()))?;
                f
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
                "{} is a symlink; muxvisor refuses to follow it. Move it away (the queue's \
                 pending tasks are in new/ and in the inbox)",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        let md = f.metadata()?;
        check_inbox(&md, &path)?;
        if md.mode() & 0o7777 != 0o600 {
            // Created by a process that may have died before it synced the
            // queue's directory (the mark), or given another mode: its name
            // made durable now, then 0600. A holder of the lock that sees
            // 0600 knows the name is on disk.
            fsutil::fsync_dir(&self.dir)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
        }
        Ok(Some((f, md.len())))
    }

    /// Append `record` (a task file's bytes) at the inbox's published end,
    /// durably, and move `c.end` past it. Hold the lock; `c` was just read.
    /// The caller publishes it by writing the counter.
    pub(super) fn append(&self, c: &mut Counter, record: &[u8]) -> Result<()> {
        let (f, len) = self.open_inbox(true)?.context("the inbox was just created")?;
        if len < c.end {
            bail!(
                "{} is {len} bytes, shorter than the {} its counter says were published; run \
                 `muxvisor doctor`",
                self.inbox_path().display(),
                c.end
            );
        }
        if len > c.end {
            // A sender died between its write and its counter (or a
            // compaction between its counter and its truncation): never
            // acknowledged, or already in new/ for good.
            f.set_len(c.end)
                .with_context(|| format!("truncating {}", self.inbox_path().display()))?;
        }
        let result = (|| -> Result<()> {
            f.write_all_at(record, c.end)
                .with_context(|| format!("writing {}", self.inbox_path().display()))?;
            crate::ground::trace::mark("written");
            fault("appended");
            fault_eio("eio-file-fsync")
                .with_context(|| format!("fsync of {}", self.inbox_path().display()))?;
            fsutil::sync_file_data(&f)
                .with_context(|| format!("fsync of {}", self.inbox_path().display()))?;
            fsutil::barrier(&f).with_context(|| {
                format!("full flush (F_FULLFSYNC) of {}", self.inbox_path().display())
            })?;
            crate::ground::trace::mark("file-synced");
            fault("appended-synced");
            Ok(())
        })();
        if let Err(e) = result {
            let _ = f.set_len(c.end);
            return Err(e);
        }
        c.end += record.len() as u64;
        Ok(())
    }

    /// Take back the record [`Queue::append`] wrote after `end` (its
    /// counter could not be written: the send fails, so it must not run).
    pub(super) fn unappend(&self, end: u64) {
        if let Ok(Some((f, _))) = self.open_inbox(false) {
            let _ = f.set_len(end);
            let _ = fsutil::sync_file_data(&f);
        }
    }

    /// The bytes of `range` of the inbox; an inbox shorter than `range`
    /// is an error.
    fn read_inbox(&self, f: &File, range: Range<u64>) -> Result<Vec<u8>> {
        read_range(f, range).with_context(|| format!("reading {}", self.inbox_path().display()))
    }

    /// Empty the inbox, durably (its records' entries are durable by now).
    fn truncate_inbox(&self, f: &File) -> Result<()> {
        f.set_len(0).with_context(|| format!("truncating {}", self.inbox_path().display()))?;
        fsutil::sync_file_data(f)
            .with_context(|| format!("fsync of {}", self.inbox_path().display()))
    }

    /// Pending tasks: `new/` and the records not absorbed yet (an absorb
    /// interrupted after a rename has its record in both: counted once).
    pub(super) fn pending_count(&self, c: &Counter) -> Result<u64> {
        let new = task_names(&self.sub("new"))?;
        let mut unabsorbed = Vec::new();
        if c.absorbed < c.end
            && let Some((f, _)) = self.open_inbox(false)?
        {
            let (records, _) = parse_records(&self.read_inbox(&f, c.absorbed..c.end)?);
            unabsorbed = records.iter().map(|r| r.header.name()).collect();
        }
        Ok(pending(&new, &unabsorbed) as u64)
    }

    /// Copy the records not absorbed yet into `new/` (see the module
    /// header), then compact if the inbox has grown past [`COMPACT_AT`].
    /// Hold the lock.
    pub(super) fn absorb(&self) -> Result<()> {
        if self.absorb_records()?.end >= COMPACT_AT {
            self.compact()?;
        }
        Ok(())
    }

    /// [`Queue::absorb`] without the compaction; returns the counter as it
    /// left it (its depth known).
    fn absorb_records(&self) -> Result<Counter> {
        // A depth left unknown may be an absorb interrupted after a rename:
        // then, and only then, a record's entry may already be in a stage.
        let peeked = self.peek_counter()?;
        let interrupted = peeked.is_none_or(|c| c.depth.is_none());
        let mut c = match peeked {
            Some(c) if !interrupted => c,
            _ => self.read_counter()?,
        };
        if c.absorbed < c.end {
            let Some((f, _)) = self.open_inbox(false)? else {
                bail!(
                    "{} is missing, but its counter says {} bytes were published; run \
                     `muxvisor doctor`",
                    self.inbox_path().display(),
                    c.end
                );
            };
            let bytes = self.read_inbox(&f, c.absorbed..c.end)?;
            let (records, whole) = parse_records(&bytes);
            self.write_counter(&Counter { depth: None, ..c })?;
            for r in &records {
                let name = r.header.name();
                if interrupted && self.stage_of(&name).is_some() {
                    continue;
                }
                let tmp = self.sub("tmp").join(&name);
                let record = &bytes[r.bytes.clone()];
                if fsutil::create_private(&tmp, record).is_err() {
                    // A copy an interrupted absorb left in tmp/: replaced.
                    let _ = fs::remove_file(&tmp);
                    drop(fsutil::create_private(&tmp, record)?);
                }
                fs::rename(&tmp, self.sub("new").join(&name))
                    .with_context(|| format!("moving {} into new/", tmp.display()))?;
                fault("absorb-renamed");
            }
            if whole < bytes.len() {
                // Published records that no longer verify: the disk
                // damaged them. Kept for a human, never run.
                self.quarantine_bytes(
                    &bytes[whole..],
                    "published records of the inbox fail their checks",
                )?;
            }
            // The depth is unchanged: it counted these records already
            // (marked unknown meanwhile, so that a kill in between is
            // recounted, never counted twice). Damaged records leave it:
            // then it is recounted.
            c.absorbed = c.end;
            if records.is_empty() || whole < bytes.len() {
                c.depth = Some(task_names(&self.sub("new"))?.len() as u64);
            }
            self.write_counter(&c)?;
        }
        Ok(c)
    }

    /// Make every record's entry durable where it is and empty the inbox
    /// (see the module header). Before anything removes entries. Hold the
    /// lock.
    pub(super) fn compact(&self) -> Result<()> {
        let mut c = self.absorb_records()?;
        let Some((f, len)) = self.open_inbox(false)? else { return Ok(()) };
        if c.end > 0 {
            let (records, _) = parse_records(&self.read_inbox(&f, 0..c.end)?);
            for r in &records {
                if let Some(stage) = self.stage_of(&r.header.name()) {
                    sync_entry(&self.sub(stage).join(r.header.name()))?;
                }
            }
            for stage in STAGES {
                self.sync_stage(stage)?;
            }
            c.end = 0;
            c.absorbed = 0;
            self.write_counter(&c)?;
        }
        if len > 0 {
            self.truncate_inbox(&f)?;
        }
        Ok(())
    }

    /// After a crash of the machine (the counter cannot be trusted): put
    /// every acknowledged record where it belongs and empty the inbox (see
    /// the module header). Called by [`Queue::read_counter`], with the
    /// lock held; must not read the counter.
    pub(super) fn reconcile_inbox(&self) -> Result<()> {
        let Some((f, len)) = self.open_inbox(false)? else { return Ok(()) };
        if len == 0 {
            return Ok(());
        }
        let bytes = self.read_inbox(&f, 0..len)?;
        let (records, whole) = parse_records(&bytes);
        if whole < bytes.len() {
            self.quarantine_bytes(
                &bytes[whole..],
                "the end of the inbox, cut short by a crash: a send that was never acknowledged",
            )?;
        }
        let mut highest = 0;
        for stage in STAGES {
            for name in task_names(&self.sub(stage))? {
                if let Some((seq, _)) = task::parse_entry_name(&name) {
                    highest = highest.max(seq);
                }
            }
        }
        for r in &records {
            let name = r.header.name();
            let dest = match self.stage_of(&name) {
                Some(stage) if self.load(stage, &name).is_ok() => continue,
                Some(stage) => stage,
                None if r.header.seq > highest => "new",
                None => continue,
            };
            let tmp = self.sub("tmp").join(&name);
            let _ = fs::remove_file(&tmp);
            write_new_file(&tmp, &bytes[r.bytes.clone()], "reconcile-written")?;
            fs::rename(&tmp, self.sub(dest).join(&name))
                .with_context(|| format!("moving {} into {dest}/", tmp.display()))?;
            self.event(
                Event::new("task-restored")
                    .id(&self.id)
                    .kv("task", &r.header.task)
                    .kv("stage", dest),
            );
        }
        for stage in STAGES {
            self.sync_stage(stage)?;
        }
        self.truncate_inbox(&f)
    }

    /// The stage whose directory holds an entry named `name`, if any.
    fn stage_of(&self, name: &str) -> Option<&'static str> {
        STAGES.into_iter().find(|s| fs::symlink_metadata(self.sub(s).join(name)).is_ok())
    }

    /// Keep `bytes` of the inbox that are not a task in `quarantine/`,
    /// with a reason file, and log it.
    fn quarantine_bytes(&self, bytes: &[u8], reason: &str) -> Result<()> {
        let name = format!("inbox-{}", fsutil::unique_suffix());
        let dest = self.sub("quarantine").join(&name);
        write_new_file(&dest, bytes, "quarantine-written")?;
        fsutil::fsync_dir(&self.sub("quarantine"))?;
        self.note_quarantined(&name, "the inbox", &format!("quarantine/{name}"), reason)
    }
}

/// The entry names of the tasks in `dir`'s inbox not moved into `new/`
/// yet, as far as its counter can be trusted (else none): for readers
/// without the lock, which may race a change and be one off.
pub(super) fn unabsorbed_names(dir: &std::path::Path) -> Vec<String> {
    let Some(c) = super::counter::peek(dir) else { return Vec::new() };
    if c.absorbed >= c.end {
        return Vec::new();
    }
    let Ok(Some(f)) = open_regular(&dir.join("inbox")) else { return Vec::new() };
    let Ok(bytes) = read_range(&f, c.absorbed..c.end) else { return Vec::new() };
    parse_records(&bytes).0.iter().map(|r| r.header.name()).collect()
}

/// How many tasks are pending: `new/`'s entries (`new`, sorted) and the
/// inbox's records not absorbed yet (`unabsorbed`), each counted once (an
/// absorb interrupted after a rename has its record in both).
pub(super) fn pending(new: &[String], unabsorbed: &[String]) -> usize {
    new.len() + unabsorbed.iter().filter(|n| new.binary_search(n).is_err()).count()
}

/// The bytes of `range` of `f`; a file shorter than `range` is an error.
fn read_range(f: &File, range: Range<u64>) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; (range.end - range.start) as usize];
    f.read_exact_at(&mut bytes, range.start)?;
    Ok(bytes)
}

/// Open `path` for reading, never following a symlink nor waiting on a
/// FIFO; `None` if it is missing or is not a regular file.
fn open_regular(path: &std::path::Path) -> io::Result<Option<File>> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(f.metadata()?.is_file().then_some(f))
}

/// One record of the inbox: its header and where its bytes are in what
/// was read.
pub(super) struct Record {
    pub header: Header,
    pub bytes: Range<usize>,
}

/// The whole, verified records at the start of `bytes` (read from the
/// inbox at a record's start), and how many bytes they take; parsing stops
/// at the first record that does not verify.
pub(super) fn parse_records(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(nl) = rest.iter().take(task::MAX_HEADER + 1).position(|b| *b == b'\n') else {
            break;
        };
        let Ok(h) = serde_json::from_slice::<Header>(&rest[..nl]) else { break };
        let Some(end) = usize::try_from(h.len).ok().and_then(|l| (nl + 1).checked_add(l)) else {
            break;
        };
        if end > rest.len() || h.len > super::MAX_PAYLOAD as u64 {
            break;
        }
        let Ok((header, _)) = task::decode(&h.name(), &rest[..end]) else { break };
        out.push(Record { header, bytes: at..at + end });
        at += end;
    }
    (out, at)
}

/// Refuse an inbox that is not our own regular, singly linked file.
fn check_inbox(md: &fs::Metadata, path: &std::path::Path) -> Result<()> {
    let euid = fsutil::euid();
    if md.file_type().is_symlink() {
        bail!("{} is a symlink; muxvisor refuses to follow it. Move it away", path.display());
    }
    if !md.file_type().is_file() || md.nlink() > 1 || md.uid() != euid {
        bail!(
            "{} is not a regular file of ours (uid {}, {} links); muxvisor refuses to use it. \
             Move it away",
            path.display(),
            md.uid(),
            md.nlink()
        );
    }
    Ok(())
}

/// fdatasync the entry at `path` (a regular file of ours, never followed).
fn sync_entry(path: &std::path::Path) -> Result<()> {
    let Some(f) = open_regular(path).with_context(|| format!("opening {}", path.display()))? else {
        return Ok(());
    };
    fsutil::sync_file_data(&f).with_context(|| format!("fsync of {}", path.display()))
}
