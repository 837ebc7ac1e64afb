"""`kiln serve` serves models logged with the real mlflow client to
`kiln server`, by URI: models:/NAME@ALIAS, models:/NAME/VERSION,
runs:/RUN_ID/PATH and models:/m-ID, resolved through the tracking server at
KILN_URL or MLFLOW_TRACKING_URI (on every storage backend of the `kiln`
fixture).

Two versions of one registered model hold different models (a logistic
regression and a random forest whose predictions differ on the test
rows), so each URI is checked to have led to the right one.
"""

from __future__ import annotations

import mlflow
import mlflow.onnx
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.models import infer_signature
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

OPSET = {"": 17, "ai.onnx.ml": 3}
# Given, so mlflow does not spend seconds inferring them per model.
ONNX_REQS = ["onnx", "onnxruntime"]
COLS = [f"x{i}" for i in range(5)]


@pytest.fixture(scope="module")
def logged(kiln, tmp_path_factory):
    """Registers two versions of one model in `kiln server` and gives the
    alias "champion" to version 1."""
    mlflow.set_tracking_uri(kiln.url)
    mlflow.set_registry_uri(kiln.url)
    client = mlflow.MlflowClient(kiln.url, kiln.url)
    import uuid

    name = "serve-" + uuid.uuid4().hex[:8]
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, n_redundant=0, flip_y=0.2, random_state=0)
    df = pd.DataFrame(X.astype(np.float32), columns=COLS)
    test = pd.DataFrame(np.random.RandomState(9).randn(40, 5).astype(np.float32) * 2, columns=COLS)
    estimators = [LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0)]
    mlflow.set_experiment("serve-by-uri-" + name)
    out = []
    for est in estimators:
        est.fit(df, y)
        onx = convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 5]))], target_opset=OPSET,
                              options={id(est): {"zipmap": False}})
        with mlflow.start_run() as run:
            info = mlflow.onnx.log_model(onx, name="model", signature=infer_signature(df, est.predict(df)),
                                         registered_model_name=name, pip_requirements=ONNX_REQS)
        out.append({"run_id": run.info.run_id, "model_id": info.model_id, "version": info.registered_model_version,
                    "want": est.predict(test).tolist()})
    assert out[0]["want"] != out[1]["want"], "the two versions must predict differently on the test rows"
    assert [int(o["version"]) for o in out] == [1, 2]
    client.set_registered_model_alias(name, "champion", "1")
    return {"name": name, "test": test, "versions": out}


def predict(server, test: pd.DataFrame) -> list:
    import json

    body = {"dataframe_split": json.loads(test.to_json(orient="split", index=False))}
    r = requests.post(server.url + "/invocations", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def test_alias(kiln, logged, serve_model):
    s = serve_model(f"models:/{logged['name']}@champion", env={"KILN_URL": kiln.url})
    v1 = logged["versions"][0]
    assert predict(s, logged["test"]) == v1["want"]
    md = requests.get(f"{s.url}/v2/models/{logged['name']}", timeout=5).json()
    assert md["name"] == logged["name"]  # the registered model's name by default
    assert md["versions"] == ["1"]


def test_version(kiln, logged, serve_model):
    # Through MLFLOW_TRACKING_URI, as the mlflow client would be configured.
    s = serve_model(f"models:/{logged['name']}/2", env={"MLFLOW_TRACKING_URI": kiln.url})
    assert predict(s, logged["test"]) == logged["versions"][1]["want"]
    md = requests.get(f"{s.url}/v2/models/{logged['name']}", timeout=5).json()
    assert md["versions"] == ["2"]


def test_moving_the_alias(kiln, logged, serve_model):
    client = mlflow.MlflowClient(kiln.url, kiln.url)
    client.set_registered_model_alias(logged["name"], "challenger", "2")
    s = serve_model(f"models:/{logged['name']}@challenger", env={"KILN_URL": kiln.url})
    assert predict(s, logged["test"]) == logged["versions"][1]["want"]


def test_run_uri(kiln, logged, serve_model):
    v1 = logged["versions"][0]
    s = serve_model(f"runs:/{v1['run_id']}/model", env={"KILN_URL": kiln.url}, name="from-run")
    assert predict(s, logged["test"]) == v1["want"]
    assert s.name == "from-run"


def test_logged_model_id(kiln, logged, serve_model):
    v2 = logged["versions"][1]
    s = serve_model(f"models:/{v2['model_id']}", env={"KILN_URL": kiln.url})
    assert predict(s, logged["test"]) == v2["want"]


def test_unknown_uri_fails_clearly(kiln, logged, tmp_path):
    import subprocess

    from conftest import KILN_BIN

    for uri, words in [(f"models:/{logged['name']}@nope", ["nope"]), ("models:/no-such-model-xyz/1", ["no-such-model-xyz"]),
                       ("runs:/0123456789abcdef0123456789abcdef/model", ["0123456789abcdef0123456789abcdef"])]:
        p = subprocess.run([KILN_BIN, "serve", uri, "--addr", "127.0.0.1:0", "--grpc-addr", ""],
                           env={"KILN_URL": kiln.url, "XDG_CACHE_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
        assert p.returncode != 0
        for w in words:
            assert w in p.stderr, p.stderr
    # A models:/ URI without a tracking server says how to give one.
    p = subprocess.run([KILN_BIN, "serve", f"models:/{logged['name']}@champion", "--addr", "127.0.0.1:0", "--grpc-addr", ""],
                       env={"XDG_CACHE_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "MLFLOW_TRACKING_URI" in p.stderr, p.stderr
