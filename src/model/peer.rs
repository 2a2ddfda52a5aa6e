//! Identities and peer specs. The identity rule lives here and nowhere else:
//! an [`Identity`] can only be made by [`Identity::parse`], so every path,
//! tmux target and log line built from one is safe by construction.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::ground::duration::{serde_human, serde_human_opt};
use crate::ground::fsutil;
use crate::ground::paths::Root;

/// The rule every identity must match, quoted in every refusal.
pub const IDENTITY_RULE: &str = "^[a-z0-9][a-z0-9_-]{0,39}$";

/// A validated peer name; also its tmux session name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Identity(String);

impl Identity {
    /// Accept `s` only if it matches [`IDENTITY_RULE`].
    pub fn parse(s: &str) -> Result<Identity> {
        let b = s.as_bytes();
        let first_ok = b.first().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = b
            .iter()
            .skip(1)
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
        if !first_ok || !rest_ok || b.len() > 40 {
            bail!(
                "invalid identity {s:?}: an identity must match {IDENTITY_RULE} \
                 (lowercase letters, digits, '_' and '-', starting with a letter or digit, \
                 at most 40 characters)"
            );
        }
        Ok(Identity(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The exact tmux target for this identity's session: `=id:`.
    pub fn target(&self) -> String {
        format!("={}:", self.0)
    }
}

/// An identity reads as the plain name it is, so that the layers below the
/// model (paths, files) take a `&str` and know nothing of peers.
impl std::ops::Deref for Identity {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Identity::parse(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    Persistent,
    Ephemeral,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Persistent => "persistent",
            Policy::Ephemeral => "ephemeral",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Never,
    OnFailure,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deliver {
    Argv,
    Keys,
}

/// Everything muxvisor knows about a peer, as stored in `peers/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerSpec {
    pub identity: Identity,
    pub policy: Policy,
    /// argv; `{task}` and `{task_file}` are replaced for ephemeral workers.
    pub command: Vec<String>,
    pub cwd: PathBuf,
    /// `--env`: wins over the env file and the base (see `peer_env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The base environment (HOME, USER, PATH, LANG, ...) recorded from the
    /// first `add`; absent in a spec written before muxvisor recorded it,
    /// which then gets the account's (see `peer_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_env: Option<BTreeMap<String, String>>,
    /// `--env-file`: an absolute path, read at every launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
    #[serde(default, with = "serde_human_opt", skip_serializing_if = "Option::is_none")]
    pub idle_ttl: Option<Duration>,
    #[serde(default, with = "serde_human_opt", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    pub restart: Restart,
    #[serde(with = "serde_human")]
    pub backoff: Duration,
    #[serde(with = "serde_human")]
    pub max_backoff: Duration,
    pub restart_burst: u32,
    #[serde(with = "serde_human")]
    pub restart_window: Duration,
    pub max_attempts: u32,
    #[serde(with = "serde_human")]
    pub task_ttl: Duration,
    #[serde(with = "serde_human")]
    pub task_timeout: Duration,
    pub deliver: Deliver,
    /// How long a runner waits for more tasks before it retires.
    #[serde(default = "default_linger", with = "serde_human")]
    pub linger: Duration,
    /// Most tasks of an ephemeral peer's queue run at once, each by its own
    /// runner in its own pane (`add --workers N`); 1, the default, is the
    /// strict one-at-a-time FIFO. A spec written before has 1.
    #[serde(default = "default_workers", skip_serializing_if = "is_one_worker")]
    pub workers: u32,
    /// The agent preset (`claude`, `codex`, `gemini`, `aider`) whose screen
    /// patterns (and resume arguments) apply; see `agent::presets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Screen patterns (regex, multi-line) that replace the preset's, per
    /// kind: an empty prompt, a turn in progress, a person needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready_patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busy_patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_patterns: Vec<BlockedPattern>,
    /// Output quiet this long (no busy pattern visible) counts as ready for
    /// a peer with no ready pattern.
    #[serde(default = "default_quiet", with = "serde_human")]
    pub quiet: Duration,
    /// When `send` delivers to a persistent peer: at once (`now`), or one
    /// message per ready state (`idle`); unset, see [`PeerSpec::when`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// Arguments appended to `command` at a fresh start and at a resume
    /// (`{session_id}` replaced); see `agent::resume`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fresh_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_args: Vec<String>,
    /// Queued into the mailbox once a usage limit's reset time has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_message: Option<String>,
    /// An agent pool (see [`PeerSpec::is_pool`]): instances kept started
    /// and ready ahead of demand (`add --warm K`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warm: u32,
    /// An agent pool: how long an instance that finished a task waits for
    /// the next one (`add --reuse DUR`).
    #[serde(
        default = "default_reuse",
        with = "serde_human",
        skip_serializing_if = "is_default_reuse"
    )]
    pub reuse: Duration,
    /// An agent pool: text typed (confirmed) between two tasks of one
    /// instance (`add --reset TEXT`, for example `/clear`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_default_reuse(d: &Duration) -> bool {
    *d == DEFAULT_REUSE
}

fn default_reuse() -> Duration {
    DEFAULT_REUSE
}

fn default_linger() -> Duration {
    DEFAULT_LINGER
}

/// The most workers one peer may run at once.
pub const MAX_WORKERS: u32 = 64;

fn default_workers() -> u32 {
    1
}

fn is_one_worker(n: &u32) -> bool {
    *n == 1
}

fn default_quiet() -> Duration {
    DEFAULT_QUIET
}

/// `--blocked-pattern NAME=RE`: when RE is visible, the agent is blocked
/// for reason NAME.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedPattern {
    pub reason: String,
    pub pattern: String,
}

/// When `send` delivers to a persistent peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// Type at once.
    Now,
    /// Queue durably, deliver one message per ready state, in FIFO order.
    Idle,
}

pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
pub const DEFAULT_RESTART_BURST: u32 = 5;
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(600);
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_TASK_TTL: Duration = Duration::from_secs(86_400);
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(3_600);
pub const DEFAULT_LINGER: Duration = Duration::from_secs(2);
pub const DEFAULT_QUIET: Duration = Duration::from_millis(1500);
pub const DEFAULT_REUSE: Duration = Duration::from_secs(60);
/// An agent pool's `--idle-ttl` when none is given.
pub const DEFAULT_POOL_IDLE_TTL: Duration = Duration::from_secs(300);

/// An environment name a spec may hold: letters, digits and `_`, not
/// starting with a digit. (The spec's rule; `peer_env` uses it too, and
/// the spec does not depend on `peer_env`.)
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl PeerSpec {
    /// A spec with every default filled in.
    pub fn new(identity: Identity, policy: Policy, command: Vec<String>, cwd: PathBuf) -> PeerSpec {
        PeerSpec {
            identity,
            policy,
            command,
            cwd,
            env: BTreeMap::new(),
            base_env: None,
            env_file: None,
            idle_ttl: None,
            max_age: None,
            restart: Restart::OnFailure,
            backoff: DEFAULT_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            restart_burst: DEFAULT_RESTART_BURST,
            restart_window: DEFAULT_RESTART_WINDOW,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            task_ttl: DEFAULT_TASK_TTL,
            task_timeout: DEFAULT_TASK_TIMEOUT,
            deliver: Deliver::Argv,
            linger: DEFAULT_LINGER,
            workers: 1,
            agent: None,
            ready_patterns: Vec::new(),
            busy_patterns: Vec::new(),
            blocked_patterns: Vec::new(),
            quiet: DEFAULT_QUIET,
            when: None,
            fresh_args: Vec::new(),
            resume_args: Vec::new(),
            continue_message: None,
            warm: 0,
            reuse: DEFAULT_REUSE,
            reset: None,
        }
    }

    /// An agent pool: an ephemeral peer whose readiness means something
    /// (an `--agent` preset or a ready pattern). Its runners keep agent
    /// instances and type each task into a ready one (SPEC §10).
    pub fn is_pool(&self) -> bool {
        self.policy == Policy::Ephemeral
            && (self.agent.is_some() || !self.ready_patterns.is_empty())
    }

    /// How long an idle pool instance lives (`--idle-ttl`, default 5m).
    pub fn pool_idle_ttl(&self) -> Duration {
        self.idle_ttl.unwrap_or(DEFAULT_POOL_IDLE_TTL)
    }

    /// How `send` delivers to this (persistent) peer: as set with `--when`,
    /// else `idle` for a peer added with `--agent`, else `now` (SPEC §8).
    pub fn when(&self) -> When {
        self.when.unwrap_or(if self.agent.is_some() { When::Idle } else { When::Now })
    }

    /// An agent: a persistent peer whose readiness means something (an
    /// `--agent` preset or a ready pattern). Its start counts against
    /// admission, its state is tracked from `starting`, and a death before
    /// it was ever ready is a failed start.
    pub fn is_agent(&self) -> bool {
        self.policy == Policy::Persistent
            && (self.agent.is_some() || !self.ready_patterns.is_empty())
    }

    /// Check what serde cannot: a program, an absolute cwd, sane env names,
    /// no NUL anywhere, positive counts.
    pub fn validate(&self) -> Result<()> {
        let Some(program) = self.command.first() else {
            bail!("peer {}: no program given; put it after `--`", self.identity);
        };
        if program.is_empty() {
            bail!("peer {}: the program name is empty", self.identity);
        }
        if self.command.iter().any(|a| a.contains('\0')) {
            bail!("peer {}: an argument contains a NUL byte", self.identity);
        }
        if !self.cwd.is_absolute() {
            bail!("peer {}: cwd {} is not absolute", self.identity, self.cwd.display());
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            bail!("peer {}: --workers must be 1 to {MAX_WORKERS}", self.identity);
        }
        if self.warm > self.workers {
            bail!(
                "peer {}: --warm {} is more than --workers {}: a pool keeps at most --workers \
                 instances",
                self.identity,
                self.warm,
                self.workers
            );
        }
        if (self.warm > 0 || self.reset.is_some()) && !self.is_pool() {
            bail!(
                "peer {}: --warm and --reset apply to an agent pool (--ephemeral with --agent \
                 or --ready-pattern)",
                self.identity
            );
        }
        if let Some(r) = &self.reset
            && r.contains(|c: char| c.is_control())
        {
            bail!("peer {}: --reset text must not hold control characters", self.identity);
        }
        if self.workers > 1 && self.deliver == Deliver::Keys && !self.is_pool() {
            bail!(
                "peer {}: --workers above 1 runs argv workers only; a --deliver keys program \
                 takes its tasks one at a time",
                self.identity
            );
        }
        let base = self.base_env.iter().flatten();
        for (k, v) in self.env.iter().chain(base) {
            if !valid_env_name(k) {
                bail!(
                    "peer {}: environment name {k:?} is not valid (letters, digits and '_', \
                     not starting with a digit)",
                    self.identity
                );
            }
            if v.contains('\0') {
                bail!("peer {}: environment value of {k} contains a NUL byte", self.identity);
            }
        }
        if let Some(f) = &self.env_file
            && !f.is_absolute()
        {
            bail!("peer {}: env file {} is not an absolute path", self.identity, f.display());
        }
        if self.restart_burst == 0 || self.max_attempts == 0 {
            bail!("peer {}: --restart-burst and --max-attempts must be at least 1", self.identity);
        }
        if self.backoff > self.max_backoff {
            bail!(
                "peer {}: --backoff {} is larger than --max-backoff {}",
                self.identity,
                crate::ground::duration::format(self.backoff),
                crate::ground::duration::format(self.max_backoff)
            );
        }
        if let Some(name) = &self.agent
            && crate::model::agent::presets::preset(name).is_none()
        {
            let known: Vec<&str> =
                crate::model::agent::presets::PRESETS.iter().map(|p| p.name).collect();
            bail!(
                "peer {}: unknown --agent {name:?}; muxvisor knows {}",
                self.identity,
                known.join(", ")
            );
        }
        for (flag, pattern) in self.patterns() {
            if let Err(e) = crate::model::agent::presets::compile(pattern) {
                bail!(
                    "peer {}: {flag} {pattern:?} is not a valid regular expression (the regex \
                     crate's syntax): {e}",
                    self.identity
                );
            }
        }
        Ok(())
    }

    /// Every screen pattern given to `add`, with the flag that gave it.
    fn patterns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let ready = self.ready_patterns.iter().map(|p| ("--ready-pattern", p.as_str()));
        let busy = self.busy_patterns.iter().map(|p| ("--busy-pattern", p.as_str()));
        let blocked =
            self.blocked_patterns.iter().map(|b| ("--blocked-pattern", b.pattern.as_str()));
        ready.chain(busy).chain(blocked)
    }

    /// Patterns that can never match what the screen capture returns: it
    /// drops the blanks at the end of each line (a prompt printed as
    /// `READY> ` is captured as `READY>`), so a pattern that requires a
    /// blank right before `$` or `\z` never matches. A warning for `add`,
    /// with the fix; not an error, as another alternative of the same
    /// pattern may still match.
    pub fn pattern_warnings(&self) -> Vec<String> {
        static TRAILING_BLANK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"(?: |\\ |\\x20)(?:\+|\{[1-9][0-9]*(?:,[0-9]*)?\})?(?:\$|\\z)")
                .expect("a valid regex")
        });
        self.patterns()
            .filter(|(_, p)| TRAILING_BLANK.is_match(p))
            .map(|(flag, p)| {
                format!(
                    "{flag} {p:?} requires a blank at the end of a line, which the screen \
                     capture never shows (tmux drops trailing blanks: a prompt printed as \
                     \"READY> \" is seen as \"READY>\"), so it never matches; make the blank \
                     optional (\" ?\\z\" or \" *$\")"
                )
            })
            .collect()
    }
}

/// Parse one `NAME=RE` from `--blocked-pattern` (the name is the reason
/// `status` shows: lowercase letters, digits and '-').
pub fn parse_blocked_pattern(s: &str) -> Result<BlockedPattern> {
    match s.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && !v.is_empty()
                && k.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') =>
        {
            Ok(BlockedPattern { reason: k.to_string(), pattern: v.to_string() })
        }
        _ => bail!(
            "invalid --blocked-pattern {s:?}: expected NAME=RE, NAME made of lowercase \
             letters, digits and '-' (for example permission='Do you want to')"
        ),
    }
}

/// Parse one `KEY=VALUE` from `--env`.
pub fn parse_env_pair(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("invalid --env {s:?}: expected KEY=VALUE"),
    }
}

/// Read `peers/<id>.json`; `Ok(None)` if the peer is not registered.
pub fn load(root: &Root, id: &Identity) -> Result<Option<PeerSpec>> {
    let path = root.peer_file(id);
    let Some(bytes) = fsutil::read_if_exists(&path)? else {
        return Ok(None);
    };
    let spec: PeerSpec = serde_json::from_slice(&bytes).with_context(|| {
        format!("peer file {} is not a valid peer spec; fix or remove it", path.display())
    })?;
    spec.validate().with_context(|| {
        format!("peer file {} is not a valid peer spec; fix or remove it", path.display())
    })?;
    if &spec.identity != id {
        bail!(
            "peer file {} names identity {:?}, not {id:?}; fix or remove it",
            path.display(),
            spec.identity.as_str()
        );
    }
    Ok(Some(spec))
}

/// Read a registered peer, or fail with "not found" (exit 1).
pub fn require(root: &Root, id: &Identity) -> Result<PeerSpec> {
    load(root, id)?.with_context(|| {
        format!(
            "no peer named {id} under {}; register it with `muxvisor add {id} -- PROGRAM`",
            root.dir().display()
        )
    })
}

/// Write `peers/<id>.json` atomically.
pub fn save(root: &Root, spec: &PeerSpec) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(spec)?;
    bytes.push(b'\n');
    fsutil::atomic_write(&root.peer_file(&spec.identity), &bytes)
}

/// Every registered identity, sorted. Files that are not `<identity>.json`
/// are ignored.
pub fn list(root: &Root) -> Result<Vec<Identity>> {
    let mut ids: Vec<Identity> = fsutil::list_dir(&root.peers_dir())?
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".json"))
        .filter_map(|stem| Identity::parse(stem).ok())
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_accepts_the_rule() {
        for ok in ["a", "0", "claude-bob", "w_1", "a-", &"a".repeat(40)] {
            assert!(Identity::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn identity_refuses_hostile_names_quoting_the_rule() {
        let long = "a".repeat(41);
        let hostile = [
            "",
            "../x",
            "-t",
            "a;kill-server",
            "#(touch /tmp/p)",
            "$(id)",
            &long,
            "é",
            "A",
            "a.b",
            "a:b",
            "_a",
            "-a",
            "a b",
            "a\n",
            "a/b",
            "=a",
            "a\0",
        ];
        for bad in hostile {
            let e = Identity::parse(bad).unwrap_err().to_string();
            assert!(e.contains(IDENTITY_RULE), "{bad:?}: {e}");
        }
    }

    #[test]
    fn target_is_exact() {
        assert_eq!(Identity::parse("id1").unwrap().target(), "=id1:");
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut s = PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Ephemeral,
            vec!["sh".into(), "-c".into(), "echo {task}".into()],
            "/tmp".into(),
        );
        s.idle_ttl = Some(Duration::from_millis(1500));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"idle_ttl\":\"1500ms\""), "{json}");
        let back: PeerSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn deserializing_a_bad_identity_fails() {
        let s = PeerSpec::new(
            Identity::parse("w").unwrap(),
            Policy::Persistent,
            vec!["x".into()],
            "/".into(),
        );
        let json = serde_json::to_string(&s).unwrap().replace("\"w\"", "\"../w\"");
        assert!(serde_json::from_str::<PeerSpec>(&json).is_err());
    }

    #[test]
    fn validate_catches_bad_specs() {
        let id = Identity::parse("w").unwrap();
        let mut s = PeerSpec::new(id.clone(), Policy::Persistent, vec![], "/".into());
        assert!(s.validate().is_err());
        s.command = vec!["sh".into()];
        assert!(s.validate().is_ok());
        s.env.insert("1BAD".into(), "x".into());
        assert!(s.validate().is_err());
        s.env.clear();
        s.cwd = "rel".into();
        assert!(s.validate().is_err());
        s.cwd = "/".into();
        for (n, ok) in [(0, false), (1, true), (4, true), (MAX_WORKERS + 1, false)] {
            s.workers = n;
            assert_eq!(s.validate().is_ok(), ok, "--workers {n}");
        }
        s.deliver = Deliver::Keys;
        assert!(s.validate().is_err(), "--workers 4 with --deliver keys");
    }

    /// A spec written before `--workers` existed has one worker, and a
    /// one-worker spec is written as it always was.
    #[test]
    fn workers_default_to_one_and_one_is_not_written() {
        let id = Identity::parse("w").unwrap();
        let s = PeerSpec::new(id, Policy::Ephemeral, vec!["true".into()], "/".into());
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("workers"), "{json}");
        let back: PeerSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back.workers, 1);
        let mut four = s.clone();
        four.workers = 4;
        let back: PeerSpec = serde_json::from_str(&serde_json::to_string(&four).unwrap()).unwrap();
        assert_eq!(back.workers, 4);
    }

    #[test]
    fn validate_refuses_bad_patterns_and_unknown_presets() {
        let id = Identity::parse("w").unwrap();
        let mut s = PeerSpec::new(id, Policy::Persistent, vec!["sh".into()], "/".into());
        s.agent = Some("claud".into());
        let e = format!("{:#}", s.validate().unwrap_err());
        assert!(e.contains("unknown --agent \"claud\"") && e.contains("claude"), "{e}");
        s.agent = Some("claude".into());
        assert!(s.validate().is_ok());
        for (field, flag) in
            [(0, "--ready-pattern"), (1, "--busy-pattern"), (2, "--blocked-pattern")]
        {
            let mut t = s.clone();
            match field {
                0 => t.ready_patterns = vec!["(".into()],
                1 => t.busy_patterns = vec!["[a-".into()],
                _ => {
                    t.blocked_patterns =
                        vec![BlockedPattern { reason: "x".into(), pattern: "a{2,1}".into() }]
                }
            }
            let e = format!("{:#}", t.validate().unwrap_err());
            assert!(e.contains(flag) && e.contains("not a valid regular expression"), "{e}");
        }
    }

    #[test]
    fn a_pattern_that_needs_a_trailing_blank_is_warned_about() {
        let id = Identity::parse("w").unwrap();
        let mut s = PeerSpec::new(id, Policy::Persistent, vec!["sh".into()], "/".into());
        for bad in [r"^READY> \z", r"^> $", r"x +\z", r"y\ $", r"z\x20\z", r"^a|b {2}$"] {
            s.ready_patterns = vec![bad.into()];
            let w = s.pattern_warnings();
            assert_eq!(w.len(), 1, "{bad}: {w:?}");
            assert!(w[0].contains("--ready-pattern") && w[0].contains("?\\z"), "{w:?}");
        }
        for good in [r"^READY> ?\z", r"^> *$", r"^bob>\z", r"a b", r"\$ \d"] {
            s.ready_patterns = vec![good.into()];
            assert!(s.pattern_warnings().is_empty(), "{good}");
        }
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env_pair("=x").is_err());
        assert!(parse_env_pair("noeq").is_err());
    }
}
