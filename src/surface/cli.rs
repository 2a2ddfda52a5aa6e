//! The command line, as clap derive types only. The doc comments here ARE the
//! `--help` text and the man pages (generated into `man/`), so they are
//! written for users. Nothing outside `lib.rs` should need clap types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ground::duration;

fn dur(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

/// A loop interval: at least a second, so that a typo (`0s`) cannot make
/// `supervise` spin and push real events out of its rotated log.
fn interval(s: &str) -> Result<Duration, String> {
    let d = duration::parse(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s} is too short; the interval must be at least 1s"));
    }
    Ok(d)
}

/// Keep long-running interactive programs alive and accountable, each in its
/// own tmux server, and feed short-lived workers from a durable FIFO.
///
/// A `supervise` tick, run every 60 s by launchd, systemd or cron, restarts
/// what crashed, reaps what idles, records why things died, and drains the
/// queues. Every death has a recorded cause in logs/exits.log; every task
/// `send` acknowledges survives kill -9 and full disks.
#[derive(Debug, Parser)]
#[command(name = "muxvisor", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// State directory (created 0700). Beats MUXVISOR_ROOT, which beats
    /// $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Print exactly one JSON document on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register or update a peer (identity, program, policy); prints the spec.
    ///
    /// Whenever the peer is stopped (`stop`, `restart`, an idle or max-age
    /// reap, a task timeout), its program's process group gets SIGTERM,
    /// then SIGHUP, then SIGKILL when the grace is over; see `muxvisor stop
    /// --help`. A shell peer therefore stops at once, on SIGHUP.
    Add(Box<AddArgs>),
    /// Unregister a peer. Refuses a running peer unless --force.
    Rm(RmArgs),
    /// Start a persistent peer now. Exit 0 if it is already running; exit 1
    /// with its status if the program dies within 1 s (MUXVISOR_SETTLE_MS).
    /// With --wait-ready, return only once the agent is ready (exit 0), blocked
    /// or dead (exit 1), or still starting at the deadline (exit 75).
    /// Ephemeral peers are started by `send` and the tick, not by hand.
    Launch(LaunchArgs),
    /// Deliberately stop a peer: SIGTERM, then SIGHUP, then SIGKILL its
    /// program's process group, spread over the grace. Leaves no death record.
    ///
    /// SIGHUP (what a closing terminal sends) follows at once when the
    /// program ignores SIGTERM, as an interactive shell does; after half the
    /// grace when it handles SIGTERM, so it can clean up; after at most 1 s
    /// where the OS does not say (macOS). SIGKILL ends what is left when the
    /// grace is over. `ev=stop` records which signal ended it (how=term,
    /// hup or kill).
    Stop(StopArgs),
    /// Stop, then launch (resuming the agent's conversation unless --fresh).
    Restart(RestartArgs),
    /// Queue a task for an ephemeral peer, or deliver text to a persistent one: typed at
    /// once (--when now), or made durable in its mailbox and pasted when the agent is ready,
    /// one message per turn (--when idle). --keys sends key names at once.
    Send(SendArgs),
    /// Report an agent's state from its own hooks (the strongest source):
    /// ready, busy or blocked. `mark ID ready` also delivers the next message
    /// of its mailbox at once.
    Mark(MarkArgs),
    /// One row per peer: state, pid, uptime, idle time, exit status, queue.
    Status(StatusArgs),
    /// Inspect and manage a peer's FIFO and its dead letters.
    Queue(QueueArgs),
    /// Run the supervision tick: restart, reap, record, drain queues.
    Supervise(SuperviseArgs),
    /// Print the last lines of a peer's pane.
    Screen(ScreenArgs),
    /// Print a peer's pane output log.
    Logs(LogsArgs),
    /// Lifecycle and exit events, merged in time order. With --follow
    /// --json, one JSON object per line.
    Events(EventsArgs),
    /// Attach your terminal to a peer's tmux server.
    Attach(IdArgs),
    /// Remove ghosts: stale sockets, orphan canaries, abandoned tmp files,
    /// old finished tasks, the state of dead agent pool instances; rotate
    /// logs to their caps.
    Clean(CleanArgs),
    /// Check tmux, the root, sockets, the service and orphans. Exit 1 if
    /// anything is wrong.
    Doctor,
    /// Install, remove or inspect the periodic tick (launchd, systemd, cron).
    Service(ServiceArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Internal: the tmux pane-died hook.
    #[command(hide = true, name = "_hook")]
    Hook(HookArgs),
    /// Internal: the server-death canary of one identity.
    #[command(hide = true, name = "_canary")]
    Canary(CanaryArgs),
    /// Internal: copies pane output to its size-capped log.
    #[command(hide = true, name = "_pane-log")]
    PaneLog(IdArgs),
    /// Internal: the runner in an ephemeral peer's pane.
    #[command(hide = true, name = "_run")]
    Run(RunArgs),
    /// Internal: the courier that delivers a persistent peer's mailbox.
    #[command(hide = true, name = "_courier")]
    Courier(IdArgs),
    /// Internal: delivers new events to hooks/on-event (see notify.rs).
    #[command(hide = true, name = "_notify")]
    Notify,
    /// Internal: launches held peers as admission allows (see admission.rs).
    #[command(hide = true, name = "_admit")]
    Admit(AdmitArgs),
}

#[derive(Debug, Args)]
pub struct AdmitArgs {
    #[arg(long, default_value_t = crate::lifecycle::admission::DEFAULT_MAX_STARTING)]
    pub max_starting: usize,
    /// Bytes.
    #[arg(long)]
    pub min_mem_available: Option<u64>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The peer's identity: ^[a-z0-9][a-z0-9_-]{0,39}$
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The peer's identity.
    pub id: String,
    /// The worker slot this runner serves (`add --workers N`): 0 is the first runner's.
    #[arg(long, default_value_t = 0)]
    pub slot: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RestartPolicy {
    /// Never restart automatically.
    Never,
    /// Restart when the program exits non-zero, is signalled, or its server dies.
    OnFailure,
    /// Restart whenever it is not running (except after a deliberate stop or idle reap).
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum When {
    /// Type the text at once.
    Now,
    /// Make it durable; paste it when the agent is ready, one message per turn.
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Deliver {
    /// Hand the task through {task} / {task_file} in argv and the environment.
    Argv,
    /// Start the program, wait until its screen is quiet, type the task (bracketed paste, then
    /// Enter); the task is done when the program exits or idles past --idle-ttl.
    Keys,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The peer's identity: ^[a-z0-9][a-z0-9_-]{0,39}$
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// No standing session: a runner runs the queued tasks one at a time, in FIFO order, each
    /// with a fresh process of the program, and ends once the queue stays empty (--linger).
    #[arg(long, conflicts_with = "persistent")]
    pub ephemeral: bool,
    /// One long-lived session, restarted by policy (the default for a new
    /// peer; turns an ephemeral peer back into a persistent one).
    #[arg(long)]
    pub persistent: bool,
    /// Allow a policy change on a running peer by stopping it first.
    #[arg(long)]
    pub force: bool,
    /// Working directory of the program (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Environment for the program, repeatable: --env KEY=VALUE. Wins over the env file and the
    /// recorded base; given at all, it replaces every --env pair given before. The program's
    /// environment is its own: the base recorded at the first add (HOME, USER, LOGNAME, SHELL,
    /// PATH, LANG, LANGUAGE, LC_*, TZ, TMPDIR), the env file, these pairs, and MUXVISOR_IDENTITY
    /// and MUXVISOR_ROOT; nothing else of whoever launches it (status ID --json shows it).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// A file of KEY=VALUE lines (# comments, blank lines; values taken literally, no quotes
    /// removed) read at every launch, so a rotated secret is picked up; its values are never
    /// printed by status. The file must be readable now; a launch that cannot read it fails
    /// naming it.
    #[arg(long, value_name = "FILE", conflicts_with = "no_env_file")]
    pub env_file: Option<PathBuf>,
    /// Forget the env file given before.
    #[arg(long)]
    pub no_env_file: bool,
    /// Record the base environment (HOME, USER, PATH, LANG, ...) again from this shell; a new
    /// peer always records it, an update keeps the recorded one.
    #[arg(long)]
    pub refresh_env: bool,
    /// Stop the session after this long without pane output (or a message delivered to it).
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub idle_ttl: Option<Duration>,
    /// Stop the session after this long since launch.
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub max_age: Option<Duration>,
    /// When a persistent peer is restarted by the tick [default: on-failure].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub restart: Option<RestartPolicy>,
    /// First restart/retry delay; doubles with jitter up to --max-backoff [default: 1s].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub backoff: Option<Duration>,
    /// Cap on the restart/retry delay [default: 5m].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub max_backoff: Option<Duration>,
    /// Failures within --restart-window that mark the peer failed [default: 5].
    #[arg(long, value_name = "N")]
    pub restart_burst: Option<u32>,
    /// Window for --restart-burst [default: 10m].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub restart_window: Option<Duration>,
    /// Attempts per task before it is dead-lettered [default: 3].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Dead-letter a task not finished this long after it was queued [default: 1d].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub task_ttl: Option<Duration>,
    /// Stop a task's program that runs longer than this, and retry the task [default: 1h].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub task_timeout: Option<Duration>,
    /// How a task reaches its program: argv ({task}, {task_file}, environment) or keys
    /// [default: argv].
    #[arg(long, value_enum, value_name = "HOW")]
    pub deliver: Option<Deliver>,
    /// How long an ephemeral peer's runner waits for more tasks once its
    /// queue is empty before it ends its tmux server [default: 2s].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub linger: Option<Duration>,
    /// Run up to N (1 to 64) tasks of an ephemeral peer's queue at once, each in its own pane,
    /// started in queue order; not with --deliver keys [default: 1: one at a time, strict FIFO].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// An agent pool (--ephemeral with --agent or --ready-pattern): agent instances kept
    /// started and ready ahead of demand, refilled a few seconds after one takes a task; at most
    /// --workers [default: 0].
    #[arg(long, value_name = "K")]
    pub warm: Option<u32>,
    /// An agent pool: how long an instance that finished a task waits for the next one before it
    /// stops (down to --warm) [default: 60s].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub reuse: Option<Duration>,
    /// An agent pool: text typed (confirmed, as a message) into an instance between two tasks,
    /// so that each task starts from a clean context, for example /clear.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub reset: Option<String>,
    /// An interactive agent whose screens muxvisor knows: claude, codex, gemini or aider (see
    /// AGENTS in muxvisor(1)). Its ready, busy and blocked patterns apply, and `send` defaults
    /// to --when idle.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// The agent is ready when this regex matches its visible screen (multi-line: ^ and $ at
    /// each line); it should match only an EMPTY prompt. Repeatable; replaces the preset's.
    #[arg(long = "ready-pattern", value_name = "RE")]
    pub ready_pattern: Vec<String>,
    /// The agent is busy (a turn runs) while this regex matches; wins over a visible ready
    /// pattern. Repeatable; replaces the preset's.
    #[arg(long = "busy-pattern", value_name = "RE")]
    pub busy_pattern: Vec<String>,
    /// The agent is blocked for reason NAME (a dialog, a permission prompt, a limit) while RE
    /// matches. Repeatable; replaces the preset's.
    #[arg(long = "blocked-pattern", value_name = "NAME=RE")]
    pub blocked_pattern: Vec<String>,
    /// With no ready pattern, output quiet this long (and no busy pattern) counts as ready
    /// [default: 1.5s].
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub quiet: Option<Duration>,
    /// How `send` delivers to this persistent peer by default: now (type at once) or idle
    /// (durable mailbox, one message per ready state) [default: idle with --agent, else now].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub when: Option<When>,
    /// An argument appended to the program's at a fresh start (repeatable); {session_id} is
    /// replaced by a new conversation id. Replaces the --agent preset's (claude: --session-id
    /// {session_id}).
    #[arg(long = "fresh-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub fresh_arg: Vec<String>,
    /// An argument appended to the program's when it resumes its conversation after a crash,
    /// a reap or a reboot (repeatable); {session_id} is the recorded id. Replaces the preset's
    /// (claude: --resume {session_id}).
    #[arg(long = "resume-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub resume_arg: Vec<String>,
    /// A message queued into the agent's mailbox once a usage limit it is parked on has reset
    /// (e.g. "continue").
    #[arg(long, value_name = "TEXT")]
    pub continue_message: Option<String>,
    /// The program and its arguments. {task} and {task_file} are replaced for
    /// ephemeral workers.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub program: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The peer's identity.
    pub id: String,
    /// Stop the peer first if it is running.
    #[arg(long)]
    pub force: bool,
    /// Also delete its queue, state and pane log.
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The peer's identity.
    pub id: String,
    /// How long SIGTERM and SIGHUP get before SIGKILL.
    #[arg(long, value_parser = dur, default_value = "10s", value_name = "DUR")]
    pub grace: Duration,
    /// Ephemeral peer: dead-letter the task its worker was running (reason
    /// `stopped`) instead of putting it back at the head of the queue
    /// uncharged.
    #[arg(long)]
    pub fail_task: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The peer's identity.
    pub id: String,
    /// How long SIGTERM and SIGHUP get before SIGKILL.
    #[arg(long, value_parser = dur, default_value = "10s", value_name = "DUR")]
    pub grace: Duration,
    /// Start a new conversation instead of resuming the recorded one.
    #[arg(long)]
    pub fresh: bool,
    /// As for launch: return only once the agent is ready.
    #[arg(long, value_parser = dur, num_args = 0..=1, default_missing_value = "120s", value_name = "DUR")]
    pub wait_ready: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The peer's identity.
    pub id: String,
    /// The task text; `-` reads standard input.
    #[arg(conflicts_with = "file", value_name = "TEXT")]
    pub text: Option<String>,
    /// Read the task text from this file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only make the task durable; do not start a runner now (a live runner still picks it
    /// up; otherwise the next send or tick starts one).
    #[arg(long)]
    pub no_kick: bool,
    /// Acknowledge without queueing again while a task with this key is
    /// pending or running.
    #[arg(long, value_name = "KEY")]
    pub dedupe: Option<String>,
    /// Persistent peer: now (type at once) or idle (durable mailbox; pasted when the agent is
    /// ready, in FIFO order, one message per turn) [default: the peer's --when].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub when: Option<When>,
    /// With --when idle: return only once this message was delivered; exit 1 if it was
    /// dead-lettered instead (the reason is printed), 75 if the deadline passes first (the
    /// message stays queued) [default: 120s when given without a value].
    #[arg(long, value_parser = dur, num_args = 0..=1, default_missing_value = "120s", value_name = "DUR")]
    pub wait: Option<Duration>,
    /// Persistent peer: paste the text without pressing Enter (it stays a draft).
    #[arg(long)]
    pub no_enter: bool,
    /// Persistent peer: send these tmux key names at once (Escape, C-c, Enter, Up, F5, ...)
    /// instead of text.
    #[arg(long, num_args = 1.., value_name = "KEY", conflicts_with_all = ["text", "file"])]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The peer's identity.
    pub id: String,
    /// Start a new conversation instead of resuming the recorded one.
    #[arg(long)]
    pub fresh: bool,
    /// Return only once the agent is ready: exit 0; exit 1 if it is blocked (the reason and the
    /// screen lines that matched are printed) or its program died; exit 75 if the deadline
    /// passed while it was still starting [default: 120s when given without a value].
    #[arg(long, value_parser = dur, num_args = 0..=1, default_missing_value = "120s", value_name = "DUR")]
    pub wait_ready: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MarkState {
    /// Waiting for input (Claude Code's Stop hook).
    Ready,
    /// Working on a turn (UserPromptSubmit).
    Busy,
    /// Needs a person (a permission prompt, a dialog, a limit; Notification).
    Blocked,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// The peer's identity (inside its pane: "$MUXVISOR_IDENTITY").
    pub id: String,
    /// ready, busy or blocked.
    #[arg(value_enum)]
    pub state: MarkState,
    /// Why (shown by status; for blocked, e.g. permission, usage-limit).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The agent's conversation id, stored for a resume.
    #[arg(long, value_name = "ID")]
    pub session_id: Option<String>,
    /// Read a hook's JSON payload on stdin (Claude Code hooks): its session_id and, for blocked,
    /// its message as the reason, unless given.
    #[arg(long)]
    pub hook_json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this peer.
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The peer's identity.
    #[arg(required_unless_present = "id_flag")]
    pub id: Option<String>,
    /// The peer's identity, as an option: reaches a peer whose name is also
    /// a verb of this command (`queue --id list list`).
    #[arg(long = "id", value_name = "ID", conflicts_with = "id")]
    pub id_flag: Option<String>,
    #[command(subcommand)]
    pub action: Option<QueueAction>,
    /// With list: show dead letters.
    #[arg(long, global = true)]
    pub dead: bool,
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Pending tasks in FIFO order, the running one, and (--dead) dead letters.
    List,
    /// One task: payload, attempts, timestamps, outcome.
    Show { task: String },
    /// Put a dead letter back at the tail of the queue.
    Retry { task: String },
    /// Remove one pending or dead task.
    Rm { task: String },
    /// Remove every pending and dead task (not the running one).
    Purge,
}

impl QueueArgs {
    /// The identity, given as the argument or with `--id`.
    pub fn identity(&self) -> &str {
        self.id.as_deref().or(self.id_flag.as_deref()).unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// Run one tick and exit.
    #[arg(long)]
    pub once: bool,
    /// Time between ticks when looping (at least 1s).
    #[arg(long, value_parser = interval, default_value = "60s", value_name = "DUR")]
    pub interval: Duration,
    /// Keep finished tasks this long; each tick removes older ones.
    #[arg(long, value_parser = dur, default_value = "7d", value_name = "DUR")]
    pub retention: Duration,
    /// Keep at most this many finished tasks per queue (the newest).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub retention_count: usize,
    /// Most agents starting at once; more launches wait, `queued` [default:
    /// MUXVISOR_MAX_STARTING, else 2].
    #[arg(long, value_name = "N")]
    pub max_starting: Option<usize>,
    /// Hold launches while available memory is under this (e.g. 2G) [default:
    /// MUXVISOR_MIN_MEM_AVAILABLE, else no floor].
    #[arg(long, value_name = "SIZE")]
    pub min_mem_available: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScreenArgs {
    /// The peer's identity.
    pub id: String,
    /// How many lines from the bottom.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub lines: usize,
    /// Keep the colours and attributes tmux can reproduce.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The peer's identity.
    pub id: String,
    /// How many lines from the end.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub lines: usize,
    /// Keep printing as the log grows.
    #[arg(long, short)]
    pub follow: bool,
    /// Print the program's bytes as written, terminal escape sequences
    /// (colours, titles, clipboard writes) included.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing new events.
    #[arg(long, short)]
    pub follow: bool,
    /// Only events of this identity.
    #[arg(long = "id", value_name = "ID")]
    pub id: Option<String>,
    /// Only events newer than this (e.g. 1h).
    #[arg(long, value_parser = dur, value_name = "DUR")]
    pub since: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep finished tasks this long.
    #[arg(long, value_parser = dur, default_value = "7d", value_name = "DUR")]
    pub retention: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServiceAction {
    Install,
    Uninstall,
    Status,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// install, uninstall or status.
    #[arg(value_enum)]
    pub action: ServiceAction,
    /// A launchd agent (~/Library/LaunchAgents).
    #[arg(long, group = "kind")]
    pub launchd: bool,
    /// A systemd user service and timer.
    #[arg(long, group = "kind")]
    pub systemd: bool,
    /// A line in your crontab, tagged so uninstall removes only it.
    #[arg(long, group = "kind")]
    pub cron: bool,
    /// Time between ticks (launchd: at least 10s; cron: whole minutes).
    #[arg(long, value_parser = dur, default_value = "60s", value_name = "DUR")]
    pub interval: Duration,
    /// Show what would be written, with the kind chosen and why; change
    /// nothing, not even the root directory. Works without crontab or a user
    /// systemd; exits 1 (after showing it) when the install could not run here.
    #[arg(long)]
    pub print: bool,
    /// Passed to the tick: most agents starting at once.
    #[arg(long, value_name = "N")]
    pub max_starting: Option<usize>,
    /// Passed to the tick: hold launches under this available memory (e.g. 2G).
    #[arg(long, value_name = "SIZE")]
    pub min_mem_available: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// The hook's event (pane-died).
    pub event: String,
    /// The identity whose pane died.
    pub id: String,
    /// #{pane_dead_status}
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub status: String,
    /// #{pane_dead_signal}
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub signal: String,
    /// #{pane_pid}
    #[arg(long, default_value = "")]
    pub pid: String,
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// The identity whose server to watch.
    pub id: String,
    /// Stay in the foreground (tests); by default the canary detaches.
    #[arg(long)]
    pub foreground: bool,
}

/// The command line as clap sees it, with each subcommand's exit statuses
/// and JSON document (`crate::surface::manual::pages`) in its `--help`.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    crate::surface::manual::pages::attach(Cli::command())
}

/// Parse `args` (the program name first). `queue list ID` (and `queue show
/// ID TASK`, ...) is accepted as `queue ID list`: a line that fails to parse
/// is tried once more with the action and the identity swapped, and the
/// first error stands if that fails too.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let parse = |a: &[std::ffi::OsString]| {
        command().try_get_matches_from(a).and_then(|m| Cli::from_arg_matches(&m))
    };
    let err = match parse(&args) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    let actions = ["list", "show", "retry", "rm", "purge"];
    let at = args.windows(3).position(|w| {
        w[0] == "queue"
            && w[1].to_str().is_some_and(|a| actions.contains(&a))
            && !w[2].to_string_lossy().starts_with('-')
    });
    if let Some(i) = at {
        let mut swapped = args.clone();
        swapped.swap(i + 1, i + 2);
        if let Ok(cli) = parse(&swapped) {
            return Ok(cli);
        }
    }
    Err(err)
}

/// Parse this process's command line. `send` runs once per task, and
/// building clap's whole command tree is about a third of its start-up, so
/// a plain `send` (no help or version flag) is parsed against a tree that
/// holds only `send` and the global options: the same argument types, so
/// the same values and errors. Anything else, or anything that tree
/// refuses, goes through the full tree.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if subcommand_of(&args) == Some("send")
        && !args.iter().any(|a| matches!(a.to_str(), Some("-h" | "--help" | "-V" | "--version")))
        && let Ok(only) = SendOnly::try_parse_from(&args)
    {
        let SendOnlyCommand::Send(a) = only.command;
        return Cli { root: only.root, json: only.json, command: Command::Send(a) };
    }
    parse_from(args).unwrap_or_else(|e| e.exit())
}

/// The first word of `args` (after the program) that is not a global
/// option or its value.
fn subcommand_of(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut it = args.iter().skip(1).map(|a| a.to_str());
    while let Some(a) = it.next() {
        match a? {
            "--json" => {}
            "--root" => {
                it.next();
            }
            a if a.starts_with("--root=") => {}
            a => return Some(a),
        }
    }
    None
}

/// [`Cli`] with `send` alone (see [`parse`]); its globals must stay those
/// of [`Cli`] (a unit test compares them).
#[derive(Debug, Parser)]
#[command(name = "muxvisor", version)]
struct SendOnly {
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SendOnlyCommand,
}

#[derive(Debug, Subcommand)]
enum SendOnlyCommand {
    Send(SendArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn add_takes_program_after_double_dash() {
        let cli = Cli::try_parse_from([
            "muxvisor",
            "add",
            "w1",
            "--ephemeral",
            "--idle-ttl",
            "5m",
            "--",
            "sh",
            "-c",
            "echo {task}",
        ])
        .unwrap();
        let Command::Add(a) = cli.command else { panic!("not add") };
        assert!(a.ephemeral);
        assert_eq!(a.idle_ttl, Some(Duration::from_secs(300)));
        assert_eq!(a.program, ["sh", "-c", "echo {task}"]);
    }

    /// Issue 10: `queue list ID` failed with a bare "unexpected argument".
    #[test]
    fn queue_takes_the_identity_before_or_after_the_action() {
        let id_of = |argv: &[&str]| match parse_from(argv).map(|c| c.command) {
            Ok(Command::Queue(q)) => (q.identity().to_string(), format!("{:?}", q.action), q.dead),
            other => panic!("{argv:?}: {other:?}"),
        };
        let list = ("w1".to_string(), "Some(List)".to_string(), true);
        assert_eq!(id_of(&["muxvisor", "queue", "w1", "list", "--dead"]), list);
        assert_eq!(id_of(&["muxvisor", "queue", "list", "w1", "--dead"]), list);
        assert_eq!(id_of(&["muxvisor", "--json", "queue", "list", "w1", "--dead"]), list);
        let show = ("w1".to_string(), "Some(Show { task: \"t1\" })".to_string(), false);
        assert_eq!(id_of(&["muxvisor", "queue", "w1", "show", "t1"]), show);
        assert_eq!(id_of(&["muxvisor", "queue", "show", "w1", "t1"]), show);
        // Issue #19: an identity named like an action is reached with --id.
        let named_list = ("list".to_string(), "Some(List)".to_string(), false);
        assert_eq!(id_of(&["muxvisor", "queue", "--id", "list", "list"]), named_list);
        // Nothing to swap with: clap's own message.
        let e = parse_from(["muxvisor", "queue", "list"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn every_subcommand_help_has_its_exit_statuses() {
        let cmd = command();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let help = sub.get_after_long_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("EXIT STATUS:"), "{}", sub.get_name());
            assert!(help.contains("JSON OUTPUT:"), "{}", sub.get_name());
        }
    }

    #[test]
    fn the_send_tree_has_the_globals_of_the_full_one() {
        use clap::CommandFactory;
        let globals = |c: clap::Command| -> Vec<String> {
            c.get_arguments()
                .filter(|a| a.is_global_set())
                .map(|a| a.get_id().to_string())
                .collect()
        };
        assert_eq!(globals(SendOnly::command()), globals(Cli::command()));
        let argv = ["muxvisor", "--root", "/r", "send", "w", "--json", "hi", "--no-kick"];
        let a = SendOnly::try_parse_from(argv).unwrap();
        let b = Cli::try_parse_from(argv).unwrap();
        let (SendOnlyCommand::Send(x), Command::Send(y)) = (a.command, b.command) else {
            panic!("not send")
        };
        assert_eq!((a.root, a.json, format!("{x:?}")), (b.root, b.json, format!("{y:?}")));
        let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(subcommand_of(&os(&["m", "--root", "send", "status"])), Some("status"));
        assert_eq!(subcommand_of(&os(&["m", "--root=/x", "--json", "send"])), Some("send"));
        assert_eq!(subcommand_of(&os(&["m", "--json"])), None);
    }

    #[test]
    fn json_is_global() {
        let cli = Cli::try_parse_from(["muxvisor", "status", "--json"]).unwrap();
        assert!(cli.json);
    }
}
