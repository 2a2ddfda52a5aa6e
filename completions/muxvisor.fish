# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_muxvisor_global_optspecs
    string join \n root= json h/help V/version
end

function __fish_muxvisor_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_muxvisor_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_muxvisor_using_subcommand
    set -l cmd (__fish_muxvisor_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c muxvisor -n "__fish_muxvisor_needs_command" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_needs_command" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -s V -l version -d 'Print version'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "add" -d 'Register or update a peer (identity, program, policy); prints the spec'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "rm" -d 'Unregister a peer. Refuses a running peer unless --force'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "launch" -d 'Start a persistent peer now. Exit 0 if it is already running; exit 1 with its status if the program dies within 1 s (MUXVISOR_SETTLE_MS). With --wait-ready, return only once the agent is ready (exit 0), blocked or dead (exit 1), or still starting at the deadline (exit 75). Ephemeral peers are started by `send` and the tick, not by hand'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "stop" -d 'Deliberately stop a peer: SIGTERM, then SIGHUP, then SIGKILL its program\'s process group, spread over the grace. Leaves no death record'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "restart" -d 'Stop, then launch (resuming the agent\'s conversation unless --fresh)'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "send" -d 'Queue a task for an ephemeral peer, or deliver text to a persistent one: typed at once (--when now), or made durable in its mailbox and pasted when the agent is ready, one message per turn (--when idle). --keys sends key names at once'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "mark" -d 'Report an agent\'s state from its own hooks (the strongest source): ready, busy or blocked. `mark ID ready` also delivers the next message of its mailbox at once'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "status" -d 'One row per peer: state, pid, uptime, idle time, exit status, queue'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "queue" -d 'Inspect and manage a peer\'s FIFO and its dead letters'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "supervise" -d 'Run the supervision tick: restart, reap, record, drain queues'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "screen" -d 'Print the last lines of a peer\'s pane'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "logs" -d 'Print a peer\'s pane output log'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "events" -d 'Lifecycle and exit events, merged in time order. With --follow --json, one JSON object per line'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "attach" -d 'Attach your terminal to a peer\'s tmux server'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "clean" -d 'Remove ghosts: stale sockets, orphan canaries, abandoned tmp files, old finished tasks, the state of dead agent pool instances; rotate logs to their caps'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "doctor" -d 'Check tmux, the root, sockets, the service and orphans. Exit 1 if anything is wrong'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "service" -d 'Install, remove or inspect the periodic tick (launchd, systemd, cron)'
complete -c muxvisor -n "__fish_muxvisor_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l cwd -d 'Working directory of the program (default: the current directory)' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l env -d 'Environment for the program, repeatable: --env KEY=VALUE. Wins over the env file and the recorded base; given at all, it replaces every --env pair given before. The program\'s environment is its own: the base recorded at the first add (HOME, USER, LOGNAME, SHELL, PATH, LANG, LANGUAGE, LC_*, TZ, TMPDIR), the env file, these pairs, and MUXVISOR_IDENTITY and MUXVISOR_ROOT; nothing else of whoever launches it (status ID --json shows it)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l env-file -d 'A file of KEY=VALUE lines (# comments, blank lines; values taken literally, no quotes removed) read at every launch, so a rotated secret is picked up; its values are never printed by status. The file must be readable now; a launch that cannot read it fails naming it' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l idle-ttl -d 'Stop the session after this long without pane output (or a message delivered to it)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l max-age -d 'Stop the session after this long since launch' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l restart -d 'When a persistent peer is restarted by the tick [default: on-failure]' -r -f -a "never\t'Never restart automatically'
on-failure\t'Restart when the program exits non-zero, is signalled, or its server dies'
always\t'Restart whenever it is not running (except after a deliberate stop or idle reap)'"
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l backoff -d 'First restart/retry delay; doubles with jitter up to --max-backoff [default: 1s]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l max-backoff -d 'Cap on the restart/retry delay [default: 5m]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l restart-burst -d 'Failures within --restart-window that mark the peer failed [default: 5]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l restart-window -d 'Window for --restart-burst [default: 10m]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l max-attempts -d 'Attempts per task before it is dead-lettered [default: 3]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l task-ttl -d 'Dead-letter a task not finished this long after it was queued [default: 1d]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l task-timeout -d 'Stop a task\'s program that runs longer than this, and retry the task [default: 1h]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l deliver -d 'How a task reaches its program: argv ({task}, {task_file}, environment) or keys [default: argv]' -r -f -a "argv\t'Hand the task through {task} / {task_file} in argv and the environment'
keys\t'Start the program, wait until its screen is quiet, type the task (bracketed paste, then Enter); the task is done when the program exits or idles past --idle-ttl'"
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l linger -d 'How long an ephemeral peer\'s runner waits for more tasks once its queue is empty before it ends its tmux server [default: 2s]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l workers -d 'Run up to N (1 to 64) tasks of an ephemeral peer\'s queue at once, each in its own pane, started in queue order; not with --deliver keys [default: 1: one at a time, strict FIFO]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l warm -d 'An agent pool (--ephemeral with --agent or --ready-pattern): agent instances kept started and ready ahead of demand, refilled a few seconds after one takes a task; at most --workers [default: 0]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l reuse -d 'An agent pool: how long an instance that finished a task waits for the next one before it stops (down to --warm) [default: 60s]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l reset -d 'An agent pool: text typed (confirmed, as a message) into an instance between two tasks, so that each task starts from a clean context, for example /clear' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l agent -d 'An interactive agent whose screens muxvisor knows: claude, codex, gemini or aider (see AGENTS in muxvisor(1)). Its ready, busy and blocked patterns apply, and `send` defaults to --when idle' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l ready-pattern -d 'The agent is ready when this regex matches its visible screen (multi-line: ^ and $ at each line); it should match only an EMPTY prompt. Repeatable; replaces the preset\'s' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l busy-pattern -d 'The agent is busy (a turn runs) while this regex matches; wins over a visible ready pattern. Repeatable; replaces the preset\'s' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l blocked-pattern -d 'The agent is blocked for reason NAME (a dialog, a permission prompt, a limit) while RE matches. Repeatable; replaces the preset\'s' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l quiet -d 'With no ready pattern, output quiet this long (and no busy pattern) counts as ready [default: 1.5s]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l when -d 'How `send` delivers to this persistent peer by default: now (type at once) or idle (durable mailbox, one message per ready state) [default: idle with --agent, else now]' -r -f -a "now\t'Type the text at once'
idle\t'Make it durable; paste it when the agent is ready, one message per turn'"
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l fresh-arg -d 'An argument appended to the program\'s at a fresh start (repeatable); {session_id} is replaced by a new conversation id. Replaces the --agent preset\'s (claude: --session-id {session_id})' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l resume-arg -d 'An argument appended to the program\'s when it resumes its conversation after a crash, a reap or a reboot (repeatable); {session_id} is the recorded id. Replaces the preset\'s (claude: --resume {session_id})' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l continue-message -d 'A message queued into the agent\'s mailbox once a usage limit it is parked on has reset (e.g. "continue")' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l ephemeral -d 'No standing session: a runner runs the queued tasks one at a time, in FIFO order, each with a fresh process of the program, and ends once the queue stays empty (--linger)'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l persistent -d 'One long-lived session, restarted by policy (the default for a new peer; turns an ephemeral peer back into a persistent one)'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l force -d 'Allow a policy change on a running peer by stopping it first'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l no-env-file -d 'Forget the env file given before'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l refresh-env -d 'Record the base environment (HOME, USER, PATH, LANG, ...) again from this shell; a new peer always records it, an update keeps the recorded one'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand rm" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand rm" -l force -d 'Stop the peer first if it is running'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand rm" -l purge -d 'Also delete its queue, state and pane log'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand rm" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand rm" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand launch" -l wait-ready -d 'Return only once the agent is ready: exit 0; exit 1 if it is blocked (the reason and the screen lines that matched are printed) or its program died; exit 75 if the deadline passed while it was still starting [default: 120s when given without a value]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand launch" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand launch" -l fresh -d 'Start a new conversation instead of resuming the recorded one'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand launch" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand launch" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand stop" -l grace -d 'How long SIGTERM and SIGHUP get before SIGKILL' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand stop" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand stop" -l fail-task -d 'Ephemeral peer: dead-letter the task its worker was running (reason `stopped`) instead of putting it back at the head of the queue uncharged'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand stop" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand restart" -l grace -d 'How long SIGTERM and SIGHUP get before SIGKILL' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand restart" -l wait-ready -d 'As for launch: return only once the agent is ready' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand restart" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand restart" -l fresh -d 'Start a new conversation instead of resuming the recorded one'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand restart" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand restart" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l file -d 'Read the task text from this file' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l dedupe -d 'Acknowledge without queueing again while a task with this key is pending or running' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l when -d 'Persistent peer: now (type at once) or idle (durable mailbox; pasted when the agent is ready, in FIFO order, one message per turn) [default: the peer\'s --when]' -r -f -a "now\t'Type the text at once'
idle\t'Make it durable; paste it when the agent is ready, one message per turn'"
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l wait -d 'With --when idle: return only once this message was delivered; exit 1 if it was dead-lettered instead (the reason is printed), 75 if the deadline passes first (the message stays queued) [default: 120s when given without a value]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l keys -d 'Persistent peer: send these tmux key names at once (Escape, C-c, Enter, Up, F5, ...) instead of text' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l no-kick -d 'Only make the task durable; do not start a runner now (a live runner still picks it up; otherwise the next send or tick starts one)'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l no-enter -d 'Persistent peer: paste the text without pressing Enter (it stays a draft)'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand mark" -l reason -d 'Why (shown by status; for blocked, e.g. permission, usage-limit)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand mark" -l session-id -d 'The agent\'s conversation id, stored for a resume' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand mark" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand mark" -l hook-json -d 'Read a hook\'s JSON payload on stdin (Claude Code hooks): its session_id and, for blocked, its message as the reason, unless given'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand mark" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand mark" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand status" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand status" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand status" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -l id -d 'The peer\'s identity, as an option: reaches a peer whose name is also a verb of this command (`queue --id list list`)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -l dead -d 'With list: show dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -a "list" -d 'Pending tasks in FIFO order, the running one, and (--dead) dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -a "show" -d 'One task: payload, attempts, timestamps, outcome'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -a "retry" -d 'Put a dead letter back at the tail of the queue'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -a "rm" -d 'Remove one pending or dead task'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and not __fish_seen_subcommand_from list show retry rm purge" -a "purge" -d 'Remove every pending and dead task (not the running one)'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from list" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from list" -l dead -d 'With list: show dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from list" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from show" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from show" -l dead -d 'With list: show dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from show" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from retry" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from retry" -l dead -d 'With list: show dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from retry" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from rm" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from rm" -l dead -d 'With list: show dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from rm" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from purge" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from purge" -l dead -d 'With list: show dead letters'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from purge" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand queue; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l interval -d 'Time between ticks when looping (at least 1s)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l retention -d 'Keep finished tasks this long; each tick removes older ones' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l retention-count -d 'Keep at most this many finished tasks per queue (the newest)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l max-starting -d 'Most agents starting at once; more launches wait, `queued` [default: MUXVISOR_MAX_STARTING, else 2]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l min-mem-available -d 'Hold launches while available memory is under this (e.g. 2G) [default: MUXVISOR_MIN_MEM_AVAILABLE, else no floor]' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l once -d 'Run one tick and exit'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand supervise" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand screen" -l lines -d 'How many lines from the bottom' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand screen" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand screen" -l raw -d 'Keep the colours and attributes tmux can reproduce'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand screen" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand screen" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand logs" -l lines -d 'How many lines from the end' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand logs" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand logs" -s f -l follow -d 'Keep printing as the log grows'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand logs" -l raw -d 'Print the program\'s bytes as written, terminal escape sequences (colours, titles, clipboard writes) included'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand logs" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand logs" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand events" -l id -d 'Only events of this identity' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand events" -l since -d 'Only events newer than this (e.g. 1h)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand events" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand events" -s f -l follow -d 'Keep printing new events'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand events" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand events" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand attach" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand attach" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand attach" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand clean" -l retention -d 'Keep finished tasks this long' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand clean" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand clean" -l dry-run -d 'Say what would be removed; remove nothing'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand clean" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand clean" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand doctor" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand doctor" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l interval -d 'Time between ticks (launchd: at least 10s; cron: whole minutes)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l max-starting -d 'Passed to the tick: most agents starting at once' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l min-mem-available -d 'Passed to the tick: hold launches under this available memory (e.g. 2G)' -r
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l launchd -d 'A launchd agent (~/Library/LaunchAgents)'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l systemd -d 'A systemd user service and timer'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l cron -d 'A line in your crontab, tagged so uninstall removes only it'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l print -d 'Show what would be written, with the kind chosen and why; change nothing, not even the root directory. Works without crontab or a user systemd; exits 1 (after showing it) when the install could not run here'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand service" -s h -l help -d 'Print help'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand completions" -l root -d 'State directory (created 0700). Beats MUXVISOR_ROOT, which beats $XDG_STATE_HOME/muxvisor, which beats ~/.local/state/muxvisor' -r -F
complete -c muxvisor -n "__fish_muxvisor_using_subcommand completions" -l json -d 'Print exactly one JSON document on stdout instead of human output'
complete -c muxvisor -n "__fish_muxvisor_using_subcommand completions" -s h -l help -d 'Print help'
