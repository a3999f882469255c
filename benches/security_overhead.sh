#!/usr/bin/env bash
# What the per-message security checks cost end to end: `/echo` throughput with every message
# limit on (set high enough never to refuse) against the same server with them off, alternating
# runs in one script so machine noise hits both. One worker on core 0, the load tool on core 1.
#
#   bash benches/security_overhead.sh [ROUNDS] [SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS="${1:-3}"
SECS="${2:-4}"
cargo build --release --quiet --bin ringcast --bin ringcast-bench
BIN=target/release/ringcast
BENCH=target/release/ringcast-bench
# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

# run EXTRA_FLAGS...: prints the echo throughput (msg/s) of a fresh server started with them.
run() {
    local port
    port=$(free_port)
    taskset -c 0 "$BIN" serve --listen "127.0.0.1:$port" --workers 1 "$@" >/dev/null 2>&1 &
    server_pid=$!
    wait_for_port "$port" || { echo "server did not start" >&2; exit 1; }
    taskset -c 1 "$BENCH" echo --url "ws://127.0.0.1:$port/echo" -c 100 -p 32 -d 16 \
        --duration "${SECS}s" --json 2>/dev/null |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"]))'
    stop_server
}

LIMITS=(--message-rate 100000000 --message-burst 100000000 --message-bytes-rate 1GiB
        --max-connections-per-ip 100000)
off=0
on=0
for r in $(seq "$ROUNDS"); do
    a=$(run)
    b=$(run "${LIMITS[@]}")
    echo "round $r: limits off $a msg/s | limits on $b msg/s"
    off=$((off + a))
    on=$((on + b))
done
python3 -c "print(f'limits on / off: {$on/$off:.3f} (mean of $ROUNDS rounds, {$off//$ROUNDS} vs {$on//$ROUNDS} msg/s)')"
