#!/usr/bin/env bash
# The closed loop of a churn model (XGBoost) against a running kiln server
# (KILN_URL, default http://127.0.0.1:5000) on this machine (the pipeline's
# steps run as local processes of the server), narrated stage by stage:
#
#   1. data: the reference world as closed-loop-data@1;
#   2. the gate policy and the pipeline;
#   3. bootstrap: validate → profile → tune (kiln tune, a seeded TPE study)
#      → train (the study's best parameters) → register → gate (rubber stamp:
#      no champion yet) → promote (@champion) → deploy (the endpoint) → rollout;
#   4. the world changes: closed-loop-data@2 and drifted traffic;
#   5. the monitor finds drift, its alert fires and its trigger starts the
#      pipeline: version 2 is tuned and trained on @2, beats the champion at
#      the gate, becomes champion, and the endpoint's analysed canary
#      promotes it while traffic flows;
#   6. version 2 serves: the rollout, the gate's checks, the lineage;
#   7. the monitor again: against version 2's training data, no drift;
#   8. a worse model (labels replaced by coin flips) fails at the gate; the
#      endpoint stays on the champion.
#
#   kiln server &                  # in the repository root, or anywhere
#   examples/closed-loop/run.sh
#
# Environment: KILN_URL; KILN (the kiln binary; default bin/kiln of this
# checkout, else kiln on PATH); PYTHON (with xgboost, scikit-learn, mlflow,
# pandas, pyarrow; default .venv/bin/python of this checkout, else
# python3); CLOSED_LOOP_DATA (a folder for the generated data; default a
# new temporary folder, removed at the end); CLOSED_LOOP_TRIALS (trials of the tuning study,
# the pipeline's parameter trials; default 6).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export KILN_URL=${KILN_URL:-http://127.0.0.1:5000}
export MLFLOW_TRACKING_URI=$KILN_URL
export KILN_ACTOR=${KILN_ACTOR:-run.sh}
KILN=${KILN:-$( [ -x "$root/bin/kiln" ] && echo "$root/bin/kiln" || command -v kiln )}
PYTHON=${PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || command -v python3 )}
tmp=
[ -n "${CLOSED_LOOP_DATA:-}" ] || tmp=$(mktemp -d "${TMPDIR:-/tmp}/closed-loop.XXXXXX")
data=${CLOSED_LOOP_DATA:-$tmp}
mkdir -p "$data"
traffic_pid=
trap '[ -n "$traffic_pid" ] && kill "$traffic_pid" 2>/dev/null; [ -n "$tmp" ] && rm -rf "$tmp"; true' EXIT
t0=$SECONDS
stage=0
# say TITLE TEXT…: a stage's heading (with the seconds since the start) and what happens in it.
say() {
  stage=$((stage + 1))
  printf '\n\033[1m== %d. %s\033[0m  (%ds)\n' "$stage" "$1" "$((SECONDS - t0))"
  shift
  printf '%s\n' "$@" | fold -s -w 78 | sed 's/^/   /'
}
# look PATH WHAT: where to see it in the UI.
look() { printf '   \033[36mlook:\033[0m %s/ui/%s  (%s)\n' "$KILN_URL" "$1" "$2"; }
api() { curl -fsS -H "X-Kiln-Actor: $KILN_ACTOR" "$@"; }
field() { "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$1"; }
# wait_run FILTER: waits for the newest run of the pipeline matching FILTER (a Python
# expression over the run r) to end; prints its steps as they change and the run's id
# last; fails unless it succeeded.
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
            print(f"   run {r['run_id']} {r['state']}: {line}", file=sys.stderr, flush=True); seen = line
        if r["state"] in ("succeeded", "failed", "cancelled"):
            if r["state"] != "succeeded":
                sys.exit(f"run {r['run_id']} {r['state']}: {r.get('error', '')}")
            print(r["run_id"])
            sys.exit(0)
    time.sleep(0.5)
sys.exit("no run ended within 10 minutes")
PY
}
# step_output RUN STEP NAME: one output of a step of a pipeline run.
step_output() { api "$KILN_URL/api/v1/pipeline-runs/$1" | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
print(next(s for s in r["steps"] if s["step"] == sys.argv[1])["outputs"][sys.argv[2]])' "$2" "$3"; }

say "Data: the customers of a telecom operator, as a dataset version" \
  "gen_data.py draws two synthetic worlds of customers (tenure, monthly bill, support calls, data usage, late payments; label: churned within a month): the reference world of today, and a drifted one for later (a price rise and a competitor's offer aimed at loyal heavy users). The reference world becomes closed-loop-data@1: content-addressed, immutable, with its digest."
"$PYTHON" "$here/gen_data.py" --world reference --seed 7 --out "$data/reference" --traffic 400
"$PYTHON" "$here/gen_data.py" --world drifted --seed 8 --out "$data/drifted" --traffic 400
"$KILN" data add closed-loop-data "$data/reference" -m "reference world" 2>/dev/null
look data/closed-loop-data "the dataset and its versions"

say "The rules: a gate policy and the retraining pipeline" \
  "The gate policy closed-loop-quality says a version must reach ROC AUC 0.75 on the newest evaluation data and be no worse than the champion by more than 0.02; it protects the alias champion and the endpoint, so nothing unchecked reaches customers. The pipeline closed-loop is validate, profile, tune, train, register, gate, promote, deploy, rollout (its tool paths set to this checkout's)."
"$KILN" apply -f "$here/gatepolicy.yaml" --no-diff
"$PYTHON" - "$here" "$KILN" "$PYTHON" "${CLOSED_LOOP_TRIALS:-}" >"$data/pipeline.json" <<'PY'
import json, sys, yaml
here, kiln, python, trials = sys.argv[1:]
doc = yaml.safe_load(open(f"{here}/pipeline.yaml"))
defaults = {"python": python, "kiln": kiln, "dir": here, **({"trials": int(trials)} if trials else {})}
for p in doc["spec"]["parameters"]:
    p["default"] = defaults.get(p["name"], p.get("default"))
json.dump(doc, sys.stdout)
PY
"$KILN" apply -f "$data/pipeline.json" --no-diff
look pipelines/closed-loop "the pipeline's steps as a graph"

say "Bootstrap: the first model, through the pipeline" \
  "validate checks the data against checks.yaml; tune runs 'kiln tune run -f study.yaml', a seeded TPE search over max_depth, learning_rate and n_estimators (each trial a tracked run); train fits XGBoost with the best trial's parameters and logs it with mlflow.xgboost; register makes it version 1; the gate rubber-stamps it (there is no champion to beat yet); promote points champion at it; deploy creates the endpoint, served by Kiln's pure-Go XGBoost runtime."
"$KILN" pipeline run closed-loop -p reason=bootstrap --wait >"$data/boot.txt"
boot=$(sed -n 's/^Run:[[:space:]]*//p' "$data/boot.txt")
study=$(step_output "$boot" tune study_run)
"$KILN" tune show "$study" | sed 's/^/   /'
printf '   version 1: XGBoost with max_depth=%s learning_rate=%s n_estimators=%s (the best trial'"'"'s), ROC AUC %s on eval.parquet\n' \
  "$(step_output "$boot" tune max_depth)" "$(step_output "$boot" tune learning_rate)" \
  "$(step_output "$boot" tune n_estimators)" "$(step_output "$boot" train val_auc)"
echo "   served as platform $(api "$KILN_URL/v2/models/closed-loop" | field platform) (Kiln's Go XGBoost runtime, no Python)"
look "pipelines/runs/$boot" "the run: each step's state, log and outputs"
look "studies/$study" "the tuning study: every trial and the best"
look models/closed-loop "version 1, alias champion"
look endpoints/closed-loop "the endpoint, serving version 1"

say "The world changes: new data, drifted traffic, the monitor" \
  "A month later prices went up and a competitor courts loyal customers. The monitor closed-loop-drift compares the endpoint's inputs with the training data of the version it serves (found through lineage). The new labelled data arrives as closed-loop-data@2, and customers of the new world call the endpoint."
"$KILN" apply -f "$here/monitor.yaml" --no-diff
"$KILN" data add closed-loop-data "$data/drifted" -m "drifted world" 2>/dev/null
"$PYTHON" "$here/traffic.py" "$data/drifted-traffic.parquet"
api -X POST "$KILN_URL/api/v1/endpoints/closed-loop/predictions/flush" >/dev/null

say "Drift, an alert, and retraining started by the alert" \
  "The monitor runs: most features drifted, the alert data-drift fires, and its trigger starts the pipeline on closed-loop-data@latest (now @2) — no person involved. While clients keep calling the endpoint, the run tunes and trains version 2, the gate compares it with the champion on the new evaluation data, promote moves champion, and the endpoint's canary sends 50% of the traffic to version 2, analyses its error rate and latency on live requests and promotes it."
"$KILN" monitor run closed-loop-drift | sed 's/^/   /' || true   # exits non-zero on drift
look monitoring/monitors/closed-loop-drift "the drift of each feature"
look "monitoring/alerts?monitor=closed-loop-drift" "the alert, firing"
# Production traffic keeps flowing: the canary's analysis needs requests.
"$PYTHON" "$here/traffic.py" "$data/drifted-traffic.parquet" --seconds 300 2>/dev/null &
traffic_pid=$!
look pipelines/closed-loop "the triggered run (cause: the alert)"
look endpoints/closed-loop "the canary: two routes, then version 2 alone"
run=$(wait_run "(r.get('cause') or {}).get('type') == 'trigger'")

say "Version 2 serves" \
  "The rollout succeeded. The gate's checks (version 2 against the champion on the new evaluation data) are in the gate step's log and on the version, and the lineage links version 2 to the data it was trained on, the run that trained it, the pipeline run, and the alert that started it."
"$KILN" rollout status closed-loop | sed 's/^/   /'
"$KILN" pipeline logs "$run" gate | sed 's/^/   /'
"$KILN" lineage model:closed-loop/2 --direction upstream --depth 10 | sed 's/^/   /'
look "lineage?node=model:closed-loop/2&direction=upstream&depth=10" "from version 2 back to the data and the alert"
kill "$traffic_pid" 2>/dev/null || true
traffic_pid=

say "The monitor again: the loop is closed" \
  "The monitor now compares the same traffic with version 2's training data (closed-loop-data@2): the inputs look like what the served model was trained on, and the alert resolves."
api -X POST "$KILN_URL/api/v1/endpoints/closed-loop/predictions/flush" >/dev/null
"$KILN" monitor run closed-loop-drift | sed 's/^/   /' || true
look monitoring "every monitor's latest status"

say "A worse model is refused at the gate" \
  "Someone retrains with the labels replaced by coin flips (label_noise=1): a model that learned nothing. The tune step is served from the cache (same data, same study), train and register make version 3, and the gate fails it (ROC AUC about 0.5); promote, deploy and rollout never run, and customers stay on version 2."
if "$KILN" pipeline run closed-loop -p label_noise=1 -p "reason=a worse model" --wait >"$data/bad.txt"; then
  echo "the run with label_noise=1 succeeded: the gate let a useless model through" >&2
  exit 1
fi
sed 's/^/   /' "$data/bad.txt"
"$KILN" pipeline logs "$(sed -n 's/^Run:[[:space:]]*//p' "$data/bad.txt")" gate | sed 's/^/   /'
look models/closed-loop/versions/3 "version 3, gate failed, never champion"
echo "   champion: version $(api "$KILN_URL/api/2.0/mlflow/registered-models/alias?name=closed-loop&alias=champion" | field model_version.version)"

printf '\n\033[1mThe closed loop ran in %ds.\033[0m\n' "$((SECONDS - t0))"
