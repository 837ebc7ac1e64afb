"""The model registry for the UI tests: a registered model "ui-models-churn"
with three versions from real scikit-learn runs (logistic regressions
exported to ONNX, so the server's own runtime scores them), a Kiln dataset
version the runs trained on, a gate policy evaluated on every version (two
pass, the one trained on inverted labels fails), the alias "champion" on
the passing version 1 and "challenger" on version 2, tags and descriptions,
the feature importance of version 2 stored by `kiln explain`, the edited
text of its model card, and an approval policy with a pending request.
Two more models ("ui-models-fraud", "ui-models-empty") fill the list."""
import json
import os
import subprocess

import mlflow
import mlflow.onnx
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

MODEL = "ui-models-churn"
DATASET = "ui-models-churn"
POLICY = "ui-models-quality"
APPROVAL = "ui-models-prod"
FEATURES = ["tenure", "usage", "support_calls", "plan_price", "noise"]


def frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    # support_calls matters most, then tenure, then usage; noise not at all.
    z = 2.0 * X[:, 2] - 1.2 * X[:, 0] + 0.6 * X[:, 1] + 0.2 * X[:, 3] + rng.normal(scale=0.6, size=n)
    df = pd.DataFrame(X, columns=FEATURES)
    df["region"] = rng.choice(["north", "south"], size=n)
    df["churned"] = (z > 0).astype(np.int64)
    return df


def kiln(ctx, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") or k == "KILN_URL"}
    p = subprocess.run([ctx.kiln_bin, *args], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def seed(ctx):
    c = MlflowClient()
    train, test = frame(1, 400), frame(2, 300)
    data = ctx.tmp / "ui-models-data"
    data.mkdir(exist_ok=True)
    train.to_csv(data / "train.csv", index=False, float_format="%.17g")
    test.to_csv(data / "eval.csv", index=False, float_format="%.17g")
    kiln(ctx, "data", "add", DATASET, str(data), "-m", "churn training and evaluation data")
    ds_source = f"{ctx.url}/api/v1/datasets/{DATASET}/versions/1"

    X = train[FEATURES].to_numpy(dtype=np.float32)
    y = train["churned"].to_numpy()
    inverted = 1 - y  # a broken training job: every label flipped
    exp = c.create_experiment("ui-models-training")
    specs = [("logreg-c1", 1.0, y), ("logreg-c0.05", 0.05, y), ("logreg-inverted", 1.0, inverted)]
    versions = []
    for run_name, C, labels in specs:
        with mlflow.start_run(experiment_id=exp, run_name=run_name) as run:
            clf = LogisticRegression(C=C).fit(X, labels)
            mlflow.log_params({"C": C, "solver": clf.solver, "features": len(FEATURES)})
            mlflow.log_metric("train_accuracy", float(clf.score(X, labels)))
            mlflow.set_tag("estimator_class", "sklearn.linear_model.LogisticRegression")
            mlflow.log_input(mlflow.data.from_pandas(train, name=DATASET, source=ds_source), context="training")
            onx = to_onnx(clf, X[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(clf): {"zipmap": False}})
            sig = infer_signature(train[FEATURES].astype(np.float32), clf.predict(X))
            info = mlflow.onnx.log_model(onx, name="model", signature=sig, registered_model_name=MODEL)
        mv = info.registered_model_version
        versions.append({"version": int(mv), "run_id": run.info.run_id, "run_name": run_name})
    assert [v["version"] for v in versions] == [1, 2, 3], versions

    c.update_registered_model(MODEL, description="Predicts which customers leave next month.")
    c.set_registered_model_tag(MODEL, "team", "retention")
    c.update_model_version(MODEL, "2", description="Stronger regularisation (C=0.05).")
    c.set_model_version_tag(MODEL, "2", "validated_by", "ui-seed")
    c.update_model_version(MODEL, "3", description="Trained on inverted labels by mistake.")

    # The gate: every version evaluated; version 3 (inverted labels) fails.
    doc = {
        "apiVersion": "kiln.dev/v1", "kind": "GatePolicy",
        "metadata": {"name": POLICY, "description": "the churn model must not get worse"},
        "spec": {
            "model": MODEL, "data": f"{DATASET}@1/eval.csv", "label": "churned", "features": FEATURES,
            "metrics": [
                {"name": "roc_auc", "threshold": {"min": 0.75}, "change": {"max_worsening": 0.05}},
                {"name": "accuracy", "threshold": {"min": 0.6}},
                {"name": "log_loss"},
            ],
            "slices": [{"column": "region", "metrics": ["accuracy"], "max_disparity": 0.3}],
            "protect_aliases": ["champion"],
        },
    }
    ctx.api("PUT", f"/api/v1/gate-policies/{POLICY}", json=doc)
    results = {}
    r1 = ctx.api("POST", f"/api/v1/gate-policies/{POLICY}/evaluate", json={"version": 1, "actor": "ui-seed"})
    assert r1["passed"], r1
    c.set_registered_model_alias(MODEL, "champion", "1")
    for v in (2, 3):
        results[v] = ctx.api("POST", f"/api/v1/gate-policies/{POLICY}/evaluate", json={"version": v, "actor": "ui-seed"})
    results[1] = r1
    assert results[2]["passed"] and not results[3]["passed"], (results[2]["failed"], results[3]["failed"])
    c.set_registered_model_alias(MODEL, "challenger", "2")

    # Feature importance of version 2, stored on the version by the CLI.
    rows = ctx.tmp / "ui-models-explain.csv"
    test[FEATURES].head(60).to_csv(rows, index=False, float_format="%.17g")
    bg = ctx.tmp / "ui-models-background.csv"
    train[FEATURES].head(40).to_csv(bg, index=False, float_format="%.17g")
    kiln(ctx, "explain", "--model", f"models:/{MODEL}/2", "--input", str(rows), "--background", str(bg),
         "--importance", "--store", f"models:/{MODEL}/2")
    imp = json.loads(c.get_model_version(MODEL, "2").tags["kiln.explain.importance"])

    # The model card's edited text.
    ctx.api("PUT", f"/api/v1/models/{MODEL}/versions/2/card", json={
        "overview": "Scores accounts by churn risk.",
        "license": "Apache-2.0",
        "considerations": {
            "users": ["The retention team, weekly."],
            "limitations": ["Trained on synthetic accounts only."],
            "ethical_considerations": ["Not to be used for pricing decisions."],
        },
    })

    # An approval policy on the alias "production", and a pending request.
    ctx.api("PUT", f"/api/v1/approval-policies/{APPROVAL}", json={"model": MODEL, "aliases": ["production"], "required": 1})
    req = ctx.api("POST", "/api/v1/approval-requests", json={"model": MODEL, "version": 2, "alias": "production", "reason": "better calibrated"})

    # Two more models for the list: one with a version, one without.
    with mlflow.start_run(experiment_id=exp, run_name="fraud") as run:
        Xf = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.9]], dtype=np.float32)
        clf = LogisticRegression().fit(Xf, [0, 1, 1, 0])
        mlflow.onnx.log_model(to_onnx(clf, Xf[:1], target_opset={"": 17, "ai.onnx.ml": 3}), name="model", registered_model_name="ui-models-fraud")
    c.create_registered_model("ui-models-empty", description="No versions yet.")

    return {
        "model": MODEL, "experiment_id": exp, "versions": versions, "policy": POLICY, "approval_policy": APPROVAL,
        "approval_request": req.get("request_id"), "dataset": DATASET,
        "gate": {str(v): {"passed": r["passed"], "id": r["id"], "checks": [{"metric": ch["metric"], "kind": ch["kind"], "slice": ch.get("slice", ""), "passed": ch["passed"]} for ch in r["checks"]]} for v, r in results.items()},
        "importance": [f[0] for f in imp["features"]], "importance_values": [f[1] for f in imp["features"]],
        "models": ["ui-models-churn", "ui-models-empty", "ui-models-fraud"],
    }
