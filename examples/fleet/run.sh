#!/usr/bin/env bash
# A fleet on one machine, on loopback: a Redis primary with two replicas,
# three Sentinels (sentinel.conf), three routers, and HAProxy in front
# (haproxy.cfg). The same shape router/tests/fleet.rs runs across network
# namespaces. Needs redis-server, haproxy and the Switchyard programs on
# PATH (`cargo build`, then `export PATH="$PWD/target/debug:$PATH"`).
#
#   examples/fleet/run.sh            # then, in another terminal:
#   export REDIS_URL=redis+sentinel://127.0.0.1:27379,127.0.0.1:27380,127.0.0.1:27381/switchyard
#   switchyard deploy --url http://127.0.0.1:9001 --deployment-id v1 --router-url http://127.0.0.1:8080
#
# Ctrl-C stops everything. Ports: Redis 7379-7381, Sentinels 27379-27381,
# routers 8081-8083 (metrics 9191-9193), HAProxy 8080.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for tool in redis-server redis-cli haproxy switchyard-router; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not on PATH" >&2; exit 1; }
done
for port in 7379 7380 7381 27379 27380 27381 8080 8081 8082 8083; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "run.sh: port $port is already in use" >&2
    exit 1
  fi
done

dir="$(mktemp -d)"
echo "logs and Sentinel files in $dir"
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT INT TERM

redis-server --port 7379 --bind 127.0.0.1 --dir "$dir" --save '' > "$dir/redis-7379.log" &
for port in 7380 7381; do
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename "replica-$port.rdb" \
    --save '' --replicaof 127.0.0.1 7379 > "$dir/redis-$port.log" &
done
for port in 27379 27380 27381; do
  sed 's/^sentinel monitor switchyard 127.0.0.1 6379 2$/sentinel monitor switchyard 127.0.0.1 7379 2/' \
    "$here/sentinel.conf" > "$dir/sentinel-$port.conf"
  redis-server "$dir/sentinel-$port.conf" --sentinel --port "$port" --bind 127.0.0.1 \
    --dir "$dir" > "$dir/sentinel-$port.log" &
done
for _ in $(seq 50); do redis-cli -p 7379 ping >/dev/null 2>&1 && break; sleep 0.2; done
redis-cli -p 7379 ping >/dev/null || { echo "run.sh: Redis did not start; see $dir/redis-7379.log" >&2; exit 1; }

export REDIS_URL=redis+sentinel://127.0.0.1:27379,127.0.0.1:27380,127.0.0.1:27381/switchyard
for i in 0 1 2; do
  SWITCHYARD_LISTEN="127.0.0.1:808$((i + 1))" SWITCHYARD_METRICS_LISTEN="127.0.0.1:919$((i + 1))" \
    SWITCHYARD_REPLICA_ID="r$i" switchyard-router > "$dir/router-$i.log" 2>&1 &
done

SWITCHYARD_LB=127.0.0.1:8080 ROUTER_0=127.0.0.1:8081 ROUTER_1=127.0.0.1:8082 ROUTER_2=127.0.0.1:8083 \
  haproxy -db -f "$here/haproxy.cfg" > "$dir/haproxy.log" 2>&1 &

echo "fleet up: http://127.0.0.1:8080 (HAProxy) -> routers :8081 :8082 :8083"
echo "REDIS_URL=$REDIS_URL"
wait
