"""Monitoring end to end against a real `kiln server` (SQLite and
PostgreSQL+S3): a scikit-learn pipeline (four numeric features and a
string plan, as ONNX) registered with the MLflow client and deployed as an
endpoint; its training table registered as a dataset version with a
profile, the monitor's reference; an AlertReceiver (signed webhook, a
loopback http.server here) and a Monitor applied with `kiln apply`.

1. normal traffic → run: status ok, drift share < 0.5, no alert, no webhook;
   traffic counts, outliers and the labelled accuracy exactly as computed
   here from what was sent and answered;
2. shifted traffic → run: status drift, the drifted features those scipy
   finds (KS, chi-square: Evidently's tests for this reference), the alert
   fires and the webhook receives a firing payload whose HMAC verifies;
3. the monitor re-applied with a window that starts after the shifted
   traffic, normal traffic → run: ok, the alert resolves and the webhook
   receives the resolved payload.

Also: kiln_monitor_* on /metrics, the HTML report (no external URL), the
results history, the alert history, the prediction log as Parquet (pyarrow)
with the request ids the responses carried, and the endpoint's performance
from labels against sklearn's accuracy_score on the same pairs.
"""

from __future__ import annotations

import io
import json
import time
import uuid

import mlflow
import mlflow.onnx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
import yaml
from mlflow.models import infer_signature
from monitoring_helpers import (
    CSS_URL,
    EXTERNAL_REF,
    FEATURES,
    NUMERIC,
    WebhookReceiver,
    draw,
    kiln_cli,
    metric_value,
    outlier_rows,
    scipy_drift,
)
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

OPSET = {"": 17, "ai.onnx.ml": 3}
ONNX_REQS = ["onnx", "onnxruntime"]
REF_ROWS = 800  # ≤ 1000: Evidently picks KS for numeric features, chi-square for the plan
ROWS_PER_REQUEST = 10
SECRET = "s3cr3t-" + uuid.uuid4().hex[:6]


@pytest.fixture
def webhook():
    """A fresh receiver per server (the kiln fixture is parametrised)."""
    w = WebhookReceiver(SECRET)
    yield w
    w.close()


@pytest.fixture(scope="module")
def setup(kiln, tmp_path_factory):
    """The training table (a dataset version with a profile), the model
    registered from it and an endpoint serving it."""
    tmp = tmp_path_factory.mktemp("monitoring")
    u = uuid.uuid4().hex[:8]
    rng = np.random.default_rng(2026)
    train, y = draw(rng, REF_ROWS)

    # The training table as a dataset version, profiled by the server.
    ds = f"mon-train-{u}"
    table = train.copy()
    table["y"] = y
    table.to_parquet(tmp / "train.parquet", index=False)
    kiln_cli(kiln.url, "data", "add", ds, str(tmp / "train.parquet"), cache=tmp / "cache")
    prof = json.loads(kiln_cli(kiln.url, "data", "profile", f"{ds}@1", "--output", "json", cache=tmp / "cache").stdout)
    assert prof["profile"]["rows"] == REF_ROWS

    pipe = Pipeline([
        ("pre", ColumnTransformer([("num", "passthrough", NUMERIC),
                                   ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])),
        ("lr", LogisticRegression(max_iter=1000)),
    ]).fit(train, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[(c, FloatTensorType([None, 1])) for c in NUMERIC] + [("plan", StringTensorType([None, 1]))],
        target_opset=OPSET, options={id(pipe.steps[-1][1]): {"zipmap": False}},
    )
    assert [o.name for o in onx.graph.output] == ["label", "probabilities"]
    model = f"mon-model-{u}"
    mlflow.set_experiment(f"monitoring-{u}")
    with mlflow.start_run():
        mlflow.onnx.log_model(onx, name="model", signature=infer_signature(train, pipe.predict(train)),
                              pip_requirements=ONNX_REQS, registered_model_name=model)

    ep = f"mon-ep-{u}"
    r = requests.put(f"{kiln.url}/api/v1/endpoints/{ep}", headers={"X-Kiln-Actor": "pytest"}, timeout=60, json={
        "apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": ep},
        "spec": {"model": model, "routes": [{"name": "main", "version": "1", "weight": 100}]},
    })
    assert r.status_code in (200, 201), r.text
    deadline = time.time() + 60
    while requests.get(f"{kiln.url}/v2/models/{ep}/ready", timeout=10).status_code != 200:
        assert time.time() < deadline, f"endpoint {ep} never became ready"
        time.sleep(0.2)
    return {"u": u, "ds": ds, "train": train, "pipe": pipe, "ep": ep, "tmp": tmp}


class Traffic:
    """What was sent to the endpoint and answered, per request."""

    def __init__(self, kiln, ep: str, pipe):
        self.kiln, self.ep, self.pipe = kiln, ep, pipe
        self.requests: list[dict] = []  # id, frame, truth, predicted, phase

    def send(self, df: pd.DataFrame, truth: np.ndarray, phase: str) -> list[dict]:
        sent = []
        for start in range(0, len(df), ROWS_PER_REQUEST):
            part = df.iloc[start:start + ROWS_PER_REQUEST]
            body = {"dataframe_split": {"columns": list(part.columns),
                                        "data": [[float(v) if isinstance(v, np.floating) else v for v in row]
                                                 for row in part.itertuples(index=False)]}}
            r = requests.post(f"{self.kiln.url}/endpoints/{self.ep}/invocations", json=body, timeout=30)
            assert r.status_code == 200, r.text
            rid = r.headers.get("X-Request-Id")
            assert rid, f"no X-Request-Id in the response headers: {dict(r.headers)}"
            preds = r.json()["predictions"]
            assert len(preds) == len(part), preds
            # One object per row ({"label", "probabilities"}) or the labels alone.
            predicted = np.array([p["label"] if isinstance(p, dict) else p for p in preds], dtype=np.int64)
            req = {"id": rid, "frame": part, "truth": truth[start:start + len(part)], "predicted": predicted, "phase": phase}
            self.requests.append(req)
            sent.append(req)
        # The ONNX model answers as the sklearn pipeline does (float32 inputs).
        got = np.concatenate([q["predicted"] for q in sent])
        want = self.pipe.predict(df)
        assert (got != want).sum() <= 1, f"{(got != want).sum()} of {len(df)} predictions differ from sklearn's"
        return sent

    def frame(self, *phases: str) -> pd.DataFrame:
        return pd.concat([q["frame"] for q in self.requests if q["phase"] in phases], ignore_index=True)


def api(kiln, method: str, path: str, ok=(200,), **kw) -> requests.Response:
    r = requests.request(method, f"{kiln.url}/api/v1/{path}", timeout=120, **kw)
    assert r.status_code in ok, f"{method} /api/v1/{path}: {r.status_code} {r.text[:2000]}"
    return r


def flush(kiln, ep: str) -> None:
    api(kiln, "POST", f"endpoints/{ep}/predictions/flush", ok=(200, 204))


def run(kiln, mon: str) -> dict:
    return api(kiln, "POST", f"monitors/{mon}/run").json()


def send_labels(kiln, ep: str, reqs: list[dict]) -> list[tuple[int, int]]:
    """Posts the true class of every row of reqs; returns (truth, predicted) pairs."""
    labels, pairs = [], []
    for q in reqs:
        for row, (t, p) in enumerate(zip(q["truth"], q["predicted"])):
            labels.append({"request_id": q["id"], "row": row, "label": int(t)})
            pairs.append((int(t), int(p)))
    r = api(kiln, "POST", f"endpoints/{ep}/feedback", ok=(200,), json=labels)
    assert r.json()["accepted"] == len(labels), r.text
    return pairs


def accuracy(pairs) -> float:
    t, p = zip(*pairs)
    return float(accuracy_score(t, p))


def check_drift(result: dict, ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    """The per-feature tests are Evidently's choice (KS for the numbers,
    chi-square for the plan) over exactly the window's rows, and each
    decision is scipy's wherever scipy's p-value is clearly on one side
    of 0.05; returns the drift flags by feature."""
    d = result["drift"]
    feats = {f["name"]: f for f in d["features"]}
    assert set(feats) == set(FEATURES), feats.keys()
    assert d["total"] == len(FEATURES)
    flags = {}
    for name, f in feats.items():
        assert not f.get("error"), f
        assert f["method"] == ("chi2" if name == "plan" else "ks"), f
        assert f["ref_count"] == len(ref) and f["cur_count"] == len(cur), f
        p = scipy_drift(f["method"], ref[name], cur[name])
        if p < 0.01:
            assert f["drift"], f"{name}: scipy p={p:.3g}, kiln {f}"
        elif p > 0.2:
            assert not f["drift"], f"{name}: scipy p={p:.3g}, kiln {f}"
        flags[name] = f["drift"]
    assert d["drifted"] == sum(flags.values())
    assert d["share"] == pytest.approx(sum(flags.values()) / len(FEATURES))
    assert d["dataset_drift"] == (d["share"] >= 0.5)
    return flags


def firing(kiln, mon: str) -> list[dict]:
    return [a for a in api(kiln, "GET", "alerts", params={"monitor": mon}).json()["alerts"] if a["state"] == "firing"]


def test_monitor_drift_alert_resolve_report(kiln, setup, webhook):
    u, ep, train = setup["u"], setup["ep"], setup["train"]
    mon, recv = f"mon-{u}", f"hook-{u}"
    tmp = setup["tmp"]
    # Seeded so that scipy's p-values are far from 0.05 for every feature of
    # every window below (> 0.2 where nothing shifted, < 1e-6 where it did).
    rng = np.random.default_rng(18)
    traffic = Traffic(kiln, ep, setup["pipe"])

    monitor_doc = {
        "apiVersion": "kiln.dev/v1", "kind": "Monitor", "metadata": {"name": mon},
        "spec": {
            "endpoint": ep,
            "reference": {"dataset": f"{setup['ds']}@1"},
            "window": "1h",
            "schedule": {"every": "1h"},  # the runs below are ours (the first, at creation, finds no data)
            "drift": {"drift_share": 0.5},
            "performance": {"metrics": ["accuracy"], "min_labels": 10},
            "alerts": [{"name": "data-drift", "expr": "drift_share >= 0.5", "for": "0s", "severity": "critical",
                        "receivers": [recv],
                        "annotations": {"summary": "{{ .Labels.endpoint }}: {{ .Value }} of the features drifted"}}],
        },
    }
    receiver_doc = {"apiVersion": "kiln.dev/v1", "kind": "AlertReceiver", "metadata": {"name": recv},
                    "spec": {"type": "webhook", "url": webhook.url, "secret": SECRET, "send_resolved": True}}
    manifest = tmp / "monitor.yaml"
    manifest.write_text(yaml.safe_dump_all([receiver_doc, monitor_doc], sort_keys=False))
    kiln_cli(kiln.url, "apply", "-f", str(manifest))
    got = api(kiln, "GET", f"alert-receivers/{recv}").json()
    assert got["spec"]["secret"] == "***" and got["spec"]["url"] == webhook.url, got
    assert api(kiln, "GET", f"monitors/{mon}").json()["monitor"]["spec"]["endpoint"] == ep
    # A new monitor is due at once: the scheduler's first run finds no traffic
    # yet. Waiting for it keeps every later run ours.
    deadline = time.time() + 60
    while (latest := api(kiln, "GET", f"monitors/{mon}").json()["latest"]) is None:
        assert time.time() < deadline, "the scheduler never ran the new monitor"
        time.sleep(0.2)
    assert latest["status"] == "no_data" and latest["traffic"]["requests"] == 0, latest

    # 1. Normal traffic: no drift, no alert.
    t0 = time.time()
    normal, normal_y = draw(rng, 300)
    first = traffic.send(normal, normal_y, "normal")
    pairs1 = send_labels(kiln, ep, first[:15])
    got = api(kiln, "GET", f"endpoints/{ep}/feedback/{first[0]['id']}").json()["labels"]
    assert sorted((x["row"], x["label"]) for x in got) == list(enumerate(first[0]["truth"].tolist())), got
    flush(kiln, ep)
    r1 = run(kiln, mon)
    assert r1["status"] == "ok", r1
    assert r1["reference"]["kind"] == "dataset" and r1["reference"]["dataset"] == f"{setup['ds']}@1", r1["reference"]
    assert r1["reference"]["rows"] == REF_ROWS
    assert r1["traffic"]["requests"] == 30 and r1["traffic"]["rows"] == 300 and r1["traffic"]["errors"] == 0, r1["traffic"]
    cur1 = traffic.frame("normal")
    flags1 = check_drift(r1, train, cur1)
    assert r1["drift"]["share"] < 0.5 and not r1["drift"]["dataset_drift"], flags1
    assert r1["outliers"]["rows"] == outlier_rows(train, cur1), r1["outliers"]
    perf1 = r1["performance"]
    assert perf1["labelled"] == len(pairs1) and perf1["predictions"] == 300, perf1
    assert perf1["metrics"]["accuracy"] == pytest.approx(accuracy(pairs1), abs=1e-12), perf1
    assert not any(t["to"] == "firing" for t in r1.get("alerts") or []), r1.get("alerts")
    assert firing(kiln, mon) == []
    metrics = requests.get(f"{kiln.url}/metrics", timeout=30).text
    share = metric_value(metrics, "kiln_monitor_dataset_drift_share", {"monitor": mon, "endpoint": ep})
    assert share == pytest.approx(r1["drift"]["share"]), f"kiln_monitor_dataset_drift_share for {mon}: {share}"
    assert metric_value(metrics, "kiln_monitor_quality", {"monitor": mon, "metric": "accuracy"}) == pytest.approx(accuracy(pairs1))
    assert webhook.received() == [], [h.body for h in webhook.received()]

    # 2. Shifted traffic: drift, the alert fires, the webhook gets it signed.
    shifted, shifted_y = draw(rng, 300, drifted=True)
    second = traffic.send(shifted, shifted_y, "drifted")
    pairs2 = pairs1 + send_labels(kiln, ep, second[:10])
    t_drift_end = time.time()
    flush(kiln, ep)
    r2 = run(kiln, mon)
    assert r2["status"] == "drift", r2
    cur2 = traffic.frame("normal", "drifted")
    flags2 = check_drift(r2, train, cur2)
    assert {f for f, d in flags2.items() if d} >= {"f0", "f1", "f2", "plan"}, flags2
    assert r2["drift"]["share"] >= 0.5 and r2["drift"]["dataset_drift"], r2["drift"]
    assert r2["traffic"]["requests"] == 60 and r2["traffic"]["rows"] == 600, r2["traffic"]
    assert r2["outliers"]["rows"] == outlier_rows(train, cur2) > 0, r2["outliers"]
    assert r2["performance"]["labelled"] == len(pairs2)
    assert r2["performance"]["metrics"]["accuracy"] == pytest.approx(accuracy(pairs2), abs=1e-12)
    fired = [t for t in r2.get("alerts") or [] if t["to"] == "firing"]
    assert len(fired) == 1 and fired[0]["rule"] == "data-drift", r2.get("alerts")
    active = firing(kiln, mon)
    assert len(active) == 1 and active[0]["rule"] == "data-drift" and active[0]["labels"]["endpoint"] == ep, active
    assert api(kiln, "GET", f"monitors/{mon}").json()["firing_alerts"] == 1

    hooks = webhook.wait_for(1)
    assert len(hooks) == 1, [h.body for h in hooks]
    h = hooks[0]
    assert h.signature_ok, f"X-Kiln-Signature does not verify: {h.headers}"
    assert h.headers.get("X-Kiln-Delivery") and h.headers.get("Content-Type", "").startswith("application/json"), h.headers
    assert abs(int(h.headers["X-Kiln-Timestamp"]) - time.time()) < 600
    p = h.payload
    assert (p["version"], p["status"], p["receiver"], p["monitor"], p["rule"]) == ("1", "firing", recv, mon, "data-drift"), p
    (a,) = p["alerts"]
    assert a["status"] == "firing" and a["severity"] == "critical", a
    assert a["labels"]["alertname"] == "data-drift" and a["labels"]["monitor"] == mon and a["labels"]["endpoint"] == ep, a
    assert a["value"] == pytest.approx(r2["drift"]["share"]), a
    assert a["annotations"]["summary"].startswith(f"{ep}: "), a
    metrics = requests.get(f"{kiln.url}/metrics", timeout=30).text
    assert metric_value(metrics, "kiln_monitor_dataset_drift_share", {"monitor": mon, "endpoint": ep}) == pytest.approx(r2["drift"]["share"])
    assert metric_value(metrics, "kiln_monitor_dataset_drift_detected", {"monitor": mon, "endpoint": ep}) == 1
    for f in NUMERIC:
        assert metric_value(metrics, "kiln_monitor_feature_drift_detected", {"monitor": mon, "feature": f}) == float(flags2[f])

    # 3. A window that starts after the shifted traffic, normal traffic: resolved.
    time.sleep(3)
    t_recovered = time.time()
    again, again_y = draw(rng, 200)
    traffic.send(again, again_y, "recovered")
    flush(kiln, ep)
    # The window starts halfway between the last shifted request and the
    # first new one (a later run only moves its start later still).
    window = f"{time.time() - (t_drift_end + t_recovered) / 2:.3f}s"
    monitor_doc["spec"]["window"] = window
    res = api(kiln, "PUT", f"monitors/{mon}", json=monitor_doc, headers={"X-Kiln-Actor": "pytest"}).json()
    assert res["changed"] is True and res["created"] is False, res
    r3 = run(kiln, mon)
    assert r3["status"] == "ok", r3
    cur3 = traffic.frame("recovered")
    assert r3["traffic"]["requests"] == 20 and r3["traffic"]["rows"] == 200, (window, r3["traffic"])
    check_drift(r3, train, cur3)
    assert r3["drift"]["share"] < 0.5, r3["drift"]
    resolved = [t for t in r3.get("alerts") or [] if t["to"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["from"] == "firing", r3.get("alerts")
    assert firing(kiln, mon) == []
    hooks = webhook.wait_for(2)
    assert len(hooks) == 2, [x.body for x in hooks]
    h = hooks[1]
    assert h.signature_ok, f"X-Kiln-Signature does not verify: {h.headers}"
    p = h.payload
    assert (p["status"], p["monitor"], p["rule"]) == ("resolved", mon, "data-drift"), p
    assert p["alerts"][0]["status"] == "resolved" and p["alerts"][0]["ends_at"], p
    assert p["alerts"][0]["fingerprint"] == hooks[0].payload["alerts"][0]["fingerprint"]
    metrics = requests.get(f"{kiln.url}/metrics", timeout=30).text
    assert metric_value(metrics, "kiln_monitor_dataset_drift_share", {"monitor": mon, "endpoint": ep}) == pytest.approx(r3["drift"]["share"])

    # The alert history: firing, then resolved.
    events = api(kiln, "GET", "alerts/history", params={"monitor": mon}).json()["events"]
    states = [e["state"] for e in sorted(events, key=lambda e: pd.Timestamp(e["time"])) if e["rule"] == "data-drift"]
    assert "firing" in states and "resolved" in states and states.index("firing") < states.index("resolved"), states

    # The results history holds the three runs, in order.
    results = api(kiln, "GET", f"monitors/{mon}/results").json()["results"]
    assert len(results) >= 3, results
    ids = [x["id"] for x in results]
    assert [ids.index(r["id"]) for r in (r1, r2, r3)] == sorted(ids.index(r["id"]) for r in (r1, r2, r3))
    assert [x["status"] for x in results if x["id"] in {r1["id"], r2["id"], r3["id"]}] == ["ok", "drift", "ok"]
    hist = json.loads(kiln_cli(kiln.url, "monitor", "history", mon, "--output", "json").stdout)
    assert {r["id"] for r in (r1, r2, r3)} <= {x["id"] for x in hist}, hist

    # The HTML report: self-contained.
    rep = api(kiln, "GET", f"monitors/{mon}/report")
    assert rep.headers["Content-Type"].startswith("text/html"), rep.headers
    html = rep.text
    assert "<html" in html.lower() and mon in html and "f0" in html and "plan" in html
    assert not EXTERNAL_REF.search(html), EXTERNAL_REF.search(html).group(0)
    assert not CSS_URL.search(html), CSS_URL.search(html).group(0)

    # The prediction log, read with pyarrow: every row sent, under its request id.
    log = api(kiln, "GET", f"endpoints/{ep}/predictions", params={"format": "parquet"})
    tbl = pq.read_table(io.BytesIO(log.content)).to_pandas()
    assert len(tbl) == 800, len(tbl)
    assert {"timestamp", "request_id", "row", "route", "model_version", "latency_ms"} <= set(tbl.columns), tbl.columns
    assert {f"inputs.{f}" for f in FEATURES} | {"outputs.label"} <= set(tbl.columns), tbl.columns
    by_id = {q["id"]: q for q in traffic.requests}
    assert set(tbl["request_id"]) == set(by_id)
    for rid, rows in tbl.groupby("request_id"):
        q = by_id[rid]
        rows = rows.sort_values("row")
        assert list(rows["row"]) == list(range(len(q["frame"])))
        np.testing.assert_array_equal(rows["outputs.label"].to_numpy(np.int64), q["predicted"])
        np.testing.assert_allclose(rows["inputs.f0"].to_numpy(np.float64), q["frame"]["f0"].to_numpy(np.float64))
        assert list(rows["inputs.plan"]) == list(q["frame"]["plan"])

    # The endpoint's performance over every label: sklearn's accuracy on the same pairs.
    perf = api(kiln, "GET", f"endpoints/{ep}/performance",
               params={"from": int(t0 * 1000) - 60_000, "metrics": "accuracy"}).json()
    assert perf["labelled"] == len(pairs2), perf
    (w,) = perf["windows"]
    assert w["labelled"] == len(pairs2) and w["metrics"]["accuracy"] == pytest.approx(accuracy(pairs2), abs=1e-12), perf
