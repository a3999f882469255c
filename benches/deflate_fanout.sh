#!/usr/bin/env bash
# benches/deflate_fanout.sh: what permessage-deflate costs the server and saves on the wire, per
# `--compression` mode (off, shared, dedicated), end to end on 127.0.0.1.
#
# For each mode a fresh release server (one worker, so its CPU time is one core's work) runs:
#   fanout  one publisher, S subscribers (S = 1 000 and 10 000) in one room; realistic JSON
#           bodies of 300 B (a chat message) and 4 KiB (a dashboard update), `ringcast-bench
#           fanout --deflate --json-payload`: every subscriber offers permessage-deflate as a
#           browser does and inflates (and checks) what arrives compressed.
#   echo    C connections (default 50) echo the same bodies on /echo, one in flight each.
# The tool sends its own messages uncompressed; `off` declines the same offer, so every mode sees
# the same clients. Figures per run, from the tool's JSON report:
#   server CPU per message: the server's utime+stime delta over the measurement (/proc/PID/stat)
#       divided by the messages published (fanout) or echoed (echo);
#   bytes per delivery: bytes the subscribers (or echo clients) read from the server during the
#       measurement, frame headers included, divided by the deliveries (or echoes);
#   and both as a ratio to `off` in the same script run.
# Rates: fanout at RATE_1K msg/s to 1 000 subscribers and RATE_10K to 10 000 (default 20 and 2:
# 20 000 deliveries/s either way; at 50 000/s the tool, inflating every delivery on one thread of
# this shared 2-core machine, fell behind and deliveries arrived after the drain).
#
# Bounded: 3 modes × (4 fanout + 2 echo runs) × DURATION (default 5 s) plus opening, drain (2 s)
# and close: about 5 minutes. Needs `ulimit -n` ≥ 10 100 for the tool (raised here up to the hard
# limit) and a server `--max-connections` above 10 001 (given here).
#
# Environment: MODES, SIZES (default "300 4096"), SUBSCRIBERS (default "1000 10000"), RATE_1K,
# RATE_10K, ECHO_CONNS, DURATION, SERVER_ARGS (more `serve` flags), SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
BENCH=${BENCH:-$TARGET/release/ringcast-bench}
MODES=${MODES:-"off shared dedicated"}
SIZES=${SIZES:-"300 4096"}
SUBSCRIBERS=${SUBSCRIBERS:-"1000 10000"}
RATE_1K=${RATE_1K:-20}
RATE_10K=${RATE_10K:-2}
ECHO_CONNS=${ECHO_CONNS:-50}
DURATION=${DURATION:-5s}
SERVER_ARGS=${SERVER_ARGS:-}
OUT=$ROOT/bench-results/deflate-fanout-$(date -u +%Y%m%dT%H%M%SZ)

command -v python3 >/dev/null || { echo "deflate_fanout.sh: python3 is needed for the table" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast --bin ringcast-bench)
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

for mode in $MODES; do
    port=$(free_port)
    # shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
    "$BIN" serve --listen "127.0.0.1:$port" --workers 1 --max-connections 20000 \
        --compression "$mode" $SERVER_ARGS >"$OUT/$mode.server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port" || { echo "server ($mode) did not start: $OUT/$mode.server.log" >&2; exit 1; }
    for size in $SIZES; do
        for subs in $SUBSCRIBERS; do
            rate=$RATE_1K
            [[ $subs -ge 10000 ]] && rate=$RATE_10K
            name="$mode-fanout-$size-$subs"
            echo "== $name (rate $rate msg/s)" >&2
            rc=0
            "$BENCH" fanout --url "ws://127.0.0.1:$port/ws" -c "$subs" --rate "$rate" \
                --duration "$DURATION" --deflate --json-payload -p "$size" --no-baseline \
                --server-pid "$server_pid" --quiet --json >"$OUT/$name.json" || rc=$?
            [[ $rc == 0 || $rc == 3 ]] || { echo "ringcast-bench failed (exit $rc)" >&2; exit 1; }
        done
        name="$mode-echo-$size-$ECHO_CONNS"
        echo "== $name" >&2
        rc=0
        "$BENCH" echo --url "ws://127.0.0.1:$port/echo" -c "$ECHO_CONNS" --duration "$DURATION" \
            --deflate --json-payload -p "$size" --server-pid "$server_pid" --quiet --json \
            >"$OUT/$name.json" || rc=$?
        [[ $rc == 0 || $rc == 3 ]] || { echo "ringcast-bench failed (exit $rc)" >&2; exit 1; }
    done
    stop_server
done

python3 - "$OUT" "$MODES" <<'PY'
import glob, json, os, sys
out, modes = sys.argv[1], sys.argv[2].split()
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    mode, scenario, size, n = os.path.basename(path)[:-5].split("-")
    r = json.load(open(path))
    if scenario == "fanout":
        messages = r["fanout"]["published"]
        deliveries = r["fanout"]["delivered"]
    else:
        messages = deliveries = r["completed"] + r["late"]
    cpu = r["cpu"]["server_seconds"]
    rows[(scenario, int(size), int(n), mode)] = dict(
        messages=messages,
        deliveries=deliveries,
        cpu_us=cpu / messages * 1e6 if messages else float("nan"),
        cpu_per_delivery_ns=cpu / deliveries * 1e9 if deliveries else float("nan"),
        bytes=r["wire"]["per_message"] or float("nan"),
        negotiated=(r.get("deflate") or {}).get("negotiated", 0),
        compressed=(r.get("deflate") or {}).get("compressed_messages", 0),
        problems=r["problems"],
    )
head = (f"{'run':<22} {'mode':<10} {'msgs':>6} {'deliveries':>10} {'deflate':>8} "
        f"{'cpu/msg':>11} {'cpu/deliv':>10} {'x off':>6} {'B/deliv':>8} {'x off':>6}")
print(head)
print("-" * len(head))
for key in sorted({k[:3] for k in rows}):
    scenario, size, n = key
    base = rows.get(key + ("off",))
    for mode in modes:
        x = rows.get(key + (mode,))
        if x is None:
            continue
        cpu_ratio = x["cpu_us"] / base["cpu_us"] if base else float("nan")
        byte_ratio = x["bytes"] / base["bytes"] if base else float("nan")
        run = f"{scenario} {size}B {'x' if scenario == 'fanout' else 'c'}{n}"
        print(f"{run:<22} {mode:<10} {x['messages']:>6} {x['deliveries']:>10} "
              f"{x['negotiated']:>8} {x['cpu_us']:>8.1f} us {x['cpu_per_delivery_ns']:>7.0f} ns "
              f"{cpu_ratio:>5.2f}x {x['bytes']:>8.0f} {byte_ratio:>5.2f}x")
        for p in x["problems"]:
            print(f"    problem: {p}")
print()
print("cpu/msg: server CPU (utime+stime) per published (fanout) or echoed message; cpu/deliv: the")
print("same per delivery; B/deliv: bytes read by the clients per delivery, frame headers included;")
print("x off: ratio to compression off in this run (lower is better); deflate: connections that")
print(f"negotiated permessage-deflate. JSON reports: {out}")
PY
