//! The environment a peer's program runs with: its own, written down, and
//! the same whoever launches it (you in a shell, the tick under cron,
//! launchd or systemd, `send`'s kick, a pane-died hand-over).
//!
//! It is made of, later layers winning:
//! 1. the **base**: `HOME`, `USER`, `LOGNAME`, `SHELL`, `PATH`, `LANG`,
//!    `LANGUAGE`, `LC_*`, `TZ` and `TMPDIR`, taken from the environment of
//!    the first `add` and recorded in the spec (`base_env`). A spec written
//!    before the base was recorded (or a variable `add` did not have) gets
//!    the account's values instead: `HOME`, `USER`, `LOGNAME` and `SHELL`
//!    from the password database, `PATH` = [`DEFAULT_PATH`];
//! 2. the spec's **env file** (`--env-file`), read at every launch (and by
//!    a runner before every task), so a rotated secret is picked up;
//! 3. the spec's **`--env`** pairs;
//! 4. `MUXVISOR_IDENTITY` and `MUXVISOR_ROOT`.
//!
//! Nothing else of the launcher's environment reaches the program: the
//! tmux client that starts a peer's server runs with exactly this set, so
//! the server's global environment, which its panes inherit, is the
//! peer's. tmux itself adds `TERM`, `TERM_PROGRAM`, `TERM_PROGRAM_VERSION`,
//! `TMUX` and `TMUX_PANE` in every pane. muxvisor's own `MUXVISOR_*`
//! settings of the launcher configure the hook and pane-log processes and
//! the runner, never the program ([`settings`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::model::peer::{PeerSpec, valid_env_name};

/// The names of the base (plus every `LC_*`).
pub const BASE_NAMES: &[&str] =
    &["HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR"];

/// The PATH of a peer whose recorded base has none.
#[cfg(target_os = "macos")]
pub const DEFAULT_PATH: &str = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
#[cfg(not(target_os = "macos"))]
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// Names muxvisor sets itself (or tmux does): refused in `--env` and in an
/// env file, as they would be overwritten or would mislead muxvisor.
pub const RESERVED: &[&str] = &[
    "MUXVISOR_IDENTITY",
    "MUXVISOR_ROOT",
    "MUXVISOR_TASK_ID",
    "MUXVISOR_TASK_FILE",
    "MUXVISOR_EVENT",
    "TMUX",
    "TMUX_PANE",
];

/// Shown by `status` in place of a value that came from the env file, so
/// that secrets are not printed.
pub fn file_marker(file: &Path) -> String {
    format!("(from {})", file.display())
}

/// A base variable: one of [`BASE_NAMES`] or `LC_*`.
pub fn is_base_name(name: &str) -> bool {
    BASE_NAMES.contains(&name) || name.starts_with("LC_")
}

/// Refuse a name muxvisor sets itself. `from` says where it was given.
pub fn check_not_reserved(name: &str, from: &str) -> Result<()> {
    if RESERVED.contains(&name) {
        bail!(
            "{from}: {name} is set by muxvisor (or tmux) itself and cannot be given; \
             reserved names: {}",
            RESERVED.join(", ")
        );
    }
    Ok(())
}

/// The account's part of the base, from the password database of the
/// effective user, and [`DEFAULT_PATH`]. The same for every launcher.
pub fn account_base() -> BTreeMap<String, String> {
    let mut base = BTreeMap::new();
    if let Ok(Some(u)) = nix::unistd::User::from_uid(nix::unistd::geteuid()) {
        base.insert("HOME".into(), u.dir.to_string_lossy().into_owned());
        base.insert("USER".into(), u.name.clone());
        base.insert("LOGNAME".into(), u.name);
        let shell = u.shell.to_string_lossy().into_owned();
        if !shell.is_empty() {
            base.insert("SHELL".into(), shell);
        }
    }
    base.insert("PATH".into(), DEFAULT_PATH.into());
    base
}

/// The base to record for a new peer: the base variables of `vars` (the
/// environment of `add`), completed by the account's for those it lacks.
/// Values with a NUL or that are not UTF-8 are skipped. Pure apart from
/// `account`.
pub fn capture_base(
    vars: impl IntoIterator<Item = (String, String)>,
    account: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut base: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(k, v)| is_base_name(k) && valid_env_name(k) && !v.contains('\0'))
        .filter(|(k, v)| !(k == "PATH" && v.is_empty()))
        .collect();
    for (k, v) in account {
        base.entry(k.clone()).or_insert_with(|| v.clone());
    }
    base
}

/// The base to record from this process's environment.
pub fn capture_base_here() -> BTreeMap<String, String> {
    capture_base(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        &account_base(),
    )
}

/// Parse an env file: `KEY=VALUE` lines, the value taken literally to the
/// end of the line (no quotes removed, no `$` expanded); blank lines and
/// lines starting with `#` are skipped; a trailing `\r` is dropped; a
/// leading `export ` is allowed. A bad line is an error naming the file
/// and the line number. Later lines win. Pure.
pub fn parse_env_file(file: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = || format!("env file {} line {}", file.display(), n + 1);
        let body = trimmed.strip_prefix("export ").map(str::trim_start).unwrap_or(trimmed);
        let Some((k, v)) = body.split_once('=') else {
            bail!(
                "{}: expected KEY=VALUE, found {:?}",
                at(),
                crate::ground::output::inert_line(line)
            );
        };
        if !valid_env_name(k) {
            bail!(
                "{}: {:?} is not a valid environment name (letters, digits and '_', not \
                 starting with a digit)",
                at(),
                crate::ground::output::inert_line(k)
            );
        }
        if v.contains('\0') {
            bail!("{}: the value of {k} contains a NUL byte", at());
        }
        check_not_reserved(k, &at())?;
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Read and parse `file`; every error names it.
pub fn read_env_file(file: &Path) -> Result<Vec<(String, String)>> {
    let bytes =
        std::fs::read(file).with_context(|| format!("cannot read env file {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("env file {} is not UTF-8 text", file.display()))?;
    parse_env_file(file, &text)
}

/// Where a variable of a peer's environment came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Base,
    File,
    Spec,
    Muxvisor,
}

/// A peer's whole environment, each value with its source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerEnv {
    pub vars: BTreeMap<String, (String, Source)>,
}

impl PeerEnv {
    /// Name and value pairs, sorted by name.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.vars.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|(v, _)| v.as_str())
    }

    /// What `status` shows: the values from the env file replaced by
    /// [`file_marker`].
    pub fn masked(&self, file: Option<&Path>) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .map(|(k, (v, s))| match (s, file) {
                (Source::File, Some(f)) => (k.clone(), file_marker(f)),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    }
}

/// The base of `spec`: recorded, completed by the account's. Pure apart
/// from the password database.
pub fn base(spec: &PeerSpec) -> BTreeMap<String, String> {
    match &spec.base_env {
        Some(b) => {
            // The password database only for what the record lacks: a
            // lookup reads nsswitch.conf and passwd, on every `send`.
            let own = capture_base(b.clone(), &BTreeMap::new());
            if ACCOUNT_NAMES.iter().all(|k| own.contains_key(*k)) {
                own
            } else {
                capture_base(b.clone(), &account_base())
            }
        }
        None => account_base(),
    }
}

/// The names [`account_base`] can give.
const ACCOUNT_NAMES: [&str; 5] = ["HOME", "USER", "LOGNAME", "SHELL", "PATH"];

/// Assemble the layers (see the module header). Pure.
pub fn assemble(
    spec: &PeerSpec,
    base: BTreeMap<String, String>,
    file: &[(String, String)],
    root: &Path,
) -> PeerEnv {
    let mut vars: BTreeMap<String, (String, Source)> =
        base.into_iter().map(|(k, v)| (k, (v, Source::Base))).collect();
    for (k, v) in file {
        vars.insert(k.clone(), (v.clone(), Source::File));
    }
    for (k, v) in &spec.env {
        vars.insert(k.clone(), (v.clone(), Source::Spec));
    }
    vars.insert("MUXVISOR_IDENTITY".into(), (spec.identity.to_string(), Source::Muxvisor));
    vars.insert("MUXVISOR_ROOT".into(), (root.to_string_lossy().into_owned(), Source::Muxvisor));
    PeerEnv { vars }
}

/// `spec`'s environment now, its env file read; an env file that cannot be
/// read is an error naming it.
pub fn resolve(spec: &PeerSpec, root: &Path) -> Result<PeerEnv> {
    let file = match &spec.env_file {
        Some(f) => read_env_file(f)?,
        None => Vec::new(),
    };
    Ok(assemble(spec, base(spec), &file, root))
}

/// `spec`'s environment without its env file (a runner's own pane: the
/// runner reads the file before each task).
pub fn resolve_without_file(spec: &PeerSpec, root: &Path) -> PeerEnv {
    assemble(spec, base(spec), &[], root)
}

/// muxvisor's own settings in this process's environment (`MUXVISOR_*`
/// other than the names muxvisor sets per peer or task): given to the
/// hook, the pane-log copier and the runner so they behave as the
/// launcher's muxvisor does, and never to a peer's program.
pub fn settings() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("MUXVISOR_") && !RESERVED.contains(&k.as_str()))
        .collect();
    v.sort();
    v
}

/// Resolve a `--env-file` argument to the absolute path recorded.
pub fn absolute(file: &Path) -> Result<PathBuf> {
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir().context("finding the current directory for --env-file")?.join(file)
    };
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::peer::{Identity, Policy};

    fn spec() -> PeerSpec {
        PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Persistent,
            vec!["x".into()],
            "/".into(),
        )
    }

    #[test]
    fn the_base_takes_only_base_names_and_fills_from_the_account() {
        let account: BTreeMap<String, String> =
            [("HOME", "/home/a"), ("USER", "a"), ("PATH", DEFAULT_PATH)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let vars = [("HOME", "/h"), ("SECRET", "s"), ("LC_ALL", "C.UTF-8"), ("PATH", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let b = capture_base(vars, &account);
        assert_eq!(b.get("HOME").map(String::as_str), Some("/h"));
        assert_eq!(b.get("USER").map(String::as_str), Some("a"));
        assert_eq!(b.get("LC_ALL").map(String::as_str), Some("C.UTF-8"));
        assert_eq!(b.get("PATH").map(String::as_str), Some(DEFAULT_PATH));
        assert!(!b.contains_key("SECRET"));
    }

    #[test]
    fn env_files_parse_and_bad_lines_are_named() {
        let f = Path::new("/e/f.env");
        let ok = "# c\n\nA=1\r\nexport B=x=y\n  C=\"q\" \nA=2\n";
        let v = parse_env_file(f, ok).unwrap();
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "\"q\" ".into()),
                ("A".into(), "2".into())
            ]
        );
        for (text, line) in [("A=1\nnoeq\n", 2), ("1A=x", 1), ("A=1\n\nB-C=2", 3)] {
            let e = format!("{:#}", parse_env_file(f, text).unwrap_err());
            assert!(e.contains(&format!("env file /e/f.env line {line}")), "{e}");
        }
        let e = format!("{:#}", parse_env_file(f, "MUXVISOR_IDENTITY=x").unwrap_err());
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn layers_win_in_order_and_file_values_are_masked() {
        let mut s = spec();
        s.env.insert("B".into(), "spec".into());
        s.env.insert("HOME".into(), "/spec-home".into());
        let base: BTreeMap<String, String> =
            [("HOME".to_string(), "/h".to_string()), ("PATH".into(), "/p".into())].into();
        let file = vec![("A".into(), "secret".into()), ("B".into(), "file".into())];
        let e = assemble(&s, base, &file, Path::new("/r"));
        assert_eq!(e.get("A"), Some("secret"));
        assert_eq!(e.get("B"), Some("spec"));
        assert_eq!(e.get("HOME"), Some("/spec-home"));
        assert_eq!(e.get("PATH"), Some("/p"));
        assert_eq!(e.get("MUXVISOR_IDENTITY"), Some("w"));
        assert_eq!(e.get("MUXVISOR_ROOT"), Some("/r"));
        let m = e.masked(Some(Path::new("/s.env")));
        assert_eq!(m["A"], "(from /s.env)");
        assert_eq!(m["B"], "spec");
    }

    #[test]
    fn a_spec_without_a_recorded_base_gets_the_accounts() {
        let s = spec();
        assert!(s.base_env.is_none());
        let e = resolve(&s, Path::new("/r")).unwrap();
        assert_eq!(e.get("PATH"), Some(DEFAULT_PATH));
    }
}
