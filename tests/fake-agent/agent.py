#!/usr/bin/env python3
"""A fake interactive agent for muxvisor's integration tests.

It behaves like Claude Code in a terminal closely enough that muxvisor's
`claude` preset (src/agent/presets.rs) reads its states, and it records every
turn it receives, so a test can prove that messages arrive whole, in order,
once each, and never while the agent is busy.

Run it in a tmux pane (Python 3 standard library only):

    tmux -S /tmp/x.sock -f /dev/null new-session -d -x 120 -y 40 \
        tests/fake-agent/agent.py --log /tmp/turns.jsonl --busy 0.5

Screen, in the style of Claude Code 1.x (cleared and redrawn per state):
  ready     a rounded prompt box `╭──╮ / │ > <draft> │ / ╰──╯` and
            `  ? for shortcuts`; an empty draft is what a ready pattern matches.
  busy      for --busy seconds after each submit: a spinner line that changes
            every 100 ms, e.g. `✻ Thinking… (0.3s · esc to interrupt)`, above
            the prompt box, which stays drawn (Claude does the same).
  blocked   --trust-dialog: Claude Code's trust dialog at start (2.1.19 text);
            --permission-every N: a `Do you want to proceed?` prompt half-way
            through every Nth turn; --usage-limit-after N: a usage-limit notice
            with a reset time, and the agent stays there.
  starting  --slow-start S: a plain `starting` screen for S seconds.

Input (the tty is in raw mode; bracketed paste is enabled with ESC[?2004h
and disabled again on exit):
  ESC[200~ … ESC[201~   a pasted block; it is added to the draft as is,
                        newlines included (a CR inside a paste, which is how
                        `tmux paste-buffer` sends a newline, becomes LF; CRLF
                        becomes LF).
  printable text        typed into the draft; Backspace (DEL or ^H) deletes
                        the last character; LF (^J) adds a newline.
  Enter (CR)            submits the draft as one turn, whatever the state:
                        the turn is logged with the state it arrived in. When
                        ready, it starts a busy period; when busy, starting or
                        blocked it is only logged (and the draft cleared) —
                        that is the bug the tests look for. An empty draft is
                        a turn too (Claude ignores an empty Enter; the fake
                        logs it so that an empty message can be seen). In a
                        dialog, an Enter with no pending text answers the
                        dialog instead (see below).
  Esc                   (a lone ESC byte: nothing follows within 50 ms)
                        while busy: interrupts the turn (back to ready, with
                        Claude's `Interrupted · What should Claude do
                        instead?` line); in the permission prompt: answers No.
  Ctrl-C                exits at once with status 130, in every state.

Dialogs: digits choose an option, Enter confirms the chosen one (option 1 is
chosen when the dialog opens, as in Claude Code). Trust: 1 proceeds, 2 exits
with status 1. Permission: 1 or 2 continue the turn, 3 ends it. The
usage-limit screen answers nothing: an Enter there only logs a "blocked"
turn (Ctrl-C still exits).

Log (--log FILE; appended, flushed per line, one JSON object a line):
  at start  {"argv": [...], "pid": n, "session_id": ID|null, "resume": ID|null}
  per turn  {"turn": n, "text": "<exact draft>", "state": "ready"|"busy"|
            "blocked"|"starting", "t": <unix time, float>}
            n counts every submit from 1, whatever the state.

Lost Enters (what Claude Code 2.1.x and Gemini CLI 0.61 do):
  --drop-enter-after-paste MS  an Enter that arrives within MS ms of the end
                             of a paste is dropped, as Claude Code drops one
                             it receives while still taking a paste in (a
                             paste and its Enter in one tmux command arrive
                             together); logged {"dropped_enter": "paste"}.
  --drop-enters N            the first N Enters on a non-empty draft are
                             dropped (an agent that never takes the message
                             in); logged {"dropped_enter": "count"}.
  --ignore TEXT              every Enter on a draft equal to TEXT is
                             dropped (a command this agent never takes in);
                             logged {"dropped_enter": "ignored"}.

Lifecycle flags:
  --exit-before-ready CODE   exit at once with CODE (a failing start).
  --resume ID with env FAKE_AGENT_RESUME_FAILS=1: print Claude's
                             `No conversation found with session ID: ID` and
                             exit 1 before ever being ready.
  --die-after N              exit 3 when the Nth turn has finished.
  --die-on-paste TEXT        kill -9 itself once a paste of exactly TEXT
                             is drawn in the draft, before its Enter (an
                             agent killed while muxvisor types, e.g. a
                             pool's --reset between two tasks).
  --reply echo               a finished turn shows `● reply to: <text>`
                             (agent pools: each prompt's own reply); a
                             `/clear` turn empties the history, as Claude's.
  --usage-limit-after N      when the Nth turn has finished, show the notice
                             (`You've hit your limit · resets 4pm (UTC)`, the
                             reset an hour ahead, in UTC) and stay blocked.
Unknown flags and arguments are ignored, so the fake can stand in for
`claude` with real flags (e.g. `--permission-mode plan`).

Strings shown are Claude Code's, from the sources listed for the `claude`
preset in src/agent/presets.rs and tests/fixtures/screens/SOURCES.md.
"""

import argparse
import random
import subprocess
import codecs
import json
import os
import select
import signal
import sys
import termios
import time
import tty

SPINNER = ["·", "✢", "*", "✶", "✻", "✽"]  # Claude Code's frames on Linux
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
ESC_WAIT = 0.05  # seconds to wait after ESC for the rest of a sequence


def parse_args(argv):
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--busy", type=float, default=1.0)
    # Up to this many more seconds, drawn at random per turn (benchmarks).
    p.add_argument("--busy-jitter", type=float, default=0.0)
    p.add_argument("--drop-enter-after-paste", type=float, default=0.0)
    p.add_argument("--drop-enters", type=int, default=0)
    p.add_argument("--ignore", default=None)
    p.add_argument("--trust-dialog", action="store_true")
    p.add_argument("--permission-every", type=int, default=0)
    p.add_argument("--usage-limit-after", type=int, default=0)
    p.add_argument("--slow-start", type=float, default=0.0)
    # For benchmarks, the cost of a real agent's start: CPU seconds burnt
    # while starting (a Node.js CLI loading), and MiB held for its life.
    p.add_argument("--start-cpu", type=float, default=0.0)
    p.add_argument("--mem", type=int, default=0)
    # Agent pools: what a finished turn shows. "done" (default): `● Done:
    # turn N.`; "echo": `● reply to: <the turn's text>` (newlines as " / "),
    # so a test can tell each prompt's reply.
    p.add_argument("--reply", choices=["done", "echo"], default="done")
    p.add_argument("--die-after", type=int, default=0)
    p.add_argument("--die-on-paste", default=None)
    p.add_argument("--exit-before-ready", type=int, default=None)
    p.add_argument("--log", default=None)
    p.add_argument("--session-id", default=None)
    p.add_argument("-r", "--resume", default=None)
    # For benchmarks: run this shell command (in the background) each time
    # the ready prompt is drawn again after a turn, like a Stop hook.
    p.add_argument("--on-ready", default=None)
    args, _unknown = p.parse_known_args(argv)
    return args


class Log:
    """Appends one JSON line per event and flushes it at once."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8") if path else None

    def write(self, obj):
        if self.f:
            self.f.write(json.dumps(obj) + "\n")
            self.f.flush()


class Agent:
    def __init__(self, args, log, fd_in, fd_out):
        self.args = args
        self.log = log
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.state = "starting"  # starting | trust | ready | busy | permission | limit
        self.draft = ""
        self.turns = 0  # every submit
        self.done = 0  # finished turns (processed while ready)
        self.history = []  # lines shown above the prompt
        self.choice = 1  # chosen option in a dialog
        self.pending = b""  # unparsed input bytes
        self.in_paste = False
        self.paste = b""
        self.paste_ended = 0.0
        self.drops_left = args.drop_enters
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.busy_started = 0.0
        self.busy_until = 0.0
        self.busy_left = 0.0  # remaining busy time while a permission prompt shows
        self.asked = False  # this turn's permission prompt was shown
        self.reset = ""
        self.dirty = True

    # ---- output ----------------------------------------------------------

    def size(self):
        try:
            c, r = os.get_terminal_size(self.fd_out)
            return max(c, 40), max(r, 10)
        except OSError:
            return 120, 40

    def write(self, s):
        data = s.encode("utf-8")
        while data:
            n = os.write(self.fd_out, data)
            data = data[n:]

    def draw(self):
        cols, rows = self.size()
        body = self.render(cols)
        body = body[-rows:]  # keep the bottom, like a scrolled terminal
        # Clear and home, then each line; raw mode needs CR LF.
        self.write("\x1b[H\x1b[2J" + "\r\n".join(line[:cols] for line in body))
        self.dirty = False

    def prompt_box(self, cols):
        width = min(cols, 100)
        inner = width - 4
        lines = self.draft.split("\n")
        out = ["╭" + "─" * (width - 2) + "╮"]
        for i, text in enumerate(lines):
            lead = "> " if i == 0 else "  "
            out.append("│ " + (lead + text)[:inner].ljust(inner) + " │")
        out.append("╰" + "─" * (width - 2) + "╯")
        out.append("  ? for shortcuts")
        return out

    def render(self, cols):
        rule = "─" * min(cols, 120)
        head = ["fake-agent: a stand-in for Claude Code (muxvisor tests)", ""]
        if self.state == "starting":
            return head + ["  starting"]
        if self.state == "trust":
            return head + trust_dialog(rule, os.getcwd(), self.choice)
        hist = self.history[-12:]
        if self.state == "ready":
            return head + hist + [""] + self.prompt_box(cols)
        if self.state == "busy":
            elapsed = time.time() - self.busy_started
            frame = SPINNER[int(elapsed * 10) % len(SPINNER)]
            spin = "%s Thinking… (%.1fs · esc to interrupt)" % (frame, elapsed)
            return head + hist + ["", spin, ""] + self.prompt_box(cols)
        if self.state == "permission":
            return head + hist + permission_prompt(rule, self.choice)
        if self.state == "limit":
            return head + hist + usage_limit(rule, self.reset)
        return head

    # ---- input -----------------------------------------------------------

    def read_input(self, timeout):
        """Wait up to `timeout` seconds for input and handle what arrives."""
        r, _, _ = select.select([self.fd_in], [], [], max(timeout, 0))
        if not r:
            return
        data = os.read(self.fd_in, 4096)
        if not data:
            raise SystemExit(0)  # the terminal went away
        self.pending += data
        while self.pending:
            if not self.step():
                break

    def step(self):
        """Consume one unit of pending input; False when more bytes are needed."""
        buf = self.pending
        if self.in_paste:
            end = buf.find(PASTE_END)
            if end < 0:
                # Keep a possible partial end marker for the next read.
                keep = len(PASTE_END) - 1
                self.paste += buf[:-keep] if len(buf) > keep else b""
                self.pending = buf[-keep:] if len(buf) > keep else buf
                return False
            self.paste += buf[:end]
            self.pending = buf[end + len(PASTE_END) :]
            self.in_paste = False
            self.paste_ended = time.monotonic()
            text = self.paste.decode("utf-8", errors="replace")
            self.paste = b""
            if self.args.die_on_paste is not None and text == self.args.die_on_paste:
                self.die_when_drawn = True
            self.on_text(text.replace("\r\n", "\n").replace("\r", "\n"))
            return True
        b = buf[0]
        if b == 0x1B:
            if len(buf) == 1:
                # A lone ESC, or the start of a sequence still in flight.
                r, _, _ = select.select([self.fd_in], [], [], ESC_WAIT)
                if r:
                    more = os.read(self.fd_in, 4096)
                    if more:
                        self.pending += more
                        return True
                self.pending = b""
                self.on_escape()
                return True
            if buf[1:2] == b"[":
                i = 2
                while i < len(buf) and not (0x40 <= buf[i] <= 0x7E):
                    i += 1
                if i >= len(buf):
                    r, _, _ = select.select([self.fd_in], [], [], ESC_WAIT)
                    if r:
                        more = os.read(self.fd_in, 4096)
                        if more:
                            self.pending += more
                            return True
                    self.pending = b""  # a broken sequence: drop it
                    return True
                seq = buf[: i + 1]
                self.pending = buf[i + 1 :]
                if seq == PASTE_START:
                    self.in_paste = True
                    self.paste = b""
                return True  # other CSI sequences (arrows, focus) are ignored
            # ESC O x (SS3) or Alt+key: ignored.
            self.pending = buf[3:] if buf[1:2] == b"O" else buf[2:]
            return True
        self.pending = buf[1:]
        if b == 0x03:
            self.quit(130)
        elif b == 0x0D:
            self.on_enter()
        elif b == 0x0A:
            self.on_text("\n")
        elif b in (0x7F, 0x08):
            self.draft = self.draft[:-1]
            self.dirty = True
        elif b < 0x20:
            pass  # other control keys are ignored
        else:
            text = self.decoder.decode(bytes([b]))
            if text:
                self.on_char(text)
        return True

    def on_char(self, ch):
        if self.state in ("trust", "permission") and ch.isdigit() and not self.draft:
            self.choice = int(ch)
            self.dirty = True
            return
        self.on_text(ch)

    def on_text(self, text):
        self.draft += text
        self.dirty = True

    def on_escape(self):
        if self.state == "busy":
            self.history.append("  ⎿  Interrupted · What should Claude do instead?")
            self.finish_turn(interrupted=True)
        elif self.state == "permission":
            self.choice = 3
            self.answer_permission()
        elif self.state == "trust":
            self.quit(1)

    def on_enter(self):
        window = self.args.drop_enter_after_paste / 1000.0
        if window and time.monotonic() - self.paste_ended < window:
            self.log.write({"dropped_enter": "paste", "t": time.time()})
            return
        if self.args.ignore is not None and self.draft == self.args.ignore:
            self.log.write({"dropped_enter": "ignored", "t": time.time()})
            return
        if self.drops_left > 0 and self.draft:
            self.drops_left -= 1
            self.log.write({"dropped_enter": "count", "t": time.time()})
            return
        dialog = self.state in ("trust", "permission")
        if dialog and not self.draft:
            if self.state == "trust":
                if self.choice == 1:
                    self.state = "ready"
                    self.dirty = True
                elif self.choice == 2:
                    self.quit(1)
            else:
                self.answer_permission()
            return
        self.submit()

    # ---- turns -----------------------------------------------------------

    def logged_state(self):
        return {
            "starting": "starting",
            "ready": "ready",
            "busy": "busy",
        }.get(self.state, "blocked")

    def submit(self):
        text, self.draft = self.draft, ""
        self.turns += 1
        state = self.logged_state()
        self.log.write({"turn": self.turns, "text": text, "state": state, "t": time.time()})
        self.dirty = True
        if state != "ready":
            return
        if text == "/clear":
            # Claude Code's /clear: a fresh conversation, no turn.
            self.history = []
            return
        self.last_text = text
        first = text.split("\n", 1)[0]
        self.history.append("> " + (first[:70] + (" [+more]" if "\n" in text or len(first) > 70 else "")))
        self.state = "busy"
        self.busy_started = time.time()
        self.busy_until = self.busy_started + self.args.busy + random.uniform(0, self.args.busy_jitter)
        self.asked = False

    def answer_permission(self):
        if self.choice in (1, 2):
            self.state = "busy"
            self.busy_until = time.time() + self.busy_left
        else:
            self.history.append("  ⎿  User rejected the command")
            self.finish_turn(interrupted=True)
        self.choice = 1
        self.dirty = True

    def finish_turn(self, interrupted=False):
        self.ready_pending = True
        self.done += 1
        if not interrupted:
            if self.args.reply == "echo":
                said = getattr(self, "last_text", "").replace("\n", " / ")
                self.history.append("● reply to: %s" % said)
            else:
                self.history.append("● Done: turn %d." % self.done)
        self.state = "ready"
        self.dirty = True
        if self.args.die_after and self.done >= self.args.die_after:
            self.quit(3)
        if self.args.usage_limit_after and self.done >= self.args.usage_limit_after:
            self.state = "limit"
            self.reset = reset_in_an_hour()

    def tick(self):
        """Advance time: spinner, the permission prompt, the end of a turn."""
        if self.state != "busy":
            return
        now = time.time()
        n = self.args.permission_every
        due_prompt = n and (self.done + 1) % n == 0 and not self.asked
        if due_prompt and now >= self.busy_started + self.args.busy / 2:
            self.asked = True
            self.busy_left = max(self.busy_until - now, 0.0)
            self.history.append("● Bash(rm -rf build)")
            self.history.append("  ⎿  Running…")
            self.state = "permission"
            self.choice = 1
        elif now >= self.busy_until:
            self.finish_turn()
        self.dirty = True  # the spinner moves

    def run(self):
        if self.args.mem > 0 or self.args.start_cpu > 0:
            self.draw()
        if self.args.mem > 0:
            # Touch every page, so that it is really resident.
            self.ballast = bytearray(self.args.mem << 20)
            for i in range(0, len(self.ballast), 4096):
                self.ballast[i] = 1
        if self.args.start_cpu > 0:
            end = time.process_time() + self.args.start_cpu
            while time.process_time() < end:
                sum(range(10000))
        if self.args.slow_start > 0:
            end = time.time() + self.args.slow_start
            self.draw()
            while time.time() < end:
                self.read_input(end - time.time())
        self.state = "trust" if self.args.trust_dialog else "ready"
        self.choice = 1
        self.dirty = True
        while True:
            if self.dirty:
                self.draw()
                if getattr(self, "die_when_drawn", False):
                    os.kill(os.getpid(), signal.SIGKILL)
                if getattr(self, "ready_pending", False) and self.state == "ready":
                    # The ready prompt is on the screen now: log when, and
                    # run the --on-ready command (the benchmark's Stop hook).
                    self.ready_pending = False
                    self.log.write({"ready": time.time(), "after_turn": self.done})
                    if self.args.on_ready:
                        subprocess.Popen(self.args.on_ready, shell=True,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.read_input(0.1 if self.state == "busy" else 1.0)
            self.tick()

    def quit(self, code):
        raise SystemExit(code)


def trust_dialog(rule, cwd, choice):
    """Claude Code 2.1.19's trust dialog, as quoted in AgentWorkforce/relay#756."""
    opts = ["Yes, proceed", "No, exit"]
    return [
        rule,
        " Do you trust the files in this folder?",
        "",
        " " + cwd,
        "",
        " Claude Code may read, write, or execute files contained in this directory.",
        " This can pose security risks, so only use files from trusted sources.",
        "",
        " Learn more",
        "",
    ] + [
        (" ❯ " if i + 1 == choice else "   ") + "%d. %s" % (i + 1, o) for i, o in enumerate(opts)
    ] + ["", " Enter to confirm · Esc to cancel"]


def permission_prompt(rule, choice):
    """A Bash permission prompt as quoted in anthropics/claude-code#34007."""
    opts = [
        "Yes",
        "Yes, and don't ask again for: rm:*",
        "No, and tell Claude what to do differently (esc)",
    ]
    return [
        "",
        rule,
        " Bash command",
        "",
        "   rm -rf build",
        "   Remove the build directory",
        "",
        " Do you want to proceed?",
    ] + [(" ❯ " if i + 1 == choice else "   ") + "%d. %s" % (i + 1, o) for i, o in enumerate(opts)]


def usage_limit(rule, reset):
    """The usage-limit notice and menu as quoted in gastownhall/gastown#1066 and
    anthropics/claude-code#20719 (`You've hit your limit · resets 10pm (…)`)."""
    return [
        "  ⎿  You've hit your limit · resets %s" % reset,
        "",
        "❯ /rate-limit-options",
        rule,
        " What do you want to do?",
        "",
        " ❯ 1. Stop and wait for limit to reset",
        "   2. Upgrade your plan",
        "",
        " Enter to confirm · Esc to cancel",
    ]


def reset_in_an_hour():
    """An hour from now in Claude's format: `4pm (UTC)`, `4:30pm (UTC)`."""
    t = time.gmtime(time.time() + 3600)
    hour = t.tm_hour % 12 or 12
    ampm = "am" if t.tm_hour < 12 else "pm"
    if t.tm_min:
        return "%d:%02d%s (UTC)" % (hour, t.tm_min, ampm)
    return "%d%s (UTC)" % (hour, ampm)


def main(argv):
    args = parse_args(argv[1:])
    log = Log(args.log)
    log.write({"argv": argv, "pid": os.getpid(), "session_id": args.session_id, "resume": args.resume})
    if args.exit_before_ready is not None:
        return args.exit_before_ready
    if args.resume is not None and os.environ.get("FAKE_AGENT_RESUME_FAILS") == "1":
        sys.stdout.write("No conversation found with session ID: %s\n" % args.resume)
        sys.stdout.flush()
        time.sleep(0.2)  # let the terminal show the reason before the pane dies
        return 1

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(fd_in) if os.isatty(fd_in) else None

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    # Redraw when the pane is resized.
    agent = Agent(args, log, fd_in, fd_out)
    signal.signal(signal.SIGWINCH, lambda *_: setattr(agent, "dirty", True))
    try:
        if saved is not None:
            tty.setraw(fd_in)
        agent.write("\x1b[?2004h")  # bracketed paste on
        agent.run()
    finally:
        try:
            agent.write("\x1b[?2004l\r\n")  # bracketed paste off
        except OSError:
            pass
        if saved is not None:
            termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
