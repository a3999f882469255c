#!/usr/bin/env bash
# benches/fanout.sh: one publisher, one room of S subscribers, against the same frames written to
# S plain TCP sockets without a server (the baseline phase of `ringcast-bench fanout`), on
# 127.0.0.1 only. The figures in tuning.md ("Fan-out") come from this script.
#
# Runs (each starts its own server and stops it by its pid):
#   10k-r100   S = 10 000, 2 workers, unpinned; 100 msg/s for $DURATION; tool and baseline
#              writer with 2 threads each (like the server's 2 workers)
#   10k-r10    the same at 10 msg/s
#   1k-pinned-r100   S = 1 000, 1 worker pinned to core 0, the tool on core 1, the baseline
#                    writer pinned to core 0 (where the server was); 100 msg/s
#   1k-pinned-r1000  the same at 1 000 msg/s (a million deliveries a second: saturates a core)
# Prints each report's table; JSON reports land in bench-results/fanout-<UTC time>/ (gitignored).
# Bounded: 4 runs of $DURATION (default 5 s) plus the joins, drain (2 s) and close, about 1.5 minutes
# in all once built.
#
# The open-file hard limit here is 20 000: S = 10 000 fits because the baseline writer is a
# separate process (the tool holds only the subscribers' ends).
#
# Environment: DURATION, PORT (default 19431), BIN (the server, default <target>/release/ringcast),
# BENCH (the load tool, default <target>/release/ringcast-bench), SKIP_BUILD=1 to use the binaries
# already built.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
BENCH=${BENCH:-$TARGET/release/ringcast-bench}
DURATION=${DURATION:-5s}
PORT=${PORT:-19431}
OUT=$ROOT/bench-results/fanout-$(date -u +%Y%m%dT%H%M%SZ)

command -v taskset >/dev/null || { echo "fanout.sh: taskset (util-linux) is needed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "fanout.sh: python3 is needed for the summary" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast --bin ringcast-bench)
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

# name | server cpus ("" = unpinned) | workers | tool cpus | bench arguments
RUNS=(
    "10k-r100||2||-c 10000 --rate 100 --threads 2 --baseline-writers 2"
    "10k-r10||2||-c 10000 --rate 10 --threads 2 --baseline-writers 2"
    "1k-pinned-r100|0|1|1|-c 1000 --rate 100 --threads 1 --baseline-writers 1 --baseline-cpu 0"
    "1k-pinned-r1000|0|1|1|-c 1000 --rate 1000 --threads 1 --baseline-writers 1 --baseline-cpu 0"
)

for run in "${RUNS[@]}"; do
    IFS='|' read -r name server_cpus workers tool_cpus bench_args <<<"$run"
    server=("$BIN" serve --listen "127.0.0.1:$PORT" --workers "$workers" --max-connections 20000)
    tool=("$BENCH" fanout --url "ws://127.0.0.1:$PORT/ws" --duration "$DURATION" --quiet)
    [[ -n $server_cpus ]] && server=(taskset -c "$server_cpus" "${server[@]}")
    [[ -n $tool_cpus ]] && tool=(taskset -c "$tool_cpus" "${tool[@]}")
    "${server[@]}" >"$OUT/$name.server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$PORT" || { echo "server did not start: $OUT/$name.server.log" >&2; exit 1; }
    echo "== $name"
    # Exit 3: the run finished but lost deliveries or connections; its report still prints (the
    # tool's last stderr line says what was lost). Anything else non-zero stops the script.
    rc=0
    # shellcheck disable=SC2086 # bench_args is a list of flags
    "${tool[@]}" $bench_args --server-pid "$server_pid" --json >"$OUT/$name.json" || rc=$?
    [[ $rc == 0 || $rc == 3 ]] || { echo "ringcast-bench failed (exit $rc)" >&2; exit 1; }
    python3 - "$OUT/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b, f, p = r["baseline"], r["fanout"], r["latency_us"]
q = b["latency_us"]
print(f"room:     {r['per_second']:>10,.0f} deliveries/s  p50 {p['p50']:>9,.1f} us  p99 {p['p99']:>9,.1f} us"
      f"  missing {f['missing_deliveries']}  server cpu {r['cpu']['server_cores']:.2f}  tool cpu {r['cpu']['tool_cores']:.2f}")
print(f"baseline: {b['per_second']:>10,.0f} deliveries/s  p50 {q['p50']:>9,.1f} us  p99 {q['p99']:>9,.1f} us"
      f"  missing {b['missing_deliveries']}  writer cpu {b['writer_cores']:.2f}  tool cpu {b['tool_cores']:.2f}")
x = b["ratio"]
print(f"room / baseline: deliveries/s {x['deliveries_per_second']:.2f}x (higher is better)  "
      f"p50 {x['p50']:.2f}x (lower is better)  p99 {x['p99']:.2f}x (lower is better)")
for problem in r["problems"]:
    print(f"problem: {problem}")
PY
    stop_server
done
echo "JSON reports: $OUT"
