#!/usr/bin/env bash
# The system calls a live runner makes per task (issue #21): a peer whose
# program is `true`, its runner started by a first send and left waiting in
# its pane; then `strace -c -f` follows that runner while N more tasks are
# sent (--no-kick: the runner alone does the work) and run. Prints strace's
# table; divide the calls by N.
#
#   bench/runner_syscalls.sh [BIN] [N]   (default: target/release/muxvisor, 100)
#
# Works in its own temp root; stops its peer there and removes the root at the end.
set -euo pipefail
M="${1:-target/release/muxvisor}"
N="${2:-100}"
command -v strace >/dev/null || { echo "needs strace" >&2; exit 1; }
R="$(mktemp -d /tmp/mvrs.XXXXXX)"
trap '"$M" --root "$R" stop w >/dev/null 2>&1 || true; rm -rf "$R"' EXIT
pending() { "$M" --root "$R" --json queue w list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pending"]))'; }
wait_drained() {
  for _ in $(seq 600); do [ "$(pending)" = 0 ] && return 0; sleep 0.1; done
  echo "the queue did not drain within 60 s" >&2; exit 1
}
"$M" --root "$R" add w --ephemeral --linger 120s -- true >/dev/null
"$M" --root "$R" send w -- first >/dev/null
pid=""
for _ in $(seq 200); do
  pid="$(cat "$R/queues/w/runner.lock" 2>/dev/null || true)"; [ -n "$pid" ] && break; sleep 0.05
done
[ -n "$pid" ] || { echo "no runner started" >&2; exit 1; }
wait_drained
strace -c -f -o "$R/strace.out" -p "$pid" & S=$!
sleep 0.5
for _ in $(seq "$N"); do "$M" --root "$R" send w --no-kick -- x >/dev/null; done
wait_drained
sleep 0.3
kill -INT "$S"; wait "$S" || true
echo "runner $pid, $N tasks ($("$M" --version)):"
head -32 "$R/strace.out"
