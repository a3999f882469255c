#!/usr/bin/env bash
# benches/compare.sh: ringcast against peer echo servers, one server at a time.
#
# Each server runs alone, pinned to core $SERVER_CORE (default 0), with `ringcast bench` pinned to
# core $LOAD_CORE (default 1), on 127.0.0.1 only. Scenarios:
#   echo-100x32B-d16   100 connections x 32 B payload x 16 messages in flight
#   echo-10x16KiB      10 connections x 16 KiB payload, 1 in flight
#   latency-10k        a fixed 10 000 msg/s over 100 connections (round trips from the schedule)
# Servers (a command per peer, {PORT} replaced; a server whose port never opens is reported as
# unavailable and skipped, e.g. a ringcast binary without `serve`):
#   ringcast        $RINGCAST_CMD, default: ringcast serve --workers 1 --listen 127.0.0.1:{PORT}
#   tungstenite     examples/peer_tungstenite.rs
#   fastwebsockets  examples/peer_fastwebsockets.rs
#   raw_uring       examples/raw_echo_uring.rs, loaded with --raw (no WebSocket work: the ceiling)
# Prints a table of absolute figures and the ratios ringcast / each peer; JSON reports land in
# bench-results/<UTC time>/ (gitignored). Bounded: 12 runs of $DURATION (default 5 s) plus about
# 3 s of setup, drain and close each, about 2 minutes in all once built (a cold release build is
# extra).
#
# Environment: DURATION, PORT (default 19001), SERVER_CORE, LOAD_CORE, RINGCAST_CMD, LOADGEN
# (default: "<target>/release/ringcast bench"; any command taking `ringcast bench` flags),
# SKIP_BUILD=1 to use binaries already built.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-5s}
PORT=${PORT:-19001}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
LOADGEN=${LOADGEN:-"$TARGET/release/ringcast bench"}
RINGCAST_CMD=${RINGCAST_CMD:-"$TARGET/release/ringcast serve --workers 1 --listen 127.0.0.1:{PORT}"}
OUT=$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)

command -v python3 >/dev/null || { echo "compare.sh: python3 is needed for the table" >&2; exit 1; }
command -v taskset >/dev/null || { echo "compare.sh: taskset (util-linux) is needed" >&2; exit 1; }

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast \
        --example peer_tungstenite --example peer_fastwebsockets --example raw_echo_uring)
fi
mkdir -p "$OUT"

# name | command with {PORT} | mode (ws or raw) | path
SERVERS=(
    "ringcast|$RINGCAST_CMD|ws|/echo"
    "tungstenite|$TARGET/release/examples/peer_tungstenite {PORT}|ws|/"
    "fastwebsockets|$TARGET/release/examples/peer_fastwebsockets {PORT}|ws|/"
    "raw_uring|$TARGET/release/examples/raw_echo_uring {PORT}|raw|/"
)
# name | ringcast bench arguments
SCENARIOS=(
    "echo-100x32B-d16|echo -c 100 -p 32 -d 16"
    "echo-10x16KiB|echo -c 10 -p 16384 -d 1"
    "latency-10k|latency -c 100 -p 32 --rate 10000"
)

server_pid=""
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# Waits up to 5 s for the port to accept; fails if the server exited or never listened.
wait_for_port() {
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

for server in "${SERVERS[@]}"; do
    IFS='|' read -r name command mode path <<<"$server"
    command=${command//\{PORT\}/$PORT}
    # shellcheck disable=SC2086 # the command is a word list on purpose
    taskset -c "$SERVER_CORE" $command >"$OUT/$name.log" 2>&1 &
    server_pid=$!
    if ! wait_for_port; then
        echo "compare.sh: $name unavailable (see $OUT/$name.log)" >&2
        stop_server
        continue
    fi
    for scenario in "${SCENARIOS[@]}"; do
        IFS='|' read -r scn flags <<<"$scenario"
        raw=""
        [[ $mode == raw ]] && raw="--raw"
        echo "compare.sh: $name $scn" >&2
        # shellcheck disable=SC2086
        # The tool bounds itself (duration + 2 s drain + 1 s close); `timeout` guards the script.
        if ! timeout 120 taskset -c "$LOAD_CORE" $LOADGEN $flags $raw --url "ws://127.0.0.1:$PORT$path" \
            --duration "$DURATION" --server-pid "$server_pid" --quiet --json \
            >"$OUT/$name-$scn.json" 2>"$OUT/$name-$scn.err"; then
            echo "compare.sh: $name $scn failed: $(cat "$OUT/$name-$scn.err")" >&2
            rm -f "$OUT/$name-$scn.json"
        fi
    done
    stop_server
done

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
servers = ["ringcast", "tungstenite", "fastwebsockets", "raw_uring"]
scenarios = ["echo-100x32B-d16", "echo-10x16KiB", "latency-10k"]
def load(server, scn):
    path = os.path.join(out, f"{server}-{scn}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
print(f"{'scenario':<18} {'server':<15} {'msg/s':>10} {'MB/s':>8} {'p50 us':>8} {'p99 us':>9} "
      f"{'p99.9 us':>9} {'fail':>5} {'srv cpu':>7} {'tool cpu':>8}")
for scn in scenarios:
    for server in servers:
        r = load(server, scn)
        if r is None:
            print(f"{scn:<18} {server:<15} {'n/a':>10}")
            continue
        lat = r.get("latency_us") or {}
        fails = sum(r["failures"].values()) + r["unanswered"]
        srv = r["cpu"]["server_cores"]
        print(f"{scn:<18} {server:<15} {r['per_second']:>10.0f} {r['mb_per_second']:>8.2f} "
              f"{lat.get('p50', 0):>8.1f} {lat.get('p99', 0):>9.1f} {lat.get('p999', 0):>9.1f} "
              f"{fails:>5} {srv if srv is None else round(srv, 2)!s:>7} {r['cpu']['tool_cores']:>8.2f}")
print()
print("ratios ringcast / peer (msg/s for echo: higher is better; p99 for latency: lower is better)")
for scn in scenarios:
    base = load("ringcast", scn)
    for server in servers[1:]:
        other = load(server, scn)
        if base is None or other is None:
            print(f"{scn:<18} ringcast/{server:<15} n/a")
            continue
        if scn.startswith("latency"):
            a, b = base["latency_us"]["p99"], other["latency_us"]["p99"]
        else:
            a, b = base["per_second"], other["per_second"]
        print(f"{scn:<18} ringcast/{server:<15} {a / b if b else float('nan'):.2f}")
print(f"\nJSON reports: {out}")
PY
