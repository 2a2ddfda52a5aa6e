//! The one tmux invocation that creates an identity's server, and the verbs
//! around it (version, canary channel, kill-server). The builders are pure
//! so that the quoting of everything user-controlled (root path, argv, env,
//! cwd) is unit-tested; the session module only runs what they return.
//!
//! Why one invocation: all commands joined with `;` run before the server
//! processes the child's exit, so the exit hook and `remain-on-exit` are in
//! place even for a program that dies at once.
//!
//! Where quoting is needed and why:
//! - the `pane-died` hook is a tmux command string (parsed by tmux's own
//!   parser when set) running a `/bin/sh` line that tmux format-expands: each
//!   word is shell-quoted, `#` doubled, then the line wrapped in a tmux
//!   double-quoted string ([`quote::tmux_string`]); only our own
//!   `#{pane_dead_status}`-style formats stay single;
//! - the `pipe-pane` command is a `/bin/sh` line that tmux format-expands;
//! - `new-session -c` is format-expanded, so `#` is doubled there;
//! - argv after `--` is passed verbatim (the trailing-`;`
//!   escape is applied by [`Cmd::arg`]).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use super::{Cmd, Tmux, TmuxError, quote, tmux_path};
use crate::ground::proc::wait_deadline;
use crate::model::peer::Identity;

/// The canary's wait-for channel for `id`.
pub fn canary_channel(id: &Identity) -> String {
    format!("muxvisor-canary-{id}")
}

/// Everything the launch invocation needs, already decided.
#[derive(Clone, Debug)]
pub struct LaunchPlan<'a> {
    pub id: &'a Identity,
    /// Absolute path of the muxvisor binary the hook and pipe will run.
    pub exe: &'a Path,
    pub root: &'a Path,
    pub cwd: &'a Path,
    /// muxvisor's own settings (`MUXVISOR_*`) for the hook and the pane-log
    /// copier, given on their command lines (`/usr/bin/env K=V ...`) so
    /// that they never reach the pane's program through the server's
    /// environment. The program's environment is the client's (see
    /// [`Tmux::with_env`]), not part of this command.
    pub settings: Vec<(String, String)>,
    pub argv: Vec<String>,
    /// tmux >= 3.3: `remain-on-exit-format` exists.
    pub has_remain_format: bool,
}

/// The `/bin/sh` line (already `#`-doubled) that runs a muxvisor subcommand
/// from inside tmux, with `settings` in its environment (values with a
/// control character are left out: they are muxvisor's own numbers and
/// paths).
fn self_command(exe: &Path, root: &Path, settings: &[(String, String)], rest: &[&str]) -> String {
    let mut words: Vec<String> = Vec::new();
    let settings: Vec<String> = settings
        .iter()
        .filter(|(_, v)| !v.chars().any(char::is_control))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !settings.is_empty() {
        words.push("/usr/bin/env".into());
        words.extend(settings);
    }
    words.extend([
        exe.to_string_lossy().into_owned(),
        "--root".into(),
        root.to_string_lossy().into(),
    ]);
    words.extend(rest.iter().map(|s| s.to_string()));
    quote::shell_command_for_tmux(&words)
}

/// The body of the `pane-died` hook: a tmux command string.
pub fn hook_command(
    exe: &Path,
    root: &Path,
    settings: &[(String, String)],
    id: &Identity,
) -> String {
    let line = format!(
        "{} --status '#{{pane_dead_status}}' --signal '#{{pane_dead_signal}}' --pid '#{{pane_pid}}'",
        self_command(exe, root, settings, &["_hook", "pane-died", id.as_str()])
    );
    format!("run-shell -b {}", quote::tmux_string(&line))
}

/// The `pipe-pane` shell command that copies pane output to its log. tmux
/// runs it with `/bin/sh -c`; `exec` makes the shell become the copier, so
/// the copier is one process, not a shell waiting on it.
pub fn pipe_command(
    exe: &Path,
    root: &Path,
    settings: &[(String, String)],
    id: &Identity,
) -> String {
    format!("exec {}", self_command(exe, root, settings, &["_pane-log", id.as_str()]))
}

/// The whole launch as one tmux command line. Its stdout is one line,
/// `<server pid> <pane pid>`.
pub fn launch_cmd(p: &LaunchPlan) -> Cmd {
    let target = p.id.target();
    let mut c = Cmd::new("set-option").args(["-g", "remain-on-exit", "on"]);
    if p.has_remain_format {
        c = c.then("set-option").args(["-g", "remain-on-exit-format", ""]);
    }
    c = c
        .then("set-option")
        .args(["-g", "exit-empty", "off"])
        .then("set-option")
        .args(["-g", "exit-unattached", "off"])
        .then("set-option")
        .args(["-g", "destroy-unattached", "off"])
        .then("set-hook")
        .args(["-g", "pane-died"])
        .arg(hook_command(p.exe, p.root, &p.settings, p.id))
        .then("new-session")
        .args(["-d", "-s", p.id.as_str(), "-x", "200", "-y", "50", "-c"])
        .arg(quote::escape_format(&p.cwd.to_string_lossy()))
        .arg("--")
        .args(&p.argv);
    c.then("pipe-pane")
        .arg("-t")
        .arg(&target)
        .arg(pipe_command(p.exe, p.root, &p.settings, p.id))
        .then("display-message")
        .args(["-p", "-t"])
        .arg(&target)
        .arg("#{pid} #{pane_pid}")
}

/// Parse `<server pid> <pane pid>` from the launch's stdout.
pub fn parse_pids(stdout: &str) -> (Option<i32>, Option<i32>) {
    let mut it = stdout.split_whitespace().map(|s| s.parse::<i32>().ok());
    (it.next().flatten(), it.next().flatten())
}

/// `(major, minor)` from `tmux -V` output such as `tmux 3.3a` or
/// `tmux next-3.6`. Pure.
pub fn parse_version(s: &str) -> Option<(u32, u32)> {
    let v = s.trim().strip_prefix("tmux")?.trim();
    let v = v.strip_prefix("next-").unwrap_or(v);
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String =
        parts.next().unwrap_or("0").chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((major, minor.parse().unwrap_or(0)))
}

/// Point the server's `pane-died` hook at `exe` (the binary moved).
pub fn set_pane_died_hook(
    tmux: &Tmux,
    exe: &Path,
    root: &Path,
    settings: &[(String, String)],
    id: &Identity,
) -> Result<(), TmuxError> {
    let cmd =
        Cmd::new("set-hook").args(["-g", "pane-died"]).arg(hook_command(exe, root, settings, id));
    tmux.run(&cmd).map(|_| ())
}

/// Remove the server's `pane-died` hook (before a deliberate stop).
pub fn unhook_pane_died(tmux: &Tmux) -> Result<(), TmuxError> {
    tmux.run(&Cmd::new("set-hook").arg("-gu").arg("pane-died")).map(|_| ())
}

/// The installed tmux's version, asked once per process (with a deadline).
pub fn version() -> Option<(u32, u32)> {
    static V: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *V.get_or_init(|| {
        let bin = tmux_path().ok()?;
        let mut out = tempfile::tempfile().ok()?;
        let child = std::process::Command::new(bin)
            .arg("-V")
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().ok()?)
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        wait_deadline(child, Duration::from_secs(3)).ok()??;
        use std::io::{Read, Seek};
        let mut s = String::new();
        out.rewind().ok()?;
        out.read_to_string(&mut s).ok()?;
        parse_version(&s)
    })
}

/// Wake every canary waiting on `id`'s channel (and the next one to wait).
pub fn signal_canary(tmux: &Tmux, id: &Identity) -> Result<(), TmuxError> {
    tmux.run(&Cmd::new("wait-for").arg("-S").arg(canary_channel(id))).map(|_| ())
}

/// One more worker window in `id`'s running server (`add --workers N`):
/// `argv` in a new window that does not become the current one (the
/// session's current pane stays the first runner's, which is what
/// observing, `screen` and `attach` look at). Its stdout is the new pane's
/// pid; the window's dead panes are what [`dead_worker_panes`] finds.
pub fn worker_window_cmd(id: &Identity, cwd: &Path, argv: &[String]) -> Cmd {
    Cmd::new("new-window")
        .args(["-d", "-P", "-F", "#{pane_pid}", "-t"])
        .arg(id.target())
        .arg("-c")
        .arg(quote::escape_format(&cwd.to_string_lossy()))
        .arg("--")
        .args(argv)
}

/// Start `argv` again in the current pane of `id`'s session, which is dead
/// (`remain-on-exit` kept it): the first runner of a peer whose worker
/// windows still run. Its stdout is the pane's new pid.
pub fn respawn_cmd(id: &Identity, cwd: &Path, argv: &[String]) -> Cmd {
    Cmd::new("respawn-pane")
        .arg("-t")
        .arg(id.target())
        .arg("-c")
        .arg(quote::escape_format(&cwd.to_string_lossy()))
        .arg("--")
        .args(argv)
        .then("display-message")
        .args(["-p", "-t"])
        .arg(id.target())
        .arg("#{pane_pid}")
}

/// A dead pane of a worker window: its id, its program's pid, and how it
/// ended (tmux's `#{pane_dead_status}`, `#{pane_dead_signal}`, empty when
/// unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadWorkerPane {
    pub pane: String,
    pub pid: Option<i32>,
    pub status: String,
    pub signal: String,
}

/// The dead panes of `id`'s worker windows (every window but the first
/// runner's, index 0): a worker runner killed outright leaves its pane
/// dead (`remain-on-exit`) until removed.
pub fn dead_worker_panes(tmux: &Tmux, id: &Identity) -> Result<Vec<DeadWorkerPane>, TmuxError> {
    let cmd = Cmd::new("list-panes")
        .args(["-s", "-t"])
        .arg(id.target())
        .arg("-F")
        .arg("#{window_index}|#{pane_dead}|#{pane_id}|#{pane_pid}|#{pane_dead_status}|#{pane_dead_signal}");
    let out = tmux.run(&cmd)?;
    Ok(out.stdout.lines().filter_map(parse_dead_worker_pane).collect())
}

/// One line of [`dead_worker_panes`]' listing, if it is a dead worker
/// pane. Pure.
fn parse_dead_worker_pane(line: &str) -> Option<DeadWorkerPane> {
    let f: Vec<&str> = line.split('|').collect();
    let [w, dead, pane, pid, status, signal] = f[..] else { return None };
    (w != "0" && dead == "1").then(|| DeadWorkerPane {
        pane: pane.to_string(),
        pid: pid.trim().parse().ok(),
        status: status.trim().to_string(),
        signal: signal.trim().to_string(),
    })
}

/// `kill-pane -t PANE`.
pub fn kill_pane(tmux: &Tmux, pane: &str) -> Result<(), TmuxError> {
    tmux.run(&Cmd::new("kill-pane").arg("-t").arg(pane)).map(|_| ())
}

/// Let pane `pane` close when its program exits, without a `pane-died`
/// hook: a worker runner that retires leaves no dead pane and no death.
pub fn close_on_exit(tmux: &Tmux, pane: &str) -> Result<(), TmuxError> {
    let cmd = Cmd::new("set-option").args(["-p", "-t"]).arg(pane).args(["remain-on-exit", "off"]);
    tmux.run(&cmd).map(|_| ())
}

/// `kill-server`.
pub fn kill_server(tmux: &Tmux) -> Result<(), TmuxError> {
    tmux.run(&Cmd::new("kill-server")).map(|_| ())
}

#[cfg(test)]
mod tests {

    #[test]
    fn dead_worker_pane_lines() {
        let dead = parse_dead_worker_pane("2|1|%7|4242||9").unwrap();
        assert_eq!(dead.pane, "%7");
        assert_eq!(dead.pid, Some(4242));
        assert_eq!((dead.status.as_str(), dead.signal.as_str()), ("", "9"));
        assert!(parse_dead_worker_pane("0|1|%0|4000|1|").is_none(), "the first runner's");
        assert!(parse_dead_worker_pane("1|0|%3|4001||").is_none(), "alive");
        assert!(parse_dead_worker_pane("garbage").is_none());
    }

    use super::*;
    use std::process::Command;

    fn id() -> Identity {
        Identity::parse("w1").unwrap()
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("tmux 3.3a"), Some((3, 3)));
        assert_eq!(parse_version("tmux 3.6"), Some((3, 6)));
        assert_eq!(parse_version("tmux next-3.6"), Some((3, 6)));
        assert_eq!(parse_version("tmux 2.9a\n"), Some((2, 9)));
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version("tmux next-3.7"), Some((3, 7)));
        assert_eq!(parse_version("tmux master"), None);
        assert_eq!(parse_version("screen 4"), None);
    }

    #[test]
    fn pids() {
        assert_eq!(parse_pids("12 34\n"), (Some(12), Some(34)));
        assert_eq!(parse_pids(""), (None, None));
    }

    #[test]
    fn hook_quotes_hostile_root_and_keeps_our_formats() {
        let root = Path::new("/tmp/a'b $x #(touch X) ;c");
        let h = hook_command(Path::new("/bin/mv x"), root, &[], &id());
        assert!(h.starts_with("run-shell -b \""), "{h}");
        // The user's `#` is doubled, ours are not; `$` is escaped for tmux.
        assert!(h.contains("##(touch X)"), "{h}");
        assert!(!h.replace("##", "").contains("#("), "{h}");
        assert!(h.contains("'#{pane_dead_status}'"), "{h}");
        assert!(h.contains("\\$x"), "{h}");
    }

    #[test]
    fn pipe_command_survives_sh_after_format_unescape() {
        let root = Path::new("/tmp/a'b $(id) #{pane_pid} ;c");
        let p = pipe_command(Path::new("/bin/echo"), root, &[], &id());
        // tmux turns `##` into `#`; then sh must see the exact words.
        let after_tmux = p.replace("##", "#");
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", after_tmux.trim_start_matches("exec '/bin/echo' ")))
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got, format!("--root\n{}\n_pane-log\nw1\n", root.display()));
    }

    #[test]
    fn launch_cmd_is_one_invocation_in_order() {
        let plan = LaunchPlan {
            id: &id(),
            exe: Path::new("/bin/mv"),
            root: Path::new("/r"),
            cwd: Path::new("/home/#me"),
            settings: vec![("MUXVISOR_X".into(), "b;#".into())],
            argv: vec!["prog".into(), "a;".into(), "#{pane_pid}".into()],
            has_remain_format: true,
        };
        let c = launch_cmd(&plan);
        let v: Vec<String> = c.as_args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let verbs: Vec<&str> = v
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || v[i - 1] == ";")
            .map(|(_, s)| s.as_str())
            .collect();
        assert_eq!(
            verbs,
            [
                "set-option",
                "set-option",
                "set-option",
                "set-option",
                "set-option",
                "set-hook",
                "new-session",
                "pipe-pane",
                "display-message"
            ]
        );
        assert!(v.contains(&"/home/##me".to_string()), "{v:?}");
        assert!(
            v.iter().any(|a| a.contains("/usr/bin/env") && a.contains("MUXVISOR_X=b;##")),
            "{v:?}"
        );
        assert!(v.contains(&"a\\;".to_string()), "{v:?}");
        assert!(v.contains(&"#{pane_pid}".to_string()), "{v:?}");
        assert!(v.contains(&"=w1:".to_string()), "{v:?}");
    }
}
