"""Experiments and runs for the UI tests: an experiment of 30 runs with
parameters, metric histories and tags, a run with a 10,000-step metric,
a parent run with children, a deleted run, and a run holding artifacts of
every previewed kind (text, JSON, CSV, PNG, an MLmodel directory)."""
import json
import struct
import time
import zlib

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient


def tiny_png(w: int = 16, h: int = 16) -> bytes:
    """A w×h red-to-blue gradient PNG, written by hand (no imaging library)."""
    raw = b"".join(b"\x00" + b"".join(bytes((255 * x // w, 64, 255 - 255 * x // w)) for x in range(w)) for _ in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def seed(ctx):
    c = MlflowClient()
    exp = c.create_experiment("ui-churn", tags={"team": "growth"})
    other = c.create_experiment("ui-empty")
    now = int(time.time() * 1000)
    runs = []
    for i in range(30):
        r = c.create_run(exp, run_name=f"trial-{i:02d}", tags={"model": "xgboost" if i % 2 else "logreg"}, start_time=now - (30 - i) * 60000)
        lr = [0.01, 0.03, 0.1][i % 3]
        depth = 3 + i % 4
        metrics = [Metric("loss", 1.0 / (1 + s * lr * depth) + 0.001 * i, now + s, s) for s in range(50)]
        auc = 0.70 + 0.008 * i
        metrics.append(Metric("auc", auc, now, 0))
        c.log_batch(r.info.run_id, metrics=metrics, params=[Param("lr", str(lr)), Param("max_depth", str(depth))],
                    tags=[RunTag("seed", str(i))])
        c.set_terminated(r.info.run_id, "FAILED" if i == 7 else "FINISHED", end_time=now - (30 - i) * 60000 + 42000)
        runs.append({"id": r.info.run_id, "name": f"trial-{i:02d}", "auc": auc, "lr": lr, "max_depth": depth})
    # A long metric: 10,000 steps, logged in batches of 1,000.
    long = c.create_run(exp, run_name="long-training")
    for b in range(10):
        c.log_batch(long.info.run_id, metrics=[Metric("train_loss", 2.0 / (1 + 0.001 * s), now + s, s) for s in range(b * 1000, (b + 1) * 1000)])
    c.set_terminated(long.info.run_id)
    # Parent and children.
    parent = c.create_run(exp, run_name="sweep-parent")
    children = []
    for j in range(2):
        ch = c.create_run(exp, run_name=f"sweep-child-{j}", tags={"mlflow.parentRunId": parent.info.run_id})
        c.log_metric(ch.info.run_id, "auc", 0.8 + j * 0.01)
        c.set_terminated(ch.info.run_id)
        children.append(ch.info.run_id)
    c.set_terminated(parent.info.run_id)
    gone = c.create_run(exp, run_name="deleted-run")
    c.delete_run(gone.info.run_id)
    # Artifacts of every previewed kind, and a logged scikit-learn model.
    with mlflow.start_run(experiment_id=exp, run_name="with-artifacts") as art:
        mlflow.log_text("hello from the artifacts tab\n", "notes/readme.txt")
        mlflow.log_dict({"threshold": 0.42, "classes": ["stay", "churn"]}, "config.json")
        mlflow.log_text("customer,tenure,churned\nalice,12,0\nbob,3,1\n\"carol, jr\",40,0\n", "data/sample.csv")
        (ctx.tmp / "plot.png").write_bytes(tiny_png())
        mlflow.log_artifact(str(ctx.tmp / "plot.png"), "plots")
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("auc", 0.9)
        from sklearn.linear_model import LogisticRegression
        import numpy as np

        X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.9]])
        y = np.array([0, 1, 1, 0])
        clf = LogisticRegression().fit(X, y)
        # A model directory in the run's own artifacts (MLflow 3 puts
        # log_model's under a logged model instead), and a logged model.
        mlflow.sklearn.save_model(clf, str(ctx.tmp / "saved-model"))
        mlflow.log_artifacts(str(ctx.tmp / "saved-model"), "model")
        mlflow.sklearn.log_model(clf, name="model")
    return {
        "experiment_id": exp, "empty_experiment_id": other, "runs": runs, "long_run": long.info.run_id,
        "parent_run": parent.info.run_id, "child_runs": children, "deleted_run": gone.info.run_id,
        "artifact_run": art.info.run_id,
    }
