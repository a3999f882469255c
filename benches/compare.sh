#!/usr/bin/env bash
# benches/compare.sh: ringcast against peer echo servers, one server at a time.
#
# Each server runs alone, pinned to core $SERVER_CORE (default 0), with `ringcast-bench` pinned to
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
#   baseline        only with $BASELINE_CMD (e.g. an older ringcast binary copied aside, with
#                   {PORT}): ringcast against itself before a change, in the same run
# Prints a table of absolute figures (with the server's CPU time per message) and the ratios
# ringcast / each peer; JSON reports land in bench-results/<UTC time>/ (gitignored). Bounded: 12
# runs (15 with a baseline) of $DURATION (default 5 s) plus about 3 s of setup, drain and close
# each, about 2 minutes in all once built (a cold release build is extra), times $ROUNDS.
#
# On a noisy machine, ROUNDS=N repeats the whole sweep N times, servers interleaved in each round;
# the table then shows each figure's median over the rounds, and each ratio is the median of the
# N ratios measured within one round (so a burst of outside load skews one round, not the result).
#
# Each server run listens on a port of its own, counting up from $PORT: a server started on the
# port that the previous server had just closed sometimes saw part or all of the tool's connects
# reset or refused (any ringcast build; the cause, likely the old connections' TIME_WAIT, was not
# pinned down).
#
# Environment: DURATION, PORT (default 19001: the first of up to 5 x ROUNDS ports), SERVER_CORE,
# LOAD_CORE, RINGCAST_CMD, LOADGEN (default: "<target>/release/ringcast-bench"; any command taking
# `ringcast-bench` flags),
# SKIP_BUILD=1 to use binaries already built, ROUNDS (default 1), BASELINE_CMD (default unset),
# SCENARIOS_ONLY (space-separated scenario names, default all), SERVERS_ONLY (likewise).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-5s}
PORT=${PORT:-19001}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
LOADGEN=${LOADGEN:-"$TARGET/release/ringcast-bench"}
ROUNDS=${ROUNDS:-1}
BASELINE_CMD=${BASELINE_CMD:-}
SCENARIOS_ONLY=${SCENARIOS_ONLY:-}
SERVERS_ONLY=${SERVERS_ONLY:-}
RINGCAST_CMD=${RINGCAST_CMD:-"$TARGET/release/ringcast serve --workers 1 --listen 127.0.0.1:{PORT}"}
OUT=$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)

command -v python3 >/dev/null || { echo "compare.sh: python3 is needed for the table" >&2; exit 1; }
command -v taskset >/dev/null || { echo "compare.sh: taskset (util-linux) is needed" >&2; exit 1; }

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast --bin ringcast-bench \
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
[[ -n $BASELINE_CMD ]] && SERVERS+=("baseline|$BASELINE_CMD|ws|/echo")
# name | ringcast-bench arguments
SCENARIOS=(
    "echo-100x32B-d16|echo -c 100 -p 32 -d 16"
    "echo-10x16KiB|echo -c 10 -p 16384 -d 1"
    "latency-10k|latency -c 100 -p 32 --rate 10000"
)

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

# Whether word $1 is in the space-separated list $2 (an empty list selects everything).
selected() { [[ -z $2 || " $2 " == *" $1 "* ]]; }

port=$((PORT - 1))
for round in $(seq "$ROUNDS"); do
    for server in "${SERVERS[@]}"; do
        IFS='|' read -r name command mode path <<<"$server"
        selected "$name" "$SERVERS_ONLY" || continue
        port=$((port + 1))
        command=${command//\{PORT\}/$port}
        # shellcheck disable=SC2086 # the command is a word list on purpose
        taskset -c "$SERVER_CORE" $command >"$OUT/$name-r$round.log" 2>&1 &
        server_pid=$!
        if ! wait_for_port "$port"; then
            echo "compare.sh: $name unavailable (see $OUT/$name-r$round.log)" >&2
            stop_server
            continue
        fi
        for scenario in "${SCENARIOS[@]}"; do
            IFS='|' read -r scn flags <<<"$scenario"
            selected "$scn" "$SCENARIOS_ONLY" || continue
            tag="$name-$scn-r$round"
            raw=""
            [[ $mode == raw ]] && raw="--raw"
            echo "compare.sh: round $round/$ROUNDS: $name $scn" >&2
            # shellcheck disable=SC2086
            # The tool bounds itself (duration + 2 s drain + 1 s close); `timeout` guards it.
            # Exit 3: the run finished but lost messages or connections (its report counts them
            # in the "fail" column, its last stderr line says which); anything else non-zero:
            # no report.
            rc=0
            timeout 120 taskset -c "$LOAD_CORE" $LOADGEN $flags $raw \
                --url "ws://127.0.0.1:$port$path" --duration "$DURATION" \
                --server-pid "$server_pid" --quiet --json \
                >"$OUT/$tag.json" 2>"$OUT/$tag.err" || rc=$?
            if [[ $rc == 3 ]]; then
                echo "compare.sh: $name $scn: $(tail -n 1 "$OUT/$tag.err")" >&2
            elif [[ $rc != 0 ]]; then
                echo "compare.sh: $name $scn failed: $(cat "$OUT/$tag.err")" >&2
                rm -f "$OUT/$tag.json"
            fi
        done
        stop_server
    done
done

# The servers and scenarios this run selected, in order, for the table.
names=() scns=()
for server in "${SERVERS[@]}"; do
    name=${server%%|*}
    selected "$name" "$SERVERS_ONLY" && names+=("$name")
done
for scenario in "${SCENARIOS[@]}"; do
    scn=${scenario%%|*}
    selected "$scn" "$SCENARIOS_ONLY" && scns+=("$scn")
done
python3 - "$OUT" "$ROUNDS" "${names[*]}" "${scns[*]}" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
servers, scenarios = sys.argv[3].split(), sys.argv[4].split()
def load_round(server, scn, rnd):
    path = os.path.join(out, f"{server}-{scn}-r{rnd}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
def cpu_us_per_msg(r):
    """Server CPU time per message: steadier than msg/s when other load shares the machine."""
    srv = r["cpu"]["server_cores"]
    return srv / r["per_second"] * 1e6 if srv is not None and r["per_second"] else None
def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
def load(server, scn):
    """One report whose figures are the medians over the rounds that produced one."""
    runs = [r for r in (load_round(server, scn, i) for i in range(1, rounds + 1)) if r]
    if not runs:
        return None
    if len(runs) == 1:
        return dict(runs[0], cpu_us_per_msg=cpu_us_per_msg(runs[0]))
    lat = {k: median([(r.get("latency_us") or {}).get(k) for r in runs])
           for k in ("p50", "p99", "p999")}
    return {
        "per_second": median([r["per_second"] for r in runs]),
        "mb_per_second": median([r["mb_per_second"] for r in runs]),
        "latency_us": lat,
        "failures": {"all": sum(sum(r["failures"].values()) for r in runs)},
        "unanswered": sum(r["unanswered"] for r in runs),
        "cpu_us_per_msg": median([cpu_us_per_msg(r) for r in runs]),
        "cpu": {"server_cores": median([r["cpu"]["server_cores"] for r in runs]),
                "tool_cores": median([r["cpu"]["tool_cores"] for r in runs])},
    }
def figure(r, scn):
    if r is None:
        return None
    return r["latency_us"]["p99"] if scn.startswith("latency") else r["per_second"]
def ratio(scn, other, figure=figure):
    """Median over rounds of ringcast / other, each measured within one round."""
    pairs = [(figure(load_round("ringcast", scn, i), scn), figure(load_round(other, scn, i), scn))
             for i in range(1, rounds + 1)]
    return median([a / b for a, b in pairs if a is not None and b])
def cpu_figure(r, scn):
    return cpu_us_per_msg(r) if r else None
print(f"rounds: {rounds} (figures are medians over the rounds)" if rounds > 1 else "rounds: 1")
print(f"{'scenario':<18} {'server':<15} {'msg/s':>10} {'MB/s':>8} {'p50 us':>8} {'p99 us':>9} "
      f"{'p99.9 us':>9} {'fail':>5} {'srv cpu':>7} {'tool cpu':>8} {'srv us/msg':>10}")
for scn in scenarios:
    for server in servers:
        r = load(server, scn)
        if r is None:
            print(f"{scn:<18} {server:<15} {'n/a':>10}")
            continue
        lat = r.get("latency_us") or {}
        fails = sum(r["failures"].values()) + r["unanswered"]
        srv = r["cpu"]["server_cores"]
        per_msg = "n/a" if r["cpu_us_per_msg"] is None else f"{r['cpu_us_per_msg']:.2f}"
        print(f"{scn:<18} {server:<15} {r['per_second']:>10,.0f} {r['mb_per_second']:>8.2f} "
              f"{lat.get('p50', 0):>8,.1f} {lat.get('p99', 0):>9,.1f} {lat.get('p999', 0):>9,.1f} "
              f"{fails:>5} {srv if srv is None else round(srv, 2)!s:>7} "
              f"{r['cpu']['tool_cores']:>8.2f} {per_msg:>10}")
print()
print("ratios ringcast / peer (msg/s for echo, p99 for latency; median of per-round ratios)")
for scn in scenarios:
    for server in [s for s in servers if s != "ringcast"]:
        r = ratio(scn, server)
        if r is None:
            if load("ringcast", scn) is not None and load(server, scn) is not None:
                print(f"{scn:<18} ringcast/{server:<15} n/a")
            continue
        better = "lower" if scn.startswith("latency") else "higher"
        print(f"{scn:<18} ringcast/{server:<15} {r:.2f}x ({better} is better)")
print()
print("server CPU per message, ringcast / peer (median of per-round ratios)")
for scn in scenarios:
    for server in [s for s in servers if s != "ringcast"]:
        r = ratio(scn, server, cpu_figure)
        if r is not None:
            print(f"{scn:<18} ringcast/{server:<15} {r:.2f}x (lower is better)")
print(f"\nJSON reports: {out}")
PY
