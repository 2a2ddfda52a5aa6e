#!/usr/bin/env python3
"""Same-run A/B of the drain (issue 21): two or more muxvisor builds and nq,
interleaved in a shuffled order each round, each timing a burst of N plain
`send`s (each kicks) to an ephemeral `true` peer until the Nth
`ev=task-done`, and nq's N x `nq -q true` then `nq -w`. Prints the median
of each and its ratio to nq's median, so that a change is judged against a
baseline measured in the same minutes on the same (noisy) machine.

Also, with --cpu, the CPU time a runner spends per task (its own and its
children's, from /proc/<pid>/stat), over 200 tasks queued to a live
runner, for each build.

Usage: python3 bench/drain_ab.py [--runs R] [--tasks N] [--cpu] NAME=BINARY ...
(installs nothing; needs nq and tmux). Private roots under /tmp; tears down
only what it started, by `muxvisor stop` on its own root."""

import argparse, os, random, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drain import count_done, wait_for  # noqa: E402  (the drain bench's own helpers)

DEV = subprocess.DEVNULL


def env_for(root):
    env = dict(os.environ, MUXVISOR_ROOT=root)
    env.pop("TMUX", None)
    return env


def mux_burst(mv, root, n):
    env = env_for(root)
    subprocess.run([mv, "add", "w", "--ephemeral", "--cwd", "/tmp", "--", "true"],
                   env=env, check=True, stdout=DEV)
    log = os.path.join(root, "logs", "lifecycle.log")
    t = time.perf_counter()
    for i in range(n):
        subprocess.run([mv, "send", "w", f"t{i}"], env=env, check=True, stdout=DEV)
    wait_for(lambda: count_done(log) >= n)
    dt = time.perf_counter() - t
    subprocess.run([mv, "stop", "w", "--grace", "1s"], env=env, stdout=DEV, stderr=DEV)
    return dt


def nq_burst(d, n):
    os.makedirs(d)
    env = dict(os.environ, NQDIR=d)
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(["nq", "-q", "true"], env=env, check=True)
    subprocess.run(["nq", "-w"], env=env, check=True, stdout=DEV)
    return time.perf_counter() - t


def runner_cpu(mv, root, n=200):
    """CPU ms per task of a live runner (with its children) over n tasks."""
    env = env_for(root)
    subprocess.run([mv, "add", "w", "--ephemeral", "--cwd", "/tmp", "--linger", "60s", "--",
                    "true"], env=env, check=True, stdout=DEV)
    subprocess.run([mv, "send", "w", "first"], env=env, check=True, stdout=DEV)
    log = os.path.join(root, "logs", "lifecycle.log")
    wait_for(lambda: count_done(log) >= 1)
    panes = subprocess.run(["tmux", "-S", os.path.join(root, "run", "w.sock"), "list-panes",
                            "-a", "-F", "#{pane_pid}"], capture_output=True, text=True).stdout
    pid = int(panes.split()[0])

    def cpu():
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")

    c0 = cpu()
    for i in range(n):
        subprocess.run([mv, "send", "w", f"t{i}", "--no-kick"], env=env, check=True, stdout=DEV)
    wait_for(lambda: count_done(log) >= n + 1)
    c1 = cpu()
    subprocess.run([mv, "stop", "w", "--grace", "1s"], env=env, stdout=DEV, stderr=DEV)
    return (c1 - c0) / n * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("builds", nargs="+", help="NAME=BINARY")
    a = ap.parse_args()
    builds = dict(b.split("=", 1) for b in a.builds)
    work = tempfile.mkdtemp(prefix="mvab", dir="/tmp")
    res = {k: [] for k in builds}
    res["nq"] = []
    try:
        for r in range(a.runs):
            order = list(res)
            random.shuffle(order)
            for k in order:
                if k == "nq":
                    res[k].append(nq_burst(os.path.join(work, f"nq{r}"), a.tasks))
                else:
                    res[k].append(mux_burst(os.path.abspath(builds[k]),
                                            os.path.join(work, f"{k}{r}"), a.tasks))
        nq = statistics.median(res["nq"])
        print(f"{a.tasks} sends until the last ran, {a.runs} rounds, shuffled order "
              f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}):")
        for k, v in res.items():
            m = statistics.median(v)
            print(f"  {k:10s} median {m:.3f} s  min {min(v):.3f}  max {max(v):.3f}  "
                  f"vs nq {m / nq:.2f}x")
        if a.cpu:
            for k, b in builds.items():
                ms = [runner_cpu(os.path.abspath(b), os.path.join(work, f"cpu-{k}-{i}"))
                      for i in range(3)]
                print(f"  {k:10s} runner CPU per task (with its program): "
                      f"{statistics.median(ms):.2f} ms (3 runs: "
                      + ", ".join(f"{x:.2f}" for x in ms) + ")")
    finally:
        for d in os.listdir(work):
            root = os.path.join(work, d)
            if os.path.isdir(os.path.join(root, "run")):
                b = next(iter(builds.values()))
                subprocess.run([os.path.abspath(b), "--root", root, "stop", "w", "--grace", "1s"],
                               stdout=DEV, stderr=DEV)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
