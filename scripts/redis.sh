#!/usr/bin/env bash
# Starts a throwaway Redis server for the tests on 127.0.0.1:${KILN_REDIS_PORT:-56379}
# (data dir ${KILN_REDIS_DIR:-/tmp/kiln-redis}, no persistence, loopback only) and
# prints the URL to put in KILN_TEST_REDIS. Idempotent: a running server is reused.
# Usage: scripts/redis.sh start|stop|url
set -euo pipefail
port=${KILN_REDIS_PORT:-56379}
dir=${KILN_REDIS_DIR:-/tmp/kiln-redis}
url="redis://127.0.0.1:${port}/0"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "Redis is not installed (apt-get install redis-server)" >&2
  exit 1
fi
up() { [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }
case "${1:-start}" in
  start)
    if up; then echo "$url"; exit 0; fi
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
      --save '' --appendonly no >/dev/null
    for _ in $(seq 100); do up && break; sleep 0.1; done
    if ! up; then echo "redis-server did not start; see $dir/redis.log" >&2; exit 1; fi
    echo "$url"
    ;;
  stop) redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true ;;
  url) echo "$url" ;;
esac
