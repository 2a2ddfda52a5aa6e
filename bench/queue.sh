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
WORK="$(mktemp -d /tmp/mvb.XXXXXX)"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$MV" "$WORK" "$N" "$OUT" <<'PY'
import json, os, platform, shutil, statistics, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

mv, work, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
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

# The peer, written as the spec file `muxvisor add` writes (independent of add).
os.makedirs(os.path.join(root, "peers"), mode=0o700, exist_ok=True)
os.chmod(root, 0o700)
spec = {"identity": "w", "policy": "ephemeral", "command": ["/bin/true"], "cwd": "/tmp",
        "env": {}, "restart": "on-failure", "backoff": "1s", "max_backoff": "5m",
        "restart_burst": 5, "restart_window": "10m", "max_attempts": 3, "task_ttl": "1d",
        "task_timeout": "1h", "deliver": "argv"}
with open(os.path.join(root, "peers", "w.json"), "w") as f:
    json.dump(spec, f)
os.chmod(os.path.join(root, "peers", "w.json"), 0o600)

send = [mv, "--root", root, "send", "w", "bench task", "--no-kick"]
def task_of(stdout):
    return stdout.strip().rsplit(" ", 1)[-1]

def depth():
    return len(json.loads(run([mv, "--root", root, "--json", "queue", "w", "list"], capture=True))["pending"])

def send_at_current_depth(k):
    """k timed sends, each removed again (untimed) so the depth stays put."""
    xs = []
    for _ in range(k):
        ms, so = timed(send)
        xs.append(ms)
        run([mv, "--root", root, "queue", "w", "rm", task_of(so)])
    return xs

def fill(to):
    have = depth()
    need = to - have
    if need <= 0:
        return 0.0, 0
    per = [need // 8 + (1 if i < need % 8 else 0) for i in range(8)]
    def sender(k):
        for _ in range(k):
            run(send)
    t = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(sender, per))
    return time.perf_counter() - t, need

results = {}
results["/bin/true"] = med([timed(["/bin/true"])[0] for _ in range(n)])
results["muxvisor --version (no queue work)"] = med([timed([mv, "--version"])[0] for _ in range(n)])
run(send)  # warm the page cache and create the queue
run([mv, "--root", root, "queue", "w", "purge"])
results["muxvisor send (depth 0)"] = med(send_at_current_depth(n))
fill(1000)
assert depth() == 1000
results["muxvisor send (depth 1,000)"] = med(send_at_current_depth(n))
secs, count = fill(10000)
throughput = count / secs
assert depth() == 10000
results["muxvisor send (depth 10,000)"] = med(send_at_current_depth(n))

# nq: NQDIR holds one lock file per job; the job (/bin/true) runs at once.
nqdir = os.path.join(work, "nq"); os.makedirs(nqdir)
env = dict(os.environ, NQDIR=nqdir)
results["nq /bin/true"] = med([timed(["nq", "-q", "/bin/true"], env=env)[0] for _ in range(n)])

# tsp: one server per socket, started by the first call (untimed).
tenv = dict(os.environ, TS_SOCKET=os.path.join(work, "tsp.sock"), TMPDIR=work)
run(["tsp", "/bin/true"], env=tenv)
results["tsp /bin/true"] = med([timed(["tsp", "/bin/true"], env=tenv)[0] for _ in range(n)])
subprocess.run(["tsp", "-K"], env=tenv, stdout=DEV, stderr=DEV)

# pueue: its own daemon, config, data and socket under the work dir.
penv = dict(os.environ, XDG_CONFIG_HOME=os.path.join(work, "pc"),
            XDG_DATA_HOME=os.path.join(work, "pd"), XDG_RUNTIME_DIR=os.path.join(work, "pr"))
for d in ("pc", "pd", "pr"):
    os.makedirs(os.path.join(work, d), mode=0o700)
if shutil.which("pueued") and shutil.which("pueue"):
    daemon = subprocess.Popen(["pueued"], env=penv, stdout=DEV, stderr=DEV)
    ok = False
    for _ in range(200):
        if subprocess.run(["pueue", "status"], env=penv, stdout=DEV, stderr=DEV).returncode == 0:
            ok = True
            break
        time.sleep(0.05)
    if ok:
        results["pueue add /bin/true"] = med(
            [timed(["pueue", "add", "--", "/bin/true"], env=penv)[0] for _ in range(n)])
    daemon.terminate()
    try:
        daemon.wait(10)
    except subprocess.TimeoutExpired:
        daemon.kill()
else:
    results["pueue add /bin/true"] = None

fs = subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
cmd = f"bench/queue.sh {n}"
with open(out, "w") as f:
    f.write("## Queue: `muxvisor send` latency and throughput\n\n")
    f.write(f"Command: `{cmd}` (release build; {n} calls per row, median; all rows from the "
            f"same run). Machine: {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, filesystem {fs}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")
    f.write("| what | median ms per call |\n|---|---:|\n")
    for k, v in results.items():
        f.write(f"| {k} | {'n/a (pueue not installed)' if v is None else f'{v:.2f}'} |\n")
    f.write(f"\nThroughput, 8 concurrent `muxvisor send --no-kick` processes (depth 1,000 -> "
            f"10,000): **{throughput:.0f} tasks/s** ({count} tasks in {secs:.2f} s).\n\n")
    f.write("Notes: every `muxvisor send` above is durable before it returns (task file, "
            "counter and both directories fsynced); the depth stays fixed during a row "
            "because each timed task is removed again, untimed. nq creates a lock file and "
            "forks the job without fsync; tsp and pueue hand the job to a daemon that keeps "
            "the queue in memory (pueue saves its state file without fsync). /bin/true is "
            "the cost of spawning any process here.\n")
print(open(out).read())
PY
