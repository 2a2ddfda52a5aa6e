//! `add` and `rm`: register, update and unregister peers.
//!
//! `add` on an existing peer is an update: the program is always replaced,
//! every option not given keeps its stored value (including the policy: an
//! ephemeral peer stays ephemeral until `--persistent`, and the reverse until
//! `--ephemeral`), and `--env` given at all replaces the whole environment.
//! Options that only mean something for the other policy are accepted with a
//! warning.
//!
//! A policy change on a running peer is refused unless `--force`, which stops
//! it first: the tick would otherwise stop a persistent session as an orphan
//! worker, or leave a worker running as if it were a persistent peer. A task
//! a stopped worker was running goes back to the head of its queue.
//!
//! `rm` refuses a peer whose tmux server is up (even with a dead pane, or
//! hung) unless `--force`, which stops it first; its queue, state and pane log
//! stay unless `--purge`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::Ctx;
use crate::ground::duration;
use crate::ground::fsutil;
use crate::ground::output;
use crate::ground::paths::Root;
use crate::lifecycle::observe::{self, Seen};
use crate::lifecycle::session;
use crate::model::logfmt::Event;
use crate::model::peer::{self, Deliver, Identity, PeerSpec, Policy, Restart};
use crate::surface::cli::{self, AddArgs, RmArgs};
use crate::tmux;

/// How long `rm --force` lets the program shut down before killing it.
const RM_GRACE: Duration = Duration::from_secs(10);

pub fn add(ctx: &Ctx, args: AddArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    // A policy change needs the peer's server gone: the tick treats a
    // session of the other policy as something to stop. `stop` takes the
    // identity lock itself, so it runs before ours, and the change is
    // checked again under the lock.
    let before = peer::load(&ctx.root, &id).ok().flatten().map(|s| s.policy);
    let stopped = match policy_change(before, wanted_policy(before, &args)) {
        Some(change) => stop_for_change(&ctx.root, &id, &change, args.force)?,
        None => false,
    };
    // Read-modify-write under the identity lock, so two concurrent updates
    // cannot lose one another's options.
    let _lock =
        fsutil::lock_within(&ctx.root.id_lock(&id), session::LOCK_WAIT, &format!("add {id}"))?;
    let existing = match peer::load(&ctx.root, &id) {
        Ok(s) => s,
        Err(e) => {
            output::warn(format!("{e:#}; replacing it with a new spec"));
            None
        }
    };
    let now = existing.as_ref().map(|s| s.policy);
    if let Some(change) = policy_change(now, wanted_policy(now, &args))
        && server_seen(&ctx.root, &id)?.is_some_and(|s| is_live(&s))
    {
        bail!(
            "peer {id} is running again (started while `add` stopped it); not changing it \
             from {}; run the same `muxvisor add` again",
            change.describe()
        );
    }
    let cwd = match &args.cwd {
        Some(dir) => Some(resolve_cwd(dir)?),
        None if existing.is_none() => Some(resolve_cwd(
            &std::env::current_dir().context("finding the current directory for --cwd")?,
        )?),
        None => None,
    };
    let updated = existing.is_some();
    let (spec, warnings) = build_spec(existing, &id, &args, cwd)?;
    for w in &warnings {
        output::warn(w);
    }
    if let Some(w) = program_warning(&spec) {
        output::warn(w);
    }
    let exe = std::env::current_exe().context("finding the muxvisor binary")?;
    session::check_fits(ctx.root.dir(), &exe, &spec).context("not registered")?;
    peer::save(&ctx.root, &spec)?;
    if stopped {
        output::warn(format!("stopped peer {id} to change its policy to {}", spec.policy));
    }
    if now == Some(Policy::Ephemeral) && spec.policy == Policy::Persistent {
        release_running_task(&ctx.root, &id);
    }
    if updated && server_is_up(&ctx.root, &id) {
        // `restart` refuses an ephemeral peer: its next worker picks it up.
        output::warn(match spec.policy {
            Policy::Persistent => format!(
                "peer {id} is running; the new spec takes effect at its next launch \
                 (`muxvisor restart {id}`)"
            ),
            Policy::Ephemeral => format!(
                "a worker of {id} is running: the task it runs now keeps the old spec, and its \
                 next task runs with the new one"
            ),
        });
    }
    let _ = Event::new("add")
        .id(&id)
        .kv("policy", spec.policy)
        .kv("updated", updated)
        .append_to(&ctx.root.lifecycle_log());
    if ctx.json {
        output::json(&spec)?;
    } else {
        print_spec(&spec, updated)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The spec `add` should store: `existing` updated by `args`, or a new one.
/// `cwd` is the resolved `--cwd` (or the current directory for a new peer).
pub fn build_spec(
    existing: Option<PeerSpec>,
    id: &Identity,
    args: &AddArgs,
    cwd: Option<PathBuf>,
) -> Result<(PeerSpec, Vec<String>)> {
    let mut spec = match existing {
        Some(mut s) => {
            s.policy = wanted_policy(Some(s.policy), args);
            s.command = args.program.clone();
            s
        }
        None => {
            let policy = wanted_policy(None, args);
            let cwd = cwd.clone().context("a new peer needs a working directory")?;
            PeerSpec::new(id.clone(), policy, args.program.clone(), cwd)
        }
    };
    if let Some(c) = cwd {
        spec.cwd = c;
    }
    if !args.env.is_empty() {
        spec.env.clear();
        for pair in &args.env {
            let (k, v) = peer::parse_env_pair(pair)?;
            crate::model::peer_env::check_not_reserved(&k, &format!("--env {k}=..."))?;
            spec.env.insert(k, v);
        }
    }
    // The base is recorded once (a spec of an older muxvisor gets it at its
    // first update), so that every launch, whoever makes it, uses it.
    if spec.base_env.is_none() || args.refresh_env {
        spec.base_env = Some(crate::model::peer_env::capture_base_here());
    }
    if args.no_env_file {
        spec.env_file = None;
    }
    if let Some(f) = &args.env_file {
        let abs = crate::model::peer_env::absolute(f)?;
        // Refused now, naming the file and line, rather than at every launch.
        crate::model::peer_env::read_env_file(&abs).context("not registered")?;
        spec.env_file = Some(abs);
    }
    let set = |slot: &mut Option<Duration>, v: Option<Duration>| {
        if v.is_some() {
            *slot = v;
        }
    };
    set(&mut spec.idle_ttl, args.idle_ttl);
    set(&mut spec.max_age, args.max_age);
    if let Some(r) = args.restart {
        spec.restart = match r {
            cli::RestartPolicy::Never => Restart::Never,
            cli::RestartPolicy::OnFailure => Restart::OnFailure,
            cli::RestartPolicy::Always => Restart::Always,
        };
    }
    spec.backoff = args.backoff.unwrap_or(spec.backoff);
    spec.max_backoff = args.max_backoff.unwrap_or(spec.max_backoff);
    spec.restart_burst = args.restart_burst.unwrap_or(spec.restart_burst);
    spec.restart_window = args.restart_window.unwrap_or(spec.restart_window);
    spec.max_attempts = args.max_attempts.unwrap_or(spec.max_attempts);
    spec.task_ttl = args.task_ttl.unwrap_or(spec.task_ttl);
    spec.task_timeout = args.task_timeout.unwrap_or(spec.task_timeout);
    spec.linger = args.linger.unwrap_or(spec.linger);
    spec.workers = args.workers.unwrap_or(spec.workers);
    spec.warm = args.warm.unwrap_or(spec.warm);
    spec.reuse = args.reuse.unwrap_or(spec.reuse);
    if let Some(r) = &args.reset {
        crate::tmux::paste::check_text(r).map_err(|e| anyhow::anyhow!("--reset: {e}"))?;
        spec.reset = Some(r.clone()).filter(|r| !r.is_empty());
    }
    if let Some(a) = &args.agent {
        spec.agent = Some(a.clone());
    }
    if !args.ready_pattern.is_empty() {
        spec.ready_patterns.clone_from(&args.ready_pattern);
    }
    if !args.busy_pattern.is_empty() {
        spec.busy_patterns.clone_from(&args.busy_pattern);
    }
    if !args.blocked_pattern.is_empty() {
        spec.blocked_patterns = args
            .blocked_pattern
            .iter()
            .map(|b| peer::parse_blocked_pattern(b))
            .collect::<Result<_>>()?;
    }
    spec.quiet = args.quiet.unwrap_or(spec.quiet);
    if !args.fresh_arg.is_empty() {
        spec.fresh_args.clone_from(&args.fresh_arg);
    }
    if !args.resume_arg.is_empty() {
        spec.resume_args.clone_from(&args.resume_arg);
    }
    if let Some(m) = &args.continue_message {
        crate::tmux::paste::check_text(m)
            .map_err(|e| anyhow::anyhow!("--continue-message: {e}"))?;
        spec.continue_message = Some(m.clone());
    }
    if let Some(w) = args.when {
        spec.when = Some(match w {
            cli::When::Now => peer::When::Now,
            cli::When::Idle => peer::When::Idle,
        });
    }
    if let Some(d) = args.deliver {
        spec.deliver = match d {
            cli::Deliver::Argv => Deliver::Argv,
            cli::Deliver::Keys => Deliver::Keys,
        };
    }
    spec.validate()?;
    let mut warnings = policy_warnings(&spec, args);
    if let Some(f) = args.env_file.as_ref().and(spec.env_file.as_ref()) {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(f).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            warnings.push(format!(
                "env file {} can be read by other users; `chmod 600` it if it holds secrets",
                f.display()
            ));
        }
    }
    warnings.extend(spec.pattern_warnings());
    Ok((spec, warnings))
}

/// Options given that the peer's policy will ignore.
fn policy_warnings(spec: &PeerSpec, args: &AddArgs) -> Vec<String> {
    let mut ignored = Vec::new();
    match spec.policy {
        Policy::Persistent => {
            let flags = [
                ("--deliver", args.deliver.is_some()),
                ("--max-attempts", args.max_attempts.is_some()),
                ("--task-ttl", args.task_ttl.is_some()),
                ("--task-timeout", args.task_timeout.is_some()),
                ("--linger", args.linger.is_some()),
                ("--workers", args.workers.is_some()),
                ("--warm", args.warm.is_some()),
                ("--reuse", args.reuse.is_some()),
                ("--reset", args.reset.is_some()),
            ];
            ignored.extend(flags.iter().filter(|(_, given)| *given).map(|(f, _)| f.to_string()));
            if spec.command.iter().any(|a| a.contains("{task}") || a.contains("{task_file}")) {
                ignored.push("the {task}/{task_file} placeholders".into());
            }
        }
        Policy::Ephemeral => {
            let flags = [
                ("--restart", args.restart.is_some()),
                ("--restart-burst", args.restart_burst.is_some()),
                ("--restart-window", args.restart_window.is_some()),
            ];
            ignored.extend(flags.iter().filter(|(_, given)| *given).map(|(f, _)| f.to_string()));
        }
    }
    ignored
        .into_iter()
        .map(|what| {
            format!(
                "{what} only applies to {} peers; peer {} is {} and ignores it",
                match spec.policy {
                    Policy::Persistent => "ephemeral",
                    Policy::Ephemeral => "persistent",
                },
                spec.identity,
                spec.policy
            )
        })
        .collect()
}

/// The policy `add` gives a peer whose current policy is `now` (`None`: no
/// valid spec): the flag given, else the current one, else persistent. Pure.
pub fn wanted_policy(now: Option<Policy>, args: &AddArgs) -> Policy {
    if args.ephemeral {
        Policy::Ephemeral
    } else if args.persistent {
        Policy::Persistent
    } else {
        now.unwrap_or(Policy::Persistent)
    }
}

/// A policy change that a running server would contradict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyChange {
    /// `None`: no valid spec, so the server's policy is unknown.
    pub from: Option<Policy>,
    pub to: Policy,
}

impl PolicyChange {
    fn describe(&self) -> String {
        match self.from {
            Some(p) => format!("{p} to {}", self.to),
            None => format!("an unknown policy (no valid spec) to {}", self.to),
        }
    }
}

/// The change from `now` to `to` that needs the peer stopped first, if any.
/// Without a valid spec the running server may be anything, and only an
/// ephemeral spec would make the tick stop it. Pure.
pub fn policy_change(now: Option<Policy>, to: Policy) -> Option<PolicyChange> {
    let change = match now {
        Some(p) => p != to,
        None => to == Policy::Ephemeral,
    };
    change.then_some(PolicyChange { from: now, to })
}

/// What is on `id`'s socket; `None` when there is no socket file (and no
/// tmux call is made).
fn server_seen(root: &Root, id: &Identity) -> Result<Option<Seen>> {
    if std::fs::symlink_metadata(root.socket(id)).is_err() {
        return Ok(None);
    }
    let obs = observe::observe(root, id, tmux::DEFAULT_TIMEOUT)
        .with_context(|| format!("checking whether peer {id} is running"))?;
    Ok(Some(obs.seen))
}

/// True when a server is up for the peer (even with a dead pane, or hung).
fn is_live(seen: &Seen) -> bool {
    rm_plan(seen, false) == RmPlan::Refuse
}

/// Before a policy change: refuse a running peer, or with `force` stop it.
/// True when it was stopped.
fn stop_for_change(root: &Root, id: &Identity, change: &PolicyChange, force: bool) -> Result<bool> {
    let Some(seen) = server_seen(root, id)? else { return Ok(false) };
    if !is_live(&seen) {
        return Ok(false);
    }
    if !force {
        bail!(
            "peer {id} is running (its tmux server is up on {}); changing it from {} would \
             make the next tick stop it. Stop it first with `muxvisor stop {id}`, or add \
             --force to stop it and change the policy",
            root.socket(id).display(),
            change.describe()
        );
    }
    session::stop(root, id, RM_GRACE, "policy-change")
        .with_context(|| format!("stopping peer {id} before changing its policy"))?;
    Ok(true)
}

/// An ephemeral peer turned persistent: a task its (stopped) worker was
/// running goes back to the head of the queue, uncounted, so that nothing
/// stays "running" in a queue no worker serves. Tasks stay queued.
fn release_running_task(root: &Root, id: &Identity) {
    let Ok(Some(q)) = crate::model::queue::Queue::open_existing(root, id) else { return };
    for c in q.running_all().unwrap_or_default() {
        let task = c.task().to_string();
        match q.release(&task) {
            Ok(()) => output::warn(format!(
                "task {task} of {id} was running; it is back at the head of its queue"
            )),
            Err(e) => output::warn(format!("{id}: could not put task {task} back: {e:#}")),
        }
    }
    if let Ok(c) = q.counts()
        && c.pending > 0
    {
        output::warn(format!(
            "{id} keeps {} queued task(s), which a persistent peer does not run; they run \
             again if it is made ephemeral (`muxvisor add {id} --ephemeral -- ...`), and \
             `muxvisor queue {id} purge` removes them",
            c.pending
        ));
    }
}

/// True when a server answers for `id` (no tmux call without a socket file).
fn server_is_up(root: &Root, id: &Identity) -> bool {
    std::fs::symlink_metadata(root.socket(id)).is_ok()
        && observe::observe(root, id, tmux::DEFAULT_TIMEOUT).is_ok_and(|o| o.server_answers())
}

/// Canonical, existing directory for `--cwd`.
fn resolve_cwd(dir: &Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(dir)
        .with_context(|| format!("--cwd {}: no such directory", dir.display()))?;
    if !abs.is_dir() {
        bail!("--cwd {}: not a directory", dir.display());
    }
    Ok(abs)
}

/// A warning when the program cannot be run the way `launch` will look for
/// it (same check, same PATH), so that `add` and `launch` agree.
fn program_warning(spec: &PeerSpec) -> Option<String> {
    let prog = spec.command.first()?;
    let path = session::peer_path(spec);
    session::check_program(prog, &spec.cwd, Some(&path)).err().map(|e| {
        format!(
            "{e:#}; peer {} is registered but will fail to launch until this is fixed",
            spec.identity
        )
    })
}

fn print_spec(spec: &PeerSpec, updated: bool) -> Result<()> {
    let verb = if updated { "updated" } else { "registered" };
    output::line(format!("peer {} ({}) {verb}", spec.identity, spec.policy))?;
    let words: Vec<String> = spec.command.iter().map(|w| display_word(w)).collect();
    output::line(format!("  command:  {}", words.join(" ")))?;
    output::line(format!("  cwd:      {}", spec.cwd.display()))?;
    if !spec.env.is_empty() {
        let env: Vec<String> =
            spec.env.iter().map(|(k, v)| format!("{k}={}", display_word(v))).collect();
        output::line(format!("  env:      {}", env.join(" ")))?;
    }
    if let Some(f) = &spec.env_file {
        output::line(format!("  env-file: {} (read at every launch)", f.display()))?;
    }
    let opt = |d: Option<Duration>| d.map(duration::format).unwrap_or_else(|| "none".into());
    output::line(format!("  idle-ttl: {}, max-age: {}", opt(spec.idle_ttl), opt(spec.max_age)))?;
    match spec.policy {
        Policy::Persistent => output::line(format!(
            "  restart:  {}, backoff {} up to {}, failed after {} failures in {}",
            serde_json::to_value(spec.restart)?.as_str().unwrap_or("?"),
            duration::format(spec.backoff),
            duration::format(spec.max_backoff),
            spec.restart_burst,
            duration::format(spec.restart_window)
        ))?,
        Policy::Ephemeral => output::line(
            format!(
                "  tasks:    deliver {}, {} attempts, backoff {} up to {}, ttl {}, timeout {}, linger {}",
                serde_json::to_value(spec.deliver)?.as_str().unwrap_or("?"),
                spec.max_attempts,
                duration::format(spec.backoff),
                duration::format(spec.max_backoff),
                duration::format(spec.task_ttl),
                duration::format(spec.task_timeout),
                duration::format(spec.linger)
            ) + &if spec.workers > 1 {
                format!(", {} workers", spec.workers)
            } else {
                String::new()
            },
        )?,
    }
    if spec.is_pool() {
        output::line(format!(
            "  pool:     {} {} agent instances at most, {} warm, reuse {}, idle-ttl {}{}",
            spec.workers,
            spec.agent.as_deref().unwrap_or("pattern"),
            spec.warm,
            duration::format(spec.reuse),
            duration::format(spec.pool_idle_ttl()),
            spec.reset
                .as_deref()
                .map(|r| format!(", reset {}", display_word(r)))
                .unwrap_or_default()
        ))?;
    }
    Ok(())
}

/// A word as a shell would need it typed: bare when safe, else quoted.
fn display_word(w: &str) -> String {
    let safe =
        !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%{}".contains(c));
    if safe { w.to_string() } else { tmux::quote::sh(w) }
}

/// What `rm` does about the peer's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmPlan {
    /// No server: just unregister.
    Remove,
    /// A server is up (or hung) and `--force` was given.
    StopThenRemove,
    /// A server is up (or hung) and no `--force`.
    Refuse,
}

/// Decide `rm` from what was seen.
pub fn rm_plan(seen: &Seen, force: bool) -> RmPlan {
    let live = match seen {
        Seen::Alive | Seen::PaneDead { .. } | Seen::SessionGone | Seen::Hung => true,
        Seen::NoSocket | Seen::StaleSocket => false,
    };
    match (live, force) {
        (false, _) => RmPlan::Remove,
        (true, true) => RmPlan::StopThenRemove,
        (true, false) => RmPlan::Refuse,
    }
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<ExitCode> {
    let root = &ctx.root;
    let id = Identity::parse(&args.id)?;
    // A spec that no longer parses can still be removed, and a server whose
    // spec is gone can still be stopped (`--force`).
    if let Err(e) = peer::require(root, &id) {
        if fsutil::open_read(&root.peer_file(&id))?.is_some() {
            output::warn(format!("{e:#}; removing it anyway"));
        } else if std::fs::symlink_metadata(root.socket(&id)).is_ok() {
            output::warn(format!(
                "peer {id} has no spec ({} does not exist); removing what is left on {}",
                root.peer_file(&id).display(),
                root.socket(&id).display()
            ));
        } else {
            return Err(e);
        }
    }
    // No socket file means no server: no need to ask tmux (which may even
    // be missing).
    let seen = if std::fs::symlink_metadata(root.socket(&id)).is_err() {
        Seen::NoSocket
    } else {
        observe::observe(root, &id, tmux::DEFAULT_TIMEOUT)?.seen
    };
    let plan = rm_plan(&seen, args.force);
    if plan == RmPlan::Refuse {
        bail!(
            "peer {id} is running (its tmux server is up); stop it first with \
             `muxvisor stop {id}`, or use `muxvisor rm --force {id}`"
        );
    }
    let stopped = plan == RmPlan::StopThenRemove;
    if stopped {
        session::stop(root, &id, RM_GRACE, "rm")
            .with_context(|| format!("stopping peer {id} before removing it"))?;
    }
    {
        // Not held across `stop`, which takes the same lock itself.
        let _lock =
            fsutil::lock_within(&root.id_lock(&id), session::LOCK_WAIT, &format!("rm {id}"))?;
        fsutil::remove_if_exists(&root.peer_file(&id))?;
        fsutil::fsync_dir(&root.peers_dir())?;
        if args.purge {
            purge(root, &id)?;
        }
    }
    let _ = Event::new("rm")
        .id(&id)
        .kv("stopped", stopped)
        .kv("purge", args.purge)
        .append_to(&root.lifecycle_log());
    if ctx.json {
        output::json(&json!({
            "identity": id,
            "removed": true,
            "stopped": stopped,
            "purged": args.purge,
        }))?;
    } else {
        let mut msg = format!("removed peer {id}");
        if stopped {
            msg.push_str(" (stopped it first)");
        }
        msg.push_str(if args.purge {
            "; deleted its queue, state and pane logs"
        } else {
            "; kept its queue, state and pane logs (--purge deletes them)"
        });
        output::line(msg)?;
    }
    if !args.purge {
        // Tasks left behind are nobody's now: say where they are.
        let c = crate::model::queue::counts(root, &id)?;
        if c.pending + c.running > 0 {
            output::warn(format!(
                "{id}'s queue still holds {} pending and {} running task(s), and nothing runs \
                 them while {id} is not registered: `muxvisor queue {id} list` shows them, \
                 `muxvisor add {id} ... -- PROGRAM` runs them again, `muxvisor queue {id} \
                 purge` drops them",
                c.pending, c.running
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Delete `id`'s queue, state and pane logs (current and rotated).
fn purge(root: &Root, id: &Identity) -> Result<()> {
    let q = root.queue_dir(id);
    match std::fs::remove_dir_all(&q) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing queue {}", q.display())),
    }
    fsutil::remove_if_exists(&root.state_file(id))?;
    let log = format!("{id}.log");
    let rotated = format!("{id}.log.");
    let dir = root.panes_dir();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            // Identities cannot contain '.', so this never matches another peer's log.
            if name == log || name.starts_with(&rotated) {
                fsutil::remove_if_exists(&e.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn add_args(argv: &[&str]) -> AddArgs {
        let mut full = vec!["muxvisor", "add"];
        full.extend_from_slice(argv);
        match cli::Cli::try_parse_from(full).unwrap().command {
            cli::Command::Add(a) => *a,
            _ => panic!("not add"),
        }
    }

    fn id() -> Identity {
        Identity::parse("w").unwrap()
    }

    #[test]
    fn new_spec_takes_defaults_and_flags() {
        let a = add_args(&["w", "--env", "A=1", "--idle-ttl", "5m", "--", "sh", "-c", "x"]);
        let (s, warns) = build_spec(None, &id(), &a, Some("/tmp".into())).unwrap();
        assert_eq!(s.policy, Policy::Persistent);
        assert_eq!(s.command, ["sh", "-c", "x"]);
        assert_eq!(s.cwd, Path::new("/tmp"));
        assert_eq!(s.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(s.idle_ttl, Some(Duration::from_secs(300)));
        assert_eq!(s.restart, Restart::OnFailure);
        assert!(warns.is_empty(), "{warns:?}");
    }

    #[test]
    fn update_keeps_what_was_not_given() {
        let a = add_args(&["w", "--ephemeral", "--max-attempts", "7", "--env", "A=1", "--", "old"]);
        let (old, _) = build_spec(None, &id(), &a, Some("/tmp".into())).unwrap();
        let b = add_args(&["w", "--task-ttl", "2h", "--", "new", "{task}"]);
        let (s, warns) = build_spec(Some(old), &id(), &b, None).unwrap();
        assert_eq!(s.policy, Policy::Ephemeral);
        assert_eq!(s.command, ["new", "{task}"]);
        assert_eq!(s.max_attempts, 7);
        assert_eq!(s.task_ttl, Duration::from_secs(7200));
        assert_eq!(s.cwd, Path::new("/tmp"));
        assert_eq!(s.env.len(), 1);
        assert!(warns.is_empty(), "{warns:?}");
    }

    #[test]
    fn ephemeral_only_options_warn_on_persistent_peers() {
        let a = add_args(&["w", "--deliver", "keys", "--task-ttl", "1h", "--", "p", "{task}"]);
        let (_, warns) = build_spec(None, &id(), &a, Some("/".into())).unwrap();
        assert_eq!(warns.len(), 3, "{warns:?}");
        assert!(warns.iter().all(|w| w.contains("only applies to ephemeral")), "{warns:?}");
        let a = add_args(&["w", "--ephemeral", "--restart", "always", "--", "p"]);
        let (_, warns) = build_spec(None, &id(), &a, Some("/".into())).unwrap();
        assert_eq!(warns.len(), 1, "{warns:?}");
    }

    #[test]
    fn invalid_specs_are_refused() {
        let a = add_args(&["w", "--env", "1X=y", "--", "p"]);
        assert!(build_spec(None, &id(), &a, Some("/".into())).is_err());
        let a = add_args(&["w", "--backoff", "10m", "--max-backoff", "1m", "--", "p"]);
        assert!(build_spec(None, &id(), &a, Some("/".into())).is_err());
        let a = add_args(&["w", "--env", "novalue", "--", "p"]);
        assert!(build_spec(None, &id(), &a, Some("/".into())).is_err());
    }

    #[test]
    fn policy_flags_and_changes() {
        let keep = add_args(&["w", "--", "p"]);
        let eph = add_args(&["w", "--ephemeral", "--", "p"]);
        let per = add_args(&["w", "--persistent", "--", "p"]);
        use Policy::{Ephemeral as E, Persistent as P};
        assert_eq!(wanted_policy(None, &keep), P);
        assert_eq!(wanted_policy(Some(E), &keep), E);
        assert_eq!(wanted_policy(Some(P), &eph), E);
        assert_eq!(wanted_policy(Some(E), &per), P);
        assert_eq!(policy_change(Some(P), P), None);
        assert_eq!(policy_change(Some(E), E), None);
        assert_eq!(policy_change(Some(P), E), Some(PolicyChange { from: Some(P), to: E }));
        assert_eq!(policy_change(Some(E), P), Some(PolicyChange { from: Some(E), to: P }));
        // No valid spec: only an ephemeral spec would make the tick stop it.
        assert_eq!(policy_change(None, P), None);
        assert_eq!(policy_change(None, E), Some(PolicyChange { from: None, to: E }));
        let (s, _) = build_spec(None, &id(), &eph, Some("/".into())).unwrap();
        let (s, _) = build_spec(Some(s), &id(), &per, None).unwrap();
        assert_eq!(s.policy, P);
    }

    #[test]
    fn rm_plan_table() {
        let dead = Seen::PaneDead { status: Some(1), signal: None };
        let cases = [
            (Seen::NoSocket, false, RmPlan::Remove),
            (Seen::StaleSocket, false, RmPlan::Remove),
            (Seen::NoSocket, true, RmPlan::Remove),
            (Seen::Alive, false, RmPlan::Refuse),
            (Seen::Alive, true, RmPlan::StopThenRemove),
            (dead.clone(), false, RmPlan::Refuse),
            (dead, true, RmPlan::StopThenRemove),
            (Seen::SessionGone, false, RmPlan::Refuse),
            (Seen::Hung, false, RmPlan::Refuse),
            (Seen::Hung, true, RmPlan::StopThenRemove),
        ];
        for (seen, force, want) in cases {
            assert_eq!(rm_plan(&seen, force), want, "{seen:?} force={force}");
        }
    }

    #[test]
    fn display_words() {
        assert_eq!(display_word("sh"), "sh");
        assert_eq!(display_word("echo {task}"), "'echo {task}'");
        assert_eq!(display_word(""), "''");
    }
}
