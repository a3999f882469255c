#!/usr/bin/env bash
# benches/autobahn_deflate.sh: the full Autobahn|Testsuite permessage-deflate set (cases 12.* and
# 13.*) against the release server's /echo, in each compression mode that negotiates it.
#
# Too long for CI (about 20 minutes per mode: the suite's deflate is pure Python), so CI runs a
# subset (.ci/run) and this script the rest. Needs ../shared/tools/autobahn (setup.sh once).
#
# Environment: AB (the suite's tools, default ../shared/tools/autobahn beside the checkout),
# MODES (default "shared dedicated"), CASES (default "12.*,13.*"), OUTDIR (default
# /tmp/ringcast-autobahn-deflate; one report directory per mode), SKIP_BUILD=1 to use the binary
# already built. Exit status: 0 when no case FAILED in any mode.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
AB=${AB:-$ROOT/../shared/tools/autobahn}
MODES=${MODES:-"shared dedicated"}
CASES=${CASES:-"12.*,13.*"}
OUTDIR=${OUTDIR:-/tmp/ringcast-autobahn-deflate}

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

[[ -f $AB/setup.sh ]] ||
    { echo "autobahn_deflate.sh: no $AB/setup.sh (from a git worktree, set AB=/path/to/shared/tools/autobahn)" >&2; exit 2; }
bash "$AB/setup.sh" > /tmp/ringcast-autobahn-setup.log 2>&1 ||
    { echo "autobahn_deflate.sh: setup failed (see /tmp/ringcast-autobahn-setup.log)" >&2; exit 2; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast)
fi

status=0
for mode in $MODES; do
    port=$(free_port)
    "$TARGET/release/ringcast" serve --listen "127.0.0.1:$port" --workers 1 \
        --compression "$mode" > "$OUTDIR-$mode.server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port" || { echo "server ($mode) did not start" >&2; exit 2; }
    echo "=== compression=$mode cases=$CASES"
    OUTDIR="$OUTDIR/$mode" bash "$AB/run.sh" "ws://127.0.0.1:$port/echo" "$CASES" || status=1
    stop_server
done
exit $status
