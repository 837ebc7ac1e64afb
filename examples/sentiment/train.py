"""Train the dairy-comments sentiment model and hand it to Kiln.

Reads a CSV of comments (columns product, text and label, as gen_data.py
writes them), holds out a stratified fifth for evaluation, and fits with
scikit-learn TF-IDF of the text (words and word pairs) and a one-hot of the
product family, then a multinomial logistic regression. Everything is
logged with the real MLflow client against the Kiln server
(MLFLOW_TRACKING_URI):

* parameters and evaluation metrics (accuracy, macro F1, F1 per class);
* the dataset input, whose source names the Kiln dataset version
  (SERVER/api/v1/datasets/NAME/versions/N): the server links the run to the
  version, and the monitor finds the served model's training data through
  that link;
* the model, converted to ONNX with skl2onnx (Kiln serves it natively, in
  pure Go: StringNormalizer → Tokenizer → TfIdfVectorizer and OneHotEncoder
  → LinearClassifier), registered as a new version of --model, with the
  alias --alias moved to it.

    python train.py --data data/train/comments.csv --dataset dairy-comments@1

split() and fit() are importable: the tests compare the served model with
scikit-learn's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

import mlflow
import mlflow.onnx
import pandas as pd
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

LABELS = ["negative", "neutral", "positive"]
# The model's inputs: what the comment form sends (the product picked, the comment).
FEATURES = ["product", "text"]
# scikit-learn's default token pattern; the ONNX Tokenizer gets the same
# expression (RE2 in Kiln and onnxruntime), and the C.UTF-8 locale for
# the lower-casing of StringNormalizer.
TOKEN_PATTERN = r"\b\w\w+\b"
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
DATASET_REF = re.compile(r"^[A-Za-z0-9_.-]+@v?[0-9]+$")


# MLflow's client asks every dataset source resolver, Databricks' too, and warns when one fails.
warnings.filterwarnings("ignore", message="Failed to determine whether UCVolumeDatasetSource")


def split(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and evaluation comments: a stratified 80/20 split."""
    return train_test_split(df, test_size=0.2, random_state=seed, stratify=df["label"])


def fit(train: pd.DataFrame, C: float = 5.0, max_ngram: int = 2) -> Pipeline:
    """TF-IDF of the text and a one-hot of the product, then a multinomial
    logistic regression: train[FEATURES] → train.label."""
    features = ColumnTransformer([
        # Raw term counts (no sublinear_tf): skl2onnx converts that option
        # inexactly (probabilities off by up to ~0.004); as it is, the ONNX
        # model answers as scikit-learn does (within 1e-6).
        ("text", TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, ngram_range=(1, max_ngram),
                                 min_df=2), "text"),
        ("product", OneHotEncoder(handle_unknown="ignore"), ["product"]),
    ])
    pipe = Pipeline([("features", features), ("lr", LogisticRegression(C=C, max_iter=2000))])
    return pipe.fit(train[FEATURES], train["label"])


def to_onnx(pipe: Pipeline):
    """The pipeline as ONNX: string inputs `product` and `text` ([N, 1]
    each); outputs `label` (the class) and `probabilities` ([N, 3], in
    LABELS order). The output `label` has the name of the training data's
    label column, so the monitor compares predicted classes with it."""
    return convert_sklearn(
        pipe,
        initial_types=[(f, StringTensorType([None, 1])) for f in FEATURES],
        target_opset=ONNX_OPSET,
        # By type: the ColumnTransformer holds fitted clones of its transformers.
        options={TfidfVectorizer: {"tokenexp": TOKEN_PATTERN, "locale": "C.UTF-8"},
                 LogisticRegression: {"zipmap": False}},
    )


def load(path: str) -> pd.DataFrame:
    """The comments of a CSV file; a clear error when columns are missing."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {*FEATURES, "label"} - set(df.columns)
    if missing:
        raise SystemExit(f"{path}: missing column(s) {', '.join(sorted(missing))} (have {', '.join(df.columns)})")
    unknown = set(df["label"]) - set(LABELS)
    if unknown:
        raise SystemExit(f"{path}: unknown label(s) {', '.join(sorted(unknown))}; expected {', '.join(LABELS)}")
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the CSV of comments (product, text, label)")
    ap.add_argument("--dataset", required=True, help="the Kiln dataset version it is, NAME@N")
    ap.add_argument("--experiment", default="dairy-sentiment")
    ap.add_argument("--model", default="dairy-sentiment", help="registered model name")
    ap.add_argument("--alias", default="champion", help="alias moved to the new version ('' for none)")
    ap.add_argument("--C", type=float, default=5.0, help="inverse regularisation strength")
    ap.add_argument("--max-ngram", type=int, default=2, help="longest word n-gram of the TF-IDF vocabulary")
    ap.add_argument("--seed", type=int, default=0, help="seed of the train/eval split")
    a = ap.parse_args()
    if not DATASET_REF.match(a.dataset):
        raise SystemExit(f"--dataset {a.dataset!r}: want NAME@N, a version number (kiln data versions NAME)")
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        raise SystemExit("set MLFLOW_TRACKING_URI to the Kiln server (e.g. http://127.0.0.1:5000)")

    df = load(a.data)
    train, test = split(df, a.seed)
    pipe = fit(train, a.C, a.max_ngram)
    pred = pipe.predict(test[FEATURES])
    metrics = {"accuracy": accuracy_score(test["label"], pred),
               "f1_macro": f1_score(test["label"], pred, average="macro"),
               "train_accuracy": accuracy_score(train["label"], pipe.predict(train[FEATURES]))}
    for label, f1 in zip(LABELS, f1_score(test["label"], pred, average=None, labels=LABELS)):
        metrics[f"f1_{label}"] = f1

    name, _, version = a.dataset.partition("@")
    mlflow.set_experiment(a.experiment)
    with mlflow.start_run(run_name=f"tfidf-logreg-{a.dataset}") as run:
        mlflow.log_params({"C": a.C, "max_ngram": a.max_ngram, "min_df": 2, "seed": a.seed,
                           "dataset": a.dataset, "train_rows": len(train), "eval_rows": len(test),
                           "vocabulary": len(pipe.named_steps["features"].named_transformers_["text"].vocabulary_)})
        mlflow.log_metrics(metrics)
        # The version's API URL as the source. (The server also accepts
        # kiln://datasets/NAME@N, but mlflow.data.from_pandas refuses that scheme.)
        server = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
        ds = mlflow.data.from_pandas(df, name=name, targets="label",
                                     source=f"{server}/api/v1/datasets/{name}/versions/{version.lstrip('v')}")
        mlflow.log_input(ds, context="training")
        info = mlflow.onnx.log_model(
            to_onnx(pipe), name="model", registered_model_name=a.model,
            signature=infer_signature(test[FEATURES], pred),
            pip_requirements=["onnx", "onnxruntime"])
    version_no = info.registered_model_version
    if a.alias and version_no is not None:
        mlflow.MlflowClient().set_registered_model_alias(a.model, a.alias, str(version_no))
    print(f"run {run.info.run_id}: accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f} "
          f"on {len(test)} held-out comments", file=sys.stderr)
    print(f"registered {a.model} version {version_no}" + (f", alias {a.alias}" if a.alias else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
