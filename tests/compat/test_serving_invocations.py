"""`kiln serve` answers MLflow's scoring protocol as `mlflow models serve`
does: /invocations in every input format (dataframe_split,
dataframe_records, instances, inputs, CSV), /ping, /health, /version, and
bad bodies as 400s with MLflow's {"error_code", "message"}.

The expected answers and error codes were checked against a real
`mlflow models serve` (MLflow 3.6) of the same model saved with the
sklearn flavor; where `mlflow models serve` and Kiln differ (Kiln also
accepts a plain list of rows under "instances"/"inputs" for a
column-signature model, which MLflow rejects), the test says so.
"""

from __future__ import annotations

import mlflow.onnx
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

OPSET = {"": 17, "ai.onnx.ml": 3}
# Given, so mlflow does not spend seconds inferring them per model.
ONNX_REQS = ["onnx", "onnxruntime"]
COLS = list("abcd")
ROWS = [[0.1, 0.2, 0.3, 0.4], [1.5, -0.3, 2.0, 0.0], [-1.0, -2.0, -3.0, -4.0], [2.5, 1.0, -0.5, 3.0]]


@pytest.fixture(scope="module")
def lr(tmp_path_factory, serve_model):
    """A LogisticRegression over columns a..d, as ONNX, saved with the
    signature mlflow infers from the training frame and its predictions."""
    tmp = tmp_path_factory.mktemp("invocations")
    X, y = make_classification(n_samples=300, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    df = pd.DataFrame(X.astype(np.float32), columns=COLS)
    model = LogisticRegression(max_iter=500).fit(df, y)
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=OPSET,
                          options={id(model): {"zipmap": False}})
    mlflow.onnx.save_model(onx, tmp / "lr", signature=infer_signature(df, model.predict(df)), pip_requirements=ONNX_REQS)
    want = model.predict(pd.DataFrame(np.array(ROWS, dtype=np.float32), columns=COLS)).tolist()
    return serve_model(str(tmp / "lr")), want, tmp / "lr"


@pytest.fixture(scope="module")
def churn(tmp_path_factory, serve_model):
    """A ColumnTransformer pipeline over numeric and string columns (one
    ONNX input per column)."""
    tmp = tmp_path_factory.mktemp("invocations-churn")
    rng = np.random.RandomState(0)
    n = 200
    df = pd.DataFrame({
        "age": rng.uniform(18, 80, n).astype(np.float32),
        "city": rng.choice(["paris", "lyon", "lille"], n),
    })
    y = ((df.age > 40) ^ (df.city == "lyon")).astype(int)
    pipe = Pipeline([
        ("pre", ColumnTransformer([("num", StandardScaler(), ["age"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])])),
        ("lr", LogisticRegression(max_iter=500)),
    ]).fit(df, y)
    onx = convert_sklearn(pipe, initial_types=[("age", FloatTensorType([None, 1])), ("city", StringTensorType([None, 1]))],
                          target_opset=OPSET)
    mlflow.onnx.save_model(onx, tmp / "churn", signature=infer_signature(df, pipe.predict(df)), pip_requirements=ONNX_REQS)
    test = pd.DataFrame({"age": np.array([25, 61, 44, 33], dtype=np.float32), "city": ["paris", "lyon", "rome", "lille"]})
    return serve_model(str(tmp / "churn"), name="churn"), test, pipe.predict(test).tolist()


def post(server, **kw) -> requests.Response:
    return requests.post(server.url + "/invocations", timeout=30, **kw)


def csv_body(cols, rows) -> str:
    return ",".join(cols) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"


FORMATS = {
    "dataframe_split": {"json": {"dataframe_split": {"columns": COLS, "data": ROWS}}},
    "dataframe_split with index": {"json": {"dataframe_split": {"index": [7, 8, 9, 10], "columns": COLS, "data": ROWS}}},
    "dataframe_split, columns reordered": {"json": {"dataframe_split": {"columns": COLS[::-1], "data": [r[::-1] for r in ROWS]}}},
    "dataframe_records": {"json": {"dataframe_records": [dict(zip(COLS, r)) for r in ROWS]}},
    "instances as records": {"json": {"instances": [dict(zip(COLS, r)) for r in ROWS]}},
    "inputs as columns": {"json": {"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLS)}}},
    "csv": {"data": csv_body(COLS, ROWS), "headers": {"Content-Type": "text/csv"}},
    "csv; charset=utf-8": {"data": csv_body(COLS, ROWS), "headers": {"Content-Type": "text/csv; charset=utf-8"}},
    # `mlflow models serve` rejects these two for a column signature; Kiln stacks the rows.
    "instances as rows (kiln only)": {"json": {"instances": ROWS}},
    "inputs as rows (kiln only)": {"json": {"inputs": ROWS}},
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_input_formats(lr, fmt):
    server, want, _ = lr
    r = post(server, **FORMATS[fmt])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"predictions": want}


def test_string_columns_by_name(churn):
    server, test, want = churn
    import json

    split = json.loads(test[["city", "age"]].to_json(orient="split", index=False))
    assert post(server, json={"dataframe_split": split}).json() == {"predictions": want}
    assert post(server, json={"dataframe_records": test.to_dict(orient="records")}).json() == {"predictions": want}
    r = post(server, data=test.to_csv(index=False), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}


def test_ping_health_version(lr):
    server, _, _ = lr
    for path in ("/ping", "/health"):
        r = requests.get(server.url + path, timeout=5)
        assert r.status_code == 200
    r = requests.get(server.url + "/version", timeout=5)
    assert r.status_code == 200 and r.text == "3.6.0"  # what `mlflow models serve` of MLflow 3.6 answers


BAD = {
    # name: (request, allowed error codes, words the message must contain)
    "not json": ({"data": "{nope", "headers": {"Content-Type": "application/json"}}, {"BAD_REQUEST"}, ["JSON"]),
    "empty body": ({"data": "", "headers": {"Content-Type": "application/json"}}, {"BAD_REQUEST"}, ["JSON"]),
    "no format key": ({"json": {"data": ROWS}}, {"BAD_REQUEST"}, ["dataframe_split", "instances"]),
    "two format keys": ({"json": {"inputs": ROWS, "instances": ROWS}}, {"BAD_REQUEST"}, ["exactly one"]),
    "a bare list": ({"json": ROWS}, {"BAD_REQUEST"}, ["dictionary"]),
    "ragged rows": ({"json": {"dataframe_split": {"columns": COLS, "data": [[1, 2, 3]]}}}, {"BAD_REQUEST"}, ["dataframe_split"]),
    "missing column": ({"json": {"dataframe_split": {"columns": COLS[:3], "data": [r[:3] for r in ROWS]}}},
                       {"INVALID_PARAMETER_VALUE"}, ["'d'"]),
    # MLflow says BAD_REQUEST for these two, Kiln INVALID_PARAMETER_VALUE; both name the column.
    "string in a float column": ({"json": {"dataframe_split": {"columns": COLS, "data": [["x", 1, 2, 3]]}}},
                                 {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}, ["a"]),
    "bad csv cell": ({"data": "a,b,c,d\n1,2,x,4\n", "headers": {"Content-Type": "text/csv"}},
                     {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}, ["c"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_bodies_are_400_in_mlflow_format(lr, case):
    server, _, _ = lr
    req, codes, words = BAD[case]
    r = post(server, **req)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) >= {"error_code", "message"}
    assert body["error_code"] in codes, body
    for w in words:
        assert w in body["message"], body


def test_unsupported_content_type_is_415(lr):
    server, _, _ = lr
    r = post(server, data="a,b", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "text/csv" in r.text and "application/json" in r.text
    r = post(server, data="{}", headers={"Content-Type": "application/json; charset=latin-1"})
    assert r.status_code == 415 and "UTF-8" in r.text


def test_body_limit(serve_model, lr):
    _, _, model_dir = lr
    small = serve_model(str(model_dir), args=("--max-body-size", "1KiB"))
    r = post(small, json={"dataframe_split": {"columns": COLS, "data": ROWS * 50}})
    assert r.status_code == 413, r.text
    assert set(r.json()) >= {"error_code", "message"}
    assert post(small, json={"dataframe_split": {"columns": COLS, "data": ROWS}}).status_code == 200
