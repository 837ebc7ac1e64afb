"""Endpoints for the UI tests: two versions of a tiny scikit-learn model
(logistic regression, converted to ONNX so the pure-Go runtime serves it),
two endpoints in the middle of a canary rollout from version 1 to 2 (steps of
an hour, so nothing moves unless a test presses Promote or Rollback) and a
plain single-route endpoint, with a few dozen requests sent to each so the
live statistics are not zero."""
import time

import mlflow
import mlflow.onnx
import numpy as np
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

MODEL = "ui-ep-model"
CANARY_WEIGHT = 20
ACTOR = {"X-Kiln-Actor": "ui-seed"}


def doc(name, version, rollout=True):
    spec = {"model": MODEL, "routes": [{"name": "main", "version": str(version), "weight": 100}]}
    if rollout:
        spec["rollout"] = {
            "strategy": "canary",
            "steps": [{"weight": CANARY_WEIGHT, "interval": "1h"}, {"weight": 60, "interval": "1h"}],
            "analysis": {"max_error_rate": 0.5, "max_p99_latency": "10s", "min_requests": 5},
            "keep_previous": "1h",
        }
    return {"apiVersion": "kiln.dev/v1", "kind": "Endpoint",
            "metadata": {"name": name, "labels": {"team": "ui-tests"}, "description": f"UI test endpoint {name}"},
            "spec": spec}


def apply(ctx, d, reason):
    return ctx.api("PUT", f"/api/v1/endpoints/{d['metadata']['name']}", json=d, headers=ACTOR, params={"reason": reason})


def wait_ready(ctx, ep):
    deadline = time.time() + 60
    while time.time() < deadline:
        if ctx.http.get(f"{ctx.url}/v2/models/{ep}/ready", timeout=10).status_code == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"endpoint {ep} never became ready")


def traffic(ctx, ep, rows, n, versions=()):
    for i in range(n):
        r = ctx.http.post(f"{ctx.url}/endpoints/{ep}/invocations", json={"inputs": rows[i % len(rows): i % len(rows) + 2].tolist()}, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"invocations {ep}: {r.status_code} {r.text}")
    # Requests for a version reach its route whatever the weights.
    for v in versions:
        for i in range(6):
            body = {"inputs": [{"name": "X", "shape": [2, 3], "datatype": "FP32", "data": rows[i:i + 2].ravel().tolist()}]}
            r = ctx.http.post(f"{ctx.url}/v2/models/{ep}/versions/{v}/infer", json=body, timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"infer {ep} v{v}: {r.status_code} {r.text}")


def seed(ctx):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X[:, 0] - 0.5 * X[:, 1] > 0).astype(np.int64)
    mlflow.set_experiment("ui-endpoints")
    for c in (1.0, 0.05):  # versions 1 and 2
        clf = LogisticRegression(C=c).fit(X, y)
        onx = to_onnx(clf, X[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(clf): {"zipmap": False}})
        with mlflow.start_run():
            mlflow.onnx.log_model(onx, name="model", signature=infer_signature(X, clf.predict(X)), registered_model_name=MODEL)
    rows = X[:20]
    canaries = ["ui-canary-promote", "ui-canary-rollback", "ui-canary-cancel"]
    for ep in canaries:
        apply(ctx, doc(ep, 1), "first version")
        wait_ready(ctx, ep)
        apply(ctx, doc(ep, 2), "canary of version 2")
    plain = "ui-plain"
    apply(ctx, doc(plain, 1, rollout=False), "a single route")
    wait_ready(ctx, plain)
    for ep in canaries:
        traffic(ctx, ep, rows, 30, versions=("1", "2"))
    traffic(ctx, plain, rows, 24)
    states = {ep: ctx.api("GET", f"/api/v1/endpoints/{ep}") for ep in canaries + [plain]}
    for ep in canaries:
        ro = states[ep]["status"].get("rollout") or {}
        if ro.get("phase") != "progressing":
            raise RuntimeError(f"{ep}: rollout is {ro}, want progressing")
    return {
        "model": MODEL, "canary_weight": CANARY_WEIGHT, "canaries": canaries, "plain": plain,
        "promote": canaries[0], "rollback": canaries[1], "cancel": canaries[2],
        "routes": {ep: [{"name": r["name"], "version": r["version"], "weight": r["weight"]} for r in st["status"]["routes"]] for ep, st in states.items()},
    }
