#!/usr/bin/env bash
# Tick benchmarks (issue #4): wall time and CPU of one `supervise --once` with
# N running idle peers next to the serial floor (N x one `tmux list-panes`),
# peak RSS at the largest N, and ephemeral start latencies (send -> worker
# start on the kick path; worker exit -> next worker start on the tick path).
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
    m=$( { /usr/bin/time -f "%e %U %S %M" "$MV" --root "$ROOT" supervise --once >/dev/null; } 2>&1 | tail -1)
    read -r e u s rss <<<"$m"
    walls+=("$(awk -v e="$e" 'BEGIN{print e*1000}')")
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
  rows+=("| $n | $w | $c | $f | $(awk -v w="$w" -v n="$n" 'BEGIN{printf "%.1f", w/n}') |")
done

# Retire the idle fleet so the latencies below time one peer's tick, not
# the observation of a hundred others.
seq 1 "$have" | xargs -P 10 -I{} "$MV" --root "$ROOT" rm --force "idle{}" >/dev/null

# Ephemeral latencies. The worker stamps its start and, just before it
# exits, its end (nanoseconds since the epoch).
STAMPS="$BASE/stamps"
mkdir -p "$STAMPS"
spec eph ephemeral "[\"sh\",\"-c\",\"date +%s%N > $STAMPS/start.\$MUXVISOR_TASK_ID; date +%s%N > $STAMPS/end.\$MUXVISOR_TASK_ID\"]"
wait_file() { for _ in $(seq 1000); do [ -s "$1" ] && return 0; sleep 0.005; done; echo "timeout waiting for $1" >&2; return 1; }
task_of() { sed -n 's/.*task \([0-9a-z]*\).*/\1/p'; }

kick=()
for r in $(seq 10); do
  "$MV" --root "$ROOT" supervise --once >/dev/null # ack the last one, free the slot
  t0=$(now_ns)
  t=$("$MV" --root "$ROOT" send eph "k$r" | task_of)
  wait_file "$STAMPS/start.$t"
  kick+=("$(( ($(cat "$STAMPS/start.$t") - t0) / 1000000 ))")
done
"$MV" --root "$ROOT" supervise --once >/dev/null

tickpath=()
tickonly=()
prev=""
extra=0
for r in $(seq 11); do
  t=$("$MV" --root "$ROOT" send eph "t$r" --no-kick | task_of)
  if [ -z "$prev" ]; then "$MV" --root "$ROOT" supervise --once >/dev/null; wait_file "$STAMPS/end.$t"; prev=$t; continue; fi
  # The end stamp precedes the exit: tick once tmux shows the pane dead,
  # the earliest a tick can see it (tmux 3.3a may lose the status and delay
  # the pane-died hook; the tick's own observation nudges it).
  for _ in $(seq 1000); do
    d=$(tmux -S "$ROOT/run/eph.sock" -f /dev/null list-panes -t '=eph:' -F '#{pane_dead}' 2>/dev/null || echo 1)
    [ "$d" = 1 ] && break
    sleep 0.002
  done
  ta=$(now_ns)
  "$MV" --root "$ROOT" supervise --once >/dev/null # acks $prev, starts $t
  tickonly+=("$(( ($(now_ns) - ta) / 1000000 ))")
  for _ in 1 2 3; do # a tick that started nothing is counted and retried
    for _ in $(seq 200); do [ -s "$STAMPS/start.$t" ] && break; sleep 0.005; done
    [ -s "$STAMPS/start.$t" ] && break
    extra=$((extra + 1))
    "$MV" --root "$ROOT" supervise --once >/dev/null
  done
  wait_file "$STAMPS/start.$t"
  tickpath+=("$(( ($(cat "$STAMPS/start.$t") - $(cat "$STAMPS/end.$prev")) / 1000000 ))")
  wait_file "$STAMPS/end.$t"
  prev=$t
done
# The tick path includes the wait between the worker's exit and this script
# starting the tick; the script starts it as soon as the end stamp exists.
kick_med=$(printf '%s\n' "${kick[@]}" | median)
tick_med=$(printf '%s\n' "${tickpath[@]}" | median)
tickonly_med=$(printf '%s\n' "${tickonly[@]}" | median)

{
  echo "# Tick benchmarks"
  echo
  echo "Command: \`bench/tick.sh ${SIZES[*]}\` (RUNS=$RUNS), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores,"
  echo "$(tmux -V), release build. Medians. Peers are idle \`sleep\` programs, each"
  echo "in its own tmux server with its canary."
  echo
  echo "| peers | tick wall ms | tick CPU ms (user+sys) | serial floor ms (N x list-panes) | wall ms per peer |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Peak RSS of one tick at ${SIZES[-1]} peers: ${peak_rss} KiB."
  echo
  echo "Ephemeral start latency, median of 10:"
  echo "- send -> worker start (kick path): ${kick_med} ms (samples: ${kick[*]})"
  echo "- worker exit -> next worker start (tick path: the tick is started as soon as tmux shows the pane dead): ${tick_med} ms (samples: ${tickpath[*]})"
  echo "- of which the tick itself (wall time of the \`supervise --once\` that acks and starts): ${tickonly_med} ms (samples: ${tickonly[*]})"
  echo "- ticks that started no worker although one was due (retried at once): ${extra}"
} > "$OUT"
cat "$OUT"
