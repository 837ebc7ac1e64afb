"""Generate the explain package's fixtures: small models and shap's values.

Run from the repository root with the pinned environment:

    .venv/bin/python explain/testdata/gen.py

Each case is a model file and a JSON file with the rows explained, the
background (when the method needs one) and what shap 0.51 computes for
them: shap_values laid out [row][feature][output] and expected_value per
output, in the raw margin space (TreeExplainer) or on the model's
probabilities (KernelExplainer). The Go tests (explain_test.go) explain
the same rows with Kiln and compare.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import shap
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression

OUT = Path(__file__).resolve().parent
rng = np.random.default_rng(20260201)


def data(n: int, f: int, nan: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, f)).astype(np.float32)
    if nan:
        x[rng.random(size=x.shape) < nan] = np.nan
    return x


def values3(sv, rows: int, features: int) -> np.ndarray:
    """shap's values as [row][feature][output]."""
    a = np.asarray(sv, dtype=np.float64)
    if isinstance(sv, list):  # old list-per-class layout
        a = np.stack([np.asarray(s) for s in sv], axis=-1)
    if a.ndim == 2:
        a = a[:, :, None]
    assert a.shape[:2] == (rows, features), a.shape
    return a


def nulls(a: np.ndarray):
    return [[None if np.isnan(v) else float(v) for v in row] for row in a]


def save(name: str, model_file: str, backend: str, x: np.ndarray, sv, ev, method: str, background=None, **extra):
    v = values3(sv, x.shape[0], x.shape[1])
    ev = np.atleast_1d(np.asarray(ev, dtype=np.float64))
    case = {
        "model": model_file,
        "backend": backend,
        "method": method,
        "x": nulls(x),
        "shap_values": v.tolist(),
        "expected_value": ev.tolist(),
        "shap_version": shap.__version__,
        **extra,
    }
    if background is not None:
        case["background"] = nulls(background)
    (OUT / f"{name}.case.json").write_text(json.dumps(case, separators=(",", ":")) + "\n")
    print(f"{name}: {x.shape[0]} rows, {x.shape[1]} features, {v.shape[2]} outputs, method {method}")


def main() -> None:
    os.chdir(OUT)
    n, f = 300, 5
    X = data(n, f, nan=0.05)
    Xc = np.nan_to_num(X)
    logit = Xc[:, 0] - 2 * Xc[:, 1] + Xc[:, 2] * Xc[:, 3]
    y_bin = (logit + rng.normal(scale=0.5, size=n) > 0).astype(int)
    y_multi = np.digitize(logit, [-1, 1])
    y_reg = logit + 0.1 * rng.normal(size=n)
    xe = X[:40]

    # XGBoost: binary, multiclass, regression (with missing values).
    params = dict(n_estimators=20, max_depth=4, learning_rate=0.3, random_state=0)
    for name, model, y in [
        ("xgb_binary", xgb.XGBClassifier(**params), y_bin),
        ("xgb_multiclass", xgb.XGBClassifier(**params), y_multi),
        ("xgb_regression", xgb.XGBRegressor(**params), y_reg),
    ]:
        model.fit(X, y)
        model.save_model(f"{name}.json")
        e = shap.TreeExplainer(model)
        save(name, f"{name}.json", "xgboost", xe, e.shap_values(xe), e.expected_value, "tree_path_dependent")

    # LightGBM: binary, multiclass, regression (text models).
    lparams = dict(n_estimators=20, num_leaves=12, learning_rate=0.2, min_child_samples=5, random_state=0, verbose=-1)
    for name, model, y in [
        ("lgb_binary", lgb.LGBMClassifier(**lparams), y_bin),
        ("lgb_multiclass", lgb.LGBMClassifier(**lparams), y_multi),
        ("lgb_regression", lgb.LGBMRegressor(**lparams), y_reg),
    ]:
        model.fit(X, y)
        model.booster_.save_model(f"{name}.txt")
        e = shap.TreeExplainer(model)
        save(name, f"{name}.txt", "lightgbm", xe, e.shap_values(xe), e.expected_value, "tree_path_dependent")

    # scikit-learn random forests in ONNX: no covers, so interventional
    # TreeSHAP against a background, as shap computes it on the sklearn
    # model. Data without missing values (skl2onnx trees do not route
    # them as sklearn does).
    bg = Xc[100:130]
    xr = Xc[:30]
    rf = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(Xc, y_bin)
    (OUT / "onnx_rf_binary.onnx").write_bytes(to_onnx(rf, Xc[:1], options={"zipmap": False}).SerializeToString())
    e = shap.TreeExplainer(rf, data=bg, feature_perturbation="interventional")
    sv = values3(e.shap_values(xr), len(xr), f)[:, :, 1:]  # the positive class: the ONNX model's one score
    save("onnx_rf_binary", "onnx_rf_binary.onnx", "onnx", xr, sv, np.atleast_1d(e.expected_value)[1:], "tree_interventional", background=bg)

    rfm = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(Xc, y_multi)
    (OUT / "onnx_rf_multiclass.onnx").write_bytes(to_onnx(rfm, Xc[:1], options={"zipmap": False}).SerializeToString())
    e = shap.TreeExplainer(rfm, data=bg, feature_perturbation="interventional")
    save("onnx_rf_multiclass", "onnx_rf_multiclass.onnx", "onnx", xr, e.shap_values(xr), e.expected_value, "tree_interventional", background=bg)

    rfr = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(Xc, y_reg)
    (OUT / "onnx_rf_regression.onnx").write_bytes(to_onnx(rfr, Xc[:1]).SerializeToString())
    e = shap.TreeExplainer(rfr, data=bg, feature_perturbation="interventional")
    save("onnx_rf_regression", "onnx_rf_regression.onnx", "onnx", xr, e.shap_values(xr), e.expected_value, "tree_interventional", background=bg)

    # A logistic regression in ONNX, explained with Kernel SHAP against a
    # small background; 2^5 coalitions, so shap enumerates them all and is
    # deterministic.
    lr = LogisticRegression().fit(Xc, y_bin)
    onx = to_onnx(lr, Xc[:1], options={"zipmap": False})
    (OUT / "onnx_logreg.onnx").write_bytes(onx.SerializeToString())
    sess = ort.InferenceSession(onx.SerializeToString())
    name = sess.get_inputs()[0].name

    def proba(a):
        return sess.run(None, {name: np.asarray(a, dtype=np.float32)})[1]

    kbg = Xc[200:210]
    ke = shap.KernelExplainer(proba, kbg)
    xk = Xc[:20]
    sv = ke.shap_values(xk, nsamples=2**f, silent=True)
    save("onnx_logreg_kernel", "onnx_logreg.onnx", "onnx", xk, sv, ke.expected_value, "kernel", background=kbg, nsamples=2**f)


if __name__ == "__main__":
    main()
