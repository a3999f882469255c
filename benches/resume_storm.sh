#!/usr/bin/env bash
# benches/resume_storm.sh: a resume storm. SUBSCRIBERS connections in one room (presence off)
# all drop, MISSED messages are published meanwhile, and all reconnect at once and join with
# `since`; each checks that it gets `recovered:true` and every missed message exactly once, in
# order. Alternated with a baseline storm in which nothing was missed (same handshakes and joins,
# nothing replayed), ROUNDS times. Prints per storm the time from the first reconnect until the
# last subscriber caught up, the server's CPU time, and the server CPU per replayed message
# ((replay storm − baseline storm) / (SUBSCRIBERS × MISSED)). The client is
# examples/delivery_bench.rs (`storm`).
#
# Server on core 0 (1 worker), client on core 1, 127.0.0.1 only. Bounded: every phase of the
# client times out after 120 s; about 1 minute in all at the defaults.
#
# Environment: SUBSCRIBERS (default 10000), MISSED (default 100), SIZE (payload bytes, default
# 64), ROUNDS (default 3), PORT (default 19451), BIN (the server, default
# <target>/release/ringcast), CLIENT (default <target>/release/examples/delivery_bench),
# SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
CLIENT=${CLIENT:-$TARGET/release/examples/delivery_bench}
SUBSCRIBERS=${SUBSCRIBERS:-10000}
MISSED=${MISSED:-100}
SIZE=${SIZE:-64}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19451}

command -v taskset >/dev/null || { echo "resume_storm.sh: taskset (util-linux) is needed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast --example delivery_bench)
fi
# One socket per subscriber in the client and one in the server.
ulimit -n 40000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > SUBSCRIBERS + 100 )) || { echo "resume_storm.sh: ulimit -n $(ulimit -n) is too low for $SUBSCRIBERS subscribers" >&2; exit 1; }

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

# The room keeps the missed messages (and a few more); the storm's replay is bounded by
# --max-recovery-messages, and each subscriber's replay is queued at once.
taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" --workers 1 \
    --max-connections $((SUBSCRIBERS + 1000)) --backlog 16384 \
    --history-rooms "storm:=$((MISSED + 10))/10m" --max-recovery-messages "$((MISSED + 10))" \
    >/dev/null 2>&1 &
server_pid=$!
wait_for_port "$PORT" || { echo "server did not start" >&2; exit 1; }
echo "somaxconn $(cat /proc/sys/net/core/somaxconn) (a backlog above it is capped)"
taskset -c 1 "$CLIENT" storm --url "ws://127.0.0.1:$PORT/ws" --pid "$server_pid" \
    --subscribers "$SUBSCRIBERS" --missed "$MISSED" --size "$SIZE" --rounds "$ROUNDS"
