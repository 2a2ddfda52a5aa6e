//! The scripting contract of each subcommand, as data: when it exits with
//! which status, and for `--json` an example document and every field with
//! its JSON type. [`attach`] puts it in `--help` (after the options, as
//! `after_long_help`, so `-h` stays short), and the docs test renders the
//! same table into each `muxvisor-<command>(1)` page, so the two never
//! disagree and `cli.rs` doc comments stay small.
//!
//! To document a new JSON key, add one [`Field`] row to its page (and the
//! key to the example); the `docs` integration test runs every command and
//! fails on a key that is written but not documented here.

use super::{Block, Section};

/// One field of a JSON document: its path (`queue.pending`, `[].identity`,
/// `pending[].task`), JSON type, and meaning.
pub type Field = (&'static str, &'static str, &'static str);

/// The `--json` output of one command.
#[derive(Clone, Copy, Debug)]
pub struct Json {
    /// What is printed, in a sentence.
    pub shape: &'static str,
    /// A real document as the command prints it (compact JSON).
    pub example: &'static str,
    pub fields: &'static [Field],
}

/// The contract of one subcommand (`"queue list"` for a nested one).
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub command: &'static str,
    /// Exit statuses this command uses and when (2, usage, is common to all).
    pub exit: &'static [(&'static str, &'static str)],
    pub json: Option<Json>,
}

const USAGE: (&str, &str) = ("2", "Usage error: an unknown command or flag, a bad duration.");
const TMUX: (&str, &str) = ("69", "tmux is missing or unusable (MUXVISOR_TMUX, PATH).");
const LOCK: (&str, &str) = (
    "75",
    "Another muxvisor held the identity's lock past the wait (a launch, stop or add in \
     progress); nothing was changed, try again.",
);

const QUEUE_EXIT: &[(&str, &str)] = &[
    ("0", "Done."),
    ("1", "No peer and no queue with that identity, an unknown task, or a refused change."),
    USAGE,
    ("75", "The queue's lock was held past the wait; nothing was changed, try again."),
];

/// Every visible subcommand's page.
pub const PAGES: &[Page] = &[
    Page {
        command: "add",
        exit: &[
            ("0", "The peer is registered or updated (warnings go to stderr)."),
            (
                "1",
                "A bad identity, --cwd, --env or option; a policy change on a running peer \
                 without --force.",
            ),
            USAGE,
            ("69", "tmux is missing while a running peer had to be checked or stopped."),
            LOCK,
        ],
        json: Some(Json {
            shape: "The stored spec, exactly as peers/<id>.json holds it.",
            example: r#"{"identity":"w1","policy":"persistent","command":["sh","-c","echo hi"],"cwd":"/home/me","env":{"A":"1"},"base_env":{"HOME":"/home/me","LANG":"en_US.UTF-8","LOGNAME":"me","PATH":"/usr/local/bin:/usr/bin:/bin","SHELL":"/bin/zsh","USER":"me"},"env_file":"/home/me/.config/w1.env","idle_ttl":"5m","max_age":"1d","restart":"on-failure","backoff":"1s","max_backoff":"5m","restart_burst":5,"restart_window":"10m","max_attempts":3,"task_ttl":"1d","task_timeout":"1h","deliver":"argv","linger":"2s","agent":"claude","ready_patterns":["^> *$"],"busy_patterns":["esc to interrupt"],"blocked_patterns":[{"reason":"permission","pattern":"Do you want to"}],"quiet":"1500ms","when":"idle","fresh_args":["--session-id","{session_id}"],"resume_args":["--resume","{session_id}"],"continue_message":"continue"}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("policy", "string", "persistent or ephemeral"),
                ("command", "array of strings", "the program and its arguments"),
                ("cwd", "string", "absolute working directory"),
                ("env", "object, string to string", "--env variables (a map)"),
                (
                    "base_env",
                    "object, string to string",
                    "the base environment recorded at the first add (HOME, USER, LOGNAME, SHELL, \
                     PATH, LANG, LANGUAGE, LC_*, TZ, TMPDIR); absent in a spec of an older \
                     muxvisor, which gets the account's (see muxvisor-status(1), env)",
                ),
                ("env_file", "string", "only when set: --env-file, an absolute path"),
                ("idle_ttl", "string (duration)", "only when set"),
                ("max_age", "string (duration)", "only when set"),
                ("restart", "string", "never, on-failure or always"),
                ("backoff", "string (duration)", "first restart/retry delay"),
                ("max_backoff", "string (duration)", "cap of the delay"),
                ("restart_burst", "integer", "deaths in the window that mark it failed"),
                ("restart_window", "string (duration)", "the window"),
                ("max_attempts", "integer", "runs per task before it is dead-lettered"),
                ("task_ttl", "string (duration)", "a task older than this is dead-lettered"),
                ("task_timeout", "string (duration)", "a worker running longer is stopped"),
                ("deliver", "string", "argv or keys"),
                (
                    "linger",
                    "string (duration)",
                    "how long an ephemeral peer's runner waits for more tasks before it retires",
                ),
                (
                    "workers",
                    "integer",
                    "only when above 1: --workers, the most tasks of the queue run at once",
                ),
                (
                    "warm",
                    "integer",
                    "only when above 0: --warm, an agent pool's instances kept ready ahead of demand",
                ),
                (
                    "reuse",
                    "string (duration)",
                    "only when not 60s: --reuse, how long a pool instance waits for its next task",
                ),
                (
                    "reset",
                    "string",
                    "only when set: --reset, typed between two tasks of an instance",
                ),
                ("agent", "string", "only when set: the --agent preset"),
                ("ready_patterns", "array of strings", "only when set: --ready-pattern"),
                ("busy_patterns", "array of strings", "only when set: --busy-pattern"),
                ("blocked_patterns", "array", "only when set: --blocked-pattern"),
                ("blocked_patterns[].reason", "string", "only when set: NAME"),
                ("blocked_patterns[].pattern", "string", "only when set: RE"),
                ("quiet", "string (duration)", "output quiet this long counts as ready"),
                ("when", "string", "only when set: now or idle (send's default)"),
                ("fresh_args", "array of strings", "only when set: --fresh-arg"),
                ("resume_args", "array of strings", "only when set: --resume-arg"),
                ("continue_message", "string", "only when set: --continue-message"),
            ],
        }),
    },
    Page {
        command: "rm",
        exit: &[
            ("0", "The peer is unregistered (and stopped first with --force)."),
            ("1", "No such peer, or it is running and --force was not given."),
            USAGE,
            TMUX,
            LOCK,
        ],
        json: Some(Json {
            shape: "What was done.",
            example: r#"{"identity":"w1","removed":true,"stopped":false,"purged":false}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("removed", "boolean", "always true"),
                ("stopped", "boolean", "it was running and was stopped first"),
                ("purged", "boolean", "its queue, state and pane logs were deleted"),
            ],
        }),
    },
    Page {
        command: "launch",
        exit: &[
            (
                "0",
                "Started, or already running (\"already\": true); with --wait-ready, and its agent \
                 is ready.",
            ),
            (
                "1",
                "No such peer, an ephemeral peer, a missing program or directory, an unreadable \
                 state file (nothing was started), or the program died within the settle time \
                 (the document then has exit_status, exit_signal and error); with --wait-ready, \
                 the agent is blocked (reason and screen lines shown) or died before it was \
                 ready.",
            ),
            USAGE,
            TMUX,
            (
                "75",
                "Another muxvisor held the identity's lock past the wait (nothing was changed, \
                 try again); or, with --wait-ready, the deadline passed while the agent was \
                 still starting (it runs on).",
            ),
        ],
        json: Some(Json {
            shape: "One object.",
            example: r#"{"identity":"claude","started":true,"already":false,"pid":4242}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("started", "boolean", "this call started it and it survived the settle time"),
                ("already", "boolean", "it was running before this call"),
                ("pid", "integer or null", "the pane's pid"),
                ("exit_status", "integer or null", "only when it died during launch"),
                ("exit_signal", "string or null", "only when it died during launch"),
                ("error", "string", "only when it died during launch: what happened"),
                ("queued", "boolean", "only when admission holds the launch: true"),
                ("reason", "string", "only when admission holds the launch: why"),
                ("agent", "object", "only with --wait-ready: the agent as last seen"),
                ("agent.state", "string", "only with --wait-ready: ready, blocked, starting, ..."),
                ("agent.reason", "string or null", "only with --wait-ready: why it is blocked"),
                (
                    "agent.screen",
                    "array of strings",
                    "only with --wait-ready: the screen lines its blocked pattern matched",
                ),
            ],
        }),
    },
    Page {
        command: "stop",
        exit: &[
            ("0", "Stopped, or it was not running."),
            ("1", "No peer spec and no socket with that identity."),
            USAGE,
            TMUX,
            LOCK,
        ],
        json: Some(Json {
            shape: "One object.",
            example: r#"{"identity":"worker","stopped":true,"was_running":true,"how":"term","grace_ms":10000,"task":"01J9Z3","task_outcome":"requeued","tasks":["01J9Z3"]}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("stopped", "boolean", "always true"),
                ("was_running", "boolean", "a server was up"),
                ("how", "string or null", "term, or kill when the grace ran out; null if idle"),
                ("grace_ms", "integer", "the grace given after SIGTERM"),
                (
                    "task",
                    "string or null",
                    "ephemeral peer: the task its worker was running when stopped",
                ),
                (
                    "task_outcome",
                    "string or null",
                    "requeued (back at the head, no attempt charged) or dead (--fail-task, \
                     reason stopped)",
                ),
                (
                    "tasks",
                    "array of strings",
                    "every task its workers were running (one per worker of --workers N, in \
                     queue order), each settled as task_outcome says; task is the first",
                ),
            ],
        }),
    },
    Page {
        command: "restart",
        exit: &[
            ("0", "Stopped (if running) and started again."),
            ("1", "As for launch: the restart did not leave the program running."),
            USAGE,
            TMUX,
            LOCK,
        ],
        json: Some(Json {
            shape: "The launch document (see muxvisor-launch(1)).",
            example: r#"{"identity":"claude","started":true,"already":false,"pid":4243}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("started", "boolean", "it was started again"),
                ("already", "boolean", "false"),
                ("pid", "integer or null", "the new pane's pid"),
                ("exit_status", "integer or null", "only when it died during launch"),
                ("exit_signal", "string or null", "only when it died during launch"),
                ("error", "string", "only when it died during launch"),
            ],
        }),
    },
    Page {
        command: "send",
        exit: &[
            (
                "0",
                "Ephemeral peer, or persistent with --when idle: the task or message is durable \
                 (fsynced) in the queue; a runner or courier that could not be started now is a \
                 warning, the tick retries (with --wait: and it was delivered). Persistent peer \
                 with --when now or --keys: the text or keys were typed.",
            ),
            (
                "1",
                "No such peer; the payload can never be delivered (too large for argv, a NUL, \
                 not UTF-8 for argv or keys, control characters for a pane) and was NOT queued; \
                 a key name that is not one; the text could not be typed (a hung or stopped \
                 peer).",
            ),
            USAGE,
            ("69", "tmux is missing (typing needs it; queueing does not)."),
            (
                "75",
                "Temporary: disk full or an I/O error while enqueueing, or a lock held past its \
                 wait: NOT queued, send again. With --wait: queued, but not delivered before the \
                 deadline (it stays queued).",
            ),
        ],
        json: Some(Json {
            shape: "For a queued task or message, the object below; for text typed at once \
                    (--when now), {\"delivered\": true, \"identity\"}; for --keys, also \
                    \"keys\".",
            example: r#"{"queued":true,"identity":"worker","task":"01m8p25kvm000fjfyxvnjz51z3","depth":1,"deduped":false,"delivered":false,"keys":["Escape"],"stage":"done","reply":"4","duration_ms":2441,"reason":null}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("queued", "boolean", "a task or mailbox message: always true (it is durable)"),
                (
                    "task",
                    "string",
                    "its id (queue show TASK); the ids of one queue sort in its order",
                ),
                ("depth", "integer", "pending tasks or messages, this one included"),
                ("deduped", "boolean", "--dedupe found it already queued"),
                (
                    "delivered",
                    "boolean",
                    "a message: the agent took it in before send returned (always with --wait \
                     and exit 0); typed at once or keys: always true",
                ),
                ("keys", "array of strings", "--keys only: the key names sent"),
                (
                    "reply",
                    "string or null",
                    "--wait to an agent pool: the agent's reply (null past the deadline or when \
                     the task failed)",
                ),
                ("stage", "string", "--wait to an agent pool: done, dead, pending or running"),
                ("duration_ms", "integer", "--wait to an agent pool: how long the task ran"),
                ("reason", "string", "--wait to an agent pool, exit 1: why there is no reply"),
            ],
        }),
    },
    Page {
        command: "mark",
        exit: &[
            (
                "0",
                "The mark is recorded (and with ready, the courier started to deliver the next message, if any).",
            ),
            ("1", "No such peer, an ephemeral peer, a bad --session-id or hook JSON."),
            USAGE,
            TMUX,
            ("75", "The agent record's lock was held past its wait; mark again."),
        ],
        json: Some(Json {
            shape: "The mark and what it led to.",
            example: r#"{"identity":"claude","state":"ready","reason":null,"session_id":"2b5f6c0e-1a7d-4d3e-9a4f-0c1e2d3b4a5f","agent":"ready","courier":true}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("state", "string", "the state marked: ready, busy or blocked"),
                ("reason", "string or null", "--reason, or a blocked hook's message"),
                ("session_id", "string or null", "a conversation id given with the mark"),
                ("agent", "string", "the agent state now (the mark wins while fresh)"),
                (
                    "courier",
                    "boolean",
                    "messages wait and a courier delivers them now (ready marks only)",
                ),
            ],
        }),
    },
    Page {
        command: "status",
        exit: &[
            ("0", "Every peer was read."),
            (
                "1",
                "A named peer does not exist; or a row has an \"error\": its spec or state could \
                 not be read (state unknown), or a server runs on a socket with no spec.",
            ),
            USAGE,
            TMUX,
        ],
        json: Some(Json {
            shape: "An array, one object per peer, sorted by identity; absent values are null.",
            example: r#"[{"identity":"claude","policy":"persistent","state":"running","pid":4242,"uptime_s":3600,"idle_s":12,"exit_status":null,"exit_signal":null,"canary":true,"queue":{"pending":0,"running":0,"dead":0,"quarantined":0},"server_pid":4240,"launched_at":"2026-11-22T02:04:05.123Z","restarts":0,"task":null,"reason":null,"env":{"API_KEY":"(from /home/me/.config/claude.env)","HOME":"/home/me","LANG":"en_US.UTF-8","LOGNAME":"me","MUXVISOR_IDENTITY":"claude","MUXVISOR_ROOT":"/home/me/.local/state/muxvisor","PATH":"/usr/local/bin:/usr/bin:/bin","SHELL":"/bin/zsh","USER":"me"},"env_file":"/home/me/.config/claude.env","env_error":null,"agent":{"state":"ready","since":"2026-11-22T03:04:00.000Z","reason":null,"session_id":null,"session_source":null,"source":"screen"},"mailbox":0,"courier":null,"workers":null},{"identity":"worker","policy":"ephemeral","state":"running","pid":4321,"uptime_s":12,"idle_s":0,"exit_status":null,"exit_signal":null,"canary":true,"queue":{"pending":3,"running":2,"dead":0,"quarantined":0},"server_pid":4319,"launched_at":"2026-11-22T03:03:53.000Z","restarts":0,"task":"01m8p25kvm000fjfyxvnjz51z3","reason":null,"env":{"HOME":"/home/me","MUXVISOR_IDENTITY":"worker","MUXVISOR_ROOT":"/home/me/.local/state/muxvisor","PATH":"/usr/local/bin:/usr/bin:/bin"},"env_file":null,"env_error":null,"agent":null,"mailbox":null,"courier":null,"workers":[{"slot":0,"task":"01m8p25kvm000fjfyxvnjz51z3","pid":4321,"runner_pid":4321,"since":"2026-11-22T03:04:05.565Z","agent":null,"held":null},{"slot":1,"task":"01m8p25kww0003qhdf8prsz798","pid":4330,"runner_pid":4330,"since":"2026-11-22T03:04:05.604Z","agent":null,"held":null}]}]"#,
            fields: &[
                ("[].identity", "string", "the peer"),
                ("[].policy", "string or null", "persistent, ephemeral; null without a spec"),
                (
                    "[].state",
                    "string",
                    "running, exited, session-gone, server-dead, hung, stopped, failed, queued \
                     (its launch waits for admission), unknown",
                ),
                ("[].pid", "integer or null", "the pane's pid"),
                ("[].uptime_s", "integer or null", "seconds since launch, while running"),
                ("[].idle_s", "integer or null", "seconds since the last pane output"),
                ("[].exit_status", "integer or null", "a dead pane's exit code"),
                ("[].exit_signal", "integer or null", "a dead pane's signal"),
                ("[].canary", "boolean", "a server-death canary watches it"),
                ("[].queue", "object", "task counts"),
                ("[].queue.pending", "integer", "waiting tasks"),
                ("[].queue.running", "integer", "0 up to its --workers (1 by default)"),
                ("[].queue.dead", "integer", "dead letters"),
                (
                    "[].queue.quarantined",
                    "integer",
                    "damaged or foreign entries moved to quarantine/ (see muxvisor-queue-list(1))",
                ),
                ("[].server_pid", "integer or null", "the tmux server's pid"),
                ("[].launched_at", "string, RFC 3339, or null", "the last launch"),
                ("[].restarts", "integer", "restarts since the last healthy run"),
                ("[].task", "string or null", "the task its runner runs now (ephemeral)"),
                ("[].reason", "string or null", "why a queued peer waits"),
                (
                    "[].env",
                    "object, string to string, or null",
                    "the whole environment its program gets at its next launch, whoever \
                     launches it (tmux adds TERM, TERM_PROGRAM, TERM_PROGRAM_VERSION, TMUX and \
                     TMUX_PANE; a task's program also gets MUXVISOR_TASK_ID and \
                     MUXVISOR_TASK_FILE): the base recorded at add (a spec of an older muxvisor: \
                     HOME, USER, LOGNAME and SHELL from the password database and PATH \
                     /usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin, /opt/homebrew/bin first on \
                     macOS), then the env file, then \
                     --env, then MUXVISOR_IDENTITY and MUXVISOR_ROOT. A value from the env file \
                     reads \"(from FILE)\", never the value; null without a spec",
                ),
                ("[].env_file", "string or null", "its --env-file, read at every launch"),
                (
                    "[].env_error",
                    "string or null",
                    "why the env file cannot be read now: its next launch (or task) would fail",
                ),
                ("[].agent", "object or null", "a persistent peer's agent state; null: ephemeral"),
                (
                    "[].agent.state",
                    "string",
                    "starting, ready, busy, blocked or unknown (not running)",
                ),
                ("[].agent.since", "string, RFC 3339, or null", "when that state was first seen"),
                ("[].agent.reason", "string or null", "why it is blocked (or marked)"),
                ("[].agent.session_id", "string or null", "its conversation id, when known"),
                (
                    "[].agent.session_source",
                    "string or null",
                    "where the id came from: assigned (at a fresh start) or mark (a hook)",
                ),
                (
                    "[].agent.source",
                    "string",
                    "mark, screen, quiet, delivery (taken in, its turn not yet seen; or undelivered), \
                     start or process",
                ),
                ("[].mailbox", "integer or null", "messages waiting; null: ephemeral"),
                ("[].courier", "integer or null", "the pid of the courier delivering them"),
                (
                    "[].workers",
                    "array or null",
                    "an ephemeral peer's workers (one per live runner of its --workers slots, \
                     and one with pid null per task whose runner died, until it is retried); \
                     null: persistent",
                ),
                (
                    "[].workers[].slot",
                    "integer",
                    "its worker slot, 0 to --workers minus 1 (or above, while a slot of a \
                     lowered --workers finishes its task)",
                ),
                ("[].workers[].task", "string or null", "the task it runs; null between tasks"),
                (
                    "[].workers[].pid",
                    "integer or null",
                    "its runner's pid, or for an agent pool instance its agent's pid (null while \
                     its start is held or between a death and the replacement); null: its \
                     runner died",
                ),
                ("[].workers[].runner_pid", "integer or null", "its runner's pid; null: it died"),
                ("[].workers[].since", "string, RFC 3339, or null", "when its task was claimed"),
                (
                    "[].workers[].agent",
                    "object or null",
                    "an agent pool instance's agent object (state, since, reason, source; \
                     session_id and session_source null); null for a program's worker",
                ),
                (
                    "[].workers[].held",
                    "string or null",
                    "why admission holds an agent pool instance's start (SPEC section 9: \
                     MUXVISOR_MAX_STARTING, MUXVISOR_MIN_MEM_AVAILABLE); null otherwise",
                ),
                ("[].error", "string", "only when something is wrong with the peer: what"),
            ],
        }),
    },
    Page {
        command: "queue",
        exit: QUEUE_EXIT,
        json: Some(Json {
            shape: "Without an action, `list`: see muxvisor-queue-list(1). Each action's page \
                    documents its document. The identity comes first (`queue ID list`); `queue \
                    list ID` is accepted too.",
            example: r#"{"identity":"worker","pending":[],"running":[],"dead":[],"quarantined":[]}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("pending", "array", "waiting tasks"),
                ("running", "array", "the claimed tasks (one per busy worker)"),
                ("dead", "array", "dead letters"),
                ("quarantined", "array", "damaged entries: see muxvisor-queue-list(1)"),
                ("quarantined[].*", "", "see muxvisor-queue-list(1)"),
                ("pending[].*", "", "each task's fields: see muxvisor-queue-list(1)"),
                ("running[].*", "", "as pending[]"),
                ("dead[].*", "", "as pending[], and reason"),
            ],
        }),
    },
    Page {
        command: "queue list",
        exit: QUEUE_EXIT,
        json: Some(Json {
            shape: "The whole queue (dead letters too, with or without --dead).",
            example: r#"{"identity":"worker","pending":[{"task":"01m8p25kww0003qhdf8prsz798","seq":2,"attempt":0,"enqueued_at":"2026-11-22T03:04:05.604Z","not_before":null,"started_at":null,"last_error":null,"dedupe":null,"bytes":3}],"running":[{"task":"01m8p25kvm000fjfyxvnjz51z3","seq":1,"attempt":1,"enqueued_at":"2026-11-22T03:04:05.564Z","not_before":null,"started_at":"2026-11-22T03:04:05.565Z","last_error":null,"dedupe":null,"bytes":3,"worker":0}],"dead":[{"task":"01m8p25psy0008252edp92d3dn","seq":3,"attempt":3,"enqueued_at":"2026-11-22T03:04:01.582Z","not_before":null,"started_at":"2026-11-22T03:04:04.583Z","last_error":"exit-1","dedupe":null,"bytes":3,"reason":"max-attempts"}],"quarantined":[{"entry":"new-00000000000000000004.01m8p25psy0008252edp92d3dq","from":"new/00000000000000000004.01m8p25psy0008252edp92d3dq","reason":"payload checksum 5c1f4a7d01e0a84b does not match the header's 85944171f73967e8","task":"01m8p25psy0008252edp92d3dq","bytes":222,"at":"2026-11-22T03:04:06.100Z"}]}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("pending", "array of tasks", "waiting, in FIFO order"),
                ("running", "array of tasks", "the claimed tasks: one per busy worker"),
                ("dead", "array of tasks", "dead letters, each with a reason"),
                ("pending[].task", "string", "the task id"),
                ("pending[].seq", "integer", "its place in the order of enqueue"),
                ("pending[].attempt", "integer", "runs started so far"),
                ("pending[].enqueued_at", "string, RFC 3339", "when send made it durable"),
                ("pending[].not_before", "string, RFC 3339, or null", "backed off until then"),
                ("pending[].started_at", "string, RFC 3339, or null", "its last run's start"),
                ("pending[].last_error", "string or null", "why its last run failed"),
                ("pending[].dedupe", "string or null", "its --dedupe key"),
                ("pending[].bytes", "integer", "size of the payload"),
                (
                    "running[].worker",
                    "integer",
                    "the worker slot that runs it (0 to --workers minus 1; muxvisor status \
                     --json lists the workers with their pids)",
                ),
                ("running[].*", "", "as pending[]"),
                ("dead[].*", "", "as pending[]"),
                ("dead[].reason", "string", "max-attempts, ttl, launch-failed, ..."),
                (
                    "quarantined",
                    "array",
                    "entries found damaged or foreign in new/ or cur/ (by any command that held \
                     the queue's lock, this one included) and moved to quarantine/; never run",
                ),
                ("quarantined[].entry", "string", "its name in quarantine/ (for queue show)"),
                ("quarantined[].from", "string", "where it was: new/NAME or cur/NAME"),
                ("quarantined[].reason", "string", "what is wrong with it"),
                ("quarantined[].task", "string or null", "the task id its name carried"),
                ("quarantined[].bytes", "integer", "its size"),
                ("quarantined[].at", "string, RFC 3339, or null", "when it was quarantined"),
            ],
        }),
    },
    Page {
        command: "queue show",
        exit: QUEUE_EXIT,
        json: Some(Json {
            shape: "One task in full, wherever it is (pending, running, done or dead). For a \
                    quarantined entry (named by its entry or its task id) the document is \
                    instead that entry as muxvisor-queue-list(1) lists it, with stage \
                    \"quarantined\" and head (its first 4 KiB as text).",
            example: r#"{"identity":"worker","task":"01m8p25kww0003qhdf8prsz798","seq":2,"attempt":1,"enqueued_at":"2026-11-22T03:04:05.604Z","not_before":null,"started_at":"2026-11-22T03:04:05.656Z","last_error":null,"dedupe":null,"bytes":3,"stage":"done","position":null,"payload":"two","outcome":{"status":0,"signal":null,"duration_ms":41,"screen_tail":"two"},"reason":null,"reply":null}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("task", "string", "the task id"),
                ("seq", "integer", "its place in the order of enqueue"),
                ("attempt", "integer", "runs started so far"),
                ("enqueued_at", "string, RFC 3339", "when send made it durable"),
                ("not_before", "string, RFC 3339, or null", "backed off until then"),
                ("started_at", "string, RFC 3339, or null", "its last run's start"),
                ("last_error", "string or null", "why its last run failed"),
                ("dedupe", "string or null", "its --dedupe key"),
                ("bytes", "integer", "size of the payload"),
                ("worker", "integer", "only while running: the worker slot that runs it"),
                ("stage", "string", "pending, running, done, dead (or quarantined)"),
                ("position", "integer or null", "1-based place in the FIFO when pending"),
                ("payload", "string", "the task text (invalid UTF-8 replaced)"),
                ("outcome", "object or null", "how it finished (done)"),
                ("outcome.status", "integer or null", "the program's exit code"),
                ("outcome.signal", "string or null", "the signal that ended it"),
                ("outcome.duration_ms", "integer", "from claim to exit"),
                ("outcome.screen_tail", "string", "the last lines of the pane after it ended"),
                (
                    "outcome.delivered_at",
                    "string, RFC 3339",
                    "only for a mailbox message or an agent pool's task: when the agent took it in",
                ),
                ("outcome.reply", "string", "only for an agent pool's task: the agent's reply"),
                (
                    "reply",
                    "string or null",
                    "an agent pool's task, once done: the agent's reply (its Stop hook's \
                     transcript, else the pane between the prompt and the next ready prompt); \
                     else null",
                ),
                ("reason", "string or null", "why it was dead-lettered (dead)"),
            ],
        }),
    },
    Page {
        command: "queue retry",
        exit: QUEUE_EXIT,
        json: Some(Json {
            shape: "The dead letter, back at the tail.",
            example: r#"{"identity":"worker","task":"01m8p25psy0008252edp92d3dn","retried":true,"depth":1}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("task", "string", "the task id"),
                ("retried", "boolean", "always true"),
                ("depth", "integer", "pending tasks now"),
            ],
        }),
    },
    Page {
        command: "queue rm",
        exit: QUEUE_EXIT,
        json: Some(Json {
            shape: "The task removed (not a running one: stop its worker first).",
            example: r#"{"identity":"worker","task":"01m8p25psy0008252edp92d3dn","removed":true,"stage":"pending"}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("task", "string", "the task id"),
                ("removed", "boolean", "always true"),
                ("stage", "string", "pending or dead"),
            ],
        }),
    },
    Page {
        command: "queue purge",
        exit: QUEUE_EXIT,
        json: Some(Json {
            shape: "How many pending and dead tasks were removed (the running one stays).",
            example: r#"{"identity":"worker","purged":2}"#,
            fields: &[("identity", "string", "the peer"), ("purged", "integer", "tasks removed")],
        }),
    },
    Page {
        command: "supervise",
        exit: &[
            (
                "0",
                "The tick ran, even if some peers could not be handled (those are \"error\" \
                 entries); or another tick was running (JSON: []). The loop exits 0 on SIGTERM \
                 or SIGINT after the tick in progress.",
            ),
            ("1", "The tick could not run at all (the root or its logs are unusable)."),
            USAGE,
            TMUX,
        ],
        json: Some(Json {
            shape: "An array, one entry per action taken, by identity (an idle, healthy peer has \
                    none). Without --once, one array per tick, one per line.",
            example: r#"[{"identity":"claude","action":"gone","reason":"server-dead: tmux server is not running"},{"identity":"claude","action":"restart-pending","reason":"attempt 1 in 881ms, backoff 881ms from the death; the first tick after that restarts it"},{"identity":"worker","action":"runner-start","reason":"pid 4321"}]"#,
            fields: &[
                ("[].identity", "string", "the peer"),
                (
                    "[].action",
                    "string",
                    "hung, gone, nudge, clean-socket, canary, reaped-idle, reaped-age, restart, \
                     restart-pending, failed, runner-start, task-retry, task-dead, \
                     task-finished, worker-stopped, quarantined, courier, admission-held, launch, \
                     continue, session-exit (a death the exit hook missed, recorded), rehook \
                     (the exit hook re-pointed at this binary after an upgrade), retention \
                     (finished tasks past --retention or --retention-count removed), skipped, \
                     error",
                ),
                ("[].reason", "string", "why, for a person"),
            ],
        }),
    },
    Page {
        command: "screen",
        exit: &[
            ("0", "The lines were printed."),
            ("1", "No such peer, or no session to read (the message says what to run)."),
            USAGE,
            TMUX,
        ],
        json: Some(Json {
            shape: "The lines, escapes stripped unless --raw.",
            example: r#"{"identity":"claude","lines":["agent got: hello agent"]}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("lines", "array of strings", "oldest first, without newlines"),
            ],
        }),
    },
    Page {
        command: "logs",
        exit: &[
            (
                "0",
                "Printed. --follow runs until it is interrupted (then the signal ends it) or its \
                 reader goes away (a closed stdout is exit 0).",
            ),
            ("1", "No such peer, or no pane log yet (without --follow)."),
            USAGE,
        ],
        json: Some(Json {
            shape: "The lines, escapes stripped unless --raw. With --follow, JSON Lines instead: \
                    {\"identity\", \"line\"} per line as it arrives.",
            example: r#"{"identity":"claude","path":"/home/me/.local/state/muxvisor/logs/panes/claude.log","lines":["agent got: hello agent"]}"#,
            fields: &[
                ("identity", "string", "the peer"),
                ("path", "string", "the pane log read"),
                ("lines", "array of strings", "oldest first"),
            ],
        }),
    },
    Page {
        command: "events",
        exit: &[
            (
                "0",
                "Printed. --follow runs until it is interrupted (then the signal ends it) or its \
                 reader goes away (a closed stdout is exit 0).",
            ),
            ("1", "A log could not be read."),
            USAGE,
        ],
        json: Some(Json {
            shape: "An array of events in time order; with --follow, JSON Lines, one event per \
                    line. Each event has ts and ev (strings), identity where one applies, and \
                    the keys muxvisor(1) EVENTS lists for it, typed as listed there: integers \
                    and booleans are JSON numbers and booleans, a value written empty is null.",
            example: r#"[{"ts":"2026-11-22T03:04:05.123Z","ev":"launch","identity":"claude","pid":4242,"policy":"persistent"},{"ts":"2026-11-22T03:09:10.002Z","ev":"session-exit","identity":"claude","status":null,"signal":9,"signal_name":"SIGKILL","pid":4242}]"#,
            fields: &[
                ("[].ts", "string, RFC 3339", "when it happened"),
                ("[].ev", "string", "the event; muxvisor(1) EVENTS lists each"),
                ("[].identity", "string", "the peer, where one applies"),
                ("[].*", "per muxvisor(1) EVENTS", "the event's keys, typed"),
            ],
        }),
    },
    Page {
        command: "attach",
        exit: &[
            ("0", "The tmux client's own status once you detach (muxvisor becomes tmux)."),
            ("1", "No such peer, not running, or its server does not answer."),
            USAGE,
            TMUX,
        ],
        json: None,
    },
    Page {
        command: "clean",
        exit: &[
            ("0", "Everything found was cleaned (or listed, with --dry-run)."),
            ("1", "Some part failed; the rest was done and \"errors\" says what."),
            USAGE,
        ],
        json: Some(Json {
            shape: "What was (or, with --dry-run, would be) removed, stopped or rotated.",
            example: r#"{"dry_run":true,"stale_sockets":["/r/run/w1.sock"],"orphan_canaries":[{"identity":"w1","pid":4100,"how":null}],"unaccounted_servers":[{"identity":"old","server_pid":4000,"reason":"its peer spec /r/peers/old.json does not exist","how":null}],"orphan_waiters":[{"identity":"w2","pid":4200}],"recreated_sockets":[],"orphan_couriers":[{"identity":"claude","pid":4300,"how":null}],"strays":[{"identity":"cx","pid":4400,"argv":"codex app-server --listen unix://","how":null}],"tmp_files":[],"done_tasks":[],"stale_payloads":[],"stale_instances":[],"rotated":[{"path":"/r/logs/lifecycle.log","size":10485800,"cap":10485760}],"errors":[]}"#,
            fields: &[
                ("dry_run", "boolean", "nothing was changed"),
                ("stale_sockets", "array of strings", "sockets no server listens on"),
                ("orphan_canaries", "array", "canaries with no server to watch"),
                ("orphan_canaries[].identity", "string", "whose"),
                ("orphan_canaries[].pid", "integer or null", "the canary's pid"),
                ("orphan_canaries[].how", "string or null", "term or kill; null on a dry run"),
                ("unaccounted_servers", "array", "servers up with no valid peer spec"),
                ("unaccounted_servers[].identity", "string", "the socket's identity"),
                ("unaccounted_servers[].server_pid", "integer or null", "the server's pid"),
                ("unaccounted_servers[].reason", "string", "what is wrong with the spec"),
                ("unaccounted_servers[].how", "string or null", "term or kill; null on a dry run"),
                (
                    "orphan_waiters",
                    "array",
                    "tmux wait-for clients left by killed canaries (ended unless a dry run)",
                ),
                ("orphan_waiters[].identity", "string", "whose canary it waited for"),
                ("orphan_waiters[].pid", "integer", "the client's pid"),
                (
                    "recreated_sockets",
                    "array of strings",
                    "sockets found deleted under a running server, which re-created them",
                ),
                (
                    "orphan_couriers",
                    "array",
                    "mailbox couriers with nothing left to deliver (ended unless a dry run)",
                ),
                ("orphan_couriers[].identity", "string", "whose mailbox"),
                ("orphan_couriers[].pid", "integer or null", "the courier's pid"),
                ("orphan_couriers[].how", "string or null", "term; null on a dry run"),
                (
                    "strays",
                    "array",
                    "processes left behind by a peer whose server is down: they still carry its \
                     MUXVISOR_IDENTITY and MUXVISOR_ROOT (ended unless a dry run)",
                ),
                ("strays[].identity", "string", "whose program left it"),
                ("strays[].pid", "integer", "its pid"),
                ("strays[].argv", "string", "its command line"),
                ("strays[].how", "string or null", "ended; null on a dry run"),
                ("tmp_files", "array of strings", "abandoned temp files"),
                ("done_tasks", "array of strings", "finished tasks past --retention"),
                ("stale_payloads", "array of strings", "payload copies of finished tasks"),
                (
                    "stale_instances",
                    "array of strings",
                    "state files (state/<id>.pool-<k>.json and .mark.json) of agent pool \
                     instances whose runner is dead",
                ),
                ("rotated", "array", "logs past their cap"),
                ("rotated[].path", "string", "the log"),
                ("rotated[].size", "integer", "its size in bytes"),
                ("rotated[].cap", "integer", "the cap in bytes"),
                ("errors", "array of strings", "parts that failed"),
            ],
        }),
    },
    Page {
        command: "doctor",
        exit: &[
            ("0", "No problem found (warnings allowed)."),
            ("1", "At least one finding is an error; each says how to fix it."),
            USAGE,
        ],
        json: Some(Json {
            shape: "Every finding, in the order checked.",
            example: r#"{"ok":false,"root":"/home/me/.local/state/muxvisor","errors":1,"warnings":0,"findings":[{"check":"root","level":"ok","message":"/home/me/.local/state/muxvisor is yours and private","fix":null},{"check":"hung-server","level":"error","message":"the tmux server of claude (pid 4240) does not answer (stopped or wedged)","fix":"kill -CONT 4240 to let it go on, or `muxvisor stop claude` to end it"}]}"#,
            fields: &[
                ("ok", "boolean", "no errors"),
                ("root", "string", "the root checked"),
                ("errors", "integer", "findings at level error"),
                ("warnings", "integer", "findings at level warn"),
                ("findings", "array", "what was checked and found"),
                (
                    "findings[].check",
                    "string",
                    "tmux, sockets, root, permissions, service, tick, ghosts, orphan-canary, \
                     stale-socket, hung-server, unaccounted-server, canary, peers, notify, ...",
                ),
                ("findings[].level", "string", "ok, warn or error"),
                ("findings[].message", "string", "what was found"),
                ("findings[].fix", "string or null", "what to run or do"),
            ],
        }),
    },
    Page {
        command: "service",
        exit: &[
            ("0", "Installed, uninstalled, shown (--print), or status printed."),
            (
                "1",
                "The service manager refused or is missing (crontab, systemctl --user), a \
                 file muxvisor did not write is in the way, (--print) the install shown could \
                 not run here (no crontab: the line is shown all the same), or (status) \
                 nothing is installed for this root.",
            ),
            USAGE,
        ],
        json: Some(Json {
            shape: "install and uninstall: what was (or with --print would be) written; status: \
                    what is installed.",
            example: r#"{"kind":"cron","action":"install","dry_run":true,"changes":[{"target":"crontab","op":"write","content":"* * * * * ... # muxvisor-supervise root=/r\n"}],"enabled":null,"notes":[],"why":"--cron was given"}"#,
            fields: &[
                ("kind", "string", "install/uninstall: launchd, systemd or cron"),
                ("action", "string", "install or uninstall"),
                ("dry_run", "boolean", "--print: nothing was changed"),
                ("changes", "array", "files (or the crontab) written or removed"),
                ("changes[].target", "string", "a path, or crontab"),
                ("changes[].op", "string", "write, remove or unchanged"),
                ("changes[].content", "string", "only for write: the new content"),
                ("enabled", "boolean or null", "the manager runs it now; null if not asked"),
                ("notes", "array of strings", "what to know or do next"),
                (
                    "why",
                    "string",
                    "install/uninstall: why this kind (the flag given, or what was found)",
                ),
                ("root", "string", "only for status: the root"),
                ("installed", "boolean", "only for status: installed for this root"),
                ("services", "array", "only for status: one entry per kind"),
                ("services[].kind", "string", "only for status: launchd, systemd or cron"),
                ("services[].installed", "boolean", "only for status: an entry exists"),
                ("services[].locations", "array of strings", "only for status: files, or crontab"),
                ("services[].loaded", "boolean or null", "only for status: the manager runs it"),
                ("services[].interval_s", "integer or null", "only for status: between ticks"),
                ("services[].for_this_root", "boolean", "only for status: it is this root's"),
                ("services[].detail", "string or null", "only for status: why it is unclear"),
                ("services[].path", "string or null", "only for status: the tick's PATH"),
                ("services[].exe", "string or null", "only for status: the binary the tick runs"),
            ],
        }),
    },
    Page { command: "completions", exit: &[("0", "The script was printed."), USAGE], json: None },
];

/// The page of `command` (`"queue list"` for a nested one).
pub fn page(command: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.command == command)
}

/// The example pretty-printed, as lines.
fn example_lines(j: &Json) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(j.example).unwrap_or_default();
    serde_json::to_string_pretty(&v).unwrap_or_default().lines().map(str::to_string).collect()
}

/// `page`'s sections for its man page.
pub fn sections(page: &Page) -> Vec<Section> {
    // A queue action is spelled after the identity (`queue ID list`).
    let spelled = match page.command.split_once(' ') {
        Some((cmd, action)) => format!("`muxvisor {cmd} ID {action}` (or `{cmd} {action} ID`)"),
        None => format!("`muxvisor {}`", page.command),
    };
    let mut exit = vec![Block::Para(format!(
        "{spelled} exits with one of these; muxvisor(1) EXIT STATUS has the whole list."
    ))];
    exit.extend(
        page.exit.iter().map(|(c, d)| Block::Item { tag: c.to_string(), body: d.to_string() }),
    );
    let mut out = vec![Section { title: "EXIT STATUS", blocks: exit }];
    let json = match &page.json {
        Some(j) => {
            let mut b = vec![
                Block::Para(format!(
                    "With --json, exactly one JSON document on stdout. {}",
                    j.shape
                )),
                Block::Pre(example_lines(j)),
                Block::Para("Fields (more may be added; existing ones keep their meaning):".into()),
            ];
            b.extend(j.fields.iter().map(|(path, ty, what)| Block::Item {
                tag: path.to_string(),
                body: if ty.is_empty() { what.to_string() } else { format!("({ty}) {what}") },
            }));
            b
        }
        None => vec![Block::Para("This command prints no JSON; --json changes nothing.".into())],
    };
    out.push(Section { title: "JSON OUTPUT", blocks: json });
    out
}

/// `page` as plain text for `--help`, wrapped to 100 columns.
pub fn help_text(page: &Page) -> String {
    let mut s = String::new();
    for sec in sections(page) {
        s.push_str(sec.title);
        s.push_str(":\n");
        let width = sec
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Item { tag, .. } => Some(tag.len()),
                _ => None,
            })
            .filter(|w| *w <= 24)
            .max()
            .unwrap_or(0);
        for b in &sec.blocks {
            match b {
                Block::Para(t) => s.push_str(&wrap(t, "  ", "  ")),
                Block::Item { tag, body } => {
                    let first = if tag.len() <= width {
                        format!("  {tag:<width$}  ")
                    } else {
                        format!("  {tag}\n{}", " ".repeat(width + 4))
                    };
                    s.push_str(&wrap(body, &first, &" ".repeat(width + 4)));
                }
                Block::Pre(lines) => {
                    for l in lines {
                        s.push_str(&format!("    {l}\n"));
                    }
                }
            }
        }
        s.push('\n');
    }
    s.trim_end().to_string()
}

/// `text` filled to 100 columns: `first` before the first line, `indent`
/// before the others (`first` may end in a line of its own).
fn wrap(text: &str, first: &str, indent: &str) -> String {
    const WIDTH: usize = 100;
    let mut out = first.to_string();
    let mut col = first.rsplit('\n').next().unwrap_or_default().len();
    let start = col;
    for word in text.split_whitespace() {
        if col > start && col + 1 + word.len() > WIDTH {
            out.push('\n');
            out.push_str(indent);
            col = indent.len();
        } else if col > start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out.push('\n');
    out
}

/// `cmd` with every subcommand's page as its `after_long_help` (`--help`).
pub fn attach(cmd: clap::Command) -> clap::Command {
    attach_at(cmd, "")
}

fn attach_at(cmd: clap::Command, prefix: &str) -> clap::Command {
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let mut cmd = cmd;
    for name in names {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix} {name}") };
        cmd = cmd.mut_subcommand(&name, |sub| {
            let sub = match page(&path) {
                Some(p) => sub.after_long_help(help_text(p)),
                None => sub,
            };
            attach_at(sub, &path)
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_json_and_every_field_is_in_it() {
        for p in PAGES {
            let Some(j) = p.json else { continue };
            let v: serde_json::Value = serde_json::from_str(j.example)
                .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}", p.command));
            for (path, _, what) in j.fields {
                // Optional fields say so; `x.*` stands for fields listed elsewhere.
                if path.ends_with('*') || what.starts_with("only") {
                    continue;
                }
                assert!(lookup(&v, path), "{}: field {path} is not in the example", p.command);
            }
        }
    }

    /// True when `path` (`a.b`, `[].a`, `a[].b`) names something in `v`.
    fn lookup(v: &serde_json::Value, path: &str) -> bool {
        let mut cur = vec![v];
        for part in path.split('.') {
            let (key, each) = match part.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (part, false),
            };
            let mut next = Vec::new();
            for c in cur {
                let c = if key.is_empty() { Some(c) } else { c.get(key) };
                match (c, each) {
                    (Some(serde_json::Value::Array(a)), true) => next.extend(a.iter()),
                    (Some(x), false) => next.push(x),
                    _ => {}
                }
            }
            if next.is_empty() {
                return false;
            }
            cur = next;
        }
        true
    }

    #[test]
    fn every_page_has_exit_statuses_in_order_and_the_usage_one() {
        for p in PAGES {
            let codes: Vec<u8> = p.exit.iter().map(|(c, _)| c.parse().unwrap()).collect();
            assert!(codes.windows(2).all(|w| w[0] < w[1]), "{}: {codes:?}", p.command);
            assert!(codes.contains(&0) && codes.contains(&2), "{}", p.command);
        }
        let mut names: Vec<_> = PAGES.iter().map(|p| p.command).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PAGES.len(), "a page listed twice");
    }

    #[test]
    fn help_text_has_both_sections() {
        let t = help_text(page("send").unwrap());
        assert!(t.starts_with("EXIT STATUS:\n"), "{t}");
        assert!(t.contains("\nJSON OUTPUT:\n"), "{t}");
        assert!(t.contains("  75"), "{t}");
        assert!(t.contains("\"queued\": true"), "{t}");
    }
}
