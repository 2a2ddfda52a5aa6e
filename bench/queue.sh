#!/usr/bin/env bash
# Queue benchmarks for BENCHMARKS.md (issue #3): latency of one durable
# `muxvisor send --no-kick` with 0, 1,000 and 10,000 tasks already queued,
# next to nq, tsp (task-spooler) and `pueue add` enqueueing a trivial job,
# and /bin/true as the floor of a process spawn; then the throughput of 8
# concurrent senders. Everything in the same run; medians of N calls.
#
#   bench/queue.sh [N]        (default N=200; writes bench/QUEUE-RESULTS.md)
#
# Installs nq and task-spooler with apt-get and pueue with `cargo install`
# only if they are missing (BENCH_NO_INSTALL=1 skips pueue's install). Works in its own temp directory; the tsp and
# pueue daemons it starts are stopped by pid/socket at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
OUT="bench/QUEUE-RESULTS.md"

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v nq >/dev/null || ! command -v tsp >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nq task-spooler >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
if [ -z "${BENCH_NO_INSTALL:-}" ] && { ! command -v pueue >/dev/null || ! command -v pueued >/dev/null; }; then
  cargo install --locked pueue
fi

cargo build --release --quiet
MV="$PWD/target/release/muxvisor"
# The same code linked statically and without PIE (glibc): the build a packager
# can choose. Its own target directory; BENCH_NO_STATIC=1 skips it.
MVS=""
if [ -z "${BENCH_NO_STATIC:-}" ] && [ "$(uname -s)" = Linux ]; then
  HOST="$(rustc -vV | sed -n 's/^host: //p')"
  if RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release --quiet \
      --target "$HOST" --target-dir target/bench-static; then
    MVS="$PWD/target/bench-static/$HOST/release/muxvisor"
  fi
fi
WORK="$(mktemp -d /tmp/mvb.XXXXXX)"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
# The floor: bench/floor.c does only the disk work of a durable enqueue.
cc -O2 -o "$WORK/floor" bench/floor.c
# BENCH_BASE=<another muxvisor binary> adds its send as a row: a same-run
# comparison with an earlier build.
BASE="${BENCH_BASE:-}"

python3 - "$MV" "$WORK" "$N" "$OUT" "$MVS" "$BASE" <<'PY'
import json, os, platform, random, shutil, statistics, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor

mv, work, n, out, mvs, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
DEV = subprocess.DEVNULL
root = os.path.join(work, "r")

def run(cmd, env=None, capture=False):
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else DEV, stderr=subprocess.PIPE,
                       env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"bench: {cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode() if capture else ""

def timed(cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=DEV, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"bench: {cmd} failed ({r.returncode})")
    return dt * 1000, r.stdout.decode()

def med(xs):
    return statistics.median(xs)

# Peers written as the spec file `muxvisor add` writes (independent of add):
# w0 stays empty, w1k holds 1,000 tasks, w10k holds 10,000.
os.makedirs(os.path.join(root, "peers"), mode=0o700, exist_ok=True)
os.chmod(root, 0o700)
for ident in ("w0", "w1k", "w10k"):
    spec = {"identity": ident, "policy": "ephemeral", "command": ["/bin/true"], "cwd": "/tmp",
            "env": {}, "restart": "on-failure", "backoff": "1s", "max_backoff": "5m",
            "restart_burst": 5, "restart_window": "10m", "max_attempts": 3, "task_ttl": "1d",
            "task_timeout": "1h", "deliver": "argv"}
    path = os.path.join(root, "peers", ident + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    os.chmod(path, 0o600)

# The same empty peer under a root on tmpfs, where fsync returns at once:
# a send there is the whole path minus the waits for the disk.
shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
shm_work = tempfile.mkdtemp(prefix="mvb", dir=shm) if shm else None
shm_root = os.path.join(shm_work, "r") if shm else None
if shm:
    os.makedirs(os.path.join(shm_root, "peers"), mode=0o700)
    os.chmod(shm_root, 0o700)
    shutil.copy(os.path.join(root, "peers", "w0.json"), os.path.join(shm_root, "peers", "w0.json"))
    os.chmod(os.path.join(shm_root, "peers", "w0.json"), 0o600)

def send(ident, at=None, exe=None):
    return [exe or mv, "--root", at or root, "send", ident, "bench task", "--no-kick"]

def depth(ident):
    out = run([mv, "--root", root, "--json", "queue", ident, "list"], capture=True)
    return len(json.loads(out)["pending"])

def fill(ident, need):
    """need tasks from 8 concurrent senders; returns seconds."""
    per = [need // 8 + (1 if i < need % 8 else 0) for i in range(8)]
    def sender(k):
        for _ in range(k):
            run(send(ident))
    t = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(sender, per))
    return time.perf_counter() - t

fill("w1k", 1000)
secs = fill("w10k", 10000)
count = 10000
throughput = count / secs
run(send("w0"))
run([mv, "--root", root, "queue", "w0", "purge"])
assert (depth("w0"), depth("w1k"), depth("w10k")) == (0, 1000, 10000)

nqdir = os.path.join(work, "nq"); os.makedirs(nqdir)
floordir = os.path.join(work, "floor.d")
for d in ("tmp", "new"):
    os.makedirs(os.path.join(floordir, d), mode=0o700)
nenv = dict(os.environ, NQDIR=nqdir)
tenv = dict(os.environ, TS_SOCKET=os.path.join(work, "tsp.sock"), TMPDIR=work)
run(["tsp", "/bin/true"], env=tenv)  # starts its server, untimed
penv = dict(os.environ, XDG_CONFIG_HOME=os.path.join(work, "pc"),
            XDG_DATA_HOME=os.path.join(work, "pd"), XDG_RUNTIME_DIR=os.path.join(work, "pr"))
for d in ("pc", "pd", "pr"):
    os.makedirs(os.path.join(work, d), mode=0o700)
daemon = None
if shutil.which("pueued") and shutil.which("pueue"):
    daemon = subprocess.Popen(["pueued"], env=penv, stdout=DEV, stderr=DEV)
    for _ in range(200):
        if subprocess.run(["pueue", "status"], env=penv, stdout=DEV, stderr=DEV).returncode == 0:
            break
        time.sleep(0.05)
    else:
        daemon.terminate()
        daemon = None

# Rows are measured interleaved, in a shuffled order each round, so that
# load from anything else on the machine falls on all of them alike.
rows = {
    "/bin/true": (["/bin/true"], None, None),
    "muxvisor --version (start-up only)": ([mv, "--version"], None, None),
    "muxvisor send (depth 0)": (send("w0"), None, "w0"),
    "muxvisor send (depth 1,000)": (send("w1k"), None, "w1k"),
    "muxvisor send (depth 10,000)": (send("w10k"), None, "w10k"),
    "nq /bin/true": (["nq", "-q", "/bin/true"], nenv, None),
    "tsp /bin/true": (["tsp", "/bin/true"], tenv, None),
    "floor: C, a send's disk work only (file, fdatasync, rename, fsync of new/)":
        ([os.path.join(work, "floor"), "two", floordir], None, "floor"),
    "floor: C, one append + fdatasync (the least a durable enqueue can do)":
        ([os.path.join(work, "floor"), "append", os.path.join(floordir, "log")], None, None),
}
if base:
    rows["muxvisor send (depth 0), the BENCH_BASE build"] = (send("w0", exe=base), None, "w0")
if shm:
    rows["muxvisor send (depth 0, root on tmpfs: no disk waits)"] = (send("w0", shm_root), None, "w0@shm")
if mvs:
    rows["muxvisor send (depth 0), static build (no PIE)"] = (send("w0", exe=mvs), None, "w0")
    if shm:
        rows["muxvisor send (depth 0, root on tmpfs), static build (no PIE)"] = (
            send("w0", shm_root, mvs), None, "w0@shm")
if daemon is not None:
    rows["pueue add /bin/true"] = (["pueue", "add", "--", "/bin/true"], penv, None)
samples = {k: [] for k in rows}
rnd = random.Random(42)
try:
    for _ in range(n):
        order = list(rows)
        rnd.shuffle(order)
        for k in order:
            cmd, env, ident = rows[k]
            ms, so = timed(cmd, env=env)
            samples[k].append(ms)
            if ident == "floor":  # as for the sends: remove it again, untimed
                os.unlink(so.strip())
            elif ident:  # keep the depth fixed: remove the task again, untimed
                at = shm_root if ident.endswith("@shm") else root
                run([mv, "--root", at, "queue", ident.split("@")[0], "rm", so.strip().rsplit(" ", 1)[-1]])
finally:
    if shm:
        shutil.rmtree(shm_work, ignore_errors=True)
    subprocess.run(["tsp", "-K"], env=tenv, stdout=DEV, stderr=DEV)
    if daemon is not None:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
results = {k: med(v) for k, v in samples.items()}
if daemon is None:
    results["pueue add /bin/true"] = None
assert (depth("w0"), depth("w1k"), depth("w10k")) == (0, 1000, 10000)

# Where a send's time goes: n more sends to the empty peer with
# MUXVISOR_TRACE, each step's wall clock noted by the process itself
# between our own clock readings before the spawn and after the reap.
STEPS = [("spawn", "main", "fork, exec, dynamic loading (libc only; std's runtime start-up is skipped)"),
         ("main", "parsed", "command line parsed (clap, the send-only tree)"),
         ("parsed", "root", "root opened: owner, mode and symlink checks of its directories"),
         ("root", "spec", "peer spec read and parsed (JSON)"),
         ("spec", "opened", "payload checks; queue directories checked"),
         ("opened", "locked", "queue lock taken, counter read"),
         ("locked", "written", "task id, header encoded, appended to the inbox"),
         ("written", "file-synced", "fdatasync of the inbox (disk)"),
         ("file-synced", "published", "counter written (the task published)"),
         ("published", "logged", "ev=enqueue appended to lifecycle.log"),
         ("logged", "printed", "lock released, answer printed"),
         ("printed", "kicked", "program checked on the peer's PATH"),
         ("kicked", "reaped", "exit, process teardown, reaped by the caller")]
tracefile = os.path.join(work, "send-trace")
trenv = dict(os.environ, MUXVISOR_TRACE=tracefile)
spans = []
for _ in range(n):
    before = time.time_ns()
    r = subprocess.run(send("w0"), stdout=subprocess.PIPE, stderr=DEV, env=trenv)
    after = time.time_ns()
    if r.returncode != 0:
        sys.exit("bench: traced send failed")
    run([mv, "--root", root, "queue", "w0", "rm", r.stdout.decode().strip().rsplit(" ", 1)[-1]])
    spans.append((before, after))
marks = []
with open(tracefile) as fh:
    for line in fh:
        if line.startswith("send "):
            marks.append(dict((k, int(v)) for k, v in (p.split("=") for p in line.split()[1:])))
assert len(marks) == len(spans), (len(marks), len(spans))
breakdown = []
for a, b, what in STEPS:
    xs = []
    for (before, after), m in zip(spans, marks):
        m = dict(m, spawn=before, reaped=after)
        xs.append((m[b] - m[a]) / 1e6)
    breakdown.append((f"{a} → {b}", what, med(xs)))
total = med([(after - before) / 1e6 for before, after in spans])

fs = subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
cmd = f"bench/queue.sh {n}"
with open(out, "w") as f:
    f.write("## Queue: `muxvisor send` latency and throughput\n\n")
    f.write(f"Command: `{cmd}` (release build; {n} calls per row, median; all rows from the "
            f"same run, interleaved in shuffled order). Machine: {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, filesystem {fs}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")
    f.write("| what | median ms per call |\n|---|---:|\n")
    for k, v in results.items():
        f.write(f"| {k} | {'n/a (pueue not installed)' if v is None else f'{v:.2f}'} |\n")
    f.write(f"\nThroughput, 8 concurrent `muxvisor send --no-kick` processes (filling "
            f"an empty queue to 10,000): **{throughput:.0f} tasks/s** ({count} tasks in {secs:.2f} s).\n\n")
    f.write("Notes: every `muxvisor send` above is durable before it returns (the task file "
            "appended to the queue's inbox and fdatasynced; see src/model/queue/inbox.rs for why that is enough); the depth stays fixed during a row "
            "because each timed task is removed again, untimed. nq returns as soon as it has "
            "forked: its child publishes the job (rename, then fsync of the directory) after "
            "nq has exited, so an nq exit does not mean the job is on disk. tsp and pueue "
            "hand the job to a daemon that keeps the queue in memory (pueue saves its state "
            "file without fsync). /bin/true is the cost of spawning any process here; "
            "`muxvisor --version` is muxvisor's own start-up, so the durable enqueue itself "
            "costs the difference between the send rows and that row. The two floor rows are "
            "bench/floor.c, a C program that does only the disk work: the first the same "
            "work as a send (create, write, fdatasync, rename, fsync of new/; the file removed "
            "again after each call, as the sends' are), the second one append with one "
            "fdatasync, the least any enqueue that is durable when it answers can do. Neither "
            "nq nor tsp waits for the disk before it answers.\n")
    f.write(f"\nWhere one durable send's time goes ({n} more sends to the empty peer with "
            f"`MUXVISOR_TRACE`; each step's median, ms; the process notes the wall clock at "
            f"each step, the benchmark before the spawn and after the reap; medians of steps "
            f"do not add up exactly to the median total, {total:.2f} ms):\n\n")
    f.write("| step | what | median ms |\n|---|---|---:|\n")
    for step, what, v in breakdown:
        f.write(f"| {step} | {what} | {v:.3f} |\n")
print(open(out).read())
PY
