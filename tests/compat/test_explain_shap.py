"""`kiln explain` against the `shap` package on the same models.

Trains small XGBoost (binary, multiclass, regression) and LightGBM models,
scikit-learn random forests converted to ONNX, and a logistic regression in
ONNX; saves them as `kiln serve` loads them (native model files, an MLflow
model directory); computes SHAP values with shap 0.51 in Python and with
the built `kiln explain --output json`, and compares:

* TreeExplainer (path-dependent) on XGBoost and LightGBM: shap calls the
  libraries' own TreeSHAP (XGBoost's in single precision); Kiln's is its own,
  in double precision: rtol 1e-5, atol 1e-5.
* TreeExplainer(feature_perturbation="interventional") on the sklearn
  forests against a background, Kiln's interventional TreeSHAP on their ONNX
  conversion (float32 thresholds and leaf weights): rtol 1e-5, atol 1e-6.
* KernelExplainer on the ONNX logistic regression's probabilities
  (onnxruntime) with the same background and every coalition enumerated,
  Kiln's Kernel SHAP over its pure-Go ONNX runtime: atol 1e-6.

Finally `kiln explain --importance --store models:/NAME/VERSION` records the
global importance on a version registered with the real mlflow client, and
the client reads the tag back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.xgboost
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import shap
import xgboost as xgb
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))
COLS = [f"x{i}" for i in range(6)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, len(COLS))).astype(np.float32)
    X[rng.random(size=X.shape) < 0.03] = np.nan  # missing values for the boosters
    Xc = np.nan_to_num(X)
    z = Xc[:, 0] - 1.5 * Xc[:, 1] + Xc[:, 2] * Xc[:, 3] + 0.5 * np.sin(Xc[:, 4])
    return {
        "X": X,
        "Xc": Xc,
        "binary": (z + rng.normal(scale=0.5, size=len(z)) > 0).astype(int),
        "multi": np.digitize(z, [-1.0, 1.0]),
        "reg": z + 0.1 * rng.normal(size=len(z)),
    }


def write_csv(path: Path, X: np.ndarray) -> Path:
    pd.DataFrame(X, columns=COLS).to_csv(path, index=False)
    return path


def kiln_explain(*args: str) -> dict:
    proc = subprocess.run([KILN_BIN, "explain", *args, "--output", "json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def as3(values) -> np.ndarray:
    """shap's values as [row][feature][output]."""
    if isinstance(values, list):
        values = np.stack(values, axis=-1)
    a = np.asarray(values, dtype=np.float64)
    return a[:, :, None] if a.ndim == 2 else a


def kiln3(resp: dict) -> tuple[np.ndarray, np.ndarray]:
    """Kiln's response as ([row][feature][output], expected per output)."""
    sv = np.asarray(resp["shap_values"], dtype=np.float64)
    ev = np.atleast_1d(np.asarray(resp["expected_value"], dtype=np.float64))
    if sv.ndim == 2:
        return sv[:, :, None], ev
    return np.transpose(sv, (1, 2, 0)), ev  # [output][row][feature] → [row][feature][output]


def compare(resp, values, expected, rtol, atol):
    got, ev = kiln3(resp)
    want = as3(values)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(ev, np.atleast_1d(expected), rtol=rtol, atol=atol)
    assert resp["feature_names"] == COLS


BOOSTERS = {
    "xgb-binary": lambda: xgb.XGBClassifier(n_estimators=40, max_depth=5, random_state=0),
    "xgb-multiclass": lambda: xgb.XGBClassifier(n_estimators=30, max_depth=4, random_state=0),
    "xgb-regression": lambda: xgb.XGBRegressor(n_estimators=50, max_depth=6, random_state=0),
    "lgb-binary": lambda: lgb.LGBMClassifier(n_estimators=40, num_leaves=15, random_state=0, verbose=-1),
    "lgb-multiclass": lambda: lgb.LGBMClassifier(n_estimators=30, num_leaves=15, random_state=0, verbose=-1),
    "lgb-regression": lambda: lgb.LGBMRegressor(n_estimators=50, num_leaves=31, random_state=0, verbose=-1),
}


@pytest.mark.parametrize("kind", list(BOOSTERS))
def test_tree_path_dependent(kind, data, tmp_path):
    target = {"binary": "binary", "multiclass": "multi", "regression": "reg"}[kind.split("-")[1]]
    df = pd.DataFrame(data["X"], columns=COLS)
    model = BOOSTERS[kind]().fit(df, data[target])
    if kind.startswith("xgb"):
        path = tmp_path / "model.json"
        model.save_model(path)
    else:
        path = tmp_path / "model.txt"
        model.booster_.save_model(path)
    rows = df.iloc[:200]
    explainer = shap.TreeExplainer(model)
    values = explainer.shap_values(rows)
    resp = kiln_explain("--model", str(path), "--input", str(write_csv(tmp_path / "rows.csv", rows.to_numpy())))
    assert resp["method"] == "tree_path_dependent"
    compare(resp, values, explainer.expected_value, rtol=1e-5, atol=1e-5)


def test_tree_mlflow_directory(data, tmp_path):
    """An MLflow xgboost flavor directory, its feature names from the signature."""
    df = pd.DataFrame(data["X"], columns=COLS)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=4, random_state=0).fit(df, data["binary"])
    mlflow.xgboost.save_model(model, tmp_path / "m", signature=infer_signature(df, model.predict(df)))
    rows = df.iloc[:50]
    explainer = shap.TreeExplainer(model)
    resp = kiln_explain("--model", str(tmp_path / "m"), "--input", str(write_csv(tmp_path / "rows.csv", rows.to_numpy())))
    compare(resp, explainer.shap_values(rows), explainer.expected_value, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["rf-binary", "rf-multiclass", "rf-regression"])
def test_onnx_forest_interventional(kind, data, tmp_path):
    Xc = data["Xc"]
    if kind == "rf-regression":
        model = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(Xc, data["reg"])
        onx = to_onnx(model, Xc[:1])
    else:
        y = data["binary"] if kind == "rf-binary" else data["multi"]
        model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(Xc, y)
        onx = to_onnx(model, Xc[:1], options={"zipmap": False})
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    bg, rows = Xc[300:350], Xc[:100]
    explainer = shap.TreeExplainer(model, data=bg, feature_perturbation="interventional")
    values, expected = as3(explainer.shap_values(rows)), np.atleast_1d(explainer.expected_value)
    if kind == "rf-binary":
        # skl2onnx writes a binary forest's score for the positive class only.
        values, expected = values[:, :, 1:], expected[1:]
    resp = kiln_explain("--model", str(path), "--input", str(write_csv(tmp_path / "rows.csv", rows)),
                        "--background", str(write_csv(tmp_path / "bg.csv", bg)))
    assert resp["method"] == "tree_interventional"
    compare(resp, values, expected, rtol=1e-5, atol=1e-6)


def test_kernel_logistic_regression(data, tmp_path):
    Xc = data["Xc"]
    model = LogisticRegression().fit(Xc, data["binary"])
    onx = to_onnx(model, Xc[:1], options={"zipmap": False})
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    sess = ort.InferenceSession(onx.SerializeToString())
    name = sess.get_inputs()[0].name

    def proba(a):
        return sess.run(None, {name: np.asarray(a, dtype=np.float32)})[1]

    bg, rows = Xc[400:412], Xc[:40]
    m = len(COLS)
    explainer = shap.KernelExplainer(proba, bg)
    values = explainer.shap_values(rows, nsamples=2**m, silent=True)  # every coalition: deterministic
    resp = kiln_explain("--model", str(path), "--input", str(write_csv(tmp_path / "rows.csv", rows)),
                        "--background", str(write_csv(tmp_path / "bg.csv", bg)), "--nsamples", str(2**m))
    assert resp["method"] == "kernel"
    compare(resp, values, explainer.expected_value, rtol=0, atol=1e-6)
    # Additivity: expected value + Σφ = the model's probabilities.
    got, ev = kiln3(resp)
    np.testing.assert_allclose(got.sum(axis=1) + ev, proba(rows), atol=1e-6)


def test_importance_stored_on_version(kiln, data, tmp_path):
    """--importance --store writes the tag through the MLflow REST API."""
    mlflow.set_tracking_uri(kiln.url)
    client = mlflow.MlflowClient(kiln.url, kiln.url)
    df = pd.DataFrame(data["X"], columns=COLS)
    model = xgb.XGBRegressor(n_estimators=20, max_depth=4, random_state=0).fit(df, data["reg"])
    name = f"explain-{kiln.backend}"
    with mlflow.start_run():
        info = mlflow.xgboost.log_model(model, name="model", signature=infer_signature(df, model.predict(df)),
                                        registered_model_name=name)
    version = info.registered_model_version
    rows = write_csv(tmp_path / "rows.csv", data["X"][:300])
    env = {"KILN_URL": kiln.url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KILN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([KILN_BIN, "explain", "--model", f"models:/{name}/{version}", "--input", str(rows),
                           "--importance", "--store", f"models:/{name}/{version}", "--output", "json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    tag = json.loads(client.get_model_version(name, version).tags["kiln.explain.importance"])
    assert tag["method"] == "tree_path_dependent" and tag["rows"] == 300
    assert [f[0] for f in tag["features"]] == [f["name"] for f in printed["features"]]
    # The same ranking and magnitudes as shap's mean |SHAP|.
    sv = shap.TreeExplainer(model).shap_values(df.iloc[:300])
    want = dict(zip(COLS, np.abs(sv).mean(axis=0)))
    for fname, value in tag["features"]:
        assert value == pytest.approx(want[fname], rel=1e-4, abs=1e-6)
