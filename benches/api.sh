#!/usr/bin/env bash
# benches/api.sh: the server API against /ws, in one run of one server. Drives the client in
# examples/api_bench.rs (see its doc): publishes/s with keep-alive at 1 and 16 pipelined
# requests per connection against the same publishes as /ws frames, then publish-to-delivery
# latency at S members for a publisher on the API against one on /ws. API and /ws phases
# alternate ROUNDS times; it prints each phase and the median API ÷ /ws ratio.
#
# Server on core 0 (WORKERS workers, default 1), client on core 1, 127.0.0.1 only. Bounded:
# 4 × ROUNDS throughput phases and 2 × ROUNDS latency phases of DURATION seconds each, plus opening S
# members: about 1 minute at the defaults.
#
# Environment: S (default 1000), RATE (default 100 publishes/s), CONNS (default 8), DURATION
# (seconds per phase, default 3), ROUNDS (default 3), WORKERS (default 1), BIN (default <target>/release/ringcast),
# SKIP_BUILD=1, JSON=1 (one JSON object instead of the table).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
CLIENT=$TARGET/release/examples/api_bench
S=${S:-1000}
RATE=${RATE:-100}
CONNS=${CONNS:-8}
SECONDS_EACH=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}
KEY=bench-api-key-0123456789abcdef

command -v taskset >/dev/null || { echo "api.sh: taskset (util-linux) is needed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p ringcast --bin ringcast --example api_bench)
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

PORT=$(free_port)
API_PORT=$(free_port)
# tput: rooms keep 100 messages, so every throughput publish takes an offset and is kept.
RINGCAST_API_KEY=$KEY taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" \
    --api-listen "127.0.0.1:$API_PORT" --workers "$WORKERS" --max-connections 20000 \
    --history-rooms "tput:=100" >/dev/null 2>&1 &
server_pid=$!
wait_for_port "$PORT" || { echo "server did not start" >&2; exit 1; }
wait_for_port "$API_PORT" || { echo "the API did not start" >&2; exit 1; }

extra=()
[[ ${JSON:-0} == 1 ]] && extra=(--json)
taskset -c 1 "$CLIENT" --ws "127.0.0.1:$PORT" --api "127.0.0.1:$API_PORT" --key "$KEY" \
    --conns "$CONNS" --seconds "$SECONDS_EACH" --rounds "$ROUNDS" --subscribers "$S" \
    --rate "$RATE" "${extra[@]}"
stop_server
