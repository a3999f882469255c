#!/usr/bin/env bash
# benches/history_fanout.sh: the cost of room history on fan-out. One publisher, one room of S
# subscribers (`ringcast bench fanout`, no baseline phase), against a server with history off and
# one whose room keeps its last 100 messages, alternating ROUNDS times, for each room size in
# SIZES. Prints the server's CPU time per delivery for each run (from /proc/PID/stat, utime +
# stime, over the whole run: joins, publishes, drain) and, per room size, the median ratio
# history-on / history-off.
#
# Server on core 0 (1 worker), tool on core 1, 127.0.0.1 only. Bounded: per size 2 × ROUNDS runs
# of DURATION plus joins and drain, each run killed after 300 s; about 3 minutes in all at the
# defaults.
#
# Environment: SIZES (default "1000 10000"), RATES (messages/s for each size, default "200 20":
# 200 000 deliveries/s either way, which one core serves without slow consumers), DURATION
# (default 5s), ROUNDS (default 3), PORT (default 19441), BIN (the server, default
# <target>/release/ringcast), BENCH (the load tool, default <target>/release/ringcast-bench),
# SKIP_BUILD=1. S and RATE (one size) still work.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
BENCH=${BENCH:-$TARGET/release/ringcast-bench}
if [[ -n ${S:-} ]]; then
    SIZES=$S
    RATES=${RATE:-200}
fi
read -r -a sizes <<<"${SIZES:-1000 10000}"
read -r -a rates <<<"${RATES:-200 20}"
[[ ${#sizes[@]} == "${#rates[@]}" ]] || { echo "history_fanout.sh: one rate per size" >&2; exit 1; }
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19441}

command -v taskset >/dev/null || { echo "history_fanout.sh: taskset (util-linux) is needed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast --bin ringcast-bench)
fi
# Each subscriber is one socket in the tool and one in the server.
ulimit -n 40000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
max_size=$(printf '%s\n' "${sizes[@]}" | sort -n | tail -1)
(( $(ulimit -n) > max_size + 100 )) || { echo "history_fanout.sh: ulimit -n $(ulimit -n) is too low for $max_size subscribers" >&2; exit 1; }

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

# cpu_ticks PID: utime + stime of PID in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# median of the arguments
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -a summary=()
for i in "${!sizes[@]}"; do
    S=${sizes[$i]}
    RATE=${rates[$i]}
    declare -a ratios=()
    for round in $(seq "$ROUNDS"); do
        declare -A per=()
        for mode in off on; do
            args=(--history-size 0)
            [[ $mode == on ]] && args=(--history-size 100 --history-ttl 10m)
            taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" --workers 1 --max-connections $((S + 1000)) \
                --backlog 16384 "${args[@]}" >/dev/null 2>&1 &
            server_pid=$!
            wait_for_port "$PORT" || { echo "server did not start" >&2; exit 1; }
            before=$(cpu_ticks "$server_pid")
            # Exit 3: the run had problems (slow consumers, refused connections); its last line
            # says which, and a run with problems is not a figure.
            status=0
            report=$(timeout 300 taskset -c 1 "$BENCH" fanout --url "ws://127.0.0.1:$PORT/ws" -c "$S" \
                --rate "$RATE" --duration "$DURATION" --threads 1 --no-baseline --quiet --json) || status=$?
            after=$(cpu_ticks "$server_pid")
            stop_server
            if [[ $status != 0 ]]; then
                echo "$S subscribers, history $mode: the load tool exited $status; not a figure" >&2
                exit 1
            fi
            delivered=$(python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["fanout"]["delivered"])' <<<"$report")
            ns=$(python3 -c "print(round(($after - $before) * 1e9 / $(getconf CLK_TCK) / $delivered, 1))")
            echo "$S subscribers, $RATE msg/s, round $round, history $mode: $delivered deliveries, server CPU $ns ns per delivery"
            per[$mode]=$ns
        done
        ratios+=("$(python3 -c "print(round(${per[on]} / ${per[off]}, 3))")")
    done
    summary+=("$S subscribers: history on / off, server CPU per delivery: ${ratios[*]} (median $(median "${ratios[@]}"))")
done
printf '%s\n' "${summary[@]}"
