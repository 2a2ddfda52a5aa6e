#!/usr/bin/env python3
"""What a running peer costs besides its program (issue 21): the helper
processes muxvisor keeps per running peer, and their proportional memory.

Starts --peers persistent peers (`sleep`) under a private root, waits until
every one runs with its canary, then reads /proc: a peer's tmux server is
`server_pid` of `status --json`, its program is `pid`; every other process
whose command line names this private root is one of muxvisor's helpers
(the pane-log copier and the shell tmux runs it with, the canary, the
canary's `tmux wait-for` client). Prints, per peer (mean over the peers):
helper processes, their PSS, and the tmux server's PSS; and each helper's
command (as a shape, with the identity replaced). PSS is from
/proc/PID/smaps_rollup (Linux only).

Usage: python3 bench/weight.py [--peers N] [--bin PATH]
(builds the release binary unless --bin is given). Stops only the peers it
started (`muxvisor stop`, by root)."""

import argparse, collections, json, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=20)
    ap.add_argument("--bin")
    a = ap.parse_args()
    if a.bin:
        bin_ = os.path.abspath(a.bin)
    else:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=REPO, check=True)
        bin_ = os.path.join(REPO, "target/release/muxvisor")
    base = tempfile.mkdtemp(prefix="mvweight.")
    root = os.path.join(base, "r")
    ids = [f"w{i:03d}" for i in range(a.peers)]
    mv = lambda *args: subprocess.run(
        [bin_, "--root", root, *args], capture_output=True, timeout=120, check=True
    )
    try:
        for i in ids:
            mv("add", i, "--", "sleep", "100000")
            mv("launch", i)
        deadline = time.monotonic() + 120
        while True:
            st = json.loads(mv("status", "--json").stdout)
            if all(p["state"] == "running" and p["canary"] for p in st):
                break
            if time.monotonic() > deadline:
                sys.exit("bench: the peers did not all run with a canary within 120 s")
            time.sleep(0.2)
        time.sleep(1)  # let the helpers settle (no polling condition for "no more forks")
        st = json.loads(mv("status", "--json").stdout)
        servers = {p["server_pid"] for p in st}
        programs = {p["pid"] for p in st}
        helpers, shapes = [], collections.Counter()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            c = cmdline(pid)
            if root in c and pid not in servers and pid not in programs:
                helpers.append(pid)
                shape = c.replace(root, "ROOT").replace(bin_, "muxvisor")
                for i in ids:
                    shape = shape.replace(i, "ID")
                shapes[shape[:110]] += 1
        n = len(ids)
        helper_pss = sum(pss_kb(p) for p in helpers)
        server_pss = sum(pss_kb(p) for p in servers)
        print(f"{n} running peers (sleep), binary {bin_}")
        print(f"helper processes per peer: {len(helpers) / n:.2f} ({len(helpers)} in all)")
        print(f"helper PSS per peer: {helper_pss / n / 1024:.2f} MB")
        print(f"tmux server PSS per peer: {server_pss / n / 1024:.2f} MB")
        for s, k in shapes.most_common():
            print(f"  {k:4d} x {s}")
    finally:
        for i in ids:
            subprocess.run([bin_, "--root", root, "stop", i], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
