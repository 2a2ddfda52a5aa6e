//! `clean [--dry-run] [--retention DUR]`: remove what crashes leave behind
//! (stale sockets, orphan canaries and the `wait-for` clients of killed
//! canaries, abandoned temp files, finished tasks past their retention),
//! stop servers that no valid peer spec accounts for, and rotate logs past
//! their caps. A socket deleted under a running server is re-created by the
//! scan itself (even on a dry run: it removes nothing) and reported. The scan
//! is `ghosts`,
//! the caps are `rotate`, the queue cleans itself (`Queue::clean`); this
//! module runs them in order, keeps going when one part fails, and reports.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use super::Ctx;
use crate::ground::output;
use crate::ground::rotate::{self, Caps, Rotation};
use crate::lifecycle::ghosts::{self, Killed};
use crate::model::logfmt::Event;
use crate::model::queue::Queue;
use crate::surface::cli::CleanArgs;

/// What clean did (or, with `--dry-run`, would do).
#[derive(Debug, Default, Serialize)]
pub struct Cleaned {
    pub dry_run: bool,
    pub stale_sockets: Vec<String>,
    pub orphan_canaries: Vec<Orphan>,
    /// Servers up with no valid peer spec (stopped, or would be).
    pub unaccounted_servers: Vec<Unaccounted>,
    /// `wait-for` clients whose canary was killed (ended unless dry run).
    pub orphan_waiters: Vec<crate::lifecycle::canary::Waiter>,
    /// Sockets deleted under a running server, which re-created them.
    pub recreated_sockets: Vec<String>,
    /// Mailbox couriers with nothing to deliver (empty mailbox, or no
    /// persistent peer): ended unless dry run.
    pub orphan_couriers: Vec<Orphan>,
    /// Processes a peer's program left behind (its server is down): ended
    /// unless dry run (`strays`).
    pub strays: Vec<StrayOut>,
    pub tmp_files: Vec<String>,
    pub done_tasks: Vec<String>,
    /// Payload files of tasks no longer running.
    pub stale_payloads: Vec<String>,
    /// An agent pool's instance files (`state/<id>.pool-<k>.json`, and the
    /// instance's `.mark.json`) whose runner is dead.
    pub stale_instances: Vec<String>,
    pub rotated: Vec<Rotation>,
    /// Parts that failed; clean goes on with the rest and exits 1.
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Orphan {
    pub identity: String,
    pub pid: Option<i32>,
    /// `term` or `kill`; absent on a dry run.
    pub how: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct StrayOut {
    pub identity: String,
    pub pid: i32,
    pub argv: String,
    /// `ended`; absent on a dry run.
    pub how: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Unaccounted {
    pub identity: String,
    pub server_pid: Option<i32>,
    /// Why no spec accounts for it.
    pub reason: String,
    /// `term` or `kill`; absent on a dry run.
    pub how: Option<&'static str>,
}

/// How long an unaccounted server's program gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a stray gets between SIGTERM and SIGKILL.
const STRAY_GRACE: Duration = Duration::from_secs(2);

impl Cleaned {
    fn total(&self) -> usize {
        self.stale_sockets.len()
            + self.orphan_canaries.len()
            + self.unaccounted_servers.len()
            + self.orphan_waiters.len()
            + self.orphan_couriers.len()
            + self.strays.len()
            + self.recreated_sockets.len()
            + self.tmp_files.len()
            + self.done_tasks.len()
            + self.stale_payloads.len()
            + self.stale_instances.len()
            + self.rotated.len()
    }
}

pub fn run(ctx: &Ctx, args: CleanArgs) -> Result<ExitCode> {
    let c = clean(ctx, &args)?;
    if !c.dry_run && c.total() > 0 {
        let ev = Event::new("clean")
            .kv("stale_sockets", c.stale_sockets.len())
            .kv("orphan_canaries", c.orphan_canaries.len())
            .kv("stopped_servers", c.unaccounted_servers.len())
            .kv("orphan_waiters", c.orphan_waiters.len())
            .kv("orphan_couriers", c.orphan_couriers.len())
            .kv("strays", c.strays.len())
            .kv("tmp_files", c.tmp_files.len())
            .kv("done_tasks", c.done_tasks.len())
            .kv("stale_instances", c.stale_instances.len())
            .kv("rotated", c.rotated.len());
        if let Err(e) = ev.append_to(&ctx.root.lifecycle_log()) {
            output::warn(format!("could not record the clean in the lifecycle log: {e:#}"));
        }
    }
    if ctx.json {
        output::json(&c)?;
    } else {
        print_human(&c)?;
    }
    for e in &c.errors {
        output::warn(e);
    }
    Ok(if c.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn clean(ctx: &Ctx, args: &CleanArgs) -> Result<Cleaned> {
    let root = &ctx.root;
    let dry = args.dry_run;
    let mut c = Cleaned { dry_run: dry, ..Cleaned::default() };

    let mut live: Vec<String> = Vec::new();
    for id in ghosts::identities(root)? {
        let scan = match ghosts::scan_id(root, &id) {
            Ok(s) => s,
            Err(e) => {
                c.errors.push(format!("{id}: could not observe its server: {e:#}"));
                // Unknown: treat as live so its pane log is left alone.
                live.push(id.to_string());
                continue;
            }
        };
        if scan.socket_lost == Some("recreated") {
            c.recreated_sockets.push(scan.socket.display().to_string());
        } else if scan.socket_lost.is_some() {
            c.errors.push(format!(
                "{id}: its server (pid {}) runs but its socket {} is gone and was not \
                 re-created; run `muxvisor doctor`",
                scan.server_pid.map(|p| p.to_string()).unwrap_or_default(),
                scan.socket.display()
            ));
        }
        if !scan.seen.no_server() {
            live.push(id.to_string());
        }
        // The canary first: it may be waiting on the very socket we remove.
        if scan.orphan_canary() {
            if dry {
                c.orphan_canaries.push(Orphan {
                    identity: id.to_string(),
                    pid: scan.canary_pid,
                    how: None,
                });
            } else {
                match ghosts::kill_orphan_canary(root, &id) {
                    Ok(Some(Killed { pid, how })) => c.orphan_canaries.push(Orphan {
                        identity: id.to_string(),
                        pid: Some(pid),
                        how: Some(how),
                    }),
                    Ok(None) => {}
                    Err(e) => c.errors.push(format!("{id}: orphan canary: {e:#}")),
                }
            }
        }
        if scan.unaccounted() {
            let reason = scan.spec_problem.clone().unwrap_or_default();
            let mut u = Unaccounted {
                identity: id.to_string(),
                server_pid: scan.server_pid,
                reason,
                how: None,
            };
            if dry {
                c.unaccounted_servers.push(u);
            } else {
                match ghosts::stop_unaccounted(root, &id, STOP_GRACE) {
                    Ok(Some(s)) => {
                        u.how = Some(s.how);
                        c.unaccounted_servers.push(u);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        c.errors.push(format!("{id}: stopping its unaccounted server: {e:#}"))
                    }
                }
            }
        }
        if scan.seen.no_server() {
            let found = if dry {
                crate::lifecycle::strays::find(root, &id)
            } else {
                crate::lifecycle::strays::end(root, &id, STRAY_GRACE, "clean")
            };
            let how = (!dry).then_some("ended");
            c.strays.extend(found.into_iter().map(|s| StrayOut {
                identity: id.to_string(),
                pid: s.pid,
                argv: s.argv,
                how,
            }));
        }
        if scan.stale_socket() {
            let sock = scan.socket.display().to_string();
            if dry {
                c.stale_sockets.push(sock);
            } else {
                match ghosts::remove_stale_socket(root, &id) {
                    Ok(true) => c.stale_sockets.push(sock),
                    Ok(false) => {}
                    Err(e) => c.errors.push(format!("{id}: stale socket {sock}: {e:#}")),
                }
            }
        }
        if let Ok(Some(q)) = Queue::open_existing(root, &id)
            && let Some(pid) = crate::lifecycle::agent::mailbox::courier_pid(&q)
        {
            let persistent = crate::model::peer::load(root, &id)
                .ok()
                .flatten()
                .is_some_and(|s| s.policy == crate::model::peer::Policy::Persistent);
            let waiting = q.counts().map(|n| n.pending + n.running > 0).unwrap_or(true);
            if !persistent || !waiting {
                let how = if dry { None } else { end_courier(&q, &id, pid) };
                c.orphan_couriers.push(Orphan { identity: id.to_string(), pid: Some(pid), how });
            }
        }
        // Instance files are written by their runner only while it holds
        // its slot's lock: a slot without a live runner has none to keep.
        let live_slots: Vec<u32> = match Queue::open_existing(root, &id) {
            Ok(Some(q)) => q.live_slots().into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        };
        for (slot, path) in crate::model::agent::instance::files(root, &id) {
            if live_slots.contains(&slot) {
                continue;
            }
            if !dry && let Err(e) = crate::ground::fsutil::remove_if_exists(&path) {
                c.errors.push(format!("{id}: {e:#}"));
                continue;
            }
            c.stale_instances.push(path.display().to_string());
        }
        match Queue::open_existing(root, &id) {
            Ok(Some(q)) => match q.clean(args.retention, Utc::now(), dry) {
                Ok(paths) => {
                    for p in paths {
                        let stage = p
                            .parent()
                            .and_then(|d| d.file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let s = p.display().to_string();
                        match stage.as_str() {
                            "done" => c.done_tasks.push(s),
                            "tmp" => c.tmp_files.push(s),
                            _ => c.stale_payloads.push(s),
                        }
                    }
                }
                Err(e) => c.errors.push(format!("{id}: queue clean: {e:#}")),
            },
            Ok(None) => {}
            Err(e) => c.errors.push(format!("{id}: opening its queue: {e:#}")),
        }
    }

    // After the canaries: a canary ended above may leave its client behind.
    c.orphan_waiters = if dry {
        crate::lifecycle::canary::orphan_waiters(root, None)
    } else {
        crate::lifecycle::canary::end_orphan_waiters(root, None)
    };

    match ghosts::tmp_files(root, ghosts::TMP_MAX_AGE, SystemTime::now()) {
        Ok(files) => {
            for f in files {
                if !dry && let Err(e) = crate::ground::fsutil::remove_if_exists(&f) {
                    c.errors.push(format!("{e:#}"));
                    continue;
                }
                c.tmp_files.push(f.display().to_string());
            }
        }
        Err(e) => c.errors.push(format!("looking for abandoned temp files: {e:#}")),
    }

    let is_live = |id: &str| live.iter().any(|l| l == id);
    match rotate::rotate_all(root, Caps::from_env(), &is_live, dry) {
        Ok(r) => c.rotated = r,
        Err(e) => c.errors.push(format!("rotating logs: {e:#}")),
    }
    Ok(c)
}

/// End a courier that has nothing to deliver: SIGTERM, checked to be our
/// courier of `id` (its argv), and still the holder of its lock.
fn end_courier(q: &Queue, id: &crate::model::peer::Identity, pid: i32) -> Option<&'static str> {
    let ours = crate::ground::proc::argv(pid).is_some_and(|a| {
        crate::ground::proc::argv_has(&a, b"_courier")
            && crate::ground::proc::argv_has(&a, id.as_str().as_bytes())
    });
    if !ours || crate::lifecycle::agent::mailbox::courier_pid(q) != Some(pid) {
        return None;
    }
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).ok().map(|()| "term")
}

fn print_human(c: &Cleaned) -> Result<()> {
    let (rm, rot) =
        if c.dry_run { ("would remove", "would rotate") } else { ("removed", "rotated") };
    for s in &c.stale_sockets {
        output::line(format!("{rm} stale socket {}", output::inert_line(s)))?;
    }
    for o in &c.orphan_canaries {
        let pid = o.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let verb = if c.dry_run { "would end" } else { "ended" };
        output::line(format!("{verb} orphan canary of {}{pid}", o.identity))?;
    }
    for u in &c.unaccounted_servers {
        let pid = u.server_pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let verb = if c.dry_run { "would stop" } else { "stopped" };
        output::line(format!("{verb} the tmux server of {}{pid}: {}", u.identity, u.reason))?;
    }
    for o in &c.orphan_couriers {
        let verb = if c.dry_run { "would end" } else { "ended" };
        let pid = o.pid.map(|p| p.to_string()).unwrap_or_default();
        output::line(format!("{verb} the idle courier of {} (pid {pid})", o.identity))?;
    }
    for s in &c.strays {
        let verb = if c.dry_run { "would end" } else { "ended" };
        output::line(format!(
            "{verb} a process {} left behind (pid {}): {}",
            s.identity,
            s.pid,
            s.argv.escape_debug()
        ))?;
    }
    for w in &c.orphan_waiters {
        let verb = if c.dry_run { "would end" } else { "ended" };
        output::line(format!(
            "{verb} orphan `tmux wait-for` of {}'s canary (pid {})",
            w.identity, w.pid
        ))?;
    }
    for s in &c.recreated_sockets {
        output::line(format!(
            "re-created deleted socket {} (its server was running; see `muxvisor doctor`)",
            output::inert_line(s)
        ))?;
    }
    for s in &c.tmp_files {
        output::line(format!("{rm} abandoned temp file {}", output::inert_line(s)))?;
    }
    for s in &c.done_tasks {
        output::line(format!("{rm} finished task {}", output::inert_line(s)))?;
    }
    for s in &c.stale_payloads {
        output::line(format!("{rm} stale task payload {}", output::inert_line(s)))?;
    }
    for s in &c.stale_instances {
        output::line(format!("{rm} the state of a dead pool instance {}", output::inert_line(s)))?;
    }
    for r in &c.rotated {
        output::line(format!(
            "{rot} {} ({} bytes, cap {}) to {}",
            r.path.display(),
            r.size,
            r.cap,
            rotate::rotated_name(&r.path).display()
        ))?;
    }
    if c.total() == 0 {
        output::line("nothing to clean")?;
    }
    Ok(())
}
