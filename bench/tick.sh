#!/usr/bin/env bash
# Tick benchmarks (issue #4): wall time and CPU of one `supervise --once` with
# N running idle peers next to the serial floor (N x one `tmux list-panes`),
# peak RSS at the largest N, and ephemeral start latencies (send -> task
# start, with no runner alive and with one lingering).
#
# Usage: bench/tick.sh [N...]   (default: 10 50 100). Writes
# bench/TICK-RESULTS.md. Builds the release binary first. Every server it
# starts lives under a private temp root and is killed by socket at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=("${@:-10}")
[ $# -gt 0 ] || SIZES=(10 50 100)
RUNS=${RUNS:-5}
cargo build --release --quiet
MV="$PWD/target/release/muxvisor"
OUT="$PWD/bench/TICK-RESULTS.md"
BASE=$(mktemp -d /tmp/mvb.XXXX)
ROOT="$BASE/r"

cleanup() {
  [ "${KEEP_LOG:-}" = 1 ] && tail -30 "$ROOT/logs/lifecycle.log" >&2
  for s in "$ROOT"/run/*.sock; do
    [ -e "$s" ] || continue
    id=$(basename "$s" .sock)
    echo "bench teardown" > "$ROOT/run/$id.stopping"
    timeout 5 tmux -S "$s" -f /dev/null kill-server 2>/dev/null || true
  done
  if [ "${KEEP_LOG:-}" = 1 ]; then echo "kept $BASE" >&2; else rm -rf "$BASE"; fi
}
trap cleanup EXIT

# A peer spec, exactly what `muxvisor add` writes.
spec() { # id policy argv-json
  printf '{"identity":"%s","policy":"%s","command":%s,"cwd":"%s","env":{},"restart":"on-failure","backoff":"1s","max_backoff":"5m","restart_burst":5,"restart_window":"10m","max_attempts":3,"task_ttl":"1d","task_timeout":"1h","deliver":"argv"}\n' \
    "$1" "$2" "$3" "$BASE" > "$ROOT/peers/$1.json"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ns() { date +%s%N; }

"$MV" --root "$ROOT" supervise --once >/dev/null # creates the root
rows=()
peak_rss=""
have=0
for n in "${SIZES[@]}"; do
  # Grow the fleet to n idle peers (launch settles 1 s each: run 10 at once).
  for i in $(seq $((have + 1)) "$n"); do spec "idle$i" persistent '["sleep","100000"]'; done
  seq $((have + 1)) "$n" | xargs -P 10 -I{} "$MV" --root "$ROOT" launch "idle{}" >/dev/null
  have=$n
  "$MV" --root "$ROOT" supervise --once >/dev/null # warm-up (retrofits, caches)
  walls=(); cpus=(); floors=()
  for r in $(seq "$RUNS"); do
    # Wall time from our own nanosecond clock (time's %e counts whole
    # centiseconds, too coarse for a tick of a few peers); it includes
    # starting /usr/bin/time, about a millisecond. CPU stays time's.
    t0=$(now_ns)
    m=$( { /usr/bin/time -f "%e %U %S %M" "$MV" --root "$ROOT" supervise --once >/dev/null; } 2>&1 | tail -1)
    t1=$(now_ns)
    read -r e u s rss <<<"$m"
    walls+=("$(awk -v d="$((t1 - t0))" 'BEGIN{printf "%.1f", d/1000000}')")
    cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN{print (u+s)*1000}')")
    [ "$n" = "${SIZES[-1]}" ] && peak_rss="$rss"
    t0=$(now_ns)
    for i in $(seq "$n"); do
      tmux -S "$ROOT/run/idle$i.sock" -f /dev/null list-panes -t "=idle$i:" \
        -F '#{pid}|#{pane_pid}|#{pane_dead}|#{pane_dead_status}' >/dev/null
    done
    floors+=("$(( ($(now_ns) - t0) / 1000000 ))")
  done
  w=$(printf '%s\n' "${walls[@]}" | median)
  c=$(printf '%s\n' "${cpus[@]}" | median)
  f=$(printf '%s\n' "${floors[@]}" | median)
  rows+=("| $n | $w | $c | $f | $(awk -v w="$w" -v n="$n" 'BEGIN{printf "%.2f", w/n}') | $(awk -v f="$f" -v n="$n" 'BEGIN{printf "%.2f", f/n}') |")
done

# Retire the idle fleet so the latencies below time one peer's tick, not
# the observation of a hundred others.
seq 1 "$have" | xargs -P 10 -I{} "$MV" --root "$ROOT" rm --force "idle{}" >/dev/null

# Ephemeral start latencies. The task's program stamps its start
# (nanoseconds since the epoch). Cold: no runner is alive, so the send
# starts a tmux server, its canary and the runner (`--linger 0s`: the runner
# leaves at once after its queue empties). Warm: the runner lingers
# (`--linger 30s`) and takes the next task itself. Task-to-task times of a
# burst are in bench/drain.py.
STAMPS="$BASE/stamps"
mkdir -p "$STAMPS"
prog="[\"sh\",\"-c\",\"date +%s%N > $STAMPS/start.\$MUXVISOR_TASK_ID\"]"
spec cold ephemeral "$prog"
spec warm ephemeral "$prog"
python3 - "$ROOT/peers/cold.json" 0s "$ROOT/peers/warm.json" 30s <<'PY'
import json, sys
for path, linger in zip(sys.argv[1::2], sys.argv[2::2]):
    d = json.load(open(path)); d["linger"] = linger; json.dump(d, open(path, "w"))
PY
wait_file() { for _ in $(seq 2000); do [ -s "$1" ] && return 0; sleep 0.005; done; echo "timeout waiting for $1" >&2; return 1; }
task_of() { sed -n 's/.*task \([0-9a-z]*\).*/\1/p'; }
gone() { # until the peer's runner and server have ended
  for _ in $(seq 2000); do
    "$MV" --root "$ROOT" --json status "$1" | grep -q '"server_pid":null' && return 0
    sleep 0.005
  done
  echo "timeout waiting for $1 to end" >&2; return 1
}

cold=()
for r in $(seq 10); do
  t0=$(now_ns)
  t=$("$MV" --root "$ROOT" send cold "c$r" | task_of)
  wait_file "$STAMPS/start.$t"
  cold+=("$(( ($(cat "$STAMPS/start.$t") - t0) / 1000000 ))")
  gone cold
done
warm=()
t=$("$MV" --root "$ROOT" send warm w0 | task_of) # starts the runner
wait_file "$STAMPS/start.$t"
for r in $(seq 10); do
  sleep 0.2 # the previous task has ended; the runner waits for the next
  t0=$(now_ns)
  t=$("$MV" --root "$ROOT" send warm "w$r" | task_of)
  wait_file "$STAMPS/start.$t"
  warm+=("$(( ($(cat "$STAMPS/start.$t") - t0) / 1000000 ))")
done
cold_med=$(printf '%s\n' "${cold[@]}" | median)
warm_med=$(printf '%s\n' "${warm[@]}" | median)

{
  echo "# Tick benchmarks"
  echo
  echo "Command: \`bench/tick.sh ${SIZES[*]}\` (RUNS=$RUNS), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores,"
  echo "$(tmux -V), release build. Medians. Peers are idle \`sleep\` programs, each"
  echo "in its own tmux server with its canary. Wall time from the script's own"
  echo "clock (it includes starting /usr/bin/time); CPU from /usr/bin/time, in 10 ms steps."
  echo
  echo "| peers | tick wall ms | tick CPU ms (user+sys) | serial floor ms (N x list-panes) | wall ms per peer | floor ms per peer |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Peak RSS of one tick at ${SIZES[-1]} peers: ${peak_rss} KiB."
  echo
  echo "Ephemeral start latency, median of 10:"
  echo "- send -> task start, no runner alive (the send starts a tmux server, its canary and the runner): ${cold_med} ms (samples: ${cold[*]})"
  echo "- send -> task start, runner lingering (it claims the task itself): ${warm_med} ms (samples: ${warm[*]})"
} > "$OUT"
cat "$OUT"
