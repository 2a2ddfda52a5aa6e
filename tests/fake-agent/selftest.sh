#!/usr/bin/env bash
# Self-test of tests/fake-agent/agent.py in private tmux servers.
#
#   tests/fake-agent/selftest.sh                  check behaviour and logs
#   tests/fake-agent/selftest.sh --write-fixtures also rewrite
#                                                 tests/fixtures/screens/fake-*.txt
#
# Each scenario starts its own tmux server on a socket under a temporary
# directory and kills only that server. Needs tmux and python3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
A="$here/agent.py"
FIX="$here/../fixtures/screens"
write=0
[ "${1:-}" = "--write-fixtures" ] && write=1
W=$(mktemp -d)
mkdir -p "$W/project"
printf 'set -g remain-on-exit on\n' > "$W/tmux.conf"
fails=0
n=0
S=

start() { # start COMMAND...: a fresh server running COMMAND in a 120x40 pane
  n=$((n + 1)); S="$W/s$n.sock"
  # The exit status is written to a file: tmux 3.3's #{pane_dead_status}
  # is sometimes empty for a pane that died at once.
  tmux -S "$S" -f "$W/tmux.conf" new-session -d -c "$W/project" -x 120 -y 40 \
    "$*; echo \$? > $W/exit$n"
}
stop() { tmux -S "$S" kill-server 2>/dev/null; }
cap() { tmux -S "$S" capture-pane -p; }
fixture() { # fixture NAME: keep the current screen as a fixture when asked to
  if [ $write = 1 ]; then cap > "$FIX/$1"; fi
}
paste() { # paste TEXT as a bracketed paste, without submitting
  printf '%s' "$1" > "$W/buf"
  tmux -S "$S" load-buffer -b fake "$W/buf"
  tmux -S "$S" paste-buffer -p -d -b fake
}
keys() { tmux -S "$S" send-keys "$@"; }
dead_status() { # the agent's exit status once it has exited ("" if it has not)
  local i
  for i in $(seq 1 30); do
    [ -s "$W/exit$n" ] && { cat "$W/exit$n"; return; }
    sleep 0.1
  done
  echo ""
}
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
screen_has() { cap | grep -qF -- "$1"; }
turns() { # turns LOG: "state:text" per turn, one a line (JSON-escaped text)
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if "turn" in o: print("%s:%s" % (o["state"], json.dumps(o["text"])[1:-1]))' "$1"
}

# 1. ready, draft, busy; a submit while busy is logged as busy; Esc interrupts;
#    an empty submit is a turn; Ctrl-C exits 130.
start "$A --log $W/a.jsonl --busy 1.2 --model opus --permission-mode plan"
sleep 0.6; fixture fake-ready.txt
check "ready screen" screen_has "? for shortcuts"
keys -l 'half a thought'; sleep 0.2; fixture fake-draft.txt
keys BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace; sleep 0.1
keys Enter; sleep 0.3; fixture fake-busy.txt
check "busy spinner" screen_has "esc to interrupt"
keys -l 'next idea'; sleep 0.15; fixture fake-busy.with-draft.txt
keys Enter; sleep 1.3; fixture fake-ready.after-turn.txt
paste $'line one\nline two\n'; sleep 0.2; fixture fake-draft.multiline.txt
keys Enter; sleep 0.2; keys Escape; sleep 0.3; fixture fake-ready.interrupted.txt
check "Esc interrupts" screen_has "Interrupted · What should Claude do instead?"
keys Enter; sleep 0.1; keys Escape; sleep 0.3
paste $'\nsecond line of a draft'; sleep 0.2; fixture fake-draft.empty-first-line.txt
keys C-c
check "Ctrl-C exits 130" test "$(dead_status)" = 130
stop
check "turns logged with their state" test "$(turns "$W/a.jsonl")" = "$(printf '%s\n' \
  'ready:half a' 'busy:next idea' 'ready:line one\nline two\n' 'ready:')"
check "argv logged" grep -q '"--permission-mode", "plan"' "$W/a.jsonl"

# 2. trust dialog: a paste + Enter there is a blocked turn; 1 + Enter proceeds.
start "$A --log $W/b.jsonl --trust-dialog --busy 0.3"
sleep 0.6; fixture fake-trust.txt
check "trust dialog" screen_has "Do you trust the files in this folder?"
paste 'early message'; keys Enter; sleep 0.2
keys 1 Enter; sleep 0.3
check "trust 1 proceeds" screen_has "│ >  "
stop
check "submit during the dialog is blocked" test "$(turns "$W/b.jsonl")" = "blocked:early message"
start "$A --trust-dialog"; sleep 0.6; keys 2 Enter
check "trust 2 exits 1" test "$(dead_status)" = 1
stop

# 3. permission prompt on every 2nd turn, answered with 1 + Enter.
start "$A --log $W/c.jsonl --permission-every 2 --busy 1.0"
sleep 0.5; paste 'first'; keys Enter; sleep 1.3
check "no prompt on turn 1" screen_has "Done: turn 1."
paste 'second'; keys Enter; sleep 0.8; fixture fake-permission.txt
check "permission prompt" screen_has "Do you want to proceed?"
keys 1 Enter; sleep 0.2
check "answered: busy again" screen_has "esc to interrupt"
sleep 0.9
check "turn 2 finished" screen_has "Done: turn 2."
stop

# 4. usage limit after one turn: it stays, and later submits are blocked.
start "$A --log $W/d.jsonl --usage-limit-after 1 --busy 0.3"
sleep 0.5; paste 'only turn'; keys Enter; sleep 0.8; fixture fake-usage-limit.txt
check "usage-limit notice" screen_has "You've hit your limit · resets "
paste 'after limit'; keys Enter; sleep 1.5
check "still limited" screen_has "Stop and wait for limit to reset"
stop
check "submit at the limit is blocked" test "$(turns "$W/d.jsonl")" = "$(printf '%s\n' 'ready:only turn' 'blocked:after limit')"

# 5. slow start: a submit before the prompt is logged as starting.
start "$A --log $W/e.jsonl --slow-start 1.0"
sleep 0.3; paste 'too early'; keys Enter; sleep 1.2
check "ready after a slow start" screen_has "? for shortcuts"
stop
check "submit while starting" test "$(turns "$W/e.jsonl")" = "starting:too early"

# 6. exits: --die-after, --exit-before-ready, a failing --resume.
start "$A --die-after 2 --busy 0.2"
sleep 0.5; for t in 1 2; do paste "t$t"; keys Enter; sleep 0.5; done
check "die after 2 turns: exit 3" test "$(dead_status)" = 3
stop
start "$A --log $W/f.jsonl --exit-before-ready 7"
check "exit before ready: 7" test "$(dead_status)" = 7
stop
start "env FAKE_AGENT_RESUME_FAILS=1 $A --log $W/f.jsonl --resume 11111111-2222"
check "failing resume exits 1" test "$(dead_status)" = 1
stop
start "$A --log $W/f.jsonl --session-id 33333333-4444"
sleep 0.5
check "fresh start with an id is ready" screen_has "? for shortcuts"
stop
check "resume and session id echoed" python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
assert [r["resume"] for r in rows] == [None, "11111111-2222", None], rows
assert rows[2]["session_id"] == "33333333-4444" and all("pid" in r for r in rows)' "$W/f.jsonl"

rm -rf "$W"
echo "$fails failed"
[ $fails = 0 ]
