"""The examples run end to end against a real `kiln server` (SQLite and
PostgreSQL+S3), each with its own run.sh as a user would start it, and what
they leave behind is checked through the APIs:

* examples/sentiment: the dataset version, the tracked run and its dataset
  link, the registered ONNX model served natively by the endpoint (its
  answers equal scikit-learn's on the held-out comments, and clear comments
  get the labels they should), the monitor's results (ok on a normal week,
  prediction and product drift on the bad one, accuracy from the labels),
  the alerts, and the lineage from the endpoint back to the data;
* examples/mlflow-migration: the unchanged MLflow script's run (params,
  metric history, artifacts), its registered model loaded back with
  mlflow.pyfunc, and the copy of an existing MLflow store (a local SQLite
  one) made by import_runs.py — equal runs, a registered version whose
  model predicts as the original, and a second import that copies nothing.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from conftest import KILN_BIN, ROOT
from sklearn.datasets import load_wine

EXAMPLES = ROOT / "examples"
SENTIMENT, MIGRATION = EXAMPLES / "sentiment", EXAMPLES / "mlflow-migration"


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sentiment_train = load_module("sentiment_train", SENTIMENT / "train.py")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Kiln's and MLflow's settings
    (the mlflow fixtures set MLFLOW_* here), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "MLFLOW_"))}
    return {**env, **extra}


def run_script(script: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    p = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{script} exited {p.returncode}:\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}"
    return p


def example_env(kiln, tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(KILN_URL=kiln.url, KILN=KILN_BIN, PYTHON=sys.executable, KILN_ACTOR="pytest",
                     KILN_CACHE_DIR=str(tmp_path / "kiln-cache"), **extra)


def api(kiln, method: str, path: str, **kw) -> dict:
    r = requests.request(method, f"{kiln.url}/api/v1/{path}", timeout=60, **kw)
    assert r.status_code == 200, f"{method} /api/v1/{path}: {r.status_code} {r.text[:2000]}"
    return r.json()


def infer(kiln, endpoint: str, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Labels and probabilities from the endpoint (Open Inference Protocol REST)."""
    n = len(frame)
    body = {"inputs": [{"name": c, "shape": [n, 1], "datatype": "BYTES", "data": frame[c].tolist()}
                       for c in ("product", "text")]}
    r = requests.post(f"{kiln.url}/v2/models/{endpoint}/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text[:2000]
    out = {o["name"]: o for o in r.json()["outputs"]}
    return out["label"]["data"], np.asarray(out["probabilities"]["data"]).reshape(out["probabilities"]["shape"])


# Comments whose sentiment no reader would doubt (none of them in the generated data).
CLEAR = [
    ("milk", "Absolutely delicious milk, so fresh and creamy. We love it!", "positive"),
    ("ice cream", "Best vanilla ice cream ever, my kids adore it, five stars!", "positive"),
    ("cheese", "Disgusting cheese, it was mouldy and smelled rancid. Never again.", "negative"),
    ("butter", "Terrible butter, it tasted sour and the packaging was damaged.", "negative"),
    ("yoghurt", "Does the strawberry yoghurt contain gelatine?", "neutral"),
]


def test_sentiment_example(kiln, tmp_path):
    data = tmp_path / "data"
    p = run_script(SENTIMENT / "run.sh", example_env(kiln, tmp_path, DATA=str(data)))
    for stage in range(1, 8):
        assert f"\n== {stage}. " in "\n" + p.stdout, p.stdout[-3000:]

    # 1. The dataset version, profiled (the monitor's reference needs it).
    ver = api(kiln, "GET", "datasets/dairy-comments/versions/latest")["version"]
    n = ver["version"]
    assert ver["profile"]["rows"] == 600, ver.get("profile", {}).get("rows")
    assert {f["name"] for f in ver["schema"]["fields"]} == {"product", "text", "label"}

    # 2. The tracked run behind the champion, linked to that version.
    client = mlflow.MlflowClient(kiln.url, kiln.url)
    mv = client.get_model_version_by_alias("dairy-sentiment", "champion")
    run = client.get_run(mv.run_id)
    assert run.data.params["dataset"] == f"dairy-comments@{n}", run.data.params
    assert run.data.params["eval_rows"] == "120", run.data.params
    assert run.data.metrics["accuracy"] >= 0.85 and run.data.metrics["f1_macro"] >= 0.85, run.data.metrics
    links = api(kiln, "GET", f"runs/{mv.run_id}/datasets")["datasets"]
    assert [(d["version"]["dataset"], d["version"]["version"], d["context"]) for d in links] == [
        ("dairy-comments", n, "training")], links

    # 3. The endpoint serves that version with the pure-Go ONNX runtime.
    st = api(kiln, "GET", "endpoints/dairy-sentiment")["status"]
    assert [(r["version"], r["weight"], r["state"]) for r in st["routes"]] == [(int(mv.version), 100, "ready")], st
    meta = requests.get(f"{kiln.url}/v2/models/dairy-sentiment", timeout=30).json()
    assert meta["platform"] == "onnx_onnxv1", meta
    assert [i["name"] for i in meta["inputs"]] == ["product", "text"], meta

    # 4. Clear comments get their labels, through both protocols.
    frame = pd.DataFrame([(p_, t) for p_, t, _ in CLEAR], columns=["product", "text"])
    want = [label for *_, label in CLEAR]
    r = requests.post(f"{kiln.url}/endpoints/dairy-sentiment/invocations", timeout=30,
                      json={"dataframe_split": {"columns": ["product", "text"], "data": frame.values.tolist()}})
    assert r.status_code == 200 and r.json()["predictions"] == want, r.text
    labels, probs = infer(kiln, "dairy-sentiment", frame)
    assert labels == want and (probs.max(axis=1) > 0.5).all(), (labels, probs)

    # The served model answers as scikit-learn does on the held-out comments
    # (the same split and fit as train.py, on the version pulled by run.sh).
    comments = sentiment_train.load(str(data / "train" / "comments.csv"))
    train, test = sentiment_train.split(comments, int(run.data.params["seed"]))
    pipe = sentiment_train.fit(train, float(run.data.params["C"]), int(run.data.params["max_ngram"]))
    labels, probs = infer(kiln, "dairy-sentiment", test)
    assert labels == pipe.predict(test[sentiment_train.FEATURES]).tolist()
    np.testing.assert_allclose(probs, pipe.predict_proba(test[sentiment_train.FEATURES]), atol=1e-5)
    assert list(pipe.classes_) == sentiment_train.LABELS

    # 5./6. The monitor: ok after the normal week, drift after the bad one.
    results = api(kiln, "GET", "monitors/dairy-sentiment/results")["results"]
    statuses = [r["status"] for r in sorted(results, key=lambda r: r["time"])]
    assert "ok" in statuses and statuses[-1] == "drift", statuses
    assert statuses.index("ok") < len(statuses) - 1 - statuses[::-1].index("drift"), statuses
    latest = api(kiln, "GET", "monitors/dairy-sentiment")["latest"]
    assert latest["reference"]["kind"] == "lineage" and latest["reference"]["dataset"] == f"dairy-comments@{n}", latest["reference"]
    assert latest["traffic"]["rows"] >= 400 and latest["traffic"]["errors"] == 0, latest["traffic"]
    (pred,) = latest["prediction_drift"]["features"]
    assert pred["name"] == "label" and pred["drift"] is True and pred["score"] < 1e-3, pred
    share = dict(zip(pred["histogram"]["categories"], zip(pred["histogram"]["ref"], pred["histogram"]["cur"])))
    assert share["negative"][1] > share["negative"][0] + 0.1, share  # more complaints than in training
    (product,) = latest["drift"]["features"]
    assert product["name"] == "product" and product["drift"] is True, product
    perf = latest["performance"]
    assert perf["labelled"] >= 150 and perf["metrics"]["accuracy"] >= 0.85, perf
    assert set(perf["slices"]["product"]) >= {"milk", "yoghurt", "cheese"}, perf["slices"]

    alerts = {a["rule"]: a["state"] for a in api(kiln, "GET", "alerts", params={"monitor": "dairy-sentiment"})["alerts"]}
    assert alerts.get("complaints-surge") == "firing" and alerts.get("product-mix") == "firing", alerts
    assert alerts.get("accuracy-drop") != "firing", alerts

    # 7. Lineage from the endpoint back to the data.
    g = api(kiln, "GET", "lineage", params={"node": "endpoint:dairy-sentiment", "direction": "upstream", "depth": 4})
    edges = {(e["from"], e["relation"], e["to"]) for e in g["edges"]}
    assert (f"dataset:dairy-comments@{n}", "input", f"run:{mv.run_id}") in edges, sorted(edges)
    assert (f"model:dairy-sentiment/{mv.version}", "serves", "endpoint:dairy-sentiment") in edges, sorted(edges)


def code_of(path: Path) -> str:
    """A script's code without its docstrings and comments."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body.pop(0)
    return ast.unparse(tree)


def run_id_of(stdout: str) -> str:
    m = re.search(r"^run ([0-9a-f]{32}): test accuracy", stdout, re.M)
    assert m, stdout[-3000:]
    return m.group(1)


@pytest.fixture(scope="module")
def legacy_mlflow(tmp_path_factory) -> dict:
    """An existing MLflow store (SQLite, artifacts in a folder) that the
    migration's train.py ran against once, as it did before Kiln."""
    d = tmp_path_factory.mktemp("legacy-mlflow")
    uri = f"sqlite:///{d}/mlflow.db"
    p = subprocess.run([sys.executable, str(MIGRATION / "train.py")], cwd=d, capture_output=True, text=True,
                       timeout=300, env=clean_env(MLFLOW_TRACKING_URI=uri))
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    run_id = run_id_of(p.stdout)
    # Older habits in the same store: a parent run with a child, and a model
    # version registered from the child's artifacts (MLflow 2's way).
    c = mlflow.MlflowClient(uri, uri)
    exp_id = c.get_run(run_id).info.experiment_id
    parent = c.create_run(exp_id, run_name="sweep").info.run_id
    child = c.create_run(exp_id, run_name="trial-1", tags={"mlflow.parentRunId": parent}).info
    c.log_param(child.run_id, "alpha", "0.1")
    c.log_metric(child.run_id, "loss", 0.5, step=3)
    model_dir = mlflow.artifacts.download_artifacts(
        artifact_uri=c.get_logged_model(c.get_run(run_id).outputs.model_outputs[0].model_id).artifact_location,
        dst_path=str(d / "model-copy"))
    c.log_artifacts(child.run_id, model_dir, "model")
    for r in (child.run_id, parent):
        c.set_terminated(r)
    c.create_registered_model("wine-classifier-legacy")
    c.create_model_version("wine-classifier-legacy", f"{child.artifact_uri}/model", run_id=child.run_id)
    return {"uri": uri, "run_id": run_id, "parent": parent, "child": child.run_id, "dir": d}


def points(c: mlflow.MlflowClient, run_id: str, key: str) -> list[tuple]:
    """A metric's history as sorted (step, timestamp, value)."""
    return sorted((m.step, m.timestamp, m.value) for m in c.get_metric_history(run_id, key))


def dataset_inputs(run) -> list[tuple]:
    """A run's dataset inputs as sorted (name, digest, tags)."""
    return sorted((d.dataset.name, d.dataset.digest, tuple((t.key, t.value) for t in d.tags))
                  for d in run.inputs.dataset_inputs)


def downloads(tmp_path: Path, name: str) -> str:
    """An empty folder for mlflow's dst_path (which must exist)."""
    d = tmp_path / name
    d.mkdir()
    return str(d)


def test_mlflow_migration_example(kiln, client, tmp_path, legacy_mlflow):
    # The script is plain MLflow: nothing in its code names Kiln or sets a tracking URI.
    code = code_of(MIGRATION / "train.py")
    assert not re.search(r"kiln", code, re.I) and "set_tracking_uri" not in code, code

    p = run_script(MIGRATION / "run.sh", example_env(kiln, tmp_path, IMPORT_FROM=legacy_mlflow["uri"]))
    run_id = run_id_of(p.stdout)
    preds = re.search(r"predictions for the first five test wines: (\[.*\])\ntrue classes: +(\[.*\])", p.stdout)
    assert preds and preds.group(1) == preds.group(2), p.stdout[-3000:]
    assert f"run {run_id} (gradient-boosting): FINISHED" in p.stdout, p.stdout[-3000:]
    assert "# Model card: wine-classifier version" in p.stdout, p.stdout[-3000:]

    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "wine-classifier"
    assert run.info.status == "FINISHED" and run.data.tags["team"] == "wine-research", run.data.tags
    # autolog's parameters and training metrics, and the script's own.
    assert {("n_estimators", "50"), ("learning_rate", "0.1"), ("max_depth", "3")} <= set(run.data.params.items())
    assert run.data.metrics["test_accuracy"] > 0.9 and "training_accuracy_score" in run.data.metrics, run.data.metrics
    # One value per boosting stage, exactly: log_model re-logs the run's step-0
    # metrics with its model_id, which (as in MLflow's store) adds no point.
    raw = client.get_metric_history(run_id, "test_accuracy_by_stage")
    assert len(raw) == 50, [(m.step, m.value) for m in raw]
    history = sorted((m.step, m.value) for m in raw)
    assert [s for s, _ in history] == list(range(50)), history
    assert history[-1][1] == pytest.approx(run.data.metrics["test_accuracy"]), history[-1]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"classification_report.json", "estimator.html"} <= artifacts, artifacts
    report = json.loads(Path(client.download_artifacts(run_id, "classification_report.json", str(tmp_path))).read_text())
    assert report["accuracy"] == pytest.approx(run.data.metrics["test_accuracy"])

    # The registered model, loaded back as the script does, predicts.
    mv = client.get_model_version_by_alias("wine-classifier", "champion")
    assert mv.run_id == run_id, (mv.run_id, run_id)
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = mlflow.pyfunc.load_model("models:/wine-classifier@champion", dst_path=downloads(tmp_path, "champion"))
    assert (model.predict(X) == y).mean() > 0.95

    # The import: the legacy run copied with its data, its version registered and loadable.
    copies = client.search_runs([run.info.experiment_id], f"tags.`imported_from.run_id` = '{legacy_mlflow['run_id']}'")
    assert len(copies) == 1, [r.info.run_id for r in copies]
    copy = copies[0]
    legacy = mlflow.MlflowClient(legacy_mlflow["uri"], legacy_mlflow["uri"])
    orig = legacy.get_run(legacy_mlflow["run_id"])
    assert copy.data.params == orig.data.params
    assert copy.data.metrics == orig.data.metrics
    assert (copy.info.start_time, copy.info.end_time, copy.info.status, copy.info.run_name) == (
        orig.info.start_time, orig.info.end_time, orig.info.status, orig.info.run_name)
    assert points(client, copy.info.run_id, "test_accuracy_by_stage") == points(legacy, orig.info.run_id, "test_accuracy_by_stage")
    assert {a.path for a in client.list_artifacts(copy.info.run_id)} == {a.path for a in legacy.list_artifacts(orig.info.run_id)}
    assert dataset_inputs(copy) == dataset_inputs(orig) and dataset_inputs(orig), dataset_inputs(orig)

    versions = [v for v in client.search_model_versions("name = 'wine-classifier'") if v.tags.get("imported_from.version") == "1"]
    assert len(versions) == 1, versions
    imported = versions[0]
    assert imported.run_id == copy.info.run_id and imported.source.startswith("models:/m-"), imported
    lm = client.get_logged_model(imported.source.removeprefix("models:/"))
    assert lm.source_run_id == copy.info.run_id and lm.tags.get("imported_from.model_id"), lm
    # champion already pointed at the run made on Kiln: the import leaves it there.
    assert client.get_model_version_by_alias("wine-classifier", "champion").version == mv.version
    copied = mlflow.pyfunc.load_model(f"models:/wine-classifier/{imported.version}", dst_path=downloads(tmp_path, "copied"))
    assert copied.metadata.run_id == copy.info.run_id
    # The original, read straight from the legacy store's artifact folder.
    with_legacy = mlflow.pyfunc.load_model(legacy.get_logged_model(orig.outputs.model_outputs[0].model_id).artifact_location)
    np.testing.assert_array_equal(copied.predict(X), with_legacy.predict(X))

    # The older habits: the child points at the parent's copy; the run-artifact version
    # is registered from the child's copy.
    by_origin = {r.data.tags.get("imported_from.run_id"): r for r in client.search_runs([run.info.experiment_id])}
    assert by_origin[legacy_mlflow["child"]].data.tags["mlflow.parentRunId"] == by_origin[legacy_mlflow["parent"]].info.run_id
    assert by_origin[legacy_mlflow["child"]].data.params == {"alpha": "0.1"}
    (old_style,) = client.search_model_versions("name = 'wine-classifier-legacy'")
    assert old_style.run_id == by_origin[legacy_mlflow["child"]].info.run_id, old_style
    assert old_style.source in (f"runs:/{old_style.run_id}/model", f"{by_origin[legacy_mlflow['child']].info.artifact_uri}/model"), old_style
    old_model = mlflow.pyfunc.load_model(f"models:/wine-classifier-legacy/{old_style.version}", dst_path=downloads(tmp_path, "old"))
    np.testing.assert_array_equal(old_model.predict(X), with_legacy.predict(X))

    # A second import copies nothing.
    again = subprocess.run([sys.executable, str(MIGRATION / "import_runs.py"), "--from", legacy_mlflow["uri"], "--to", kiln.url,
                            "--experiment", "wine-classifier", "--model", "wine-classifier"],
                           cwd=legacy_mlflow["dir"], capture_output=True, text=True, timeout=300, env=clean_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "experiment wine-classifier: 0 runs copied, 3 already there" in again.stderr, again.stderr[-3000:]
    assert ("registered model wine-classifier: 0 versions copied, 1 already there; aliases: champion stays on "
            f"version {mv.version} (the source's champion is its version 1, copied as {imported.version})") in again.stderr, \
        again.stderr[-3000:]
    assert len(client.search_runs([run.info.experiment_id], f"tags.`imported_from.run_id` = '{legacy_mlflow['run_id']}'")) == 1

    # And back: Kiln → a new MLflow store, with the same script.
    back = f"sqlite:///{tmp_path}/back.db"
    p = subprocess.run([sys.executable, str(MIGRATION / "import_runs.py"), "--from", kiln.url, "--to", back,
                        "--experiment", "wine-classifier", "--model", "wine-classifier"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env=clean_env())
    assert p.returncode == 0, p.stderr[-3000:]
    there = mlflow.MlflowClient(back, back)
    mv_back = there.get_model_version_by_alias("wine-classifier", "champion")
    assert mv_back.tags["imported_from.version"] == mv.version, mv_back.tags
    run_back = there.get_run(mv_back.run_id)
    assert run_back.data.params == run.data.params and run_back.data.metrics == run.data.metrics
    assert len(there.get_metric_history(run_back.info.run_id, "test_accuracy_by_stage")) == 50
    mlflow.set_tracking_uri(back)
    mlflow.set_registry_uri(back)
    try:
        returned = mlflow.pyfunc.load_model("models:/wine-classifier@champion", dst_path=downloads(tmp_path, "back"))
    finally:
        mlflow.set_tracking_uri(kiln.url)
        mlflow.set_registry_uri(kiln.url)
    np.testing.assert_array_equal(returned.predict(X), model.predict(X))
