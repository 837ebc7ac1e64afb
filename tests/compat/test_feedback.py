"""Late labels and performance through a real `kiln server`: an XGBoost
classifier deployed behind two routes, predictions sent over the Open
Inference Protocol with request ids, labels sent later with `requests`
(JSON) and with `kiln feedback send` from CSV and Parquet files, the
prediction log flushed, and the performance the server computes compared
with scikit-learn on the same (label, prediction, probability) pairs, as a
whole and per route (windows and other slices are checked against sklearn
in monitor/feedback's Go tests).

Needs the server wiring of the prediction log (POST
/api/v1/endpoints/{e}/predictions/flush) and of the feedback service.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn import metrics as M
from sklearn.datasets import make_classification

from conftest import KILN_BIN, need

ROWS = 2  # rows per request


@pytest.fixture(scope="module")
def deployed(kiln):
    X, y = make_classification(n_samples=600, n_features=4, n_informative=3, n_redundant=0, flip_y=0.1, random_state=5)
    cols = [f"f{i}" for i in range(4)]
    df = pd.DataFrame(X.astype(np.float32), columns=cols)
    unique = uuid.uuid4().hex[:8]
    name = f"fb-xgb-{unique}"
    mlflow.set_experiment(f"feedback-{unique}")
    train = df.iloc[:400]
    for n in (3, 30):
        m = xgb.XGBClassifier(n_estimators=n, max_depth=3, n_jobs=1, random_state=0).fit(train, y[:400])
        with mlflow.start_run():
            mlflow.xgboost.log_model(m, name="model", signature=infer_signature(train, m.predict(train)),
                                     registered_model_name=name)
    ep = f"fb-{unique}"
    doc = {"apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
           "spec": {"model": name, "logging": {"mode": "all"},
                    "routes": [{"name": "a", "version": "1", "weight": 50}, {"name": "b", "version": "2", "weight": 50}]}}
    r = requests.put(f"{kiln.url}/api/v1/endpoints/{ep}", json=doc, headers={"X-Kiln-Actor": "pytest"}, timeout=60)
    assert r.status_code in (200, 201), r.text
    deadline = time.time() + 60
    while requests.get(f"{kiln.url}/v2/models/{ep}/ready", timeout=10).status_code != 200:
        if time.time() > deadline:
            pytest.fail(f"endpoint {ep} never became ready")
        time.sleep(0.2)
    return ep, df.iloc[400:].reset_index(drop=True), y[400:]


def predict_all(kiln, ep, test, y):
    """One OIP request per ROWS rows, each with its own id; returns the pairs."""
    pairs = []
    x = test.to_numpy()
    for i in range(0, len(x) - ROWS + 1, ROWS):
        rid = f"fb-{uuid.uuid4().hex[:12]}"
        body = {"id": rid, "inputs": [{"name": "input", "shape": [ROWS, 4], "datatype": "FP32",
                                       "data": x[i:i + ROWS].ravel().tolist()}]}
        r = requests.post(f"{kiln.url}/v2/models/{ep}/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        ans = r.json()
        assert ans.get("id") == rid, ans
        out = {o["name"]: o for o in ans["outputs"]}
        labels = out["label"]["data"]
        probs = np.asarray(out["probabilities"]["data"], dtype=np.float64).reshape(ROWS, -1)
        route = "a" if ans["model_version"] == "1" else "b"
        for j in range(ROWS):
            pairs.append({"request_id": rid, "row": j, "y_true": int(y[i + j]), "y_pred": int(labels[j]),
                          "p1": float(probs[j, -1]), "p0": float(probs[j, 0]), "route": route})
    return pd.DataFrame(pairs)


def sklearn_metrics(d):
    yt, yp = d["y_true"].to_numpy(), d["y_pred"].to_numpy()
    return {
        "accuracy": M.accuracy_score(yt, yp),
        "precision": M.precision_score(yt, yp, zero_division=0),
        "recall": M.recall_score(yt, yp, zero_division=0),
        "f1": M.f1_score(yt, yp, zero_division=0),
        "roc_auc": M.roc_auc_score(yt, d["p1"].to_numpy()),
        "log_loss": M.log_loss(yt, d[["p0", "p1"]].to_numpy(), labels=[0, 1]),
    }


def kiln_cli(kiln, *args):
    return subprocess.run([KILN_BIN, *args, "--server", kiln.url], capture_output=True, text=True, timeout=120)


def test_late_labels_and_performance_match_sklearn(kiln, deployed, tmp_path):
    ep, test, y = deployed
    start = datetime.now(timezone.utc) - timedelta(seconds=5)
    pairs = predict_all(kiln, ep, test, y)
    assert set(pairs["route"]) == {"a", "b"}

    # Labels arrive later, in three batches and three ways. A fifth of the
    # predictions never get one.
    rng = np.random.default_rng(1)
    labelled = pairs[rng.random(len(pairs)) < 0.8].reset_index(drop=True)
    thirds = np.array_split(np.arange(len(labelled)), 3)
    js = labelled.iloc[thirds[0]]
    # A wrong label first, corrected by the right one later in the same upload.
    wrong = js.iloc[:1].assign(y_true=1 - js.iloc[0]["y_true"])
    body = [{"request_id": r.request_id, "row": int(r.row), "label": int(r.y_true)} for r in pd.concat([wrong, js]).itertuples()]
    r = requests.post(f"{kiln.url}/api/v1/endpoints/{ep}/feedback", json=body, timeout=30)
    if r.status_code == 501:
        need("the feedback service wired into kiln server", r.text[:200])
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": len(body)}

    csv_path = tmp_path / "labels.csv"
    labelled.iloc[thirds[1]].rename(columns={"request_id": "inference_id", "y_true": "truth"})[
        ["inference_id", "row", "truth"]].to_csv(csv_path, index=False)
    res = kiln_cli(kiln, "feedback", "send", ep, "-f", str(csv_path), "--id-column", "inference_id", "--label-column", "truth")
    assert res.returncode == 0, res.stderr
    assert f"{len(thirds[1])} labels accepted" in res.stdout

    pq_path = tmp_path / "labels.parquet"
    part = labelled.iloc[thirds[2]]
    pq.write_table(pa.table({"request_id": part["request_id"], "row": part["row"].astype("int64"),
                             "label": part["y_true"].astype("int64")}), pq_path)
    res = kiln_cli(kiln, "feedback", "send", ep, "-f", str(pq_path))
    assert res.returncode == 0, res.stderr

    # A bad upload is a 400 naming the line, and stores nothing.
    r = requests.post(f"{kiln.url}/api/v1/endpoints/{ep}/feedback", data="request_id,label\nzz-1,1\nzz-2,\n",
                      headers={"Content-Type": "text/csv"}, timeout=30)
    assert r.status_code == 400 and "line 3" in r.json()["error"]["message"], r.text
    assert requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/feedback/zz-1", timeout=10).status_code == 404

    one = labelled.iloc[0]
    got = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/feedback/{one.request_id}", timeout=10)
    assert got.status_code == 200, got.text
    assert {(l["row"], l["label"]) for l in got.json()["labels"]} >= {(int(one.row), int(one.y_true))}

    r = requests.post(f"{kiln.url}/api/v1/endpoints/{ep}/predictions/flush", timeout=60)
    if r.status_code in (404, 501):
        need("the prediction log wired into kiln server", f"POST …/predictions/flush answered {r.status_code}: {r.text[:200]}")
    assert r.status_code == 200, r.text

    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    params = {"from": start.isoformat().replace("+00:00", "Z"), "to": end.isoformat().replace("+00:00", "Z"),
              "metrics": "accuracy,precision,recall,f1,roc_auc,log_loss", "slice_by": "route"}
    r = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/performance", params=params, timeout=60)
    assert r.status_code == 200, r.text
    perf = r.json()
    assert perf["task"] == "classification"
    assert perf["classes"] == ["0", "1"]
    assert perf["predictions"] == len(pairs)
    assert perf["labelled"] == len(labelled)
    w = perf["windows"][0]
    want = sklearn_metrics(labelled)
    for m, v in want.items():
        assert w["metrics"][m] == pytest.approx(v, rel=1e-6, abs=1e-9), (m, w["metrics"], want)
    for route, d in labelled.groupby("route"):
        got = w["slices"]["route"][route]
        for m, v in sklearn_metrics(d).items():
            assert got[m] == pytest.approx(v, rel=1e-6, abs=1e-9), (route, m)

    # The CLI shows the same figures.
    res = kiln_cli(kiln, "feedback", "performance", ep, "--from", params["from"], "--to", params["to"],
                   "--metrics", "accuracy,roc_auc", "--route", "a", "-o", "json")
    assert res.returncode == 0, res.stderr
    cli = json.loads(res.stdout)
    a = labelled[labelled["route"] == "a"]
    assert cli["labelled"] == len(a)
    assert cli["windows"][0]["metrics"]["accuracy"] == pytest.approx(M.accuracy_score(a["y_true"], a["y_pred"]))
