#!/usr/bin/env bash
# The run table at scale in a real browser: Kiln's UI and MLflow 3.6's UI
# (mlflow server from the project's pinned virtualenv, SQLite) side by
# side on this machine, each over an experiment of $RUNS runs (default
# 100,000), timed in headless Chromium by measure.mjs (playwright-core):
# first page shown, next page, a filter, a sort. Writes
# bench/ui/out/results.json and prints a table with the ratios.
#
# Environment: RUNS (default 100000), REPS (timed repetitions per action,
# default 5), MLFLOW_TIMEOUT (seconds MLflow's UI gets per action before it
# counts as not done, default 300).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-100000}
REPS=${REPS:-5}
MLFLOW_TIMEOUT=${MLFLOW_TIMEOUT:-300}
out=bench/ui/out
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

make --no-print-directory build venv tests/ui/node_modules/.stamp >/dev/null
go build -o "$tmp/loadgen" ./bench/tracking
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 120); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.5; done; echo "server at $1 did not start" >&2; return 1; }

kport=$(free_port); mport=$(free_port)
kurl=http://127.0.0.1:$kport; murl=http://127.0.0.1:$mport
# Access control off (loopback): both UIs open without signing in.
setsid bin/kiln server --addr 127.0.0.1:$kport --db "sqlite://$tmp/kiln.db" --artifacts "file://$tmp/kiln-art" --auth off --log-level warn >"$tmp/kiln.log" 2>&1 &
pids+=($!)
setsid .venv/bin/mlflow server --backend-store-uri "sqlite:///$tmp/mlflow.db" --default-artifact-root "$tmp/mlflow-art" \
  --host 127.0.0.1 --port $mport >"$tmp/mlflow.log" 2>&1 &
pids+=($!)
wait_up "$kurl"; wait_up "$murl"

# The same runs in both: metrics m and loss, param alpha, a run name.
echo "seeding $RUNS runs into kiln (through its API)" >&2
kexp=$("$tmp/loadgen" -url "$kurl" -seed "$RUNS")
mexp=$(curl -sf -X POST -H 'Content-Type: application/json' -d "{\"name\":\"search-$RUNS\"}" "$murl/api/2.0/mlflow/experiments/create" | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment_id"])')
echo "seeding $RUNS runs into mlflow (its tables, directly)" >&2
.venv/bin/python bench/tracking/seed_mlflow.py "$tmp/mlflow.db" "$mexp" "$RUNS"

node bench/ui/measure.mjs --kiln "$kurl/ui/experiments/$kexp" --mlflow "$murl/#/experiments/$mexp" \
  --runs "$RUNS" --reps "$REPS" --mlflow-timeout "$MLFLOW_TIMEOUT" --out "$out/results.json"
