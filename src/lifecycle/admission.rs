//! Admission (SPEC §9): launches are admitted by capacity, so that a fleet
//! coming back after a reboot or a mass crash does not start every agent at
//! once (nine parallel agent launches have pushed a load average past 100
//! and woken the OOM killer).
//!
//! Two limits, from the environment (`MUXVISOR_MAX_STARTING`, default 2;
//! `MUXVISOR_MIN_MEM_AVAILABLE`, e.g. `2G`, unset for no floor) or from
//! `supervise --max-starting N --min-mem-available SIZE` (which `service
//! install` carries into the periodic tick):
//! - no more than `max_starting` **agents** (persistent peers with an
//!   `--agent` preset or a ready pattern, whose readiness means something,
//!   and the instances of agent pools, SPEC §10) may be `starting` at once:
//!   launched and not yet ready, blocked or dead, for at most [`START_SLOT`]
//!   (5 minutes) each;
//! - no launch while the machine's available memory is under the floor.
//!
//! A launch that is held is not an error and uses no restart budget: the
//! peer's state records it (`status` shows `queued` with the reason), it is
//! logged once (`ev=admission-held`), and the admitter ([`run_admitter`],
//! started by whoever held it) launches it as soon as the limits allow; the
//! tick does too, as the safety net. The check and the launch run under `run/admission.lock`,
//! so that launches racing each other (the tick's threads, a `launch` from
//! a shell) cannot all see room for one more.
//!
//! An agent pool's instance is admitted by its own runner, before each
//! start of its agent (a warm start, a refill, a replacement after a death:
//! [`instance_held`]); a held instance waits in its runner, its instance
//! file says why (`status`), and `ev=admission-held` with its `slot` is
//! logged once per hold. The runner takes the limits the last `supervise`
//! ran with ([`record_limits`], `run/admission-limits.json`: its flags laid
//! over its environment), so that `supervise --max-starting` reaches the
//! pools of the fleet it supervises; with no tick yet, its own environment
//! (`MUXVISOR_MAX_STARTING`, `MUXVISOR_MIN_MEM_AVAILABLE`, as `launch`
//! does), which is that of whoever started the pool's server.

use std::time::Duration;

use anyhow::{Result, bail};
use chrono::Utc;

use crate::ground::fsutil::{self, LockGuard};
use crate::ground::paths::Root;
use crate::model::agent::classify::AgentState;
use crate::model::logfmt::Event;
use crate::model::peer::{self, Identity, PeerSpec};
use crate::model::peer_state;

/// How long a start holds a slot at most: an agent whose ready pattern never
/// matches (a new version that words its prompt differently) must not hold
/// the rest of the fleet back forever.
pub const START_SLOT: Duration = Duration::from_secs(300);

/// Default of `MUXVISOR_MAX_STARTING`.
pub const DEFAULT_MAX_STARTING: usize = 2;

/// The limits in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub max_starting: usize,
    /// Bytes of available memory below which nothing is launched.
    pub min_mem_available: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_starting: DEFAULT_MAX_STARTING, min_mem_available: None }
    }
}

impl Limits {
    /// From `MUXVISOR_MAX_STARTING` and `MUXVISOR_MIN_MEM_AVAILABLE`; a
    /// value that does not parse is an error naming it.
    pub fn from_env() -> Result<Limits> {
        let mut l = Limits::default();
        if let Some(v) = std::env::var_os("MUXVISOR_MAX_STARTING") {
            let v = v.to_string_lossy();
            l.max_starting = v.trim().parse().map_err(|_| {
                anyhow::anyhow!("MUXVISOR_MAX_STARTING={v:?} is not a whole number (e.g. 2)")
            })?;
        }
        if let Some(v) = std::env::var_os("MUXVISOR_MIN_MEM_AVAILABLE") {
            let v = v.to_string_lossy();
            if !v.trim().is_empty() {
                l.min_mem_available = Some(
                    parse_size(&v)
                        .map_err(|e| anyhow::anyhow!("MUXVISOR_MIN_MEM_AVAILABLE={v:?}: {e}"))?,
                );
            }
        }
        Ok(l)
    }
}

impl Limits {
    /// These limits with the command-line flags (`--max-starting N`,
    /// `--min-mem-available SIZE`) laid over them, checked: every command
    /// that launches under admission gets its limits here (`launch` with no
    /// flags), so a value that would hold every launch forever is refused
    /// the same way by all of them.
    pub fn with_flags(
        mut self,
        max_starting: Option<usize>,
        min_mem: Option<&str>,
    ) -> Result<Limits> {
        if let Some(n) = max_starting {
            self.max_starting = n;
        }
        if let Some(s) = min_mem {
            self.min_mem_available =
                Some(parse_size(s).map_err(|e| anyhow::anyhow!("--min-mem-available: {e}"))?);
        }
        if self.max_starting == 0 {
            let given = match max_starting {
                Some(_) => "--max-starting 0",
                None => "MUXVISOR_MAX_STARTING=0",
            };
            bail!("{given} would never start an agent; give 1 or more");
        }
        Ok(self)
    }
}

fn limits_file(root: &Root) -> std::path::PathBuf {
    root.run_dir().join("admission-limits.json")
}

/// Record the limits a `supervise` runs with, for the starts it does not
/// make itself (an agent pool's instances, whose runners live in the pool's
/// server): written only when they changed, atomically.
pub fn record_limits(root: &Root, limits: &Limits) -> Result<()> {
    if recorded_limits(root).as_ref() == Some(limits) {
        return Ok(());
    }
    let bytes = serde_json::to_vec(limits)?;
    fsutil::atomic_write(&limits_file(root), &bytes)
}

/// The limits the last `supervise` recorded, if any (an unreadable record
/// counts as none: the caller's own limits apply).
pub fn recorded_limits(root: &Root) -> Option<Limits> {
    let bytes = fsutil::read_if_exists(&limits_file(root)).ok()??;
    serde_json::from_slice::<Limits>(&bytes).ok().filter(|l| l.max_starting > 0)
}

/// The limits for a start that no `supervise` makes (an agent pool's
/// instance): the last `supervise`'s, else this process's environment.
pub fn limits_for_pool(root: &Root) -> Result<Limits> {
    match recorded_limits(root) {
        Some(l) => Ok(l),
        None => Limits::from_env()?.with_flags(None, None),
    }
}

/// `2G`, `512M`, `1.5G`, `64K`, or bare bytes (powers of 1024). Pure.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let mult: u64 = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("unknown unit {unit:?}: use K, M, G or T (or bytes)")),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a size such as 2G"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{s:?} is not a size such as 2G"));
    }
    Ok((n * mult as f64) as u64)
}

/// `1.5G` for a byte count. Pure.
pub fn format_size(b: u64) -> String {
    let g = b as f64 / (1u64 << 30) as f64;
    if g >= 1.0 { format!("{g:.1}G") } else { format!("{}M", b >> 20) }
}

/// Hold `run/admission.lock` while checking and launching.
pub fn lock(root: &Root) -> Result<LockGuard> {
    fsutil::lock_within(
        &root.run_dir().join("_admission.lock"),
        Duration::from_secs(30),
        "admission of a launch",
    )
}

/// Agents (other than `except`) that are starting now: their record of
/// this incarnation says starting, and their program still runs.
pub fn starting(root: &Root, except: Option<&Identity>) -> Result<Vec<Identity>> {
    let mut out = Vec::new();
    for id in peer::list(root)? {
        if Some(&id) == except {
            continue;
        }
        let Ok(Some(spec)) = peer::load(root, &id) else { continue };
        if !spec.is_agent() {
            continue;
        }
        let Ok(st) = peer_state::load(root, &id) else { continue };
        if st.stopped || st.launched_at.is_none() {
            continue;
        }
        let rec = crate::model::agent::record::load(root, &id).for_incarnation(st.launched_at);
        let is_starting = rec.last.as_ref().is_some_and(|l| l.state == AgentState::Starting);
        // A program that died while starting holds no slot, even before a
        // look recorded its death.
        let recent = st.launched_at.is_some_and(|t| {
            Utc::now().signed_duration_since(t).to_std().unwrap_or_default() < START_SLOT
        });
        if is_starting && recent && st.pane_pid.is_some_and(crate::ground::proc::alive) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Why `spec` may not be launched now, if it may not. A peer whose program
/// runs is never held: launching it starts nothing (`already`), and a hold
/// recorded then would show it `queued` after its next death.
pub fn held(root: &Root, spec: &PeerSpec, limits: &Limits) -> Result<Option<String>> {
    if let Ok(st) = peer_state::load(root, &spec.identity)
        && !st.stopped
        && st.pane_pid.is_some_and(crate::ground::proc::alive)
    {
        return Ok(None);
    }
    if let Some(why) = under_floor(limits) {
        return Ok(Some(why));
    }
    if !spec.is_agent() {
        return Ok(None);
    }
    let mut busy: Vec<String> =
        starting(root, Some(&spec.identity))?.iter().map(|i| i.to_string()).collect();
    busy.extend(starting_instances(root, None)?);
    Ok(too_many(&busy, limits))
}

/// Why the agent of instance `slot` of pool `spec` may not start now, if
/// it may not: the memory floor, or `max_starting` agents (persistent ones
/// and other instances) starting already.
pub fn instance_held(
    root: &Root,
    spec: &PeerSpec,
    slot: u32,
    limits: &Limits,
) -> Result<Option<String>> {
    if let Some(why) = under_floor(limits) {
        return Ok(Some(why));
    }
    let mut busy: Vec<String> = starting(root, None)?.iter().map(|i| i.to_string()).collect();
    busy.extend(starting_instances(root, Some((&spec.identity, slot)))?);
    Ok(too_many(&busy, limits))
}

fn under_floor(limits: &Limits) -> Option<String> {
    let floor = limits.min_mem_available?;
    let avail = crate::ground::proc::mem_available()?;
    (avail < floor).then(|| {
        format!(
            "available memory {} is under the floor of {} (MUXVISOR_MIN_MEM_AVAILABLE)",
            format_size(avail),
            format_size(floor)
        )
    })
}

fn too_many(busy: &[String], limits: &Limits) -> Option<String> {
    (busy.len() >= limits.max_starting).then(|| {
        format!(
            "{} agents are starting ({}), the most at once (MUXVISOR_MAX_STARTING={})",
            busy.len(),
            busy.join(", "),
            limits.max_starting
        )
    })
}

/// Agent pool instances (other than `except`) that are starting now: their
/// runner lives and last wrote `starting` for an agent that runs, started
/// less than [`START_SLOT`] ago. Named `<id>/<slot>`.
pub fn starting_instances(root: &Root, except: Option<(&Identity, u32)>) -> Result<Vec<String>> {
    use crate::model::agent::instance;
    let mut out = Vec::new();
    for id in peer::list(root)? {
        let Ok(Some(spec)) = peer::load(root, &id) else { continue };
        if !spec.is_pool() {
            continue;
        }
        for slot in instance::slots(root, &id) {
            if except == Some((&id, slot)) {
                continue;
            }
            let Some(i) = instance::load(root, &id, slot) else { continue };
            let recent =
                Utc::now().signed_duration_since(i.started_at).to_std().unwrap_or_default()
                    < START_SLOT;
            if i.state == AgentState::Starting
                && i.held.is_none()
                && recent
                && crate::ground::proc::alive(i.runner_pid)
                && i.pid.is_some_and(crate::ground::proc::alive)
            {
                out.push(format!("{id}/{slot}"));
            }
        }
    }
    Ok(out)
}

/// Record that `id`'s launch is held (the first time: `ev=admission-held`);
/// `fresh` if it asked for a new conversation (kept until the launch).
pub fn note_held(root: &Root, id: &Identity, reason: &str, fresh: bool) -> Result<()> {
    let _l = fsutil::lock_within(&root.id_lock(id), Duration::from_secs(5), "admission")?;
    let mut new_hold = false;
    peer_state::update(root, id, |st| {
        // Logged once per hold; the reason shown by status follows changes.
        new_hold = st.held.is_none();
        match st.held.as_mut() {
            None => {
                st.held =
                    Some(peer_state::Held { reason: reason.to_string(), since: Utc::now(), fresh })
            }
            Some(h) => {
                h.reason = reason.to_string();
                h.fresh |= fresh;
            }
        }
    })?;
    if new_hold {
        Event::new("admission-held")
            .id(id)
            .kv("reason", reason)
            .append_to(&root.lifecycle_log())?;
    }
    Ok(())
}

/// How a held launch starts once admitted: fresh if it was asked so.
pub fn start_of_hold(root: &Root, id: &Identity) -> crate::lifecycle::session::Start {
    let fresh = peer_state::load(root, id).ok().and_then(|st| st.held).is_some_and(|h| h.fresh);
    if fresh {
        crate::lifecycle::session::Start::Fresh
    } else {
        crate::lifecycle::session::Start::Program
    }
}

/// True while `id`'s launch is still held: checked again right before a
/// held launch starts, so a `stop` that cancelled the hold since the
/// holds were listed is obeyed.
pub fn still_held(root: &Root, id: &Identity) -> bool {
    peer_state::load(root, id).is_ok_and(|st| st.held.is_some() && !st.stopped)
}

/// Held peers whose program is not running, oldest hold first.
pub fn held_peers(root: &Root) -> Result<Vec<PeerSpec>> {
    let mut out = Vec::new();
    for id in peer::list(root)? {
        let Ok(Some(spec)) = peer::load(root, &id) else { continue };
        let Ok(st) = peer_state::load(root, &id) else { continue };
        let Some(h) = st.held else { continue };
        if st.stopped || st.pane_pid.is_some_and(crate::ground::proc::alive) {
            continue;
        }
        out.push((h.since, spec));
    }
    out.sort_by_key(|(since, _)| *since);
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

fn admitter_lock(root: &Root) -> std::path::PathBuf {
    root.run_dir().join("_admitter.lock")
}

/// Start the admitter (`_admit`) unless one runs: held launches then start
/// as soon as there is room, not at the next tick.
pub fn ensure_admitter(root: &Root, limits: &Limits) -> Result<bool> {
    if fsutil::is_locked(&admitter_lock(root)).unwrap_or(false) {
        return Ok(false);
    }
    let max = limits.max_starting.to_string();
    let floor = limits.min_mem_available.map(|b| b.to_string());
    let mut args = vec!["_admit", "--max-starting", &max];
    if let Some(f) = &floor {
        args.extend(["--min-mem-available", f]);
    }
    crate::ground::detach::spawn_detached(root, &args, "the admitter")?;
    Ok(true)
}

/// How often the admitter looks.
const ADMIT_POLL: Duration = Duration::from_millis(250);
/// The admitter's longest life; the tick starts another while holds remain.
const ADMIT_MAX_LIFE: Duration = Duration::from_secs(900);

/// `_admit`: a detached process, at most one per root, alive only while
/// launches are held. A few times a second it looks at the agents that are
/// starting (so that one that became ready frees its slot) and launches
/// held peers, oldest hold first, as the limits allow. It retires like the
/// courier: it releases its lock, then looks for holds once more.
pub fn run_admitter(root: &Root, limits: Limits) -> Result<()> {
    let limits = Limits { max_starting: limits.max_starting.max(1), ..limits };
    if !crate::ground::detach::detach()? {
        return Ok(());
    }
    if let Err(e) = admitter(root, &limits) {
        let _ = Event::new("admitter-error")
            .kv("reason", format!("{e:#}"))
            .append_to(&root.lifecycle_log());
    }
    Ok(())
}

fn admitter(root: &Root, limits: &Limits) -> Result<()> {
    let path = admitter_lock(root);
    let Some(own) = fsutil::try_lock(&path)? else { return Ok(()) };
    let mut own = Some(own);
    let born = std::time::Instant::now();
    while born.elapsed() < ADMIT_MAX_LIFE {
        let mut waiting = held_peers(root)?;
        if waiting.is_empty() {
            drop(own.take());
            waiting = held_peers(root)?;
            if waiting.is_empty() {
                return Ok(());
            }
            let Some(again) = fsutil::try_lock(&path)? else { return Ok(()) };
            own = Some(again);
        }
        // Refresh the agents that hold slots: a look records a ready one.
        for id in starting(root, None)? {
            if let Ok(Some(spec)) = peer::load(root, &id) {
                let _ = crate::lifecycle::agent::watch::Looker::once().look_and_record(root, &spec);
            }
        }
        for spec in waiting {
            let _guard = lock(root)?;
            if !still_held(root, &spec.identity) {
                continue;
            }
            if held(root, &spec, limits)?.is_some() {
                break;
            }
            // A launch that fails is the tick's to handle (its budget, its
            // backoff): the hold ends here either way.
            let start = start_of_hold(root, &spec.identity);
            if crate::lifecycle::session::launch(root, &spec, start).is_err() {
                let id = &spec.identity;
                let _l =
                    fsutil::lock_within(&root.id_lock(id), Duration::from_secs(5), "admitter")?;
                peer_state::update(root, id, |st| st.held = None)?;
            }
        }
        std::thread::sleep(ADMIT_POLL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_is_logged_once_and_keeps_a_fresh_request() {
        let dir = tempfile::Builder::new().prefix("mvadm").tempdir_in("/tmp").unwrap();
        let root = fsutil::open_root(&dir.path().join("r")).unwrap();
        let id = Identity::parse("a1").unwrap();
        assert_eq!(start_of_hold(&root, &id), crate::lifecycle::session::Start::Program);
        note_held(&root, &id, "2 agents are starting (b1, b2)", true).unwrap();
        // The tick holds it again, with another reason and no fresh request.
        note_held(&root, &id, "2 agents are starting (b2, b3)", false).unwrap();
        let log = std::fs::read_to_string(root.lifecycle_log()).unwrap();
        assert_eq!(log.matches("ev=admission-held").count(), 1, "{log}");
        let held = peer_state::load(&root, &id).unwrap().held.unwrap();
        assert_eq!(held.reason, "2 agents are starting (b2, b3)");
        assert_eq!(start_of_hold(&root, &id), crate::lifecycle::session::Start::Fresh);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("2X").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1G").is_err());
        assert_eq!(format_size(3 << 29), "1.5G");
        assert_eq!(format_size(512 << 20), "512M");
    }
}
