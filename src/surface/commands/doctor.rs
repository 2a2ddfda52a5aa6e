//! `doctor`: check what muxvisor depends on and report each finding with its
//! fix. Errors (exit 1) are things that break supervision now: no tmux, a
//! root or directory others can read, socket paths too long, ghosts (stale
//! sockets, orphan canaries and their orphan `wait-for` clients, a socket
//! deleted under a running server that could not be re-created), a symlink
//! in the root's directories (fixed by removing the link, never by a chmod
//! that would follow it), a hung
//! server, a peer whose program cannot be found or whose launch tmux would
//! refuse as too long, an installed service whose binary is gone. A deleted socket that the
//! server re-created is a warning: something removes files under the root. Warnings (exit 0) are things to know: an old tmux, no service
//! installed, ticks that stopped arriving.
//!
//! Unlike every other command, doctor runs on a root it has NOT opened:
//! opening refuses a bad root with an error, and diagnosing a bad root is
//! exactly doctor's job. It creates nothing.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ground::fsutil;
use crate::ground::output;
use crate::ground::paths::{self, Root};
use crate::lifecycle::ghosts;
use crate::model::logfmt;
use crate::model::peer;
use crate::surface::service::{self, Host, Kind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Error,
}

/// One thing doctor found, with what to do about it.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    pub fix: Option<String>,
}

fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding { check, level: Level::Ok, message: message.into(), fix: None }
}
fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { check, level: Level::Warn, message: message.into(), fix: Some(fix.into()) }
}
fn error(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { check, level: Level::Error, message: message.into(), fix: Some(fix.into()) }
}

/// The finding for tmux's `-V` output. Pure.
pub fn tmux_finding(bin: &Path, version_line: &str) -> Finding {
    let shown = version_line.trim();
    match crate::tmux::launch::parse_version(shown) {
        None => warn(
            "tmux",
            format!("cannot tell the version of {} ({shown:?})", bin.display()),
            "muxvisor needs tmux 3.2 or newer; check `tmux -V`",
        ),
        Some(v) if v < (3, 2) => warn(
            "tmux",
            format!(
                "{shown} at {} is older than 3.2: `new-session -e` is missing, so programs \
                 do not get --env or MUXVISOR_TASK_* variables, and dead panes show no exit \
                 time (3.3)",
                bin.display()
            ),
            "install tmux 3.2 or newer (3.6+ is best) and point MUXVISOR_TMUX at it",
        ),
        Some(v) if v < (3, 6) => ok(
            "tmux",
            format!(
                "{shown} at {}; before 3.6 a dead pane can lose its exit status, which \
                 muxvisor's canary recovers by nudging the server with SIGCHLD",
                bin.display()
            ),
        ),
        Some(_) => ok("tmux", format!("{shown} at {}", bin.display())),
    }
}

fn check_tmux() -> Finding {
    let bin = match crate::tmux::tmux_path() {
        Ok(b) => b,
        Err(e) => {
            return error(
                "tmux",
                e.to_string(),
                "install tmux (apt-get install tmux, brew install tmux) or set MUXVISOR_TMUX",
            );
        }
    };
    let shown = bin.to_string_lossy();
    match service::exec::run(&shown, &["-V"], None, Duration::from_secs(5)) {
        Ok(Some(r)) if r.ok => tmux_finding(bin, &r.stdout),
        Ok(Some(r)) => error(
            "tmux",
            format!("`{shown} -V` failed ({})", r.describe()),
            "reinstall tmux or point MUXVISOR_TMUX at a working one",
        ),
        Ok(None) => error("tmux", format!("{shown} cannot be run"), "reinstall tmux"),
        Err(e) => error("tmux", format!("{e:#}"), "reinstall tmux"),
    }
}

/// Directories that must be private: the root's own, then each queue's.
fn private_dirs(root: &Root) -> Vec<PathBuf> {
    let mut dirs = root.all_dirs();
    if let Ok(rd) = std::fs::read_dir(root.queues_dir()) {
        let mut qs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        qs.sort();
        for q in qs {
            dirs.push(q.clone());
            if let Ok(rd) = std::fs::read_dir(&q) {
                let mut subs: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_file()))
                    .collect();
                subs.sort();
                dirs.extend(subs);
            }
        }
    }
    dirs
}

/// What is wrong with an entry of the root's flat directories.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Odd {
    /// A symlink: muxvisor never follows one (every write to it fails, a
    /// launch included), and a `chmod` would follow it to its target.
    Symlink,
    /// A file open to group or others, with its mode.
    Open(u32),
}

/// Symlinks, and files open to group or others, in the root's flat
/// directories.
fn odd_files(root: &Root) -> Vec<(PathBuf, Odd)> {
    let mut out = Vec::new();
    for dir in
        [root.peers_dir(), root.state_dir(), root.run_dir(), root.logs_dir(), root.panes_dir()]
    {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(md) = std::fs::symlink_metadata(e.path()) else { continue };
            if md.file_type().is_symlink() {
                out.push((e.path(), Odd::Symlink));
            } else if !md.is_dir() && md.mode() & 0o077 != 0 {
                out.push((e.path(), Odd::Open(md.mode() & 0o777)));
            }
        }
    }
    out.sort();
    out
}

/// The finding for one odd entry, with a fix that never follows a link.
fn odd_finding(path: &Path, odd: &Odd) -> Finding {
    match odd {
        Odd::Symlink => {
            let target = std::fs::read_link(path)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            error(
                "permissions",
                format!(
                    "{} is a symlink{target}: muxvisor never follows a symlink under the root, so \
                     every write to it fails (at lifecycle.log, every launch); someone may have \
                     planted it to make muxvisor write elsewhere",
                    path.display()
                ),
                format!(
                    "rm {} (removes the link only, not what it points to; muxvisor creates a \
                     private file in its place), then find out who made it",
                    path.display()
                ),
            )
        }
        Odd::Open(mode) => warn(
            "permissions",
            format!("{} has mode {mode:04o}, open to group or others", path.display()),
            format!("chmod 600 {}", path.display()),
        ),
    }
}

fn check_root(root: &Root, out: &mut Vec<Finding>) -> bool {
    let dir = root.dir();
    if let Err(msg) = root.check_socket_len() {
        out.push(error(
            "sockets",
            msg.to_string(),
            "use a shorter --root or MUXVISOR_ROOT, e.g. ~/.mv",
        ));
    } else {
        out.push(ok(
            "sockets",
            format!(
                "socket paths reach at most {} bytes (limit {})",
                root.longest_socket_len(),
                paths::SOCKET_PATH_MAX - 1
            ),
        ));
    }
    if std::fs::symlink_metadata(dir).is_err() {
        out.push(ok(
            "root",
            format!("{} does not exist yet; the first muxvisor command creates it", dir.display()),
        ));
        return false;
    }
    if let Err(e) = fsutil::check_private_dir(dir, "root") {
        out.push(error("root", format!("{e:#}"), format!("chmod 700 {}", dir.display())));
        return false;
    }
    out.push(ok("root", format!("{} is yours and private", dir.display())));
    let mut bad_dirs = 0;
    for d in private_dirs(root) {
        if std::fs::symlink_metadata(&d).is_err() {
            continue;
        }
        if let Err(e) = fsutil::check_private_dir(&d, "directory") {
            bad_dirs += 1;
            out.push(error(
                "permissions",
                format!("{e:#}"),
                format!("chmod 700 {} (and check who changed it)", d.display()),
            ));
        }
    }
    for (f, odd) in odd_files(root) {
        bad_dirs += usize::from(odd == Odd::Symlink);
        out.push(odd_finding(&f, &odd));
    }
    if bad_dirs == 0 {
        out.push(ok("permissions", "every directory under the root is private, and no symlink"));
    }
    true
}

/// The last `ev=tick` in the lifecycle log (read from its last MiB).
pub fn last_tick(log: &Path) -> Result<Option<DateTime<Utc>>> {
    let Some(mut f) = fsutil::open_read(log)? else { return Ok(None) };
    let len = f.metadata().with_context(|| format!("reading {}", log.display()))?.len();
    let start = len.saturating_sub(1 << 20);
    f.seek(SeekFrom::Start(start)).with_context(|| format!("reading {}", log.display()))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&buf);
    for line in text.lines().rev() {
        let pairs = logfmt::parse(line);
        if logfmt::get(&pairs, "ev") == Some("tick")
            && let Some(ts) = logfmt::get(&pairs, "ts")
            && let Ok(t) = DateTime::parse_from_rfc3339(ts)
        {
            return Ok(Some(t.with_timezone(&Utc)));
        }
    }
    Ok(None)
}

/// The finding about ticks, from what is installed and when the last one
/// ran. Pure.
pub fn tick_finding(
    installed: Option<(Kind, u64)>,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Finding {
    let age = last.map(|t| (now - t).num_seconds().max(0));
    let where_to_look = |kind: Kind| match kind {
        Kind::Systemd => "see `systemctl --user status muxvisor-supervise.timer` and \
                          `journalctl --user -u muxvisor-supervise.service`"
            .to_string(),
        Kind::Launchd => "see `launchctl print gui/$(id -u)/io.muxvisor.supervise` and \
                          logs/service.err under the root"
            .to_string(),
        Kind::Cron => {
            "check that cron is running and read logs/service.err under the root".to_string()
        }
    };
    match (installed, age) {
        (None, Some(a)) if a <= 180 => ok(
            "tick",
            format!("no service is installed, but a tick ran {a} s ago (a supervise loop?)"),
        ),
        (None, _) => warn(
            "service",
            "no service is installed for this root: nothing restarts peers or drains queues \
             unless you run `muxvisor supervise`",
            "muxvisor service install",
        ),
        (Some((kind, interval)), None) => warn(
            "tick",
            format!("the {kind} service is installed but no tick has been recorded yet"),
            format!("wait one interval ({interval} s); if none comes, {}", where_to_look(kind)),
        ),
        (Some((kind, interval)), Some(a)) if a > 3 * interval as i64 => warn(
            "tick",
            format!(
                "the last tick ran {a} s ago, but the {kind} service should run one every \
                 {interval} s"
            ),
            where_to_look(kind),
        ),
        (Some((kind, interval)), Some(a)) => {
            ok("tick", format!("{kind} service runs every {interval} s; last tick {a} s ago"))
        }
    }
}

/// Check the service and the ticks; returns the PATH the installed tick
/// runs with, if one is installed for this root.
fn check_service(root: &Root, out: &mut Vec<Finding>) -> Option<String> {
    let host = Host::from_env();
    let dir = root.dir().to_string_lossy().into_owned();
    let mut installed = None;
    let mut tick_path = None;
    let mut tick_exe = None;
    for kind in Kind::ALL {
        match service::status(kind, &dir, &host) {
            Ok(s) if s.installed && s.for_this_root => {
                if installed.is_none() {
                    // launchd runs a job at most every 10 s, whatever the
                    // plist asks: judge the ticks by what really happens.
                    let every = service::effective_interval(kind, s.interval_s.unwrap_or(60));
                    installed = Some((kind, every));
                    tick_path = s.path.clone();
                    tick_exe = s.exe.clone();
                }
            }
            Ok(s) if s.installed => out.push(warn(
                "service",
                format!(
                    "a {kind} service is installed ({}) but runs the tick for another root",
                    s.locations.join(", ")
                ),
                "muxvisor service install (for this root), if this is the root you use",
            )),
            Ok(_) => {}
            Err(e) => out.push(warn(
                "service",
                format!("could not check for a {kind} service: {e:#}"),
                format!("muxvisor service status --{kind}"),
            )),
        }
    }
    if let Some((kind, interval)) = installed {
        out.push(ok("service", format!("installed as {kind}, every {interval} s")));
    }
    let last = match last_tick(&root.lifecycle_log()) {
        Ok(t) => t,
        Err(e) => {
            out.push(warn("tick", format!("{e:#}"), "check the permissions of logs/"));
            None
        }
    };
    out.push(tick_finding(installed, last, Utc::now()));
    if let (Some((kind, _)), Some(exe)) = (installed, &tick_exe)
        && let Some(why) = not_runnable(Path::new(exe))
    {
        out.push(error(
            "service",
            format!(
                "the {kind} service runs the tick with {}, which {why}: no tick runs, so no \
                 peer is restarted and no queue drained (was muxvisor moved by an upgrade?)",
                output::inert(exe)
            ),
            "run `muxvisor service install` again with the binary you use now, from a path \
             that upgrades keep (README, \"Operating it\")",
        ));
    }
    let fallbacks: Vec<&Path> = crate::tmux::FALLBACK_DIRS.iter().map(Path::new).collect();
    if let (Some((kind, _)), Some(p)) = (installed, &tick_path)
        && crate::tmux::find_tmux(None, Some(p.into()), &fallbacks).is_err()
    {
        out.push(error(
            "service",
            format!(
                "the {kind} service runs the tick with PATH={p}, where there is no tmux (nor in \
                 {})",
                crate::tmux::FALLBACK_DIRS.join(", ")
            ),
            "muxvisor service install (it records the directory of the tmux found now)",
        ));
    }
    tick_path
}

fn check_ghosts(root: &Root, out: &mut Vec<Finding>) {
    let ids = match ghosts::identities(root) {
        Ok(ids) => ids,
        Err(e) => {
            out.push(error("ghosts", format!("{e:#}"), "check the root's permissions"));
            return;
        }
    };
    let mut clean = true;
    for id in ids {
        let s = match ghosts::scan_id(root, &id) {
            Ok(s) => s,
            Err(e) => {
                out.push(warn("ghosts", format!("{id}: {e:#}"), "muxvisor status"));
                continue;
            }
        };
        if s.orphan_canary() {
            clean = false;
            let pid = s.canary_pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            out.push(error(
                "orphan-canary",
                format!("the canary of {id}{pid} holds its lock but no server answers"),
                "muxvisor clean",
            ));
        }
        if s.stale_socket() {
            clean = false;
            out.push(error(
                "stale-socket",
                format!("{} exists but no tmux server answers on it", s.socket.display()),
                "muxvisor clean",
            ));
        }
        match (s.socket_lost, s.server_pid) {
            (Some("recreated"), pid) => out.push(warn(
                "lost-socket",
                format!(
                    "{} had been deleted while the server of {id}{} ran; muxvisor made the \
                     server re-create it (SIGUSR1)",
                    s.socket.display(),
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                ),
                format!(
                    "find what deletes files under {} (a temp cleaner such as \
                     systemd-tmpfiles, a cron job) and keep it away from the root",
                    root.run_dir().display()
                ),
            )),
            (Some(_), Some(pid)) => {
                clean = false;
                out.push(error(
                    "lost-socket",
                    format!(
                        "the server of {id} (pid {pid}) runs, but its socket {} is gone and \
                         it did not re-create it on SIGUSR1 (is it stopped?); nothing can \
                         reach it, and muxvisor will not start a second {id} next to it",
                        s.socket.display()
                    ),
                    format!(
                        "kill -CONT {pid} and run doctor again, or `muxvisor stop {id}` (ends \
                         it by its pid) then `muxvisor launch {id}`"
                    ),
                ));
            }
            _ => {}
        }
        if s.seen == ghosts::Found::Hung && s.socket_lost.is_none() {
            clean = false;
            // `stop` works for every peer (`restart` refuses ephemeral ones).
            let fix = match s.server_pid {
                Some(pid) => {
                    format!("kill -CONT {pid} to let it go on, or `muxvisor stop {id}` to end it")
                }
                None => format!(
                    "`muxvisor stop {id}` (its pid is not recorded; `fuser {}` finds it)",
                    s.socket.display()
                ),
            };
            let pid = s.server_pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            out.push(error(
                "hung-server",
                format!("the tmux server of {id}{pid} does not answer (stopped or wedged)"),
                fix,
            ));
        }
        if s.unaccounted() {
            clean = false;
            let pid = s.server_pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let why = s.spec_problem.as_deref().unwrap_or_default();
            out.push(error(
                "unaccounted-server",
                format!(
                    "a tmux server{pid} is up on {} but {why}: no tick supervises it",
                    s.socket.display()
                ),
                format!(
                    "`muxvisor stop {id}` or `muxvisor clean` ends it; `muxvisor add {id} -- \
                     PROGRAM` registers it again"
                ),
            ));
        }
        if s.seen == ghosts::Found::Alive && !s.canary_watching {
            out.push(warn(
                "canary",
                format!("{id} runs without a server-death canary"),
                "the next tick starts one (muxvisor supervise --once)",
            ));
        }
    }
    for w in crate::lifecycle::canary::orphan_waiters(root, None) {
        clean = false;
        out.push(error(
            "orphan-waiter",
            format!(
                "a `tmux wait-for` of {}'s canary (pid {}) outlived its canary and waits forever",
                w.identity, w.pid
            ),
            "muxvisor clean",
        ));
    }
    if clean {
        out.push(ok(
            "ghosts",
            "no stale or lost sockets, orphan canaries or waiters, hung or unaccounted servers",
        ));
    }
}

/// Every peer's program must be found where the tick will look: the peer's
/// own `--env PATH=`, else the installed service's PATH, else ours.
/// Why `exe` cannot be run as a program, if it cannot.
fn not_runnable(exe: &Path) -> Option<&'static str> {
    match std::fs::metadata(exe) {
        Err(_) => Some("does not exist"),
        Ok(md) if !md.is_file() => Some("is not a file"),
        Ok(md) if md.mode() & 0o111 == 0 => Some("is not executable"),
        Ok(_) => None,
    }
}

fn check_peers(root: &Root, tick_path: Option<&str>, out: &mut Vec<Finding>) {
    let ids = match peer::list(root) {
        Ok(ids) => ids,
        Err(e) => {
            out.push(error("peers", format!("{e:#}"), "check the permissions of peers/"));
            return;
        }
    };
    let current = std::env::var("PATH").unwrap_or_default();
    let mut bad = 0;
    for id in &ids {
        let spec = match peer::load(root, id) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                bad += 1;
                out.push(error("peers", format!("{e:#}"), format!("muxvisor add {id} -- PROGRAM")));
                continue;
            }
        };
        if !spec.cwd.is_dir() {
            bad += 1;
            out.push(error(
                "peers",
                format!("{id}: working directory {} does not exist", spec.cwd.display()),
                format!("create it, or `muxvisor add {id} --cwd DIR -- ...` again"),
            ));
            continue;
        }
        // A spec written by hand or by an older muxvisor that `add` would
        // refuse today: tmux refuses every start of it.
        if let Ok(exe) = std::env::current_exe()
            && let Err(e) = crate::lifecycle::session::check_fits(root.dir(), &exe, &spec)
        {
            bad += 1;
            out.push(error(
                "peers",
                format!("{e:#}"),
                format!(
                    "`muxvisor add {id} ...` again with a shorter command (put long data in a \
                     file the program reads, or in --env-file)"
                ),
            ));
            continue;
        }
        let Some(program) = spec.command.first() else { continue };
        let path =
            spec.env.get("PATH").map(String::as_str).or(tick_path).unwrap_or(current.as_str());
        if let Err(e) = crate::lifecycle::session::check_program(program, &spec.cwd, Some(path)) {
            bad += 1;
            out.push(error(
                "peers",
                format!("{id}: {e:#}"),
                format!(
                    "install {program}, or register it with an absolute path: \
                     `muxvisor add {id} -- /path/to/{program} ...`"
                ),
            ));
        }
    }
    if bad == 0 {
        out.push(ok("peers", format!("{} peer(s), every program found", ids.len())));
    }
}

/// The notification hook: absent, off, refused (and why), or running, with
/// its last failure if nothing was delivered since.
fn check_notify(root: &Root, out: &mut Vec<Finding>) {
    use crate::lifecycle::notify::{self, Hook};
    let hook = root.on_event_hook();
    out.push(match notify::check(root) {
        Hook::Absent => ok("notify", format!("no {}: events are only logged", hook.display())),
        Hook::Disabled => warn(
            "notify",
            format!("{} is not executable, so it is off", hook.display()),
            format!("chmod u+x {}", hook.display()),
        ),
        Hook::Refused { why, fix } => error("notify", format!("hook refused: {why}"), fix),
        Hook::Ready { .. } => match notify::last_trouble(root) {
            Some(r) if notify::Cursor::load(root).last_ok.is_none_or(|t| r.ts > t) => warn(
                "notify",
                format!("the last notification did not go out: {}", r.raw),
                format!("read {} (the hook's output)", root.notify_log().display()),
            ),
            _ => ok("notify", format!("{} runs for each event", hook.display())),
        },
    });
}

/// Run every check. `flag` is `--root`; the root is resolved, not opened.
pub fn run(flag: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let root = super::unopened_root(flag)?;
    let mut findings = vec![check_tmux()];
    let tmux_ok = findings[0].level != Level::Error;
    let usable = check_root(&root, &mut findings);
    if usable {
        let tick_path = check_service(&root, &mut findings);
        if tmux_ok {
            check_ghosts(&root, &mut findings);
        }
        check_peers(&root, tick_path.as_deref(), &mut findings);
        check_notify(&root, &mut findings);
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.iter().filter(|f| f.level == Level::Warn).count();
    if json {
        output::json(&serde_json::json!({
            "ok": errors == 0,
            "root": root.dir(),
            "errors": errors,
            "warnings": warnings,
            "findings": findings,
        }))?;
    } else {
        for f in &findings {
            let tag = match f.level {
                Level::Ok => "ok   ",
                Level::Warn => "WARN ",
                Level::Error => "ERROR",
            };
            output::line(format!("{tag} {}: {}", f.check, f.message))?;
            if let Some(fix) = &f.fix {
                output::line(format!("      fix: {fix}"))?;
            }
        }
        output::line(format!(
            "{} problem(s), {} warning(s) for root {}",
            errors,
            warnings,
            root.dir().display()
        ))?;
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tmux_versions() {
        let bin = Path::new("/usr/bin/tmux");
        assert_eq!(tmux_finding(bin, "tmux 3.1c").level, Level::Warn);
        let f = tmux_finding(bin, "tmux 3.3a");
        assert_eq!(f.level, Level::Ok);
        assert!(f.message.contains("SIGCHLD"), "{}", f.message);
        assert!(!tmux_finding(bin, "tmux 3.6").message.contains("SIGCHLD"));
        assert_eq!(tmux_finding(bin, "tmux master").level, Level::Warn);
    }

    #[test]
    fn tick_findings() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        let sd = Some((Kind::Systemd, 60));
        assert_eq!(tick_finding(sd, ago(30), now).level, Level::Ok);
        assert_eq!(tick_finding(sd, ago(180), now).level, Level::Ok);
        let late = tick_finding(sd, ago(181), now);
        assert_eq!(late.level, Level::Warn);
        assert!(late.fix.unwrap().contains("journalctl"));
        assert_eq!(tick_finding(sd, None, now).level, Level::Warn);
        let none = tick_finding(None, None, now);
        assert_eq!(none.fix.as_deref(), Some("muxvisor service install"));
        assert_eq!(tick_finding(None, ago(10), now).level, Level::Ok);
    }

    #[test]
    fn last_tick_is_the_latest_tick_line() {
        let t = tempfile::Builder::new().prefix("mvd").tempdir_in("/tmp").unwrap();
        let log = t.path().join("lifecycle.log");
        assert_eq!(last_tick(&log).unwrap(), None);
        let at = |h| Utc.with_ymd_and_hms(2026, 11, 22, h, 0, 0).unwrap();
        let mut text = String::new();
        text.push_str(&logfmt::Event::at(at(1), "tick").kv("peers", 0).line());
        text.push_str(&logfmt::Event::at(at(2), "tick").kv("peers", 1).line());
        text.push_str(&logfmt::Event::at(at(3), "launch").line());
        text.push_str("garbage line\n");
        std::fs::write(&log, text).unwrap();
        assert_eq!(last_tick(&log).unwrap(), Some(at(2)));
    }
}
