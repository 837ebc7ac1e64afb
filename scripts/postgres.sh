#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests on 127.0.0.1:${KILN_PG_PORT:-55432}
# (data in ${KILN_PG_DIR:-/tmp/kiln-pg}, trust auth, loopback only) and prints the
# URL to put in KILN_TEST_POSTGRES. Idempotent: a running server is reused.
# Usage: scripts/postgres.sh start|stop|url
set -euo pipefail
port=${KILN_PG_PORT:-55432}
dir=${KILN_PG_DIR:-/tmp/kiln-pg}
url="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ]; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-start}" in
  start)
    if pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null; then echo "$url"; exit 0; fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    as_pg "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k /tmp -c fsync=off -c max_connections=300" start >/dev/null
    echo "$url"
    ;;
  stop) as_pg "$bindir/pg_ctl" -D "$dir" -m fast stop ;;
  url) echo "$url" ;;
esac
