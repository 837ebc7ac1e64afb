#!/usr/bin/env bash
# make demo: Kiln's closed loop end to end, narrated, on a fresh server.
#
# Starts `kiln server` on the embedded defaults (SQLite and a local folder)
# in a fresh folder, runs examples/closed-loop/run.sh against it (data,
# validation, tuning, training, gate, canary, drift, alert, retraining,
# promotion, a worse model refused) and leaves the server running with its
# state, to browse in the UI.
#
# Environment:
#   KILN_DEMO_ADDR       the server's address (default 127.0.0.1:5000; loopback only)
#   KILN_DEMO_GRPC_ADDR  its Open Inference Protocol gRPC address (default: the
#                        port after KILN_DEMO_ADDR's; "" turns gRPC off)
#   KILN_DEMO_DIR        the server's folder (default ./kiln-demo of this checkout);
#                        a folder of an earlier demo is emptied first
#   KILN, PYTHON         the kiln binary and the Python with the example's
#                        packages (default bin/kiln and .venv/bin/python: make build venv)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
addr=${KILN_DEMO_ADDR:-127.0.0.1:5000}
dir=${KILN_DEMO_DIR:-$root/kiln-demo}
KILN=${KILN:-$root/bin/kiln}
PYTHON=${PYTHON:-$root/.venv/bin/python}
marker=.kiln-demo

fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# The tools.
[ -x "$KILN" ] || fail "no kiln binary at $KILN: run 'make build' (or set KILN)"
[ -x "$PYTHON" ] || fail "no Python at $PYTHON: run 'make venv' (or set PYTHON)"
"$PYTHON" -c 'import mlflow, xgboost, sklearn, pandas, pyarrow, yaml' 2>/dev/null \
  || fail "$PYTHON lacks the example's packages (mlflow, xgboost, scikit-learn, pandas, pyarrow, PyYAML): run 'make venv'"
command -v curl >/dev/null || fail "curl is needed"

# The addresses: loopback only (access control stays off there, which the
# demo's unauthenticated calls need), and free.
host=${addr%:*} port=${addr##*:}
case $host in
  127.*|localhost|'[::1]') ;;
  *) fail "KILN_DEMO_ADDR=$addr: the demo listens on a loopback address only (127.0.0.1:PORT)" ;;
esac
[[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || fail "KILN_DEMO_ADDR=$addr: want HOST:PORT"
grpc=${KILN_DEMO_GRPC_ADDR-$host:$((port + 1))}
[ "${grpc##*:}" != 65536 ] || grpc=
# busy ADDR: whether something listens on ADDR (or it cannot be bound).
busy() {
  "$PYTHON" - "$1" <<'PY'
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
host = host.strip("[]") or "127.0.0.1"
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(fam) as s:
    try:
        s.bind((host, int(port)))
    except OSError:
        sys.exit(0)
sys.exit(1)
PY
}
if busy "$addr"; then
  hint="set KILN_DEMO_ADDR to another address, e.g. KILN_DEMO_ADDR=127.0.0.1:5050 make demo"
  [ -f "$dir/kiln.pid" ] && kill -0 "$(cat "$dir/kiln.pid")" 2>/dev/null \
    && hint="the demo server of an earlier run still runs there: stop it with 'kill $(cat "$dir/kiln.pid")', or $hint"
  fail "$addr is in use; $hint"
fi
if [ -n "$grpc" ] && busy "$grpc"; then
  fail "$grpc (gRPC) is in use; set KILN_DEMO_GRPC_ADDR to another address, or KILN_DEMO_GRPC_ADDR= to turn gRPC off"
fi

# A fresh folder: an earlier demo's is emptied, anything else is left alone.
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  [ -f "$dir/$marker" ] || fail "$dir exists and is not a demo folder: move it away or set KILN_DEMO_DIR"
  if [ -f "$dir/kiln.pid" ] && kill -0 "$(cat "$dir/kiln.pid")" 2>/dev/null; then
    fail "the demo server of an earlier run (pid $(cat "$dir/kiln.pid")) still runs from $dir: stop it with 'kill $(cat "$dir/kiln.pid")'"
  fi
  rm -rf "$dir"
fi
mkdir -p "$dir"
touch "$dir/$marker"
dir=$(cd "$dir" && pwd)

start=$SECONDS
url=http://$addr
printf '\033[1mKiln demo: the closed loop of a churn model\033[0m\n'
printf '%s\n' "A telecom operator predicts which customers will leave. Kiln will version and validate the data, tune and train an XGBoost model, gate it, deploy it with a canary, notice when the world drifts, retrain by itself, promote the new model, and refuse a worse one. Each stage says what to look at in the UI." \
  | fold -s -w 78
printf '\nstarting kiln server in %s on %s (SQLite and a local folder: kiln-data/)\n' "$dir" "$url"
# Its own process group (job control on for the launch): the server
# outlives the demo, Ctrl-C included. KILN_* settings of this shell are
# left out, so the server runs on the embedded defaults.
unset_kiln=()
while IFS= read -r v; do unset_kiln+=(-u "$v"); done < <(compgen -e | grep '^KILN_' || true)
set -m
(cd "$dir" && exec env ${unset_kiln[@]+"${unset_kiln[@]}"} nohup "$KILN" server --addr "$addr" --grpc-addr "$grpc" \
  </dev/null >server.log 2>&1) &
pid=$!
set +m
echo "$pid" >"$dir/kiln.pid"
for _ in $(seq 1 150); do
  curl -fsS "$url/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/server.log" >&2; fail "kiln server exited at start (log: $dir/server.log)"; }
  sleep 0.2
done
curl -fsS "$url/health" >/dev/null 2>&1 || fail "kiln server did not answer $url/health within 30s (log: $dir/server.log)"
echo "kiln server is up (pid $pid, log $dir/server.log); the UI: $url/ui/"

stop_hint() {
  printf '\nThe server keeps running with its state in %s.\n' "$dir"
  printf '  browse:   %s/ui/  (pipelines, models, endpoints/closed-loop, monitoring, data, lineage)\n' "$url"
  printf '  CLI:      KILN_URL=%s %s pipeline runs closed-loop\n' "$url" "$KILN"
  printf '  stop:     kill %s     (the pid is also in %s/kiln.pid)\n' "$pid" "$dir"
  printf '  restart:  cd %s && %s server --addr %s --grpc-addr "%s"   (the state is kept)\n' "$dir" "$KILN" "$addr" "$grpc"
}

trap 'printf "\ndemo: interrupted after %ds\n" "$((SECONDS - start))" >&2; stop_hint >&2; exit 130' INT
if ! KILN_URL=$url KILN="$KILN" PYTHON="$PYTHON" KILN_ACTOR=demo CLOSED_LOOP_DATA="$dir/data" \
  "$root/examples/closed-loop/run.sh"; then
  printf '\n\033[1mdemo: the closed loop failed after %ds\033[0m (server log: %s)\n' "$((SECONDS - start))" "$dir/server.log" >&2
  stop_hint >&2
  exit 1
fi
printf '\n\033[1mThe demo ran in %dm%02ds.\033[0m\n' "$(((SECONDS - start) / 60))" "$(((SECONDS - start) % 60))"
stop_hint
