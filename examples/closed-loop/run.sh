#!/usr/bin/env bash
# The closed loop against a running kiln server (KILN_URL, default
# http://127.0.0.1:5000) on this machine (the pipeline's steps run as local
# processes of the server): bootstrap version 1 through the pipeline, send
# drifted traffic, run the monitor; its alert starts the retraining
# pipeline, whose canary promotes version 2 by itself while traffic flows.
#
#   kiln server &                  # in the repository root, or anywhere
#   examples/closed-loop/run.sh
#
# Environment: KILN_URL, KILN (the kiln binary; default bin/kiln of this
# checkout, else kiln on PATH), PYTHON (with scikit-learn, skl2onnx, mlflow,
# pandas, pyarrow; default .venv/bin/python of this checkout, else python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export KILN_URL=${KILN_URL:-http://127.0.0.1:5000}
export MLFLOW_TRACKING_URI=$KILN_URL
KILN=${KILN:-$( [ -x "$root/bin/kiln" ] && echo "$root/bin/kiln" || command -v kiln )}
PYTHON=${PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || command -v python3 )}
data=$here/data
traffic_pid=
trap '[ -n "$traffic_pid" ] && kill "$traffic_pid" 2>/dev/null || true' EXIT
say() { printf '\n== %s\n' "$*"; }
api() { curl -fsS -H 'X-Kiln-Actor: run.sh' "$@"; }
# wait_run FILTER: waits for the newest run of the pipeline matching FILTER (a Python
# expression over the run r) to end; prints its steps; fails unless it succeeded.
wait_run() {
  "$PYTHON" - "$KILN_URL" "$1" <<'PY'
import json, sys, time, urllib.request
url, flt = sys.argv[1], sys.argv[2]
get = lambda p: json.load(urllib.request.urlopen(url + p, timeout=30))
deadline, seen = time.time() + 600, None
while time.time() < deadline:
    runs = [r for r in get("/api/v1/pipelines/closed-loop/runs")["runs"] if eval(flt)]
    if runs:
        r = get(f"/api/v1/pipeline-runs/{max(runs, key=lambda r: r['creation_time'])['run_id']}")
        line = " ".join(f"{s['step']}={s['state']}" for s in r["steps"])
        if line != seen:
            print(f"run {r['run_id']} {r['state']}: {line}", flush=True); seen = line
        if r["state"] in ("succeeded", "failed", "cancelled"):
            sys.exit(0 if r["state"] == "succeeded" else f"run {r['run_id']} {r['state']}: {r.get('error', '')}")
    time.sleep(0.5)
sys.exit("no run ended within 10 minutes")
PY
}

say "data: the reference world (closed-loop-data@1) and the drifted one"
"$PYTHON" "$here/gen_data.py" --world reference --seed 7 --out "$data/reference" --traffic 400
"$PYTHON" "$here/gen_data.py" --world drifted --seed 8 --out "$data/drifted" --traffic 400
"$KILN" data add closed-loop-data "$data/reference" -m "reference world"

say "gate policy and pipeline (tool paths of this machine as the parameters' defaults)"
"$KILN" apply -f "$here/gatepolicy.yaml" --no-diff
"$PYTHON" - "$here" "$KILN" "$PYTHON" >"$data/pipeline.json" <<'PY'
import json, sys, yaml
here, kiln, python = sys.argv[1:]
doc = yaml.safe_load(open(f"{here}/pipeline.yaml"))
for p in doc["spec"]["parameters"]:
    p["default"] = {"python": python, "kiln": kiln, "dir": here}.get(p["name"], p.get("default"))
json.dump(doc, sys.stdout)
PY
api -X PUT -H 'Content-Type: application/json' --data-binary "@$data/pipeline.json" "$KILN_URL/api/v1/pipelines/closed-loop" >/dev/null

say "bootstrap: version 1 through the pipeline (rubber-stamped by the gate, endpoint created)"
api -X POST -H 'Content-Type: application/json' -d '{"parameters": {"reason": "bootstrap"}}' \
  "$KILN_URL/api/v1/pipelines/closed-loop/runs" >/dev/null
wait_run "True"

say "monitor, new labelled data (closed-loop-data@2), drifted traffic"
"$KILN" apply -f "$here/monitor.yaml" --no-diff
"$KILN" data add closed-loop-data "$data/drifted" -m "drifted world"
"$PYTHON" "$here/traffic.py" "$data/drifted-traffic.parquet"
api -X POST "$KILN_URL/api/v1/endpoints/closed-loop/predictions/flush" >/dev/null

say "the monitor runs: drift, the alert fires, its trigger starts the pipeline"
"$KILN" monitor run closed-loop-drift || true   # exits non-zero on drift
# Production traffic keeps flowing: the canary's analysis needs requests.
"$PYTHON" "$here/traffic.py" "$data/drifted-traffic.parquet" --seconds 300 &
traffic_pid=$!
wait_run "(r.get('cause') or {}).get('type') == 'trigger'"

say "the endpoint"
"$KILN" rollout status closed-loop
api "$KILN_URL/api/v1/models/closed-loop/versions/2/datasets"; echo
