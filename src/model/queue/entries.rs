//! The entries of a queue's stage directories (`new/`, `cur/`, `done/`,
//! `dead/`): reading and verifying one (never following or blocking on
//! anything foreign), writing one durably through `tmp/`, moving one to the
//! dead letters or to `quarantine/`, and finding the running one, stale
//! copies of interrupted moves resolved. Callers hold `queue.lock`.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use super::{Claimed, Header, Queue, fault, fault_eio, task};
use crate::ground::fsutil;
use crate::model::logfmt::Event;

impl Queue {
    /// Write `h`+`payload` via `tmp/` into `stage/<name>`, durably. An
    /// entry written into `new/` is `movable` (a claim may move it as it
    /// is); one written anywhere else holds its true header and is not.
    pub(super) fn install(&self, h: &Header, payload: &[u8], stage: &str) -> Result<()> {
        let name = h.name();
        let tmp = self.sub("tmp").join(&name);
        let _ = fs::remove_file(&tmp);
        let h = Header { movable: stage == "new", ..h.clone() };
        write_new_file(&tmp, &task::encode(&h, payload)?, "install-written")?;
        let dest = self.sub(stage).join(&name);
        fs::rename(&tmp, &dest)
            .with_context(|| format!("moving {} into {stage}/", tmp.display()))?;
        self.sync_stage(stage)
    }

    pub(super) fn dead_letter_locked(
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
        if stage == "cur" {
            // The claim that put it in `cur/` may have left its removal
            // from `new/` unsynced, in this process or in a runner that
            // died (see the module header): durable before its end is.
            fsutil::fsync_dir(&self.sub("new"))?;
            self.unsettled.set(false);
        }
        self.install(h, payload, "dead")?;
        self.remove_durably_in(stage, &name)?;
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

    pub(super) fn find_in(&self, stage: &str, task: &str) -> Result<Option<String>> {
        let task = task.to_ascii_lowercase();
        Ok(task_names(&self.sub(stage))?.into_iter().find(|n| name_task(n) == Some(task.as_str())))
    }

    /// Read and verify `stage/name`. Refuses anything that is not a regular,
    /// singly linked, own, bounded file, without following or blocking on it.
    pub(super) fn load(&self, stage: &str, name: &str) -> Result<(Header, Vec<u8>)> {
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
        let (h, payload) = task::decode(name, &bytes)?;
        if stage == "new" || !h.movable {
            return Ok((h, payload));
        }
        // Moved here by a claim, unchanged: its modification time is the
        // claim's (see `Queue::claim_locked`).
        let moved_at = md2.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
        Ok((h.claimed_by_move(moved_at), payload))
    }

    /// First verified task of `stage` in FIFO order; damaged ones in front
    /// of it are quarantined.
    pub(super) fn first_valid(&self, stage: &str) -> Result<Option<(Header, Vec<u8>)>> {
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

    pub(super) fn all_valid(&self, stage: &str) -> Result<Vec<(Header, Vec<u8>)>> {
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

    pub(super) fn sweep_locked(&self, stage: &str) -> Result<usize> {
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
    pub(super) fn sweep_names(&self, stage: &str) -> Result<usize> {
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
    pub(super) fn quarantine(&self, stage: &str, name: &str, reason: &str) -> Result<()> {
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
        self.sync_stage(stage)?;
        self.note_quarantined(
            &dest_name,
            &format!("{stage}/{name:?}"),
            &format!("{stage}/{name}"),
            reason,
        )
    }

    /// What `quarantine/<dest_name>` is: its reason file (`from FROM`,
    /// `reason: REASON`, the form `queue list` reads back), then
    /// `ev=task-dead reason=corrupt` naming `entry` (and its task, if the
    /// entry's name is a task's).
    pub(super) fn note_quarantined(
        &self,
        dest_name: &str,
        from: &str,
        entry: &str,
        reason: &str,
    ) -> Result<()> {
        let text = format!("from {from}\nreason: {reason}\n");
        fsutil::atomic_write(
            &self.sub("quarantine").join(format!("{dest_name}.reason")),
            text.as_bytes(),
        )?;
        let name = entry.rsplit('/').next().unwrap_or_default();
        let task = task::parse_entry_name(name).map(|(_, t)| t.to_string()).unwrap_or_default();
        self.event(
            Event::new("task-dead")
                .id(&self.id)
                .kv("task", task)
                .kv("reason", "corrupt")
                .kv("entry", entry)
                .kv("detail", reason),
        );
        Ok(())
    }

    /// The task in `cur/`, after removing stale copies whose move already
    /// completed elsewhere (`new/`, `done/` or `dead/` has the same name).
    pub(super) fn running_locked(&self) -> Result<Option<Claimed>> {
        Ok(self.all_running_locked()?.into_iter().next())
    }

    /// Every claimed task in `cur/`, in queue order, stale copies of
    /// interrupted moves dropped and damaged entries quarantined on the way.
    pub(super) fn all_running_locked(&self) -> Result<Vec<Claimed>> {
        self.sweep_names("cur")?;
        let mut out = Vec::new();
        for name in task_names(&self.sub("cur"))? {
            let twin = ["new", "done", "dead"]
                .iter()
                .any(|s| fs::symlink_metadata(self.sub(s).join(&name)).is_ok());
            if twin {
                self.remove_durably_in("cur", &name)?;
                continue;
            }
            match self.load("cur", &name) {
                Ok((header, payload)) => out.push(Claimed { header, payload }),
                Err(e) if is_not_found(&e) => continue,
                Err(e) => self.quarantine("cur", &name, &format!("{e:#}"))?,
            }
        }
        Ok(out)
    }

    /// The claimed task `task`, if it is in `cur/`.
    pub(super) fn running_task_locked(&self, task: &str) -> Result<Option<Claimed>> {
        Ok(self.all_running_locked()?.into_iter().find(|c| c.header.task == task))
    }

    /// A pending or running task carrying dedupe key `key`.
    pub(super) fn find_dedupe(&self, key: &str) -> Result<Option<String>> {
        if let Some(c) =
            self.all_running_locked()?.into_iter().find(|c| c.header.dedupe.as_deref() == Some(key))
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

pub(super) fn check_entry(md: &fs::Metadata) -> Result<()> {
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
    let euid = fsutil::euid();
    if md.uid() != euid {
        bail!("entry is owned by uid {}, not by us (uid {euid})", md.uid());
    }
    if md.len() > task::MAX_FILE {
        bail!("entry is {} bytes, over the {} byte limit", md.len(), task::MAX_FILE);
    }
    Ok(())
}

/// The task id part of an entry name.
pub(super) fn name_task(name: &str) -> Option<&str> {
    task::parse_entry_name(name).map(|(_, t)| t)
}

/// Entry names of `dir` that are task names, sorted (= FIFO order). A
/// missing directory is empty.
pub(super) fn task_names(dir: &Path) -> Result<Vec<String>> {
    // `list_dir` sorts full paths; in one directory that is name order.
    Ok(fsutil::list_dir(dir)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .filter(|n| task::parse_entry_name(n).is_some())
        .map(str::to_string)
        .collect())
}

pub(super) fn remove_any(p: &Path) -> Result<()> {
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

pub(super) fn remove_durably(p: &Path) -> Result<()> {
    fsutil::remove_if_exists(p)?;
    fsutil::fsync_dir(p.parent().context("a queue entry has a parent")?)
}

/// Create `path` exclusively (0600, never through a symlink), write `bytes`
/// and fsync it. A failure removes the partial file; nothing is retried.
pub(super) fn write_new_file(path: &Path, bytes: &[u8], step: &str) -> Result<()> {
    let result = (|| -> Result<()> {
        let f = fsutil::create_private(path, bytes)?;
        crate::ground::trace::mark("written");
        fault(step);
        fault_eio("eio-file-fsync").with_context(|| format!("fsync of {}", path.display()))?;
        fsutil::sync_file_data(&f).with_context(|| format!("fsync of {}", path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

pub(super) fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::NotFound)
    })
}

/// Disk full, quota exceeded, or an I/O error: the caller should retry later.
pub(super) fn is_temp_io(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|n| n == libc::ENOSPC || n == libc::EDQUOT || n == libc::EIO)
    })
}
