//! The parts of the manual that clap cannot derive from the CLI: the files
//! under the root, the environment, the exit statuses, the log line format and
//! every event. They live here, as data, so the man page (`man/muxvisor.1`,
//! rendered by the `docs` integration test) comes from code and a change to the
//! contract is a change to one Rust file, reviewed with the code that emits it.
//!
//! Text is plain: no roff. The renderer escapes it.
//!
//! [`pages`] holds the same kind of data for each subcommand's own page:
//! its exit statuses and its `--json` document. The type of each event key
//! is the model's (`events::KEY_TYPES`): the manual shows it, it does not
//! decide it.

pub mod pages;

use crate::model::events::key_type;

/// One top-level section of `muxvisor(1)` after clap's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub title: &'static str,
    pub blocks: Vec<Block>,
}

/// A piece of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A paragraph of running text.
    Para(String),
    /// A tagged paragraph: a term (shown bold) and its explanation.
    Item { tag: String, body: String },
    /// Lines shown verbatim (no filling), e.g. an example log line.
    Pre(Vec<String>),
}

fn para(s: &str) -> Block {
    Block::Para(s.to_string())
}

fn item(tag: &str, body: &str) -> Block {
    Block::Item { tag: tag.to_string(), body: body.to_string() }
}

/// The layout of the root, as SPEC §2 and `paths.rs` define it.
pub const FILES: &[(&str, &str)] = &[
    ("peers/<id>.json", "The peer spec, written atomically by `muxvisor add`."),
    ("run/<id>.sock", "The socket of that identity's private tmux server."),
    ("run/<id>.lock", "Per-identity lock held while launching, stopping or restarting (flock)."),
    (
        "run/<id>.canary.lock",
        "Held by the live server-death canary of that identity (flock; never deleted).",
    ),
    (
        "run/<id>.stopping",
        "Written before a deliberate teardown so that the canary and the exit hook stay silent.",
    ),
    ("state/<id>.json", "Last observed state, restart counters, the current task."),
    (
        "state/<id>.agent.json",
        "A persistent peer's agent record: its newest mark, its last delivery, whether it was \
         ever ready, the state last logged, its conversation id (run/<id>.agent.lock guards it).",
    ),
    (
        "queues/<id>/",
        "The durable FIFO of that identity (an ephemeral peer's tasks, a persistent peer's \
         mailbox): tmp/ -> new/ -> cur/ -> done/ | dead/, and quarantine/ for damaged entries. \
         worker.lock, runner.lock and courier.lock are held by whoever starts a runner, the \
         live runner, and the live courier (flock; never deleted).",
    ),
    ("logs/lifecycle.log", "One logfmt line per lifecycle event (see EVENTS)."),
    ("logs/exits.log", "One logfmt line per death: ev=session-exit, ev=server-exit."),
    ("logs/server-deaths/<id>-<unix>.txt", "Forensics snapshot taken by the canary."),
    (
        "logs/panes/<id>.log",
        "The pane's output, size-capped; `muxvisor clean` rotates it to <id>.log.1.",
    ),
    (
        "logs/service.out, logs/service.err",
        "Output of the tick when launchd or cron runs it (under systemd it goes to the journal).",
    ),
    ("supervise.lock", "Held by a running tick (flock; never deleted)."),
    (
        "hooks/on-event",
        "Optional, yours (muxvisor never creates it): run once per new event line, detached from \
         whatever wrote the event, with the line on stdin, MUXVISOR_EVENT, MUXVISOR_IDENTITY and \
         MUXVISOR_ROOT set, the root as its working directory, no TMUX, its output appended to \
         logs/notify.log, and a deadline (MUXVISOR_NOTIFY_TIMEOUT, 10 s) after which its process \
         group is killed. Lines go out one at a time, in time order, once, from the moment the \
         hook was installed (its ctime); a failure is recorded (ev=notify-failed) and the next \
         line still goes out. Every event is sent except tick, enqueue, task-start, task-done, \
         msg-delivered, the session-exit of a task's program (it has task=) and notify-failed, \
         notify-dropped and notify-refused. It must be a regular file (not a symlink) owned by \
         you and not writable by group or others, in a hooks/ that is the same; otherwise it is \
         refused (ev=notify-refused) and doctor says why. Not executable: off.",
    ),
    (
        "run/_notify.lock, run/_notify.cursor",
        "Held by the one process delivering to hooks/on-event (flock); how far it has delivered \
         each log (device, inode and offset of each file, so a rotation loses and repeats nothing).",
    ),
    ("logs/notify.log", "What hooks/on-event printed; rotated to notify.log.1 past 1 MiB."),
];

/// Environment variables muxvisor reads or sets.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("MUXVISOR_ROOT", "The state root, when --root is not given. Beats XDG_STATE_HOME and HOME."),
    ("XDG_STATE_HOME", "When set, the default root is $XDG_STATE_HOME/muxvisor."),
    (
        "HOME",
        "Otherwise the default root is ~/.local/state/muxvisor. `service` also writes \
         ~/Library/LaunchAgents (launchd) and ~/.config/systemd/user (systemd) under HOME.",
    ),
    ("XDG_CONFIG_HOME", "Where `service --systemd` puts its units: $XDG_CONFIG_HOME/systemd/user."),
    (
        "MUXVISOR_TMUX",
        "The tmux binary to use (a path or a name looked up on PATH); default: tmux on PATH.",
    ),
    (
        "MUXVISOR_SETTLE_MS",
        "How long `launch` and `restart` watch a new program for an early death before \
         reporting success, in milliseconds (default 1000; 0 skips the watch).",
    ),
    (
        "MUXVISOR_LOG_MAX",
        "Size cap in bytes of lifecycle.log, exits.log and the service logs; every tick (and \
         `clean`) rotates a log past it to <name>.1 (default 10 MiB; one old copy is kept).",
    ),
    (
        "MUXVISOR_PANE_LOG_MAX",
        "Size cap in bytes of each pane log (default: MUXVISOR_LOG_MAX, else 10 MiB). The \
         pane-log copier of a live session rotates its own log; `clean` rotates the others.",
    ),
    ("MUXVISOR_TASK_ID", "Set for an ephemeral peer's program: the id of the task it runs."),
    ("MUXVISOR_TASK_FILE", "Set for an ephemeral peer's program: a file holding the task text."),
    (
        "MUXVISOR_IDENTITY",
        "Set in every peer's pane: its identity (for an agent's hooks: `muxvisor mark \
         \"$MUXVISOR_IDENTITY\" ready`). MUXVISOR_ROOT is set there too.",
    ),
    (
        "MUXVISOR_TRACE",
        "A file for benchmarks: an ephemeral peer's runner appends one line of per-task timings \
         to it (bench/drain.py), and `send` one line of the wall-clock time of each of its steps \
         (bench/queue.sh).",
    ),
    (
        "MUXVISOR_EVENT",
        "Set for hooks/on-event: the ev of the line on its stdin. MUXVISOR_IDENTITY is then the \
         line's identity (empty if it has none) and MUXVISOR_ROOT the root.",
    ),
    (
        "MUXVISOR_NOTIFY_TIMEOUT",
        "Deadline of one run of hooks/on-event (a duration, default 10s). Read, like \
         MUXVISOR_NOTIFY_BACKLOG, by the process that delivers, which inherits the environment \
         of whatever wrote the event (a tick, a canary, a command).",
    ),
    (
        "MUXVISOR_NOTIFY_BACKLOG",
        "Most lines waiting for hooks/on-event (default 1000); past it the oldest are skipped \
         and the hook is told first (ev=notify-dropped).",
    ),
    (
        "MUXVISOR_MAX_STARTING",
        "Most agents starting at once (default 2); more launches are held, shown as queued. \
         `supervise --max-starting` beats it.",
    ),
    (
        "MUXVISOR_MIN_MEM_AVAILABLE",
        "Hold launches while the machine's available memory is under this size (e.g. 2G; unset: \
         no floor). `supervise --min-mem-available` beats it.",
    ),
];

/// The documented exit statuses (see `exit.rs`).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "Failure, or a \"no\" answer: peer not found, not running for a query that needs it, \
         `doctor` found a problem.",
    ),
    ("2", "Usage error: the command line was wrong."),
    ("69", "tmux is missing or unusable (EX_UNAVAILABLE)."),
    (
        "75",
        "Temporary failure, try again (EX_TEMPFAIL): a lock held past its wait, disk full while \
         enqueueing. Nothing was changed; for `send`, nothing was queued.",
    ),
];

/// One event of the logs: its `ev=`, its file, when it is written, and the
/// keys beyond `ts`, `ev` and `identity` with what each means there (their
/// types are [`KEY_TYPES`](crate::model::events::KEY_TYPES)'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventDoc {
    pub ev: &'static str,
    pub file: &'static str,
    pub when: &'static str,
    pub keys: &'static [(&'static str, &'static str)],
}

/// Every event muxvisor writes.
pub const EVENTS: &[EventDoc] = &[
    EventDoc {
        ev: "add",
        file: "lifecycle",
        when: "a peer was registered or its spec updated",
        keys: &[
            ("policy", "persistent or ephemeral"),
            ("updated", "true when an existing spec was replaced"),
        ],
    },
    EventDoc {
        ev: "rm",
        file: "lifecycle",
        when: "a peer was unregistered",
        keys: &[
            ("stopped", "it was running and was stopped first"),
            ("purge", "its queue, state and pane logs were deleted"),
        ],
    },
    EventDoc {
        ev: "launch",
        file: "lifecycle",
        when: "a session was started",
        keys: &[
            ("pid", "the pane's pid"),
            ("policy", "persistent or ephemeral"),
            ("runner", "true when the pane runs an ephemeral peer's runner (`muxvisor _run`)"),
        ],
    },
    EventDoc {
        ev: "stop",
        file: "lifecycle",
        when: "a deliberate stop finished",
        keys: &[
            (
                "how",
                "term, hup or kill (the signal that ended it), or exit when a runner retired itself",
            ),
            ("grace_ms", "the grace given after SIGTERM"),
            (
                "reason",
                "stop, restart, rm, reaped-idle, max-age, policy-change, unaccounted, drained \
                 (a runner whose queue stayed empty for its --linger), ...",
            ),
            ("strays", "processes left behind by the program and ended (see strays-ended)"),
        ],
    },
    EventDoc {
        ev: "strays-ended",
        file: "lifecycle",
        when: "processes that outlived the peer's tmux server (they still carry its \
               MUXVISOR_IDENTITY and MUXVISOR_ROOT: a daemon its program started, a program \
               that ignored SIGHUP) were ended, by a stop, before a launch, or by clean",
        keys: &[
            ("when", "stop, launch or clean"),
            ("count", "how many were found"),
            ("killed", "how many needed SIGKILL after SIGTERM and the grace"),
            ("pids", "each as PID:ARGV, joined by |"),
        ],
    },
    EventDoc {
        ev: "session-exit",
        file: "exits",
        when: "the pane's program died (tmux pane-died hook, or the first tick that found \
               the pane dead when the hook did not record it), or an ephemeral peer's \
               program ended a task (recorded by its runner, which is its parent)",
        keys: &[
            ("status", "its exit code; null if signalled"),
            ("signal", "the signal number; null if it exited"),
            ("signal_name", "SIGTERM, SIGKILL, ... (only when signalled)"),
            ("pid", "the pane's pid, or the task program's"),
            ("task", "the task the program ran (ephemeral peers)"),
            (
                "source",
                "tick when a tick recorded a death the hook missed (its binary moved, or it was \
                 killed); launch when a launch (a `send` waking its peer, `launch`) found the pane \
                 dead and unrecorded before it replaced it; absent otherwise",
            ),
        ],
    },
    EventDoc {
        ev: "server-exit",
        file: "exits",
        when: "the tmux server died without muxvisor stopping it (seen by the canary)",
        keys: &[
            ("server_pid", "the dead server's pid"),
            (
                "wait_rc",
                "1: the server vanished under the canary (its process exited, or its tmux wait-for client lost it); else that client's exit status",
            ),
            (
                "crash",
                "only when the kernel logged the server's own fault (Linux): its words, e.g. `segfault at 20 ip ...`",
            ),
            ("forensics", "path of the snapshot; null if it could not be written"),
        ],
    },
    EventDoc {
        ev: "gone",
        file: "lifecycle",
        when: "a tick found a recorded session missing",
        keys: &[("death", "server-dead or session-gone"), ("reason", "what was seen")],
    },
    EventDoc {
        ev: "socket-recreated",
        file: "lifecycle",
        when: "the socket was found deleted under a running server, which re-created it on SIGUSR1",
        keys: &[("server_pid", "the server that re-created it"), ("socket", "its path")],
    },
    EventDoc {
        ev: "reaped-idle",
        file: "lifecycle",
        when: "a tick stopped a session idle longer than its TTL, or an agent pool's \
               instance stopped itself, idle past --reuse or --idle-ttl with more than --warm \
               instances idle",
        keys: &[
            ("idle_s", "seconds without pane output (an instance: without a task)"),
            ("slot", "an agent pool instance's worker slot"),
        ],
    },
    EventDoc {
        ev: "reaped-age",
        file: "lifecycle",
        when: "a tick stopped a session older than its max-age",
        keys: &[("age_s", "seconds since its launch")],
    },
    EventDoc {
        ev: "hung",
        file: "lifecycle",
        when: "a tick found the server not answering in time (stopped or wedged)",
        keys: &[("reason", "what timed out")],
    },
    EventDoc {
        ev: "restart",
        file: "lifecycle",
        when: "a tick restarted a persistent peer",
        keys: &[
            ("attempt", "restarts since the last healthy run, from 1"),
            ("backoff_ms", "the pause it waited, counted from the death"),
        ],
    },
    EventDoc {
        ev: "failed",
        file: "lifecycle",
        when: "a peer exceeded its restart budget; no more restarts until launch or restart",
        keys: &[
            ("restarts", "restarts made"),
            ("failures", "deaths within the window"),
            ("window_s", "the restart window"),
        ],
    },
    EventDoc {
        ev: "enqueue",
        file: "lifecycle",
        when: "a task was made durable",
        keys: &[
            ("task", "the task id"),
            ("depth", "pending tasks after it"),
            ("retry", "true when a dead letter was put back"),
        ],
    },
    EventDoc {
        ev: "task-start",
        file: "lifecycle",
        when: "a runner started the program for a task (an agent pool: typed the task into \
               its instance's agent, which took it in)",
        keys: &[
            ("task", "the task id"),
            ("attempt", "from 1"),
            ("pid", "the program's pid (an agent pool: its instance's agent's)"),
            ("slot", "the worker slot, 0 to --workers minus 1"),
        ],
    },
    EventDoc {
        ev: "instance-start",
        file: "lifecycle",
        when: "an agent pool's instance started its agent, once admission let it: a warm \
               start ahead of demand, a start for a pending task, or a replacement after the \
               agent died or its --reset failed",
        keys: &[("slot", "the instance's worker slot"), ("pid", "the agent's pid")],
    },
    EventDoc {
        ev: "reset-failed",
        file: "lifecycle",
        when: "an agent pool instance's --reset text was not taken in between two tasks: the \
               instance's agent is ended and replaced (instance-start follows), so the next \
               task never meets the last one's context",
        keys: &[
            ("slot", "the instance's worker slot"),
            ("pid", "the agent that was ended"),
            ("reason", "not-taken (with screen), or what failed"),
            ("screen", "the last lines of its screen, when it did not take the text in"),
        ],
    },
    EventDoc {
        ev: "task-done",
        file: "lifecycle",
        when: "a task finished and was acknowledged",
        keys: &[
            ("task", "the task id"),
            ("status", "the worker's exit code; null when reaped idle (--deliver keys)"),
            ("signal", "null: a signalled worker is retried, not acknowledged"),
            ("duration_ms", "from claim to exit"),
        ],
    },
    EventDoc {
        ev: "task-retry",
        file: "lifecycle",
        when: "a task failed and went back to the head of its queue",
        keys: &[
            ("task", "the task id"),
            ("attempt", "the attempt that failed"),
            ("not_before", "when it may run again"),
            (
                "reason",
                "exit-N, signal-N, timeout, server-dead, launch-failed, runner-died: ..., \
                 keys-failed: ..., agent-died: ..., agent-blocked: ...",
            ),
        ],
    },
    EventDoc {
        ev: "task-timeout",
        file: "lifecycle",
        when: "an ephemeral peer's runner ended a program that ran past its --task-timeout \
               (SIGTERM, then SIGKILL 5 s later); the task is retried as `timeout`",
        keys: &[
            ("task", "the task id"),
            ("duration_ms", "from claim to the program's end"),
            ("timeout_ms", "its --task-timeout"),
        ],
    },
    EventDoc {
        ev: "task-blocked",
        file: "lifecycle",
        when: "an agent pool instance's agent read blocked (a usage limit, a login; not a \
               permission prompt, which waits for a person up to --task-timeout) for a second \
               while it worked a task: the task fails as `agent-blocked: REASON` \
               (task-retry or task-dead follow, by the queue's retry policy); the instance keeps \
               its agent, which takes no task while blocked (status says why)",
        keys: &[
            ("task", "the task id"),
            ("slot", "the instance's worker slot"),
            ("reason", "why the agent is blocked (usage-limit, permission, ...)"),
        ],
    },
    EventDoc {
        ev: "task-requeued",
        file: "lifecycle",
        when: "a deliberate `stop` ended the worker running a task, and the task went back to \
               the head of its queue with no attempt charged",
        keys: &[
            ("task", "the task id"),
            ("attempt", "attempts charged so far (the stopped one is not)"),
            ("reason", "stopped"),
        ],
    },
    EventDoc {
        ev: "task-dead",
        file: "lifecycle",
        when: "a task was dead-lettered (or a corrupt entry quarantined)",
        keys: &[
            ("task", "the task id (empty for an entry whose name is unreadable)"),
            (
                "reason",
                "max-attempts, ttl, corrupt, stopped (`stop --fail-task`), delivery-unknown, ...",
            ),
            ("attempt", "attempts made"),
            (
                "entry",
                "corrupt only: the queue entry, stage/name (quarantine/inbox-... for bytes at the \
                 end of the inbox that a crash cut short: a send that was never acknowledged)",
            ),
            ("detail", "corrupt only: what is wrong with it"),
        ],
    },
    EventDoc {
        ev: "task-restored",
        file: "lifecycle",
        when: "after a crash of the machine, an acknowledged task whose queue entry the crash lost \
               or damaged was written again from the queue's inbox (see README, \"What a power cut \
               can undo\")",
        keys: &[
            ("task", "the task id"),
            ("stage", "where it was written: new (pending again), cur, done or dead"),
        ],
    },
    EventDoc {
        ev: "agent-state",
        file: "lifecycle",
        when: "a persistent peer's agent changed state (seen by a look: the courier, the tick, \
               mark, launch --wait-ready, a delivery)",
        keys: &[
            ("state", "starting, ready, busy, blocked or unknown"),
            ("reason", "why it is blocked (or what its mark said); empty otherwise"),
            ("source", "mark, screen, quiet, delivery, start or process"),
            ("screen", "blocked by the screen: the lines its pattern matched, joined by |"),
            ("until", "blocked by a usage limit: its reset time, as read from the screen"),
            ("started_as", "at a launch: fresh or resume"),
            ("session_id", "at a launch: the conversation id it uses"),
        ],
    },
    EventDoc {
        ev: "resume-failed",
        file: "lifecycle",
        when: "a launch falls back to a fresh start because the resume before it died before \
               its agent was ever ready (once per failed resume)",
        keys: &[
            ("session_id", "the conversation that could not be resumed"),
            ("reason", "what happened"),
            ("new_session_id", "the id of the fresh conversation, when muxvisor assigns one"),
        ],
    },
    EventDoc {
        ev: "admission-held",
        file: "lifecycle",
        when: "a launch waits for admission (too many agents starting, or too little memory); \
               logged once per hold (status shows the current reason), not an error, no \
               restart budget used; an agent pool instance's start is held the same way (with \
               slot)",
        keys: &[("reason", "what holds it"), ("slot", "an agent pool instance's worker slot")],
    },
    EventDoc {
        ev: "msg-delivered",
        file: "lifecycle",
        when: "a mailbox message was typed into its agent and the agent took it in (one per \
               ready state); never written for a message the agent did not take in",
        keys: &[("task", "the message's id"), ("delivered_at", "when the agent took it in")],
    },
    EventDoc {
        ev: "msg-undelivered",
        file: "lifecycle",
        when: "a mailbox message was typed, but the agent did not take it in after two Enters; \
               it stays at the head of the mailbox and the agent is blocked (reason \
               undelivered) until a mark",
        keys: &[("task", "the message's id"), ("screen", "the last screen lines, joined by |")],
    },
    EventDoc {
        ev: "delivery-unknown",
        file: "lifecycle",
        when: "the tmux server did not answer while a mailbox message or an agent pool's task \
               (or --reset) was typed (stopped or wedged: it may still run what it received \
               once it answers). The task stays claimed, not typed again, while muxvisor waits \
               for the server (at most 2 minutes, and a pool's task at most until its \
               --task-timeout), then decides from the screen: taken in (it runs, or is \
               delivered, as usual), typed but not submitted (Enter, confirmed), nothing typed \
               (back at the head, no attempt charged), or undecidable: dead-lettered with \
               reason delivery-unknown (`queue retry` sends it again)",
        keys: &[
            ("task", "the task or message id (none for a --reset)"),
            ("slot", "an agent pool instance's worker slot"),
            ("reason", "the step the server did not answer (screen, load, paste, enter) and why"),
        ],
    },
    EventDoc {
        ev: "admitter-error",
        file: "lifecycle",
        when: "the admitter, which launches held peers as room frees up, stopped on an error \
               (the tick launches them, and starts another)",
        keys: &[("reason", "what went wrong")],
    },
    EventDoc {
        ev: "courier-error",
        file: "lifecycle",
        when: "a mailbox's courier stopped on an error (the tick starts another)",
        keys: &[("reason", "what went wrong")],
    },
    EventDoc {
        ev: "runner-error",
        file: "lifecycle",
        when: "an ephemeral peer's runner stopped on an error (its hand-over or the tick \
               finishes what it left)",
        keys: &[("reason", "what went wrong")],
    },
    EventDoc {
        ev: "handover-error",
        file: "lifecycle",
        when: "the hand-over after a runner died could not do its step (the tick will)",
        keys: &[("reason", "what went wrong")],
    },
    EventDoc {
        ev: "notify-failed",
        file: "lifecycle",
        when: "hooks/on-event failed on a line (non-zero exit, signal, past its deadline, or could \
               not be run); the next line still goes out. It is never itself sent to the hook",
        keys: &[
            ("event", "the ev of the line the hook was given"),
            ("event_ts", "that line's ts"),
            ("status", "the hook's exit code; null if it did not exit"),
            ("signal", "the signal that ended it; 9 when killed at the deadline"),
            (
                "reason",
                "exit-N, signal-N, timeout: killed after D, cannot run ..., or runner: ... when \
                 the delivering process itself failed",
            ),
            ("duration_ms", "how long the hook ran"),
        ],
    },
    EventDoc {
        ev: "notify-dropped",
        file: "lifecycle",
        when: "more lines waited for hooks/on-event than MUXVISOR_NOTIFY_BACKLOG: the oldest were \
               skipped, and the hook is given this line before the rest",
        keys: &[
            ("dropped", "lines skipped"),
            ("first_ts", "ts of the first line skipped"),
            ("last_ts", "ts of the last line skipped"),
        ],
    },
    EventDoc {
        ev: "notify-refused",
        file: "lifecycle",
        when: "hooks/on-event is not trusted (a symlink, not a regular file, not yours, writable by \
               group or others, or hooks/ is one of these); once per reason. Nothing is sent \
               until it is fixed, and then only what happens after the fix",
        keys: &[("reason", "what is wrong"), ("path", "the hook's path")],
    },
    EventDoc {
        ev: "tick",
        file: "lifecycle",
        when: "a tick finished",
        keys: &[
            ("peers", "peers handled"),
            ("duration_ms", "how long it took"),
            ("actions", "actions taken"),
        ],
    },
    EventDoc {
        ev: "clean",
        file: "lifecycle",
        when: "`muxvisor clean` removed, stopped or rotated something",
        keys: &[
            ("stale_sockets", "sockets removed"),
            ("orphan_canaries", "canaries ended"),
            ("orphan_waiters", "tmux wait-for clients of dead canaries ended"),
            ("orphan_couriers", "mailbox couriers with nothing to deliver, ended"),
            ("stopped_servers", "servers stopped that no valid spec accounted for"),
            ("tmp_files", "abandoned temp files removed"),
            ("done_tasks", "finished tasks removed"),
            ("stale_instances", "state files of dead agent pool instances removed"),
            ("rotated", "logs rotated"),
        ],
    },
    EventDoc {
        ev: "service-install",
        file: "lifecycle",
        when: "`muxvisor service install` wrote the periodic tick",
        keys: &[
            ("kind", "launchd, systemd or cron"),
            ("interval_s", "seconds between ticks"),
            ("path", "the file or crontab written"),
        ],
    },
    EventDoc {
        ev: "service-uninstall",
        file: "lifecycle",
        when: "`muxvisor service uninstall` removed it",
        keys: &[("kind", "launchd, systemd or cron"), ("path", "the file or crontab changed")],
    },
];

/// The sections of `muxvisor(1)` that follow clap's, in order.
pub fn sections() -> Vec<Section> {
    let mut files = vec![para(
        "Everything lives under one root directory (see --root). Every directory is created \
         0700 and every file 0600; no path is followed through a symlink. Socket paths must \
         fit the platform limit (104 bytes on macOS, 108 on Linux): a root that makes them too \
         long is refused.",
    )];
    files.extend(FILES.iter().map(|(p, d)| item(p, d)));

    let mut env = vec![para("muxvisor reads:")];
    env.extend(ENVIRONMENT.iter().map(|(k, d)| item(k, d)));
    env.push(para(
        "A peer's program does not get the environment of whoever launches it (a shell, the \
         tick under cron, launchd or systemd): it runs with its own, the same for every \
         launcher. It is the base recorded at its first `add` (HOME, USER, LOGNAME, SHELL, PATH, \
         LANG, LANGUAGE, LC_*, TZ, TMPDIR; `add --refresh-env` records it again), then its \
         --env-file (read at every launch), then its --env, then MUXVISOR_IDENTITY and \
         MUXVISOR_ROOT; tmux adds TERM, TERM_PROGRAM, TERM_PROGRAM_VERSION, TMUX and TMUX_PANE. \
         The MUXVISOR_* settings above, in the launcher's environment, configure that server's \
         exit hook, pane-log copier and runner, never the program. `muxvisor status ID --json` \
         shows the environment (env), the env file's values masked.",
    ));

    let mut exit = vec![para("Scripts can branch on these; they are part of the interface.")];
    exit.extend(EXIT_STATUS.iter().map(|(c, d)| item(c, d)));

    let log = vec![
        para(
            "logs/lifecycle.log and logs/exits.log hold one event per line in logfmt: key=value \
             pairs separated by one space. A value with a space, `=`, `\"`, a backslash or a \
             non-printable character is double-quoted, with \\\" \\\\ \\n \\r \\t and \\u{..} \
             escapes; an absent value is written empty (status=).",
        ),
        para(
            "Every line starts with ts=<RFC 3339 UTC, milliseconds> and ev=<event>, then \
             identity=<id> where one applies. A line is written with a single write(2) to an \
             O_APPEND descriptor, so concurrent writers never interleave inside a line. \
             `muxvisor events` merges both files in time order (--json for one document).",
        ),
        Block::Pre(vec![
            "ts=2026-11-22T03:04:05.123Z ev=launch identity=claude-bob pid=4242 policy=persistent"
                .to_string(),
            "ts=2026-11-22T03:09:10.002Z ev=session-exit identity=claude-bob status= signal=9"
                .to_string(),
        ]),
    ];

    let mut events = vec![
        para(
            "Each event with the file it goes to, when it is written, and its keys beyond ts, ev \
             and identity, with the JSON type each has in `muxvisor events --json` (ts, ev and \
             identity are strings). A key written empty (status=) is null there; a value that \
             does not parse as its type stays a string. More keys and events may be added; \
             existing ones keep their meaning and type, and an unknown key is a string.",
        ),
        Block::Pre(vec![
            r#"{"ts":"2026-11-22T03:09:10.002Z","ev":"session-exit","identity":"claude-bob","#
                .to_string(),
            r#" "status":null,"signal":9,"signal_name":"SIGKILL","pid":4242}"#.to_string(),
        ]),
    ];
    events.extend(EVENTS.iter().map(|e| {
        let keys: Vec<String> = e
            .keys
            .iter()
            .map(|(k, what)| format!("{k} ({}): {what}", key_type(k).name()))
            .collect();
        let keys = if keys.is_empty() { "none".to_string() } else { keys.join("; ") };
        Block::Item {
            tag: format!("ev={}", e.ev),
            body: format!("({}.log) When {}. Keys: {keys}.", e.file, e.when),
        }
    }));

    let mut agents = vec![
        para(
            "A persistent peer has an agent state besides its process state: starting, ready, \
             busy, blocked (with a reason) or unknown (not running). Sources, strongest first: a \
             mark from the agent's own hooks (`muxvisor mark ID ready|busy|blocked`), which wins \
             for 2 minutes and after that yields to a visible pattern that says otherwise; the \
             screen patterns (`add --agent`, --ready-pattern, --busy-pattern, --blocked-pattern \
             NAME=RE: regular expressions in multi-line mode over the visible screen, never the \
             scrollback; blocked beats busy beats ready); and output quiet for --quiet, which \
             counts as ready only for a peer with no ready pattern. Before it was first ready it \
             is starting; after a delivery it counts as busy until its screen changed.",
        ),
        para(
            "tmux's capture drops the blanks at the end of each line: a prompt printed as \
             `READY> ` is matched as `READY>`, so write '^READY> ?\\z', not '^READY> \\z' (`add` \
             warns about a pattern that needs a trailing blank). A pattern that is not a valid \
             regex (the regex crate's syntax) and an unknown --agent are refused by `add`, and a \
             spec file holding one by every command that reads it.",
        ),
        para(
            "A ready pattern matches an empty prompt only, so a draft a person left in the prompt \
             is never overwritten: a message waits while the prompt holds text.",
        ),
        para(
            "Mailbox: `send --when idle` (the default with --agent) makes a message durable in \
             the peer's queue, then types it when the agent is ready, in FIFO order, one \
             message per ready state. A detached courier (one per identity, alive while messages \
             wait) watches the agent; `mark ID ready` starts it and the tick delivers too.",
        ),
        para(
            "A delivery is confirmed: the text is pasted, Enter is pressed as its own step once \
             the paste shows, and the message counts as delivered only when the agent took it \
             in (its screen moved on, or a hook marked it). Otherwise Enter once more; still \
             nothing: ev=msg-undelivered, the message stays at the head, and the agent is \
             blocked (reason undelivered) until `mark ID ready`. Only entries queued as \
             messages, and only text without control characters other than newline and tab, \
             are ever typed; others are dead-lettered (not-a-message, untypable).",
        ),
        para("Presets (--agent NAME), and the program versions whose screens they match:"),
    ];
    agents.extend(crate::model::agent::presets::PRESETS.iter().map(|p| {
        let blocked: Vec<&str> = p.blocked.iter().map(|(r, _)| *r).collect();
        let resume = match p.resume {
            Some(r) => format!(
                "resume argv: fresh `{}`, resume `{}`",
                r.fresh.join(" "),
                r.resume.join(" ")
            ),
            None => "no resume by id".to_string(),
        };
        item(p.name, &format!("{}. Blocked reasons: {}; {resume}.", p.version, blocked.join(", ")))
    }));
    agents.push(para(
        "Claude Code hooks (in ~/.claude/settings.json; the pane's environment holds \
         MUXVISOR_IDENTITY and MUXVISOR_ROOT): UserPromptSubmit runs `muxvisor mark \
         \"$MUXVISOR_IDENTITY\" busy --hook-json`, Stop runs `... ready --hook-json`, \
         Notification with the permission_prompt matcher runs `... blocked --reason permission \
         --hook-json`. The README shows the whole settings block.",
    ));

    let tasks = vec![
        para(
            "An ephemeral peer's pane runs a runner (`muxvisor _run ID`), not the program: it \
             claims the head of the FIFO, starts the program for it as its own child (argv \
             placeholders, MUXVISOR_TASK_ID, MUXVISOR_TASK_FILE and the working directory as the \
             spec says), records the exit itself, acknowledges the task (or puts it back with \
             backoff, or dead-letters it) and claims the next, until the queue has been empty for \
             --linger (default 2 s); then it ends its own server (ev=stop reason=drained). A \
             burst drains at the program's speed, with no tick and no tmux call between tasks.",
        ),
        para(
            "Three things start a runner when none is alive, each under the peer's worker lock \
             and each by running the tick's own per-peer step: the kick (`send`, right after the \
             task is durable, unless --no-kick); the hand-over (when a runner dies, tmux's \
             pane-died hook forks a detached process that kills what is left, retries the task \
             it was running and starts a new runner; a runner whose server died records its \
             program's exit, then hands over the same way, logging ev=gone); and the tick, the \
             safety net (a lost hook, a reboot, --no-kick sends). With --deliver keys the runner \
             types each task into the program (bracketed paste, then Enter) once its screen is \
             quiet; such tasks pay a tmux round trip and still hand over without a tick.",
        ),
        para(
            "Refused before queueing (exit 1, \"NOT queued\"): with {task} in the argv, text \
             that is not UTF-8, holds a NUL byte, or would make one argument longer than execve \
             allows (131,071 bytes on Linux) or all of them longer than half of ARG_MAX; with \
             --deliver keys, text that is not UTF-8 or holds control characters other than \
             newline and tab. {task_file} in the argv (or MUXVISOR_TASK_FILE) takes any bytes.",
        ),
    ];

    let fleet = vec![
        para(
            "Resume: a persistent peer can carry a conversation id (status: agent.session_id and \
             agent.session_source). --agent claude (and gemini) assigns a random UUID at each \
             fresh start (--session-id ID) and restarts with --resume ID; any program gets the \
             same with `add --fresh-arg ARG --resume-arg ARG` (repeatable; {session_id} in them \
             or in the program's argv is replaced by the id). An id reported by `mark \
             --session-id` replaces the assigned one; ids are never guessed from files. A resume \
             that dies before it was ever ready falls back to a fresh start once \
             (ev=resume-failed). `launch --fresh` and `restart --fresh` skip the resume.",
        ),
        para(
            "Admission: at most MUXVISOR_MAX_STARTING (default 2) agents (peers with --agent or a \
             ready pattern) are starting at once, each for at most 5 minutes, and nothing is \
             launched while available memory is under MUXVISOR_MIN_MEM_AVAILABLE (Linux \
             MemAvailable; macOS kern.memorystatus_level times the memory size). A held launch \
             is not an error and uses no restart budget: status shows queued with the reason, \
             ev=admission-held is logged once, and a small detached admitter (_admit, one per \
             root, alive only while launches are held) launches it as soon as there is room, \
             the tick being the safety net. `stop ID` cancels a held launch. \
             `supervise --max-starting N --min-mem-available SIZE` set both, and `service \
             install` carries them into the periodic tick; each tick records the limits it \
             runs with (run/admission-limits.json), and an agent pool's instances take those \
             (before any tick, their own environment's). A limit of 0 starting agents is \
             refused (exit 1) by every command that launches. Restart delays carry jitter.",
        ),
        para(
            "Usage limits: an agent blocked with reason usage-limit is parked: its mailbox \
             holds, it is neither restarted nor reaped, and a reset time read on its screen is \
             stored (ev=agent-state ... until=TIME: the end of the minute shown, in the IANA zone \
             the notice names, else local time). After \
             it the tick looks again and delivery resumes; `add --continue-message TEXT` queues \
             TEXT once at the reset.",
        ),
        para(
            "More than one machine: run one tick per host from that host's own service manager \
             (for example `muxvisor service install` from an Ansible play, or a Nomad system job \
             running `muxvisor supervise`); there is no network listener.",
        ),
    ];

    let output = vec![para(
        "Text that muxvisor did not write (a reason from a hook or a screen, a payload, a \
         screen line, a file name, an error that quotes one) is printed inert: human output \
         shows each control character other than newline and tab as \\u{1b}, and a value \
         inside one line (a table cell, a list entry) shows newline, tab and carriage return \
         as \\n, \\t, \\r, so it cannot set the terminal's title, write its clipboard \
         (OSC 52) or start a fake row. JSON escapes DEL and the C1 controls besides what JSON \
         requires. `screen` and `logs` remove escape sequences and control characters from \
         the pane's output; `screen --raw` keeps the colours and attributes tmux reproduces, \
         and `logs --raw` prints the pane's bytes as written.",
    )];

    vec![
        Section { title: "FILES", blocks: files },
        Section { title: "TASKS", blocks: tasks },
        Section { title: "AGENTS", blocks: agents },
        Section { title: "FLEET", blocks: fleet },
        Section { title: "ENVIRONMENT", blocks: env },
        Section { title: "EXIT STATUS", blocks: exit },
        Section { title: "OUTPUT", blocks: output },
        Section { title: "LOG FORMAT", blocks: log },
        Section { title: "EVENTS", blocks: events },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::events::{JsonType, KEY_TYPES};

    #[test]
    fn every_contract_event_is_documented_once() {
        let contract = [
            "launch",
            "stop",
            "session-exit",
            "server-exit",
            "gone",
            "reaped-idle",
            "restart",
            "failed",
            "enqueue",
            "task-start",
            "task-done",
            "task-retry",
            "task-dead",
            "tick",
        ];
        for ev in contract {
            assert_eq!(EVENTS.iter().filter(|e| e.ev == ev).count(), 1, "{ev}");
        }
        let mut names: Vec<_> = EVENTS.iter().map(|e| e.ev).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENTS.len(), "duplicate event");
    }

    #[test]
    fn every_documented_key_has_one_type_and_every_type_is_used() {
        let mut names: Vec<_> = KEY_TYPES.iter().map(|(k, _)| *k).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEY_TYPES.len(), "a key typed twice");
        for e in EVENTS {
            for (k, _) in e.keys {
                assert!(KEY_TYPES.iter().any(|(t, _)| t == k), "{}: key {k} has no type", e.ev);
            }
        }
        for (k, _) in KEY_TYPES {
            let used = ["ts", "ev", "identity"].contains(k)
                || EVENTS.iter().any(|e| e.keys.iter().any(|(n, _)| n == k));
            assert!(used, "{k} is typed but no event has it");
        }
        assert_eq!(key_type("pid"), JsonType::Integer);
        assert_eq!(key_type("no-such-key"), JsonType::String);
    }

    #[test]
    fn exit_statuses_match_the_enum() {
        use crate::ground::exit::Exit;
        let codes: Vec<String> = [Exit::Ok, Exit::Failure, Exit::Usage, Exit::Unavailable]
            .iter()
            .chain([Exit::TempFail].iter())
            .map(|e| e.code().to_string())
            .collect();
        let documented: Vec<String> = EXIT_STATUS.iter().map(|(c, _)| c.to_string()).collect();
        assert_eq!(codes, documented);
    }

    #[test]
    fn files_cover_the_root_layout() {
        for must in ["peers/", "run/<id>.sock", "state/", "queues/", "lifecycle.log", "exits.log"] {
            assert!(FILES.iter().any(|(p, _)| p.contains(must)), "{must}");
        }
        let titles: Vec<_> = sections().iter().map(|s| s.title).collect();
        assert_eq!(
            titles,
            [
                "FILES",
                "TASKS",
                "AGENTS",
                "FLEET",
                "ENVIRONMENT",
                "EXIT STATUS",
                "OUTPUT",
                "LOG FORMAT",
                "EVENTS"
            ]
        );
    }
}
