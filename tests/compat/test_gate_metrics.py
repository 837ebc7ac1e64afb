"""Promotion gates with the real MLflow client: two registered versions (a
logistic regression and one trained on shuffled labels, as ONNX models), a
GatePolicy put through Kiln's API, evaluations whose metrics match
scikit-learn on onnxruntime's predictions, the kiln.gate.* tags seen by
MlflowClient, and the protected "champion" alias refused for the failing
version and allowed for the passing one. `kiln gate check` exits 0/1."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import mlflow
import mlflow.onnx
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn import metrics as M
from sklearn.linear_model import LogisticRegression

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(11)
    n = 400
    X = rng.normal(size=(n, 3))
    y = (1.5 * X[:, 0] - X[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype(np.int64)
    region = rng.choice(["north", "south"], size=n)
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "region": region, "label": y})


def onnx_of(model, X):
    return to_onnx(model, X[:1], target_opset={"": 17, "ai.onnx.ml": 3})


def ort_auc(onx, X, y):
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    _, proba = sess.run(None, {sess.get_inputs()[0].name: X})
    p1 = np.array([d[1] for d in proba], dtype=np.float64)
    return M.roc_auc_score(y, p1)


def kiln_gate(kiln, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env["KILN_URL"] = kiln.url
    return subprocess.run([KILN_BIN, "gate", *args], env=env, capture_output=True, text=True, timeout=300)


def test_gate_blocks_champion_alias(kiln, client, frame, unique, tmp_path):
    name = f"churn-{unique}"
    policy = f"churn-gate-{unique}"
    feats = frame[["a", "b", "c"]]
    X = feats.to_numpy(dtype=np.float32)
    y = frame["label"].to_numpy()
    good = LogisticRegression().fit(X, y)
    bad = LogisticRegression().fit(X, np.random.default_rng(3).permutation(y))
    onx_good, onx_bad = onnx_of(good, X), onnx_of(bad, X)

    mlflow.set_experiment(f"gates-{unique}")
    with mlflow.start_run() as run:
        csv = tmp_path / "eval.csv"
        frame.to_csv(csv, index=False, float_format="%.17g")
        mlflow.log_artifact(str(csv))
        sig = infer_signature(feats, good.predict(X))
        mlflow.onnx.log_model(onx_good, name="good", signature=sig, registered_model_name=name)
        mlflow.onnx.log_model(onx_bad, name="bad", signature=sig, registered_model_name=name)
    data_uri = run.info.artifact_uri.rstrip("/") + "/eval.csv"
    assert data_uri.startswith("mlflow-artifacts:/")

    doc = {
        "apiVersion": "kiln.dev/v1",
        "kind": "GatePolicy",
        "metadata": {"name": policy},
        "spec": {
            "model": name,
            "data": data_uri,
            "label": "label",
            "metrics": [
                {"name": "roc_auc", "threshold": {"min": 0.75}, "change": {"max_worsening": 0.01}},
                {"name": "accuracy"},
            ],
            "slices": [{"column": "region", "metrics": ["accuracy"], "max_disparity": 0.5}],
            "protect_aliases": ["champion"],
        },
    }
    api = f"{kiln.url}/api/v1"
    r = requests.put(f"{api}/gate-policies/{policy}", json=doc, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["policy"]["generation"] == 1

    # No result yet: the protected alias cannot move.
    with pytest.raises(MlflowException) as exc:
        client.set_registered_model_alias(name, "champion", "1")
    assert exc.value.error_code == "INVALID_STATE"
    assert policy in exc.value.message and "no result" in exc.value.message

    # Version 1: nothing to compare with, the value threshold passes.
    r = requests.post(f"{api}/gate-policies/{policy}/evaluate", json={"version": 1, "actor": "pytest"}, timeout=300)
    assert r.status_code == 200, r.text
    res1 = r.json()
    assert res1["passed"] and res1["rubber_stamp"] and res1["data"]["rows"] == len(frame)
    auc1 = next(m for m in res1["metrics"] if m["name"] == "roc_auc")["candidate"]
    assert auc1 == pytest.approx(ort_auc(onx_good, X, y), abs=1e-6)
    tags = client.get_model_version(name, "1").tags
    assert tags[f"kiln.gate.{policy}"] == "passed"
    assert tags[f"kiln.gate.{policy}.result_id"] == res1["id"]
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"

    # Version 2 against the champion: fails, and stays out.
    r = requests.post(f"{api}/gate-policies/{policy}/evaluate", json={"version": 2}, timeout=300)
    assert r.status_code == 200, r.text
    res2 = r.json()
    assert not res2["passed"] and res2["baseline"]["version"] == 1
    auc = next(m for m in res2["metrics"] if m["name"] == "roc_auc")
    assert auc["candidate"] == pytest.approx(ort_auc(onx_bad, X, y), abs=1e-6)
    assert auc["baseline"] == pytest.approx(auc1, abs=1e-12)
    assert client.get_model_version(name, "2").tags[f"kiln.gate.{policy}"] == "failed"
    with pytest.raises(MlflowException) as exc:
        client.set_registered_model_alias(name, "champion", "2")
    assert exc.value.error_code == "INVALID_STATE"
    assert policy in exc.value.message and "roc_auc" in exc.value.message
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    # An alias the policy does not protect moves freely.
    client.set_registered_model_alias(name, "challenger", "2")

    # The CLI, for CI/CD: exit 1 on failure, 0 on success, 2 on errors.
    p = kiln_gate(kiln, "check", "--policy", policy, "--version", "2")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "✗" in p.stdout and "roc_auc" in p.stdout
    p = kiln_gate(kiln, "check", "--policy", policy, "--version", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASSED" in p.stdout
    p = kiln_gate(kiln, "check", "--policy", policy, "--version", "9")
    assert p.returncode == 2, p.stdout + p.stderr
    p = kiln_gate(kiln, "results", name, "2", "-o", "json")
    assert p.returncode == 0, p.stderr
    results = json.loads(p.stdout)["results"]
    assert [x["passed"] for x in results] == [False, False] and results[1]["id"] == res2["id"]
