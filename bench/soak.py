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
  tick about every second (`supervise --once`) and a chaos thread that
  kill -9s tmux servers, panes' programs, runners, task programs, senders,
  ticks, canaries, canaries' `wait-for` clients and `pane-died` hooks /
  hand-overs, and SIGSTOPs servers for a few seconds;
- stops the chaos, lets ticks settle everything (bounded) and checks:
  1. every task whose send exited 0 ran and is done (acknowledged once) or
     dead-lettered with a reason; none lost, none finished twice;
  2. every server kill has exactly one ev=server-exit for that pid (or,
     killed while its canary was dead, the tick's ev=gone) and every
     ev=server-exit is a kill;
  3. one canary and one wait-for per live server, none for dead ones, no
     other process left; `doctor` and `clean --dry-run` find nothing;
  4. per peer, tasks first ran in queue (send) order.
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
}
# Senders per ephemeral peer (two on e-argv: concurrent enqueues) and the
# pause between their sends, seconds.
SENDERS = {"e-argv": [(0.05, 0.6), (0.05, 0.6)], "e-file": [(0.1, 0.8)], "e-keys": [(0.5, 2.0)]}
CHAOS_WEIGHTS = {
    "server": 10, "pane": 6, "runner": 8, "program": 8, "sender": 6, "tick": 6,
    "canary": 6, "waiter": 5, "handover": 6, "sigstop": 5,
}


# ---------- processes (Linux /proc) ----------

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
        self.lost = {}               # (socket path, server pid) -> first sighting of a lost socket

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

    def runner_pid(self, i):
        path = os.path.join(self.root, "queues", i, "runner.lock")
        pid = read_pid(path)
        srv = self.server_pid(i)
        if pid and locked(path) and srv and (pstat(pid) or (0, 0))[1] == srv:
            return pid
        return None

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
        n = 0
        while not self.stop_senders.is_set():
            text = f"{peer}.{n0}.{n:05d}:{self.rng.choice(['0', '0.05', '0.1', '0.2', '0.3'])}"
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
            rc, out, err, t0, t1 = self.run(["supervise", "--once", "--json"], timeout=120,
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
        watched = bool(canary and self.waiters(canary))
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
        pid = self.runner_pid(i)
        if not pid or not self.signal(pid, pstat(pid), signal.SIGKILL):
            return False
        busy = bool(os.listdir(os.path.join(self.root, "queues", i, "cur")))
        self.record("runner", i, pid, busy=busy)
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
        r = self.runner_pid(i)
        # The program shares the runner's group; its control-mode tmux
        # client does not.
        kids = [c for c in children(r) if alive(c) and (pstat(c) or (0, 0, 0))[2] == r] if r else []
        if not kids:
            return False
        c = self.rng.choice(kids)
        return self.signal(c, pstat(c), signal.SIGKILL) and (self.record("program", i, c) or True)

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
                ok = all(rows[i]["state"] == "running" and rows[i]["canary"] for i in PERSISTENT)
                for i in EPHEMERAL:
                    q = rows[i]["queue"]
                    ok = ok and q["pending"] == 0 and q["running"] == 0
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
                           kills=self.kills, lost=list(self.lost.values())), f)

    def load(self):
        with open(os.path.join(self.work, "records.json")) as f:
            d = json.load(f)
        for k in ("loads", "sends", "psends", "ticks", "kills"):
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
    print(f"soak: seed {a.seed}, {a.minutes:g} min, root {s.root}", flush=True)
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
        for t in senders + [ticker, chaos]:
            t.start()
        deadline = t_start + a.minutes * 60
        while time.time() < deadline:
            time.sleep(min(30, max(0, deadline - time.time())))
            with s.rec_lock:
                ok = sum(1 for x in s.sends if x["rc"] == 0)
                hits = sum(1 for k in s.kills if not k.get("missed"))
            print(f"soak: {int(time.time() - t_start)}s: {ok} tasks sent, {hits} chaos hits, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        s.stop_chaos.set()
        chaos.join()
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

def window_kill(kills, peer, ended):
    """A kill of `peer`'s runner or server within 100 ms after a program
    ended: the program's exit was never recorded, so its task ran again."""
    return any(k.get("id") == peer and k["kind"] in ("runner", "server")
               and -0.005 <= k["t"] - ended <= 0.1 for k in kills if not k.get("missed"))


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
        with open(os.path.join(s.out, f"{i}.txt")) as f:
            for n, line in enumerate(f):
                w = line.split()
                if len(w) != {"start": 4, "end": 5}.get(w[0] if w else "", 0):
                    v.append(f"{i}: garbled output line {line!r}")
                    continue
                r = runs.setdefault(w[1], {"start": [], "end": [], "peer": i, "text": w[2]})
                r[w[0]].append((n, int(w[3])) if w[0] == "start" else (float(w[4]), int(w[3])))
    acked = [x for x in s.sends if x["rc"] == 0]
    stages, dead_reasons = {}, {}
    rerun, twice, window = [], [], []
    for x in acked:
        t = x["task"]
        rc, out, err, _, _ = s.run(["queue", x["peer"], "show", t, "--json"])
        if rc != 0:
            v.append(f"LOST: task {t} ({x['text']}) of {x['peer']}: queue show: {err.strip()}")
            continue
        shown = json.loads(out)
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
        elif len(r["end"]) > 1:
            twice.append(t)
            v.append(f"task {t} ({x['text']}) of {x['peer']} finished {len(r['end'])} times "
                     f"(pids {[p for _, p in r['end']]}); attempt log: "
                     + "; ".join(f"{e.get('ts')} {e.get('ev')} {e.get('reason', e.get('status', ''))}"
                                 for e in life if e.get("task") == t))
    unacked_runs = sum(1 for t, r in runs.items() if t not in {x["task"] for x in acked})

    # 2. server kills <-> ev=server-exit records.
    recs = {}
    for e in exits:
        if e.get("ev") == "server-exit":
            recs.setdefault(int(e.get("server_pid") or 0), []).append(e)
    server_kills = [k for k in s.kills if k["kind"] == "server" and not k.get("missed")]
    killed = {k["pid"] for k in server_kills}
    unwatched_rec = unwatched_gone = unwatched_lost = intent_kills = 0
    for k in server_kills:
        n = len(recs.get(k["pid"], []))
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
    for pid, es in recs.items():
        if pid not in killed:
            v.append(f"ev=server-exit for server {pid} ({es[0].get('identity')}) that the chaos "
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
        if len(canaries) != want or len(waits) != want:
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

    # 4. FIFO: per peer, first runs in sequence order.
    inversions = 0
    for i in EPHEMERAL:
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
    send_ms = [(x["t1"] - x["t0"]) * 1000 for x in s.sends if x["rc"] == 0]
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
          f"runner killed before the ack (allowed): {len(window)}; tasks run whose send was not "
          f"acknowledged (sender killed): {unacked_runs}")
    print(f"events: task-start {count('task-start')}, task-done {count('task-done')}, "
          f"task-retry {count('task-retry')}, task-dead {count('task-dead')}, restart {restarts}, "
          f"gone {count('gone')}, hung {count('hung')}, runner-error {count('runner-error')}, "
          f"handover-error {count('handover-error')}, session-exit "
          f"{sum(1 for e in exits if e.get('ev') == 'session-exit')}")
    print("chaos (hit/no target): " + ", ".join(f"{k} {d[0]}/{d[1]}" for k, d in sorted(by_kind.items())))
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
    print(f"clean --dry-run: {tmp_files} abandoned tmp/ file(s) (senders killed mid-write)")
    print(f"FIFO inversions: {inversions}")
    pfails = [x for x in s.psends if x["rc"] not in (0, -9)]
    if pfails:
        print(f"failed sends to p-echo (not killed by the chaos): {len(pfails)}, e.g.")
        for x in pfails[:3]:
            print(f"   rc={x['rc']}: {x['err'][-200:]}")
    fails = [x for x in s.sends if x["rc"] not in (0, -9)]
    if fails:
        print(f"failed sends (not killed by the chaos): {len(fails)}, e.g.")
        for x in fails[:5]:
            print(f"   {x['peer']} rc={x['rc']}: {x['err'][-200:]}")
    print(f"\nVIOLATIONS: {len(v)}")
    for x in v:
        print(f" - {x}")
    return 1 if v else 0


if __name__ == "__main__":
    main()
