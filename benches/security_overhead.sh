#!/usr/bin/env bash
# What the per-message security checks cost end to end: `/echo` throughput with every message
# limit on (set high enough never to refuse) against the same server with them off, alternating
# runs in one script so machine noise hits both. One worker on core 0, the load tool on core 1.
#
#   bash benches/security_overhead.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
SECS="${2:-4}"
cargo build --release --quiet
BIN=target/release/ringcast
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() { # run LABEL EXTRA_FLAGS...
  local label=$1; shift
  local p; p=$(port)
  taskset -c 0 "$BIN" serve --listen "127.0.0.1:$p" --workers 1 "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  local rate
  rate=$(taskset -c 1 "$BIN" bench echo --url "ws://127.0.0.1:$p/echo" -c 100 -p 32 -d 16 \
           --duration "${SECS}s" --json 2>/dev/null | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"]))')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$label $rate"
}
off=0; on=0
for r in $(seq "$ROUNDS"); do
  a=$(run off); b=$(run on --message-rate 100000000 --message-burst 100000000 --message-bytes-rate 1GiB --max-connections-per-ip 100000)
  echo "round $r: $a msg/s | $b msg/s"
  off=$((off + ${a#off })); on=$((on + ${b#on }))
done
python3 -c "print(f'limits on / off: {$on/$off:.3f} (mean of $ROUNDS rounds, {$off//$ROUNDS} vs {$on//$ROUNDS} msg/s)')"
