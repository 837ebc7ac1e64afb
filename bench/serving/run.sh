#!/usr/bin/env bash
# Runs the serving benchmark: `kiln serve` (pure-Go ONNX runtime) and
# `mlflow models serve --env-manager local` (MLflow 3.6 from the project's
# pinned virtualenv, scikit-learn pickle) over the same fitted models, and
# a trivial Go HTTP handler as the ceiling of the machine, all driven by the
# same Go load generator (bench/serving/main.go) on loopback. Writes
# bench/serving/results.json and bench/serving/results.md.
#
# Models (bench/serving/models.py, deterministic): a LogisticRegression and
# a 100-tree RandomForestClassifier over 24 features. Cases: 1-row and
# 64-row requests; kiln over MLflow's /invocations (the same
# dataframe_split body mlflow gets) and the Open Inference Protocol's REST
# infer; mlflow over /invocations; the ceiling with the same body.
#
# By default (PIN=1) every server runs on core 0 and the load generator on
# core 1 (taskset): each server gets one core (GOMAXPROCS=1 for the Go
# servers, one uvicorn worker for mlflow), and the generator does not
# steal its CPU. PIN=0 lets everything share all cores (mlflow then gets
# one worker per core).
#
# Environment: DURATION (each loop, default 6s), ATTEMPTS (runs of a case
# at most while other processes use over 0.2 cores during it, default 3), CONCURRENCY (closed-loop
# clients, default 8), PIN (default 1), MLFLOW_WORKERS (uvicorn workers of
# mlflow models serve, default: one per core the servers get), MAX_LOAD
# (wait, up to 10 minutes, until the 1-minute load average is below this
# before starting; default: don't wait), OPEN_WORKERS (open-loop
# connections, default 32), RESULTS (output path without extension,
# default bench/serving/results), SERVERS (whose cases run, default
# "kiln mlflow ceiling"; the others' results are kept from the last run).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-6s}
ATTEMPTS=${ATTEMPTS:-3}
CONCURRENCY=${CONCURRENCY:-8}
OPEN_WORKERS=${OPEN_WORKERS:-32}
PIN=${PIN:-1}
RESULTS=${RESULTS:-bench/serving/results}
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  # The Go servers and the generator get GOMAXPROCS=1: one core each.
  on_server=(taskset -c 0 env GOMAXPROCS=1); on_gen=(taskset -c 1 env GOMAXPROCS=1); server_cores=1
  placement="servers pinned to core 0 (GOMAXPROCS=1), load generator to core 1 (GOMAXPROCS=1)"
else
  PIN=0; on_server=(); on_gen=(); server_cores=$(nproc)
  placement="servers and load generator share all $(nproc) cores"
fi
MLFLOW_WORKERS=${MLFLOW_WORKERS:-$server_cores}
out=bench/serving/out
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
# Each server runs in its own process group, so that cleanup also stops
# mlflow's uvicorn workers.
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
stop() { # stop one server's process group
  kill -TERM -- "-$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }
if [ -n "${MAX_LOAD:-}" ]; then
  for _ in $(seq 1 120); do
    awk -v l="$(loadavg)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
    echo "load average $(loadavg) >= $MAX_LOAD: waiting" >&2; sleep 5
  done
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

make --no-print-directory build venv >/dev/null
go build -o "$tmp/loadgen" ./bench/serving
gen="$tmp/loadgen"
py=.venv/bin/python
"$py" bench/serving/models.py "$out" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_kiln MODEL PORT: starts `kiln serve`; sets kpid and ready_ms (launch to ready).
start_kiln() {
  local t0 gport
  gport=$(free_port)
  t0=$(date +%s%N)
  setsid "${on_server[@]}" bin/kiln serve "$PWD/$out/$1-onnx" --name "$1" --addr "127.0.0.1:$2" --grpc-addr "127.0.0.1:$gport" \
    --log-level warn >>"$tmp/kiln-$1.log" 2>&1 &
  kpid=$!; pids+=($kpid)
  ready_ms=$("$gen" -wait-ready "http://127.0.0.1:$2/v2/health/ready" -since "$t0" -timeout 60s) || { tail -20 "$tmp/kiln-$1.log" >&2; return 1; }
}
# start_mlflow MODEL PORT: starts `mlflow models serve`; sets mpid and ready_ms.
start_mlflow() {
  local t0
  t0=$(date +%s%N)
  PATH="$PWD/.venv/bin:$PATH" setsid "${on_server[@]}" env -C "$tmp" "$PWD/.venv/bin/mlflow" models serve \
    -m "$PWD/$out/$1-sklearn" --env-manager local -h 127.0.0.1 -p "$2" -w "$MLFLOW_WORKERS" >>"$tmp/mlflow-$1.log" 2>&1 &
  mpid=$!; pids+=($mpid)
  ready_ms=$("$gen" -wait-ready "http://127.0.0.1:$2/ping" -since "$t0" -timeout 180s) || { tail -20 "$tmp/mlflow-$1.log" >&2; return 1; }
}

# SERVERS picks which servers' cases run (default all); the others' results
# are kept from the last run, to rerun one that a busy machine disturbed.
SERVERS=${SERVERS:-kiln mlflow ceiling}
results=$out/cases.json
if [ "$SERVERS" = "kiln mlflow ceiling" ] || [ ! -f "$results" ]; then
  rm -f "$results"
else
  "$py" -c 'import json, sys; keep = [r for r in json.load(open(sys.argv[1])) if r["server"] not in sys.argv[2].split()]; json.dump(keep, open(sys.argv[1], "w"))' "$results" "$SERVERS"
fi
runs() { [[ " $SERVERS " == *" $1 "* ]]; }
bench_case() { # SERVER MODEL ROWS PROTOCOL URL BODY PID
  "${on_gen[@]}" "$gen" -server "$1" -model "$2" -rows "$3" -protocol "$4" -url "$5" -body "$out/$6" -pid "$7" -attempts "$ATTEMPTS" \
    -concurrency "$CONCURRENCY" -duration "$DURATION" -open-workers "$OPEN_WORKERS" -json "$results"
}

declare -A kiln_ready mlflow_ready
for m in lr rf; do
  kport=$(free_port); mport=$(free_port)
  start_kiln "$m" "$kport"; kiln_ready[$m]=$ready_ms
  start_mlflow "$m" "$mport"; mlflow_ready[$m]=$ready_ms
  echo "$m: kiln serve ready in ${kiln_ready[$m]} ms, mlflow models serve in ${mlflow_ready[$m]} ms" >&2
  "$py" bench/serving/verify.py "$out" "$m" "http://127.0.0.1:$kport" "http://127.0.0.1:$mport"
  for rows in 1 64; do
    runs kiln || continue
    bench_case kiln "$m" "$rows" invocations "http://127.0.0.1:$kport/invocations" "body-split-$rows.json" "$kpid"
    bench_case kiln "$m" "$rows" v2 "http://127.0.0.1:$kport/v2/models/$m/infer" "body-v2-$rows.json" "$kpid"
  done
  for rows in 1 64; do
    runs mlflow || continue
    bench_case mlflow "$m" "$rows" invocations "http://127.0.0.1:$mport/invocations" "body-split-$rows.json" "$mpid"
  done
  stop "$kpid"; stop "$mpid"
done

cport=$(free_port)
setsid "${on_server[@]}" "$gen" -ceiling "127.0.0.1:$cport" -lifetime 10m >"$tmp/ceiling.log" 2>&1 &
cpid=$!; pids+=($cpid)
"$gen" -wait-ready "http://127.0.0.1:$cport/" -timeout 10s
for rows in 1 64; do
  runs ceiling || continue
  bench_case ceiling any "$rows" invocations "http://127.0.0.1:$cport/invocations" "body-split-$rows.json" "$cpid"
done
# The ceiling in an open loop at each kiln case's half-peak rate, with that
# case's body: the latency floor of this machine and generator at that rate.
runs ceiling && "$py" -c 'import json, sys; [print(r["model"], r["rows"], r["protocol"], r["halfpeak"]["target_rps"]) for r in json.load(open(sys.argv[1])) if r["server"] == "kiln"]' "$results" |
  while read -r m rows proto rate; do
    body=body-split-$rows.json; [ "$proto" = v2 ] && body=body-v2-$rows.json
    "${on_gen[@]}" "$gen" -server ceiling -model "$m" -rows "$rows" -protocol "at-kiln-$proto" -url "http://127.0.0.1:$cport/infer" \
      -body "$out/$body" -pid "$cpid" -rate "$rate" -duration "$DURATION" -open-workers "$OPEN_WORKERS" -json "$results"
  done
stop "$cpid"

# Load time of the forest: `kiln serve` from launch to ready (a few
# starts), runtime.Load in process, and the runtime's own benchmark on its
# depth-8 fixture.
rf_ready=("${kiln_ready[rf]}")
for _ in 1 2 3 4; do
  p=$(free_port)
  start_kiln rf "$p"; rf_ready+=("$ready_ms")
  stop "$kpid"
done
"${on_server[@]}" "$gen" -load-model "$out/rf-onnx/model.onnx" -repeats 20 >"$tmp/load.json"
go test -run '^$' -bench '^BenchmarkForest100Load$' -benchtime 20x ./runtime/onnx >"$tmp/gobench.txt"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

"$py" - "$out" "$tmp" "${rf_ready[*]}" "${kiln_ready[lr]}" "${mlflow_ready[lr]}" "${mlflow_ready[rf]}" <<PY
import json, os, re, statistics, subprocess, sys, time
out, tmp, rf_ready, lr_ready, ml_lr, ml_rf = sys.argv[1:]
info = json.load(open(f"{out}/models.json"))
rf_ready = [float(x) for x in rf_ready.split()]
load = [dict(json.load(open(f"{tmp}/load.json")), what="runtime.Load of the benchmark forest (read, decode, compile), in process")]
load[0]["path"] = "rf-onnx/model.onnx"
load.append({"what": "kiln serve of the benchmark forest, launch to /v2/health/ready", "repeats": len(rf_ready),
             "min_ms": min(rf_ready), "median_ms": statistics.median(rf_ready), "max_ms": max(rf_ready)})
m = re.search(r"BenchmarkForest100Load\S*\s+(\d+)\s+([\d.]+) ns/op", open(f"{tmp}/gobench.txt").read())
if m:
    ms = float(m.group(2)) / 1e6
    load.append({"what": "go test -bench Forest100Load (runtime/onnx fixture: 100 trees of depth 8, 4 features)",
                 "repeats": int(m.group(1)), "min_ms": ms, "median_ms": ms, "max_ms": ms})
ver = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
machine = {
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "cores": str(os.cpu_count()),
    "memory": ver("sh", "-c", "free -g | awk '/Mem:/ {print \$2 \" GiB\"}'"),
    "load average (1, 5, 15 min) at start / end": "${load_start} / ${load_end}",
    "kiln": ver("git", "describe", "--tags", "--always", "--dirty"),
    "mlflow": ver(".venv/bin/python", "-c", "import mlflow, sklearn; print(f'mlflow {mlflow.__version__}, scikit-learn {sklearn.__version__}')")
              + ", mlflow models serve --env-manager local -w ${MLFLOW_WORKERS}",
    "placement": "${placement}",
    "method": "closed loop ${CONCURRENCY} clients for ${DURATION} after 1s warm-up (peak), then open loop at half that peak for ${DURATION} through ${OPEN_WORKERS} connections (latency from the release of an arrival, including any wait for a free connection; the pacer's own lateness is reported, not charged); server CPU from /proc",
    "models": f"LogisticRegression and RandomForestClassifier(100 trees, {info['rf_nodes']} nodes, depth <= {info['rf_max_depth']}) over 24 float features; ONNX {info['rf_onnx_bytes']} bytes for the forest",
    "ready (ms): kiln lr / rf, mlflow lr / rf": f"{lr_ready} / {rf_ready[0]}, {ml_lr} / {ml_rf}",
}
rep = {"machine": machine, "results": json.load(open(f"{out}/cases.json")), "load": load}
json.dump(rep, open("${RESULTS}.json", "w"), indent=2)
PY
"$gen" -report "$RESULTS.json" -md "$RESULTS.md"
