"""The training step of the closed-loop pipeline.

Reads train.parquet and eval.parquet from the step's dataset input
($KILN_INPUTS/data, or --data DIR), fits a scikit-learn logistic
regression, and logs with the real MLflow client: parameters, the training
and validation ROC AUC, the dataset input (its source names the Kiln
dataset version, so the server links run → dataset version) and the model
as ONNX (skl2onnx; Kiln serves it in pure Go). Inside a pipeline
MLFLOW_RUN_ID is the step's child run and mlflow.start_run() attaches to
it; alone, a new run is created in --experiment.

Outputs (files under $KILN_OUTPUTS, the pipeline's outputs of the step):
  model    the logged model's URI (models:/m-…)
  val_auc  the validation ROC AUC

--label-noise p replaces a share p of the training labels with coin flips
(p = 1: a model that learned nothing — how the example shows the gate
refusing a worse model).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from pathlib import Path

import mlflow
import mlflow.onnx
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

FEATURES = ["f0", "f1", "f2", "f3"]
LABEL = "y"


def resolve(dataset: str) -> str:
    """name@latest (or name) → name@N, asked of the Kiln server at KILN_URL."""
    name, _, ver = dataset.partition("@")
    ver = ver or "latest"
    if ver != "latest":
        return f"{name}@{ver.lstrip('v')}"
    url = os.environ.get("KILN_URL") or os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/datasets/{name}/versions/latest", timeout=30) as r:
        v = json.load(r)
    v = v.get("version", v)
    return f"{name}@{v['version'] if isinstance(v, dict) else v}"


def write_output(name: str, value: str) -> None:
    out = os.environ.get("KILN_OUTPUTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, name).write_text(value)
    print(f"output {name} = {value}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="closed-loop-data@latest", help="the Kiln dataset version trained on")
    ap.add_argument("--data", help="folder holding train.parquet and eval.parquet (default $KILN_INPUTS/data)")
    ap.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    ap.add_argument("--label-noise", type=float, default=0.0, help="share of training labels replaced by coin flips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--experiment", default="closed-loop", help="experiment of a run started outside a pipeline")
    a = ap.parse_args()

    data = Path(a.data or os.environ.get("KILN_INPUT_DATA") or Path(os.environ.get("KILN_INPUTS", "."), "data"))
    train = pd.read_parquet(data / "train.parquet")
    val = pd.read_parquet(data / "eval.parquet")
    rng = np.random.default_rng(a.seed)
    y = train[LABEL].to_numpy().copy()
    if a.label_noise > 0:
        flip = rng.random(len(y)) < a.label_noise
        y[flip] = rng.integers(0, 2, flip.sum())

    pipe = Pipeline([
        ("cols", ColumnTransformer([("num", "passthrough", FEATURES)])),
        ("lr", LogisticRegression(C=a.C, max_iter=1000)),
    ]).fit(train[FEATURES], y)
    train_auc = roc_auc_score(train[LABEL], pipe.predict_proba(train[FEATURES])[:, 1])
    val_auc = roc_auc_score(val[LABEL], pipe.predict_proba(val[FEATURES])[:, 1])

    onx = convert_sklearn(
        pipe,
        initial_types=[(c, FloatTensorType([None, 1])) for c in FEATURES],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(pipe.steps[-1][1]): {"zipmap": False}},
    )
    ref = resolve(a.dataset)
    name, _, ver = ref.partition("@")
    kiln = (os.environ.get("KILN_URL") or mlflow.get_tracking_uri()).rstrip("/")
    if not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(a.experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"C": a.C, "label_noise": a.label_noise, "seed": a.seed, "dataset": ref,
                           "rows": len(train)})
        mlflow.log_metrics({"train_roc_auc": train_auc, "val_roc_auc": val_auc})
        # The source names the version: the server links the run to name@ver.
        ds = mlflow.data.from_pandas(train, name=name, targets=LABEL,
                                     source=f"{kiln}/api/v1/datasets/{name}/versions/{ver}")
        mlflow.log_input(ds, context="training")
        info = mlflow.onnx.log_model(onx, name="model", pip_requirements=["onnx", "onnxruntime"],
                                     signature=infer_signature(train[FEATURES], pipe.predict(train[FEATURES])))
        print(f"run {run.info.run_id}: trained on {ref}, val ROC AUC {val_auc:.4f}")
    write_output("model", info.model_uri)
    write_output("val_auc", f"{val_auc:.6f}")


if __name__ == "__main__":
    main()
