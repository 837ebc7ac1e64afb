#!/usr/bin/env bash
# Sentiment of customer comments about a dairy company's products, end to
# end against a running kiln server (KILN_URL, default http://127.0.0.1:5000):
# data version → tracked training run → registered ONNX model → endpoint
# (served in pure Go) → predictions → monitor with traffic, labels and alerts.
#
#   kiln server &
#   examples/sentiment/run.sh
#
# Environment: KILN_URL; KILN (the kiln binary; default bin/kiln of this
# checkout, else kiln on PATH); PYTHON (with mlflow, scikit-learn, skl2onnx,
# pandas; default .venv/bin/python of this checkout, else python3); DATA (the
# folder for generated files, default examples/sentiment/data).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export KILN_URL=${KILN_URL:-http://127.0.0.1:5000}
export MLFLOW_TRACKING_URI=$KILN_URL
KILN=${KILN:-$( [ -x "$root/bin/kiln" ] && echo "$root/bin/kiln" || command -v kiln )}
PYTHON=${PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || command -v python3 )}
data=${DATA:-$here/data}
DATASET=dairy-comments MODEL=dairy-sentiment ENDPOINT=dairy-sentiment MONITOR=dairy-sentiment
say() { printf '\n== %s\n' "$*"; }
json() { "$PYTHON" -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

if ! curl -fsS -o /dev/null "$KILN_URL/health"; then
  echo "no kiln server answers at $KILN_URL (start one with: kiln server)" >&2
  exit 1
fi
mkdir -p "$data"

say "1. data: 600 labelled comments → a version of the dataset $DATASET"
"$PYTHON" "$here/gen_data.py" --out "$data/comments.csv" --rows 600 --seed 7
version=$("$KILN" data add "$DATASET" "$data/comments.csv" -m "customer comments, labelled by customer care" -o json \
  | json 'd["version"]["version"]')
echo "$DATASET@$version"
# The monitor's reference (the training data, through lineage) is the version's profile.
"$KILN" data profile "$DATASET@$version"

say "2. train on $DATASET@$version (pulled from the server): TF-IDF + logistic regression, tracked with MLflow, registered as ONNX"
"$KILN" data pull "$DATASET@$version" "$data/train"
"$PYTHON" "$here/train.py" --data "$data/train/comments.csv" --dataset "$DATASET@$version" --model "$MODEL"

say "3. endpoint $ENDPOINT: follows $MODEL@champion, served natively"
"$KILN" apply -f "$here/endpoint.yaml" --no-diff
"$KILN" describe endpoint "$ENDPOINT" | sed -n '1,12p'

say "4. predictions"
echo "MLflow scoring protocol (POST /endpoints/$ENDPOINT/invocations):"
curl -fsS "$KILN_URL/endpoints/$ENDPOINT/invocations" -H 'Content-Type: application/json' \
  -d '{"dataframe_split": {"columns": ["product", "text"], "data": [["milk", "Lovely fresh milk, thank you!"], ["butter", "The butter was rancid."]]}}'
echo
echo "Open Inference Protocol (POST /v2/models/$ENDPOINT/infer), with the class probabilities:"
"$PYTHON" "$here/predict.py" --endpoint "$ENDPOINT"

say "5. monitor $MONITOR; a normal week of comments, half of them reviewed by customer care"
"$KILN" apply -f "$here/monitor.yaml" --no-diff
"$PYTHON" "$here/gen_data.py" --out "$data/week1.csv" --rows 200 --seed 8
"$PYTHON" "$here/traffic.py" "$data/week1.csv" --endpoint "$ENDPOINT" --prefix "week1-$$" --labels "$data/week1-labels.csv"
"$KILN" feedback send "$ENDPOINT" -f "$data/week1-labels.csv"
"$KILN" monitor run "$MONITOR"

say "6. a bad week: a faulty batch of yoghurt, half of the comments are complaints about it"
"$PYTHON" "$here/gen_data.py" --out "$data/week2.csv" --rows 200 --seed 9 --incident yoghurt=0.5
"$PYTHON" "$here/traffic.py" "$data/week2.csv" --endpoint "$ENDPOINT" --prefix "week2-$$" --labels "$data/week2-labels.csv"
"$KILN" feedback send "$ENDPOINT" -f "$data/week2-labels.csv"
"$KILN" monitor run "$MONITOR"
"$PYTHON" - "$KILN_URL/api/v1/monitors/$MONITOR" <<'PY'
import json, sys, urllib.request
r = json.load(urllib.request.urlopen(sys.argv[1], timeout=30))["latest"]
for f in r["prediction_drift"]["features"]:
    print(f"prediction drift of {f['name']}: {f['method']} p = {f['score']:.2g}" + (" (DRIFT)" if f["drift"] else ""))
    h = f["histogram"]
    for c, ref, cur in zip(h["categories"], h["ref"], h["cur"]):
        print(f"  {c:<9} training data {ref:4.0%}   this window {cur:4.0%}")
perf = r["performance"]
print(f"accuracy on {perf['labelled']} reviewed comments: {perf['metrics']['accuracy']:.2f}")
PY
"$KILN" alerts list --monitor "$MONITOR"

say "7. lineage: the served version back to its run and data"
"$KILN" lineage "endpoint:$ENDPOINT" --direction upstream --depth 4
echo
echo "In the UI: $KILN_URL/ui/endpoints/$ENDPOINT, $KILN_URL/ui/monitoring/monitors/$MONITOR,"
echo "           $KILN_URL/ui/models/$MODEL, $KILN_URL/ui/data/$DATASET"
