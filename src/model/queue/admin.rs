//! The admin verbs of `muxvisor queue <id>`: what a person asks of a queue
//! (list it, show one task or quarantined entry) and what a person does to
//! it (retry a dead letter at the tail, remove one task, purge all pending
//! and dead ones). Never the running task: that one belongs to its runner.

use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::counter::Counter;
use super::entries::{name_task, remove_any, remove_durably, task_names};
use super::{Header, Queue, TaskMeta, TaskOutcome, task};
use crate::ground::fsutil;
use crate::model::logfmt::Event;
use crate::model::peer::Identity;

/// An entry in `quarantine/`, as `queue list` and `queue show` report it.
#[derive(Clone, Debug, Serialize)]
pub struct QuarantineMeta {
    /// Its name in `quarantine/` (what `queue show` takes).
    pub entry: String,
    /// Where it was found: `new/<name>` or `cur/<name>`.
    pub from: String,
    pub reason: String,
    /// The task id its name carried, if it was a task's name.
    pub task: Option<String>,
    pub bytes: u64,
    /// When it was quarantined.
    pub at: Option<DateTime<Utc>>,
}
/// A dead letter as `list --dead` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeadMeta {
    #[serde(flatten)]
    pub meta: TaskMeta,
    pub reason: String,
}

/// Everything `queue list` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    pub pending: Vec<TaskMeta>,
    pub running: Vec<TaskMeta>,
    pub dead: Vec<DeadMeta>,
    pub quarantined: Vec<QuarantineMeta>,
}

/// One task in full, for `queue show`.
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    /// `pending`, `running`, `done` or `dead`.
    pub stage: &'static str,
    #[serde(flatten)]
    pub meta: TaskMeta,
    /// 1-based place in the FIFO when pending.
    pub position: Option<usize>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub outcome: Option<TaskOutcome>,
    pub reason: Option<String>,
}
impl Queue {
    /// Pending (FIFO order), running, and dead tasks. Damaged entries are
    /// quarantined on the way.
    pub fn list(&self) -> Result<Listing> {
        let _lock = self.lock()?;
        let running: Vec<TaskMeta> =
            self.all_running_locked()?.iter().map(|c| TaskMeta::running(&c.header)).collect();
        let pending = self.all_valid("new")?.iter().map(|(h, _)| TaskMeta::from(h)).collect();
        let mut dead = Vec::new();
        for name in task_names(&self.sub("dead"))? {
            let Ok((h, _)) = self.load("dead", &name) else { continue };
            let reason = read_text(&self.sub("dead").join(format!("{name}.reason")));
            dead.push(DeadMeta { meta: TaskMeta::from(&h), reason: first_word(&reason) });
        }
        let quarantined = self.quarantined_locked()?;
        Ok(Listing { pending, running, dead, quarantined })
    }

    /// One quarantined entry, by its `quarantine/` name or the task id its
    /// name carried, with the first `head` bytes of its content.
    pub fn show_quarantined(&self, key: &str, head: usize) -> Result<(QuarantineMeta, Vec<u8>)> {
        let _lock = self.lock()?;
        let Some(m) = self
            .quarantined_locked()?
            .into_iter()
            .find(|m| m.entry == key || m.task.as_deref() == Some(key))
        else {
            return Err(unknown_task(&self.id, key));
        };
        let mut content = Vec::new();
        if let Ok(Some(f)) = fsutil::open_read(&self.sub("quarantine").join(&m.entry))
            && f.metadata().is_ok_and(|md| md.is_file())
        {
            let _ = f.take(head as u64).read_to_end(&mut content);
        }
        Ok((m, content))
    }

    /// Every entry of `quarantine/` with its reason (oldest first).
    pub(super) fn quarantined_locked(&self) -> Result<Vec<QuarantineMeta>> {
        let dir = self.sub("quarantine");
        let mut out = Vec::new();
        for p in fsutil::list_dir(&dir)? {
            let Some(entry) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            if entry.ends_with(".reason") {
                continue;
            }
            let text = read_text(&dir.join(format!("{entry}.reason")));
            let mut lines = text.lines();
            let from = lines
                .next()
                .and_then(|l| l.strip_prefix("from "))
                .map(|l| l.replace('"', ""))
                .unwrap_or_default();
            let reason = lines
                .next()
                .and_then(|l| l.strip_prefix("reason: "))
                .unwrap_or("(no reason recorded)")
                .to_string();
            let task = from
                .rsplit('/')
                .next()
                .and_then(task::parse_entry_name)
                .map(|(_, t)| t.to_string());
            let md = fs::symlink_metadata(&p).ok();
            let at = fs::symlink_metadata(dir.join(format!("{entry}.reason")))
                .ok()
                .and_then(|m| m.modified().ok())
                .map(DateTime::<Utc>::from);
            out.push(QuarantineMeta {
                entry,
                from,
                reason,
                task,
                bytes: md.map(|m| m.len()).unwrap_or(0),
                at,
            });
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.entry.cmp(&b.entry)));
        Ok(out)
    }

    /// One task wherever it is.
    pub fn show(&self, task: &str) -> Result<Shown> {
        let task = &task.to_ascii_lowercase();
        let _lock = self.lock()?;
        if let Some(c) = self.running_task_locked(task)? {
            return Ok(Shown {
                stage: "running",
                meta: TaskMeta::running(&c.header),
                position: None,
                payload: c.payload,
                outcome: None,
                reason: None,
            });
        }
        let pending = task_names(&self.sub("new"))?;
        if let Some(pos) = pending.iter().position(|n| name_task(n) == Some(task)) {
            let (h, payload) = self.load("new", &pending[pos])?;
            return Ok(Shown {
                stage: "pending",
                meta: TaskMeta::from(&h),
                position: Some(pos + 1),
                payload,
                outcome: None,
                reason: None,
            });
        }
        for stage in ["done", "dead"] {
            if let Some(name) = self.find_in(stage, task)? {
                let (h, payload) = self.load(stage, &name)?;
                let outcome =
                    fsutil::read_if_exists(&self.sub("done").join(format!("{name}.outcome")))?
                        .filter(|_| stage == "done")
                        .and_then(|b| serde_json::from_slice(&b).ok());
                let reason = (stage == "dead")
                    .then(|| read_text(&self.sub("dead").join(format!("{name}.reason"))));
                return Ok(Shown {
                    stage: if stage == "done" { "done" } else { "dead" },
                    meta: TaskMeta::from(&h),
                    position: None,
                    payload,
                    outcome,
                    reason,
                });
            }
        }
        Err(unknown_task(&self.id, task))
    }

    /// Put dead letter `task` back at the TAIL (new sequence number, attempts
    /// reset). Returns the new depth.
    pub fn retry(&self, task: &str) -> Result<usize> {
        let _lock = self.lock()?;
        let Some(name) = self.find_in("dead", task)? else {
            if self.find_in("new", task)?.is_some() {
                bail!("task {task} of {} is already pending", self.id);
            }
            return Err(unknown_task(&self.id, task).context("only dead letters can be retried"));
        };
        if self.find_in("new", task)?.is_some() {
            // An earlier retry published it and died before removing this copy.
            fsutil::remove_if_exists(&self.sub("dead").join(format!("{name}.reason")))?;
            remove_durably(&self.sub("dead").join(&name))?;
            return self.recount();
        }
        let (old, payload) = self.load("dead", &name)?;
        let c = self.read_counter()?;
        // A fresh enqueue time: the TTL that may have killed it restarts.
        let mut h = Header::new(task, c.seq + 1, Utc::now(), old.dedupe.as_deref(), &payload);
        h.last_error = old.last_error;
        self.write_counter(&Counter { seq: c.seq + 1, depth: None, ..c })?;
        self.install(&h, &payload, "new")?;
        fsutil::remove_if_exists(&self.sub("dead").join(format!("{name}.reason")))?;
        remove_durably(&self.sub("dead").join(&name))?;
        let depth = self.recount()?;
        self.event(
            Event::new("enqueue").id(&self.id).kv("task", task).kv("depth", depth).kv("retry", 1),
        );
        Ok(depth)
    }

    /// Remove one pending or dead task (never the running one).
    pub fn rm(&self, task: &str) -> Result<&'static str> {
        let _lock = self.lock()?;
        if self.running_task_locked(task)?.is_some() {
            bail!(
                "task {task} of {} is running; stop the worker first (`muxvisor stop {}`)",
                self.id,
                self.id
            );
        }
        for stage in ["new", "dead"] {
            if let Some(name) = self.find_in(stage, task)? {
                // A removed entry must not come back from the inbox.
                self.compact()?;
                if stage == "dead" {
                    fsutil::remove_if_exists(&self.sub("dead").join(format!("{name}.reason")))?;
                }
                self.changing_new(None, || remove_durably(&self.sub(stage).join(&name)))?;
                return Ok(if stage == "new" { "pending" } else { "dead" });
            }
        }
        Err(unknown_task(&self.id, task))
    }

    /// Remove every pending and dead task (not the running one). Returns
    /// how many.
    pub fn purge(&self) -> Result<usize> {
        let _lock = self.lock()?;
        // What is removed must not come back from the inbox.
        self.compact()?;
        self.mark_depth_unknown()?;
        let mut n = 0;
        for stage in ["new", "dead"] {
            for p in fsutil::list_dir(&self.sub(stage))? {
                let is_task = p
                    .file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| task::parse_entry_name(f).is_some());
                remove_any(&p)?;
                n += usize::from(is_task);
            }
            fsutil::fsync_dir(&self.sub(stage))?;
        }
        self.recount()?;
        Ok(n)
    }
}

pub(super) fn unknown_task(id: &Identity, task: &str) -> anyhow::Error {
    anyhow!("no task {task:?} in the queue of {id}; see `muxvisor queue {id} list --dead`")
}

pub(super) fn read_text(p: &Path) -> String {
    fsutil::read_if_exists(p)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

pub(super) fn first_word(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}
