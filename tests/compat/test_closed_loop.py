"""The closed loop end to end against a real `kiln server` (SQLite and
PostgreSQL+S3), with the documents and scripts of examples/closed-loop as
they are (only the tool paths of the pipeline's parameters and the
monitor's window and schedule are set here). The model is an XGBoost
churn classifier, logged with mlflow.xgboost and served by Kiln's pure-Go
XGBoost runtime:

0. bootstrap: closed-loop-data@1 (the reference world), the gate policy and
   the pipeline applied, one manual run: validate → tune (`kiln tune run -f
   study.yaml`: six trials, child runs of the study's parent run) → train
   (with the best trial's parameters) → register → gate (rubber stamp) →
   promote (alias champion) → deploy (the endpoint is created) → rollout;
   the endpoint serves version 1 with the xgboost runtime;
1. drift: closed-loop-data@2 (the drifted world) and drifted traffic; the
   monitor runs, its alert fires, and from there nothing but waiting: the
   alert's trigger starts the pipeline, version 2 is tuned and trained on
   @2, passes the gate against the champion, the alias moves, the canary is
   analysed on the live traffic (a client thread keeps sending) and
   promotes itself. Lineage: version 2 → closed-loop-data@2, its run is the
   train step's child run of the pipeline's parent run, the run's cause
   names the alert, the endpoint's events name the version;
2. a worse model: the pipeline re-applied with label_noise 1 (a model that
   learned nothing), the alert resolved and fired again by traffic of the
   other world; the triggered run reuses the tune step from the cache (same
   data, same study), fails at the gate, the later steps never run, the
   alias and the endpoint stay on version 2.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from monitoring_helpers import KILN_BIN, kiln_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "closed-loop"
PIPELINE, MODEL, ENDPOINT, MONITOR, POLICY, DATA = (
    "closed-loop", "closed-loop", "closed-loop", "closed-loop-drift", "closed-loop-quality", "closed-loop-data")
STUDY = yaml.safe_load((EXAMPLE / "study.yaml").read_text())
TUNED = [p["name"] for p in STUDY["spec"]["parameters"]]  # max_depth, learning_rate, n_estimators
TERMINAL = {"succeeded", "failed", "cancelled"}

_spec = importlib.util.spec_from_file_location("closed_loop_gen_data", EXAMPLE / "gen_data.py")
gen_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_data)


def api(kiln, method: str, path: str, ok=(200,), **kw) -> requests.Response:
    r = requests.request(method, f"{kiln.url}/api/v1/{path}", timeout=120,
                         headers={"X-Kiln-Actor": "pytest", **kw.pop("headers", {})}, **kw)
    assert r.status_code in ok, f"{method} /api/v1/{path}: {r.status_code} {r.text[:2000]}"
    return r


def eventually(what: str, fn, timeout: float, interval: float = 0.25):
    """Polls fn until it returns something truthy; fails naming what and the last value."""
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {str(last)[:2000]})")


def pipeline_doc(**defaults) -> dict:
    doc = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    tools = {"python": sys.executable, "kiln": KILN_BIN, "dir": str(EXAMPLE), **defaults}
    for p in doc["spec"]["parameters"]:
        if p["name"] in tools:
            p["default"] = tools[p["name"]]
    return doc


def put_pipeline(kiln, doc: dict) -> None:
    r = requests.put(f"{kiln.url}/api/v1/pipelines/{PIPELINE}", json=doc, timeout=60, headers={"X-Kiln-Actor": "pytest"})
    if r.status_code == 501:
        pytest.fail(f"the server runs no pipelines (PUT /api/v1/pipelines answered 501: {r.text[:300]})")
    assert r.status_code in (200, 201), r.text


def runs(kiln) -> list[dict]:
    return api(kiln, "GET", f"pipelines/{PIPELINE}/runs").json()["runs"]


def finished(kiln, run_id: str, timeout: float) -> dict:
    """Waits for a run to end; the failure message carries its steps and their logs' ends."""
    def done():
        r = api(kiln, "GET", f"pipeline-runs/{run_id}").json()
        return r if r["state"] in TERMINAL else None
    try:
        return eventually(f"pipeline run {run_id} ends", done, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(kiln, run_id)}") from None


def describe(kiln, run_id: str) -> str:
    r = api(kiln, "GET", f"pipeline-runs/{run_id}").json()
    out = [f"run {run_id}: {r['state']} {r.get('error', '')}"]
    for s in r.get("steps") or []:
        out.append(f"  {s['step']}: {s['state']} {s.get('error', '')}")
        if s["state"] not in ("pending", "queued", "upstream_failed", "skipped"):
            logs = requests.get(f"{kiln.url}/api/v1/pipeline-runs/{run_id}/steps/{s['step']}/logs", timeout=30)
            if logs.ok:
                text = "".join(c["data"] for c in logs.json().get("chunks", []))
                out.append("    " + text[-800:].replace("\n", "\n    "))
    return "\n".join(out)


def steps(run: dict) -> dict[str, dict]:
    return {s["step"]: s for s in run["steps"]}


def endpoint(kiln) -> dict:
    return api(kiln, "GET", f"endpoints/{ENDPOINT}").json()


def serving(kiln) -> list[tuple[int, float]]:
    return sorted((r["version"], r["weight"]) for r in endpoint(kiln)["status"]["routes"] if r["weight"] > 0)


def send(kiln, frame: pd.DataFrame, batch: int = 10) -> None:
    for start in range(0, len(frame), batch):
        part = frame.iloc[start:start + batch]
        r = requests.post(f"{kiln.url}/endpoints/{ENDPOINT}/invocations", timeout=30,
                          json={"dataframe_split": {"columns": list(part.columns), "data": part.astype(float).values.tolist()}})
        assert r.status_code == 200, r.text


class Clients:
    """Production traffic in a thread: the canary's analysis needs requests."""

    def __init__(self, kiln, frame: pd.DataFrame):
        self.kiln, self.frame, self.stop_ev, self.errors, self.sent = kiln, frame, threading.Event(), [], 0
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        i = 0
        while not self.stop_ev.is_set():
            part = self.frame.iloc[i % len(self.frame):i % len(self.frame) + 10]
            i += 10
            try:
                r = requests.post(f"{self.kiln.url}/endpoints/{ENDPOINT}/invocations", timeout=30,
                                  json={"dataframe_split": {"columns": list(part.columns), "data": part.astype(float).values.tolist()}})
                self.sent += 1
                if r.status_code != 200:
                    self.errors.append((r.status_code, r.text[:200]))
            except requests.RequestException as e:
                self.errors.append(str(e))
            time.sleep(0.04)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=30)


def monitor_run(kiln) -> dict:
    api(kiln, "POST", f"endpoints/{ENDPOINT}/predictions/flush", ok=(200, 204))
    return api(kiln, "POST", f"monitors/{MONITOR}/run").json()


def put_monitor(kiln, window: str) -> None:
    doc = yaml.safe_load((EXAMPLE / "monitor.yaml").read_text())
    doc["spec"]["window"] = window
    doc["spec"]["schedule"] = {"every": "1h"}  # the runs that matter are ours
    api(kiln, "PUT", f"monitors/{MONITOR}", ok=(200, 201), json=doc)


def check_tuning(client, run: dict) -> dict[str, float]:
    """The run's tune step ran the study (every trial a completed child run
    of the study's parent run), and its train step trained with the best
    trial's parameters. Returns those parameters."""
    st = steps(run)
    tune, train = st["tune"], st["train"]
    assert tune["state"] == "succeeded", tune
    trials = int(run["parameters"]["trials"])  # the pipeline's default, passed to kiln tune --trials
    assert trials == 6, run["parameters"]
    assert tune["outputs"]["trials"] == str(trials), tune["outputs"]
    parent = client.get_run(tune["outputs"]["study_run"])
    assert parent.data.tags.get("kiln.study") == STUDY["metadata"]["name"], parent.data.tags
    assert parent.data.tags.get("kiln.study.trials.completed") == str(trials), parent.data.tags
    assert client.get_experiment(parent.info.experiment_id).name == STUDY["spec"]["experiment"]
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", max_results=100)
    assert len(children) == trials, [c.info.run_id for c in children]
    assert all(c.info.status == "FINISHED" and "holdout_roc_auc" in c.data.metrics for c in children), children
    objective = STUDY["spec"]["objective"]["metric"]  # maximised
    best = next(c for c in children if c.info.run_id == parent.data.tags["kiln.study.best_run"])
    assert best.data.metrics[objective] == max(c.data.metrics[objective] for c in children), children
    assert float(tune["outputs"]["best_value"]) == pytest.approx(best.data.metrics[objective], abs=1e-12)
    want = {k: float(best.data.params[k]) for k in TUNED}
    assert {k: float(tune["outputs"][k]) for k in TUNED} == want, (tune["outputs"], want)
    trained = client.get_run(train["tracking_run_id"]).data.params
    assert {k: float(trained[k]) for k in TUNED} == want, (trained, want)
    return want


def check_xgboost(kiln, version: int) -> None:
    """The version is an mlflow.xgboost model in a format the Go runtime reads,
    and the endpoint serves it with the xgboost runtime (not a Python worker)."""
    info = mlflow.models.get_model_info(f"models:/{MODEL}/{version}")
    flavor = info.flavors.get("xgboost") or {}
    assert flavor.get("model_class") == "xgboost.sklearn.XGBClassifier" and flavor.get("model_format") == "ubj", info.flavors
    meta = requests.get(f"{kiln.url}/v2/models/{ENDPOINT}/versions/{version}", timeout=30)
    assert meta.status_code == 200 and meta.json()["platform"] == "xgboost_ubj", meta.text


def new_trigger_run(kiln, known: set[str]) -> dict:
    def started():
        new = [r for r in runs(kiln) if r["run_id"] not in known]
        return new[0] if new else None
    return eventually("the alert's trigger starts a pipeline run", started, 30)


# On both backends. The second server starts while mlflow (set_registry_uri
# sets MLFLOW_REGISTRY_URI) still names the first one in this process's
# environment, which the server and its steps inherit: the engine must
# point a step's registry at itself, or register_model retries a dead
# address for minutes (pipeline.TestStepEnvPointsAtServer).
def test_closed_loop(kiln, tmp_path):
    rng_ref, rng_drift = np.random.default_rng(7), np.random.default_rng(8)
    cache = tmp_path / "cache"
    for world, rng in (("reference", rng_ref), ("drifted", rng_drift)):
        gen_data.write(rng, tmp_path / world, world, 2000, 500)
    traffic = {w: gen_data.draw(r, 400, w)[gen_data.FEATURES] for w, r in (("reference", rng_ref), ("drifted", rng_drift))}

    # 0. Bootstrap: version 1 through a manual run.
    kiln_cli(kiln.url, "data", "add", DATA, str(tmp_path / "reference"), cache=cache)
    kiln_cli(kiln.url, "apply", "-f", str(EXAMPLE / "gatepolicy.yaml"))
    put_pipeline(kiln, pipeline_doc())
    boot = api(kiln, "POST", f"pipelines/{PIPELINE}/runs", ok=(200, 201), json={"parameters": {"reason": "bootstrap"}}).json()["run"]
    boot = finished(kiln, boot["run_id"], 300)
    assert boot["state"] == "succeeded", describe(kiln, boot["run_id"])
    assert serving(kiln) == [(1, 100)], endpoint(kiln)
    client = mlflow.MlflowClient(kiln.url, kiln.url)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    check_tuning(client, boot)
    check_xgboost(kiln, 1)

    # 1. Drift → alert → retraining → canary → promoted.
    put_monitor(kiln, "1h")
    eventually("the scheduler's first run of the new monitor",
               lambda: api(kiln, "GET", f"monitors/{MONITOR}").json()["latest"], 60)
    kiln_cli(kiln.url, "data", "add", DATA, str(tmp_path / "drifted"), cache=cache)
    send(kiln, traffic["drifted"])
    known = {r["run_id"] for r in runs(kiln)}
    clients = Clients(kiln, traffic["drifted"])
    try:
        res = monitor_run(kiln)
        assert res["status"] == "drift" and res["reference"]["dataset"] == f"{DATA}@1", res
        fired = [t for t in res.get("alerts") or [] if t["to"] == "firing"]
        assert len(fired) == 1 and fired[0]["rule"] == "data-drift", res.get("alerts")

        run = new_trigger_run(kiln, known)
        run = finished(kiln, run["run_id"], 300)
        assert run["state"] == "succeeded", describe(kiln, run["run_id"])
    finally:
        clients.stop()
    assert clients.sent > 0 and clients.errors == [], clients.errors[:5]
    cause = run["cause"]
    assert cause["type"] == "trigger", cause
    assert cause["event"]["monitor"] == MONITOR and cause["event"]["rule"] == "data-drift", cause
    assert run["parameters"]["reason"] == "drift", run["parameters"]
    st = steps(run)
    assert all(s["state"] == "succeeded" for s in st.values()), {k: s["state"] for k, s in st.items()}
    assert st["register"]["outputs"]["version"] == "2", st["register"]
    assert float(st["train"]["outputs"]["val_auc"]) > 0.85, st["train"]["outputs"]
    assert serving(kiln) == [(2, 100)], endpoint(kiln)
    tuned = check_tuning(client, run)
    check_xgboost(kiln, 2)
    ro = endpoint(kiln)["status"]["rollout"]
    assert ro["phase"] == "succeeded" and ro["candidate"]["version"] == 2 and ro["stable"]["version"] == 1, ro
    events = api(kiln, "GET", f"endpoints/{ENDPOINT}/events").json()["events"]
    done = [e for e in events if e["action"] == "rollout-succeeded"]
    assert done and done[0]["detail"]["candidate"]["version"] == 2, events

    # Lineage: dataset version → run → model version → endpoint, and the run tree.
    ds = api(kiln, "GET", f"models/{MODEL}/versions/2/datasets").json()["datasets"]
    assert [(d["version"]["dataset"], d["version"]["version"]) for d in ds] == [(DATA, 2)], ds
    mv = client.get_model_version(MODEL, "2")
    assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
    assert mv.tags.get(f"kiln.gate.{POLICY}") == "passed", mv.tags
    assert mv.run_id == st["train"]["tracking_run_id"], (mv.run_id, st["train"])
    train_run = client.get_run(mv.run_id)
    assert train_run.data.tags.get("mlflow.parentRunId") == run["tracking_run_id"], train_run.data.tags
    assert train_run.data.params["dataset"] == f"{DATA}@2", train_run.data.params
    assert train_run.data.metrics["val_roc_auc"] == pytest.approx(float(st["train"]["outputs"]["val_auc"]), abs=1e-6)
    parent = client.get_run(run["tracking_run_id"])
    assert parent.data.tags.get("kiln.pipeline") == PIPELINE, parent.data.tags

    # The lineage graph, upstream from the new version: its logged model, the
    # training run and its data, the pipeline run and the alert that started it.
    g = api(kiln, "GET", "lineage", params={"node": f"model:{MODEL}/2", "direction": "upstream", "depth": 10}).json()
    edges = {(e["from"], e["relation"], e["to"]) for e in g["edges"]}
    lm = st["train"]["outputs"]["model"].removeprefix("models:/")  # the logged model, m-…
    assert lm.startswith("m-"), st["train"]["outputs"]
    chain = [(f"dataset:{DATA}@2", "input", f"run:{mv.run_id}"),
             (f"pipeline-run:{run['run_id']}", "ran", f"run:{mv.run_id}"),
             (f"alert:{MONITOR}/data-drift", "triggered", f"pipeline-run:{run['run_id']}"),
             (f"monitor:{MONITOR}", "fired", f"alert:{MONITOR}/data-drift"),
             (f"endpoint:{ENDPOINT}", "watches", f"monitor:{MONITOR}")]
    chain += [(f"run:{mv.run_id}", "output", f"logged-model:{lm}"), (f"logged-model:{lm}", "registered", f"model:{MODEL}/2")]
    missing = [e for e in chain if e not in edges]
    assert not missing, (missing, sorted(edges))
    assert g["root"] == f"model:{MODEL}/2" and g["nodes"][0]["attrs"].get("aliases") == "champion", g["nodes"][0]
    # Downstream from the drifted data: the run, the version and the endpoint now serving it.
    down = api(kiln, "GET", "lineage", params={"node": f"dataset:{DATA}@2", "direction": "downstream", "depth": 4}).json()
    ids = {n["id"] for n in down["nodes"]}
    assert {f"run:{mv.run_id}", f"model:{MODEL}/2", f"endpoint:{ENDPOINT}"} <= ids, sorted(ids)
    assert f"dataset:{DATA}@1" not in ids, sorted(ids)  # upstream of nothing here: not a sibling walk
    dot = api(kiln, "GET", "lineage", params={"node": f"model:{MODEL}/2", "format": "dot"})
    assert dot.text.startswith("digraph lineage {") and f'"model:{MODEL}/2" [' in dot.text, dot.text[:300]
    cli = json.loads(kiln_cli(kiln.url, "lineage", f"model:{MODEL}/2", "--direction", "upstream", "--depth", "10", "-o", "json").stdout)
    assert {(e["from"], e["relation"], e["to"]) for e in cli["edges"]} == edges
    table = kiln_cli(kiln.url, "lineage", f"alert:{MONITOR}/data-drift", "--direction", "downstream").stdout
    assert f"* alert:{MONITOR}/data-drift" in table and f"pipeline-run:{run['run_id']}" in table, table

    # 2. A worse model is refused by the gate; the endpoint stays on the champion.
    put_pipeline(kiln, pipeline_doc(label_noise=1.0))
    time.sleep(1.5)  # a gap with no traffic (the clients stopped above): a 1s window holds none
    put_monitor(kiln, "1s")
    res = monitor_run(kiln)
    assert res["status"] == "no_data", res
    assert [t["to"] for t in res.get("alerts") or [] if t["rule"] == "data-drift"] == ["resolved"], res.get("alerts")
    t0 = time.time()
    send(kiln, traffic["reference"])  # the world of version 1 again: drift from version 2's data
    put_monitor(kiln, f"{time.time() - t0 + 1:.3f}s")
    known = {r["run_id"] for r in runs(kiln)}
    res = monitor_run(kiln)
    assert res["status"] == "drift" and res["reference"]["dataset"] == f"{DATA}@2", res
    assert [t["to"] for t in res.get("alerts") or [] if t["rule"] == "data-drift"] == ["firing"], res.get("alerts")

    bad = new_trigger_run(kiln, known)
    bad = finished(kiln, bad["run_id"], 180)
    assert bad["state"] == "failed", describe(kiln, bad["run_id"])
    st = steps(bad)
    # Same data, same study: the tune step is the drift run's, from the cache.
    assert st["tune"]["state"] == "cached", st["tune"]
    assert {k: float(st["tune"]["outputs"][k]) for k in TUNED} == tuned, st["tune"]["outputs"]
    assert st["train"]["state"] == "succeeded" and float(st["train"]["outputs"]["val_auc"]) < 0.6, st["train"]
    assert st["register"]["outputs"]["version"] == "3", st["register"]
    assert st["gate"]["state"] == "failed" and st["gate"]["exit_code"] == 1, st["gate"]
    assert {st[s]["state"] for s in ("promote", "deploy", "rollout")} == {"upstream_failed"}, st
    assert client.get_model_version(MODEL, "3").tags.get(f"kiln.gate.{POLICY}") == "failed"
    assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
    assert serving(kiln) == [(2, 100)], endpoint(kiln)
