# Sourced by the bench scripts (compare.sh, fanout.sh, security_overhead.sh): start one server in
# the background, wait for its port, stop it. Never left running: stop_server runs on EXIT.

server_pid=""

# stop_server: kills and reaps the server started last, if any.
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# wait_for_port PORT: waits up to 5 s for 127.0.0.1:PORT to accept; fails if the server exited
# or never listened.
wait_for_port() {
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# free_port: an ephemeral port nobody listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
