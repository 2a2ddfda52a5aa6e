//! `run/_notify.cursor` and reading the two event logs past it: one mark
//! per file on disk (device, inode, the start of its first line, the offset
//! delivered up to), so that a rotation neither loses nor repeats a line
//! (see the module header of `notify`).

use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LOGS;
use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::events::Record;

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

    pub(super) fn save(&self, root: &Root) -> Result<()> {
        let bytes = serde_json::to_vec(self).context("encoding the notification cursor")?;
        fsutil::atomic_write(&root.notify_cursor(), &bytes)
    }

    /// Record that `log`'s file `file` is delivered up to `offset`.
    pub(super) fn advance(&mut self, log: &str, file: &Mark, offset: u64) {
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

pub(super) fn same_file(known: &Mark, file: &Mark) -> bool {
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

/// One complete line read past the cursor.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub(super) log: &'static str,
    pub(super) file: Mark,
    /// Offset just past the line in its file.
    pub(super) end: u64,
    pub(super) rec: Option<Record>,
}

/// What is new in both logs: per log, its items in file order, and a mark
/// per file at the end of what was read.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) items: Vec<Vec<Item>>,
    pub(super) ends: Vec<(&'static str, Mark)>,
}

pub(super) const HEAD_LEN: usize = 64;

pub(super) fn open_generation(path: &Path) -> Result<Option<(File, Mark, u64)>> {
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
pub(super) fn read_log(
    log: &Path,
    name: &'static str,
    known: &[Mark],
    batch: &mut Batch,
) -> Result<()> {
    // The live file first: see the module header.
    let current = open_generation(log)?;
    let old = open_generation(&crate::ground::rotate::rotated_name(log))?;
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

pub(super) fn read_batch(root: &Root, cursor: &Cursor) -> Result<Batch> {
    let mut batch = Batch::default();
    for (name, path) in LOGS.iter().zip([root.lifecycle_log(), root.exits_log()]) {
        let known = cursor.logs.get(*name).map(Vec::as_slice).unwrap_or_default();
        read_log(&path, name, known, &mut batch)?;
    }
    Ok(batch)
}

/// Drop the marks of files no longer on disk.
pub(super) fn keep_present(cursor: &mut Cursor, batch: &Batch) {
    for (log, marks) in cursor.logs.iter_mut() {
        marks.retain(|m| batch.ends.iter().any(|(l, e)| l == log && same_file(m, e)));
    }
}
