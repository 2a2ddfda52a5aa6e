//! An agent pool's instances (SPEC §10), one pair of files per worker slot:
//!
//! - `state/<id>.pool-<k>.json`: what the runner of slot `k` keeps there
//!   (the agent's pid, its state and since when, the task it works on),
//!   replaced atomically by that runner, its only writer, at each change,
//!   and read by `status`. A runner that dies leaves it behind: a reader
//!   trusts it only while slot `k`'s runner lives (its lock is held).
//! - `state/<id>.pool-<k>.mark.json`: the newest mark of that instance's
//!   own hooks (`mark <id> ready|busy|blocked` run by the agent, which has
//!   `MUXVISOR_SLOT=k` in its environment), with the transcript path a
//!   Claude Code `Stop` hook passes; `mark` is its only writer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::classify::{AgentState, Mark, Source};
use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::peer::Identity;

/// One instance, as its runner last wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub slot: u32,
    /// The runner that keeps it.
    pub runner_pid: i32,
    /// The agent program's pid (none between a death and its replacement).
    pub pid: Option<i32>,
    pub state: AgentState,
    pub reason: Option<String>,
    /// Where the state came from (a mark, the screen, ...).
    pub source: Source,
    pub since: DateTime<Utc>,
    /// When this agent process was started.
    pub started_at: DateTime<Utc>,
    /// The task it works on.
    pub task: Option<String>,
    /// Tasks it finished since it started.
    pub tasks_done: u64,
    /// Why its agent's start is held by admission (SPEC §9), while it is:
    /// no agent runs (`pid` is none) and the state is `starting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// The newest mark of an instance's hooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMark {
    pub mark: Mark,
    /// Claude Code's `Stop` hook: the conversation's JSONL record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

pub fn path(root: &Root, id: &Identity, slot: u32) -> PathBuf {
    root.state_dir().join(format!("{id}.pool-{slot}.json"))
}

pub fn mark_path(root: &Root, id: &Identity, slot: u32) -> PathBuf {
    root.state_dir().join(format!("{id}.pool-{slot}.mark.json"))
}

fn read<T: for<'de> Deserialize<'de>>(p: &std::path::Path) -> Option<T> {
    fsutil::read_if_exists(p).ok().flatten().and_then(|b| serde_json::from_slice(&b).ok())
}

/// The slots that have an instance file (live or left by a dead runner),
/// in order.
pub fn slots(root: &Root, id: &Identity) -> Vec<u32> {
    let prefix = format!("{id}.pool-");
    let mut out: Vec<u32> = std::fs::read_dir(root.state_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix(&prefix)?.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out
}

/// Every instance file and instance mark file of `id`, with its slot.
pub fn files(root: &Root, id: &Identity) -> Vec<(u32, PathBuf)> {
    let prefix = format!("{id}.pool-");
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(root.state_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(&prefix)?;
            let slot = rest.strip_suffix(".mark.json").or_else(|| rest.strip_suffix(".json"))?;
            Some((slot.parse().ok()?, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The instance of slot `slot` as last written (missing or torn: none).
pub fn load(root: &Root, id: &Identity, slot: u32) -> Option<Instance> {
    read(&path(root, id, slot))
}

pub fn write(root: &Root, id: &Identity, inst: &Instance) -> Result<()> {
    let bytes = serde_json::to_vec(inst)?;
    fsutil::atomic_write(&path(root, id, inst.slot), &bytes)
        .with_context(|| format!("writing instance {} of {id}", inst.slot))
}

pub fn load_mark(root: &Root, id: &Identity, slot: u32) -> Option<SlotMark> {
    read(&mark_path(root, id, slot))
}

pub fn write_mark(root: &Root, id: &Identity, slot: u32, m: &SlotMark) -> Result<()> {
    let bytes = serde_json::to_vec(m)?;
    fsutil::atomic_write(&mark_path(root, id, slot), &bytes)
        .with_context(|| format!("writing the mark of instance {slot} of {id}"))
}

/// Forget an instance that ended (its runner retired or starts a new agent).
pub fn remove(root: &Root, id: &Identity, slot: u32) {
    let _ = fsutil::remove_if_exists(&path(root, id, slot));
    let _ = fsutil::remove_if_exists(&mark_path(root, id, slot));
}

/// Forget only the marks (a new agent process in the slot: the old one's
/// hooks spoke for it, not for this one).
pub fn remove_mark(root: &Root, id: &Identity, slot: u32) {
    let _ = fsutil::remove_if_exists(&mark_path(root, id, slot));
}
