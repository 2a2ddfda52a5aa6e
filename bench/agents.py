#!/usr/bin/env python3
"""Agent benchmarks for muxvisor (SPEC section 8): how soon the next message
reaches an agent once it is ready again, and what the courier costs while it
waits.

1. Ready -> next message pasted, over N turns, with the fake agent
   (tests/fake-agent/agent.py, busy 0.2 to 0.6 s per turn), which logs the moment it
   draws its ready prompt again and the moment a submit arrives:
   - courier: N+1 messages sent at once; the courier watches the screen;
   - mark: the agent's own "Stop hook" (--on-ready) runs `muxvisor mark ID
     ready`, and its ready pattern never matches, so only marks say ready.
2. The courier's CPU per minute while it waits on a busy agent (busy 70 s),
   and the tmux server's, next to the same agent with no courier, all read
   from /proc/<pid>/stat (Linux), the pids from muxvisor's own files.

Usage: python3 bench/agents.py [--turns N] [--out FILE]  (builds the release
binary; private root under /tmp; stops only the peers it started)."""

import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FAKE = os.path.join(REPO, "tests", "fake-agent", "agent.py")
DEV = subprocess.DEVNULL


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(HERE, "AGENTS-RESULTS.md"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    mv = os.path.join(REPO, "target", "release", "muxvisor")
    work = tempfile.mkdtemp(prefix="mvag", dir="/tmp")
    root = os.path.join(work, "r")
    env = dict(os.environ, MUXVISOR_ROOT=root)
    env.pop("TMUX", None)
    started = []

    def mux(*args, check=True):
        r = subprocess.run([mv, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and r.returncode != 0:
            sys.exit(f"bench: muxvisor {args} failed: {r.stderr.decode()}")
        return r.stdout.decode()

    def agent(ident, log, extra_add=(), extra_fake=(), wait=True):
        mux("add", ident, "--agent", "claude", "--cwd", work, *extra_add, "--",
            "python3", FAKE, "--log", log, *extra_fake)
        started.append(ident)
        mux("launch", ident, *(("--wait-ready", "60s") if wait else ()))

    def latencies(log, n):
        readys, turns = [], []
        for line in open(log):
            v = json.loads(line)
            if "ready" in v:
                readys.append(v["ready"])
            elif "turn" in v:
                turns.append(v["t"])
        # The ready prompt after turn k, then the submit of turn k+1.
        return [(turns[k + 1] - readys[k]) * 1000 for k in range(min(len(readys), len(turns) - 1))][:n]

    def mid_turn(log):
        """Turns that arrived while the agent was not ready (must be 0)."""
        return sum(1 for line in open(log)
                   if '"turn"' in line and json.loads(line).get("state") != "ready")

    def wait_turns(log, n, limit=600):
        end = time.time() + limit
        while time.time() < end:
            try:
                if sum(1 for l in open(log) if '"turn"' in l) >= n:
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.2)
        sys.exit(f"bench: {log} did not reach {n} turns")

    n = a.turns
    try:
        # 1a. The courier.
        log_c = os.path.join(work, "courier.log")
        agent("viac", log_c, extra_fake=("--busy", "0.2", "--busy-jitter", "0.4"))
        for i in range(n + 1):
            mux("send", "viac", f"message {i}", "--no-kick")
        mux("supervise", "--once")  # starts the courier: no send-time delivery in the figures
        wait_turns(log_c, n + 1)
        via_courier = latencies(log_c, n)
        mid_c = mid_turn(log_c)

        # 1b. Marks only: the screen never says ready.
        log_m = os.path.join(work, "mark.log")
        hook = f"{mv} --root {root} mark viam ready"
        agent("viam", log_m, extra_add=("--ready-pattern", "^NEVER MATCHES$"),
              extra_fake=("--busy", "0.2", "--busy-jitter", "0.4", "--on-ready", hook), wait=False)
        mux("mark", "viam", "ready")
        for i in range(n + 1):
            mux("send", "viam", f"message {i}", "--no-kick")
        mux("mark", "viam", "ready")
        wait_turns(log_m, n + 1)
        via_mark = latencies(log_m, n)
        mid_m = mid_turn(log_m)

        # 2. Courier CPU while its agent is busy for over a minute.
        log_b = os.path.join(work, "busy.log")
        agent("slow", log_b, extra_fake=("--busy", "90"))
        mux("send", "slow", "a long turn")
        wait_turns(log_b, 1)
        server = json.loads(mux("--json", "status", "slow"))[0]["server_pid"]
        base0 = cpu_ticks(server)
        time.sleep(30)  # a measurement window, not a settle wait
        base_server = (cpu_ticks(server) - base0) * 2  # per minute
        mux("send", "slow", "waits")
        time.sleep(1)
        courier = json.loads(mux("--json", "status", "slow"))[0]["courier"]
        if not courier:
            sys.exit("bench: no courier for slow")
        c0, s0 = cpu_ticks(courier), cpu_ticks(server)
        time.sleep(60)
        c_min, s_min = cpu_ticks(courier) - c0, cpu_ticks(server) - s0
    finally:
        for ident in started:
            subprocess.run([mv, "stop", ident, "--grace", "2s"], env=env, stdout=DEV, stderr=DEV)
    hz = os.sysconf("SC_CLK_TCK")
    with open(a.out, "w") as f:
        f.write("## Agents: delivery latency and the courier's cost\n\n")
        f.write(f"Command: `python3 bench/agents.py --turns {n}` (release build). Machine: "
                f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")
        f.write(f"Ready prompt drawn -> next message submitted, {n} turns of the fake agent "
                "(busy 0.2 to 0.6 s per turn, at random):\n\n| path | median ms | p99 ms | max ms | "
                "messages that arrived mid-turn |\n|---|---:|---:|---:|---:|\n")
        for label, xs, mid in (("courier (screen patterns, 200 ms looks)", via_courier, mid_c),
                               ("mark (`mark ready` from the agent's hook)", via_mark, mid_m)):
            f.write(f"| {label} | {statistics.median(xs):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} "
                    f"| {mid} |\n")
        f.write("\nCPU while a courier waits on a busy agent (one minute):\n\n"
                "| process | CPU ms per minute |\n|---|---:|\n")
        f.write(f"| courier | {c_min * 1000 / hz:.0f} |\n")
        f.write(f"| tmux server, with the courier looking | {s_min * 1000 / hz:.0f} |\n")
        f.write(f"| tmux server, same agent, no courier | {base_server * 1000 / hz:.0f} |\n")
    print(open(a.out).read())


if __name__ == "__main__":
    main()
