#!/usr/bin/env python3
"""Agent pool benchmark for muxvisor (issue 22 part 2, SPEC section 10):
how soon a prompt sent to a pool reaches an agent, with a warm instance
and without one, for the fake agent (tests/fake-agent/agent.py) made to
take --start seconds to start (default 3, like a real agent CLI).

"First byte of work" is the moment the agent took the prompt in as a turn
(the fake logs each submit with its wall-clock time), measured from just
before `send` was run. Warm: `--warm 1`, the instance started ahead by one
tick and ready before the send. Cold: no warm instance, so the send starts
one and the prompt waits for its start-up. The target: warm within 300 ms.
Also measured: the resident memory of one warm instance (its agent and the
runner that keeps it, summed over their processes, from /proc).

Usage: python3 bench/pools.py [--runs 5] [--start 3] (builds the release
binary first). Each run uses a private root under /tmp and ends only what
it started (`muxvisor stop` on its own root), then removes the root."""

import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FAKE = os.path.join(REPO, "tests", "fake-agent", "agent.py")


def mv(binary, root, *args, check=True):
    r = subprocess.run([binary, "--root", root, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        sys.exit(f"bench: {args} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def turn_time(log, text, deadline):
    while time.time() < deadline:
        try:
            with open(log) as f:
                for line in f:
                    v = json.loads(line)
                    if v.get("text") == text:
                        return v["t"]
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    return None


def rss_kib(pid):
    """Resident KiB of `pid` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return total


def one(binary, warm, start, n):
    base = tempfile.mkdtemp(prefix="mvpool", dir="/tmp")
    root = os.path.join(base, "r")
    log = os.path.join(base, "turns.jsonl")
    mv(binary, root, "add", "p", "--ephemeral", "--agent", "claude", "--workers", "2",
       "--warm", "1" if warm else "0", "--", "python3", FAKE, "--reply", "echo",
       "--busy", "0.3", "--slow-start", str(start), "--log", log)
    mem = None
    try:
        if warm:
            mv(binary, root, "supervise", "--once")
            deadline = time.time() + 60
            while time.time() < deadline:
                st = json.loads(mv(binary, root, "status", "p", "--json"))[0]
                ws = st.get("workers") or []
                if any((w.get("agent") or {}).get("state") == "ready" for w in ws):
                    mem = sum(rss_kib(w["runner_pid"]) for w in ws if w.get("runner_pid"))
                    break
                time.sleep(0.05)
            else:
                sys.exit("bench: the warm instance never became ready")
        text = f"prompt {n}"
        t0 = time.time()
        out = mv(binary, root, "send", "p", text, "--wait", "60s")
        t1 = time.time()
        at = turn_time(log, text, time.time() + 10)
        if out.strip() != f"reply to: {text}":
            sys.exit(f"bench: wrong reply {out!r}")
        return (at - t0) * 1000, (t1 - t0) * 1000, mem
    finally:
        mv(binary, root, "stop", "p", check=False)
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--start", type=float, default=3.0)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    binary = os.path.join(REPO, "target", "release", "muxvisor")
    for warm in (True, False):
        firsts, replies, mems = [], [], []
        for n in range(a.runs):
            first, reply, mem = one(binary, warm, a.start, n)
            firsts.append(first)
            replies.append(reply)
            if mem:
                mems.append(mem)
            print(f"{'warm' if warm else 'cold'} run {n}: first byte {first:.0f} ms, "
                  f"reply {reply:.0f} ms" + (f", warm instance {mem / 1024:.1f} MiB" if mem else ""))
        line = (f"{'warm' if warm else 'cold'}: first byte median {statistics.median(firsts):.0f} ms "
                f"(max {max(firsts):.0f}), reply median {statistics.median(replies):.0f} ms")
        if mems:
            line += f", warm instance RSS median {statistics.median(mems) / 1024:.1f} MiB"
        print(line)


if __name__ == "__main__":
    main()
