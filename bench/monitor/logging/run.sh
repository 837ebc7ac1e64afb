#!/usr/bin/env bash
# Runs the prediction-log benchmark (bench/monitor/logging/main.go):
#
#  (a) sustained logging: WORKERS goroutines call (*predlog.Log).Observe at
#      RATE predicted rows/s (ROWS rows × 10 features a request) for
#      DURATION while segments roll every 2 s and ship as Parquet to a
#      local artifact folder indexed in SQLite; then Flush, read every row
#      back and count: rows read back must equal rows observed.
#  (b) serving throughput with full logging (inputs and outputs) off vs
#      on: the serving stack over one ONNX model (MODEL, default a 100-tree
#      scikit-learn RandomForest over 4 features) on loopback, a
#      closed-loop load generator (CONCURRENCY clients) in the same
#      process, 1-row and 64-row requests, PHASES off/on pairs of
#      SERVING_DURATION each, alternating; medians are compared.
#
# Writes bench/monitor/logging/results.json and results.md. The machine is
# shared: the script waits up to LOAD_WAIT seconds (default 300) for the
# 1-minute load average to drop below MAX_LOAD (default 1.0) and records
# the load it started at.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DURATION=${DURATION:-10s}
SERVING_DURATION=${SERVING_DURATION:-5s}
RATE=${RATE:-100000}
ROWS=${ROWS:-10}
WORKERS=${WORKERS:-8}
CONCURRENCY=${CONCURRENCY:-8}
PHASES=${PHASES:-3}
MODEL=${MODEL:-runtime/onnx/testdata/models/skl_rf100_clf/model.onnx}
MAX_LOAD=${MAX_LOAD:-1.0}
LOAD_WAIT=${LOAD_WAIT:-300}
OUT=bench/monitor/logging

bin=$(mktemp -d)/logging
go build -o "$bin" ./bench/monitor/logging

waited=0
while awk -v max="$MAX_LOAD" '{exit !($1 >= max)}' /proc/loadavg && [ "$waited" -lt "$LOAD_WAIT" ]; do
  sleep 10; waited=$((waited + 10))
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited}s for < $MAX_LOAD)" >&2

"$bin" -sustained -duration "$DURATION" -rate "$RATE" -rows "$ROWS" -workers "$WORKERS" \
  -serving -serving-duration "$SERVING_DURATION" -model "$MODEL" -serving-rows 1,64 -concurrency "$CONCURRENCY" -phases "$PHASES" \
  -json "$OUT/results.json" -md "$OUT/results.md"
