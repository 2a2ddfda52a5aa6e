#!/usr/bin/env python3
"""Parallel workers benchmark for muxvisor (issue 22, SPEC section 10):
how long `--workers N` takes to drain a burst of tasks of `sleep 0.2`,
from the first send to the last acknowledgement, next to the ideal
tasks x 0.2 s / N. The target is at most 1.3 x the ideal.

Usage: python3 bench/workers.py [--tasks 100] [--workers 4] [--sleep 0.2]
[--runs 3] (builds the release binary first). Each run uses a private root
under /tmp and ends only what it started (`muxvisor stop` on its own root).
Prints one line per run and a summary line with the median and its ratio."""

import argparse, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEV = subprocess.DEVNULL


def run(argv, env):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        sys.exit(f"bench: {argv} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def count(log, ev):
    try:
        with open(log, "rb") as f:
            return f.read().count(f" ev={ev} ".encode())
    except FileNotFoundError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--sleep", default="0.2")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    mv = os.path.join(target, "release", "muxvisor")
    ideal = a.tasks * float(a.sleep) / a.workers
    samples, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="mvwb", dir="/tmp") as work:
        for k in range(a.runs):
            root = os.path.join(work, f"r{k}")
            env = dict(os.environ, MUXVISOR_ROOT=root)
            run([mv, "add", "w", "--ephemeral", "--workers", str(a.workers), "--cwd", work,
                 "--", "sleep", a.sleep], env)
            log = os.path.join(root, "logs", "lifecycle.log")
            try:
                t0 = time.monotonic()
                for i in range(a.tasks):
                    run([mv, "send", "w", f"task {i}"], env)
                peak = 0
                deadline = t0 + 10 * ideal + 60
                while count(log, "task-done") < a.tasks:
                    if time.monotonic() > deadline:
                        sys.exit(f"bench: run {k} timed out")
                    running = len(os.listdir(os.path.join(root, "queues", "w", "cur")))
                    peak = max(peak, running)
                    time.sleep(0.002)
                took = time.monotonic() - t0
            finally:
                subprocess.run([mv, "stop", "w", "--grace", "1s"], env=env, stdout=DEV, stderr=DEV)
            retries = count(log, "task-retry")
            samples.append(took)
            peaks.append(peak)
            print(f"run {k + 1}: {a.tasks} x sleep {a.sleep} with --workers {a.workers}: "
                  f"{took:.2f} s ({took / ideal:.2f}x the ideal {ideal:.2f} s), "
                  f"most running at once {peak}, retries {retries}")
    med = statistics.median(samples)
    print(f"median {med:.2f} s over {a.runs} runs = {med / ideal:.2f}x "
          f"({a.tasks} x {a.sleep} s / {a.workers} = {ideal:.2f} s; target <= 1.3x)")


if __name__ == "__main__":
    main()
