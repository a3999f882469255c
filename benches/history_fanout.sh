#!/usr/bin/env bash
# benches/history_fanout.sh: the cost of room history on fan-out. One publisher, one room of S
# subscribers (`ringcast bench fanout`, no baseline phase), against a server with history off and
# one whose room keeps its last 100 messages, alternating ROUNDS times. Prints the server's CPU
# time per delivery for each run (from /proc/PID/stat, utime + stime, over the whole run: joins,
# publishes, drain) and the median ratio history-on / history-off.
#
# Server on core 0 (1 worker), tool on core 1, 127.0.0.1 only. Bounded: 2 × ROUNDS runs of
# DURATION plus joins and drain, about 1 minute per round pair at the defaults.
#
# Environment: S (default 1000), RATE (default 1000 msg/s), DURATION (default 5s), ROUNDS
# (default 3), PORT (default 19441), BIN (default <target>/release/ringcast), SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
S=${S:-1000}
RATE=${RATE:-1000}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19441}

command -v taskset >/dev/null || { echo "history_fanout.sh: taskset (util-linux) is needed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast)
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

# cpu_ticks PID: utime + stime of PID in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -a ratios=()
for round in $(seq "$ROUNDS"); do
    declare -A per=()
    for mode in off on; do
        args=(--history-size 0)
        [[ $mode == on ]] && args=(--history-size 100 --history-ttl 10m)
        taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" --workers 1 --max-connections 20000 \
            "${args[@]}" >/dev/null 2>&1 &
        server_pid=$!
        wait_for_port "$PORT" || { echo "server did not start" >&2; exit 1; }
        before=$(cpu_ticks "$server_pid")
        report=$(taskset -c 1 "$BIN" bench fanout --url "ws://127.0.0.1:$PORT/ws" -c "$S" \
            --rate "$RATE" --duration "$DURATION" --threads 1 --no-baseline --quiet --json)
        after=$(cpu_ticks "$server_pid")
        stop_server
        delivered=$(python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["fanout"]["delivered"])' <<<"$report")
        ns=$(python3 -c "print(round(($after - $before) * 1e9 / $(getconf CLK_TCK) / $delivered, 1))")
        echo "round $round history $mode: $delivered deliveries, server CPU $ns ns per delivery"
        per[$mode]=$ns
    done
    ratios+=("$(python3 -c "print(round(${per[on]} / ${per[off]}, 3))")")
done
echo "history on / off, server CPU per delivery: ${ratios[*]} (median $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'))"
