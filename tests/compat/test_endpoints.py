"""Deployed endpoints of `kiln server` driven by real clients: two registered
XGBoost versions behind one endpoint with a sticky A/B experiment, reached
with tritonclient (HTTP and gRPC), MLflow's /invocations format through
requests, SHAP explanations through /endpoints/{e}/explain compared with the
shap package, and the endpoint's stats and events through the native API.
"""

from __future__ import annotations

import time
import uuid

import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
import requests
import shap
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.datasets import make_classification


@pytest.fixture(scope="module")
def two_versions(kiln):
    """Registers two XGBoost binary classifiers as versions 1 and 2."""
    X, y = make_classification(n_samples=400, n_features=4, n_informative=3, n_redundant=0, random_state=11)
    cols = [f"f{i}" for i in range(4)]
    df = pd.DataFrame(X.astype(np.float32), columns=cols)
    unique = uuid.uuid4().hex[:8]
    name = f"ep-xgb-{unique}"
    models = {}
    mlflow.set_experiment(f"endpoints-{unique}")
    for version, n in ((1, 5), (2, 40)):
        m = xgb.XGBClassifier(n_estimators=n, max_depth=3, n_jobs=1, random_state=0).fit(df, y)
        with mlflow.start_run():
            mlflow.xgboost.log_model(m, name="model", signature=infer_signature(df, m.predict(df)),
                                     input_example=df.head(20), registered_model_name=name)
        models[str(version)] = m
    test = pd.DataFrame(np.random.RandomState(3).randn(6, 4).astype(np.float32), columns=cols)
    return name, models, test


def apply(kiln, doc):
    r = requests.put(f"{kiln.url}/api/v1/endpoints/{doc['metadata']['name']}", json=doc,
                     headers={"X-Kiln-Actor": "pytest"}, timeout=60)
    assert r.status_code in (200, 201), r.text
    return r.json()


def wait_ready(kiln, ep):
    deadline = time.time() + 60
    while time.time() < deadline:
        r = requests.get(f"{kiln.url}/v2/models/{ep}/ready", timeout=10)
        if r.status_code == 200:
            return
        time.sleep(0.2)
    pytest.fail(f"endpoint {ep} never became ready")


def test_ab_endpoint_with_real_clients(kiln, two_versions, unique):
    name, models, test = two_versions
    ep = f"ab-{unique}"
    res = apply(kiln, {
        "apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
        "spec": {"model": name,
                 "routes": [{"name": "a", "version": "1", "weight": 50}, {"name": "b", "version": "2", "weight": 50}],
                 "experiment": {"key_header": "X-User"}},
    })
    assert res["created"] is True
    # Applying the same document again changes nothing.
    assert apply(kiln, {"apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
                        "spec": {"model": name,
                                 "routes": [{"name": "a", "version": "1", "weight": 50}, {"name": "b", "version": "2", "weight": 50}],
                                 "experiment": {"key_header": "X-User"}}})["changed"] is False
    wait_ready(kiln, ep)

    x = test.to_numpy()
    # tritonclient over HTTP: the answer is the probabilities of the version that served it.
    hc = httpclient.InferenceServerClient(url=kiln.extra["host"])
    seen = {}
    for user in [f"user-{i}" for i in range(16)]:
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        first = None
        for _ in range(3):  # sticky: the same key reaches the same variant
            r = hc.infer(ep, [inp], headers={"X-User": user})
            v = r.get_response()["model_version"]
            assert first in (None, v)
            first = v
            np.testing.assert_allclose(r.as_numpy("probabilities"), models[v].predict_proba(test), rtol=1e-5, atol=1e-6)
        seen[user] = first
    assert set(seen.values()) == {"1", "2"}, seen  # 16 keys over a 50/50 split reach both

    # tritonclient over gRPC, with the key in the metadata: the same variant as over HTTP.
    gc = grpcclient.InferenceServerClient(url=kiln.extra["grpc"])
    assert gc.is_model_ready(ep)
    for user, v in list(seen.items())[:4]:
        inp = grpcclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        r = gc.infer(ep, [inp], headers={"x-user": user})
        assert r.get_response().model_version == v
        np.testing.assert_allclose(r.as_numpy("probabilities"), models[v].predict_proba(test), rtol=1e-5, atol=1e-6)

    # MLflow's scoring format on /endpoints/{e}/invocations.
    body = {"dataframe_split": test.to_dict(orient="split")}
    body["dataframe_split"].pop("index", None)
    user, v = next(iter(seen.items()))
    r = requests.post(f"{kiln.url}/endpoints/{ep}/invocations", json=body, headers={"X-User": user}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == models[v].predict(test).tolist()

    # Per-route stats and the recorded change.
    stats = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/stats", timeout=10)
    assert stats.status_code == 200, stats.text
    events = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/events", timeout=10).json()
    assert any(e["actor"] == "pytest" for e in (events.get("events") or events)), events


def test_explain_through_endpoint_matches_shap(kiln, two_versions, unique):
    name, models, test = two_versions
    ep = f"explain-{unique}"
    apply(kiln, {"apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
                 "spec": {"model": name, "routes": [{"name": "main", "version": "2", "weight": 100}]}})
    wait_ready(kiln, ep)
    body = {"dataframe_split": {"columns": list(test.columns), "data": test.to_numpy().tolist()}}
    r = requests.post(f"{kiln.url}/endpoints/{ep}/explain", json=body, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["method"] == "tree_path_dependent"
    ex = shap.TreeExplainer(models["2"])
    want = np.asarray(ex.shap_values(test))
    values = np.asarray(got["shap_values"], dtype=np.float64)
    np.testing.assert_allclose(values.reshape(want.shape), want, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(np.ravel(got["expected_value"])[0], np.ravel(ex.expected_value)[0], rtol=1e-5, atol=2e-6)


def test_bad_endpoint_document_is_a_clear_400(kiln, unique):
    r = requests.put(f"{kiln.url}/api/v1/endpoints/bad-{unique}", json={
        "apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": f"bad-{unique}"},
        "spec": {"model": "m", "routes": [{"version": "1", "weight": -1}]}}, timeout=30)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "INVALID_ARGUMENT"
    assert any(d["path"] == "spec.routes[0].weight" for d in err["details"]), err
    assert requests.get(f"{kiln.url}/api/v1/endpoints/bad-{unique}", timeout=10).status_code == 404
