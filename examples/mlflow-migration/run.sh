#!/usr/bin/env bash
# An existing MLflow training script (train.py: mlflow + scikit-learn only),
# run unchanged against a running kiln server: the only change is the
# tracking URI. Then the run, the registered model and its model card as
# Kiln shows them.
#
#   kiln server &
#   examples/mlflow-migration/run.sh
#   IMPORT_FROM=sqlite:///path/to/mlflow.db examples/mlflow-migration/run.sh   # also copy your old runs
#
# Environment: KILN_URL (default http://127.0.0.1:5000); KILN (the kiln
# binary; default bin/kiln of this checkout, else kiln on PATH); PYTHON (with
# mlflow and scikit-learn; default .venv/bin/python of this checkout, else
# python3); IMPORT_FROM (an MLflow tracking URI to copy experiments, runs and
# registered models from with import_runs.py, after the training).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export KILN_URL=${KILN_URL:-http://127.0.0.1:5000}
KILN=${KILN:-$( [ -x "$root/bin/kiln" ] && echo "$root/bin/kiln" || command -v kiln )}
PYTHON=${PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || command -v python3 )}
say() { printf '\n== %s\n' "$*"; }

if ! curl -fsS -o /dev/null "$KILN_URL/health"; then
  echo "no kiln server answers at $KILN_URL (start one with: kiln server)" >&2
  exit 1
fi

say "1. the MLflow script, unchanged; the one change: MLFLOW_TRACKING_URI=$KILN_URL"
export MLFLOW_TRACKING_URI=$KILN_URL
"$PYTHON" "$here/train.py"

say "2. the run, through MLflow's REST API (what the MLflow UI and client read)"
"$PYTHON" - "$KILN_URL" <<'PY'
import json, sys, urllib.request

url = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    return json.load(urllib.request.urlopen(req, timeout=30))
exp = json.load(urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=wine-classifier"))
runs = post("runs/search", {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 1,
                            "order_by": ["attributes.start_time DESC"]})["runs"]
run = runs[0]
info, data = run["info"], run["data"]
print(f"run {info['run_id']} ({info['run_name']}): {info['status']}, artifacts at {info['artifact_uri']}")
print(f"  in the UI: {url}/ui/experiments/{info['experiment_id']}/runs/{info['run_id']}")
params = {p["key"]: p["value"] for p in data.get("params", [])}
print(f"  {len(params)} params, e.g. " + ", ".join(f"{k}={params[k]}" for k in ("n_estimators", "learning_rate", "max_depth")))
for m in sorted(data.get("metrics", []), key=lambda m: m["key"]):
    print(f"  metric {m['key']} = {m['value']:.4f} (step {m['step']})")
PY

say "3. the registered model, as Kiln's model card (kiln model card wine-classifier/N)"
version=$(curl -fsS "$KILN_URL/api/2.0/mlflow/registered-models/alias?name=wine-classifier&alias=champion" \
  | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["model_version"]["version"])')
"$KILN" model card "wine-classifier/$version" | sed -n '1,/^## Model parameters/p' | sed '$d'

if [ -n "${IMPORT_FROM:-}" ]; then
  say "4. copy the experiments, runs and registered models of $IMPORT_FROM"
  "$PYTHON" "$here/import_runs.py" --from "$IMPORT_FROM" --to "$KILN_URL"
fi
echo
echo "The registry in the UI: $KILN_URL/ui/models/wine-classifier"
