#!/usr/bin/env python3
"""Long soak test for muxvisor (issue 10, "Done means"): chaos against a
private root for N minutes, then settle and check that nothing was lost,
duplicated or left behind.

Usage: python3 bench/soak.py [--minutes N] [--seed S] [--keep]

Builds the release binary, then, against a private root under /tmp:
- registers persistent peers (a read loop, a sleep) and ephemeral peers
  whose programs append `start|end <task id> <text> <pid>` to a per-peer
  file and sleep a little (one uses {task}, one {task_file}, one is typed
  with --deliver keys);
- runs senders (`send`, recording which exited 0 and their task ids), a
  tick about every second (`supervise --once`, with a retention count that
  keeps every finished task) and a chaos thread that
  kill -9s tmux servers, panes' programs, runners, task programs, senders,
  ticks, canaries, canaries' `wait-for` clients and `pane-died` hooks /
  hand-overs, and SIGSTOPs servers for a few seconds;
- stops the chaos, lets ticks settle everything (bounded) and checks:
  1. every task whose send exited 0 ran and is done (acknowledged once) or
     dead-lettered with a reason; none lost, none finished twice;
  2. every server kill has exactly one ev=server-exit for that pid (or,
     killed while its canary was dead, the tick's ev=gone) and every
     ev=server-exit is a kill;
  3. one canary per live server (with one wait-for client unless it watches
     the server through a pidfd), none for dead ones, no
     other process left; `doctor` and `clean --dry-run` find nothing;
  4. per peer, tasks first ran in queue (send) order.
Issue 19 adds, mixed into the chaos by an operator thread (one at a time,
every 2 to 6 s): `stop` of an ephemeral peer while its worker runs a task
(15 % with --fail-task); `stop` of a persistent peer, relaunched 0.5 to 3 s
later; `stop`/`restart "$MUXVISOR_IDENTITY"` typed (tmux send-keys) into
the pane of p-shell, an interactive shell; moves of the binary: muxvisor
runs from a copy under the soak's directory, which is renamed to a new
path now and then (at least 30 s apart), so the pane-died hooks of live
servers name a path that is gone, and everything after runs the new path.
An ephemeral peer e-slow has --task-timeout 1s and some tasks whose first
run sleeps 3 s. Their accounts:
  5. a stop is never charged: each task a `stop` reports requeued has one
     ev=task-requeued reason=stopped, the run it interrupted is the
     task-start just before it, and its next claim reuses that attempt (or
     is a retry charged to a kill before the program started); no retry or
     dead letter for a SIGTERM; a task dead-lettered `stopped` was reported
     by a `stop --fail-task` (and is counted apart, not lost); a done task's
     attempt is that of its last task-start;
  6. every kill -9 of a persistent pane has exactly one ev=session-exit
     (by its hook, or a tick's `source=tick` when the hook's binary was
     moved away), or none because its server died (killed or stopped)
     before the first tick after the death; every such record is a kill;
     a stop of a running persistent peer logs ev=stop; a stop or restart
     typed into p-shell finishes (ev=stop, and ev=launch for a restart)
     within 15 s unless the chaos hit p-shell meanwhile;
  7. after the settle every live server's hook and state name the binary's
     final path;
  8. a timed-out run ends within 2 s of its --task-timeout (ev=task-timeout
     duration) and no 3 s first run of e-slow finishes.
Issue 22 adds an agent pool, a-pool: the fake agent (tests/fake-agent/agent.py,
`--reply echo`) with --workers 2 --warm 1 --reuse 5s --idle-ttl 20s
--reset /clear; one sender waits for each reply (`send --wait 60s`), one
does not, and both pause 6 to 25 s now and then (idle stops, refills).
The chaos hits it as any peer (its server, runners, canary, SIGSTOP, stops)
and kills its agents (an instance's program). Its accounts (9): every
prompt in its queue or acknowledged ends done with the fake's answer to
that very prompt as its reply, or dead-lettered with a reason; no prompt
typed into a busy agent, each typed once per attempt (a typing with no
task-start is allowed only right before a kill); `send --wait` printed
only its own reply and exited 0, 1 or 75 as its task ended; every agent
kill has one ev=session-exit unless its runner or server went first, and
every agent gone is recorded (its own session-exit, or its instance's end);
after the settle the live agents are the instances `status` lists.
A task run twice because a stop ended its runner right after its program
ended (the same exit-to-ack window) is allowed and counted with the others.
Prints the figures and exits 1 on any violation (2 if it could not run).
Allowed, and counted apart: a task re-run after its runner or program was
killed; a program that ended just before its runner was killed, before the
runner could record the exit (the exit-to-ack window no kill -9 can be kept
out of); a `tmp/` file of a sender killed mid-write; a server killed during
a deliberate teardown (no ev=server-exit needed: the stop is its record); a
server killed while its canary was dead (by ev=server-exit anyway, or else
by the tick's ev=gone, which must be there). `--recheck DIR` re-runs checks
1, 2 and 4 on a kept directory.

Process discovery: the soak makes itself a child subreaper, so every
process muxvisor starts for this root (servers, canaries, hand-overs) stays
in its process tree. Pids come only from muxvisor's files (state/<id>.json,
run/<id>.canary.lock, queues/<id>/runner.lock) and from that tree (by
parent pid); nothing is found or killed by name. Each pid's start time is
checked again just before it is signalled."""

import argparse, ctypes, fcntl, json, os, random, re, shutil, signal, statistics
import subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ME = os.getpid()

PERSISTENT = {
    "p-echo": ["sh", "-c", "while read l; do echo got:$l; done"],
    "p-sleep": ["sleep", "100000"],
    # An interactive shell: the operator types `muxvisor stop|restart
    # "$MUXVISOR_IDENTITY"` into it (tmux send-keys), a stop from inside.
    "p-shell": ["sh"],
}
# $0 is the output file; each program logs its start and its end.
LOG_START = 'echo "start $MUXVISOR_TASK_ID $t $$" >> "$0"; '
LOG_END = 'sleep "${t#*:}"; echo "end $MUXVISOR_TASK_ID $t $$ $(date +%s.%N)" >> "$0"'
EPHEMERAL = {
    "e-argv": (["sh", "-c", 't=$1; ' + LOG_START + LOG_END, "{out}", "{task}"], []),
    "e-file": (["sh", "-c", 't=$(cat "$1"); ' + LOG_START + LOG_END, "{out}", "{task_file}"], []),
    # A closed terminal (its server died) is EOF: no task, exit non-zero.
    "e-keys": (["sh", "-c", "read -r t || exit 3; " + LOG_START + LOG_END, "{out}"],
               ["--deliver", "keys"]),
    # Task timeouts: a task's first run sleeps past --task-timeout (its
    # text ends in `:3`), so the runner ends it (ev=task-timeout) and it is
    # retried as `timeout`; a later run of the same task is short.
    "e-slow": (["sh", "-c", 't=$1; s=${t#*:}; grep -q "^start $MUXVISOR_TASK_ID " "$0" && s=0.05; '
                + LOG_START + 'sleep "$s"; echo "end $MUXVISOR_TASK_ID $t $$ $(date +%s.%N)" >> "$0"',
                "{out}", "{task}"], ["--task-timeout", "1s"]),
    # A pool (SPEC section 10): up to three tasks at once, one runner per
    # worker slot (`runner.lock`, `runner.<k>.lock`), each in its own pane.
    "e-pool": (["sh", "-c", 't=$1; ' + LOG_START + LOG_END, "{out}", "{task}"],
               ["--workers", "3"]),
}
# An agent pool (SPEC section 10, issue 22): the fake agent (tests/fake-agent/)
# answers each prompt with `reply to: <prompt>`; up to two instances, one
# kept warm, one reused for 5 s after a task, one never used stopped after
# 20 s idle, `/clear` typed between two tasks of an instance. Each agent
# logs its turns to its own file, `a-pool.txt.<its pid>.jsonl` ($0 is the
# output path, the preset's arguments follow in "$@").
FAKE = os.path.join(REPO, "tests", "fake-agent", "agent.py")
EPHEMERAL["a-pool"] = (
    ["sh", "-c", f"exec python3 '{FAKE}' --reply echo --busy 0.3 --busy-jitter 1.2 "
     '--log "$0.$$.jsonl" "$@"', "{out}"],
    ["--agent", "claude", "--workers", "2", "--warm", "1", "--reuse", "5s", "--idle-ttl", "20s",
     "--reset", "/clear"])
AGENTS = {"a-pool": dict(workers=2, warm=1, reset="/clear")}
# How long a `send --wait` to an agent pool waits for its reply.
WAIT_S = 60
# Peers that run several workers (`add --workers N`).
WORKERS = {"e-pool": 3, "a-pool": 2}
TASK_TIMEOUT = {"e-slow": 1.0}
# Per peer, the sleeps a sender picks from (seconds; the first run of an
# e-slow task that sleeps 3 s outlives its 1 s timeout).
SLEEPS = {"e-slow": ["0.05", "0.1", "3"]}
# Senders per ephemeral peer (two on e-argv: concurrent enqueues) and the
# pause between their sends, seconds.
SENDERS = {"e-argv": [(0.05, 0.6), (0.05, 0.6)], "e-file": [(0.1, 0.8)], "e-keys": [(0.5, 2.0)],
           "e-slow": [(0.3, 1.5)], "e-pool": [(0.05, 0.4), (0.05, 0.4)],
           # a-pool: the first waits for each reply (`send --wait`), the
           # second does not; both pause 6 to 25 s now and then, so that idle
           # instances stop and the warm one is refilled.
           "a-pool": [(0.05, 1.0), (0.3, 2.5)]}
CHAOS_WEIGHTS = {
    "server": 10, "pane": 6, "runner": 8, "program": 8, "sender": 6, "tick": 6,
    "canary": 6, "waiter": 5, "handover": 6, "sigstop": 5,
}
# Deliberate operations, mixed into the chaos by a thread of their own
# (issue 19): `stop` of a running ephemeral worker (15 % of them with
# --fail-task), `stop` of a persistent peer (relaunched a little later),
# `stop`/`restart` typed into p-shell's own pane, and moves of the binary.
OP_WEIGHTS = {"stop_worker": 8, "stop_persistent": 3, "inside_stop": 3, "inside_restart": 3,
              "move": 2}
MOVE_SPACING = 30.0   # seconds between two moves of the binary, at least


# ---------- processes (Linux /proc) ----------

def kernel_crash(pid):
    """The kernel log's word on `pid`'s own fault (segfault, trap), or None."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    hits = [l.split(f"[{pid}]", 1)[1].lstrip(":").strip() for l in out.splitlines()
            if f"[{pid}]" in l and ("segfault" in l or "general protection" in l)]
    return hits[-1] if hits else None


def pstat(pid):
    """(state, ppid, pgid, sid, starttime) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(b")") + 2:].split()
    return rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19])


def argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [w for w in f.read().split(b"\0") if w]
    except OSError:
        return []


def pidfds(pid):
    """The pids named by the pidfds that pid holds (`Pid:` in its fdinfo)."""
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return out
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("Pid:"):
                        out.append(int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def children(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    st = pstat(pid)
    return st is not None and st[0] != "Z"


def locked(path):
    """True when someone holds the flock on `path` (a shared probe)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def read_pid(path):
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return None


def logfmt(line):
    out, i, n = {}, 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        j = line.find("=", i)
        if j < 0:
            break
        k, i = line[i:j], j + 1
        if i < n and line[i] == '"':
            i += 1
            v = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                v.append(line[i])
                i += 1
            i += 1
            out[k] = "".join(v)
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            out[k], i = line[i:j], j
    return out


def backtrace(pid):
    """The stack of a server that lost its socket, when gdb is there."""
    if not shutil.which("gdb"):
        return ""
    r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "bt"], capture_output=True,
                       text=True, timeout=30)
    return r.stdout[-3000:]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# ---------- the soak ----------

class Soak:
    def __init__(self, a, work=None):
        self.a = a
        self.rng = random.Random(a.seed)
        self.mv = os.path.join(REPO, "target", "release", "muxvisor")
        self.work = work or tempfile.mkdtemp(prefix="mvs", dir="/tmp")
        self.root = os.path.join(self.work, "r")
        self.out = os.path.join(self.work, "out")
        os.makedirs(self.out, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("TMUX", "TMUX_PANE") and not k.startswith("MUXVISOR_")}
        # Keep every event: no rotation during the soak.
        self.env.update(MUXVISOR_ROOT=self.root, MUXVISOR_LOG_MAX=str(1 << 34))
        self.spawn_lock = threading.Lock()
        self.registered = set()      # pids whose Popen will reap them
        self.live = {}               # pid -> (kind, start time) of sends and ticks in flight
        self.live_lock = threading.Lock()
        self.sends, self.psends, self.ticks = [], [], []
        self.kills, self.stopped = [], {}
        self.rec_lock = threading.Lock()
        self.stop_chaos = threading.Event()
        self.stop_senders = threading.Event()
        self.stop_ticks = threading.Event()
        self.done = threading.Event()
        self.loads = []
        self.ops = []                # deliberate operations (stops, inside stops, moves)
        self.oprng = random.Random(a.seed + 1 if a.seed is not None else None)
        self.lost = {}               # (socket path, server pid) -> first sighting of a lost socket
        self.pool_peak, self.agent_peak = {}, {}

    # --- running muxvisor ---
    def run(self, args, timeout=60.0, kind=None):
        fo, fe = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        with self.spawn_lock:
            p = subprocess.Popen([self.mv] + args, stdin=subprocess.DEVNULL, stdout=fo,
                                 stderr=fe, env=self.env)
            self.registered.add(p.pid)
        t0 = time.time()
        if kind:
            with self.live_lock:
                self.live[p.pid] = (kind, pstat(p.pid))
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout"
        t1 = time.time()
        with self.spawn_lock:
            self.registered.discard(p.pid)
        if kind:
            with self.live_lock:
                self.live.pop(p.pid, None)
        fo.seek(0)
        fe.seek(0)
        return rc, fo.read().decode(errors="replace"), fe.read().decode(errors="replace"), t0, t1

    def install_copy(self):
        """Run muxvisor from a copy in the soak's directory, which the
        operator moves now and then (an upgrade under a running fleet)."""
        d = os.path.join(self.work, "bin", "v0")
        os.makedirs(d)
        dst = os.path.join(d, "muxvisor")
        shutil.copy2(self.mv, dst)
        self.mv = dst

    def must(self, args):
        rc, out, err, _, _ = self.run(args)
        if rc != 0:
            raise SystemExit(f"soak: muxvisor {' '.join(args)} failed ({rc}): {err}")
        return out

    def reaper(self):
        """Reap the orphans reparented to us (we are their subreaper), never
        a child that a Popen will wait for."""
        while not self.done.is_set():
            with self.spawn_lock:
                for c in children(ME):
                    if c in self.registered:
                        continue
                    st = pstat(c)
                    if st and st[0] == "Z":
                        try:
                            os.waitpid(c, os.WNOHANG)
                        except ChildProcessError:
                            pass
            time.sleep(0.05)

    # --- muxvisor's files ---
    def state(self, pid_id):
        try:
            with open(os.path.join(self.root, "state", f"{pid_id}.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def sock(self, i):
        return os.path.join(self.root, "run", f"{i}.sock")

    def server_pid(self, i):
        pid = self.state(i).get("server_pid")
        if not pid:
            return None
        st = pstat(pid)
        if not st or st[0] == "Z" or st[3] != pid:
            return None
        return pid if self.sock(i).encode() in argv(pid) else None

    def canary_pid(self, i):
        path = os.path.join(self.root, "run", f"{i}.canary.lock")
        pid = read_pid(path)
        return pid if pid and locked(path) and alive(pid) else None

    def waiters(self, canary):
        return [c for c in children(canary) if alive(c)]

    def watches(self, canary, srv):
        """The canary watches srv: through a pidfd on it (Linux 5.3+), or
        through its `tmux wait-for` client (elsewhere)."""
        return bool(canary) and (srv in pidfds(canary) or bool(self.waiters(canary)))

    def runner_pids(self, i):
        """The live runners of `i`'s worker slots (one unless it is a pool),
        each a pane's program, so a child of its server."""
        srv = self.server_pid(i)
        out = []
        for k in range(WORKERS.get(i, 1)):
            name = "runner.lock" if k == 0 else f"runner.{k}.lock"
            path = os.path.join(self.root, "queues", i, name)
            pid = read_pid(path)
            if pid and locked(path) and srv and (pstat(pid) or (0, 0))[1] == srv:
                out.append(pid)
        return out

    def runner_pid(self, i, rng=None):
        """A live runner of `i`: the first, or one picked by `rng`."""
        pids = self.runner_pids(i)
        if not pids:
            return None
        return rng.choice(pids) if rng else pids[0]

    def agent_pids(self, i):
        """The live agents of pool `i`: the fake agent's processes under
        its server (each a child of a runner, a pane's program)."""
        srv = self.server_pid(i)
        if not srv:
            return []
        return [p for p in descendants(srv) if alive(p) and any(FAKE.encode() == w for w in argv(p))]

    def intent(self, i):
        return os.path.exists(os.path.join(self.root, "run", f"{i}.stopping"))

    def hooks(self):
        """`_hook` processes (the pane-died hook and its detached hand-over)
        in our tree."""
        return [p for p in descendants(ME) if b"_hook" in argv(p) and alive(p)]

    # --- signalling, with a pid-reuse guard ---
    def signal(self, pid, st, sig):
        now = pstat(pid)
        if not now or not st or now[4] != st[4] or now[0] == "Z":
            return False
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def record(self, kind, i, pid, **kw):
        with self.rec_lock:
            self.kills.append(dict(t=time.time(), kind=kind, id=i, pid=pid, **kw))

    # --- threads ---
    def sender(self, peer, n0, gap):
        if peer in AGENTS:
            return self.asender(peer, n0, gap, wait=n0 == 0)
        n = 0
        while not self.stop_senders.is_set():
            sleeps = SLEEPS.get(peer, ['0', '0.05', '0.1', '0.2', '0.3'])
            text = f"{peer}.{n0}.{n:05d}:{self.rng.choice(sleeps)}"
            rc, out, err, t0, t1 = self.run(["send", peer, text, "--json"], kind="send")
            task = None
            if rc == 0:
                try:
                    task = json.loads(out)["task"]
                except (ValueError, KeyError):
                    rc = "bad-json"
            with self.rec_lock:
                self.sends.append(dict(peer=peer, text=text, rc=rc, task=task, t0=t0, t1=t1,
                                       err=err.strip()[-300:]))
            n += 1
            time.sleep(self.rng.uniform(*gap))

    def asender(self, peer, n0, gap, wait):
        """Prompts to an agent pool, each text unique: with `--wait`, the
        printed reply is kept (it must be the fake's answer to this very
        prompt); without, only the task id."""
        n = 0
        while not self.stop_senders.is_set():
            text = f"{peer}.{n0}.{n:05d} question {self.rng.randrange(10 ** 6)}"
            args = ["send", peer, text, "--json"] + (["--wait", f"{WAIT_S}s"] if wait else [])
            rc, out, err, t0, t1 = self.run(args, timeout=WAIT_S + 30, kind="send")
            task = reply = stage = None
            if out.strip():
                try:
                    d = json.loads(out)
                    task, reply, stage = d.get("task"), d.get("reply"), d.get("stage")
                except ValueError:
                    if rc == 0:
                        rc = "bad-json"
            with self.rec_lock:
                self.sends.append(dict(peer=peer, text=text, rc=rc, task=task, t0=t0, t1=t1,
                                       wait=wait, reply=reply, stage=stage, out=out[-300:],
                                       err=err.strip()[-300:]))
            n += 1
            if self.rng.random() < 0.06:
                self.stop_senders.wait(self.rng.uniform(6, 25))
            else:
                time.sleep(self.rng.uniform(*gap))

    def psender(self):
        n = 0
        while not self.stop_senders.is_set():
            rc, _, err, t0, t1 = self.run(["send", "p-echo", f"hello-{n}"], kind="send")
            with self.rec_lock:
                self.psends.append(dict(rc=rc, t0=t0, t1=t1, err=err.strip()[-200:]))
            n += 1
            time.sleep(self.rng.uniform(0.5, 2.0))

    def ticker(self):
        while not self.stop_ticks.is_set():
            # Retention would prune finished tasks beyond the newest 1000 of
            # a queue (issue 19), which the checks need: keep them all.
            rc, out, err, t0, t1 = self.run(["supervise", "--once", "--json",
                                             "--retention-count", "1000000000"], timeout=120,
                                            kind="tick")
            actions = []
            if rc == 0:
                try:
                    actions = json.loads(out)
                except ValueError:
                    actions = [{"action": "bad-json", "identity": "", "reason": out[:200]}]
            with self.rec_lock:
                self.ticks.append(dict(rc=rc, t0=t0, t1=t1, actions=actions, err=err[-300:]))
            time.sleep(max(0.0, 1.0 - (time.time() - t0)))

    def auditor(self):
        """Watch for tmux servers that lost their socket: a listening socket
        under run/ whose file is gone, or a second server listening on a
        path that another one answers on. Nothing can reach such a server,
        so nothing would ever stop it. The first sighting (after 1.5 s) is
        kept with the process tree and the server's stack, for the report."""
        run = os.path.join(self.root, "run") + "/"
        first = {}
        while not self.done.wait(0.5):
            for i in WORKERS:  # how many of a pool's tasks run at once
                try:
                    n = len(os.listdir(os.path.join(self.root, "queues", i, "cur")))
                    self.pool_peak[i] = max(self.pool_peak.get(i, 0), n)
                except OSError:
                    pass
            for i in AGENTS:  # how many agents live at once
                n = len(self.agent_pids(i))
                self.agent_peak[i] = max(self.agent_peak.get(i, 0), n)
            by_path = {}
            try:
                with open("/proc/net/unix") as f:
                    next(f)
                    for line in f:
                        w = line.split()
                        if len(w) >= 8 and w[5] == "01" and w[7].startswith(run):
                            by_path.setdefault(w[7], []).append(w[6])
            except OSError:
                continue
            lost = set()
            for path, inodes in by_path.items():
                exists = os.path.exists(path)
                if exists and len(inodes) == 1:
                    continue
                owner = None
                if exists:
                    try:
                        r = subprocess.run(["tmux", "-S", path, "-f", "/dev/null", "display",
                                            "-p", "#{pid}"], capture_output=True, text=True,
                                           timeout=0.5, env=self.env)
                        owner = int(r.stdout.strip())
                    except (subprocess.TimeoutExpired, ValueError):
                        continue
                for inode in inodes:
                    pid = self.socket_owner(inode)
                    if pid and pid != owner:
                        lost.add((path, pid))
            now = time.time()
            for key in lost:
                t = first.setdefault(key, now)
                if now - t >= 1.5 and key not in self.lost:
                    tree = self.snapshot()
                    for p in tree:
                        if p["pid"] == key[1]:
                            p["gdb"] = backtrace(p["pid"])
                    self.lost[key] = dict(t=t, path=key[0], pid=key[1], tree=tree)
            for key in list(first):
                if key not in lost:
                    first.pop(key)

    def socket_owner(self, inode):
        """The process in our tree (servers are our children) holding
        socket `inode`."""
        for p in children(ME):
            try:
                for fd in os.listdir(f"/proc/{p}/fd"):
                    if os.readlink(f"/proc/{p}/fd/{fd}") == f"socket:[{inode}]":
                        return p
            except OSError:
                pass
        return None

    def snapshot(self):
        out = []
        for p in descendants(ME):
            st = pstat(p)
            if st:
                try:
                    wchan = open(f"/proc/{p}/wchan").read()
                except OSError:
                    wchan = ""
                fds = []
                try:
                    for fd in os.listdir(f"/proc/{p}/fd"):
                        try:
                            fds.append(os.readlink(f"/proc/{p}/fd/{fd}"))
                        except OSError:
                            pass
                except OSError:
                    pass
                out.append(dict(pid=p, ppid=st[1], state=st[0], wchan=wchan,
                                argv=b" ".join(argv(p)).decode(errors="replace")[:200],
                                sockets=[x for x in fds if x.startswith("socket:")]))
        return out

    def loadavg(self):
        while not self.done.is_set():
            self.loads.append(os.getloadavg()[0])
            self.done.wait(10)

    def chaos(self):
        kinds = list(CHAOS_WEIGHTS)
        weights = [CHAOS_WEIGHTS[k] for k in kinds]
        while not self.stop_chaos.wait(self.rng.uniform(0.3, 1.5)):
            kind = self.rng.choices(kinds, weights)[0]
            try:
                hit = getattr(self, f"chaos_{kind}")()
            except Exception as e:  # a chaos bug must not end the soak
                print(f"soak: chaos {kind}: {e!r}", file=sys.stderr)
                hit = False
            if not hit:
                self.record(kind, None, None, missed=True)

    def peers(self):
        return list(PERSISTENT) + list(EPHEMERAL)

    def chaos_server(self):
        i = self.rng.choice(self.peers())
        pid = self.server_pid(i)
        if not pid:
            return False
        st = pstat(pid)
        canary = self.canary_pid(i)
        watched = self.watches(canary, pid)
        intent = self.intent(i)
        if self.signal(pid, st, signal.SIGKILL):
            self.record("server", i, pid, watched=watched, intent=intent,
                        stopped=pid in self.stopped)
            return True
        return False

    def chaos_pane(self):
        i = self.rng.choice(list(PERSISTENT))
        srv, pane = self.server_pid(i), self.state(i).get("pane_pid")
        st = pstat(pane) if pane else None
        if not srv or not st or st[1] != srv:
            return False
        return self.signal(pane, st, signal.SIGKILL) and (self.record("pane", i, pane) or True)

    def chaos_runner(self):
        i = self.rng.choice(list(EPHEMERAL))
        pid = self.runner_pid(i, self.rng)
        if not pid or not self.signal(pid, pstat(pid), signal.SIGKILL):
            return False
        busy = bool(os.listdir(os.path.join(self.root, "queues", i, "cur")))
        # When it is really gone: on a loaded machine a SIGKILLed process
        # can run on for milliseconds, and its program with it.
        end, dead = time.time() + 0.5, None
        while time.time() < end:
            if not alive(pid):
                dead = time.time()
                break
            time.sleep(0.0005)
        self.record("runner", i, pid, busy=busy, dead=dead)
        if self.rng.random() < 0.5:
            # Its pane-died hook hands over at once: hunt for it.
            end = time.time() + 1.5
            while time.time() < end:
                hs = self.hooks()
                if hs:
                    time.sleep(self.rng.uniform(0, 0.05))
                    self.kill_hook(hs)
                    break
                time.sleep(0.005)
        return True

    def kill_hook(self, hs):
        h = self.rng.choice(hs)
        st = pstat(h)
        words = argv(h)
        i = words[words.index(b"pane-died") + 1].decode() if b"pane-died" in words else None
        if self.signal(h, st, signal.SIGKILL):
            self.record("handover", i, h, detached=bool(st and st[1] == ME))
            return True
        return False

    def chaos_program(self):
        i = self.rng.choice(list(EPHEMERAL))
        r = self.runner_pid(i, self.rng)
        if i in AGENTS:
            return self.kill_agent(i, r)
        # The program shares the runner's group; its control-mode tmux
        # client does not.
        kids = [c for c in children(r) if alive(c) and (pstat(c) or (0, 0, 0))[2] == r] if r else []
        if not kids:
            return False
        c = self.rng.choice(kids)
        return self.signal(c, pstat(c), signal.SIGKILL) and (self.record("program", i, c) or True)

    def agent_of(self, i, runner):
        """The agent program of the pool instance that `runner` serves (its
        instance file names it; it must be the runner's child)."""
        d = os.path.join(self.root, "state")
        for name in os.listdir(d) if os.path.isdir(d) else []:
            if not re.fullmatch(re.escape(i) + r"\.pool-\d+\.json", name):
                continue
            try:
                with open(os.path.join(d, name)) as f:
                    inst = json.load(f)
            except (OSError, ValueError):
                continue
            pid = inst.get("pid")
            if inst.get("runner_pid") == runner and pid and (pstat(pid) or (0, 0))[1] == runner:
                return pid, inst
        return None, None

    def kill_agent(self, i, r):
        """kill -9 of a pool instance's agent (the runner's child)."""
        pid, inst = self.agent_of(i, r) if r else (None, None)
        if not pid or not alive(pid):
            return False
        busy = bool(inst.get("task"))
        if self.signal(pid, pstat(pid), signal.SIGKILL):
            self.record("program", i, pid, runner=r, slot=inst.get("slot"), task=inst.get("task"),
                        busy=busy)
            return True
        return False

    def kill_live(self, kind):
        end = time.time() + 1.5
        while time.time() < end:
            with self.live_lock:
                pids = [(p, st) for p, (k, st) in self.live.items() if k == kind]
            if pids:
                # A send takes milliseconds, a tick tens of them.
                time.sleep(self.rng.uniform(0, 0.004 if kind == "send" else 0.05))
                p, st = self.rng.choice(pids)
                if self.signal(p, st, signal.SIGKILL):
                    self.record(kind, None, p)
                    return True
            time.sleep(0.001)
        return False

    def chaos_sender(self):
        return self.kill_live("send")

    def chaos_tick(self):
        return self.kill_live("tick")

    def chaos_canary(self):
        i = self.rng.choice(self.peers())
        c = self.canary_pid(i)
        return bool(c) and self.signal(c, pstat(c), signal.SIGKILL) and (
            self.record("canary", i, c) or True)

    def chaos_waiter(self):
        i = self.rng.choice(self.peers())
        c = self.canary_pid(i)
        ws = self.waiters(c) if c else []
        if not ws:
            return False
        w = ws[0]
        return self.signal(w, pstat(w), signal.SIGKILL) and (self.record("waiter", i, w) or True)

    def chaos_handover(self):
        end = time.time() + 1.0
        while time.time() < end:
            hs = self.hooks()
            if hs:
                return self.kill_hook(hs)
            time.sleep(0.01)
        return False

    def chaos_sigstop(self):
        i = self.rng.choice(self.peers())
        pid = self.server_pid(i)
        if not pid or pid in self.stopped:
            return False
        st = pstat(pid)
        if not self.signal(pid, st, signal.SIGSTOP):
            return False
        self.stopped[pid] = st
        secs = self.rng.uniform(1, 4)
        self.record("sigstop", i, pid, secs=round(secs, 2))

        def cont():
            time.sleep(secs)
            self.signal(pid, self.stopped.pop(pid, st), signal.SIGCONT)
        threading.Thread(target=cont, daemon=True).start()
        return True

    # --- deliberate operations (issue 19) ---
    def operator(self):
        """Stops, stops and restarts from inside a peer, binary moves: one
        at a time, every 2 to 6 s, while the chaos goes on."""
        kinds = list(OP_WEIGHTS)
        weights = [OP_WEIGHTS[k] for k in kinds]
        last_move = time.time()
        while not self.stop_chaos.wait(self.oprng.uniform(2, 6)):
            kind = self.oprng.choices(kinds, weights)[0]
            if kind == "move" and time.time() - last_move < MOVE_SPACING:
                kind = "stop_worker"
            try:
                getattr(self, f"op_{kind}")()
            except Exception as e:  # an operator bug must not end the soak
                print(f"soak: op {kind}: {e!r}", file=sys.stderr)
                self.op(kind, None, error=repr(e))
            if kind == "move":
                last_move = time.time()

    def op(self, kind, i, **kw):
        with self.rec_lock:
            self.ops.append(dict(kind=kind, id=i, **kw))

    def running_task(self, i):
        d = os.path.join(self.root, "queues", i, "cur")
        for name in os.listdir(d) if os.path.isdir(d) else []:
            m = re.fullmatch(r"(\d{20})\.([0-9a-z]+)", name)
            if m:
                return m.group(2)
        return None

    def op_stop_worker(self):
        """`stop` of an ephemeral peer whose worker runs a task (waited for
        up to 2 s), 15 % of them with --fail-task."""
        peers = list(EPHEMERAL)
        self.oprng.shuffle(peers)
        end = time.time() + 2
        i = task = None
        while time.time() < end and not task:
            for p in peers:
                if self.runner_pid(p) and self.running_task(p):
                    i, task = p, self.running_task(p)
                    break
            else:
                time.sleep(0.02)
        if not task:
            self.op("stop_worker", None, missed=True)
            return
        fail = self.oprng.random() < 0.15
        args = ["stop", i, "--json", "--grace", "1s"] + (["--fail-task"] if fail else [])
        rc, out, err, t0, t1 = self.run(args, kind="op")
        res = {}
        if rc == 0:
            try:
                res = json.loads(out)
            except ValueError:
                rc = "bad-json"
        # A pool's stop settles every running task (`tasks`, `task` the first).
        tasks = res.get("tasks") or ([res["task"]] if res.get("task") else [])
        self.op("stop_worker", i, t0=t0, t1=t1, rc=rc, fail_task=fail, task_before=task,
                task=res.get("task"), tasks=tasks, outcome=res.get("task_outcome"),
                was_running=res.get("was_running"), err=err.strip()[-300:])

    def relaunch(self, i):
        """A persistent peer stopped on purpose stays stopped: launch it
        again a little later, as an operator would."""
        time.sleep(self.oprng.uniform(0.5, 3))
        rc, _, err, t0, t1 = self.run(["launch", i], kind="op")
        self.op("relaunch", i, t0=t0, t1=t1, rc=rc, err=err.strip()[-300:])

    def op_stop_persistent(self):
        i = self.oprng.choice(list(PERSISTENT))
        srv, pane = self.server_pid(i), self.state(i).get("pane_pid")
        rc, out, err, t0, t1 = self.run(["stop", i, "--json", "--grace", "1s"], kind="op")
        res = {}
        try:
            res = json.loads(out) if rc == 0 else {}
        except ValueError:
            rc = "bad-json"
        self.op("stop_persistent", i, t0=t0, t1=t1, rc=rc, server=srv, pane=pane,
                was_running=res.get("was_running"), err=err.strip()[-300:])
        self.relaunch(i)

    def lifecycle_size(self):
        try:
            return os.path.getsize(os.path.join(self.root, "logs", "lifecycle.log"))
        except OSError:
            return 0

    def lifecycle_since(self, off):
        try:
            with open(os.path.join(self.root, "logs", "lifecycle.log"), errors="replace") as f:
                f.seek(off)
                return [logfmt(l) for l in f.read().splitlines()]
        except OSError:
            return []

    def inside(self, verb):
        """Type `<binary> stop|restart "$MUXVISOR_IDENTITY"` into p-shell's
        pane and wait (15 s) for the stop (and the launch of a restart) to
        be recorded, although the command dies with the pane."""
        i = "p-shell"
        srv, pane = self.server_pid(i), self.state(i).get("pane_pid")
        if not srv or not pane or not alive(pane):
            self.op(f"inside_{verb}", i, missed=True)
            return
        off = self.lifecycle_size()
        line = f"'{self.mv}' {verb} \"$MUXVISOR_IDENTITY\" --grace 1s"
        t0 = time.time()
        r = subprocess.run(["tmux", "-S", self.sock(i), "-f", "/dev/null", "send-keys", "-t",
                            f"={i}:", "-l", line], capture_output=True, text=True, timeout=5,
                           env=self.env)
        r2 = subprocess.run(["tmux", "-S", self.sock(i), "-f", "/dev/null", "send-keys", "-t",
                             f"={i}:", "Enter"], capture_output=True, text=True, timeout=5,
                            env=self.env)
        if r.returncode or r2.returncode:
            self.op(f"inside_{verb}", i, t0=t0, typed=False, server=srv, pane=pane,
                    err=(r.stderr + r2.stderr).strip()[-300:])
            return
        stopped = launched = None
        end = t0 + 15
        while time.time() < end and not (stopped and (verb == "stop" or launched)):
            for e in self.lifecycle_since(off):
                if e.get("identity") != i:
                    continue
                if e.get("ev") == "stop" and e.get("reason") == verb and not stopped:
                    stopped = e.get("ts")
                elif e.get("ev") == "launch" and stopped and not launched:
                    launched = e.get("ts")
            time.sleep(0.2)
        rec = dict(t0=t0, t1=time.time(), typed=True, server=srv, pane=pane, stop_ts=stopped,
                   launch_ts=launched, finished=bool(stopped and (verb == "stop" or launched)))
        if not rec["finished"]:
            rc, out, _, _, _ = self.run(["screen", i])
            rec["screen"] = out[-1500:] if rc == 0 else ""
            rec["events"] = [e for e in self.lifecycle_since(off) if e.get("identity") == i]
            rc, out, _, _, _ = self.run(["status", i, "--json"])
            rec["status"] = out.strip()[:400]
        self.op(f"inside_{verb}", i, **rec)
        if verb == "stop":
            self.relaunch(i)

    def op_inside_stop(self):
        self.inside("stop")

    def op_inside_restart(self):
        self.inside("restart")

    def op_move(self):
        """Move the binary to a new path and carry on with it: the hooks of
        live servers name the old path, which no longer exists."""
        with self.spawn_lock:
            n = sum(1 for o in self.ops if o["kind"] == "move") + 1
            d = os.path.join(self.work, "bin", f"v{n}")
            os.makedirs(d)
            new = os.path.join(d, "muxvisor")
            old = self.mv
            os.rename(old, new)
            self.mv = new
            t = time.time()
        self.op("move", None, t=t, old=old, new=new)

    # --- phases ---
    def setup(self):
        for i, argv_ in PERSISTENT.items():
            self.must(["add", i, "--cwd", self.work, "--restart", "always", "--backoff", "200ms",
                       "--max-backoff", "2s", "--restart-burst", "100000", "--restart-window",
                       "1m", "--"] + argv_)
            self.must(["launch", i])
        for i, (argv_, extra) in EPHEMERAL.items():
            out = os.path.join(self.out, f"{i}.txt")
            open(out, "a").close()
            argv_ = [w.replace("{out}", out) for w in argv_]
            self.must(["add", i, "--ephemeral", "--cwd", self.work, "--backoff", "100ms",
                       "--max-backoff", "1s", "--max-attempts", "10", "--linger", "2s"]
                      + extra + ["--"] + argv_)

    def settle(self, limit):
        """Ticks run on; wait until every queue is drained, every persistent
        peer runs watched, runners have retired and no hook is left."""
        end = time.time() + limit
        good = 0
        while time.time() < end:
            rc, out, _, _, _ = self.run(["status", "--json"])
            ok = False
            if rc == 0:
                rows = {r["identity"]: r for r in json.loads(out)}
                for i in PERSISTENT:
                    if rows[i]["state"] == "stopped":
                        # Stopped on purpose by the operator (or from inside)
                        # just before the chaos ended: launch it again.
                        self.run(["launch", i])
                ok = all(rows[i]["state"] == "running" and rows[i]["canary"] for i in PERSISTENT)
                for i in EPHEMERAL:
                    q = rows[i]["queue"]
                    ok = ok and q["pending"] == 0 and q["running"] == 0
                    if i in AGENTS:
                        # Its warm instances stay: settled once down to
                        # --warm, all of them ready and none starting.
                        ws = rows[i].get("workers") or []
                        ok = ok and len(ws) == AGENTS[i]["warm"] and all(
                            (w.get("agent") or {}).get("state") == "ready" for w in ws)
                        continue
                    ok = ok and rows[i]["state"] != "running"
                ok = ok and not self.hooks()
            good = good + 1 if ok else 0
            if good >= 3:
                return time.time() - (end - limit)
            time.sleep(1)
        return None

    def save(self, chaos_s, settled, load0):
        """What only this process knows, for `--recheck`."""
        with open(os.path.join(self.work, "records.json"), "w") as f:
            json.dump(dict(seed=self.a.seed, minutes=self.a.minutes, settle=self.a.settle,
                           chaos_s=chaos_s, settled=settled, load0=load0, loads=self.loads,
                           sends=self.sends, psends=self.psends, ticks=self.ticks,
                           kills=self.kills, ops=self.ops, mv=self.mv,
                           lost=list(self.lost.values())), f)

    def load(self):
        with open(os.path.join(self.work, "records.json")) as f:
            d = json.load(f)
        for k in ("loads", "sends", "psends", "ticks", "kills", "ops", "mv"):
            setattr(self, k, d[k])
        self.lost = {(x["path"], x["pid"]): x for x in d.get("lost", [])}
        self.a.seed, self.a.settle = d["seed"], d["settle"]
        return d["chaos_s"], d["settled"], d["load0"]

    def teardown(self):
        for pid, st in list(self.stopped.items()):
            self.signal(pid, st, signal.SIGCONT)
        for i in self.peers():
            self.run(["stop", i, "--grace", "1s"], timeout=30)
        for p in descendants(ME):
            st = pstat(p)
            if st and st[0] != "Z" and p not in self.registered:
                self.signal(p, st, signal.SIGCONT)
                self.signal(p, st, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--settle", type=float, default=240, help="seconds allowed to settle")
    ap.add_argument("--keep", action="store_true", help="keep the root even when clean")
    ap.add_argument("--recheck", metavar="DIR",
                    help="re-run the file checks (1, 2, 4) on a kept soak directory")
    a = ap.parse_args()
    if a.recheck:
        s = Soak(a, work=a.recheck)
        sys.exit(report(s, *s.load(), live=False))
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    if sys.platform != "linux":
        sys.exit("soak: Linux only (it reads /proc)")
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=REPO, check=True)
    # PR_SET_CHILD_SUBREAPER: what muxvisor detaches stays in our tree.
    if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
        sys.exit("soak: prctl(PR_SET_CHILD_SUBREAPER) failed")
    s = Soak(a)
    s.install_copy()
    print(f"soak: seed {a.seed}, {a.minutes:g} min, root {s.root}, binary {s.mv}", flush=True)
    threading.Thread(target=s.reaper, daemon=True).start()
    threading.Thread(target=s.loadavg, daemon=True).start()
    threading.Thread(target=s.auditor, daemon=True).start()
    code = 2
    try:
        s.setup()
        load0 = os.getloadavg()
        t_start = time.time()
        senders = [threading.Thread(target=s.sender, args=(p, k, gap))
                   for p, gaps in SENDERS.items() for k, gap in enumerate(gaps)]
        senders.append(threading.Thread(target=s.psender))
        ticker = threading.Thread(target=s.ticker)
        chaos = threading.Thread(target=s.chaos)
        operator = threading.Thread(target=s.operator)
        for t in senders + [ticker, chaos, operator]:
            t.start()
        deadline = t_start + a.minutes * 60
        while time.time() < deadline:
            time.sleep(min(30, max(0, deadline - time.time())))
            with s.rec_lock:
                ok = sum(1 for x in s.sends if x["rc"] == 0)
                hits = sum(1 for k in s.kills if not k.get("missed"))
                ops = sum(1 for o in s.ops if not o.get("missed"))
            print(f"soak: {int(time.time() - t_start)}s: {ok} tasks sent, {hits} chaos hits, "
                  f"{ops} operations, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        s.stop_chaos.set()
        chaos.join()
        operator.join()
        s.stop_senders.set()
        for t in senders:
            t.join()
        for pid, st in list(s.stopped.items()):
            s.signal(pid, st, signal.SIGCONT)
        chaos_s = time.time() - t_start
        settled = s.settle(a.settle)
        s.stop_ticks.set()
        ticker.join()
        s.save(chaos_s, settled, load0)
        code = report(s, chaos_s, settled, load0, live=True)
    finally:
        # Interrupted or not: stop every thread first, then what it started.
        for e in (s.stop_chaos, s.stop_senders, s.stop_ticks):
            e.set()
        for t in threading.enumerate():
            if t is not threading.current_thread() and not t.daemon:
                t.join()
        s.teardown()
        s.done.set()
        if code == 0 and not a.keep:
            shutil.rmtree(s.work, ignore_errors=True)
        else:
            print(f"soak: kept {s.work}")
    sys.exit(code)


# ---------- checks and figures ----------

# How long after a program's end its runner may still be short of the ack
# (recording the exit, then the durable move to done/): milliseconds on a
# quiet machine, hundreds of them at a load of 10+ on 2 cores. A kill or a
# stop of the runner in that time re-runs the task: the documented
# exit-to-ack window. Longer than this, a runner that had not acked would
# be a hang, and the re-run a violation.
ACK_WINDOW = 2.0


def window_kill(kills, peer, ended):
    """A kill of `peer`'s runner or server after a program ended and before
    its runner acknowledged it (at most ACK_WINDOW s later): its task ran
    again. A runner seen still alive after its program's end (`dead`,
    polled after the SIGKILL: under load the kill takes effect milliseconds
    late) counts as killed after it too."""
    return any(k.get("id") == peer and k["kind"] in ("runner", "server")
               and k["t"] - ACK_WINDOW <= ended <= max(k["t"] + 0.005, k.get("dead") or 0)
               for k in kills if not k.get("missed"))


def window_stop(ops, peer, task, ended):
    """A deliberate stop of `peer` that put `task` back although its program
    had ended (at most ACK_WINDOW s before the stop, or during it): the stop
    ended the runner inside the exit-to-ack window, so the task ran again."""
    return any(o["kind"] == "stop_worker" and o.get("id") == peer
               and task in (o.get("tasks") or [o.get("task")])
               and o.get("t0", 0) - ACK_WINDOW <= ended <= o.get("t1", 0) for o in ops)


def iso_epoch(x):
    """An RFC 3339 time stamp as unix seconds (0 if it is not one)."""
    from datetime import datetime
    try:
        return datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def read_lines(path):
    lines = []
    for p in (path + ".1", path):
        try:
            with open(p, errors="replace") as f:
                lines += f.read().splitlines()
        except OSError:
            pass
    return lines


def task_events(life):
    """Per task, its queue events in log order."""
    out = {}
    for n, e in enumerate(life):
        if e.get("ev") in ("task-start", "task-retry", "task-requeued", "task-dead", "task-done",
                           "task-timeout") and e.get("task"):
            out.setdefault(e["task"], []).append(dict(e, _n=n))
    return out


def sigterm_reason(e):
    """A retry or dead letter charged for a SIGTERM: only a deliberate stop
    sends one to a task program in the soak (a timeout is `timeout`)."""
    return any(w in ("signal-15", "exit-143") for f in ("reason", "last_error")
               for w in re.split(r"[\s;:]+", e.get(f) or ""))


def stop_and_timeout_accounts(s, life, acked, shown_all, runs, v):
    """Issue 19's accounts for deliberate stops of ephemeral workers and for
    task timeouts. A stop is not a crash: the task it interrupted goes back
    at the head with its attempt count unchanged (`task-requeued
    reason=stopped`), and its next claim reuses that attempt, or with
    --fail-task it is dead-lettered `stopped`. Appends violations to `v`."""
    te = task_events(life)
    a = dict(charged=0, failtask_dead=0, requeued=0, uncharged=0, claimed_only=0, claim_lost_after=[],
             found_none=0, failed=[], timeouts=0, timeout_retried=0, timeout_max_ms=0,
             slow_first=0, slow_overran=0, rerun_after_stop=0, rerun_after_timeout=0)
    # One entry per task a stop settled (a pool's stop settles several).
    stops = [dict(o, task=t) for o in s.ops if o["kind"] == "stop_worker" and not o.get("missed")
             for t in (o.get("tasks") or [o.get("task")])]
    matched = set()
    for o in stops:
        if o.get("rc") != 0:
            a["failed"].append(o)
            continue
        t = o.get("task")
        if not t:
            a["found_none"] += 1
            continue
        if o.get("outcome") == "dead":
            sh = shown_all.get(t)
            if sh is None:
                continue  # not an acknowledged send: its send was killed
            if sh.get("stage") == "dead" and (sh.get("reason") or "").startswith("stopped"):
                a["failtask_dead"] += 1
            else:
                v.append(f"task {t} of {o['id']}: `stop --fail-task` said it was dead-lettered, "
                         f"but it is {sh.get('stage')} ({sh.get('reason')})")
            continue
        if o.get("outcome") != "requeued":
            v.append(f"stop of {o['id']} at {o['t0']:.3f}: task {t}, outcome {o.get('outcome')!r}")
            continue
        a["requeued"] += 1
        evs = te.get(t, [])
        req = [k for k, e in enumerate(evs) if e["ev"] == "task-requeued"
               and e.get("reason") == "stopped" and e["_n"] not in matched
               and o["t0"] - 1 <= iso_epoch(e.get("ts", "")) <= o["t1"] + 1]
        if len(req) != 1:
            v.append(f"task {t} of {o['id']}: `stop` said it was requeued; {len(req)} "
                     f"ev=task-requeued reason=stopped for it around the stop")
            continue
        k = req[0]
        matched.add(evs[k]["_n"])
        r = int(evs[k].get("attempt") or 0)
        log = "; ".join(f"{e.get('ts')} {e['ev']} attempt={e.get('attempt', '')} "
                        f"{e.get('reason', '')}" for e in evs)
        before = evs[k - 1] if k else None
        # The stop can also come between the runner's claim (attempt r + 1
        # in cur/) and its task-start: then no run was interrupted, and the
        # event before the requeue is not a start of this attempt (or there
        # is none). Uncharged all the same if the next claim is r + 1.
        claimed_only = (not before or before["ev"] != "task-start") and (
            k + 1 < len(evs) and evs[k + 1]["ev"] == "task-start"
            and int(evs[k + 1].get("attempt") or 0) == r + 1)
        if claimed_only:
            a["uncharged"] += 1
            a["claimed_only"] += 1
            continue
        if not before or before["ev"] != "task-start" or int(before.get("attempt") or 0) != r + 1:
            a["charged"] += 1
            v.append(f"CHARGED: task {t} of {o['id']}: the run the stop interrupted is not a "
                     f"task-start with attempt {r + 1} just before ev=task-requeued attempt={r}: "
                     f"{log}")
            continue
        after = evs[k + 1] if k + 1 < len(evs) else None
        if after and after["ev"] == "task-start" and int(after.get("attempt") or 0) == r + 1:
            a["uncharged"] += 1
        elif (after and after["ev"] == "task-retry" and int(after.get("attempt") or 0) == r + 1
              and not sigterm_reason(after)):
            # Its next claim was lost to a kill (or a launch that failed
            # while the binary moved) before the program started: that
            # attempt is charged to the kill, not to the stop.
            a["claim_lost_after"].append(after.get("reason", ""))
        elif after and after["ev"] == "task-timeout":
            a["uncharged"] += 1  # cannot be: a timeout follows a start
        else:
            a["charged"] += 1
            v.append(f"CHARGED: task {t} of {o['id']}: after ev=task-requeued attempt={r} "
                     f"(stopped) its next event is not its claim with attempt {r + 1}: {log}")
    for t, evs in te.items():
        for e in evs:
            if e["ev"] == "task-requeued" and e["_n"] not in matched:
                v.append(f"task {t}: ev=task-requeued {e.get('reason')} at {e.get('ts')} that no "
                         f"`stop` reported")
            if e["ev"] in ("task-retry", "task-dead") and sigterm_reason(e):
                a["charged"] += 1
                v.append(f"CHARGED: task {t} ({e.get('identity')}): {e['ev']} for a SIGTERM "
                         f"(only a deliberate stop sends one): {e}")
    fail_dead = {o.get("task") for o in stops if o.get("outcome") == "dead"}
    for t, sh in shown_all.items():
        if sh.get("stage") == "dead" and (sh.get("reason") or "").startswith("stopped") \
                and t not in fail_dead:
            v.append(f"CHARGED: task {t} is dead-lettered `stopped` but no `stop --fail-task` "
                     f"reported it")
            a["charged"] += 1
        if sh.get("stage") == "done":
            starts = [e for e in te.get(t, []) if e["ev"] == "task-start"]
            if starts and int(starts[-1].get("attempt") or 0) != sh.get("attempt"):
                v.append(f"task {t}: done with attempt {sh.get('attempt')}, but its last "
                         f"ev=task-start says attempt {starts[-1].get('attempt')}")
    stopped_tasks = {o.get("task") for o in stops if o.get("outcome") == "requeued"}
    # Timeouts: the runner ends a program on time, and the task is retried.
    for t, evs in te.items():
        for k, e in enumerate(evs):
            if e["ev"] != "task-timeout":
                continue
            a["timeouts"] += 1
            over = int(e.get("duration_ms") or 0) - int(e.get("timeout_ms") or 0)
            a["timeout_max_ms"] = max(a["timeout_max_ms"], int(e.get("duration_ms") or 0))
            if over > 2000:
                v.append(f"task {t}: ended {over} ms past its --task-timeout: {e}")
            nxt = evs[k + 1] if k + 1 < len(evs) else None
            if nxt and nxt["ev"] in ("task-retry", "task-dead") and "timeout" in (
                    (nxt.get("reason") or "") + (nxt.get("last_error") or "")):
                a["timeout_retried"] += 1
    timed_out = {t for t, evs in te.items() if any(e["ev"] == "task-timeout" for e in evs)}
    for x in acked:
        t, r = x["task"], runs.get(x["task"])
        if not r or not r["start"]:
            continue
        if len(r["start"]) > 1 and t in stopped_tasks:
            a["rerun_after_stop"] += 1
        elif len(r["start"]) > 1 and t in timed_out:
            a["rerun_after_timeout"] += 1
        if x["peer"] in TASK_TIMEOUT and x["text"].endswith(":3"):
            a["slow_first"] += 1
            first_pid = r["start"][0][1]
            if any(pid == first_pid for _, pid in r["end"]):
                a["slow_overran"] += 1
                v.append(f"task {t} ({x['text']}) of {x['peer']}: its first run slept 3 s and "
                         f"finished: --task-timeout {TASK_TIMEOUT[x['peer']]:g}s did not end it; "
                         + "; ".join(f"{e.get('ts')} {e['ev']} {e.get('reason', '')}"
                                     for e in te.get(t, [])))
    return a


def death_accounts(s, life, exits, v):
    """Every kill -9 of a persistent peer's pane program is recorded once:
    one ev=session-exit for that pid, by its pane-died hook or, when the
    hook names a binary that was moved away, by a tick (`source=tick`).
    None only when the server died (a kill or a deliberate stop) before
    the first tick after the death could see the pane. Every such
    session-exit is a kill: a deliberate stop (from outside or inside)
    records none. A stop of a persistent peer that was running is logged
    (ev=stop)."""
    d = dict(hook=0, tick=0, superseded=0, unrecorded=0, stops_logged=0)
    by_pid = {}
    for e in exits:
        if e.get("ev") == "session-exit" and e.get("identity") in PERSISTENT and not e.get("task"):
            by_pid.setdefault((e.get("identity"), int(e.get("pid") or 0)), []).append(e)
    kills = [k for k in s.kills if k["kind"] == "pane" and not k.get("missed")]
    stops = [(e.get("identity"), iso_epoch(e.get("ts", ""))) for e in life if e.get("ev") == "stop"]
    ends = [(k["id"], k["t"]) for k in s.kills if k["kind"] == "server" and not k.get("missed")]
    ends += stops
    ends += [(o["id"], o["t0"]) for o in s.ops
             if o["kind"] in ("stop_persistent", "inside_stop", "inside_restart") and o.get("t0")]
    for k in kills:
        es = of_this_life(by_pid.get((k["id"], k["pid"]), []), k["t"])
        if len(es) > 1:
            v.append(f"pane {k['pid']} of {k['id']}: {len(es)} ev=session-exit: {es}")
        elif len(es) == 1:
            d["tick" if es[0].get("source") == "tick" else "hook"] += 1
        else:
            ok_ticks = [x for x in s.ticks if x["rc"] == 0 and x["t0"] > k["t"] + 0.05]
            by = ok_ticks[0]["t1"] if ok_ticks else float("inf")
            if any(i == k["id"] and k["t"] - 2 <= t <= by + 0.5 for i, t in ends):
                d["superseded"] += 1
            else:
                d["unrecorded"] += 1
                v.append(f"UNRECORDED: pane {k['pid']} of {k['id']} killed at {k['t']:.3f}: no "
                         f"ev=session-exit, though a tick ran from {ok_ticks[0]['t0']:.3f} to "
                         f"{by:.3f} with its server alive" if ok_ticks else
                         f"UNRECORDED: pane {k['pid']} of {k['id']}: no ev=session-exit")
    killed = {(k["id"], k["pid"]) for k in kills}
    for key, es in by_pid.items():
        if key not in killed:
            v.append(f"ev=session-exit for pane {key[1]} of {key[0]} that the chaos did not kill "
                     f"(a deliberate stop is not a death): {es[0]}")
    for o in s.ops:
        if o["kind"] == "stop_persistent" and o.get("rc") == 0 and o.get("was_running"):
            if any(i == o["id"] and o["t0"] - 1 <= t <= o["t1"] + 1 for i, t in stops):
                d["stops_logged"] += 1
            else:
                v.append(f"stop of {o['id']} at {o['t0']:.3f} (it was running): no ev=stop")
    # Stops and restarts typed into p-shell's own pane must finish.
    for o in s.ops:
        if o["kind"] not in ("inside_stop", "inside_restart") or o.get("missed"):
            continue
        if o.get("finished") or not o.get("typed"):
            continue
        hit = [k for k in s.kills if k.get("id") == o["id"] and not k.get("missed")
               and k["kind"] in ("server", "pane", "sigstop", "canary", "waiter")
               and o["t0"] - 5 <= k["t"] <= o["t1"]]
        if hit:
            o["interrupted"] = True
        else:
            v.append(f"INSIDE: `{o['kind'].split('_')[1]}` typed into {o['id']}'s pane at "
                     f"{o['t0']:.3f} did not finish within 15 s (ev=stop at {o.get('stop_ts')}, "
                     f"ev=launch at {o.get('launch_ts')}), and no chaos touched it: events "
                     f"{o.get('events')}; status {o.get('status')}; screen:\n{o.get('screen', '')}")
    return d


def of_this_life(records, t):
    """The ev=session-exit records of one pid that belong to the process
    killed at `t`: its hook writes at once, a tick within seconds. Pids wrap
    (a soak starts about 100,000 processes against a pid_max of 32,768), so
    a record minutes later is another process's."""
    return [e for e in records if t - 1 <= iso_epoch(e.get("ts", "")) <= t + 60]


def pool_death_accounts(s, life, exits, v):
    """Every kill -9 of a pool's runner (any worker slot) is recorded once:
    one ev=session-exit for that pid, by its pane-died hook or by a tick
    (`source=tick`), naming its task when it had one, unless the server
    died (a kill or a deliberate stop) before the first tick after the
    death could see the pane."""
    d = dict(kills=0, hook=0, tick=0, with_task=0, superseded=0, unrecorded=0)
    by_pid = {}
    for e in exits:
        if e.get("ev") == "session-exit" and e.get("identity") in WORKERS:
            by_pid.setdefault((e.get("identity"), int(e.get("pid") or 0)), []).append(e)
    stops = [(e.get("identity"), iso_epoch(e.get("ts", ""))) for e in life if e.get("ev") == "stop"]
    ends = [(k["id"], k["t"]) for k in s.kills if k["kind"] == "server" and not k.get("missed")]
    ends += stops + [(o["id"], o["t0"]) for o in s.ops if o["kind"] == "stop_worker" and o.get("t0")]
    for k in s.kills:
        if k["kind"] != "runner" or k.get("missed") or k.get("id") not in WORKERS:
            continue
        d["kills"] += 1
        es = of_this_life(by_pid.get((k["id"], k["pid"]), []), k["t"])
        if len(es) > 1:
            v.append(f"runner {k['pid']} of {k['id']}: {len(es)} ev=session-exit: {es}")
        elif len(es) == 1:
            d["tick" if es[0].get("source") == "tick" else "hook"] += 1
            d["with_task"] += 1 if es[0].get("task") else 0
        else:
            ok_ticks = [x for x in s.ticks if x["rc"] == 0 and x["t0"] > k["t"] + 0.05]
            by = ok_ticks[0]["t1"] if ok_ticks else float("inf")
            if any(i == k["id"] and k["t"] - 2 <= t <= by + 0.5 for i, t in ends):
                d["superseded"] += 1
            else:
                d["unrecorded"] += 1
                v.append(f"UNRECORDED: runner {k['pid']} of {k['id']} killed at {k['t']:.3f}: no "
                         f"ev=session-exit" + (f", though a tick ran from {ok_ticks[0]['t0']:.3f} "
                                               f"to {by:.3f}" if ok_ticks else ""))
    return d


def agent_turns(s, i):
    """Per agent pid of pool `i`, the turns its log recorded: (text, state,
    t). Each fake agent logs to `<peer>.txt.<pid>.jsonl`."""
    out = {}
    pre = f"{i}.txt."
    for name in os.listdir(s.out):
        m = re.fullmatch(re.escape(pre) + r"(\d+)\.jsonl", name)
        if not m:
            continue
        turns = out.setdefault(int(m.group(1)), [])
        with open(os.path.join(s.out, name), errors="replace") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # the agent killed mid-line
                if "turn" in d:
                    turns.append((d.get("text"), d.get("state"), float(d.get("t") or 0)))
    return out


def agent_accounts(s, i, life, exits, v, live):
    """Issue 22's accounts for the agent pool `i`: every prompt whose task
    is known (its send printed the task id) or that is in the queue at all
    (a sender killed after the enqueue) ends done, with the fake's answer
    to that very prompt as its reply, or dead-lettered with a reason; each
    prompt is typed into an agent once per attempt (a typing with no
    task-start after it is allowed only when a kill, of that agent, its
    runner or its server, explains it), never into a busy agent; `send
    --wait` printed only its own prompt's reply, and exited 0, 1 or 75 as
    its task ended; every agent's death is recorded (its own ev=session-exit,
    or its instance's end: a runner or server death, an idle stop, a
    failed reset, a stop). Returns the figures; appends violations to `v`.
    Also returns {task: shown} for the stop accounts."""
    a = dict(tasks=0, done=0, dead=0, dead_reasons={}, other=0, lost=0, mismatch=0, no_reply=0,
             typed=0, resets=0, typed_busy=0, extra_typed=0, extra_explained=0, extra_sigstop=0,
             starts_dead_agent=0,
             starts_no_turn=0, waits={}, wait_mismatch=0, wait_inconsistent=0, kills=0,
             kill_recorded=0, kill_superseded=0, kill_unrecorded=0, exits_unexplained=0, exits_hangup=0,
             agents=0, agents_alive=0, ended_own=0, ended_instance=0, ended_unrecorded=0,
             reaped=0, reused=0, max_tasks_per_agent=0, reset_failed=0, undelivered=0,
             leftover_ok=None)
    qdir = os.path.join(s.root, "queues", i)
    tasks = set()
    for stage in ("new", "cur", "done", "dead"):
        d = os.path.join(qdir, stage)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            m = re.fullmatch(r"(\d{20})\.([0-9a-z]+)", name)
            if m:
                tasks.add(m.group(2))
    sends = [x for x in s.sends if x["peer"] == i]
    for x in sends:
        if x.get("task"):
            tasks.add(x["task"])
    shown, text_of = {}, {}
    for t in sorted(tasks):
        rc, out, err, _, _ = s.run(["queue", i, "show", t, "--json"])
        if rc != 0:
            a["lost"] += 1
            v.append(f"LOST: task {t} of {i}: queue show: {err.strip()}")
            continue
        shown[t] = json.loads(out)
        text_of[t] = shown[t].get("payload")
    by_text = {}
    for t, x in text_of.items():
        by_text.setdefault(x, []).append(t)
    te = task_events(life)
    done_events = {}
    for e in life:
        if e.get("ev") == "task-done" and e.get("identity") == i:
            done_events[e.get("task")] = done_events.get(e.get("task"), 0) + 1
    kills = [k for k in s.kills if k.get("id") == i and not k.get("missed")]
    stops = [iso_epoch(e.get("ts", "")) for e in life if e.get("ev") == "stop"
             and e.get("identity") == i]
    stops += [o["t0"] for o in s.ops if o["kind"] == "stop_worker" and o.get("id") == i
              and o.get("t0")]

    def ended_by(t0, t1, kinds=("runner", "server")):
        """A kill of `kinds` of this pool, or a stop of it, in [t0, t1]."""
        return any(k["kind"] in kinds and t0 <= k["t"] <= t1 for k in kills) or any(
            t0 <= t <= t1 for t in stops)

    # 1. every task ends done with its own reply, or dead with a reason.
    for t, sh in shown.items():
        a["tasks"] += 1
        stage, text = sh.get("stage"), text_of[t]
        if stage == "done":
            a["done"] += 1
            reply = sh.get("reply")
            if reply is None:
                a["no_reply"] += 1
                v.append(f"REPLY LOST: task {t} ({text!r}) of {i} is done with no reply on record: "
                         + "; ".join(f"{e.get('ts')} {e['ev']} {e.get('reason', '')}"
                                     for e in te.get(t, [])))
            elif reply.strip() != f"reply to: {text}":
                a["mismatch"] += 1
                v.append(f"MIXUP: task {t} ({text!r}) of {i} is done with the reply {reply!r}")
            if done_events.get(t, 0) != 1:
                v.append(f"task {t} ({text!r}) of {i} has {done_events.get(t, 0)} ev=task-done")
        elif stage == "dead":
            a["dead"] += 1
            reason = (sh.get("reason") or "").strip()
            if not reason:
                v.append(f"task {t} ({text!r}) of {i} is dead without a reason")
            key = reason.split("\n")[0][:60] or "(none)"
            a["dead_reasons"][key] = a["dead_reasons"].get(key, 0) + 1
        else:
            a["other"] += 1
            v.append(f"task {t} ({text!r}) of {i} is still {stage} after settling")

    # 2. typings: never into a busy agent, one per attempt.
    turns = agent_turns(s, i)
    typings = {}  # text -> [(pid, t, matched)]
    for pid, ts_ in turns.items():
        for text, state, t in ts_:
            if text == AGENTS[i].get("reset"):
                a["resets"] += 1
            else:
                a["typed"] += 1
                typings.setdefault(text, []).append([pid, t, False])
                if text not in by_text:
                    v.append(f"{i}: agent {pid} took a turn {text!r} that is no task's prompt")
            if state != "ready":
                a["typed_busy"] += 1
                v.append(f"TYPED INTO A {state.upper()} AGENT: {i} agent {pid} at {t:.3f}: {text!r}")
    for t, text in text_of.items():
        starts = [e for e in te.get(t, []) if e["ev"] == "task-start"]
        ty = typings.get(text, [])
        for e in starts:
            at, pid = iso_epoch(e.get("ts", "")), int(e.get("pid") or 0)
            cand = [x for x in ty if x[0] == pid and not x[2] and x[1] <= at + 0.5]
            if not cand and any(k["kind"] == "program" and k["pid"] == pid
                                and at - 3 <= k["t"] <= at for k in kills):
                # Typed into an agent killed just before: the runner's next
                # look finds it dead, and the attempt fails (agent-died).
                a["starts_dead_agent"] += 1
                continue
            if not cand:
                a["starts_no_turn"] += 1
                v.append(f"task {t} ({text!r}) of {i}: ev=task-start attempt={e.get('attempt')} "
                         f"into agent {pid} at {e.get('ts')}, but that agent logged no such turn")
                continue
            max(cand, key=lambda x: x[1])[2] = True
        for pid, at, matched in ty:
            if matched:
                continue
            a["extra_typed"] += 1
            # Typed, then the agent, its runner or its server killed (or the
            # pool stopped) before the runner logged the task-start.
            if any(k["kind"] in ("runner", "server", "program") and at - 0.5 <= k["t"] <= at
                   + ACK_WINDOW for k in kills) or any(at - 0.5 <= x <= at + ACK_WINDOW
                                                       for x in stops):
                a["extra_explained"] += 1
            elif any(k["kind"] == "sigstop" and k["t"] - 0.5 <= at <= k["t"] + k.get("secs", 0)
                     + 0.5 for k in kills) and len(ty) == 1:
                # Its server was SIGSTOPped while the runner typed: the
                # delivery is unknown (ev=delivery-unknown) and settled once
                # the server answers; one that cannot be told is
                # dead-lettered, never typed again. Typed once: no violation.
                # (Before that rule it was retried and typed twice, which
                # the branch below now reports.)
                a["extra_sigstop"] += 1
            else:
                v.append(f"TYPED TWICE: task {t} ({text!r}) of {i}: typed into agent {pid} at "
                         f"{at:.3f} with no ev=task-start for it, and no kill explains it; "
                         f"typings {[(p, round(x, 3)) for p, x, _ in ty]}; events "
                         + "; ".join(f"{e.get('ts')} {e['ev']} attempt={e.get('attempt', '')} "
                                     f"pid={e.get('pid', '')} {e.get('reason', '')}"
                                     for e in te.get(t, [])))
    for e in life:
        if e.get("identity") == i and e.get("ev") == "reset-failed":
            a["reset_failed"] += 1
        if e.get("identity") == i and e.get("ev") == "msg-undelivered":
            a["undelivered"] += 1

    # 3. `send --wait`: its own reply, and an exit code its task's end explains.
    for x in sends:
        if not x.get("wait"):
            continue
        rc = str(x["rc"])
        a["waits"][rc] = a["waits"].get(rc, 0) + 1
        t = x.get("task")
        sh = shown.get(t) if t else None
        end = [e for e in te.get(t, []) if e["ev"] in ("task-done", "task-dead")] if t else []
        if x["rc"] == 0:
            if (x.get("reply") or "").strip() != f"reply to: {x['text']}":
                a["wait_mismatch"] += 1
                v.append(f"MIXUP: `send --wait` of {x['text']!r} (task {t}) printed the reply "
                         f"{x.get('reply')!r}")
            if not sh or sh.get("stage") != "done":
                a["wait_inconsistent"] += 1
                v.append(f"`send --wait` of {x['text']!r} exited 0, but task {t} is "
                         f"{sh and sh.get('stage')}")
        elif x["rc"] == 1:
            if not sh or sh.get("stage") != "dead":
                a["wait_inconsistent"] += 1
                v.append(f"`send --wait` of {x['text']!r} exited 1 ({x['err'][-160:]}), but task "
                         f"{t} is {sh and sh.get('stage')}")
        elif x["rc"] == 75:
            early = [e for e in end if iso_epoch(e.get("ts", "")) < x["t1"] - 0.5]
            if x["t1"] - x["t0"] < WAIT_S - 1 or early:
                a["wait_inconsistent"] += 1
                v.append(f"`send --wait` of {x['text']!r} exited 75 after "
                         f"{x['t1'] - x['t0']:.1f}s, task {t} ended {[e.get('ts') for e in early]}")
        elif x["rc"] != -9:
            a["wait_inconsistent"] += 1
            v.append(f"`send --wait` of {x['text']!r} exited {x['rc']}: {x['err'][-200:]}")

    # 4. agent deaths.
    starts = [e for e in life if e.get("ev") == "instance-start" and e.get("identity") == i]
    agent_pids = {int(e.get("pid") or 0) for e in starts}
    a["agents"] = len(agent_pids)
    own = {}
    for e in exits:
        if e.get("ev") == "session-exit" and e.get("identity") == i \
                and int(e.get("pid") or 0) in agent_pids:
            own.setdefault(int(e["pid"]), []).append(e)
    def own_of(pid, t):
        """The session-exits of agent `pid` that belong to its instance alive
        at t: pids wrap (pid_max is 32768 on the test VM), and a 12-minute
        soak starts enough processes that two instances can share one."""
        begins = [iso_epoch(e.get("ts", "")) for e in starts if int(e.get("pid") or 0) == pid]
        t0 = max([b for b in begins if b <= t], default=float("-inf"))
        t1 = min([b for b in begins if b > t], default=float("inf"))
        return [e for e in own.get(pid, []) if t0 <= iso_epoch(e.get("ts", "")) < t1]

    killed = {}
    for k in kills:
        if k["kind"] == "program":
            killed[k["pid"]] = k
            a["kills"] += 1
            mine = own_of(k["pid"], k["t"])
            n = len(mine)
            if n == 1:
                a["kill_recorded"] += 1
            elif n > 1:
                v.append(f"agent {k['pid']} of {i}: {n} ev=session-exit: {mine}")
            elif ended_by(k["t"] - 2, k["t"] + 2):
                a["kill_superseded"] += 1
            else:
                a["kill_unrecorded"] += 1
                v.append(f"UNRECORDED: agent {k['pid']} of {i} killed at {k['t']:.3f} (runner "
                         f"{k.get('runner')}, task {k.get('task')}): no ev=session-exit")
    server_ends = [iso_epoch(e.get("ts", "")) for e in exits + life
                   if e.get("identity") == i and e.get("ev") in ("server-exit", "gone")]
    timeouts = {(e.get("slot"), iso_epoch(e.get("ts", ""))) for e in life
                if e.get("ev") in ("task-timeout", "reset-failed") and e.get("identity") == i}
    for pid, es in own.items():
        if pid in killed:
            continue
        e = es[0]
        at = iso_epoch(e.get("ts", ""))
        if any(sl == e.get("slot") and at - 5 <= x <= at for sl, x in timeouts):
            continue
        # Its server died (killed, stopped, crashed): the terminal hung up
        # and the agent left (the fake exits on EOF or SIGHUP) just before
        # its runner, which recorded the death.
        if ended_by(at - 3, at + 0.5) or any(at - 3 <= x <= at + 0.5 for x in server_ends):
            a["exits_hangup"] += 1
            continue
        a["exits_unexplained"] += 1
        v.append(f"agent {pid} of {i} died and no kill, timeout or failed reset explains it: {e}")
    live_pids = set(s.agent_pids(i)) if live else set()
    by_slot = {}
    for e in starts:
        by_slot.setdefault(e.get("slot"), []).append(e)
    reaped = [e for e in life if e.get("ev") == "reaped-idle" and e.get("identity") == i]
    a["reaped"] = len(reaped)
    per_agent = {}
    for e in te.values():
        for x in e:
            if x["ev"] == "task-start" and x.get("identity") == i:
                per_agent[int(x.get("pid") or 0)] = per_agent.get(int(x.get("pid") or 0), 0) + 1
    a["reused"] = sum(1 for n in per_agent.values() if n > 1)
    a["max_tasks_per_agent"] = max(per_agent.values() or [0])
    runner_exits = [iso_epoch(e.get("ts", "")) for e in exits if e.get("ev") == "session-exit"
                    and e.get("identity") == i and int(e.get("pid") or 0) not in agent_pids]
    for slot, es in by_slot.items():
        for n, e in enumerate(es):
            pid = int(e.get("pid") or 0)
            if pid in live_pids:
                a["agents_alive"] += 1
                continue
            t0 = iso_epoch(e.get("ts", ""))
            t1 = iso_epoch(es[n + 1].get("ts", "")) if n + 1 < len(es) else float("inf")
            if pid in own:
                a["ended_own"] += 1
            elif (ended_by(t0, t1) or any(t0 <= x <= t1 + 1 for x in server_ends + runner_exits)
                  or any(r.get("slot") == slot and t0 <= iso_epoch(r.get("ts", "")) <= t1 + 1
                         for r in reaped)
                  or any(x.get("ev") == "reset-failed" and int(x.get("pid") or 0) == pid
                         for x in life if x.get("identity") == i)):
                a["ended_instance"] += 1
            elif not live and t1 == float("inf"):
                a["agents_alive"] += 1  # a recheck cannot tell: the last of its slot
            else:
                a["ended_unrecorded"] += 1
                v.append(f"UNRECORDED: agent {pid} of {i} (slot {slot}, started {e.get('ts')}) "
                         f"is gone with no record of its death or of its instance's end")

    # 5. after the settle: the agents alive are the instances `status` lists.
    if live:
        rc, out, _, _, _ = s.run(["status", i, "--json"])
        try:
            ws = json.loads(out)[0].get("workers") or []
        except (ValueError, IndexError):
            ws = []
        listed = {w.get("pid") for w in ws if w.get("pid")}
        srv = s.server_pid(i)
        bad = [p for p in live_pids if (pstat((pstat(p) or (0, 0))[1]) or (0, 0))[1] != srv]
        a["leftover_ok"] = (listed == live_pids and len(live_pids) <= AGENTS[i]["workers"]
                            and not bad)
        if not a["leftover_ok"]:
            v.append(f"{i}: after the settle, agents alive {sorted(live_pids)}, instances listed "
                     f"{sorted(listed)} (at most {AGENTS[i]['workers']}); not a runner's child "
                     f"under its server: {bad}")
    return a, shown


def print_agents(s, a, i):
    print(f"agent pool {i} (--workers {AGENTS[i]['workers']} --warm {AGENTS[i]['warm']} --reuse "
          f"5s --idle-ttl 20s --reset {AGENTS[i]['reset']}): prompts {a['tasks']} (every task "
          f"in its queue): done {a['done']} (reply not the fake's answer to its own prompt "
          f"{a['mismatch']}, no reply on record {a['no_reply']}), dead {a['dead']} "
          f"{a['dead_reasons'] or ''}, other {a['other']}, lost {a['lost']}")
    print(f"   typed {a['typed']} prompts and {a['resets']} resets; into a busy agent "
          f"{a['typed_busy']}; typed with no task-start after it {a['extra_typed']} (a kill right "
          f"after: {a['extra_explained']}; its server SIGSTOPped, the delivery unknown, typed once: "
          f"{a['extra_sigstop']}); task-start without the turn {a['starts_no_turn']} (into an agent just killed: "
          f"{a['starts_dead_agent']}); "
          f"not taken in {a['undelivered']}; failed resets {a['reset_failed']}")
    print(f"   send --wait exits {a['waits']}: printed another prompt's reply {a['wait_mismatch']}, "
          f"exit code inconsistent with the task's end {a['wait_inconsistent']}")
    print(f"   agents started {a['agents']} (alive at the end {a['agents_alive']}, most at once "
          f"{s.agent_peak.get(i, '-')}); agent kills {a['kills']} (own ev=session-exit "
          f"{a['kill_recorded']}, runner or server gone first {a['kill_superseded']}, unrecorded "
          f"{a['kill_unrecorded']}); deaths recorded by their own ev=session-exit {a['ended_own']}, "
          f"with their instance (runner or server death, idle stop, stop) {a['ended_instance']}, "
          f"unrecorded {a['ended_unrecorded']}; agent exits as their server died "
          f"{a['exits_hangup']}, that nothing explains {a['exits_unexplained']}")
    print(f"   idle stops (ev=reaped-idle) {a['reaped']}; agents that took 2+ tasks {a['reused']} "
          f"(most by one {a['max_tasks_per_agent']}); after the settle the live agents are the "
          f"listed instances: {a['leftover_ok']}")


def hook_accounts(s, v):
    """After the settle every live server's pane-died hook, and the binary
    its state records, name the binary's current path."""
    n = 0
    for i in s.peers():
        if not s.server_pid(i):
            continue
        n += 1
        exe = s.state(i).get("exe")
        r = subprocess.run(["tmux", "-S", s.sock(i), "-f", "/dev/null", "show-hooks", "-g",
                            "pane-died"], capture_output=True, text=True, timeout=5, env=s.env)
        if exe != s.mv or s.mv not in r.stdout:
            v.append(f"{i}: after the binary moved to {s.mv}, its state names {exe} and its "
                     f"pane-died hook is {r.stdout.strip()[:300]!r}")
    return n


def print_issue19(s, life, exits, a, d, hooks_ok):
    ops = {}
    for o in s.ops:
        x = ops.setdefault(o["kind"], [0, 0])
        x[1 if o.get("missed") else 0] += 1
    print("operations (done/no target): " + ", ".join(f"{k} {x[0]}/{x[1]}"
                                                       for k, x in sorted(ops.items())))
    sw = [o for o in s.ops if o["kind"] == "stop_worker" and not o.get("missed")]
    print(f"stops of a running ephemeral worker: {len(sw)} ({sum(1 for o in sw if o.get('fail_task'))}"
          f" with --fail-task): task requeued {a['requeued']} (next claim reused the attempt "
          f"{a['uncharged']}, of them stopped between claim and start {a['claimed_only']}, next claim lost to a kill {len(a['claim_lost_after'])} "
          f"{sorted(set(a['claim_lost_after']))[:3] or ''}), dead-lettered `stopped` "
          f"{a['failtask_dead']}, no task left to settle (it finished first) {a['found_none']}, "
          f"stop failed {len(a['failed'])}; re-run after a stop {a['rerun_after_stop']}")
    for o in a["failed"][:5]:
        print(f"   stop {o['id']} rc={o.get('rc')}: {o.get('err', '')[-200:]}")
    sp = [o for o in s.ops if o["kind"] == "stop_persistent"]
    rl = [o for o in s.ops if o["kind"] == "relaunch"]
    print(f"stops of a persistent peer: {len(sp)} (rc {sorted({str(o.get('rc')) for o in sp})}), "
          f"ev=stop logged for {d['stops_logged']} that were running; relaunches {len(rl)} "
          f"({sum(1 for o in rl if o.get('rc') == 0)} exit 0)")
    for kind in ("inside_stop", "inside_restart"):
        xs = [o for o in s.ops if o["kind"] == kind and not o.get("missed")]
        print(f"{kind.replace('_', ' ')} (typed into p-shell's pane): {len(xs)}, finished "
              f"{sum(1 for o in xs if o.get('finished'))}, interrupted by the chaos "
              f"{sum(1 for o in xs if o.get('interrupted'))}, not typed "
              f"{sum(1 for o in xs if not o.get('typed'))}")
    mv = [o for o in s.ops if o["kind"] == "move"]
    rehooks = sum(1 for x in s.ticks for y in x["actions"] if y.get("action") == "rehook")
    src_tick = sum(1 for e in exits if e.get("ev") == "session-exit" and e.get("source") == "tick")
    print(f"binary moves: {len(mv)}; tick rehook actions {rehooks}; ev=session-exit source=tick "
          f"{src_tick}; live servers whose hook names the final path "
          f"{'-' if hooks_ok is None else hooks_ok}")
    print(f"persistent pane kills recorded: by the hook {d['hook']}, by a tick {d['tick']}, "
          f"superseded by their server's death {d['superseded']}, unrecorded {d['unrecorded']}")
    print(f"task timeouts: {a['timeouts']} ev=task-timeout (longest {a['timeout_max_ms']} ms), "
          f"retried as timeout {a['timeout_retried']}; slow first runs {a['slow_first']}, of "
          f"which ran past the timeout {a['slow_overran']}; re-run after a timeout "
          f"{a['rerun_after_timeout']}")


def report(s, chaos_s, settled, load0, live):
    v = []  # violations
    root = s.root
    life = [logfmt(l) for l in read_lines(os.path.join(root, "logs", "lifecycle.log"))]
    exits = [logfmt(l) for l in read_lines(os.path.join(root, "logs", "exits.log"))]
    if settled is None:
        v.append(f"did not settle within {s.a.settle:g}s")

    # 1. every acknowledged send ran and is done once, or dead with a reason.
    done_events = {}
    for e in life:
        if e.get("ev") == "task-done":
            done_events[e.get("task")] = done_events.get(e.get("task"), 0) + 1
    runs = {}  # task -> {"start": [(idx, pid)], "end": [...]}
    for i in EPHEMERAL:
        path = os.path.join(s.out, f"{i}.txt")
        if not os.path.exists(path) and not any(x["peer"] == i for x in s.sends):
            continue  # `--recheck` of a root from before this peer was added
        with open(path) as f:
            for n, line in enumerate(f):
                w = line.split()
                if len(w) != {"start": 4, "end": 5}.get(w[0] if w else "", 0):
                    v.append(f"{i}: garbled output line {line!r}")
                    continue
                r = runs.setdefault(w[1], {"start": [], "end": [], "peer": i, "text": w[2]})
                r[w[0]].append((n, int(w[3])) if w[0] == "start" else (float(w[4]), int(w[3])))
    acked = [x for x in s.sends if x["rc"] == 0 and x["peer"] not in AGENTS]
    stages, dead_reasons, shown_all = {}, {}, {}
    rerun, twice, window, window_stopped = [], [], [], []
    for x in acked:
        t = x["task"]
        rc, out, err, _, _ = s.run(["queue", x["peer"], "show", t, "--json"])
        if rc != 0:
            v.append(f"LOST: task {t} ({x['text']}) of {x['peer']}: queue show: {err.strip()}")
            continue
        shown = json.loads(out)
        shown_all[t] = shown
        stage = shown.get("stage")
        stages[stage] = stages.get(stage, 0) + 1
        r = runs.get(t, {"start": [], "end": []})
        if stage == "done":
            if not r["start"]:
                v.append(f"task {t} ({x['text']}) is done but never ran")
            if not r["end"]:
                v.append(f"task {t} ({x['text']}) is done but its program never finished")
            if done_events.get(t, 0) != 1:
                v.append(f"task {t} ({x['text']}) has {done_events.get(t, 0)} ev=task-done")
        elif stage == "dead":
            reason = (shown.get("reason") or "").strip()
            if not reason:
                v.append(f"task {t} ({x['text']}) is dead without a reason")
            key = reason.split("\n")[0] or "(none)"
            dead_reasons[key] = dead_reasons.get(key, 0) + 1
        else:
            v.append(f"task {t} ({x['text']}) of {x['peer']} is still {stage} after settling")
        if len(r["start"]) > 1:
            rerun.append(t)
        if len(r["end"]) > 1 and window_kill(s.kills, x["peer"], r["end"][0][0]):
            # It ended and its runner (or server) was killed before recording
            # that: the exit-to-ack window no kill -9 can be kept out of.
            window.append(t)
        elif len(r["end"]) > 1 and window_stop(s.ops, x["peer"], t, r["end"][0][0]):
            # The same window, closed by a deliberate stop (SIGTERM).
            window.append(t)
            window_stopped.append(t)
        elif len(r["end"]) > 1:
            twice.append(t)
            v.append(f"task {t} ({x['text']}) of {x['peer']} finished {len(r['end'])} times "
                     f"(pids {[p for _, p in r['end']]}); attempt log: "
                     + "; ".join(f"{e.get('ts')} {e.get('ev')} {e.get('reason', e.get('status', ''))}"
                                 for e in life if e.get("task") == t))
    unacked_runs = sum(1 for t, r in runs.items() if t not in {x["task"] for x in acked})

    # 1a. agent pools (issue 22).
    agents = {}
    for i in AGENTS:
        agents[i], shown = agent_accounts(s, i, life, exits, v, live)
        shown_all.update(shown)

    # 1b. deliberate stops, task timeouts (issue 19).
    acct = stop_and_timeout_accounts(s, life, acked, shown_all, runs, v)

    # 2. server kills <-> ev=server-exit records.
    # Keyed by peer and pid: pids wrap (pid_max 32768 here), and in a long
    # run under load two peers' servers, or two of one peer's, can get the
    # same pid minutes apart. A record belongs to a kill of its peer's
    # server with that pid made before it and after the previous such kill.
    recs = {}
    for e in exits:
        if e.get("ev") == "server-exit":
            recs.setdefault((e.get("identity"), int(e.get("server_pid") or 0)), []).append(e)
    server_kills = [k for k in s.kills if k["kind"] == "server" and not k.get("missed")]
    killed = {(k["id"], k["pid"]) for k in server_kills}
    kill_times = {}
    for k in server_kills:
        kill_times.setdefault((k["id"], k["pid"]), []).append(k["t"])

    def recs_of(k):
        key = (k["id"], k["pid"])
        later = [t for t in kill_times.get(key, []) if t > k["t"]]
        until = min(later) - 1 if later else float("inf")
        return [e for e in recs.get(key, []) if k["t"] - 1 <= iso_epoch(e.get("ts", "")) < until]
    unwatched_rec = unwatched_gone = unwatched_lost = intent_kills = 0
    for k in server_kills:
        n = len(recs_of(k))
        if n > 1:
            v.append(f"server {k['pid']} of {k['id']}: {n} ev=server-exit records")
        elif k["intent"]:
            intent_kills += 1
            if n:
                v.append(f"server {k['pid']} of {k['id']} was killed during a deliberate "
                         f"teardown (stop intent present) but got an ev=server-exit")
        elif not k["watched"]:
            unwatched_rec += n
            if n == 0:
                # No canary saw it die: the tick's ev=gone must record it.
                if any(e.get("ev") == "gone" and e.get("identity") == k["id"]
                       and iso_epoch(e.get("ts", "")) >= k["t"] - 1 for e in life):
                    unwatched_gone += 1
                else:
                    unwatched_lost += 1
                    v.append(f"UNRECORDED: server {k['pid']} of {k['id']} killed while its canary "
                             f"was dead, and no ev=server-exit or ev=gone after it")
        elif n == 0:
            v.append(f"MISSED: server {k['pid']} of {k['id']} killed at "
                     f"{time.strftime('%H:%M:%S', time.gmtime(k['t']))}.{int(k['t'] % 1 * 1000):03d}"
                     f" while watched: no ev=server-exit")
    crashes = []
    for (ident, pid), es in recs.items():
        if (ident, pid) not in killed:
            # tmux itself crashed (3.3a segfaults, rarely, under load): the
            # canary recorded it with the kernel's word (`crash=`); a root
            # from before that key is checked against the kernel log here.
            why = es[0].get("crash") or kernel_crash(pid)
            if why:
                crashes.append(f"server {pid} ({ident}): {why}")
            else:
                v.append(f"ev=server-exit for server {pid} ({ident}) that the chaos "
                         f"did not kill: {es[0]}")

    # 3. processes left, doctor, clean.
    tree = [p for p in descendants(ME) if alive(p)] if live else []
    expected = set()
    for i in s.peers() if live else []:
        srv = s.server_pid(i)
        canaries = [p for p in tree if b"_canary" in argv(p) and i.encode() in argv(p)]
        chan = f"muxvisor-canary-{i}".encode()
        waits = [p for p in tree if chan in argv(p) and b"wait-for" in argv(p)]
        want = 1 if srv else 0
        # A canary that holds a pidfd on its server needs no wait-for client.
        want_waits = 0 if (srv and canaries and srv in pidfds(canaries[0])) else want
        if len(canaries) != want or len(waits) != want_waits:
            v.append(f"{i}: server {'alive' if srv else 'dead'}, {len(canaries)} canaries "
                     f"{canaries}, {len(waits)} wait-for clients {waits}")
        if srv and canaries and waits and (pstat(waits[0]) or (0, 0))[1] != canaries[0]:
            v.append(f"{i}: the wait-for {waits[0]} is not the canary {canaries[0]}'s child")
        expected |= set(canaries) | set(waits)
        if srv:
            expected |= {srv} | set(descendants(srv))
    for p in tree:
        if p not in expected and p not in s.registered:
            v.append(f"ORPHAN: pid {p} ({b' '.join(argv(p)).decode(errors='replace')[:160]})")
    rc, out, _, _, _ = s.run(["doctor", "--json"]) if live else (0, '{"findings": []}', 0, 0, 0)
    try:
        for f in json.loads(out)["findings"]:
            if f["level"] != "ok" and f["check"] != "service":
                v.append(f"doctor: {f['level']} {f['check']}: {f['message']}")
    except (ValueError, KeyError):
        v.append(f"doctor --json: exit {rc}, {out[:300]}")
    rc, out, _, _, _ = s.run(["clean", "--dry-run", "--json"]) if live else (0, "{}", 0, 0, 0)
    tmp_files = 0
    try:
        for k, val in json.loads(out).items():
            if k == "tmp_files":
                tmp_files = len(val)  # a sender killed mid-write leaves one (allowed)
            elif isinstance(val, list) and val:
                v.append(f"clean --dry-run: {k}: {val[:5]}")
    except ValueError:
        v.append(f"clean --dry-run --json: exit {rc}, {out[:300]}")

    for x in sorted(s.lost.values(), key=lambda x: x["t"]):
        v.append(f"LOST SOCKET: server {x['pid']} listened on {x['path']} without owning it from "
                 f"{time.strftime('%H:%M:%S', time.gmtime(x['t']))}.{int(x['t'] % 1 * 1000):03d}"
                 f" (records.json has the process tree and its stack)")

    # 2b. deaths of persistent panes <-> ev=session-exit; stops recorded;
    # stops and restarts from inside finished; hooks follow the binary.
    deaths = death_accounts(s, life, exits, v)
    pool = pool_death_accounts(s, life, exits, v)
    hooks_ok = hook_accounts(s, v) if live else None

    # 4. FIFO: per peer, first runs in sequence order.
    inversions = 0
    for i in EPHEMERAL:
        if i in WORKERS:
            continue  # several run at once: their programs' start lines may cross
        seq = {}
        for stage in ("new", "cur", "done", "dead"):
            d = os.path.join(root, "queues", i, stage)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                m = re.fullmatch(r"(\d{20})\.([0-9a-z]+)", name)
                if m:
                    seq[m.group(2)] = int(m.group(1))
        first = sorted((r["start"][0][0], seq.get(t, -1), t) for t, r in runs.items()
                       if r["peer"] == i and r["start"])
        last = -1
        for idx, sq, t in first:
            if sq < 0:
                v.append(f"{i}: task {t} ran but is nowhere in the queue")
            elif sq < last:
                inversions += 1
                v.append(f"{i}: task {t} (seq {sq}) first ran after seq {last}")
            last = max(last, sq)

    # Figures.
    by_kind = {}
    for k in s.kills:
        d = by_kind.setdefault(k["kind"], [0, 0])
        d[1 if k.get("missed") else 0] += 1
    rcs = {}
    for x in s.sends:
        rcs[str(x["rc"])] = rcs.get(str(x["rc"]), 0) + 1
    prcs = {}
    for x in s.psends:
        prcs[str(x["rc"])] = prcs.get(str(x["rc"]), 0) + 1
    enq = {e["task"]: e["ts"] for e in life if e.get("ev") == "enqueue"}
    starts = {}
    for e in life:
        if e.get("ev") == "task-start" and e.get("task") not in starts:
            starts[e["task"]] = e["ts"]

    def ts(x):
        from datetime import datetime
        return datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
    lat = [ts(starts[t]) - ts(enq[t]) for t in starts if t in enq]
    send_ms = [(x["t1"] - x["t0"]) * 1000 for x in s.sends if x["rc"] == 0 and not x.get("wait")]
    tick_ms = [(x["t1"] - x["t0"]) * 1000 for x in s.ticks if x["rc"] == 0]
    tick_rcs = {}
    for x in s.ticks:
        tick_rcs[str(x["rc"])] = tick_rcs.get(str(x["rc"]), 0) + 1
    restarts = sum(1 for e in life if e.get("ev") == "restart")
    tick_errors = [a for x in s.ticks for a in x["actions"] if a.get("action") == "error"]
    count = lambda ev: sum(1 for e in life if e.get("ev") == ev)

    print("\n== soak report")
    print(f"seed {s.a.seed}; chaos {chaos_s / 60:.1f} min; settled in "
          f"{'-' if settled is None else f'{settled:.0f}s'}; "
          f"{os.cpu_count()} cores; load avg 1-min at start {load0[0]:.2f}, during "
          f"mean {statistics.mean(s.loads or [0]):.2f} max {max(s.loads or [0]):.2f}")
    print(f"sends to ephemeral peers: {len(s.sends)} ({rcs}); to p-echo: {len(s.psends)} ({prcs})")
    print(f"acknowledged sends: {len(acked)}: done {stages.get('done', 0)}, dead "
          f"{stages.get('dead', 0)} {dead_reasons or ''}, other {sum(stages.values()) - stages.get('done', 0) - stages.get('dead', 0)}")
    print(f"re-run after a kill: {len(rerun)}; finished twice: {len(twice)}; ended, then its "
          f"runner killed before the ack (allowed): {len(window)} ({len(window_stopped)} of them by a "
          f"deliberate stop); tasks run whose send was not "
          f"acknowledged (sender killed): {unacked_runs}")
    print(f"events: task-start {count('task-start')}, task-done {count('task-done')}, "
          f"task-retry {count('task-retry')}, task-dead {count('task-dead')}, restart {restarts}, "
          f"gone {count('gone')}, hung {count('hung')}, runner-error {count('runner-error')}, "
          f"handover-error {count('handover-error')}, session-exit "
          f"{sum(1 for e in exits if e.get('ev') == 'session-exit')}")
    print("chaos (hit/no target): " + ", ".join(f"{k} {d[0]}/{d[1]}" for k, d in sorted(by_kind.items())))
    print(f"tmux crashes not caused by the chaos, recorded by the canary: {len(crashes)}"
          + "".join(f"\n   {c}" for c in crashes))
    print(f"server kills {len(server_kills)}: ev=server-exit records {sum(len(x) for x in recs.values())}; "
          f"watched kills {len(server_kills) - intent_kills - unwatched_rec - unwatched_gone - unwatched_lost}, "
          f"unwatched (canary just killed) {unwatched_rec + unwatched_gone + unwatched_lost} "
          f"({unwatched_rec} by ev=server-exit anyway, {unwatched_gone} by the tick's ev=gone), "
          f"during a deliberate teardown {intent_kills}")
    print(f"ticks: {len(s.ticks)} ({tick_rcs}), median {statistics.median(tick_ms or [0]):.0f} ms, "
          f"p95 {pct(tick_ms, 95):.0f} ms; tick actions reported as error: {len(tick_errors)}")
    for a_ in tick_errors[:10]:
        print(f"   {a_.get('identity')}: {a_.get('reason', '')[:200]}")
    print(f"send (exit 0) ms: median {statistics.median(send_ms or [0]):.0f}, p95 {pct(send_ms, 95):.0f}, "
          f"max {max(send_ms or [0]):.0f}")
    print(f"enqueue -> first task-start s: median {statistics.median(lat or [0]):.2f}, "
          f"p95 {pct(lat, 95):.2f}, max {max(lat or [0]):.2f} (includes backoff behind retried heads)")
    print(f"clean --dry-run: {tmp_files} abandoned tmp/ file(s) (writers killed mid-write: an absorb, a requeue or a dead letter)")
    print(f"FIFO inversions: {inversions}")
    pfails = [x for x in s.psends if x["rc"] not in (0, -9)]
    if pfails:
        print(f"failed sends to p-echo (not killed by the chaos): {len(pfails)}, e.g.")
        for x in pfails[:3]:
            print(f"   rc={x['rc']}: {x['err'][-200:]}")
    fails = [x for x in s.sends if x["rc"] not in (0, -9) and not x.get("wait")]
    if fails:
        print(f"failed sends (not killed by the chaos): {len(fails)}, e.g.")
        for x in fails[:5]:
            print(f"   {x['peer']} rc={x['rc']}: {x['err'][-200:]}")
    print_issue19(s, life, exits, acct, deaths, hooks_ok)
    print(f"pool {', '.join(f'{i} --workers {n}' for i, n in WORKERS.items())}: runner kills "
          f"{pool['kills']} (recorded by the hook {pool['hook']}, by a tick {pool['tick']}, naming "
          f"a task {pool['with_task']}; none as the server ended first {pool['superseded']}); "
          f"most tasks running at once (sampled) {s.pool_peak or '-'}")
    for i, a_ in agents.items():
        print_agents(s, a_, i)
    unrecorded = (unwatched_lost + sum(1 for x in v if x.startswith("MISSED"))
                  + deaths["unrecorded"] + pool["unrecorded"])
    lost = sum(1 for x in v if x.startswith("LOST:")) + sum(
        1 for x in v if "after settling" in x) + sum(1 for x in v if x.startswith("REPLY LOST"))
    unrecorded += sum(a_["kill_unrecorded"] + a_["ended_unrecorded"] for a_ in agents.values())
    print(f"ACCOUNTS: lost {lost}; finished twice outside the exit-to-ack window {len(twice)}; "
          f"unrecorded deaths {unrecorded}; tasks charged an attempt for a deliberate stop "
          f"{acct['charged']}; dead-lettered `stopped` by stop --fail-task (counted apart, not "
          f"lost) {acct['failtask_dead']}; agent pools: prompts typed twice outside a kill "
          f"{sum(1 for x in v if x.startswith('TYPED TWICE'))}, replies mixed up "
          f"{sum(1 for x in v if x.startswith('MIXUP'))}")
    print(f"\nVIOLATIONS: {len(v)}")
    for x in v:
        print(f" - {x}")
    return 1 if v else 0


if __name__ == "__main__":
    main()
