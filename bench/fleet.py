#!/usr/bin/env python3
"""Fleet benchmark for muxvisor (SPEC section 9): how long a fleet of agents
takes to come back after every tmux server was killed, one tick at a time,
with admission on (the default, at most 2 agents starting) and off.

Each agent is the fake agent (tests/fake-agent/agent.py) with the cost of a
real agent's start: --start-cpu CPU seconds burnt before its prompt shows
(a Node.js CLI loading) and --mem MiB held for its life. Real agents cannot
run here; the figures say what admission does to a start storm of that
shape on this machine, not how fast Claude Code starts.

Per mode, in a fresh private root:
1. add N agents (--agent claude, fake program), bring them all up, wait
   until every one is ready;
2. SIGKILL every tmux server (by the pid muxvisor recorded);
3. run `muxvisor supervise --once` every INTERVAL seconds (the next tick
   starts INTERVAL after the last one started, or when it ends if it took
   longer), and sample every 0.5 s: `status --json` (how many are starting,
   queued, ready), the machine's used memory (MemTotal - MemAvailable),
   and the run queue (procs_running in /proc/stat);
4. stop when all N are ready again: the time from the kill, the peak
   number starting, the peak used memory above the level right after the
   kill, and the peak run queue.

Usage: python3 bench/fleet.py [--agents 20] [--interval 5] [--start-cpu 1.5]
  [--mem 200] [--out FILE]   (builds the release binary; private roots under
  /tmp; kills only the servers and programs it started, by pid)."""

import argparse, json, os, platform, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FAKE = os.path.join(REPO, "tests", "fake-agent", "agent.py")


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


def used_mem():
    m = meminfo()
    return m["MemTotal"] - m["MemAvailable"]


def procs_running():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("procs_running"):
                return int(line.split()[1])
    return 0


def run_mode(mv, a, mode):
    work = tempfile.mkdtemp(prefix=f"mvfl-{mode}-", dir="/tmp")
    root = os.path.join(work, "r")
    env = dict(os.environ, MUXVISOR_ROOT=root)
    env.pop("TMUX", None)
    env.pop("MUXVISOR_MIN_MEM_AVAILABLE", None)
    limit = ["--max-starting", "2"] if mode == "admission" else ["--max-starting", "1000"]
    ids = [f"ag{i:02d}" for i in range(a.agents)]

    def mux(*args, check=True, extra_env=None):
        e = dict(env, **(extra_env or {}))
        r = subprocess.run([mv, *args], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and r.returncode != 0:
            sys.exit(f"bench: muxvisor {args} failed: {r.stderr.decode()}")
        return r.stdout.decode()

    def rows():
        try:
            return json.loads(mux("--json", "status", check=False) or "[]")
        except json.JSONDecodeError:
            return []

    def counts(rs):
        c = {"starting": 0, "queued": 0, "ready": 0}
        for r in rs:
            if r.get("state") == "queued":
                c["queued"] += 1
            agent = r.get("agent") or {}
            if r.get("state") == "running" and agent.get("state") in ("starting", "ready"):
                c[agent["state"]] += 1
        return c

    try:
        for i in ids:
            mux("add", i, "--agent", "claude", "--cwd", work, "--backoff", "1s",
                "--max-backoff", "5s", "--", "python3", FAKE, "--busy", "0.2",
                "--start-cpu", str(a.start_cpu), "--mem", str(a.mem))
        # Bring the fleet up (with admission, so that set-up does not thrash).
        end = time.time() + 900
        while counts(rows())["ready"] < len(ids):
            if time.time() > end:
                sys.exit("bench: the fleet never came up")
            mux("supervise", "--once", "--max-starting", "2", check=False)
            for i in ids:
                mux("launch", i, check=False, extra_env={"MUXVISOR_MAX_STARTING": "2"})
            time.sleep(1)
        # Kill every server.
        servers = [r["server_pid"] for r in rows() if r.get("server_pid")]
        assert len(servers) == len(ids), servers
        time.sleep(2)
        lifecycle = os.path.join(root, "logs", "lifecycle.log")
        held_before = sum(1 for l in open(lifecycle) if "ev=admission-held" in l)
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        t0 = time.time()
        # Let the kills land and the programs die (SIGHUP from their pty).
        time.sleep(0.5)
        base_mem = used_mem()
        peak = {"starting": 0, "queued": 0, "mem": base_mem, "runq": 0}
        ready_at = {}
        ticks = []
        tick, tick_started = None, 0.0
        deadline = t0 + a.limit
        while True:
            now = time.time()
            if tick is not None and tick.poll() is not None:
                ticks.append(now - tick_started)
                tick = None
            if tick is None and now >= tick_started + a.interval:
                tick_started = now
                tick = subprocess.Popen([mv, "supervise", "--once", *limit], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rs = rows()
            c = counts(rs)
            for r in rs:
                if (r.get("agent") or {}).get("state") == "ready" and r["state"] == "running":
                    ready_at.setdefault(r["identity"], time.time() - t0)
            peak["starting"] = max(peak["starting"], c["starting"])
            peak["queued"] = max(peak["queued"], c["queued"])
            peak["mem"] = max(peak["mem"], used_mem())
            peak["runq"] = max(peak["runq"], procs_running())
            if c["ready"] == len(ids):
                done = time.time() - t0
                break
            if time.time() > deadline:
                done = None
                break
            time.sleep(0.5)
        if tick is not None:
            tick.wait(60)
        held = sum(1 for l in open(lifecycle) if "ev=admission-held" in l) - held_before
        times = sorted(ready_at.values())
        return {
            "mode": mode,
            "all_ready_s": done,
            "first_ready_s": times[0] if times else None,
            "median_ready_s": statistics.median(times) if times else None,
            "peak_starting": peak["starting"],
            "peak_queued": peak["queued"],
            "peak_mem_mib": (peak["mem"] - base_mem) / 2**20,
            "peak_runq": peak["runq"],
            "ticks": len(ticks),
            "tick_median_s": statistics.median(ticks) if ticks else None,
            "held_events": held,
        }
    finally:
        for i in ids:
            subprocess.run([mv, "stop", i, "--grace", "1s"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--start-cpu", type=float, default=1.5)
    ap.add_argument("--mem", type=int, default=200)
    ap.add_argument("--limit", type=float, default=600.0)
    ap.add_argument("--modes", default="admission,off")
    ap.add_argument("--out", default=os.path.join(HERE, "FLEET-RESULTS.md"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    mv = os.path.join(REPO, "target", "release", "muxvisor")
    results = [run_mode(mv, a, m) for m in a.modes.split(",")]

    def f(v, fmt="%.1f"):
        return "n/a" if v is None else fmt % v

    lines = [
        f"# Fleet recovery ({time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, {meminfo()['MemTotal'] / 2**30:.0f} GiB)",
        "",
        f"`python3 bench/fleet.py --agents {a.agents} --interval {a.interval:g} "
        f"--start-cpu {a.start_cpu:g} --mem {a.mem}`: {a.agents} fake agents, each burning "
        f"{a.start_cpu:g} CPU s while it starts and holding {a.mem} MiB; every tmux server "
        f"SIGKILLed, then `supervise --once` every {a.interval:g} s until all are ready again.",
        "",
        "| admission | all ready (s) | first ready (s) | median ready (s) | peak starting | "
        "peak queued | peak memory above post-kill (MiB) | peak run queue | ticks (median s) | "
        "admission-held events |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        name = "on (max 2 starting)" if r["mode"] == "admission" else "off"
        lines.append(
            f"| {name} | {f(r['all_ready_s'])} | {f(r['first_ready_s'])} | "
            f"{f(r['median_ready_s'])} | {r['peak_starting']} | {r['peak_queued']} | "
            f"{f(r['peak_mem_mib'], '%.0f')} | {r['peak_runq']} | {r['ticks']} "
            f"({f(r['tick_median_s'], '%.2f')}) | {r['held_events']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
