#!/usr/bin/env python3
"""Where a `send`'s time goes inside a kick drain (issue 21): N plain
`send`s (each kicks) to an ephemeral `true` peer, one after another as in
bench/drain.py, each with MUXVISOR_TRACE, until the Nth `ev=task-done`;
then each step's median and 90th percentile, from the benchmark's clock
before the spawn and after the reap and the process's own marks between.
Compare with the same steps of a lone send (bench/queue.sh's trace table)
to see what the runner working beside the sends costs them.

Usage: python3 bench/drain_steps.py [--tasks N] [--bin BINARY]
(default: target/release/muxvisor, which it does not build). A private
root under /tmp; stops only its own peer."""

import argparse, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from drain import count_done, wait_for  # noqa: E402  (the drain bench's own helpers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(HERE), "target", "release", "muxvisor"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mvds", dir="/tmp")
    root, tf = os.path.join(work, "r"), os.path.join(work, "trace")
    env = dict(os.environ, MUXVISOR_ROOT=root, MUXVISOR_TRACE=tf)
    env.pop("TMUX", None)
    subprocess.run([a.bin, "add", "w", "--ephemeral", "--cwd", "/tmp", "--", "true"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    log = os.path.join(root, "logs", "lifecycle.log")
    spans = []
    t = time.perf_counter()
    try:
        for i in range(a.tasks):
            before = time.time_ns()
            subprocess.run([a.bin, "send", "w", f"t{i}"], env=env, check=True, stdout=subprocess.DEVNULL)
            spans.append((before, time.time_ns()))
        wait_for(lambda: count_done(log) >= a.tasks)
        total = time.perf_counter() - t
    finally:
        subprocess.run([a.bin, "stop", "w"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sends = [line.split() for line in open(tf) if line.startswith("send ")]
    assert len(sends) == len(spans), (len(sends), len(spans))
    steps = {}
    for (before, after), line in zip(spans, sends):
        marks = [("spawn", before)] + [(kv.split("=")[0], int(kv.split("=")[1])) for kv in line[1:]]
        marks.append(("reaped", after))
        for (a1, t1), (a2, t2) in zip(marks, marks[1:]):
            steps.setdefault(f"{a1} → {a2}", []).append((t2 - t1) / 1e6)
    print(f"{a.tasks} sends in a kick drain, until the last ran: {total:.3f} s "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `python3 bench/drain_steps.py "
          f"--tasks {a.tasks}`)\n")
    print("| step | median ms | p90 ms |\n|---|---:|---:|")
    for k, v in steps.items():
        v = sorted(v)
        print(f"| {k} | {statistics.median(v):.3f} | {v[int(len(v) * 0.9)]:.3f} |")


if __name__ == "__main__":
    main()
