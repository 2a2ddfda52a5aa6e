//! The parts of the manual that clap cannot derive from the CLI: the files
//! under the root, the environment, the exit statuses, the log line format and
//! every event. They live here, as data, so the man page (`man/muxvisor.1`,
//! rendered by the `docs` integration test) comes from code and a change to the
//! contract is a change to one Rust file, reviewed with the code that emits it.
//!
//! Text is plain: no roff. The renderer escapes it.

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
    ("queues/<id>/", "The durable FIFO of that identity: tmp/ -> new/ -> cur/ -> done/ | dead/."),
    ("logs/lifecycle.log", "One logfmt line per lifecycle event (see EVENTS)."),
    ("logs/exits.log", "One logfmt line per death: ev=session-exit, ev=server-exit."),
    ("logs/server-deaths/<id>-<unix>.txt", "Forensics snapshot taken by the canary."),
    (
        "logs/panes/<id>.log",
        "The pane's output, size-capped; `muxvisor clean` rotates it to <id>.log.1.",
    ),
    ("logs/service.out, logs/service.err", "Output of the tick when run by launchd."),
    ("supervise.lock", "Held by a running tick (flock; never deleted)."),
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
    ("MUXVISOR_TASK_ID", "Set for an ephemeral worker: the id of the task it runs."),
    ("MUXVISOR_TASK_FILE", "Set for an ephemeral worker: a file holding the task text."),
    ("MUXVISOR_IDENTITY", "Set for an ephemeral worker: the identity it works for."),
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
/// keys beyond `ts`, `ev` and `identity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventDoc {
    pub ev: &'static str,
    pub file: &'static str,
    pub when: &'static str,
    pub keys: &'static str,
}

/// Every event muxvisor writes.
pub const EVENTS: &[EventDoc] = &[
    EventDoc {
        ev: "add",
        file: "lifecycle",
        when: "a peer was registered or its spec updated",
        keys: "policy, updated (true when an existing spec was replaced)",
    },
    EventDoc {
        ev: "rm",
        file: "lifecycle",
        when: "a peer was unregistered",
        keys: "stopped (it was running and was stopped first), purge",
    },
    EventDoc {
        ev: "launch",
        file: "lifecycle",
        when: "a session was started",
        keys: "pid (pane pid), policy, task (ephemeral)",
    },
    EventDoc {
        ev: "stop",
        file: "lifecycle",
        when: "a deliberate stop finished",
        keys: "how (term, hup, kill: the signal that ended it), grace_ms, reason (stop, restart, reaped-idle, ...)",
    },
    EventDoc {
        ev: "session-exit",
        file: "exits",
        when: "the pane's program died (tmux pane-died hook)",
        keys: "status (exit code, empty if signalled), signal (number or name, empty if exited), pid",
    },
    EventDoc {
        ev: "server-exit",
        file: "exits",
        when: "the tmux server died without muxvisor stopping it (seen by the canary)",
        keys: "server_pid, wait_rc, forensics (path of the snapshot)",
    },
    EventDoc {
        ev: "gone",
        file: "lifecycle",
        when: "a tick found a recorded session missing",
        keys: "death (server-dead or session-gone), reason",
    },
    EventDoc {
        ev: "socket-recreated",
        file: "lifecycle",
        when: "the socket was found deleted under a running server, which re-created it on SIGUSR1",
        keys: "server_pid, socket",
    },
    EventDoc {
        ev: "reaped-idle",
        file: "lifecycle",
        when: "a tick stopped a session idle longer than its TTL",
        keys: "idle_s",
    },
    EventDoc {
        ev: "reaped-age",
        file: "lifecycle",
        when: "a tick stopped a session older than its max-age",
        keys: "age_s",
    },
    EventDoc {
        ev: "hung",
        file: "lifecycle",
        when: "a tick found the server not answering in time (stopped or wedged)",
        keys: "reason",
    },
    EventDoc {
        ev: "restart",
        file: "lifecycle",
        when: "a tick restarted a persistent peer",
        keys: "attempt, backoff_ms",
    },
    EventDoc {
        ev: "failed",
        file: "lifecycle",
        when: "a peer exceeded its restart budget; no more restarts until launch or restart",
        keys: "restarts, failures, window_s",
    },
    EventDoc {
        ev: "enqueue",
        file: "lifecycle",
        when: "a task was made durable",
        keys: "task, depth, retry (when a dead letter was put back)",
    },
    EventDoc {
        ev: "task-start",
        file: "lifecycle",
        when: "a worker was launched for a task",
        keys: "task, attempt, pid",
    },
    EventDoc {
        ev: "task-done",
        file: "lifecycle",
        when: "a task finished and was acknowledged",
        keys: "task, status, signal, duration_ms",
    },
    EventDoc {
        ev: "task-retry",
        file: "lifecycle",
        when: "a task failed and went back to the head of its queue",
        keys: "task, attempt, not_before, reason",
    },
    EventDoc {
        ev: "task-dead",
        file: "lifecycle",
        when: "a task was dead-lettered",
        keys: "task, reason (max-attempts, ttl, corrupt, ...), attempt; for corrupt entries also entry, detail",
    },
    EventDoc {
        ev: "tick",
        file: "lifecycle",
        when: "a tick finished",
        keys: "peers, duration_ms, actions",
    },
    EventDoc {
        ev: "clean",
        file: "lifecycle",
        when: "`muxvisor clean` removed or rotated something",
        keys: "stale_sockets, orphan_canaries, orphan_waiters, tmp_files, done_tasks, rotated",
    },
    EventDoc {
        ev: "service-install",
        file: "lifecycle",
        when: "`muxvisor service install` wrote the periodic tick",
        keys: "kind (launchd, systemd, cron), interval_s, path",
    },
    EventDoc {
        ev: "service-uninstall",
        file: "lifecycle",
        when: "`muxvisor service uninstall` removed it",
        keys: "kind, path",
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

    let mut events = vec![para(
        "Each event with the file it goes to, when it is written, and its keys beyond ts, ev \
         and identity. More keys may be added; existing ones keep their meaning.",
    )];
    events.extend(EVENTS.iter().map(|e| Block::Item {
        tag: format!("ev={}", e.ev),
        body: format!("({}.log) When {}. Keys: {}.", e.file, e.when, e.keys),
    }));

    vec![
        Section { title: "FILES", blocks: files },
        Section { title: "ENVIRONMENT", blocks: env },
        Section { title: "EXIT STATUS", blocks: exit },
        Section { title: "LOG FORMAT", blocks: log },
        Section { title: "EVENTS", blocks: events },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn exit_statuses_match_the_enum() {
        use crate::exit::Exit;
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
        assert_eq!(titles, ["FILES", "ENVIRONMENT", "EXIT STATUS", "LOG FORMAT", "EVENTS"]);
    }
}
