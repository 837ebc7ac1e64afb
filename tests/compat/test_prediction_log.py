"""The prediction log of `kiln server`, read back with pandas, pyarrow and
DuckDB: an XGBoost endpoint is called over MLflow's /invocations (requests)
and the Open Inference Protocol (tritonclient, HTTP and gRPC); after a flush
the logged rows are downloaded as Parquet and JSON Lines and checked
against what was sent and answered: one row per predicted row, the request
ids (X-Request-Id, OIP ids), the inputs by their signature's column names,
the outputs, the model version, the subject header.
"""

from __future__ import annotations

import io
import time
import json
import uuid

import duckdb
import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.datasets import make_classification

from test_endpoints import apply, wait_ready

COLS = [f"f{i}" for i in range(4)]


@pytest.fixture(scope="module")
def logged_model(kiln):
    X, y = make_classification(n_samples=300, n_features=4, n_informative=3, n_redundant=0, random_state=5)
    df = pd.DataFrame(X.astype(np.float32), columns=COLS)
    name = f"predlog-xgb-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment(f"predlog-{name}")
    m = xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=0).fit(df, y)
    with mlflow.start_run():
        mlflow.xgboost.log_model(m, name="model", signature=infer_signature(df, m.predict(df)),
                                 registered_model_name=name)
    return name, m


def test_prediction_log_read_by_pandas_pyarrow_duckdb(kiln, logged_model, unique):
    name, m = logged_model
    ep = f"log-{unique}"
    apply(kiln, {"apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
                 "spec": {"model": name, "routes": [{"name": "main", "version": "1", "weight": 100}],
                          "logging": {"mode": "all", "subject_header": "X-Customer"}}})
    wait_ready(kiln, ep)
    rng = np.random.RandomState(7)
    sent = {}  # request id -> the rows sent

    # /invocations with our own X-Request-Id, and one without (the server makes one).
    a = pd.DataFrame(rng.randn(3, 4).astype(np.float32), columns=COLS)
    body = {"dataframe_split": {"columns": COLS, "data": a.to_numpy().tolist()}}
    r = requests.post(f"{kiln.url}/endpoints/{ep}/invocations", json=body,
                      headers={"X-Request-Id": "inv-1", "X-Customer": "cust-1"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-Id"] == "inv-1"
    sent["inv-1"] = a
    b = pd.DataFrame(rng.randn(2, 4).astype(np.float32), columns=COLS)
    r = requests.post(f"{kiln.url}/endpoints/{ep}/invocations",
                      json={"dataframe_split": {"columns": COLS, "data": b.to_numpy().tolist()}}, timeout=30)
    assert r.status_code == 200, r.text
    generated = r.headers["X-Request-Id"]
    assert generated and generated != "inv-1"
    sent[generated] = b

    # tritonclient over HTTP and gRPC, with OIP request ids.
    c = rng.randn(4, 4).astype(np.float32)
    hc = httpclient.InferenceServerClient(url=kiln.extra["host"])
    inp = httpclient.InferInput("input", list(c.shape), "FP32")
    inp.set_data_from_numpy(c)
    res = hc.infer(ep, [inp], request_id="triton-http-1")
    assert res.get_response()["id"] == "triton-http-1"
    sent["triton-http-1"] = pd.DataFrame(c, columns=COLS)
    d = rng.randn(1, 4).astype(np.float32)
    gc = grpcclient.InferenceServerClient(url=kiln.extra["grpc"])
    ginp = grpcclient.InferInput("input", list(d.shape), "FP32")
    ginp.set_data_from_numpy(d)
    gc.infer(ep, [ginp], request_id="triton-grpc-1")
    sent["triton-grpc-1"] = pd.DataFrame(d, columns=COLS)

    # A bad request is logged too, with its status and error.
    r = requests.post(f"{kiln.url}/endpoints/{ep}/invocations", json={"dataframe_split": {"columns": ["nope"], "data": [[1]]}},
                      headers={"X-Request-Id": "bad-1"}, timeout=30)
    assert r.status_code == 400, r.text

    r = requests.post(f"{kiln.url}/api/v1/endpoints/{ep}/predictions/flush", timeout=60)
    assert r.status_code == 200, r.text
    segs = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/predictions/segments", timeout=30).json()["segments"]
    assert sum(s["requests"] for s in segs) >= 4, segs
    assert all(s["object_key"].startswith(f"predictions/{ep}/") for s in segs)

    r = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/predictions", params={"format": "parquet"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.apache.parquet"
    data = r.content

    # pyarrow: the schema.
    table = pq.read_table(io.BytesIO(data))
    names = table.schema.names
    assert names[:13] == ["timestamp", "request_id", "row", "endpoint", "route", "model", "model_version",
                          "protocol", "latency_ms", "status", "error", "subject", "outliers"]
    assert [f"inputs.{c}" for c in COLS] == [n for n in names if n.startswith("inputs.")]
    assert str(table.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"

    # pandas: the values.
    df = pd.read_parquet(io.BytesIO(data))
    ok = df[df["status"] == 200]
    assert len(ok) == sum(len(v) for v in sent.values())
    for rid, rows in sent.items():
        got = ok[ok["request_id"] == rid].sort_values("row")
        assert list(got["row"]) == list(range(len(rows))), rid
        np.testing.assert_allclose(got[[f"inputs.{c}" for c in COLS]].to_numpy(), rows.to_numpy(), rtol=1e-6)
        assert set(got["model"]) == {f"{name}/1"} and set(got["model_version"]) == {"1"} and set(got["route"]) == {"main"}
        label_cols = [c for c in got.columns if c.startswith("outputs.label")]
        assert label_cols, list(got.columns)
        np.testing.assert_array_equal(got[label_cols[0]].to_numpy().astype(int), m.predict(rows))
    protos = dict(zip(ok["request_id"], ok["protocol"]))
    assert protos["inv-1"] == "mlflow" and protos["triton-http-1"] == "v2-rest" and protos["triton-grpc-1"] == "v2-grpc"
    assert set(ok[ok["request_id"] == "inv-1"]["subject"]) == {"cust-1"}
    assert (ok["latency_ms"] > 0).all()
    bad = df[df["request_id"] == "bad-1"]
    assert len(bad) == 1 and int(bad["status"].iloc[0]) == 400 and bad["error"].iloc[0] != ""

    # DuckDB straight off the file.
    con = duckdb.connect()
    con.execute("CREATE TABLE p AS SELECT * FROM read_parquet(?)", [_tmp_file(data)])
    n, rids = con.execute("SELECT count(*), count(DISTINCT request_id) FROM p WHERE status = 200").fetchone()
    assert n == len(ok) and rids == len(sent)
    mean_f0 = con.execute('SELECT avg("inputs.f0") FROM p WHERE status = 200').fetchone()[0]
    assert mean_f0 == pytest.approx(float(pd.concat(sent.values())["f0"].mean()), rel=1e-5)

    # JSON Lines of the same window.
    r = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/predictions", params={"format": "jsonl"}, timeout=60)
    assert r.status_code == 200, r.text
    lines = [json.loads(line) for line in r.text.splitlines() if line]
    assert len(lines) == len(df)
    assert {x["request_id"] for x in lines} == set(df["request_id"])

    # A bad window is a clear 400 in the API's format.
    r = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/predictions", params={"from": "yesterday"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT", r.text


def _tmp_file(data: bytes) -> str:
    import tempfile

    f = tempfile.NamedTemporaryFile(suffix=".parquet", delete=False)
    f.write(data)
    f.close()
    return f.name


def test_sigkill_loses_no_answered_prediction(kiln, logged_model, unique):
    """kill -9 of the server while it answers: every request that got its
    answer is in the log after a restart and a flush."""
    import signal
    import threading

    name, _ = logged_model
    ep = f"kill-{unique}"
    apply(kiln, {"apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
                 "spec": {"model": name, "routes": [{"name": "main", "version": "1", "weight": 100}]}})
    wait_ready(kiln, ep)
    body = {"dataframe_split": {"columns": COLS, "data": [[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]]}}
    acked, stop = [], threading.Event()

    def send(worker):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            rid = f"k{worker}-{i}"
            try:
                r = s.post(f"{kiln.url}/endpoints/{ep}/invocations", json=body, headers={"X-Request-Id": rid}, timeout=10)
            except requests.RequestException:
                return  # the server is gone
            if r.status_code == 200:
                acked.append(rid)
            i += 1

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acked) < 400 and time.time() < deadline:
        time.sleep(0.01)
    kiln.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 400, len(acked)
    kiln.start()
    wait_ready(kiln, ep)
    r = requests.post(f"{kiln.url}/api/v1/endpoints/{ep}/predictions/flush", timeout=60)
    assert r.status_code == 200, r.text
    r = requests.get(f"{kiln.url}/api/v1/endpoints/{ep}/predictions", timeout=60)
    assert r.status_code == 200, r.text
    df = pd.read_parquet(io.BytesIO(r.content))
    logged = set(df["request_id"])
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} of {len(acked)} answered requests lost, e.g. {missing[:5]}"
    assert (df.groupby("request_id").size() == 2).all()  # two rows each, none torn
