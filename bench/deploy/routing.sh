#!/usr/bin/env bash
# Routing overhead of deployed endpoints: `kiln serve MODEL` against
# `kiln server` serving the same model through an endpoint of two
# weighted routes (90/10, both on the model's version 1, so one loaded
# model) plus a 10% shadow (the same version again), under the same load:
# CONCURRENCY closed-loop clients (default 8) POSTing a one-row Open
# Inference Protocol request for DURATION (default 10s, after 1s of
# warm-up), on loopback, by bench/deploy/routinggen.
#
# Models (ONNX, scikit-learn through skl2onnx, from
# runtime/onnx/testdata/gen.py): a binary logistic regression over 5
# features (the request costs almost only the server) and a 100-tree
# random forest over 4 features.
#
# By default (PIN=1) each server runs on core 0 with GOMAXPROCS=1 and the
# load generator on core 1 (taskset), as bench/serving/run.sh does.
# ROUNDS (default 3) alternates the two servers per model; the report is
# the median of the rounds. Targets: at most 10% throughput loss and at
# most +0.5 ms p99. MAX_LOAD: before each run, wait (up to 10 minutes)
# until the 1-minute load average is below it (default: don't wait).
# Writes bench/deploy/routing_results.{jsonl,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-8}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  on_server=(taskset -c 0 env GOMAXPROCS=1); on_gen=(taskset -c 1 env GOMAXPROCS=1)
  placement="servers pinned to core 0 (GOMAXPROCS=1), load generator to core 1 (GOMAXPROCS=1)"
else
  PIN=0; on_server=(); on_gen=()
  placement="servers and load generator share all $(nproc) cores"
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
stop() {
  kill -TERM -- "-$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$tmp/kiln" ./cmd/kiln
go build -o "$tmp/gen" ./bench/deploy/routinggen
gen="$tmp/gen"

# name  fixture  one-row request body
models=(
  "logreg skl_logreg_binary_nozipmap [0.5,-1.2,0.3,2.0,-0.7]"
  "rf100 skl_rf100_clf [5.1,3.5,1.4,0.2]"
)
for m in "${models[@]}"; do
  read -r name fixture row <<<"$m"
  mkdir -p "$tmp/$name"
  cp "runtime/onnx/testdata/models/$fixture/model.onnx" "$tmp/$name/"
  printf 'flavors:\n  onnx:\n    data: model.onnx\nmlflow_version: 3.6.0\n' >"$tmp/$name/MLmodel"
  n=$(python3 -c "import json,sys; print(len(json.loads(sys.argv[1])))" "$row")
  printf '{"inputs":[{"name":"X","datatype":"FP32","shape":[1,%s],"data":%s}]}' "$n" "$row" >"$tmp/$name.json"
done
cat >"$tmp/endpoint.json" <<'DOC'
{"apiVersion":"kiln.dev/v1","kind":"Endpoint","metadata":{"name":"bench"},
 "spec":{"model":"bench","routes":[{"name":"a","version":"1","weight":90},{"name":"b","version":"1","weight":10}],
         "shadow":{"version":"1","percent":10}}}
DOC

results=bench/deploy/routing_results.jsonl
: >"$results"
quiet() {
  [ -n "${MAX_LOAD:-}" ] || return 0
  for _ in $(seq 1 120); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && return 0
    sleep 5
  done
}
load() { # URL BODY LABEL
  quiet
  "${on_gen[@]}" "$gen" -url "$1" -body "$2" -label "$3" -concurrency "$CONCURRENCY" -duration "$DURATION" -json "$results"
}
for round in $(seq 1 "$ROUNDS"); do
  for m in "${models[@]}"; do
    read -r name _ _ <<<"$m"
    port=$(free_port)
    setsid "${on_server[@]}" "$tmp/kiln" serve "$tmp/$name" --name bench --addr "127.0.0.1:$port" --grpc-addr "" \
      --log-level warn >>"$tmp/serve.log" 2>&1 &
    pid=$!; pids+=("$pid")
    "$gen" -wait "http://127.0.0.1:$port/v2/health/ready"
    load "http://127.0.0.1:$port/v2/models/bench/infer" "$tmp/$name.json" "$name serve"
    stop "$pid"

    port=$(free_port)
    data="$tmp/server-$name-$round"
    setsid "${on_server[@]}" "$tmp/kiln" server --addr "127.0.0.1:$port" --db "sqlite://$data/kiln.db" \
      --artifacts "file://$data/artifacts" --model-cache "$data/model-cache" --grpc-addr "" \
      --log-level warn >>"$tmp/server.log" 2>&1 &
    pid=$!; pids+=("$pid")
    "$gen" -wait "http://127.0.0.1:$port/health"
    "$gen" -setup "http://127.0.0.1:$port" -model-dir "$tmp/$name" -model bench -endpoint-doc "$tmp/endpoint.json"
    "$gen" -wait "http://127.0.0.1:$port/v2/models/bench/ready"
    load "http://127.0.0.1:$port/v2/models/bench/infer" "$tmp/$name.json" "$name endpoint"
    stop "$pid"
  done
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
header="Measured $(date -u '+%Y-%m-%d %H:%M UTC') at kiln $(git rev-parse --short HEAD) on $(nproc) cores ($cpu); $placement;
$CONCURRENCY closed-loop clients, $DURATION per run after 1s of warm-up, one-row OIP REST requests; median of $ROUNDS rounds.
The endpoint: routes a (weight 90) and b (weight 10) on version 1, shadow on version 1 at 10%."
"$gen" -report "$results" -md bench/deploy/routing_results.md -header "$header"
