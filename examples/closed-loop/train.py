"""Training of the closed-loop example's churn model (XGBoost), in two modes.

Step mode (the pipeline's `train` step): reads train.parquet and
eval.parquet from the step's dataset input ($KILN_INPUTS/data, or --data
DIR), fits an xgboost.XGBClassifier with the given hyperparameters (the
tuning study's best, passed on by the pipeline) and logs with the real
MLflow client: the parameters, the training and validation ROC AUC, the
dataset input (its source names the Kiln dataset version, so the server
links run → dataset version) and the model with mlflow.xgboost in the UBJ
format, which Kiln's pure-Go XGBoost runtime serves. Inside a pipeline
MLFLOW_RUN_ID is the step's child run and mlflow.start_run() attaches to
it; alone, a new run is created in --experiment.

Outputs (files under $KILN_OUTPUTS, the pipeline's outputs of the step):
  model    the logged model's URI (models:/m-…)
  val_auc  the ROC AUC on eval.parquet

Trial mode (--trial; the command of study.yaml, run by `kiln tune`): fits
on three quarters of train.parquet and logs the ROC AUC on the held-out
quarter as `holdout_roc_auc` (the study's objective) to the trial's run.
eval.parquet is left alone, for the gate; no model and no outputs are
written.

--label-noise p replaces a share p of the training labels with coin flips
(p = 1: a model that learned nothing — how the example shows the gate
refusing a worse model).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from gen_data import FEATURES, LABEL


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


def model(a: argparse.Namespace) -> xgb.XGBClassifier:
    """The classifier of the hyperparameters in a."""
    return xgb.XGBClassifier(
        max_depth=a.max_depth, learning_rate=a.learning_rate, n_estimators=a.n_estimators,
        subsample=0.9, tree_method="hist", random_state=a.seed, n_jobs=a.threads,
    )


def auc(clf: xgb.XGBClassifier, frame: pd.DataFrame) -> float:
    return float(roc_auc_score(frame[LABEL], clf.predict_proba(frame[FEATURES])[:, 1]))


def trial(a: argparse.Namespace, train: pd.DataFrame) -> None:
    """One trial of the tuning study: fit on 3/4 of train, score the other 1/4."""
    hold = np.random.default_rng(a.seed).random(len(train)) < 0.25
    fit, held = train[~hold], train[hold]
    t = time.time()
    clf = model(a).fit(fit[FEATURES], fit[LABEL])
    value = auc(clf, held)
    with mlflow.start_run():  # MLFLOW_RUN_ID: the trial's run, made by kiln tune
        mlflow.log_metrics({"holdout_roc_auc": value, "fit_seconds": time.time() - t})
    print(f"max_depth={a.max_depth} learning_rate={a.learning_rate} n_estimators={a.n_estimators}: "
          f"holdout ROC AUC {value:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="closed-loop-data@latest", help="the Kiln dataset version trained on")
    ap.add_argument("--data", help="folder holding train.parquet and eval.parquet (default $KILN_INPUTS/data)")
    ap.add_argument("--max-depth", type=int, default=4)
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--n-estimators", type=int, default=150)
    ap.add_argument("--label-noise", type=float, default=0.0, help="share of training labels replaced by coin flips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="XGBoost's n_jobs")
    ap.add_argument("--trial", action="store_true", help="a tuning trial: log holdout_roc_auc only")
    ap.add_argument("--experiment", default="closed-loop", help="experiment of a run started outside a pipeline")
    a = ap.parse_args()
    if not 0 <= a.label_noise <= 1:
        raise SystemExit(f"--label-noise {a.label_noise}: must be between 0 and 1")

    data = Path(a.data or os.environ.get("KILN_INPUT_DATA") or Path(os.environ.get("KILN_INPUTS", "."), "data"))
    train = pd.read_parquet(data / "train.parquet")
    if a.trial:
        trial(a, train)
        return
    val = pd.read_parquet(data / "eval.parquet")
    rng = np.random.default_rng(a.seed)
    y = train[LABEL].to_numpy().copy()
    if a.label_noise > 0:
        flip = rng.random(len(y)) < a.label_noise
        y[flip] = rng.integers(0, 2, flip.sum())

    clf = model(a).fit(train[FEATURES], y)
    train_auc, val_auc = auc(clf, train), auc(clf, val)

    ref = resolve(a.dataset)
    name, _, ver = ref.partition("@")
    kiln = (os.environ.get("KILN_URL") or mlflow.get_tracking_uri()).rstrip("/")
    if not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(a.experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"max_depth": a.max_depth, "learning_rate": a.learning_rate,
                           "n_estimators": a.n_estimators, "label_noise": a.label_noise, "seed": a.seed,
                           "dataset": ref, "rows": len(train)})
        mlflow.log_metrics({"train_roc_auc": train_auc, "val_roc_auc": val_auc})
        # The source names the version: the server links the run to name@ver.
        ds = mlflow.data.from_pandas(train, name=name, targets=LABEL,
                                     source=f"{kiln}/api/v1/datasets/{name}/versions/{ver}")
        mlflow.log_input(ds, context="training")
        # UBJ (or JSON): the formats Kiln's Go runtime reads; with the
        # default "xgb" Kiln would hand the model to a Python worker.
        info = mlflow.xgboost.log_model(
            clf, name="model", model_format="ubj",
            signature=mlflow.models.infer_signature(train[FEATURES], clf.predict(train[FEATURES])),
        )
        print(f"run {run.info.run_id}: trained on {ref}, val ROC AUC {val_auc:.4f}")
    write_output("model", info.model_uri)
    write_output("val_auc", f"{val_auc:.6f}")


if __name__ == "__main__":
    main()
