#!/usr/bin/env bash
# User-space instructions per forwarded request, counted by callgrind, for
# the router or for the peers the harness compares it with.
#
# CPU time per request moves 10-20 % between runs on a shared 2-core
# machine; an instruction count does not (two runs of one binary agree
# within 1 %), so a change of a few percent on the request path can be
# measured here, where the harness could not see it. Kernel time is not
# counted: valgrind only sees user space.
#
#   cargo build --release -p switchyard-router -p switchyard-bench -p switchyard-cli
#   crates/bench/instructions.sh [router [ROUTER_BINARY] | nginx | haproxy]
#
# BODY_BYTES=N makes every request a POST with an N-byte body (what request
# buffering costs); the router takes its other settings from the caller's
# environment, e.g. SWITCHYARD_REQUEST_BUFFER=0 SWITCHYARD_MIN_UPLOAD_RATE=off.
# KEEP_DUMP=FILE keeps the callgrind dump (callgrind_annotate FILE).
# CONNS=N runs wrk with N connections instead of 50.
# COUNT=syscalls counts system calls per request instead (strace -c,
# attached for the measured run; the proxy runs natively): where kernel
# time, which callgrind cannot see, goes.
#
# Needs valgrind, wrk and curl (and redis-server for the router; nginx or
# haproxy for those). It starts the bench backend and the proxy under
# callgrind on free loopback ports (the router with its own Redis and one
# registered deployment; nginx and HAProxy configured as the harness
# configures them), warms up for 3 s, then counts the instructions the
# proxy spends on 20 s of `wrk -t1 -c50` and divides by the requests wrk
# saw.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
release="$root/target/release"
target=${1:-router}
router=${2:-$release/switchyard-router}
bench="$release/switchyard-bench"
cli="$release/switchyard"
[ -x "$cli" ] || cli="$root/target/debug/switchyard"
case $target in
    router) needs=(redis-server redis-cli); bins=("$router" "$bench" "$cli") ;;
    nginx | haproxy) needs=("$target"); bins=("$bench") ;;
    *) echo "usage: instructions.sh [router [ROUTER_BINARY] | nginx | haproxy]" >&2; exit 2 ;;
esac
for tool in valgrind callgrind_control wrk curl python3 "${needs[@]}"; do
    command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is not installed" >&2; exit 2; }
done
for bin in "${bins[@]}"; do
    [ -x "$bin" ] || { echo "instructions.sh: build $bin first (see the header)" >&2; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL: until it answers 200, at most 60 s (a proxy starts slowly under valgrind)
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
        sleep 0.1
    done
    echo "instructions.sh: $1 never answered" >&2
    exit 1
}

backend_port=$(free_port)
proxy_port=$(free_port)
"$bench" backend --listen "127.0.0.1:$backend_port" --threads 2 >/dev/null &
pids+=($!)
wait_for "http://127.0.0.1:$backend_port/small"

callgrind=(valgrind --tool=callgrind --callgrind-out-file="$work/cg.out")
count=${COUNT:-instructions}
conns=${CONNS:-50}
case $count in
    instructions) ;;
    syscalls) command -v strace >/dev/null || { echo "instructions.sh: strace is not installed" >&2; exit 2; }
              callgrind=() ;;
    *) echo "instructions.sh: COUNT is instructions or syscalls" >&2; exit 2 ;;
esac
case $target in
router)
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    "$cli" deploy --url "http://127.0.0.1:$backend_port" --redis-url "redis://127.0.0.1:$redis_port" \
        --health-path /small --deployment-id bench >/dev/null
    REDIS_URL="redis://127.0.0.1:$redis_port" SWITCHYARD_LISTEN="127.0.0.1:$proxy_port" \
    SWITCHYARD_METRICS_LISTEN=off SWITCHYARD_WORKER_THREADS=1 RUST_LOG=warn \
        "${callgrind[@]}" "$router" >/dev/null 2>"$work/valgrind.log" &
    ;;
nginx)
    # As crates/bench/src/targets.rs configures it: one worker, upstream
    # keepalive, no buffering.
    mkdir -p "$work/logs"
    cat >"$work/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
error_log $work/logs/error.log crit;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream backend { server 127.0.0.1:$backend_port; keepalive 512; }
  server {
    listen 127.0.0.1:$proxy_port;
    keepalive_requests 10000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_buffering off;
    }
  }
}
EOF
    "${callgrind[@]}" nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>"$work/valgrind.log" &
    ;;
haproxy)
    # As the harness configures it: one thread, http-reuse always.
    cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:$proxy_port
  default_backend app
backend app
  server app 127.0.0.1:$backend_port
EOF
    "${callgrind[@]}" haproxy -db -f "$work/haproxy.cfg" >/dev/null 2>"$work/valgrind.log" &
    ;;
esac
proxy_pid=$!
pids+=($proxy_pid)
wait_for "http://127.0.0.1:$proxy_port/small"

load=()
if [ -n "${BODY_BYTES:-}" ]; then
    printf 'wrk.method = "POST"\nwrk.body = string.rep("x", %d)\n' "$BODY_BYTES" >"$work/post.lua"
    load=(-s "$work/post.lua")
fi
wrk -t1 -c"$conns" -d3s "${load[@]}" "http://127.0.0.1:$proxy_port/small" >/dev/null
if [ "$count" = syscalls ]; then
    strace -f -c -o "$work/strace.txt" -p "$proxy_pid" 2>/dev/null &
    tracer=$!
    sleep 1 # strace attaches to every thread before the run starts
    wrk -t1 -c"$conns" -d20s "${load[@]}" "http://127.0.0.1:$proxy_port/small" >"$work/wrk.txt"
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null || true
    requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    calls=$(awk '$NF == "total" {print $(NF-2)}' "$work/strace.txt")
    label=$target
    [ "$target" = router ] && label="router ($router)"
    [ "$conns" != 50 ] && label="$label, $conns connections"
    echo "$label: $requests requests, $(python3 -c "print(f'{$calls / $requests:.2f}')") system calls per request"
    awk 'NR > 2 && $NF != "total" && $NF !~ /^-/ {printf "  %s %s\n", $NF, $4}' "$work/strace.txt" | sort -k2 -n -r | head -8
    exit 0
fi
callgrind_control -z "$proxy_pid" >/dev/null
wrk -t1 -c"$conns" -d20s "${load[@]}" "http://127.0.0.1:$proxy_port/small" >"$work/wrk.txt"
callgrind_control -d "$proxy_pid" >/dev/null

requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
# The dump holds the counts since the zeroing: the largest file (the
# other is what startup and the warm-up cost).
dump=$(ls -S "$work"/cg.out* | head -1)
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
# KEEP_DUMP=FILE keeps the callgrind dump for callgrind_annotate.
[ -n "${KEEP_DUMP:-}" ] && cp "$dump" "$KEEP_DUMP"
label=$target
[ "$target" = router ] && label="router ($router)"
[ -n "${BODY_BYTES:-}" ] && label="$label, POST of $BODY_BYTES bytes"
[ "$conns" != 50 ] && label="$label, $conns connections"
echo "$label: $requests requests, $((total / requests)) user-space instructions per request"
