#!/bin/sh
# Point-in-time join benchmark: Kiln (feature/pit) against pandas merge_asof
# on the same generated Parquet files; both outputs are compared.
#   bench/features/pit.sh            # 10M feature rows x 1M entity rows
#   FEATURES=1000000 ENTITIES=100000 bench/features/pit.sh
#   SERVER=1 bench/features/pit.sh   # also end to end through kiln server (needs bin/kiln)
set -eu
cd "$(dirname "$0")/../.."
FEATURES=${FEATURES:-10000000}
ENTITIES=${ENTITIES:-1000000}
DIR=${DIR:-$(mktemp -d /tmp/kiln-pit-XXXXXX)}
PY=${PYTHON:-.venv/bin/python}
go build -o "$DIR/pitbench" ./bench/features/pitbench
"$PY" bench/features/pit.py --features "$FEATURES" --entities "$ENTITIES" --dir "$DIR" --pitbench "$DIR/pitbench"
[ -z "${SERVER:-}" ] || bench/features/pit_server.sh "$DIR" "${KILN:-bin/kiln}"
[ -n "${KEEP:-}" ] || rm -rf "$DIR"
