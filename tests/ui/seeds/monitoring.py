"""Monitoring for the UI tests: a scikit-learn pipeline (four numeric
features and a string plan, converted to ONNX so the pure-Go runtime
serves it) registered with the MLflow client and deployed as two
endpoints; its training table as a dataset version with a profile (the
monitors' reference); two alert receivers; and two monitors:

* ui-mon-drift on ui-mon-ep: normal traffic, labelled, run twice (ok),
  then shifted traffic (f0, f1, f2 and the plan mix move; f3 stays),
  labelled, run: status drift, its data-drift alert firing. Its results
  form a series: the scheduler's first run (no_data), ok, ok, drift.
* ui-mon-traffic on ui-mon-ep2: a rule that fires on any traffic, then
  re-applied with one that cannot hold: the alert resolves (the history
  holds firing then resolved).
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import mlflow.onnx
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

# The compatibility suite's seeded traffic (the same worlds, the same model).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat"))
from monitoring_helpers import FEATURES, NUMERIC, draw  # noqa: E402

REF_ROWS = 800  # ≤ 1000: KS for the numbers, chi-square for the plan
ROWS_PER_REQUEST = 10
DS, MODEL, EP, EP2 = "ui-mon-train", "ui-mon-model", "ui-mon-ep", "ui-mon-ep2"
MON, MON2 = "ui-mon-drift", "ui-mon-traffic"
HOOK, SLACK = "ui-mon-hook", "ui-mon-slack"


def kiln(ctx, *args):
    env = dict(os.environ, KILN_CACHE_DIR=str(ctx.tmp / "mon-cache"))
    p = subprocess.run([ctx.kiln_bin, *args], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def send(ctx, ep, df, y):
    """Sends df in requests of ROWS_PER_REQUEST rows; returns the labels
    [{request_id, row, label}] of every row."""
    labels = []
    for start in range(0, len(df), ROWS_PER_REQUEST):
        part = df.iloc[start:start + ROWS_PER_REQUEST]
        body = {"dataframe_split": {"columns": list(part.columns),
                                    "data": [[float(v) if isinstance(v, np.floating) else v for v in row]
                                             for row in part.itertuples(index=False)]}}
        r = ctx.http.post(f"{ctx.url}/endpoints/{ep}/invocations", json=body, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"invocations {ep}: {r.status_code} {r.text}")
        rid = r.headers["X-Request-Id"]
        labels += [{"request_id": rid, "row": i, "label": int(t)} for i, t in enumerate(y[start:start + len(part)])]
    return labels


def monitor_doc(name, ep, alerts, performance=True):
    spec = {
        "endpoint": ep,
        "reference": {"dataset": f"{DS}@1"},
        "window": "1h",
        "schedule": {"every": "1h"},  # the runs are the seed's and the tests' (the first, at creation, finds nothing)
        "drift": {"drift_share": 0.5},
        "alerts": alerts,
    }
    if performance:
        spec["performance"] = {"metrics": ["accuracy", "f1"], "min_labels": 10}
    return {"apiVersion": "kiln.dev/v1", "kind": "Monitor", "metadata": {"name": name}, "spec": spec}


def wait_first_run(ctx, name):
    deadline = time.time() + 60
    while ctx.api("GET", f"/api/v1/monitors/{name}")["latest"] is None:
        if time.time() > deadline:
            raise RuntimeError(f"the scheduler never ran {name}")
        time.sleep(0.2)


def run(ctx, ep, name):
    ctx.api("POST", f"/api/v1/endpoints/{ep}/predictions/flush")
    return ctx.api("POST", f"/api/v1/monitors/{name}/run")


def seed(ctx):
    rng = np.random.default_rng(2026)
    train, y = draw(rng, REF_ROWS)
    table = train.copy()
    table["y"] = y
    path = ctx.tmp / "ui-mon-train.parquet"
    table.to_parquet(path, index=False)
    kiln(ctx, "data", "add", DS, str(path))
    kiln(ctx, "data", "profile", f"{DS}@1", "--output", "json")

    pipe = Pipeline([
        ("pre", ColumnTransformer([("num", "passthrough", NUMERIC),
                                   ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])),
        ("lr", LogisticRegression(max_iter=1000)),
    ]).fit(train, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[(c, FloatTensorType([None, 1])) for c in NUMERIC] + [("plan", StringTensorType([None, 1]))],
        target_opset={"": 17, "ai.onnx.ml": 3}, options={id(pipe.steps[-1][1]): {"zipmap": False}},
    )
    mlflow.set_experiment("ui-monitoring")
    with mlflow.start_run():
        mlflow.onnx.log_model(onx, name="model", signature=infer_signature(train, pipe.predict(train)),
                              pip_requirements=["onnx", "onnxruntime"], registered_model_name=MODEL)
    for ep in (EP, EP2):
        ctx.api("PUT", f"/api/v1/endpoints/{ep}", json={
            "apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
            "spec": {"model": MODEL, "routes": [{"name": "main", "version": "1", "weight": 100}]}})
    for ep in (EP, EP2):
        deadline = time.time() + 60
        while ctx.http.get(f"{ctx.url}/v2/models/{ep}/ready", timeout=10).status_code != 200:
            if time.time() > deadline:
                raise RuntimeError(f"endpoint {ep} never became ready")
            time.sleep(0.2)

    # Receivers: nothing listens at these addresses (deliveries fail and
    # are retried in the background; the pages only list the receivers).
    ctx.api("PUT", f"/api/v1/alert-receivers/{HOOK}", json={
        "apiVersion": "kiln.dev/v1", "kind": "AlertReceiver", "metadata": {"name": HOOK},
        "spec": {"type": "webhook", "url": "http://127.0.0.1:9/kiln-alerts", "secret": "ui-s3cr3t", "send_resolved": True, "max_attempts": 1}})
    ctx.api("PUT", f"/api/v1/alert-receivers/{SLACK}", json={
        "apiVersion": "kiln.dev/v1", "kind": "AlertReceiver", "metadata": {"name": SLACK},
        "spec": {"type": "slack", "url": "http://127.0.0.1:9/slack", "max_attempts": 1}})

    drift_rule = {"name": "data-drift", "expr": "drift_share >= 0.5", "for": "0s", "severity": "critical",
                  "receivers": [HOOK], "annotations": {"summary": "{{ .Labels.endpoint }}: {{ .Value }} of the features drifted"}}
    quality_rule = {"name": "low-accuracy", "expr": "accuracy < 0.3", "for": "0s", "severity": "warning", "receivers": [SLACK]}
    ctx.api("PUT", f"/api/v1/monitors/{MON}", json=monitor_doc(MON, EP, [drift_rule, quality_rule]))
    traffic_rule = {"name": "any-traffic", "expr": "requests >= 1", "for": "0s", "severity": "warning", "receivers": [SLACK]}
    ctx.api("PUT", f"/api/v1/monitors/{MON2}", json=monitor_doc(MON2, EP2, [traffic_rule], performance=False))
    wait_first_run(ctx, MON)
    wait_first_run(ctx, MON2)

    # The drift monitor: two normal windows, then shifted traffic.
    runs = []
    for _ in range(2):
        df, yy = draw(rng, 200)
        labels = send(ctx, EP, df, yy)
        ctx.api("POST", f"/api/v1/endpoints/{EP}/feedback", json=labels[:150])
        runs.append(run(ctx, EP, MON))
        time.sleep(1.5)
    df, yy = draw(rng, 400, drifted=True)
    labels = send(ctx, EP, df, yy)
    ctx.api("POST", f"/api/v1/endpoints/{EP}/feedback", json=labels[:300])
    runs.append(run(ctx, EP, MON))
    statuses = [r["status"] for r in runs]
    if statuses != ["ok", "ok", "drift"]:
        raise RuntimeError(f"{MON}: statuses {statuses}: {runs[-1]}")
    last = runs[-1]
    drifted = sorted(f["name"] for f in last["drift"]["features"] if f["drift"])
    stable = sorted(f["name"] for f in last["drift"]["features"] if not f["drift"])

    # The traffic monitor: fires, then resolves once its rule cannot hold.
    df, yy = draw(rng, 100)
    send(ctx, EP2, df, yy)
    fired = run(ctx, EP2, MON2)
    if not any(t["to"] == "firing" for t in fired.get("alerts") or []):
        raise RuntimeError(f"{MON2} did not fire: {fired}")
    traffic_rule["expr"] = "requests >= 1000000000"
    ctx.api("PUT", f"/api/v1/monitors/{MON2}", json=monitor_doc(MON2, EP2, [traffic_rule], performance=False))
    resolved = run(ctx, EP2, MON2)
    if not any(t["to"] == "resolved" for t in resolved.get("alerts") or []):
        raise RuntimeError(f"{MON2} did not resolve: {resolved}")

    return {
        "monitor": MON, "monitor2": MON2, "endpoint": EP, "endpoint2": EP2, "dataset": f"{DS}@1",
        "receivers": [HOOK, SLACK], "features": FEATURES, "drifted": drifted, "stable": stable,
        "drift_rule": "data-drift", "traffic_rule": "any-traffic",
        "metrics": ["accuracy", "f1"],
    }
