#!/usr/bin/env python3
"""Core benchmarks for muxvisor (issue #2): launch, status at 1/10/50 peers,
server-death detection latency, peak RSS of status and of a canary, next to
floors measured in the same run (/bin/true, one `tmux has-session`).

Usage: python3 bench/core.py [--runs N]   (builds the release binary first)
Prints a Markdown table; medians of N runs. Uses a private root under /tmp
and tears down only the servers it started (by socket)."""

import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(*a, **kw):
    return subprocess.run(list(a), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def timed(argv, env=None):
    """Wall seconds and peak RSS (KiB) of one run of argv."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv}")
    return dt, ru.ru_maxrss


def med_ms(xs):
    return statistics.median(xs) * 1000


def canary_pid(root, ident):
    """The pid holding run/<id>.canary.lock, from /proc/locks (no name matching)."""
    ino = os.stat(os.path.join(root, "run", f"{ident}.canary.lock")).st_ino
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            # 1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF
            if len(parts) >= 6 and parts[1] == "FLOCK" and parts[3] == "WRITE":
                if int(parts[5].split(":")[2]) == ino:
                    return int(parts[4])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    n = args.runs
    sh("cargo", "build", "--release", "--quiet", cwd=REPO)
    mv = os.path.join(REPO, "target", "release", "muxvisor")
    tmux = shutil.which("tmux")
    tmp = tempfile.mkdtemp(prefix="mvb", dir="/tmp")
    root = os.path.join(tmp, "r")
    env = dict(os.environ, MUXVISOR_ROOT=root)
    env.pop("TMUX", None)
    M = lambda *a: sh(mv, *a, env=env)
    rows = []
    started = []
    try:
        # Floors.
        true_t = [timed(["/bin/true"])[0] for _ in range(n)]
        M("add", "floor", "--", "sleep", "1000000")
        M("launch", "floor")
        started.append("floor")
        sock = os.path.join(root, "run", "floor.sock")
        has_t = [timed([tmux, "-S", sock, "has-session", "-t", "=floor:"])[0] for _ in range(n)]
        rows.append(("/bin/true (floor)", med_ms(true_t), ""))
        rows.append(("tmux -S … has-session (floor)", med_ms(has_t), ""))

        # Launch: stop (untimed), then launch with --settle 0 (the session is
        # running, hooked, piped and canaried when it returns) and with the
        # default 1 s settle (what `muxvisor launch` costs a user).
        M("add", "lp", "--", "sleep", "1000000")
        started.append("lp")
        l0, l1 = [], []
        for i in range(n):
            M("stop", "lp", "--grace", "1s")
            l0.append(timed([mv, "launch", "lp", "--settle", "0"], env)[0])
            if i < 3:
                M("stop", "lp", "--grace", "1s")
                l1.append(timed([mv, "launch", "lp"], env)[0])
        rows.append(("muxvisor launch --settle 0", med_ms(l0), f"{med_ms(l0)/med_ms(has_t):.1f}x has-session"))
        rows.append(("muxvisor launch (default 1 s settle, 3 runs)", med_ms(l1), "includes the 1 s early-death watch"))

        # status --json at 1, 10, 50 running peers.
        peers = ["floor", "lp"]
        rss_status = 0
        for target in (1, 10, 50):
            while len(peers) < target:
                ident = f"p{len(peers)}"
                M("add", ident, "--", "sleep", "1000000")
                M("launch", ident, "--settle", "0")
                peers.append(ident)
                started.append(ident)
            ts = []
            for _ in range(n):
                dt, rss = timed([mv, "status", "--json"] + ([] if target > 1 else ["floor"]), env)
                ts.append(dt)
                rss_status = max(rss_status, rss)
            label = f"muxvisor status --json, {target} running peer(s)"
            rows.append((label, med_ms(ts), f"{med_ms(ts)/med_ms(has_t):.1f}x has-session"))

        # Canary RSS.
        cp = canary_pid(root, "floor")
        canary_rss = None
        if cp:
            with open(f"/proc/{cp}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        canary_rss = int(line.split()[1])

        # Detection latency: SIGKILL the server, poll exits.log for server-exit.
        M("add", "dl", "--", "sleep", "1000000")
        started.append("dl")
        lat = []
        exits = os.path.join(root, "logs", "exits.log")
        for _ in range(min(n, 10)):
            M("launch", "dl", "--settle", "0")
            st = json.load(open(os.path.join(root, "state", "dl.json")))
            # Wait until the canary holds its lock, so we time detection, not start-up.
            deadline = time.time() + 5
            while canary_pid(root, "dl") is None and time.time() < deadline:
                time.sleep(0.005)
            before = open(exits).read().count("ev=server-exit identity=dl") if os.path.exists(exits) else 0
            t = time.perf_counter()
            os.kill(st["server_pid"], signal.SIGKILL)
            deadline = time.time() + 10
            while time.time() < deadline:
                if os.path.exists(exits) and open(exits).read().count("ev=server-exit identity=dl") > before:
                    lat.append(time.perf_counter() - t)
                    break
                time.sleep(0.001)
            else:
                raise SystemExit("no server-exit line within 10 s")
        rows.append(("server SIGKILL → ev=server-exit line", med_ms(lat), f"{len(lat)} runs"))
        print(f"\nmedians of {n} runs (detection: {len(lat)} runs); tmux {sh(tmux, '-V').stdout.decode().strip()}, {os.cpu_count()} cores\n")
        print("| what | median ms | note |\n|---|---:|---|")
        for what, ms, note in rows:
            print(f"| {what} | {ms:.2f} | {note} |")
        print(f"\npeak RSS: `status --json` at 50 peers {rss_status} KiB; canary {canary_rss} KiB (VmHWM)")
    finally:
        for ident in started:
            subprocess.run([mv, "stop", ident, "--grace", "1s"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for f in os.listdir(os.path.join(root, "run")) if os.path.isdir(os.path.join(root, "run")) else []:
            if f.endswith(".sock"):
                subprocess.run([tmux, "-S", os.path.join(root, "run", f), "kill-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
