"""Makes the model and the data of the batch-scoring benchmark.

    .venv/bin/python bench/deploy/score_models.py OUT_DIR ROWS

Deterministic (seed 0). A 100-tree RandomForestClassifier (scikit-learn
defaults: unbounded depth) over 16 numeric features, fitted on 5,000 rows
of make_classification, saved twice as MLflow models of the same fitted
estimator:

* ``rf-onnx``: converted with skl2onnx (float32 input ``X`` [N, 16],
  probabilities as a plain [N, 2] tensor, no ZipMap) and saved with
  ``mlflow.onnx.save_model``: what ``kiln score`` loads;
* ``rf-sklearn``: ``mlflow.sklearn.save_model`` with ``n_jobs=-1`` (predict
  on every core): what ``mlflow models predict`` loads.

Both carry the column signature f0..f15 (double). The data is ROWS rows of
the same distribution (features drawn as float32, so that the float32 ONNX
input and scikit-learn, which casts to float32 for its trees, see the same
numbers), written as ``data.csv`` (pandas) and ``data.parquet`` (pyarrow).
``reference.json`` holds scikit-learn's labels and probabilities for the
first 1,000 rows, which ``score_verify.py`` checks both tools against.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import mlflow.onnx
import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

FEATURES = 16


def main(out: Path, rows: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(
        n_samples=5000, n_features=FEATURES, n_informative=10, n_redundant=3,
        n_classes=2, class_sep=0.8, random_state=0,
    )
    X = X.astype(np.float32).astype(np.float64)
    cols = [f"f{i}" for i in range(FEATURES)]
    train = pd.DataFrame(X, columns=cols)
    rf = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(train, y)
    sig = infer_signature(train, rf.predict(train))
    onx = convert_sklearn(
        rf, initial_types=[("X", FloatTensorType([None, FEATURES]))],
        options={id(rf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3},
    )
    for d in ("rf-onnx", "rf-sklearn"):
        if (out / d).exists():
            shutil.rmtree(out / d)
    mlflow.onnx.save_model(onx, out / "rf-onnx", signature=sig)
    rf.n_jobs = -1  # the anchor predicts on every core
    mlflow.sklearn.save_model(rf, out / "rf-sklearn", signature=sig)

    # The scored rows: the training distribution's marginals, shuffled
    # features of unseen draws (cheap for millions of rows).
    rng = np.random.default_rng(0)
    mean, std = X.mean(axis=0), X.std(axis=0)
    data = (rng.standard_normal((rows, FEATURES), dtype=np.float32) * std + mean).astype(np.float32).astype(np.float64)
    df = pd.DataFrame(data, columns=cols)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out / "data.parquet")
    df.to_csv(out / "data.csv", index=False)
    ref = df.iloc[:1000]
    (out / "reference.json").write_text(json.dumps({
        "labels": rf.predict(ref).tolist(),
        "probabilities": rf.predict_proba(ref)[:, 1].tolist(),
    }))
    depth = max(e.tree_.max_depth for e in rf.estimators_)
    nodes = sum(e.tree_.node_count for e in rf.estimators_)
    (out / "model_info.json").write_text(json.dumps({"trees": 100, "features": FEATURES, "max_depth": int(depth), "nodes": int(nodes), "rows": rows}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
