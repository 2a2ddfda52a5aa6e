#!/usr/bin/env python3
"""Does `send` slow down with the number of finished tasks (issue 19,
item 7)? Two roots with the same ephemeral peer: one whose queue has no
finished task, one with --done finished tasks in `done/` (default 50,000,
each a small file, as a tick with a large --retention-count keeps them).
Then `send` to each, in turn (A B A B ...), --runs times each, with and
without --no-kick, and prints the median wall and CPU time of each and the
median of the pair-by-pair ratios.

Usage: python3 bench/done.py [--done N] [--runs R]
(builds the release binary first). Uses private directories under /tmp and
stops only the servers it started (`muxvisor stop`, by root)."""

import argparse, os, resource, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def mv(bin_, root, *args):
    r = subprocess.run([bin_, "--root", root, *args], capture_output=True, timeout=60)
    if r.returncode != 0:
        sys.exit(f"bench: muxvisor {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")


def timed(argv):
    """Wall and CPU (user + sys) seconds of one run of argv."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"bench: {argv} failed: {r.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--done", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=100)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=REPO, check=True)
    bin_ = os.path.join(REPO, "target/release/muxvisor")
    base = tempfile.mkdtemp(prefix="mvdone.")
    roots = {"empty": os.path.join(base, "empty"), "full": os.path.join(base, "full")}
    try:
        for root in roots.values():
            mv(bin_, root, "add", "w", "--ephemeral", "--", "/bin/true")
            mv(bin_, root, "send", "w", "--no-kick", "first")
        done = os.path.join(roots["full"], "queues/w/done")
        for i in range(a.done):
            name = "%020d.01m97g0b6700095f0tv%07d" % (i + 2, i)
            with open(os.path.join(done, name), "w") as f:
                f.write("finished task payload %d\n" % i)
        print(f"done/ holds {len(os.listdir(done))} finished tasks in the full root, 0 in the empty one")
        for label, extra in (("send --no-kick", ["--no-kick"]), ("send (kicks a worker)", [])):
            got = {"empty": [], "full": []}
            for _ in range(a.runs):
                for k in ("full", "empty"):
                    got[k].append(timed([bin_, "--root", roots[k], "send", "w", *extra, "x"]))
            med = lambda xs: statistics.median(xs) * 1000
            ratio_w = statistics.median(f[0] / e[0] for f, e in zip(got["full"], got["empty"]))
            ratio_c = statistics.median(
                f[1] / e[1] for f, e in zip(got["full"], got["empty"]) if e[1] > 0
            )
            print(
                f"{label}: {a.runs} runs each; median wall {med([w for w, _ in got['full']]):.2f} ms "
                f"with {a.done} done vs {med([w for w, _ in got['empty']]):.2f} ms with 0 "
                f"(pairwise ratio {ratio_w:.2f}); median cpu {med([c for _, c in got['full']]):.2f} "
                f"vs {med([c for _, c in got['empty']]):.2f} ms (ratio {ratio_c:.2f})"
            )
    finally:
        for root in roots.values():
            subprocess.run([bin_, "--root", root, "stop", "w"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
