#!/usr/bin/env bash
# benches/history_rss.sh: the server's resident memory under a flood of room history and of
# offline users' inboxes, against the budgets that bound them.
#
# One server (1 worker, core 0) with --history-max-bytes HISTORY_BUDGET and
# --inbox-max-total-bytes INBOX_BUDGET (--inbox-max-bytes USER_BUDGET per user). The client
# (examples/delivery_bench.rs `flood`, core 1) first publishes ROOMS × PER_ROOM messages of SIZE
# bytes to rooms nobody is in (rooms `flood:*` keep PER_ROOM messages each: twice the budget in
# all, so the budget evicts), twice; then sends USERS × PER_USER messages with `ack` to users who
# never connect (more than the inbox budgets hold, so they refuse). VmRSS of the server is read
# after start, after each flood, with the server's own accounting (`ringcast_history_bytes`,
# `ringcast_inbox_bytes` from /metrics), and the growth is compared with the budgets.
#
# 127.0.0.1 only. Bounded: each flood times out after 120 s; about 30 s in all at the defaults.
#
# Environment: HISTORY_BUDGET (default 32MiB), INBOX_BUDGET (default 32MiB), USER_BUDGET
# (default 256KiB), ROOMS (default 2000), PER_ROOM (default 32), USERS (default 200), PER_USER
# (default 300), SIZE (default 1000), PORT (default 19461), BIN, CLIENT, SKIP_BUILD=1 (as in
# resume_storm.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/ringcast}
CLIENT=${CLIENT:-$TARGET/release/examples/delivery_bench}
HISTORY_BUDGET=${HISTORY_BUDGET:-32MiB}
INBOX_BUDGET=${INBOX_BUDGET:-32MiB}
USER_BUDGET=${USER_BUDGET:-256KiB}
ROOMS=${ROOMS:-2000}
PER_ROOM=${PER_ROOM:-32}
USERS=${USERS:-200}
PER_USER=${PER_USER:-300}
SIZE=${SIZE:-1000}
PORT=${PORT:-19461}

command -v taskset >/dev/null || { echo "history_rss.sh: taskset (util-linux) is needed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast --example delivery_bench)
fi

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

bytes() { python3 -c "import sys; v=sys.argv[1]; u={'KiB':1<<10,'MiB':1<<20,'GiB':1<<30}; print(next((int(v[:-3])*m for s,m in u.items() if v.endswith(s)), None) or int(v))" "$1"; }
rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$server_pid/status"; }
metric() {
    python3 - "$PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
body = b""
while chunk := s.recv(65536):
    body += chunk
# The unlabelled line is the server's total (the labelled ones are per worker).
values = [float(l.split(" ")[1]) for l in body.decode().splitlines() if l.split(" ")[0] == sys.argv[2]]
print(int(values[0]) if values else 0)
PY
}
mib() { python3 -c "print(f'{$1 / 1048576:.1f} MiB')"; }

taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" --workers 1 \
    --history-rooms "flood:=$PER_ROOM/10m" --history-max-bytes "$HISTORY_BUDGET" \
    --auth optional --auth-jwt-secret "a-bench-secret-of-at-least-32-bytes!" \
    --inbox-max-total-bytes "$INBOX_BUDGET" --inbox-max-bytes "$USER_BUDGET" \
    --inbox-max-messages 100000 --inbox-ttl 10m >/dev/null 2>&1 &
server_pid=$!
wait_for_port "$PORT" || { echo "server did not start" >&2; exit 1; }
flood() { taskset -c 1 "$CLIENT" flood --url "ws://127.0.0.1:$PORT/ws" --size "$SIZE" "$@"; }

start=$(rss)
echo "RSS at start: $(mib "$start")"
for pass in 1 2; do
    flood --rooms "$ROOMS" --per-room "$PER_ROOM" --users 0 --per-user 0
    after_history=$(rss)
    held=$(metric ringcast_history_bytes)
    echo "after history flood $pass: RSS $(mib "$after_history") (+$(mib $((after_history - start)))), history holds $(mib "$held") of a $HISTORY_BUDGET budget, $(metric ringcast_history_evicted_total) entries evicted"
done
flood --rooms 0 --per-room 0 --users "$USERS" --per-user "$PER_USER"
after_inbox=$(rss)
inbox=$(metric ringcast_inbox_bytes)
echo "after inbox flood: RSS $(mib "$after_inbox") (+$(mib $((after_inbox - after_history))) over the history flood), inboxes hold $(mib "$inbox") of a $INBOX_BUDGET budget"
budget=$(( $(bytes "$HISTORY_BUDGET") + $(bytes "$INBOX_BUDGET") ))
growth=$((after_inbox - start))
echo "RSS growth $(mib "$growth") for budgets of $(mib "$budget"): ratio $(python3 -c "print(round($growth / $budget, 3))") (growth / budgets; above 1 is the per-entry overhead the budgets do not count)"
