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
        script(&bin.join("launchctl"), &format!("echo \"launchctl $*\" >> '{s}/calls'\nexit 0\n"));
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
}

fn tmux_dir() -> String {
    let out = Command::new("sh").args(["-c", "command -v tmux"]).output().unwrap();
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    p.parent().unwrap().display().to_string()
}

fn env_read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_default()
}

fn exe() -> String {
    fs::canonicalize(BIN).unwrap().display().to_string()
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
    // With systemctl --user answering, systemd is the default kind on Linux.
    let out = fake.mv(&env, &["service", "install", "--interval", "90s"]);
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
    // And with no kind given, no user manager means cron.
    let out = fake.mv(&env, &["service", "install", "--print"]);
    out.ok();
    assert!(out.stdout.contains("crontab"), "{out:?}");
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
