#!/usr/bin/env bash
# Online lookup benchmark: Kiln's online stores (feature/online: embedded on
# SQLite, and Redis) against the anchor on the same data, p50/p99 latency and
# throughput of lookups of 1 and 10 random entities among ENTITIES entities
# with a ~1 KB value each (100 features).
#
# Anchor: Feast's SqliteOnlineStore / RedisOnlineStore online_read when feast
# installs into bench/features/out/.venv (FEAST_ENTITIES entities x 100
# features: Feast's write path is Python, one row per feature, ~100-400
# entities/s here), and always a
# direct Python read (sqlite3, redis-py) of Kiln's own layout.
#   bench/features/run.sh                         # 1M entities
#   ENTITIES=100000 ITERS=5000 bench/features/run.sh
# Results: bench/features/out/online.{txt,json}. The point-in-time join
# benchmark is bench/features/pit.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENTITIES=${ENTITIES:-1000000}
VALUE=${VALUE:-1000}
ITERS=${ITERS:-20000}       # lookups per Go case
PY_ITERS=${PY_ITERS:-2000}  # lookups per Python case (Feast's 10-key read takes ~10 ms)
FEAST_ENTITIES=${FEAST_ENTITIES:-20000}
OUT=bench/features/out
mkdir -p "$OUT"
VENV=$OUT/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  timeout 900 "$VENV/bin/pip" install -q --disable-pip-version-check feast redis ||
    "$VENV/bin/pip" install -q --disable-pip-version-check redis
fi

# A private Redis for the benchmark (the data set is ~1.2 GB).
export KILN_REDIS_PORT=${KILN_REDIS_PORT:-56390} KILN_REDIS_DIR=$PWD/$OUT/redis
REDIS=$(scripts/redis.sh start)
trap 'scripts/redis.sh stop' EXIT

echo "== kiln (go test -bench, $ENTITIES entities x $VALUE B); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/online.txt"
KILN_TEST_REDIS=$REDIS KILN_BENCH_ENTITIES=$ENTITIES KILN_BENCH_VALUE=$VALUE KILN_BENCH_DIR=$PWD/$OUT \
  go test -count=1 -run '^$' -bench 'BenchmarkOnline(Get|GetParallel)$' -benchtime "${ITERS}x" -timeout 60m \
  ./feature/online 2>&1 | tee -a "$OUT/online.txt"

echo "== anchor (python); load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/online.txt"
"$VENV/bin/python" bench/features/online_anchor.py --kiln-go "$OUT/online.txt" \
  --sqlite "$OUT/online-$ENTITIES-$VALUE.db" --redis "$REDIS" --entities "$ENTITIES" --value "$VALUE" \
  --iters "$PY_ITERS" --feast-entities "$FEAST_ENTITIES" --dir "$OUT" --json "$OUT/online.json" | tee -a "$OUT/online.txt"
