"""Trains the models of the serving benchmark and writes them, with the
request bodies the load generator sends, under an output folder.

    .venv/bin/python bench/serving/models.py bench/serving/out

Deterministic: the same data (scikit-learn's make_classification, seed 0),
the same models and the same request rows on every run.

For each model (a LogisticRegression and a 100-tree RandomForestClassifier
over 24 numeric features) it writes two MLflow model directories of the
same fitted estimator:

* ``<model>-onnx``: converted once with skl2onnx (float32 input ``X`` of
  shape [N, 24], probabilities as a plain [N, 2] tensor, no ZipMap) and
  saved with ``mlflow.onnx.save_model`` -- what ``kiln serve`` serves;
* ``<model>-sklearn``: ``mlflow.sklearn.save_model`` -- what ``mlflow
  models serve`` serves.

Both carry the same column signature (f0..f23, double). The request bodies
(``body-<format>-<rows>.json``) hold the same rows for every server: the
MLflow ``dataframe_split`` body is byte-for-byte the one sent to both
servers. ``reference.json`` has scikit-learn's labels and probabilities
for the first 64 request rows, which ``verify.py`` checks both servers
against before anything is timed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow.onnx
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

FEATURES = 24
ROWS = (1, 64)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(
        n_samples=4000, n_features=FEATURES, n_informative=12, n_redundant=4,
        n_classes=2, class_sep=0.8, random_state=0,
    )
    # float32 values, so the float32 ONNX input and scikit-learn see the same numbers.
    X = X.astype(np.float32).astype(np.float64)
    cols = [f"f{i}" for i in range(FEATURES)]
    train = pd.DataFrame(X[:3000], columns=cols)
    # Request rows: unseen rows of the same distribution.
    req = pd.DataFrame(X[3000:3064], columns=cols)

    models = {
        "lr": LogisticRegression(max_iter=1000),
        "rf": RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1),
    }
    reference = {}
    info = {}
    for name, est in models.items():
        est.fit(train, y[:3000])
        sig = infer_signature(train, est.predict(train))
        onx = convert_sklearn(
            est, initial_types=[("X", FloatTensorType([None, FEATURES]))],
            options={id(est): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3},
        )
        for flavor in ("onnx", "sklearn"):
            d = out / f"{name}-{flavor}"
            if d.exists():
                import shutil

                shutil.rmtree(d)
        mlflow.onnx.save_model(onx, out / f"{name}-onnx", signature=sig)
        mlflow.sklearn.save_model(est, out / f"{name}-sklearn", signature=sig,
                                  serialization_format="cloudpickle")
        reference[name] = {
            "label": est.predict(req).tolist(),
            "probabilities": est.predict_proba(req).tolist(),
        }
        if name == "rf":
            info["rf_nodes"] = int(sum(t.tree_.node_count for t in est.estimators_))
            info["rf_max_depth"] = int(max(t.tree_.max_depth for t in est.estimators_))
        info[f"{name}_onnx_bytes"] = (out / f"{name}-onnx" / "model.onnx").stat().st_size

    for n in ROWS:
        rows = req.iloc[:n]
        data = rows.to_numpy().tolist()
        split = {"dataframe_split": {"columns": cols, "data": data}}
        (out / f"body-split-{n}.json").write_text(json.dumps(split, separators=(",", ":")))
        v2 = {"inputs": [{"name": "X", "shape": [n, FEATURES], "datatype": "FP32",
                          "data": [v for r in data for v in r]}]}
        (out / f"body-v2-{n}.json").write_text(json.dumps(v2, separators=(",", ":")))
    (out / "reference.json").write_text(json.dumps(reference))
    (out / "models.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/serving/out"))
