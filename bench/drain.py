#!/usr/bin/env python3
"""Drain benchmark for muxvisor (SPEC section 7): how long a burst of N
trivial tasks takes from the first send to the last acknowledgement, next
to nq (N x `nq -q true`, then `nq -w`) and tsp (N x `tsp true`, then
`tsp -w`), all measured in the same run, interleaved; then, from the
runner's own trace (MUXVISOR_TRACE), where each task's time goes; and the
latency from a program's exit to the durable record of its end.

Also the --no-kick variant: N x `send --no-kick` (durable only, no runner
started), then one `supervise --once` (the tick) starts the drain; timed
from the first send to the last acknowledgement, and from the tick alone.

Usage: python3 bench/drain.py [--tasks N] [--runs R] [--out FILE] [--bin PATH]
(builds the release binary first unless --bin names one; installs nq and
task-spooler with apt-get if they are missing). Uses private directories under /tmp and tears down
only what it started: the muxvisor servers by socket (`muxvisor stop`), the
tsp server with `tsp -K` on its own socket."""

import argparse, os, platform, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEV = subprocess.DEVNULL


def run(argv, env=None):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        sys.exit(f"bench: {argv} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def count_done(log):
    try:
        with open(log, "rb") as f:
            return f.read().count(b" ev=task-done ")
    except FileNotFoundError:
        return 0


def wait_for(cond, limit=120.0):
    t = time.monotonic() + limit
    while not cond():
        if time.monotonic() > t:
            sys.exit("bench: timed out waiting")
        time.sleep(0.0005)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "DRAIN-RESULTS.md"))
    ap.add_argument("--bin", help="a muxvisor binary to time instead of building one")
    a = ap.parse_args()
    n, runs = a.tasks, a.runs
    if not shutil.which("nq") or not shutil.which("tsp"):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "nq", "task-spooler"],
                       check=True, stdout=DEV, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if a.bin:
        mv = os.path.abspath(a.bin)
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        mv = os.path.join(REPO, "target", "release", "muxvisor")
    work = tempfile.mkdtemp(prefix="mvd", dir="/tmp")
    base = dict(os.environ)
    base.pop("TMUX", None)
    roots = []

    def mux_run(k, program, trace=None):
        """One drain: n sends (each kicks) until the nth ack. Seconds."""
        root = os.path.join(work, f"r{k}")
        roots.append(root)
        env = dict(base, MUXVISOR_ROOT=root)
        if trace:
            env["MUXVISOR_TRACE"] = trace
        run([mv, "add", "w", "--ephemeral", "--cwd", work, "--"] + program, env=env)
        log = os.path.join(root, "logs", "lifecycle.log")
        t = time.perf_counter()
        for i in range(n):
            run([mv, "send", "w", f"task {i}"], env=env)
        wait_for(lambda: count_done(log) >= n)
        dt = time.perf_counter() - t
        subprocess.run([mv, "stop", "w", "--grace", "1s"], env=env, stdout=DEV, stderr=DEV)
        return dt

    def mux_nokick_run(k):
        """n sends with --no-kick, then the tick: (from the first send, from
        the tick) to the nth ack, seconds."""
        root = os.path.join(work, f"q{k}")
        roots.append(root)
        env = dict(base, MUXVISOR_ROOT=root)
        run([mv, "add", "w", "--ephemeral", "--cwd", work, "--", "true"], env=env)
        log = os.path.join(root, "logs", "lifecycle.log")
        t = time.perf_counter()
        for i in range(n):
            run([mv, "send", "w", f"task {i}", "--no-kick"], env=env)
        t_tick = time.perf_counter()
        run([mv, "supervise", "--once"], env=env)
        wait_for(lambda: count_done(log) >= n)
        end = time.perf_counter()
        subprocess.run([mv, "stop", "w", "--grace", "1s"], env=env, stdout=DEV, stderr=DEV)
        return end - t, end - t_tick

    def nq_run(k):
        d = os.path.join(work, f"nq{k}")
        os.makedirs(d)
        env = dict(base, NQDIR=d)
        t = time.perf_counter()
        for _ in range(n):
            run(["nq", "-q", "true"], env=env)
        run(["nq", "-w"], env=env)
        return time.perf_counter() - t

    def tsp_run(k):
        env = dict(base, TS_SOCKET=os.path.join(work, f"tsp{k}.sock"), TMPDIR=work)
        try:
            t = time.perf_counter()
            for _ in range(n):
                run(["tsp", "true"], env=env)
            run(["tsp", "-w"], env=env)
            return time.perf_counter() - t
        finally:
            subprocess.run(["tsp", "-K"], env=env, stdout=DEV, stderr=DEV)

    trace = os.path.join(work, "trace")
    samples = {"muxvisor": [], "nq": [], "tsp": []}
    nokick, nokick_drain = [], []
    try:
        for k in range(runs):
            samples["muxvisor"].append(mux_run(k, ["true"], trace=trace))
            samples["nq"].append(nq_run(k))
            samples["tsp"].append(tsp_run(k))
            whole, drain = mux_nokick_run(k)
            nokick.append(whole)
            nokick_drain.append(drain)
        # Exit -> durable record: each program stamps the wall clock as its
        # very last act (exec'd date), the runner traces its commit.
        stamps = os.path.join(work, "stamps")
        trace2 = os.path.join(work, "trace2")
        mux_run(runs, ["sh", "-c", f"exec date +%s%N >> {stamps}"], trace=trace2)
    finally:
        for r in roots:
            subprocess.run([mv, "--root", r, "stop", "w", "--grace", "1s"], stdout=DEV, stderr=DEV)

    med = {k: statistics.median(v) for k, v in samples.items()}
    fields = ["claim_us", "start_us", "run_us", "commit_us", "outcome_us"]
    per = {f: [] for f in fields}
    with open(trace) as f:
        for line in f:
            if not line.startswith("task="):
                continue  # the senders' own step lines
            kv = dict(p.split("=", 1) for p in line.split())
            for fld in fields:
                per[fld].append(int(kv[fld]))
    stamp_ns = [int(x) for x in open(stamps).read().split()]
    rec = [dict(p.split("=", 1) for p in l.split()) for l in open(trace2) if l.startswith("task=")]
    to_exit = [(int(r["exit_wall_ns"]) - s) / 1e6 for r, s in zip(rec, stamp_ns)]
    to_commit = [(int(r["commit_wall_ns"]) - s) / 1e6 for r, s in zip(rec, stamp_ns)]

    fs = subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        f.write("## Drain: a burst of trivial tasks, first send to last ack\n\n")
        f.write(f"Command: `python3 bench/drain.py --tasks {n} --runs {runs}` (release build; "
                f"{runs} runs of each, interleaved, median). Machine: {os.cpu_count()} cores, "
                f"{platform.system()} {platform.release()}, filesystem {fs}, "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")
        f.write(f"| {n} tasks | median s | per task ms | vs nq |\n|---|---:|---:|---:|\n")
        for k in ("muxvisor", "nq", "tsp"):
            f.write(f"| {k} | {med[k]:.3f} | {med[k] / n * 1000:.2f} | {med[k] / med['nq']:.2f}x |\n")
        nk, nkd = statistics.median(nokick), statistics.median(nokick_drain)
        f.write(f"| muxvisor, {n} x `send --no-kick`, then `supervise --once` | {nk:.3f} | "
                f"{nk / n * 1000:.2f} | {nk / med['nq']:.2f}x |\n")
        f.write(f"| the same, from `supervise --once` to the last ack | {nkd:.3f} | "
                f"{nkd / n * 1000:.2f} | {nkd / med['nq']:.2f}x |\n")
        f.write("\nmuxvisor: `send` (durable, then a kick) N times back to back to an ephemeral "
                "peer running `true`, until the Nth `ev=task-done`; the first send starts a "
                "runner (a tmux server with a canary), which then claims, runs and acknowledges "
                "every task itself. nq: N x `nq -q true`, then `nq -w`. tsp: N x `tsp true`, then "
                "`tsp -w`.\n\n")
        f.write(f"Where each task's time goes in the runner ({len(per['claim_us'])} tasks, from "
                "`MUXVISOR_TRACE`):\n\n| step | median us | p99 us |\n|---|---:|---:|\n")
        names = {
            "claim_us": "claim (queue lock, the head moved into cur/, nothing synced yet)",
            "start_us": "start (payload file, program check, fork/exec; while the program starts, the previous ack's done/ synced, which is also this claim's one sync; ev=task-start)",
            "run_us": "the program itself (`true`)",
            "commit_us": "commit (ev=session-exit, rename into done/, ev=task-done; done/ is synced once the next program has started)",
            "outcome_us": "outcome (screen's last lines through the runner's tmux control client, outcome file)",
        }
        for fld in fields:
            f.write(f"| {names[fld]} | {statistics.median(per[fld]):.0f} | {pct(per[fld], 99):.0f} |\n")
        f.write(f"\nExit to record ({len(to_commit)} tasks; each program's last act stamps the "
                "wall clock):\n\n| | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n")
        for label, xs in (("exit seen by the runner (waitpid returns)", to_exit),
                          ("end recorded (renamed into done/; synced once the next program has started)", to_commit)):
            f.write(f"| {label} | {pct(xs, 50):.3f} | {pct(xs, 99):.3f} | {max(xs):.3f} |\n")
    print(open(a.out).read())


if __name__ == "__main__":
    main()
