//! Installing the periodic tick where the machine already runs periodic jobs:
//! a launchd LaunchAgent on macOS, a systemd user timer where `systemctl
//! --user` works, else one tagged crontab line. muxvisor needs no daemon of
//! its own; this module is how it gets run every interval.
//!
//! The shape: [`Spec`] says what to run (absolute binary, root, interval, an
//! explicit PATH, because launchd and cron give a minimal one that lacks
//! Homebrew and ~/.local/bin); `render` turns it into file contents and a
//! crontab line (pure); `cron` edits crontab text (pure); the functions here
//! read and write files and call the managers through `exec`, with deadlines.
//! Everything written carries the `muxvisor-supervise` mark, and uninstall
//! removes only marked files and lines.

pub mod cron;
pub mod exec;
pub mod render;

use std::ffi::OsStr;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::ground::fsutil;
use crate::ground::paths::Root;

/// Where the tick is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Launchd,
    Systemd,
    Cron,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Launchd, Kind::Systemd, Kind::Cron];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Launchd => "launchd",
            Kind::Systemd => "systemd",
            Kind::Cron => "cron",
        })
    }
}

/// What the service runs, already validated as text every format can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Absolute path of the muxvisor binary.
    pub exe: String,
    /// Absolute root.
    pub root: String,
    pub interval_s: u64,
    /// The PATH the tick runs with.
    pub path: String,
    /// Where launchd and cron send the tick's stdout and stderr.
    pub stdout_log: String,
    pub stderr_log: String,
    /// More `supervise` options the tick runs with (admission limits).
    pub extra: Vec<String>,
    /// Variables the tick runs with besides PATH: every setting that chose
    /// muxvisor's behaviour where `service install` ran (the tmux it found,
    /// `MUXVISOR_TMUX`, and the `MUXVISOR_*` settings of [`CARRIED`]), so
    /// that the installed tick behaves as the shell that installed it.
    pub env: Vec<(String, String)>,
}

/// The settings `service install` carries into the entry when they are set
/// where it runs (`MUXVISOR_TMUX` is always written: the tmux found then).
pub const CARRIED: [&str; 7] = [
    "MUXVISOR_MAX_STARTING",
    "MUXVISOR_MIN_MEM_AVAILABLE",
    "MUXVISOR_LOG_MAX",
    "MUXVISOR_PANE_LOG_MAX",
    "MUXVISOR_NOTIFY_TIMEOUT",
    "MUXVISOR_NOTIFY_BACKLOG",
    "MUXVISOR_SETTLE_MS",
];

fn text(p: &Path, what: &str) -> Result<String> {
    let s = p.to_str().with_context(|| {
        format!("{what} {} is not valid UTF-8; service files cannot name it", p.display())
    })?;
    if s.chars().any(char::is_control) {
        bail!("{what} {s:?} contains a control character; service files cannot name it safely");
    }
    if !p.is_absolute() {
        bail!("{what} {s} is not absolute");
    }
    Ok(s.to_string())
}

impl Spec {
    /// Validate and assemble. The interval must be whole seconds, at least 1.
    pub fn new(exe: &Path, root: &Root, interval: Duration, path: String) -> Result<Spec> {
        if interval.subsec_nanos() != 0 || interval.as_secs() == 0 {
            bail!(
                "--interval {} is not a whole number of seconds (at least 1s)",
                crate::ground::duration::format(interval)
            );
        }
        Ok(Spec {
            exe: text(exe, "the muxvisor binary")?,
            root: text(root.dir(), "root")?,
            interval_s: interval.as_secs(),
            path,
            stdout_log: text(&root.service_out(), "log")?,
            stderr_log: text(&root.service_err(), "log")?,
            extra: Vec::new(),
            env: Vec::new(),
        })
    }
}

/// The path of the muxvisor binary for the service to run: the path this
/// process was started by (`argv0`, as given or found on `path_env`), as long
/// as it leads to this same binary `exe`, else `exe` itself. A package
/// manager's `bin/` symlink (Homebrew's `/opt/homebrew/bin/muxvisor`)
/// survives upgrades; the versioned path it points to (`.../Cellar/<ver>/`)
/// does not, so it is never resolved away.
pub fn stable_exe(
    argv0: Option<&OsStr>,
    path_env: Option<&OsStr>,
    cwd: &Path,
    exe: &Path,
) -> PathBuf {
    let exe = cwd.join(exe);
    let candidate = argv0.and_then(|a| {
        if Path::new(a).components().count() > 1 {
            Some(cwd.join(a))
        } else {
            which::which_in(a, path_env, cwd).ok()
        }
    });
    // `a/./b` is `a/b`; a `..` could cross a symlink, so such a path is
    // not used.
    let candidate = candidate
        .filter(|c| c.components().all(|x| x != Component::ParentDir))
        .map(|c| c.components().collect::<PathBuf>());
    match candidate {
        Some(c) if std::fs::canonicalize(&c).ok() == std::fs::canonicalize(&exe).ok() => c,
        _ => exe,
    }
}

/// The PATH for the service: the directories of tmux and of muxvisor as found
/// now, then the installer's own PATH (so peers' programs resolve as they do
/// in the user's shell), then the usual system directories. Only absolute,
/// printable entries without `:`; no duplicates.
pub fn search_path(tmux_dir: Option<&Path>, exe_dir: Option<&Path>, current: &str) -> String {
    let mut dirs: Vec<String> = Vec::new();
    let mut push = |d: &str| {
        let ok = d.starts_with('/') && !d.contains(':') && !d.chars().any(char::is_control);
        if ok && !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_string());
        }
    };
    for d in [tmux_dir, exe_dir].into_iter().flatten() {
        if let Some(s) = d.to_str() {
            push(s);
        }
    }
    for d in current.split(':') {
        push(d);
    }
    for d in ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        push(d);
    }
    dirs.join(":")
}

/// Where the service files live, from HOME and XDG_CONFIG_HOME, so tests (and
/// users) can point them elsewhere.
#[derive(Clone, Debug)]
pub struct Host {
    pub home: Option<PathBuf>,
    pub config_home: Option<PathBuf>,
}

impl Host {
    pub fn from_env() -> Host {
        let abs = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
        Host {
            home: abs(std::env::var_os("HOME")),
            config_home: abs(std::env::var_os("XDG_CONFIG_HOME")),
        }
    }

    fn home(&self) -> Result<&Path> {
        self.home
            .as_deref()
            .context("HOME is not set (or not absolute); set it to your home directory")
    }

    /// `~/Library/LaunchAgents/io.muxvisor.supervise.plist`
    pub fn plist(&self) -> Result<PathBuf> {
        Ok(self
            .home()?
            .join("Library/LaunchAgents")
            .join(format!("{}.plist", render::LAUNCHD_LABEL)))
    }

    /// `$XDG_CONFIG_HOME/systemd/user` (default `~/.config/systemd/user`).
    pub fn systemd_dir(&self) -> Result<PathBuf> {
        let base = match &self.config_home {
            Some(c) => c.clone(),
            None => self.home()?.join(".config"),
        };
        Ok(base.join("systemd/user"))
    }
}

/// The kind to use when none is asked for, and why: launchd on macOS,
/// systemd when `systemctl --user` answers, else cron.
pub fn default_kind() -> (Kind, &'static str) {
    if cfg!(target_os = "macos") {
        return (Kind::Launchd, "this is macOS, where launchd runs per-user jobs");
    }
    if systemd_usable() {
        return (Kind::Systemd, "`systemctl --user` answers here");
    }
    (Kind::Cron, "this is not macOS and `systemctl --user` does not answer here")
}

/// launchd starts a job at most once every 10 s (its default
/// ThrottleInterval), whatever StartInterval asks for.
pub const LAUNCHD_MIN_INTERVAL_S: u64 = 10;

/// How often the installed entry really runs the tick: launchd never more
/// often than every [`LAUNCHD_MIN_INTERVAL_S`], cron every minute at most.
pub fn effective_interval(kind: Kind, interval_s: u64) -> u64 {
    match kind {
        Kind::Launchd => interval_s.max(LAUNCHD_MIN_INTERVAL_S),
        Kind::Cron => interval_s.max(60),
        Kind::Systemd => interval_s,
    }
}

/// True when a user service manager answers (with a deadline: a missing user
/// bus can make systemctl wait).
pub fn systemd_usable() -> bool {
    matches!(
        exec::run("systemctl", &["--user", "show-environment"], None, Duration::from_secs(3)),
        Ok(Some(r)) if r.ok
    )
}

/// One file or crontab change, planned or done.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// A file path, or `crontab`.
    pub target: String,
    /// `write`, `remove` or `unchanged`.
    pub op: &'static str,
    /// The new content for `write` (the full new crontab for cron).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// What install or uninstall did (or, with `print`, would do).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub kind: Kind,
    /// Why this kind (asked for with a flag, or chosen for this machine).
    pub why: String,
    pub action: &'static str,
    /// True with `--print`: nothing was changed.
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// Whether the manager now runs it (systemd/launchd); `None` when it was
    /// not asked (print, cron, manager unavailable).
    pub enabled: Option<bool>,
    /// Things the user should know or do next.
    pub notes: Vec<String>,
    /// A preview of an install that could not run here (no `crontab`):
    /// it is shown all the same, and the command exits 1.
    #[serde(skip)]
    pub would_fail: bool,
}

/// Whether and where the tick is installed.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub kind: Kind,
    pub installed: bool,
    /// Files (launchd, systemd) or `crontab`.
    pub locations: Vec<String>,
    /// Whether the manager has it loaded/active; `None` if unknown.
    pub loaded: Option<bool>,
    /// The interval written in the installed entry, if it can be read back.
    pub interval_s: Option<u64>,
    /// The installed entry runs for this root (false: another root's unit).
    pub for_this_root: bool,
    pub detail: Option<String>,
    /// The PATH the installed tick runs with, read back from the entry.
    pub path: Option<String>,
    /// The muxvisor binary the installed tick runs, read back from the entry.
    pub exe: Option<String>,
}

fn write_file(path: &Path, content: &str, dry_run: bool) -> Result<Change> {
    let old = fsutil::read_if_exists(path)?;
    let op = if old.as_deref() == Some(content.as_bytes()) { "unchanged" } else { "write" };
    if !dry_run && op == "write" {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fsutil::atomic_write(path, content.as_bytes())?;
    }
    Ok(Change { target: path.display().to_string(), op, content: Some(content.to_string()) })
}

/// Remove `path` if install wrote it (it carries our mark); refuse a file of
/// the same name that someone else wrote.
fn remove_marked(path: &Path, dry_run: bool) -> Result<Option<Change>> {
    let Some(old) = fsutil::read_if_exists(path)? else { return Ok(None) };
    if !String::from_utf8_lossy(&old).contains(render::MARK) {
        bail!(
            "{} was not written by `muxvisor service install` (no {} mark); remove it yourself \
             if it should go",
            path.display(),
            render::MARK
        );
    }
    if !dry_run {
        fsutil::remove_if_exists(path)?;
    }
    Ok(Some(Change { target: path.display().to_string(), op: "remove", content: None }))
}

fn systemctl(args: &[&str]) -> Result<exec::Ran> {
    let mut full = vec!["--user"];
    full.extend_from_slice(args);
    let ran = exec::run("systemctl", &full, None, exec::TIMEOUT)?
        .context("systemctl is not installed")?;
    if !ran.ok {
        bail!("`systemctl --user {}` failed ({})", args.join(" "), ran.describe());
    }
    Ok(ran)
}

/// The user's crontab text (empty when they have none).
pub fn read_crontab() -> Result<String> {
    let ran = exec::run("crontab", &["-l"], None, exec::TIMEOUT)?
        .context("crontab is not installed; install cron, or use --systemd / --launchd")?;
    if ran.ok {
        return Ok(ran.stdout);
    }
    if ran.stderr.to_lowercase().contains("no crontab") {
        return Ok(String::new());
    }
    bail!("`crontab -l` failed ({})", ran.describe())
}

fn write_crontab(content: &str) -> Result<()> {
    let mut f = tempfile::NamedTempFile::new().context("creating a temp file for the crontab")?;
    std::io::Write::write_all(&mut f, content.as_bytes()).context("writing the new crontab")?;
    let path = f.path().to_str().context("temp path is not UTF-8")?.to_string();
    let ran =
        exec::run("crontab", &[&path], None, exec::TIMEOUT)?.context("crontab is not installed")?;
    if !ran.ok {
        bail!("`crontab {path}` failed ({}); your crontab was not changed", ran.describe());
    }
    Ok(())
}

/// launchd and systemd entries have fixed names, so one install serves one
/// root: say so when this install takes over another root's entry.
fn replaced_other_root(path: &Path, this_root: &str) -> Result<Option<String>> {
    let Some(old) = fsutil::read_if_exists(path)? else { return Ok(None) };
    let old = String::from_utf8_lossy(&old);
    if !old.contains(render::MARK) || old.contains(this_root) {
        return Ok(None);
    }
    Ok(Some(format!(
        "{} ran the tick for another root; it now runs it for this one (one root per \
         launchd/systemd install; use --cron for several roots)",
        path.display()
    )))
}

/// How long install and uninstall wait for launchd to forget a job it is
/// booting out (it refuses a new bootstrap of the label until then).
const LAUNCHD_FORGET_WAIT: Duration = Duration::from_secs(10);
/// How long install keeps retrying a refused bootstrap after that.
const LAUNCHD_BOOTSTRAP_RETRY: Duration = Duration::from_secs(5);

/// launchd's names for our job: the user's GUI domain and the job in it.
fn launchd_target() -> (String, String) {
    let domain = format!("gui/{}", nix::unistd::getuid().as_raw());
    let target = format!("{domain}/{}", render::LAUNCHD_LABEL);
    (domain, target)
}

fn launchctl(args: &[&str]) -> Result<exec::Ran> {
    exec::run("launchctl", args, None, exec::TIMEOUT)?.context("launchctl is not installed")
}

/// True while launchd knows the job (`launchctl print` describes it).
fn launchd_knows(target: &str) -> Result<bool> {
    Ok(launchctl(&["print", target])?.ok)
}

/// Poll until launchd no longer knows `target`; false if it still does
/// after `wait`.
fn launchd_forget(target: &str, wait: Duration) -> Result<bool> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if !launchd_knows(target)? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (Re)load the agent so that a changed interval or PATH takes effect:
/// bootout (harmless when not loaded), wait until launchd has forgotten
/// the job (a bootstrap during its teardown fails with "5: Input/output
/// error"), bootstrap, retrying a refusal for a bounded time, and check
/// that launchd knows the job at the end. An error says what to run.
fn launchd_load(plist: &Path) -> Result<()> {
    let (domain, target) = launchd_target();
    let p = plist.display().to_string();
    let by_hand = format!(
        "{p} is written; load it with `launchctl bootstrap {domain} {p}` and check with \
         `launchctl print {target}`"
    );
    let _ = launchctl(&["bootout", &target])?;
    if !launchd_forget(&target, LAUNCHD_FORGET_WAIT)? {
        bail!(
            "launchd still knows {target} {} s after `launchctl bootout`, so the new agent was \
             not loaded; {by_hand}",
            LAUNCHD_FORGET_WAIT.as_secs()
        );
    }
    let deadline = std::time::Instant::now() + LAUNCHD_BOOTSTRAP_RETRY;
    loop {
        let ran = launchctl(&["bootstrap", &domain, &p])?;
        if ran.ok {
            break;
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "`launchctl bootstrap {domain} {p}` kept failing for {} s ({}); the agent is NOT \
                 loaded; {by_hand}",
                LAUNCHD_BOOTSTRAP_RETRY.as_secs(),
                ran.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if !launchd_knows(&target)? {
        bail!("`launchctl bootstrap` succeeded but launchd does not know {target}; {by_hand}");
    }
    Ok(())
}

/// Install the tick as `kind` (chosen for `why`); with `dry_run` only say
/// what would change.
pub fn install(kind: Kind, why: &str, spec: &Spec, host: &Host, dry_run: bool) -> Result<Report> {
    let mut r = Report {
        kind,
        why: why.to_string(),
        action: "install",
        dry_run,
        changes: vec![],
        enabled: None,
        notes: vec![],
        would_fail: false,
    };
    match kind {
        Kind::Launchd => {
            if spec.interval_s < LAUNCHD_MIN_INTERVAL_S {
                bail!(
                    "launchd starts a job at most once every {LAUNCHD_MIN_INTERVAL_S} s, so \
                     --interval {}s would silently run every {LAUNCHD_MIN_INTERVAL_S} s; use \
                     --interval {LAUNCHD_MIN_INTERVAL_S}s or more",
                    spec.interval_s
                );
            }
            let path = host.plist()?;
            let this_root = format!("<string>{}</string>", render::xml(&spec.root));
            r.notes.extend(replaced_other_root(&path, &this_root)?);
            r.changes.push(write_file(&path, &render::plist(spec), dry_run)?);
            if dry_run {
                return Ok(r);
            }
            if exec::find("launchctl").is_some() {
                launchd_load(&path)?;
                r.enabled = Some(true);
            } else if cfg!(target_os = "macos") {
                bail!("launchctl is not on PATH; {} is written but not loaded", path.display());
            } else {
                r.notes.push(format!(
                    "launchctl is not available here; on macOS load it with `launchctl \
                     bootstrap gui/$(id -u) {}`",
                    path.display()
                ));
            }
        }
        Kind::Systemd => {
            let dir = host.systemd_dir()?;
            let this_root = render::systemd_word(&spec.root, true);
            r.notes.extend(replaced_other_root(&dir.join(render::SYSTEMD_SERVICE), &this_root)?);
            r.changes.push(write_file(
                &dir.join(render::SYSTEMD_SERVICE),
                &render::systemd_service(spec),
                dry_run,
            )?);
            r.changes.push(write_file(
                &dir.join(render::SYSTEMD_TIMER),
                &render::systemd_timer(spec),
                dry_run,
            )?);
            if dry_run {
                return Ok(r);
            }
            if systemd_usable() {
                systemctl(&["daemon-reload"])?;
                systemctl(&["enable", "--now", render::SYSTEMD_TIMER])?;
                // The first tick now rather than one interval from now.
                let _ = systemctl(&["start", "--no-block", render::SYSTEMD_SERVICE]);
                r.enabled = Some(true);
            } else {
                r.enabled = Some(false);
                r.notes.push(format!(
                    "`systemctl --user` does not answer here, so the timer was written but not \
                     enabled. In a user session run: systemctl --user daemon-reload && \
                     systemctl --user enable --now {}",
                    render::SYSTEMD_TIMER
                ));
            }
        }
        Kind::Cron => {
            let line = render::cron_line(spec).map_err(anyhow::Error::msg)?;
            let old = match read_crontab() {
                Ok(old) => old,
                // A preview needs no crontab: show the line it would add.
                Err(e) if dry_run => {
                    r.notes.push(format!(
                        "{e:#}; this is the line install would add, but install would fail here"
                    ));
                    r.would_fail = true;
                    r.changes.push(Change {
                        target: "crontab".into(),
                        op: "write",
                        content: Some(line),
                    });
                    return Ok(r);
                }
                Err(e) => return Err(e),
            };
            let new = cron::with(&old, &spec.root, &line);
            let op = if new == old { "unchanged" } else { "write" };
            if !dry_run && op == "write" {
                write_crontab(&new)?;
            }
            r.changes.push(Change { target: "crontab".into(), op, content: Some(line) });
        }
    }
    Ok(r)
}

/// Remove what install wrote for `kind` (for cron: this root's line only).
pub fn uninstall(kind: Kind, why: &str, root: &str, host: &Host, dry_run: bool) -> Result<Report> {
    let mut r = Report {
        kind,
        why: why.to_string(),
        action: "uninstall",
        dry_run,
        changes: vec![],
        enabled: None,
        notes: vec![],
        would_fail: false,
    };
    match kind {
        Kind::Launchd => {
            let path = host.plist()?;
            if !dry_run && path.exists() && exec::find("launchctl").is_some() {
                let (_, target) = launchd_target();
                // Not loaded: bootout fails harmlessly.
                let _ = launchctl(&["bootout", &target])?;
                if !launchd_forget(&target, LAUNCHD_FORGET_WAIT)? {
                    r.notes.push(format!(
                        "launchd still knows {target} after `launchctl bootout`; check with \
                         `launchctl print {target}`"
                    ));
                }
            }
            r.changes.extend(remove_marked(&path, dry_run)?);
        }
        Kind::Systemd => {
            let dir = host.systemd_dir()?;
            let service = dir.join(render::SYSTEMD_SERVICE);
            let timer = dir.join(render::SYSTEMD_TIMER);
            let usable = !dry_run && (service.exists() || timer.exists()) && systemd_usable();
            if usable {
                // Stopping a timer that is not loaded is not an error worth failing on.
                let _ = systemctl(&["disable", "--now", render::SYSTEMD_TIMER]);
            }
            r.changes.extend(remove_marked(&timer, dry_run)?);
            r.changes.extend(remove_marked(&service, dry_run)?);
            if usable {
                systemctl(&["daemon-reload"])?;
            }
        }
        Kind::Cron => {
            let old = read_crontab()?;
            let (new, n) = cron::without(&old, root);
            if n > 0 {
                if !dry_run {
                    write_crontab(&new)?;
                }
                for l in cron::entries(&old, root) {
                    r.changes.push(Change {
                        target: "crontab".into(),
                        op: "remove",
                        content: Some(l.to_string()),
                    });
                }
            }
        }
    }
    if r.changes.is_empty() {
        r.notes.push(format!("nothing to remove: no {kind} entry is installed"));
    }
    Ok(r)
}

/// Read `key=<n>s` style values back from an installed file.
fn interval_from(content: &str, key: &str, suffix: &str) -> Option<u64> {
    let start = content.find(key)? + key.len();
    let rest = &content[start..];
    let end = rest.find(suffix)?;
    rest[..end].trim().parse().ok()
}

/// Whether the tick is installed as `kind`, and where.
pub fn status(kind: Kind, root: &str, host: &Host) -> Result<Status> {
    let mut s = Status {
        kind,
        installed: false,
        locations: vec![],
        loaded: None,
        interval_s: None,
        for_this_root: false,
        detail: None,
        path: None,
        exe: None,
    };
    match kind {
        Kind::Launchd => {
            let path = host.plist()?;
            if let Some(b) = fsutil::read_if_exists(&path)? {
                let c = String::from_utf8_lossy(&b);
                s.installed = true;
                s.locations.push(path.display().to_string());
                s.interval_s = interval_from(&c, "<key>StartInterval</key>\n  <integer>", "<");
                s.path = render::path_from(Kind::Launchd, &c);
                s.exe = render::exe_from(Kind::Launchd, &c);
                s.for_this_root = c.contains(&format!("<string>{}</string>", render::xml(root)));
                if exec::find("launchctl").is_some() {
                    s.loaded = Some(launchd_knows(&launchd_target().1)?);
                }
            }
        }
        Kind::Systemd => {
            let dir = host.systemd_dir()?;
            let service = dir.join(render::SYSTEMD_SERVICE);
            let timer = dir.join(render::SYSTEMD_TIMER);
            let sv = fsutil::read_if_exists(&service)?;
            let tm = fsutil::read_if_exists(&timer)?;
            if sv.is_some() || tm.is_some() {
                s.installed = sv.is_some() && tm.is_some();
                if !s.installed {
                    s.detail = Some("only one of the service and the timer exists; run `muxvisor service install --systemd` again".into());
                }
                for (p, c) in [(&service, &sv), (&timer, &tm)] {
                    if c.is_some() {
                        s.locations.push(p.display().to_string());
                    }
                }
                if let Some(t) = &tm {
                    s.interval_s =
                        interval_from(&String::from_utf8_lossy(t), "OnUnitActiveSec=", "s\n");
                }
                if let Some(v) = &sv {
                    let v = String::from_utf8_lossy(v);
                    s.for_this_root = v.contains(&render::systemd_word(root, true));
                    s.path = render::path_from(Kind::Systemd, &v);
                    s.exe = render::exe_from(Kind::Systemd, &v);
                }
                if systemd_usable() {
                    let ran = exec::run(
                        "systemctl",
                        &["--user", "is-active", render::SYSTEMD_TIMER],
                        None,
                        exec::TIMEOUT,
                    )?;
                    s.loaded = ran.map(|r| r.ok && r.stdout.trim() == "active");
                }
            }
        }
        Kind::Cron => {
            if exec::find("crontab").is_none() {
                s.detail = Some("crontab is not installed".into());
                return Ok(s);
            }
            let ct = read_crontab()?;
            let ours = cron::entries(&ct, root);
            if let Some(line) = ours.first() {
                s.installed = true;
                s.for_this_root = true;
                s.locations.push("crontab".into());
                s.interval_s = cron_interval(line);
                s.detail = Some((*line).to_string());
                s.path = render::path_from(Kind::Cron, line);
                s.exe = render::exe_from(Kind::Cron, line);
            }
        }
    }
    Ok(s)
}

/// The interval of one of our crontab lines, from its schedule.
fn cron_interval(line: &str) -> Option<u64> {
    let f: Vec<&str> = line.split_whitespace().take(5).collect();
    match f.as_slice() {
        ["*", "*", "*", "*", "*"] => Some(60),
        ["0", "*", "*", "*", "*"] => Some(3600),
        ["0", "0", "*", "*", "*"] => Some(86_400),
        ["0", h, "*", "*", "*"] => h.strip_prefix("*/")?.parse::<u64>().ok().map(|n| n * 3600),
        [m, "*", "*", "*", "*"] => m.strip_prefix("*/")?.parse::<u64>().ok().map(|n| n * 60),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_puts_tmux_first_and_drops_junk() {
        let p = search_path(
            Some(Path::new("/opt/tmux/bin")),
            Some(Path::new("/home/u/.cargo/bin")),
            "/usr/bin:relative:/a:b:/opt/tmux/bin::/x\ny",
        );
        let dirs: Vec<&str> = p.split(':').collect();
        assert_eq!(&dirs[..4], ["/opt/tmux/bin", "/home/u/.cargo/bin", "/usr/bin", "/a"]);
        assert!(dirs.contains(&"/bin"));
        assert!(!dirs.iter().any(|d| !d.starts_with('/') || d.contains('\n')), "{p}");
        let mut sorted = dirs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), dirs.len(), "duplicates in {p}");
    }

    #[test]
    fn the_installed_binary_keeps_the_symlink_it_was_started_by() {
        use std::os::unix::fs::symlink;
        let t = tempfile::Builder::new().prefix("mvs").tempdir_in("/tmp").unwrap();
        let cellar = t.path().join("Cellar/muxvisor/1.2.3/bin");
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&cellar).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let real = cellar.join("muxvisor");
        std::fs::write(&real, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&real, bin.join("muxvisor")).unwrap();
        let other = bin.join("other");
        std::fs::write(&other, "").unwrap();
        let cwd = t.path();
        let os = |p: &Path| Some(p.as_os_str().to_owned());
        let link = bin.join("muxvisor");
        // Started through the symlink, by path or by name on PATH: kept.
        assert_eq!(stable_exe(os(&link).as_deref(), None, cwd, &real), link);
        assert_eq!(stable_exe(Some(OsStr::new("muxvisor")), os(&bin).as_deref(), cwd, &real), link);
        assert_eq!(stable_exe(Some(OsStr::new("bin/muxvisor")), None, cwd, &real), link);
        assert_eq!(stable_exe(Some(OsStr::new("./bin/muxvisor")), None, cwd, &real), link);
        // Anything that is not this binary, or has a `..`: the binary itself.
        assert_eq!(stable_exe(os(&other).as_deref(), None, cwd, &real), real);
        assert_eq!(stable_exe(Some(OsStr::new("bin/../bin/muxvisor")), None, cwd, &real), real);
        assert_eq!(stable_exe(Some(OsStr::new("nope")), os(&bin).as_deref(), cwd, &real), real);
        assert_eq!(stable_exe(None, None, cwd, &real), real);
    }

    #[test]
    fn launchd_and_cron_never_run_more_often_than_they_can() {
        assert_eq!(effective_interval(Kind::Launchd, 5), 10);
        assert_eq!(effective_interval(Kind::Launchd, 60), 60);
        assert_eq!(effective_interval(Kind::Cron, 30), 60);
        assert_eq!(effective_interval(Kind::Systemd, 5), 5);
    }

    #[test]
    fn spec_refuses_fractional_intervals_and_control_characters() {
        let root = Root::new("/r".into());
        let ok = Spec::new(Path::new("/bin/mv"), &root, Duration::from_secs(60), "/bin".into());
        assert_eq!(ok.unwrap().stdout_log, "/r/logs/service.out");
        let e = Spec::new(Path::new("/bin/mv"), &root, Duration::from_millis(1500), "/bin".into());
        assert!(format!("{:#}", e.unwrap_err()).contains("whole number of seconds"));
        let bad = Root::new("/r\nx".into());
        let e = Spec::new(Path::new("/bin/mv"), &bad, Duration::from_secs(60), "/bin".into());
        assert!(format!("{:#}", e.unwrap_err()).contains("control character"));
    }

    #[test]
    fn intervals_read_back_from_what_we_write() {
        let spec = Spec {
            exe: "/b/mv".into(),
            root: "/r".into(),
            interval_s: 120,
            path: "/bin".into(),
            stdout_log: "/r/o".into(),
            stderr_log: "/r/e".into(),
            extra: Vec::new(),
            env: Vec::new(),
        };
        assert_eq!(
            interval_from(&render::systemd_timer(&spec), "OnUnitActiveSec=", "s\n"),
            Some(120)
        );
        assert_eq!(
            interval_from(&render::plist(&spec), "<key>StartInterval</key>\n  <integer>", "<"),
            Some(120)
        );
        assert_eq!(cron_interval(&render::cron_line(&spec).unwrap()), Some(120));
        for secs in [60, 300, 3600, 7200, 86_400] {
            let l = render::cron_line(&Spec { interval_s: secs, ..spec.clone() }).unwrap();
            assert_eq!(cron_interval(&l), Some(secs), "{l}");
        }
    }
}
