"""`kiln serve` predicts what the reference libraries predict.

Each model is trained here, saved with the real mlflow client
(mlflow.onnx / mlflow.xgboost / mlflow.lightgbm / mlflow.sklearn
save_model), served by a freshly built `kiln serve`, and scored over
MLflow's /invocations (dataframe_split, the body `mlflow models serve`
takes) and the Open Inference Protocol's REST infer. Labels must match
exactly and scores within 1e-5 relative of the reference: onnxruntime for
the ONNX models (and scikit-learn's labels), xgboost and lightgbm for their
native flavors, scikit-learn for the pickled model served by the Python
worker.

Like `mlflow models serve`, /invocations answers with the outputs the
MLflow signature names: a model saved with
``infer_signature(X, model.predict(X))`` answers its labels only, one saved
without an output schema answers every output (one object per row); the V2
protocol always has every output.
"""

from __future__ import annotations

import sys

import lightgbm as lgb
import mlflow.lightgbm
import mlflow.onnx
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import requests
import xgboost as xgb
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

RTOL, ATOL = 1e-5, 1e-7
OPSET = {"": 17, "ai.onnx.ml": 3}
# Given, so mlflow does not spend seconds inferring them per model.
ONNX_REQS = ["onnx", "onnxruntime"]


def invocations(server, payload) -> list:
    r = requests.post(server.url + "/invocations", json=payload, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def split(df: pd.DataFrame) -> dict:
    """The dataframe_split body pandas writes (nulls for NaN)."""
    import json

    return {"dataframe_split": json.loads(df.to_json(orient="split", index=False))}


def v2_infer(server, inputs: list[dict]) -> dict:
    r = requests.post(f"{server.url}/v2/models/{server.name}/infer", json={"inputs": inputs}, timeout=30)
    assert r.status_code == 200, r.text
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in r.json()["outputs"]}


def ort_run(model_dir, feeds: dict) -> list:
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def zipmap_matrix(rows: list[dict], classes) -> np.ndarray:
    """ZipMap output (one {class: probability} per row) as a matrix."""
    return np.array([[r[c] for c in classes] for r in rows], dtype=np.float64)


def close(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def tabular():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_classes=3, random_state=0)
    cols = [f"x{i}" for i in range(6)]
    df = pd.DataFrame(X.astype(np.float32), columns=cols)
    test = pd.DataFrame(np.random.RandomState(1).randn(16, 6).astype(np.float32), columns=cols)
    return df, y, test


def test_logistic_regression_onnx(tabular, tmp_path, serve_model):
    df, y, test = tabular
    lr = LogisticRegression(max_iter=1000).fit(df, y)
    onx = convert_sklearn(lr, initial_types=[("X", FloatTensorType([None, 6]))], target_opset=OPSET)
    # No output schema: /invocations answers every output of the graph.
    mlflow.onnx.save_model(onx, tmp_path / "m", signature=infer_signature(df), pip_requirements=ONNX_REQS)
    labels, probs = ort_run(tmp_path / "m", {"X": test.to_numpy()})
    assert (labels == lr.predict(test)).all()
    s = serve_model(str(tmp_path / "m"), name="lr")

    preds = invocations(s, split(test))
    assert [p["output_label"] for p in preds] == labels.tolist()
    close(zipmap_matrix([p["output_probability"] for p in preds], ["0", "1", "2"]), zipmap_matrix(probs, [0, 1, 2]))

    out = v2_infer(s, [{"name": "X", "shape": [16, 6], "datatype": "FP32", "data": test.to_numpy().ravel().tolist()}])
    assert out["output_label"].tolist() == labels.tolist()
    close(out["output_probability"], zipmap_matrix(probs, [0, 1, 2]))


def test_random_forest_onnx(tabular, tmp_path, serve_model):
    df, y, test = tabular
    rf = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0).fit(df, y)
    onx = convert_sklearn(rf, initial_types=[("X", FloatTensorType([None, 6]))], target_opset=OPSET,
                          options={id(rf): {"zipmap": False}})
    mlflow.onnx.save_model(onx, tmp_path / "m", signature=infer_signature(df, rf.predict(df)), pip_requirements=ONNX_REQS)
    labels, probs = ort_run(tmp_path / "m", {"X": test.to_numpy()})
    assert (labels == rf.predict(test)).all()
    s = serve_model(str(tmp_path / "m"))
    assert s.name == "m"

    # dataframe_split with the columns in another order: kiln stacks them in the signature's order.
    shuffled = test[list(reversed(test.columns))]
    assert invocations(s, split(shuffled)) == labels.tolist()

    out = v2_infer(s, [{"name": "X", "shape": [16, 6], "datatype": "FP32", "data": test.to_numpy().ravel().tolist()}])
    assert out["label"].tolist() == labels.tolist()
    close(out["probabilities"], probs)


@pytest.fixture(scope="module")
def customers():
    rng = np.random.RandomState(3)
    n = 300
    df = pd.DataFrame({
        "age": rng.uniform(18, 80, n).astype(np.float32),
        "income": rng.lognormal(10, 0.5, n).astype(np.float32),
        "city": rng.choice(["paris", "lyon", "nantes", "lille"], n),
        "plan": rng.choice(["free", "pro", "team"], n),
    })
    z = 0.04 * (df.age - 45) + (df.income > 25000) + (df.city == "paris") - (df.plan == "free") + 0.3 * rng.randn(n)
    test = pd.DataFrame({
        "age": np.array([25, 61, 44, 33, 70, 19], dtype=np.float32),
        "income": np.array([18000, 52000, 31000, 27000, 9000, 64000], dtype=np.float32),
        "city": ["paris", "lyon", "rome", "lille", "nantes", "paris"],  # rome: unknown category
        "plan": ["free", "team", "pro", "gold", "free", "pro"],  # gold: unknown category
    })
    return df, (z > 0.4).astype(np.int64).to_numpy(), test


def test_column_transformer_pipeline_onnx(customers, tmp_path, serve_model):
    df, y, test = customers
    ct = ColumnTransformer([
        ("num", StandardScaler(), ["age", "income"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
    ])
    pipe = Pipeline([("pre", ct), ("lr", LogisticRegression(max_iter=1000))]).fit(df, y)
    types = [("age", FloatTensorType([None, 1])), ("income", FloatTensorType([None, 1])),
             ("city", StringTensorType([None, 1])), ("plan", StringTensorType([None, 1]))]
    onx = convert_sklearn(pipe, initial_types=types, target_opset=OPSET)
    mlflow.onnx.save_model(onx, tmp_path / "m", signature=infer_signature(df, pipe.predict(df)), pip_requirements=ONNX_REQS)
    feeds = {c: test[[c]].to_numpy() if test[c].dtype != object else test[[c]].to_numpy().astype(object) for c in test}
    labels, probs = ort_run(tmp_path / "m", feeds)
    assert (labels == pipe.predict(test)).all()
    s = serve_model(str(tmp_path / "m"), name="churn")

    # Columns by name, in another order than the model's inputs.
    assert invocations(s, split(test[["plan", "income", "city", "age"]])) == labels.tolist()
    # dataframe_records says the same.
    assert invocations(s, {"dataframe_records": test.to_dict(orient="records")}) == labels.tolist()

    out = v2_infer(s, [
        {"name": "age", "shape": [6, 1], "datatype": "FP32", "data": test.age.tolist()},
        {"name": "income", "shape": [6, 1], "datatype": "FP32", "data": test.income.tolist()},
        {"name": "city", "shape": [6, 1], "datatype": "BYTES", "data": test.city.tolist()},
        {"name": "plan", "shape": [6, 1], "datatype": "BYTES", "data": test.plan.tolist()},
    ])
    assert out["output_label"].tolist() == labels.tolist()
    close(out["output_probability"], zipmap_matrix(probs, [0, 1]))


COMMENTS = [
    ("The milk was fresh and creamy, I love it", 1),
    ("Great cheese, rich taste and perfect texture", 1),
    ("This yogurt is delicious and not too sweet", 1),
    ("Excellent butter, we will order again", 1),
    ("Lovely fresh cream and fast delivery", 1),
    ("Best goat cheese I have had in years", 1),
    ("The milk was sour and smelled awful", 0),
    ("Terrible cheese, dry and tasteless", 0),
    ("The yogurt arrived late and warm", 0),
    ("Awful butter, rancid taste, never again", 0),
    ("Cream was spoiled, very disappointed", 0),
    ("Bad packaging and the cheese was mouldy", 0),
]
TEXTS = ["Fresh milk, great taste!", "the cheese was dry and awful", "yogurt delivered on Monday",
         "never again: sour cream", "", "LOVE the goat cheese"]


def test_tfidf_text_pipeline_onnx(tmp_path, serve_model):
    docs = pd.DataFrame({"text": [c for c, _ in COMMENTS]})
    labels_train = [l for _, l in COMMENTS]
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(docs.text, labels_train)
    onx = convert_sklearn(pipe, initial_types=[("text", StringTensorType([None, 1]))], target_opset=OPSET,
                          options={TfidfVectorizer: {"tokenexp": r"\b\w\w+\b", "locale": "C.UTF-8"}})
    mlflow.onnx.save_model(onx, tmp_path / "m", signature=infer_signature(docs, pipe.predict(docs.text)), pip_requirements=ONNX_REQS)
    labels, probs = ort_run(tmp_path / "m", {"text": np.array(TEXTS, dtype=object).reshape(-1, 1)})
    assert (labels == pipe.predict(TEXTS)).all()
    s = serve_model(str(tmp_path / "m"), name="reviews")

    assert invocations(s, split(pd.DataFrame({"text": TEXTS}))) == labels.tolist()

    out = v2_infer(s, [{"name": "text", "shape": [len(TEXTS), 1], "datatype": "BYTES", "data": TEXTS}])
    assert out["output_label"].tolist() == labels.tolist()
    close(out["output_probability"], zipmap_matrix(probs, [0, 1]))


def with_nan(df: pd.DataFrame, every: int = 3) -> pd.DataFrame:
    """NaN in every `every`-th row, in a column that moves along."""
    df = df.copy()
    for i in range(0, len(df), every):
        df.iloc[i, (i // every) % df.shape[1]] = np.nan
    return df


def test_xgboost_classifier_native(tmp_path, serve_model):
    X, y = make_classification(n_samples=500, n_features=5, n_informative=3, n_classes=3, random_state=4)
    cols = [f"f{i}" for i in range(5)]
    df = with_nan(pd.DataFrame(X.astype(np.float32), columns=cols), 7)
    model = xgb.XGBClassifier(n_estimators=25, max_depth=4, n_jobs=1, random_state=0).fit(df, y)
    mlflow.xgboost.save_model(model, tmp_path / "m", signature=infer_signature(df, model.predict(df)), pip_requirements=["xgboost"])
    test = with_nan(pd.DataFrame(np.random.RandomState(5).randn(12, 5).astype(np.float32), columns=cols), 4)
    labels, probs = model.predict(test), model.predict_proba(test)
    s = serve_model(str(tmp_path / "m"), name="xgb")

    assert invocations(s, split(test)) == labels.tolist()  # NaN travels as null

    # V2 cannot carry NaN in JSON: the binary tensor extension can (see test_serving_triton); rows without NaN here.
    full = test.dropna()
    out = v2_infer(s, [{"name": "input", "shape": list(full.shape), "datatype": "FP32", "data": full.to_numpy().ravel().tolist()}])
    assert out["label"].tolist() == model.predict(full).tolist()
    close(out["probabilities"], model.predict_proba(full))


def test_lightgbm_regressor_native(tmp_path, serve_model):
    X, y = make_regression(n_samples=500, n_features=5, noise=0.5, random_state=6)
    cols = [f"f{i}" for i in range(5)]
    df = with_nan(pd.DataFrame(X, columns=cols), 9)
    booster = lgb.train({"objective": "regression", "num_leaves": 15, "verbose": -1, "deterministic": True, "num_threads": 1},
                        lgb.Dataset(df, y), num_boost_round=30)
    mlflow.lightgbm.save_model(booster, tmp_path / "m", signature=infer_signature(df, booster.predict(df)),
                              pip_requirements=["lightgbm"])
    assert (tmp_path / "m" / "model.lgb").exists()  # the text format, not a pickle
    test = with_nan(pd.DataFrame(np.random.RandomState(7).randn(12, 5).astype(np.float32).astype(np.float64), columns=cols), 4)
    want = booster.predict(test)
    s = serve_model(str(tmp_path / "m"), name="lgb")
    assert s.grpc and requests.get(f"{s.url}/v2/models/lgb", timeout=5).json()["platform"] == "lightgbm_text"

    close(invocations(s, split(test)), want)
    full = test.dropna()
    out = v2_infer(s, [{"name": "input", "shape": list(full.shape), "datatype": "FP32", "data": full.to_numpy().ravel().tolist()}])
    close(out["predictions"], booster.predict(full))


def test_pickled_sklearn_python_worker(tabular, tmp_path, serve_model):
    df, y, test = tabular
    # No ONNX here: a pickled scikit-learn model, scored by Kiln's Python worker.
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=7)).fit(df, y)
    mlflow.sklearn.save_model(knn, tmp_path / "m", signature=infer_signature(df, knn.predict(df)),
                              pip_requirements=["scikit-learn"])
    s = serve_model(str(tmp_path / "m"), name="knn", args=("--python", sys.executable))
    assert requests.get(f"{s.url}/v2/models/knn", timeout=5).json()["platform"] == "mlflow_pyfunc"
    assert invocations(s, split(test)) == knn.predict(test).tolist()
    assert invocations(s, {"dataframe_records": test.to_dict(orient="records")}) == knn.predict(test).tolist()
