#!/usr/bin/env bash
# benches/cluster.sh: the cost of clustering rooms through Redis, ratios from one run, 127.0.0.1 only.
# The figures in tuning.md ("Cluster") come from this script.
#
# One publisher, one room of $SUBS subscribers (`ringcast bench fanout`), $RATE msg/s for $DURATION,
# every room keeping 100 messages of history (--history-size 100):
#   memory     1 node, 1 worker, no cluster: history in the owner worker's memory
#   redis      1 node, 1 worker, --cluster: offsets, history and fan-out through Redis
#   3nodes     3 nodes, 1 worker each, --cluster, all listening on the same port (SO_REUSEPORT
#              spreads the subscribers and the publisher over the three processes)
# Per run: deliveries/s, p50/p99 publish-to-delivery latency, CPU of the first node (the tool's
# --server-pid) and the time Redis spent executing commands per published message (INFO
# commandstats, reset before each run; it includes the subscribers' joins).
#
# Environment: DURATION (default 5s), SUBS (default 1000), RATE (default 100), PORT (default
# 19441), BIN (default <target>/release/ringcast), SKIP_BUILD=1 to use the binary already built.
# Needs redis-server and redis-cli (Debian package redis-server) and python3. Bounded: 3 runs of $DURATION plus
# joins and drains, about half a minute.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
DURATION=${DURATION:-5s}
SUBS=${SUBS:-1000}
RATE=${RATE:-100}
PORT=${PORT:-19441}
OUT=$ROOT/bench-results/cluster-$(date -u +%Y%m%dT%H%M%SZ)

command -v redis-server >/dev/null || { echo "cluster.sh: redis-server is needed" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "cluster.sh: redis-cli is needed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "cluster.sh: python3 is needed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast)
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap stop_all EXIT

wait_for_port() {
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Microseconds Redis spent in the commands ringcast sends (scripts, subscriptions) since the last
# CONFIG RESETSTAT (INFO commandstats; the commands a script runs are inside its own time).
redis_usec() {
    redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
        awk -F'usec=' '/^cmdstat_(evalsha|subscribe|unsubscribe):/ {split($2, a, ","); sum += a[1]} END {print sum + 0}'
}

REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
redis_pid=$!
trap 'stop_all; kill $redis_pid 2>/dev/null || true' EXIT
wait_for_port "$REDIS_PORT" || { echo "redis-server did not start" >&2; exit 1; }

# name | nodes | cluster?
RUNS=("memory|1|no" "redis|1|yes" "3nodes|3|yes")
for run in "${RUNS[@]}"; do
    IFS='|' read -r name nodes cluster <<<"$run"
    args=(serve --listen "127.0.0.1:$PORT" --workers 1 --max-connections 20000 --history-size 100)
    [[ $cluster == yes ]] && args+=(--cluster "redis://127.0.0.1:$REDIS_PORT")
    for i in $(seq "$nodes"); do
        "$BIN" "${args[@]}" >"$OUT/$name.node$i.log" 2>&1 &
        pids+=($!)
    done
    wait_for_port "$PORT" || { echo "node did not start: $OUT/$name.node1.log" >&2; exit 1; }
    sleep 0.5 # let every node's bridge connect (their /healthz says so; the first publish needs it)
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    "$BIN" bench fanout --url "ws://127.0.0.1:$PORT/ws" -c "$SUBS" --rate "$RATE" \
        --duration "$DURATION" --no-baseline --quiet --server-pid "${pids[0]}" --json >"$OUT/$name.json"
    redis_usec >"$OUT/$name.redis-usec"
    stop_all
done

python3 - "$OUT" "$RATE" "$DURATION" <<'PY'
import json, sys, os
out, rate, duration = sys.argv[1], float(sys.argv[2]), sys.argv[3]
secs = float(duration.rstrip("s"))
rows = {}
for name in ["memory", "redis", "3nodes"]:
    r = json.load(open(os.path.join(out, name + ".json")))
    redis_us = float(open(os.path.join(out, name + ".redis-usec")).read()) / (rate * secs)
    rows[name] = r
    p = r["latency_us"]
    print(f"{name:7} {r['per_second']:>10.0f} deliveries/s  p50 {p['p50']:>8.1f} us  p99 {p['p99']:>8.1f} us"
          f"  missing {r['fanout']['missing_deliveries']}  node1 cpu {r['cpu']['server_cores']:.2f}"
          f"  redis {redis_us:.1f} us/publish")
m, c, t = rows["memory"], rows["redis"], rows["3nodes"]
print(f"redis / memory  (1 node): deliveries/s {c['per_second']/m['per_second']:.2f}"
      f"  p99 {c['latency_us']['p99']/m['latency_us']['p99']:.2f}"
      f"  node cpu {c['cpu']['server_cores']/max(m['cpu']['server_cores'],1e-9):.2f}")
print(f"3 nodes / 1 node (redis): deliveries/s {t['per_second']/c['per_second']:.2f}"
      f"  p99 {t['latency_us']['p99']/c['latency_us']['p99']:.2f}")
PY
echo "JSON reports: $OUT"
