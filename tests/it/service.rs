//! `service install|uninstall|status` against FAKE `crontab`, `systemctl` and
//! `launchctl` scripts placed first on PATH, with HOME and XDG_CONFIG_HOME in
//! the test's temp dir. The fakes record their argv and keep the crontab in a
//! file, so the real user's crontab and systemd are never touched.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::fixture::*;

pub struct Fake {
    pub bin: PathBuf,
    pub state: PathBuf,
    pub home: PathBuf,
}

fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

impl Fake {
    /// Fakes under the test's scratch dir; `systemd_up` says whether
    /// `systemctl --user` answers.
    pub fn new(env: &Env, systemd_up: bool) -> Fake {
        let base = env.scratch().join("fake");
        let (bin, state, home) = (base.join("bin"), base.join("state"), base.join("home"));
        for d in [&bin, &state, &home] {
            fs::create_dir_all(d).unwrap();
        }
        let s = state.display();
        script(
            &bin.join("crontab"),
            &format!(
                r#"echo "crontab $*" >> '{s}/calls'
if [ "$1" = "-l" ]; then
  if [ -f '{s}/crontab' ]; then cat '{s}/crontab'; exit 0; fi
  echo "no crontab for $(id -un)" >&2; exit 1
fi
cp "$1" '{s}/crontab'
"#
            ),
        );
        let up = if systemd_up { "0" } else { "1" };
        script(
            &bin.join("systemctl"),
            &format!(
                r#"echo "systemctl $*" >> '{s}/calls'
case "$2" in
  show-environment) [ {up} = 0 ] || echo "Failed to connect to bus" >&2; exit {up} ;;
  enable) touch '{s}/timer-active' ;;
  disable) rm -f '{s}/timer-active' ;;
  is-active) if [ -f '{s}/timer-active' ]; then echo active; exit 0; fi; echo inactive; exit 3 ;;
esac
exit 0
"#
            ),
        );
        // launchd as it behaves: after `bootout` it keeps the job for a while
        // (here: the next 3 `print`s), and a `bootstrap` meanwhile is refused
        // with "5: Input/output error"; `refuse` holds extra refusals.
        script(
            &bin.join("launchctl"),
            &format!(
                r#"echo "launchctl $*" >> '{s}/calls'
n() {{ cat '{s}'/"$1" 2>/dev/null || echo 0; }}
case "$1" in
  print)
    t=$(n teardown)
    if [ -f '{s}/loaded' ] || [ "$t" -gt 0 ]; then
      if [ "$t" -gt 0 ]; then echo $((t - 1)) > '{s}/teardown'; fi
      echo "$2 = {{ state = not running }}"; exit 0
    fi
    echo "Could not find service "io.muxvisor.supervise" in domain for user gui: 0" >&2; exit 113 ;;
  bootout)
    if [ -f '{s}/loaded' ]; then rm -f '{s}/loaded'; echo 3 > '{s}/teardown'; exit 0; fi
    echo "Boot-out failed: 3: No such process" >&2; exit 3 ;;
  bootstrap)
    r=$(n refuse)
    if [ "$(n teardown)" -gt 0 ] || [ "$r" -gt 0 ]; then
      if [ "$r" -gt 0 ]; then echo $((r - 1)) > '{s}/refuse'; fi
      echo "Bootstrap failed: 5: Input/output error" >&2; exit 5
    fi
    touch '{s}/loaded'; exit 0 ;;
esac
exit 0
"#
            ),
        );
        Fake { bin, state, home }
    }

    pub fn cmd(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(root).args(args);
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        c.env("PATH", path)
            .env("HOME", &self.home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("MUXVISOR_ROOT")
            .env_remove("TMUX");
        c
    }

    pub fn mv(&self, env: &Env, args: &[&str]) -> Out {
        run_deadline(self.cmd(env.root(), args), None, CMD_DEADLINE)
    }

    pub fn calls(&self) -> String {
        fs::read_to_string(self.state.join("calls")).unwrap_or_default()
    }

    pub fn crontab(&self) -> String {
        fs::read_to_string(self.state.join("crontab")).unwrap_or_default()
    }

    pub fn units(&self) -> PathBuf {
        self.home.join(".config/systemd/user")
    }

    pub fn plist(&self) -> PathBuf {
        self.home.join("Library/LaunchAgents/io.muxvisor.supervise.plist")
    }

    /// True while the fake launchd has the agent loaded.
    pub fn launchd_loaded(&self) -> bool {
        self.state.join("loaded").exists()
    }
}

fn tmux_dir() -> String {
    let out = Command::new("sh").args(["-c", "command -v tmux"]).output().unwrap();
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    p.parent().unwrap().display().to_string()
}

fn env_read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_default()
}

/// The binary as the tests run it: the service keeps the path it was
/// started by, without resolving symlinks.
fn exe() -> String {
    BIN.to_string()
}

const USER_CRONTAB: &str =
    "# my own jobs\nMAILTO=me@example.org\n0 3 * * * /usr/bin/backup --all\n";

#[test]
fn cron_install_is_idempotent_and_uninstall_leaves_the_users_lines() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fs::write(fake.state.join("crontab"), USER_CRONTAB).unwrap();

    let out = fake.mv(&env, &["service", "install", "--cron"]);
    out.ok();
    assert!(out.stdout.contains("crontab line"), "{out:?}");
    fake.mv(&env, &["service", "install", "--cron"]).ok();

    let ct = fake.crontab();
    assert!(ct.starts_with(USER_CRONTAB), "user lines changed:\n{ct}");
    let ours: Vec<&str> = ct.lines().filter(|l| l.contains("muxvisor-supervise")).collect();
    assert_eq!(ours.len(), 1, "{ct}");
    let line = ours[0];
    let root = env.root().display().to_string();
    assert!(line.starts_with("* * * * * "), "{line}");
    assert!(
        line.contains(&format!("'{}' 'supervise' '--once' '--root' '{root}'", exe())),
        "{line}"
    );
    assert!(line.ends_with(&format!("# muxvisor-supervise root={root}")), "{line}");
    let path = line.split("PATH='").nth(1).unwrap().split('\'').next().unwrap();
    assert!(path.split(':').any(|d| d == tmux_dir()), "PATH {path} lacks tmux's dir");

    let st = fake.mv(&env, &["service", "status", "--cron", "--json"]);
    st.ok();
    let v = st.json();
    assert_eq!(v["installed"], true);
    assert_eq!(v["services"][0]["interval_s"], 60);
    let lc = env.read("logs/lifecycle.log");
    assert!(lc.contains("ev=service-install") && lc.contains("kind=cron"), "{lc}");

    let out = fake.mv(&env, &["service", "uninstall", "--cron"]);
    out.ok();
    assert_eq!(fake.crontab(), USER_CRONTAB);
    fake.mv(&env, &["service", "status", "--cron"]).code(1);
    // Uninstalling again is a no-op that still succeeds.
    fake.mv(&env, &["service", "uninstall", "--cron"]).ok();
    assert_eq!(fake.crontab(), USER_CRONTAB);
}

#[test]
fn cron_refuses_sub_minute_and_uneven_intervals_without_touching_the_crontab() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fs::write(fake.state.join("crontab"), USER_CRONTAB).unwrap();
    let out = fake.mv(&env, &["service", "install", "--cron", "--interval", "30s"]);
    out.code(1);
    assert!(out.stderr.contains("at most once a minute"), "{out:?}");
    assert!(out.stderr.contains("--systemd"), "{out:?}");
    let out = fake.mv(&env, &["service", "install", "--cron", "--interval", "7m"]);
    out.code(1);
    assert!(out.stderr.contains("evenly"), "{out:?}");
    assert_eq!(fake.crontab(), USER_CRONTAB);
    assert!(!fake.calls().contains("crontab /"), "crontab was written: {}", fake.calls());
    // A whole, even number of minutes is fine.
    fake.mv(&env, &["service", "install", "--cron", "--interval", "5m"]).ok();
    assert!(fake.crontab().contains("\n*/5 * * * * umask 077; PATH="), "{}", fake.crontab());
}

#[test]
fn cron_entries_of_two_roots_are_independent_and_a_hostile_root_survives_sh() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    // A root full of characters that sh, cron and logfmt care about.
    let hostile = env.scratch().join("it's 50% $HOME `x` #r");
    let run = |root: &Path, args: &[&str]| run_deadline(fake.cmd(root, args), None, CMD_DEADLINE);

    fake.mv(&env, &["service", "install", "--cron"]).ok();
    run(&hostile, &["service", "install", "--cron"]).ok();
    let ct = fake.crontab();
    assert_eq!(ct.lines().count(), 2, "{ct}");

    // Run the hostile root's entry the way cron would: undo cron's `%`
    // escaping and hand the command to /bin/sh. It must reach muxvisor with
    // the root intact (the tick's output lands in that root's logs).
    let line = ct.lines().find(|l| l.contains("it'\\''s")).expect("hostile entry").to_string();
    let command: String = line.splitn(6, ' ').nth(5).unwrap().replace("\\%", "%");
    let out = run_deadline(
        {
            // cron's usual umask: the entry itself must make its logs private.
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(format!("umask 022; {command}"));
            c
        },
        None,
        CMD_DEADLINE,
    );
    // Whatever the tick decides, muxvisor itself ran for that root: it
    // either recorded a tick there or said why not, prefixed `muxvisor:`
    // (a quoting error would leave sh's "not found" or a wrong path instead).
    let ran = env_read(&hostile, "logs/lifecycle.log").contains(" ev=tick ")
        || env_read(&hostile, "logs/service.err").starts_with("muxvisor: ");
    assert!(
        ran,
        "cron command did not run muxvisor for {}: {out:?}\n{}",
        hostile.display(),
        env_read(&hostile, "logs/service.err")
    );

    for log in ["logs/service.out", "logs/service.err"] {
        let mode = fs::metadata(hostile.join(log)).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600), "{log} must be created 0600 by the cron entry");
    }

    run(&hostile, &["service", "uninstall", "--cron"]).ok();
    let ct = fake.crontab();
    assert_eq!(ct.lines().count(), 1, "{ct}");
    assert!(ct.contains(&format!("root={}", env.root().display())), "{ct}");
    fake.mv(&env, &["service", "status", "--cron"]).ok();
    run(&hostile, &["service", "status", "--cron"]).code(1);
}

#[test]
fn systemd_install_writes_units_enables_the_timer_and_uninstall_removes_them() {
    let env = Env::new();
    let fake = Fake::new(&env, true);
    let out = fake.mv(&env, &["service", "install", "--systemd", "--interval", "90s"]);
    out.ok();
    assert!(out.stdout.contains("systemd user timer"), "{out:?}");
    assert!(out.stdout.contains("enabled and started"), "{out:?}");

    let service = fs::read_to_string(fake.units().join("muxvisor-supervise.service")).unwrap();
    let timer = fs::read_to_string(fake.units().join("muxvisor-supervise.timer")).unwrap();
    let root = env.root().display().to_string();
    assert!(service.contains("Type=oneshot"), "{service}");
    assert!(
        service.contains(&format!(
            "ExecStart=\"{}\" \"supervise\" \"--once\" \"--root\" \"{root}\"",
            exe()
        )),
        "{service}"
    );
    let env_line = service.lines().find(|l| l.starts_with("Environment=\"PATH=")).unwrap();
    assert!(env_line.contains(&tmux_dir()), "{env_line}");
    for l in ["OnBootSec=90s", "OnUnitActiveSec=90s", "Persistent=true", "WantedBy=timers.target"] {
        assert!(timer.lines().any(|x| x == l), "{l} missing in\n{timer}");
    }
    let calls = fake.calls();
    assert!(calls.contains("systemctl --user daemon-reload"), "{calls}");
    assert!(calls.contains("systemctl --user enable --now muxvisor-supervise.timer"), "{calls}");

    // Twice: the same two files, nothing else.
    fake.mv(&env, &["service", "install", "--systemd", "--interval", "90s"]).ok();
    let mut names: Vec<_> = fs::read_dir(fake.units())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["muxvisor-supervise.service", "muxvisor-supervise.timer"]);

    // The unit names are fixed: installing for a second root says it takes over.
    let other = env.scratch().join("r2");
    let out = run_deadline(
        fake.cmd(&other, &["service", "install", "--systemd", "--print"]),
        None,
        CMD_DEADLINE,
    );
    out.ok();
    assert!(out.stderr.contains("ran the tick for another root"), "{out:?}");

    let st = fake.mv(&env, &["service", "status", "--systemd", "--json"]);
    st.ok();
    let v = st.json();
    assert_eq!(v["services"][0]["loaded"], true, "{v}");
    assert_eq!(v["services"][0]["interval_s"], 90, "{v}");

    fake.mv(&env, &["service", "uninstall", "--systemd"]).ok();
    assert!(fake.calls().contains("systemctl --user disable --now muxvisor-supervise.timer"));
    assert_eq!(fs::read_dir(fake.units()).unwrap().count(), 0);
    let st = fake.mv(&env, &["service", "status", "--systemd"]);
    st.code(1);
    assert!(st.stdout.contains("systemd: not installed"), "{st:?}");
}

#[test]
fn systemd_without_a_user_manager_writes_files_and_says_how_to_enable() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let out = fake.mv(&env, &["service", "install", "--systemd"]);
    out.ok();
    assert!(
        out.stderr.contains("systemctl --user enable --now muxvisor-supervise.timer"),
        "{out:?}"
    );
    assert!(fake.units().join("muxvisor-supervise.timer").exists());
    assert!(!fake.calls().contains(" enable "), "{}", fake.calls());
}

/// The kind chosen without a flag, per OS (launchd on macOS; elsewhere
/// systemd when `systemctl --user` answers, else cron), and the preview
/// says which and why.
#[test]
fn the_default_kind_is_chosen_per_os_and_named_with_its_reason() {
    let env = Env::new();
    for (systemd_up, linux_kind) in [(true, "a systemd user timer"), (false, "a crontab line")] {
        let fake = Fake::new(&env, systemd_up);
        let out = fake.mv(&env, &["service", "install", "--print"]);
        out.ok();
        let first = out.stdout.lines().next().unwrap_or_default();
        let want = if cfg!(target_os = "macos") { "a launchd agent" } else { linux_kind };
        assert!(
            first.starts_with(&format!("# muxvisor service install: {want}, because ")),
            "{out:?}"
        );
    }
}

/// Regression (issue 10, item 12): with neither crontab nor a working
/// `systemctl --user`, `--print` exited 1 with nothing on stdout. A preview
/// needs neither: it shows the line, the kind and why. Issue 18: and since
/// the install it shows would fail there, it says so and exits 1 (a "no").
#[test]
fn print_previews_even_without_crontab_or_a_user_manager() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fs::remove_file(fake.bin.join("crontab")).unwrap();
    for args in
        [&["service", "install", "--print"][..], &["service", "install", "--cron", "--print"]]
    {
        let mut c = fake.cmd(env.root(), args);
        // Only the fakes: no real crontab can be found.
        c.env("PATH", &fake.bin);
        let out = run_deadline(c, None, CMD_DEADLINE);
        if cfg!(target_os = "macos") && args.len() == 3 {
            out.ok();
            continue;
        }
        out.code(1);
        assert!(out.stderr.contains("install would fail here"), "{out:?}");
        assert!(
            out.stdout.starts_with("# muxvisor service install: a crontab line, because "),
            "{out:?}"
        );
        assert!(out.stdout.contains("# muxvisor-supervise root="), "{out:?}");
        assert!(out.stderr.contains("crontab is not installed"), "{out:?}");
    }
    assert!(!fake.calls().contains("crontab"), "{}", fake.calls());
}

/// Issue 18: a preview writes nothing, not even the root directory.
#[test]
fn a_preview_writes_nothing_not_even_the_root() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    for args in [
        &["service", "install", "--cron", "--print"][..],
        &["service", "install", "--systemd", "--print"],
        &["service", "uninstall", "--cron", "--print"],
    ] {
        let out = run_deadline(fake.cmd(env.root(), args), None, CMD_DEADLINE);
        out.ok();
        assert!(!env.root().exists(), "{args:?} created the root: {out:?}");
    }
}

#[test]
fn launchd_plist_parses_and_carries_the_command_path_and_logs() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let hostile = env.scratch().join("a&b <c> \"d\" 'e'");
    let out = run_deadline(
        fake.cmd(&hostile, &["service", "install", "--launchd", "--interval", "2m"]),
        None,
        CMD_DEADLINE,
    );
    out.ok();
    assert!(fake.calls().contains("launchctl bootstrap gui/"), "{}", fake.calls());

    // plistlib validates both the XML and the plist semantics.
    let check = r#"
import json, plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
print(json.dumps(p))
"#;
    let py = run_deadline(
        {
            let mut c = Command::new("python3");
            c.arg("-c").arg(check).arg(fake.plist());
            c
        },
        None,
        Duration::from_secs(30),
    );
    assert_eq!(py.code, 0, "plist does not parse: {py:?}");
    let v: serde_json::Value = serde_json::from_str(&py.stdout).unwrap();
    let root = hostile.display().to_string();
    assert_eq!(v["Label"], "io.muxvisor.supervise");
    assert_eq!(
        v["ProgramArguments"],
        serde_json::json!([exe(), "supervise", "--once", "--root", root])
    );
    assert_eq!(v["StartInterval"], 120);
    assert_eq!(v["StandardOutPath"], format!("{root}/logs/service.out"));
    assert_eq!(v["StandardErrorPath"], format!("{root}/logs/service.err"));
    let path = v["EnvironmentVariables"]["PATH"].as_str().unwrap();
    assert!(path.split(':').any(|d| d == tmux_dir()), "{path}");

    let st =
        run_deadline(fake.cmd(&hostile, &["service", "status", "--launchd"]), None, CMD_DEADLINE);
    st.ok();
    assert!(st.stdout.contains("every 120s"), "{st:?}");
    run_deadline(fake.cmd(&hostile, &["service", "uninstall", "--launchd"]), None, CMD_DEADLINE)
        .ok();
    assert!(!fake.plist().exists());
    assert!(fake.calls().contains("launchctl bootout gui/"), "{}", fake.calls());
}

#[test]
fn print_shows_the_content_and_changes_nothing() {
    let env = Env::new();
    let fake = Fake::new(&env, true);
    fs::write(fake.state.join("crontab"), USER_CRONTAB).unwrap();
    for (flag, needle) in [
        ("--launchd", "<key>StartInterval</key>"),
        ("--systemd", "OnUnitActiveSec=60s"),
        ("--cron", "# muxvisor-supervise root="),
    ] {
        let out = fake.mv(&env, &["service", "install", flag, "--print"]);
        out.ok();
        assert!(out.stdout.contains(needle), "{flag}: {out:?}");
    }
    assert!(!fake.plist().exists());
    assert!(!fake.units().exists());
    assert_eq!(fake.crontab(), USER_CRONTAB);
    let calls = fake.calls();
    assert!(!calls.contains("enable") && !calls.contains("bootstrap"), "{calls}");
    assert!(!calls.contains("crontab /"), "{calls}");
    assert!(!env.read("logs/lifecycle.log").contains("service-install"));
}

#[test]
fn uninstall_refuses_a_unit_it_did_not_write() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fs::create_dir_all(fake.units()).unwrap();
    let theirs = fake.units().join("muxvisor-supervise.service");
    fs::write(&theirs, "[Service]\nExecStart=/usr/bin/true\n").unwrap();
    let out = fake.mv(&env, &["service", "uninstall", "--systemd"]);
    out.code(1);
    assert!(out.stderr.contains("was not written by"), "{out:?}");
    assert!(theirs.exists());
}

/// Regression (issue 12, item 2): `install --launchd` ran `bootout` and
/// then `bootstrap` at once; launchd refuses that bootstrap ("5:
/// Input/output error") while it is still tearing the job down, and the
/// agent was left unloaded with exit 0. Install now waits until `launchctl
/// print` no longer knows the job, retries a refused bootstrap for a bounded
/// time, and fails if the agent is not loaded at the end.
#[test]
fn launchd_reinstall_waits_for_the_bootout_before_bootstrapping() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    fake.mv(&env, &["service", "install", "--launchd"]).ok();
    assert!(fake.launchd_loaded());

    // A reinstall (new interval) must bootout the loaded agent first.
    let out = fake.mv(&env, &["service", "install", "--launchd", "--interval", "2m"]);
    out.ok();
    assert!(out.stdout.contains("enabled and started"), "{out:?}");
    assert!(fake.launchd_loaded(), "agent left unloaded: {}", fake.calls());
    let calls = fake.calls();
    // What the second install did, from its bootout on.
    let first_done = calls.find("launchctl bootstrap").expect("first bootstrap");
    let second = &calls[first_done..];
    let second = &second[second.find("launchctl bootout").expect("bootout")..];
    let bootstrap = second.find("launchctl bootstrap").expect("bootstrap");
    assert!(
        second[..bootstrap].matches("launchctl print").count() >= 3,
        "bootstrap before launchd forgot the job:\n{calls}"
    );

    // launchd refuses twice more after forgetting: retried, then loaded.
    fs::write(fake.state.join("refuse"), "2").unwrap();
    fake.mv(&env, &["service", "install", "--launchd"]).ok();
    assert!(fake.launchd_loaded());

    // It never accepts: exit 1, saying the agent is NOT loaded and how to load it.
    fs::write(fake.state.join("refuse"), "1000").unwrap();
    let out = fake.mv(&env, &["service", "install", "--launchd"]);
    out.code(1);
    assert!(out.stderr.contains("5: Input/output error"), "{out:?}");
    assert!(out.stderr.contains("NOT loaded") && out.stderr.contains("launchctl bootstrap gui/"));
    assert!(!fake.launchd_loaded());
    fs::write(fake.state.join("refuse"), "0").unwrap();

    // Uninstall boots it out and removes the plist.
    fake.mv(&env, &["service", "install", "--launchd"]).ok();
    fake.mv(&env, &["service", "uninstall", "--launchd"]).ok();
    assert!(!fake.launchd_loaded() && !fake.plist().exists());
    let st = fake.mv(&env, &["service", "status", "--launchd"]);
    st.code(1);
}

#[test]
fn launchd_refuses_intervals_under_ten_seconds() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let out = fake.mv(&env, &["service", "install", "--launchd", "--interval", "5s"]);
    out.code(1);
    assert!(out.stderr.contains("at most once every 10 s"), "{out:?}");
    assert!(!fake.plist().exists());
    assert!(!fake.calls().contains("bootstrap"), "{}", fake.calls());
    fake.mv(&env, &["service", "install", "--launchd", "--interval", "10s"]).ok();
}

/// A package manager's `bin/` symlink is what the service runs, not the
/// versioned path behind it (Homebrew's Cellar), which an upgrade removes.
#[test]
fn the_service_runs_the_symlink_muxvisor_was_started_by() {
    let env = Env::new();
    let fake = Fake::new(&env, false);
    let bin = env.scratch().join("brew/bin");
    fs::create_dir_all(&bin).unwrap();
    let link = bin.join("muxvisor");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let run = |mut c: Command| {
        c.arg("--root").arg(env.root()).args(["service", "install", "--launchd", "--print"]);
        c.env("HOME", &fake.home).env_remove("MUXVISOR_ROOT");
        run_deadline(c, None, CMD_DEADLINE)
    };
    let by_path = run(Command::new(&link));
    by_path.ok();
    let first_arg = format!("<array>\n    <string>{}</string>", link.display());
    assert!(by_path.stdout.contains(&first_arg), "{by_path:?}");
    // Found by name on PATH, as a shell or launchd would.
    let mut by_name = Command::new("muxvisor");
    by_name.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    let out = run(by_name);
    out.ok();
    assert!(out.stdout.contains(&first_arg), "{out:?}");
}
