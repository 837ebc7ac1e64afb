#!/usr/bin/env bash
# Runs the tracking benchmark: `kiln server` and `mlflow server` (MLflow 3.6,
# SQLite backend, from the project's pinned virtualenv) side by side on this
# machine, the same Go load generator against both, and writes
# bench/tracking/results.json files and results.md with the ratios.
#
# Environment: RUNS (runs in the searched experiment, default 100000),
# DURATION (per case, default 10s), CONCURRENCY (default 8),
# MLFLOW_WORKERS (mlflow server --workers, default: its own default),
# SEARCH_CONCURRENCY (clients of the search case, default 1: its latency is
# what the target is about), SKIP_BASIC=1 (keep the last basic-case results),
# SKIP_SEARCH=1 (only the basic cases: no seeding, no search; MLflow's
# searches over 100k runs take minutes each).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-100000}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-8}
SEARCH_CONCURRENCY=${SEARCH_CONCURRENCY:-1}
out=bench/tracking/out
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
# Each server runs in its own process group, so that cleanup also stops
# mlflow's uvicorn workers (a worker still busy with a search would
# otherwise outlive the run and load the next one).
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

make --no-print-directory build venv >/dev/null
go build -o "$tmp/loadgen" ./bench/tracking

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 120); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.5; done; echo "server at $1 did not start" >&2; return 1; }
rss_mb() { # RSS of a process and its children, in MB
  local total=0
  for p in $1 $(pgrep -P "$1" 2>/dev/null; for c in $(pgrep -P "$1" 2>/dev/null); do pgrep -P "$c" 2>/dev/null; done); do
    kb=$(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null || echo 0); total=$((total + ${kb:-0}))
  done
  echo $((total / 1024))
}

kport=$(free_port); mport=$(free_port)
kurl=http://127.0.0.1:$kport; murl=http://127.0.0.1:$mport
setsid bin/kiln server --addr 127.0.0.1:$kport --db "sqlite://$tmp/kiln.db" --artifacts "file://$tmp/kiln-art" --log-level warn >"$tmp/kiln.log" 2>&1 &
kpid=$!; pids+=($kpid)
setsid .venv/bin/mlflow server --backend-store-uri "sqlite:///$tmp/mlflow.db" --default-artifact-root "$tmp/mlflow-art" \
  --host 127.0.0.1 --port $mport ${MLFLOW_WORKERS:+--workers $MLFLOW_WORKERS} >"$tmp/mlflow.log" 2>&1 &
mpid=$!; pids+=($mpid)
wait_up "$kurl"; wait_up "$murl"
sleep 3
kidle=$(rss_mb $kpid); midle=$(rss_mb $mpid)
echo "idle RSS: kiln ${kidle} MB, mlflow ${midle} MB (all worker processes)" >&2

common=(-concurrency "$CONCURRENCY" -duration "$DURATION")
if [ "${SKIP_BASIC:-}" != 1 ]; then
  "$tmp/loadgen" -url "$kurl" -name kiln "${common[@]}" -json "$out/kiln-basic.json"
  "$tmp/loadgen" -url "$murl" -name mlflow "${common[@]}" -json "$out/mlflow-basic.json"
fi

# The search case: an experiment of $RUNS runs in each server.
kseed=0
if [ "${SKIP_SEARCH:-}" != 1 ]; then
t0=$(date +%s)
kexp=$("$tmp/loadgen" -url "$kurl" -seed "$RUNS" -concurrency 16)
kseed=$(( $(date +%s) - t0 ))
mexp=$(curl -sf -X POST -H 'Content-Type: application/json' -d "{\"name\":\"search-$RUNS\"}" "$murl/api/2.0/mlflow/experiments/create" | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment_id"])')
.venv/bin/python bench/tracking/seed_mlflow.py "$tmp/mlflow.db" "$mexp" "$RUNS"
search=(-cases search-runs -concurrency "$SEARCH_CONCURRENCY" -duration "$DURATION" -timeout 15m)
"$tmp/loadgen" -url "$kurl" -name kiln "${search[@]}" -search-experiment "$kexp" -json "$out/kiln-search.json"
# MLflow takes minutes per search at this size: a few requests are enough.
"$tmp/loadgen" -url "$murl" -name mlflow "${search[@]}" -search-experiment "$mexp" -max-requests 3 -json "$out/mlflow-search.json"
fi
kload=$(rss_mb $kpid); mload=$(rss_mb $mpid)

python3 - "$out" <<PY
import json, sys, os
out = sys.argv[1]
for who in ("kiln", "mlflow"):
    rep = json.load(open(f"{out}/{who}-basic.json"))
    if "${SKIP_SEARCH:-}" != "1":
        rep["results"] += json.load(open(f"{out}/{who}-search.json"))["results"]
    rep["extra"] = {"idle RSS MB": str(${kidle} if who == "kiln" else ${midle}),
                    "RSS after load MB": str(${kload} if who == "kiln" else ${mload})}
    json.dump(rep, open(f"{out}/{who}.json", "w"), indent=2)
PY
{
  if [ "${SKIP_SEARCH:-}" = 1 ]; then
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; concurrency $CONCURRENCY; $DURATION per case; no search case (SKIP_SEARCH=1)."
  else
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; concurrency $CONCURRENCY ($SEARCH_CONCURRENCY for search); $DURATION per case; search over $RUNS runs."
    echo "Kiln seeded through its API in ${kseed}s; MLflow seeded by bench/tracking/seed_mlflow.py."
  fi
  echo
  "$tmp/loadgen" -compare "$out/kiln.json,$out/mlflow.json"
} | tee "$out/results.md"
