#!/usr/bin/env bash
# benches/deflate_memory.sh: server memory per connection in each compression mode.
#
# For each mode (off, shared, dedicated) a fresh release server (one worker) takes N connections
# (default 2000) that offer permessage-deflate; each sends one compressed 4 KiB JSON message to
# /echo and reads the echo (so every context a mode makes is made), then all stay open and idle.
# Printed per mode: server RSS before, right after the last echo ("active"), and after HOLD seconds
# (default 3: every connection has parked, "idle"), per connection. Loopback only.
#
# Environment: N, HOLD, MODES, SKIP_BUILD=1, SERVER_ARGS (more `serve` flags, e.g.
# "--compression-window-bits 10"), OFFER (the clients' Sec-WebSocket-Extensions, default a
# browser's "permessage-deflate; client_max_window_bits"; e.g. "permessage-deflate;
# server_no_context_takeover" to see `dedicated` release its compressor when a connection parks).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=${N:-2000}
HOLD=${HOLD:-3}
MODES=${MODES:-"off shared dedicated"}
SERVER_ARGS=${SERVER_ARGS:-}
OFFER=${OFFER:-"permessage-deflate; client_max_window_bits"}

# shellcheck source=benches/server.sh
source "$ROOT/benches/server.sh"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ringcast)
fi
ulimit -n 20000

for mode in $MODES; do
    port=$(free_port)
    "$TARGET/release/ringcast" serve --listen "127.0.0.1:$port" --workers 1 \
        --max-connections 0 --compression "$mode" $SERVER_ARGS > /dev/null 2>&1 &
    server_pid=$!
    wait_for_port "$port" || { echo "server ($mode) did not start" >&2; exit 2; }
    python3 - "$port" "$server_pid" "$N" "$HOLD" "$mode" "$OFFER" <<'PY'
import os, socket, sys, time, zlib
port, pid, n, hold, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
offer = sys.argv[6]

def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

def frame(opcode, payload, rsv1):
    head = bytes([0x80 | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126: head += bytes([0x80 | n])
    elif n < 65536: head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else: head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload   # zero mask key: payload as is

def read_exact(s, k):
    out = b""
    while len(out) < k:
        chunk = s.recv(k - len(out))
        if not chunk: raise EOFError
        out += chunk
    return out

msg = ("[" + ",".join('{"host":"web-%02d","metric":"cpu.user","value":%d.%02d,"ok":true}' % (i % 40, i * 7 % 100, i % 100) for i in range(60)) + "]").encode()
before = rss()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: " + offer + "\r\n\r\n").encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += s.recv(1)
    negotiated = b"permessage-deflate" in head
    if negotiated:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        z = c.compress(msg) + c.flush(zlib.Z_SYNC_FLUSH)
        s.sendall(frame(1, z[:-4], True))
    else:
        s.sendall(frame(1, msg, False))
    h = read_exact(s, 2)
    ln = h[1] & 0x7F
    ln = int.from_bytes(read_exact(s, 2 if ln == 126 else 8), "big") if ln >= 126 else ln
    read_exact(s, ln)
    socks.append(s)
active = rss()
time.sleep(hold)
idle = rss()
per = lambda r: (r - before) / n
print(f"compression={mode:9} offer={offer!r} negotiated={negotiated!s:5} n={n} rss before {before/2**20:.1f} MiB, "
      f"active {active/2**20:.1f} MiB ({per(active)/1024:.1f} KiB/conn), "
      f"idle {idle/2**20:.1f} MiB ({per(idle)/1024:.1f} KiB/conn)")
for s in socks: s.close()
PY
    stop_server
done
