#!/usr/bin/env bash
# Runs the drift benchmark: `kiln monitor drift` against Evidently 0.7.23's
# DataDriftPreset on the same two Parquet files (ROWS reference × ROWS
# current rows, 20 numeric + 5 categorical columns, 8 of them drifted;
# bench/monitor/drift/gen.py). Writes bench/monitor/drift/results.json and
# results.md (bench/monitor/drift/report.py).
#
# Evidently (evidently_drift.py): pandas read_parquet of both files (load),
# then Report([DataDriftPreset()], include_tests=True).run(cur, ref).dict()
# (compute), timed separately, EVIDENTLY_ROUNDS times (default 1: it takes
# minutes). Kiln: the whole `kiln monitor drift --output json` command
# (reading and profiling both files, the tests, the output) timed from
# outside, KILN_ROUNDS times (default 5; the median is reported), with
# sketches (the default) and once with --exact. The ratio is Evidently's
# load + compute over Kiln's median wall time. Per-column decisions are
# compared.
#
# The machine is shared: before each timed step the script waits up to
# LOAD_WAIT seconds (default 300) for the 1-minute load average to fall
# below MAX_LOAD (default 1.0) and records the load it ran at.
#
# Environment: ROWS (1000000), SEED (6), KILN_ROUNDS, EVIDENTLY_ROUNDS,
# MAX_LOAD, LOAD_WAIT, BENCH_TMP (where the tables go, default /tmp; kept
# between runs), KILN_BIN (default bin/kiln, built by make build).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROWS=${ROWS:-1000000}
SEED=${SEED:-6}
KILN_ROUNDS=${KILN_ROUNDS:-5}
EVIDENTLY_ROUNDS=${EVIDENTLY_ROUNDS:-1}
MAX_LOAD=${MAX_LOAD:-1.0}
LOAD_WAIT=${LOAD_WAIT:-300}
BENCH_TMP=${BENCH_TMP:-/tmp}
KILN_BIN=${KILN_BIN:-bin/kiln}
PY=${PY:-.venv/bin/python}
here=bench/monitor/drift
data="$BENCH_TMP/kiln-drift-bench-$ROWS-$SEED"
out=$(mktemp -d "$BENCH_TMP/kiln-drift-run.XXXXXX")
trap 'rm -rf "$out"' EXIT

[ -x "$KILN_BIN" ] || { echo "no $KILN_BIN: run make build (or set KILN_BIN)" >&2; exit 1; }
if [ ! -f "$data/current.parquet" ]; then
  mkdir -p "$data"
  echo "generating $ROWS × $ROWS rows in $data" >&2
  "$PY" "$here/gen.py" "$data" "$ROWS" "$SEED"
fi

load() { cut -d' ' -f1 /proc/loadavg; }
quiet() {
  local waited=0
  while awk -v l="$(load)" -v m="$MAX_LOAD" 'BEGIN{exit !(l >= m)}'; do
    [ "$waited" -ge "$LOAD_WAIT" ] && { echo "load $(load) still ≥ $MAX_LOAD after ${LOAD_WAIT}s; running anyway" >&2; return; }
    sleep 10; waited=$((waited + 10))
  done
}
now() { date +%s.%N; }
dur() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }

# Warm the page cache once: both sides read the same files from memory.
cat "$data/reference.parquet" "$data/current.parquet" > /dev/null

runs="$out/runs.jsonl"
: > "$runs"
for i in $(seq "$KILN_ROUNDS"); do
  quiet
  l=$(load); t0=$(now)
  "$KILN_BIN" monitor drift --reference "$data/reference.parquet" --current "$data/current.parquet" -o json > "$out/kiln.json"
  t1=$(now)
  echo "{\"tool\":\"kiln\",\"mode\":\"sketch\",\"wall_s\":$(dur "$t0" "$t1"),\"load\":$l}" >> "$runs"
  echo "kiln round $i: $(dur "$t0" "$t1") s (load $l)" >&2
done
quiet
l=$(load); t0=$(now)
"$KILN_BIN" monitor drift --reference "$data/reference.parquet" --current "$data/current.parquet" -o json --exact > "$out/kiln-exact.json"
t1=$(now)
echo "{\"tool\":\"kiln\",\"mode\":\"exact\",\"wall_s\":$(dur "$t0" "$t1"),\"load\":$l}" >> "$runs"
echo "kiln --exact: $(dur "$t0" "$t1") s (load $l)" >&2
for i in $(seq "$EVIDENTLY_ROUNDS"); do
  quiet
  l=$(load); t0=$(now)
  "$PY" "$here/evidently_drift.py" "$data/reference.parquet" "$data/current.parquet" "$out/evidently.json"
  t1=$(now)
  echo "{\"tool\":\"evidently\",\"wall_s\":$(dur "$t0" "$t1"),\"load\":$l,\"result\":$(cat "$out/evidently.json" | tr -d '\n')}" >> "$runs"
  echo "evidently round $i: $(dur "$t0" "$t1") s (load $l)" >&2
done
"$PY" "$here/report.py" --runs "$runs" --kiln "$out/kiln.json" --kiln-exact "$out/kiln-exact.json" \
  --rows "$ROWS" --cpus "$(nproc)" --out "$here/results"
cat "$here/results.md"
