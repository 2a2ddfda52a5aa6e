#!/usr/bin/env python3
"""Real-agent conformance kit for muxvisor (stdlib python3 only).

Runs muxvisor against a REAL agent CLI that talks to a local mock of its
vendor's API on 127.0.0.1, and checks what muxvisor promises: honest start,
one message per turn, nothing typed mid-turn, blocked states, resume.

Usage::

    python3 tests/conformance/kit.py --cli claude [--muxvisor PATH] [--runs N]
        [--cases a,b,...] [--cache DIR] [--json] [--hooks] [--capture DIR]
        [--keep] [--no-install | --install-only]

Prints one line per case, ``PASS|FAIL|SKIP case detail``, then
``N passed, N failed``; exits 1 if any case failed. ``--json`` prints one
JSON document instead (``{"cli","version","results":[{"case","result",
"detail",...}],"passed","failed"}``). ``--hooks`` installs the profile's
hooks (``mark`` calls) so marks, not only screens, drive the agent state
(default: screens only). ``--capture DIR`` saves ``muxvisor screen ID
--lines 200`` of each state reached (the screen fixtures). ``--keep`` leaves
the temp roots for a post-mortem (processes are still ended). ``--runs N``
repeats ``first_message`` (one line, k/N) and ``burst`` (one line per run).

Installing: by default the kit installs the pinned CLI under ``--cache``
when ``profile.find(cache)`` finds nothing (npm/pip: minutes, network).
``--no-install`` never installs: when the CLI is missing it prints
``SKIP all: <cli> <version> is not installed in <cache> (run: python3
tests/conformance/kit.py --cli <cli> --install-only)`` and exits 3 without
running anything. ``--install-only`` installs (idempotent), prints the
binary's path and exits 0 without running any case.

Each case runs in its own environment: a fresh temp root ``/tmp/mvk-XXXX``
(mode 0700, short so tmux socket paths stay far below 108 bytes) holding
``r/`` (MUXVISOR_ROOT), ``h/`` (the agent's HOME), ``w/`` (its working
directory) and ``m/`` (the mock's state). At its end the kit ends only what
it started: ``muxvisor stop`` of its peer, ``tmux -S <sock> kill-server``
for each socket under ``r/run``, the mock by its PID, then every leftover
process whose ``/proc/<pid>/environ`` holds ``MUXVISOR_ROOT=<that root>``
(SIGTERM, then SIGKILL), never anything by name.

Profile interface (``cli_<name>.py`` next to this file)
-------------------------------------------------------
Required:

``NAME``, ``VERSION``
    the CLI and the exact version the profile pins.
``PRESET``
    the ``muxvisor add --agent`` preset name.
``MOCK``
    file name of the mock server next to this file (a mockbase server:
    ``python3 MOCK --state DIR`` prints its port; script.json,
    requests.jsonl, other.jsonl as mockbase describes; optionally
    replies.jsonl with ``{"ts","turn","status","arrived","user_text"}`` per
    finished model-turn answer, which ``burst`` and ``ready_after_turn``
    need).
``install(cache_dir) -> str``, ``find(cache_dir) -> str | None``
    the binary (install is idempotent).
``prepare_home(home, workdir, mock_port, seed=True, **kw) -> dict``
    write the seeded config (nothing when ``seed`` is False) and return the
    program's environment (every variable it needs: HOME, base URL, dummy
    key...). The kit passes ``auth="oauth"`` for ``usage_limit`` only when
    the profile lists it in ``AUTH_MODES``.
``argv(binary) -> list``
    the program argv given after ``--`` to ``muxvisor add``.
``hooks_settings(muxvisor_path) -> dict``
    the hook configuration as the README shows it (may be ``{}``).

Optional (the kit has defaults):

``install_hooks(home, muxvisor_path)``
    write hooks_settings into the program's config under home (needed for
    ``--hooks``). A profile whose ``install_hooks`` also takes
    ``submit_delay`` (seconds) runs ``burst_slow_hook``: its prompt-submit
    hook sleeps that long before it marks the agent busy.
``AUTH_MODES``
    e.g. ``("token", "oauth")``; without "oauth" ``usage_limit`` uses the
    default auth and relies on the mock's ``usage_limit`` behaviour.
``APPROVE_KEYS``
    tmux keys a person presses to approve the permission prompt
    (default ``["Enter"]``).
``TOOL_BEHAVIOUR``
    the script behaviour that makes the CLI ask for a permission (default
    ``{"tool": "Bash"}``).
``USAGE_LIMIT_BEHAVIOUR()``
    a function returning the behaviour of a usage-limit answer (default
    ``{"usage_limit": now + 2 h}``).
``ONBOARDING_STEPS``
    list of ``(screen_name, expected_reason, keys_to_advance_or_None)`` for
    the unseeded first start (default: one step, any blocked reason).
``CAPTURE_ENV``
    extra environment for the capture-only ``screens`` case (e.g. no
    retries, so error displays show at once).
``SKIP``
    dict case -> reason, for cases the CLI cannot support.

Cases: fresh_start, first_message, ready_after_turn, burst, multiline,
permission, resume, api_errors, onboarding, usage_limit (all by default),
``burst_slow_hook`` (``burst`` with ``--hooks`` whose prompt-submit hook
takes 1.5 s, as a loaded machine makes it: the ``ready`` mark of the turn
before must not let a second message in meanwhile), ``pool`` (with
``--hooks``: an agent pool of two instances answers concurrent ``send
--wait`` scripts with the mock's answers, reuses an instance after ``--reset
/clear``, and takes the reply from the Stop hook's transcript) and
``screens`` (only
with ``--capture`` or when named: extra fixtures such as the final error
displays and a draft).
"""

import argparse
import datetime
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

DEFAULT_CASES = ["fresh_start", "first_message", "ready_after_turn", "burst", "multiline",
                 "permission", "resume", "api_errors", "onboarding", "usage_limit"]
ALL_CASES = DEFAULT_CASES + ["burst_slow_hook", "screens", "pool"]
PEER = "agent"


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def poll(cond, timeout, step=0.1):
    """Call cond() until it returns a true value or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(step)


def tree_memory_kib(pid):
    """(PSS, RSS) in KiB of ``pid`` and every descendant, from
    ``/proc/<pid>/smaps_rollup`` (Linux); (0, 0) where it cannot be read."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    pss = rss = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "Pss":
                        pss += int(v.split()[0])
                    elif k == "Rss":
                        rss += int(v.split()[0])
        except (OSError, ValueError):
            pass
    return pss, rss


def iso_ts(text):
    """Seconds since the epoch of muxvisor's RFC 3339 time (``...Z``)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def uniq(tag):
    return "%s-%s" % (tag, uuid.uuid4().hex[:8])


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


class Env:
    """One case's world: temp root, HOME, mock, one peer."""

    def __init__(self, kit, seed=True, auth=None, hooks=None, extra_env=None, submit_delay=None,
                 add_args=()):
        self.kit = kit
        self.P = kit.profile
        self.dir = tempfile.mkdtemp(prefix="mvk-", dir="/tmp")
        os.chmod(self.dir, 0o700)
        self.root = os.path.join(self.dir, "r")
        self.home = os.path.join(self.dir, "h")
        self.work = os.path.join(self.dir, "w")
        self.mstate = os.path.join(self.dir, "m")
        for d in (self.root, self.home, self.work, self.mstate):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.mock = None
        self.port = None
        self.seed = seed
        self.auth = auth
        self.hooks = kit.args.hooks if hooks is None else hooks
        self.extra_env = extra_env or {}
        self.submit_delay = submit_delay
        self.add_args = list(add_args)
        self.added = False

    # -- set-up ----------------------------------------------------------
    def start_mock(self):
        self.mock = subprocess.Popen(
            [sys.executable, os.path.join(HERE, self.P.MOCK), "--state", self.mstate],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, "mock.err"), "w"),
            stdin=subprocess.DEVNULL, start_new_session=True)
        line = self.mock.stdout.readline()
        if not line.strip().isdigit():
            raise Fail("mock did not start: %r" % line)
        self.port = int(line)

    def setup(self):
        self.start_mock()
        kw = {}
        if self.auth:
            kw["auth"] = self.auth
        self.penv = self.P.prepare_home(self.home, self.work, self.port, seed=self.seed, **kw)
        self.penv.update(self.extra_env)
        if self.hooks and self.seed:
            if not hasattr(self.P, "install_hooks"):
                raise Skip("profile has no install_hooks")
            if self.submit_delay:
                self.P.install_hooks(self.home, self.kit.mv, submit_delay=self.submit_delay)
            else:
                self.P.install_hooks(self.home, self.kit.mv)
        args = ["add", PEER, "--agent", self.P.PRESET, "--cwd", self.work] + self.add_args
        for k, v in sorted(self.penv.items()):
            args += ["--env", "%s=%s" % (k, v)]
        args += ["--"] + list(self.program_argv())
        r = self.mv(*args, timeout=30)
        if r.returncode != 0:
            raise Fail("add failed rc=%d: %s" % (r.returncode, r.stderr.strip()[:300]))
        self.added = True
        return self

    def program_argv(self):
        """P.argv(binary), with hooks=True when hooks are on and the profile's
        argv takes it (Codex runs hooks.json only with its trust-bypass flag)."""
        import inspect
        try:
            takes = "hooks" in inspect.signature(self.P.argv).parameters
        except (TypeError, ValueError):
            takes = False
        if self.hooks and self.seed and takes:
            return self.P.argv(self.kit.binary, hooks=True)
        return self.P.argv(self.kit.binary)

    # -- muxvisor --------------------------------------------------------
    def mv(self, *args, timeout=30):
        env = dict(os.environ, MUXVISOR_ROOT=self.root)
        try:
            return subprocess.run([self.kit.mv] + list(args), capture_output=True, text=True,
                                  timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124, e.stdout or "", "timeout after %ss" % timeout)

    def status(self):
        r = self.mv("status", PEER, "--json", timeout=20)
        try:
            rows = json.loads(r.stdout)
            return rows[0] if rows else {}
        except (ValueError, IndexError):
            return {}

    def agent(self):
        return (self.status().get("agent") or {})

    def agent_state(self):
        a = self.agent()
        return a.get("state"), a.get("reason")

    def screen(self):
        return self.mv("screen", PEER, "--lines", "200", timeout=20).stdout

    def capture(self, name):
        if not self.kit.args.capture:
            return
        os.makedirs(self.kit.args.capture, exist_ok=True)
        with open(os.path.join(self.kit.args.capture, name + ".txt"), "w") as f:
            f.write(self.screen())

    def send(self, text, *extra, timeout=90):
        r = self.mv("send", PEER, text, "--json", *extra, timeout=timeout)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            doc = {}
        return r.returncode, doc, r

    def keys(self, *keys):
        return self.mv("send", PEER, "--keys", *keys, timeout=20)

    def launch_ready(self, wait="90s", timeout=120):
        return self.mv("launch", PEER, "--wait-ready", wait, timeout=timeout)

    def events(self, ev=None):
        r = self.mv("events", "--id", PEER, "--json", timeout=20)
        try:
            evs = json.loads(r.stdout)
        except ValueError:
            evs = []
        return [e for e in evs if ev is None or e.get("ev") == ev]

    # -- mock ------------------------------------------------------------
    def script(self, default=None, queue=None):
        s = {"default": default or {}, "queue": queue or []}
        p = os.path.join(self.mstate, "script.json")
        with open(p + ".tmp", "w") as f:
            json.dump(s, f)
        os.replace(p + ".tmp", p)

    def turns(self):
        """Model turns in arrival order (a mock may append them out of order)."""
        return sorted(read_jsonl(os.path.join(self.mstate, "requests.jsonl")),
                      key=lambda t: t.get("ts") or 0)

    def replies(self):
        return read_jsonl(os.path.join(self.mstate, "replies.jsonl"))

    def turns_with(self, text):
        return [t for t in self.turns() if t.get("user_text") == text]

    # -- tear-down -------------------------------------------------------
    def pids_of_root(self):
        mark = ("MUXVISOR_ROOT=%s" % self.root).encode()
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    if mark in f.read().split(b"\0"):
                        out.append(int(name))
            except OSError:
                pass
        return out

    def cleanup(self):
        if self.added:
            self.mv("stop", PEER, "--grace", "3s", timeout=20)
        run = os.path.join(self.root, "run")
        if os.path.isdir(run):
            for n in os.listdir(run):
                if n.endswith(".sock"):
                    try:
                        subprocess.run(["tmux", "-S", os.path.join(run, n), "kill-server"],
                                       capture_output=True, timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
        if self.mock and self.mock.poll() is None:
            self.mock.kill()
            self.mock.wait(timeout=10)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids_of_root()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            poll(lambda: not self.pids_of_root(), 3)
        if not self.kit.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Kit:
    def __init__(self, args):
        self.args = args
        self.profile = importlib.import_module("cli_%s" % args.cli)
        self.mv = os.path.abspath(args.muxvisor)
        self.binary = None
        self.results = []

    def report(self, case, result, detail, **extra):
        rec = dict(case=case, result=result, detail=detail, **extra)
        self.results.append(rec)
        if not self.args.json:
            print("%s %s %s" % (result, case, detail), flush=True)

    def env(self, **kw):
        return Env(self, **kw)

    # helpers -------------------------------------------------------------
    def fresh(self, **kw):
        e = self.env(**kw).setup()
        r = e.launch_ready("90s", timeout=120)
        if r.returncode != 0:
            raise Fail("launch --wait-ready rc=%d: %s" % (r.returncode, (r.stdout + r.stderr).strip()[:300]))
        return e

    def run_case(self, name):
        fn = getattr(self, "case_" + name)
        skip = getattr(self.profile, "SKIP", {}).get(name)
        if skip:
            return self.report(name, "SKIP", skip)
        try:
            fn()
        except Skip as s:
            self.report(name, "SKIP", str(s))
        except Fail as f:
            self.report(name, "FAIL", str(f))
        except Exception as ex:  # a kit bug must not hide the rest
            self.report(name, "FAIL", "kit error: %s: %s" % (type(ex).__name__, ex))

    def with_env(self, fn, **kw):
        e = None
        try:
            e = self.env(**kw)
            return fn(e)
        finally:
            if e:
                e.cleanup()

    # cases -----------------------------------------------------------------
    def case_fresh_start(self):
        def body(e):
            e.setup()
            t0 = time.monotonic()
            r = e.launch_ready("90s", timeout=120)
            took = time.monotonic() - t0
            st, reason = e.agent_state()
            e.capture("ready")
            if r.returncode != 0:
                raise Fail("launch --wait-ready rc=%d after %.1fs (agent %s/%s): %s" % (
                    r.returncode, took, st, reason, (r.stdout + r.stderr).strip()[:200]))
            if st != "ready":
                raise Fail("launch rc=0 but status agent.state=%s reason=%s" % (st, reason))
            self.report("fresh_start", "PASS", "ready in %.1fs" % took)
        self.with_env(body)

    def case_first_message(self):
        n = self.args.runs
        ok = 0
        notes = []
        for i in range(n):
            def body(e):
                e.setup()
                r = e.launch_ready("90s", timeout=120)
                if r.returncode != 0:
                    return "launch rc=%d" % r.returncode
                text = uniq("first")
                rc, doc, _ = e.send(text, "--wait", "60s", timeout=90)
                hit = poll(lambda: e.turns_with(text), 30, 0.2)
                if hit and rc == 0:
                    return None
                if hit:
                    und = e.events("msg-undelivered")
                    return "model turn arrived but send --wait rc=%d (agent %s/%s; %d msg-undelivered: %r)" % (
                        rc, *e.agent_state(), len(und), [u.get("screen", "")[-160:] for u in und[:1]])
                scr = e.screen()
                line = [ln for ln in scr.splitlines() if text in ln]
                return "send rc=%d, no model turn in 30s; text on screen: %r" % (rc, line[-1:] )
            err = self.with_env(body)
            if err is None:
                ok += 1
            else:
                notes.append("run %d: %s" % (i + 1, err))
        detail = "%d/%d delivered as a model turn" % (ok, n)
        if notes:
            detail += "; " + "; ".join(notes[:3])
        self.report("first_message", "PASS" if ok == n else "FAIL", detail, ok=ok, runs=n)

    def case_ready_after_turn(self):
        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            e.script(queue=[{"delay_s": 6}])
            text = uniq("slow")
            rc, doc, _ = e.send(text, "--wait", "60s", timeout=90)
            if not poll(lambda: e.turns_with(text), 30, 0.1):
                raise Fail("no model turn for the message (send rc=%d)" % rc)
            # the mock holds the reply for 6 s: status must say busy meanwhile
            busy = poll(lambda: e.agent_state()[0] == "busy", 3, 0.2)
            e.capture("busy")
            st_during = e.agent_state()
            done = poll(lambda: [x for x in e.replies() if x.get("user_text") == text], 20, 0.05)
            if not done:
                raise Fail("mock never finished the reply")
            t_done = done[0]["ts"]
            got = poll(lambda: e.agent_state()[0] == "ready", 15, 0.1)
            lag = time.time() - t_done
            e.capture("ready-after-turn")
            st_after = e.agent_state()
            det = "busy during turn: %s (%s); ready %s after reply end (lag %.2fs)" % (
                "yes" if busy else "no", st_during[0], "seen" if got else "NOT seen in 15s", lag)
            if not got:
                det += "; status still %s/%s" % st_after
            ok = busy and got and lag <= 2.0
            self.report("ready_after_turn", "PASS" if ok else "FAIL", det,
                        lag_s=round(lag, 2) if got else None)
        self.with_env(body)

    def case_burst(self, name="burst", **env):
        """--runs N repeats it: one result line per run (``run i/N: ...``)."""
        n = self.args.runs
        self.burst_name = name
        for i in range(n):
            self.burst_run = "run %d/%d: " % (i + 1, n) if n > 1 else ""
            try:
                self.with_env(self._burst_body, **env)
            except Fail as f:
                self.report(name, "FAIL", self.burst_run + str(f))
            except Skip:
                raise
            except Exception as ex:  # a kit bug must not hide the other runs
                self.report(name, "FAIL", "%skit error: %s: %s" % (self.burst_run, type(ex).__name__, ex))

    def case_burst_slow_hook(self):
        """``burst`` with the README's hooks, the prompt-submit one slowed
        by 1.5 s: between a delivery and that hook's ``busy`` mark, the
        newest mark is the ``ready`` of the turn before."""
        import inspect
        if not self.args.hooks:
            raise Skip("needs --hooks")
        if "submit_delay" not in inspect.signature(getattr(self.profile, "install_hooks")).parameters:
            raise Skip("the profile's install_hooks takes no submit_delay")
        self.case_burst("burst_slow_hook", hooks=True, submit_delay=1.5)

    def _burst_body(self, e):
        e.setup()
        r = e.launch_ready("90s", timeout=120)
        if r.returncode != 0:
            raise Fail("launch rc=%d" % r.returncode)
        e.script(default={"delay_s": 3})
        head = uniq("head")
        rc, hdoc, _ = e.send(head, timeout=60)
        if rc != 0:
            raise Fail("head send rc=%d" % rc)
        if not poll(lambda: e.turns_with(head), 60, 0.1):
            raise Fail("head message never reached the model: %r" % e.screen().splitlines()[-6:])
        texts = [uniq("burst%d" % i) for i in range(5)]
        acks = {}

        def one(t):
            rc, doc, _ = e.send(t, timeout=60)
            acks[t] = (rc, doc.get("task"))

        th = [threading.Thread(target=one, args=(t,)) for t in texts]
        for t in th:
            t.start()
        for t in th:
            t.join()
        bad = [t for t, (rc, task) in acks.items() if rc != 0 or not task]
        if bad:
            raise Fail("send not acknowledged for %d messages" % len(bad))
        order = [head] + sorted(texts, key=lambda t: acks[t][1])
        all6 = set(order)
        poll(lambda: len([x for x in e.turns() if x.get("user_text") in all6]) >= 6, 90, 0.2)
        # let a late extra (double) show up
        poll(lambda: len(e.turns()) > 6, 5, 0.2)
        turns = e.turns()
        replies = e.replies()
        problems = []
        seen = [t.get("user_text") for t in turns]
        for t in order:
            c = seen.count(t)
            if c != 1:
                problems.append("%s x%d" % (t, c))
        merged = [s for s in seen if s not in all6]
        # Two prompts folded into one model turn (one message, two text blocks).
        merged += ["+".join(x[:24] for x in t.get("user_texts") or []) for t in turns
                   if len([x for x in t.get("user_texts") or [] if x in all6]) > 1]
        if merged:
            problems.append("unexpected turn texts %r" % [m[:60] for m in merged])
        got_order = [s for s in seen if s in all6]
        if got_order != order and not problems:
            problems.append("order %s != task order %s" % (
                [order.index(s) for s in got_order], list(range(6))))
        # nothing typed mid-turn: each turn arrived after the previous reply ended
        by_turn = {x["turn"]: x for x in replies}
        mid = []
        prev_end = None
        for t in turns:
            if prev_end is not None and t["ts"] < prev_end:
                mid.append("%s arrived %.2fs before the previous reply ended" % (
                    t["user_text"], prev_end - t["ts"]))
            rep = by_turn.get(t["turn"])
            prev_end = rep["ts"] if rep else None
        problems += mid
        # nothing typed while the agent worked: each message was committed
        # as delivered only after the reply to the one before had ended
        # (the agent may queue a prompt typed mid-turn and run it later,
        # which the order and turn checks above cannot see)
        evs = e.events()
        task_of = {t: acks[t][1] for t in texts}
        task_of[head] = hdoc.get("task")
        deliv_at = {}
        for x in evs:
            if x.get("ev") == "msg-delivered" and x.get("delivered_at"):
                deliv_at.setdefault(x.get("task"), iso_ts(x["delivered_at"]))
        turn_of = {t.get("user_text"): t.get("turn") for t in turns}
        typed_mid = []
        for prev, t in zip(order, order[1:]):
            rep = by_turn.get(turn_of.get(prev))
            at = deliv_at.get(task_of[t])
            if rep and at is not None and at < rep["ts"]:
                typed_mid.append("%s delivered %.2fs before the reply to %s ended" % (t, rep["ts"] - at, prev))
        problems += typed_mid
        mid += typed_mid
        # muxvisor's own account: one msg-delivered per message, none for a
        # message whose model turn never reached the mock
        dl = [x.get("task") for x in evs if x.get("ev") == "msg-delivered"]
        und = [x for x in evs if x.get("ev") == "msg-undelivered"]
        for t in order:
            n = dl.count(task_of[t])
            if n != 1:
                problems.append("%s: %d msg-delivered" % (t, n))
            if n and seen.count(t) == 0:
                problems.append("%s: msg-delivered but no model turn" % t)
        if und:
            problems.append("%d msg-undelivered (%r)" % (
                len(und), [(u.get("task"), (u.get("screen") or "")[-120:]) for u in und[:2]]))
        det = "%d turns for 6 messages" % len([s for s in seen if s in all6])
        if problems:
            det += "; " + "; ".join(problems[:4])
            det += "; " + self._burst_story(e, order, task_of, turns, evs)
        counts = [seen.count(t) for t in order]
        det = self.burst_run + det + " [arrived %d/6, lost %d, doubled %d, merged %d, mid-turn %d, msg-delivered %d, delivered-without-turn %d, msg-undelivered %d]" % (
            len([c for c in counts if c >= 1]), counts.count(0), len([c for c in counts if c > 1]),
            len(merged), len(mid), len([t for t in order if task_of[t] in dl]),
            len([t for t in order if task_of[t] in dl and seen.count(t) == 0]), len(und))
        self.report(self.burst_name, "FAIL" if problems else "PASS", det,
                    sent=6, arrived=len([c for c in counts if c >= 1]),
                    lost=counts.count(0), doubled=len([c for c in counts if c > 1]),
                    merged=len(merged), mid_turn=len(mid),
                    delivered_events=len([t for t in order if task_of[t] in dl]),
                    delivered_without_turn=len([t for t in order
                                                if task_of[t] in dl and seen.count(t) == 0]),
                    undelivered_events=len(und))

    def _burst_story(self, e, order, task_of, turns, evs):
        """Where each message went, for a failed burst run: its delivery
        (muxvisor's events), the model turn that carried it, and whether it
        still shows on the screen."""
        screen = e.screen()
        out = []
        for t in order:
            task = task_of[t]
            d = [x.get("delivered_at") or x.get("ts") for x in evs
                 if x.get("ev") == "msg-delivered" and x.get("task") == task]
            u = [x.get("ts") for x in evs if x.get("ev") == "msg-undelivered" and x.get("task") == task]
            carried = [str(x.get("turn")) for x in turns if t in (x.get("user_texts") or [x.get("user_text")])]
            later = [str(x.get("turn")) for x in turns if t in (x.get("history") or [])]
            out.append("%s: delivered %s%s, turn %s, in the history of %s, on screen %s" % (
                t, ",".join(v[11:23] for v in d if v) or "-",
                (" undelivered " + ",".join(v[11:23] for v in u if v)) if u else "",
                ",".join(carried) or "-", ",".join(later[:2]) or "-", t in screen))
        tt = ["turn %s at %s" % (x.get("turn"), time.strftime("%H:%M:%S", time.gmtime(x.get("ts") or 0)))
              + (".%03d" % int(((x.get("ts") or 0) % 1) * 1000)) for x in turns]
        return "story: " + " | ".join(out) + " | turns: " + ", ".join(tt)

    def case_multiline(self):
        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            tag = uniq("ml")
            lines = ["%s line one" % tag, "%s line two" % tag, "%s line three" % tag]
            text = "\n".join(lines)
            rc, doc, _ = e.send(text, "--wait", "60s", timeout=90)
            hits = poll(lambda: [t for t in e.turns() if tag in (t.get("user_text") or "")], 30, 0.2)
            poll(lambda: len([t for t in e.turns() if tag in (t.get("user_text") or "")]) > 1, 3, 0.2)
            hits = [t for t in e.turns() if tag in (t.get("user_text") or "")]
            if not hits:
                scr = [ln for ln in e.screen().splitlines() if tag in ln]
                raise Fail("no model turn (send rc=%d); on screen: %r" % (rc, scr[-3:]))
            if len(hits) != 1:
                raise Fail("%d turns for one 3-line message: %r" % (len(hits), [h["user_text"] for h in hits]))
            ut = hits[0]["user_text"]
            if not all(ln in ut for ln in lines):
                raise Fail("one turn but lines missing: %r" % ut)
            self.report("multiline", "PASS", "one turn, all 3 lines%s" % (
                "" if ut == text else " (text differs: %r)" % ut[:120]))
        self.with_env(body)

    def case_permission(self):
        P = self.profile

        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            e.script(queue=[dict(getattr(P, "TOOL_BEHAVIOUR", {"tool": "Bash"}))])
            ask = uniq("tool")
            e.send(ask, "--wait", "60s", timeout=90)
            if not poll(lambda: e.turns_with(ask), 30, 0.2):
                raise Fail("tool request never reached the model")
            blocked = poll(lambda: e.agent_state() == ("blocked", "permission"), 20, 0.25)
            e.capture("permission")
            st = e.agent_state()
            held = uniq("held")
            rc, doc, _ = e.send(held, timeout=30)
            # while the prompt shows, the held message must not arrive
            leaked = poll(lambda: e.turns_with(held), 5, 0.2)
            prompt_still = e.agent_state()
            for k in getattr(P, "APPROVE_KEYS", ["Enter"]):
                e.keys(k)
                time.sleep(0.2)
            marker = getattr(P, "tool_marker", None)
            ran = poll(lambda: os.path.exists(marker(e.work)), 15, 0.2) if marker else None
            got = poll(lambda: e.turns_with(held), 45, 0.2)
            poll(lambda: len(e.turns_with(held)) > 1, 4, 0.2)
            n = len(e.turns_with(held))
            det = "status during prompt %s/%s; held msg leaked=%s; after approve tool ran=%s, held delivered %d time(s)" % (
                st[0], st[1], bool(leaked), ran, n)
            if prompt_still != st:
                det += "; state changed to %s/%s while prompt showed" % prompt_still
            ok = bool(blocked) and not leaked and n == 1
            self.report("permission", "PASS" if ok else "FAIL", det)
        self.with_env(body)

    def case_resume(self):
        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            first = uniq("remember")
            e.send(first, "--wait", "60s", timeout=90)
            if not poll(lambda: [x for x in e.replies() if x.get("user_text") == first], 30, 0.2):
                raise Fail("first turn never completed")
            s = e.status()
            spid = s.get("server_pid")
            sid1 = (s.get("agent") or {}).get("session_id")
            ident = None
            if not spid:
                raise Fail("no server_pid in status")
            pane_pid = s.get("pid")
            os.kill(spid, signal.SIGKILL)
            # what is left of the pane's program after the server's SIGKILL
            time.sleep(0)

            def left():
                return [p for p in e.pids_of_root() if p != spid]
            poll(lambda: not left() or False, 3, 0.2)
            leftovers = []
            for p in left():
                try:
                    with open("/proc/%d/cmdline" % p, "rb") as f:
                        leftovers.append("%d:%s" % (p, f.read().split(b"\0")[0].decode()[-40:]))
                except OSError:
                    pass
            t0 = time.monotonic()

            def restarted():
                e.mv("supervise", "--once", timeout=60)
                st = e.status()
                return st.get("state") == "running" and st.get("server_pid") not in (None, spid)
            if not poll(restarted, 90, 0.5):
                raise Fail("not restarted by supervise --once within 90s (state %s)" % e.status().get("state"))
            took = time.monotonic() - t0
            ready = poll(lambda: e.agent_state()[0] == "ready", 90, 0.3)
            e.capture("resumed")
            if not ready:
                raise Fail("restarted but agent not ready (%s/%s)" % e.agent_state())
            second = uniq("after-resume")
            e.send(second, "--wait", "60s", timeout=90)
            hits = poll(lambda: e.turns_with(second), 30, 0.2)
            if not hits:
                raise Fail("no model turn for the message after the restart")
            hist = hits[0].get("history") or []
            carried = any(first in (h or "") for h in hist)
            sid2 = (e.agent() or {}).get("session_id")
            det = "restarted after %.1fs; history %s the first message; session %s -> %s; leftovers after SIGKILL: %s" % (
                took, "carries" if carried else "LACKS", sid1, hits[0].get("session_id"), leftovers or "none")
            self.report("resume", "PASS" if carried else "FAIL", det)
        self.with_env(body)

    def case_api_errors(self):
        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            e.script(queue=[{"status": 429}, {}, {"status": 529}, {}])
            a, b = uniq("err-a"), uniq("err-b")
            rca, da, _ = e.send(a, timeout=60)
            rcb, db, _ = e.send(b, timeout=60)
            ok200 = lambda t: [x for x in e.turns_with(t) if x.get("status") == 200]
            poll(lambda: ok200(a) and ok200(b), 90, 0.3)
            poll(lambda: len(ok200(a)) > 1 or len(ok200(b)) > 1, 4, 0.3)
            e.capture("after-api-errors")
            problems = []
            notes = []
            for t in (a, b):
                alls = e.turns_with(t)
                good = [x for x in alls if x.get("status") == 200]
                errs = [x.get("status") for x in alls if x.get("status") != 200]
                notes.append("%s: %d ok, CLI retries after %s" % (t[:10], len(good), errs or "none"))
                if len(good) != 1:
                    problems.append("%s reached %d successful turns" % (t, len(good)))
            others = [x.get("user_text") for x in e.turns() if x.get("user_text") not in (a, b)]
            if others:
                problems.append("turns with other texts (merged?): %r" % [o[:60] for o in others])
            dl = e.events("msg-delivered")
            for t, d in ((a, da), (b, db)):
                task = d.get("task")
                n = len([x for x in dl if x.get("task") == task])
                if n != 1:
                    problems.append("%s delivered %d times per events" % (t[:10], n))
            det = "; ".join(notes + problems)
            self.report("api_errors", "FAIL" if problems else "PASS", det)
        self.with_env(body)

    def case_onboarding(self):
        P = self.profile
        steps = getattr(P, "ONBOARDING_STEPS", [("first", None, None)])

        def body(e):
            e.seed = False
            e.setup()
            t0 = time.monotonic()
            r = e.launch_ready("30s", timeout=60)
            took = time.monotonic() - t0
            out = (r.stdout + r.stderr).strip()
            problems = []
            notes = []
            first_reason = steps[0][1]
            if r.returncode != 1:
                problems.append("launch --wait-ready 30s rc=%d after %.0fs (want 1)" % (r.returncode, took))
            elif first_reason and first_reason not in out:
                problems.append("launch rc=1 but does not name %r: %r" % (first_reason, out[:160]))
            for i, (name, want, keys) in enumerate(steps):
                if i > 0:
                    pass
                st = poll(lambda: e.agent_state() if e.agent_state()[0] == "blocked" else None, 8, 0.3) \
                    or e.agent_state()
                e.capture("onboarding-%s" % name)
                notes.append("%s: %s/%s" % (name, st[0], st[1]))
                if st[0] != "blocked" or (want and st[1] != want):
                    problems.append("%s screen reads %s/%s (want blocked/%s)" % (name, st[0], st[1], want or "any"))
                if keys:
                    before = e.screen()
                    for k in keys:
                        e.keys(k)
                        time.sleep(0.3)
                    poll(lambda: e.screen() != before, 5, 0.2)
                    time.sleep(0.5)
            det = "; ".join(notes)
            if problems:
                det += " | " + "; ".join(problems)
            self.report("onboarding", "FAIL" if problems else "PASS", det)
        self.with_env(body)

    def case_usage_limit(self):
        P = self.profile
        auth = "oauth" if "oauth" in getattr(P, "AUTH_MODES", ()) else None

        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            beh = P.USAGE_LIMIT_BEHAVIOUR() if hasattr(P, "USAGE_LIMIT_BEHAVIOUR") else {
                "usage_limit": int(time.time() + 7200)}
            e.script(queue=[beh])
            trig = uniq("limit")
            e.send(trig, "--wait", "60s", timeout=90)
            if not poll(lambda: e.turns_with(trig), 30, 0.2):
                raise Fail("the triggering message never reached the model")
            blocked = poll(lambda: e.agent_state() == ("blocked", "usage-limit"), 20, 0.3)
            e.capture("usage-limit")
            a = e.agent()
            until = a.get("until") or a.get("reset") or (e.status().get("until"))
            if not until:
                for ev in e.events():
                    if ev.get("until"):
                        until = "%s (from ev=%s)" % (ev["until"], ev.get("ev"))
            held = uniq("held")
            e.send(held, timeout=30)
            leaked = poll(lambda: e.turns_with(held), 6, 0.3)
            det = "status %s/%s until=%s; message sent then %s" % (
                a.get("state"), a.get("reason"), until, "LEAKED to the model" if leaked else "held")
            notice = [ln.strip() for ln in e.screen().splitlines() if "limit" in ln.lower()]
            det += "; screen: %r" % notice[:2]
            ok = bool(blocked) and bool(until) and not leaked
            self.report("usage_limit", "PASS" if ok else "FAIL", det)
        self.with_env(body, auth=auth)

    def case_pool(self):
        """An agent pool (SPEC section 10): ``--ephemeral --workers 2 --reset
        /clear`` with the README's hooks. Two prompts sent at once by two
        scripts (``send --wait``) each print the mock's answer to their own
        prompt; a third goes to an instance that already answered one (no
        new instance starts), after ``/clear`` (its model turn carries no
        earlier prompt), and prints the mock's scripted answer byte for byte,
        markdown marks included: the reply came from the transcript the
        ``Stop`` hook named, not from the screen (which shows it rendered)."""
        if not self.args.hooks:
            raise Skip("needs --hooks (the Stop hook names the transcript)")

        def body(e):
            e.add_args = ["--ephemeral", "--workers", "2", "--reset", "/clear"]
            e.setup()
            texts = [uniq("pool-a"), uniq("pool-b")]
            got = {}

            def ask(t):
                got[t] = e.mv("send", PEER, t, "--wait", "150s", timeout=180)
            threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            problems = []
            for t in texts:
                r = got[t]
                want = "ok: " + t  # the mock's answer to a turn with no script
                if r.returncode != 0 or r.stdout.rstrip("\n") != want:
                    problems.append("send %s: rc=%d stdout=%r (want %r) stderr=%r" % (
                        t, r.returncode, r.stdout[-200:], want, r.stderr.strip()[-200:]))
            starts = len(e.events("instance-start"))
            # What a warm instance costs: its runner, the agent and the
            # agent's children (PSS shares libraries fairly between them).
            mem = []
            for w in (e.status().get("workers") or []):
                if w.get("runner_pid"):
                    mem.append(tree_memory_kib(w["runner_pid"]))
            marks = []
            for n in sorted(os.listdir(os.path.join(e.root, "state"))):
                if n.startswith(PEER + ".pool-") and n.endswith(".mark.json"):
                    with open(os.path.join(e.root, "state", n)) as f:
                        marks.append(json.load(f))
            transcripts = [m.get("transcript_path") for m in marks]
            if len(marks) != 2 or not all(p and os.path.isfile(p) for p in transcripts):
                problems.append("instance marks without a transcript: %r" % marks)
            # The third prompt, to a reused instance, after /clear.
            third = uniq("pool-c")
            answer = "**%s** done:\n\n- `one`\n- two" % third
            e.script(queue=[{"reply": answer}])
            r = e.mv("send", PEER, third, "--wait", "150s", timeout=180)
            if r.returncode != 0 or r.stdout.rstrip("\n") != answer:
                problems.append("third send: rc=%d stdout=%r (want %r) stderr=%r" % (
                    r.returncode, r.stdout[-200:], answer, r.stderr.strip()[-200:]))
            # The panes show the answer rendered (no ** marks): a reply with
            # them came from the transcript.
            sock = os.path.join(e.root, "run", PEER + ".sock")
            panes = subprocess.run(["tmux", "-S", sock, "list-panes", "-a", "-F", "#{pane_id}"],
                                   capture_output=True, text=True, timeout=10).stdout.split()
            shown = "".join(subprocess.run(
                ["tmux", "-S", sock, "capture-pane", "-p", "-J", "-S", "-200", "-t", p],
                capture_output=True, text=True, timeout=10).stdout for p in panes)
            rendered = third in shown and "**" + third not in shown
            if not rendered:
                problems.append("the panes do not show the answer rendered: %r" % [
                    ln for ln in shown.splitlines() if third in ln])
            hits = e.turns_with(third)
            history = (hits[0].get("history") or []) if hits else None
            if hits and any(t in (h or "") for h in history for t in texts):
                problems.append("the reused instance's turn carries an earlier prompt (no /clear): %r"
                                % history)
            if not hits:
                problems.append("no model turn for the third prompt")
            starts_after = len(e.events("instance-start"))
            if starts_after != starts:
                problems.append("a new instance started for the third prompt (%d -> %d)" % (
                    starts, starts_after))
            det = "2 concurrent replies %s; the panes show the third answer rendered, the reply " \
                  "has its ** marks (from the transcript); %d instance starts; transcripts %s; third via a reused " \
                  "instance, history after /clear %r" % (
                      "match" if not problems else "checked", starts,
                      [os.path.basename(p or "") for p in transcripts], history)
            if mem:
                det += "; memory per idle instance (runner + agent tree): PSS %s MiB, RSS %s MiB" % (
                    "/".join("%.0f" % (p / 1024) for p, _ in mem),
                    "/".join("%.0f" % (r / 1024) for _, r in mem))
            if problems:
                det += " | " + "; ".join(problems)
            self.report("pool", "FAIL" if problems else "PASS", det,
                        instance_pss_kib=[p for p, _ in mem], instance_rss_kib=[r for _, r in mem])
        self.with_env(body, hooks=True)

    def case_screens(self):
        """Capture-only: final error displays (no retries) and a draft."""
        P = self.profile

        def body(e):
            e.setup()
            r = e.launch_ready("90s", timeout=120)
            if r.returncode != 0:
                raise Fail("launch rc=%d" % r.returncode)
            notes = []
            for status in (429, 529):
                e.script(queue=[{"status": status}])
                t = uniq("e%d" % status)
                e.send(t, "--wait", "60s", timeout=90)
                poll(lambda: "API Error" in e.screen() and str(status) in e.screen(), 20, 0.3)
                time.sleep(1)
                e.capture("error-%d" % status)
                notes.append("after %d: %s/%s" % ((status,) + e.agent_state()))
                e.script()
            d = uniq("draft")
            e.mv("send", PEER, "--when", "now", "--no-enter", d, timeout=20)
            poll(lambda: d in e.screen(), 10, 0.2)
            time.sleep(1)
            e.capture("draft")
            notes.append("draft: %s/%s" % e.agent_state())
            self.report("screens", "PASS", "; ".join(notes))
        self.with_env(body, extra_env=dict(getattr(P, "CAPTURE_ENV", {})))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cli", required=True)
    ap.add_argument("--muxvisor", default=shutil.which("muxvisor") or "muxvisor")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cases", default=None)
    ap.add_argument("--cache", default="/work/cache/conformance")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--hooks", action="store_true")
    ap.add_argument("--capture", default=None)
    ap.add_argument("--keep", action="store_true")
    inst = ap.add_mutually_exclusive_group()
    inst.add_argument("--no-install", action="store_true",
                      help="exit 3 (SKIP all) when the CLI is not installed in --cache")
    inst.add_argument("--install-only", action="store_true",
                      help="install the pinned CLI, print its path, exit 0")
    args = ap.parse_args(argv)
    if args.cases:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    else:
        cases = DEFAULT_CASES + (["screens"] if args.capture else [])
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        ap.error("unknown case(s): %s (known: %s)" % (",".join(unknown), ",".join(ALL_CASES)))
    kit = Kit(args)
    P = kit.profile
    if args.install_only:
        print(P.find(args.cache) or P.install(args.cache))
        return 0
    kit.binary = P.find(args.cache)
    if kit.binary is None:
        if args.no_install:
            print("SKIP all: %s %s is not installed in %s (run: python3 tests/conformance/kit.py "
                  "--cli %s --install-only)" % (P.NAME, P.VERSION, args.cache, args.cli), flush=True)
            return 3
        kit.binary = P.install(args.cache)
    for c in cases:
        kit.run_case(c)
    passed = len([r for r in kit.results if r["result"] == "PASS"])
    failed = len([r for r in kit.results if r["result"] == "FAIL"])
    if args.json:
        print(json.dumps({"cli": P.NAME, "version": P.VERSION, "muxvisor": kit.mv,
                          "hooks": args.hooks, "results": kit.results,
                          "passed": passed, "failed": failed}, indent=2))
    else:
        print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
