"""Lineage for the UI tests: a CSV dataset version split into train and
test parts (`kiln data split`: derived edges), a run that logs the train
part as its input (the real mlflow client's log_input: an input edge) and
logs a scikit-learn model registered as a model version (output and
registered edges):

    dataset:ui-lin-data@1 → dataset:ui-lin-data-train@1 → run:R → logged-model:M → model:ui-lin-model/1
                          ↘ dataset:ui-lin-data-test@1
"""
import json
import os
import subprocess

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

DATA = "ui-lin-data"
MODEL = "ui-lin-model"


def kiln(ctx, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env.update(KILN_URL=ctx.url, KILN_CACHE_DIR=str(ctx.tmp / "lineage-cache"))
    p = subprocess.run([ctx.kiln_bin, *args], env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def seed(ctx):
    rng = np.random.default_rng(5)
    n = 200
    df = pd.DataFrame({"id": np.arange(n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["y"] = (df.x1 + 0.5 * df.x2 > 0).astype(int)
    path = ctx.tmp / "lineage-data.csv"
    df.to_csv(path, index=False)
    kiln(ctx, "data", "add", DATA, str(path), "-m", "UI lineage data")
    split = json.loads(kiln(ctx, "data", "split", f"{DATA}@1", "--method", "random", "--fractions", "0.8,0.2", "--seed", "1",
                            "--name", f"train={DATA}-train", "--name", f"test={DATA}-test", "--output", "json"))
    parts = {o["part"] if "part" in o else o["version"]["dataset"]: o["version"] for o in split["outputs"]}
    train = next(v for k, v in parts.items() if "train" in k)
    test = next(v for k, v in parts.items() if "test" in k)
    train_ref = f"{train['dataset']}@{train['version']}"
    test_ref = f"{test['dataset']}@{test['version']}"

    mlflow.set_experiment("ui-lineage")
    exp = MlflowClient().get_experiment_by_name("ui-lineage").experiment_id
    with mlflow.start_run(run_name="lineage-train") as run:
        src = f"{ctx.url}/api/v1/datasets/{train['dataset']}/versions/{train['version']}"
        mlflow.log_input(mlflow.data.from_pandas(df, source=src, name=train["dataset"]), context="training")
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression().fit(df[["x1", "x2"]].to_numpy(), df.y.to_numpy())
        mlflow.log_metric("accuracy", float(clf.score(df[["x1", "x2"]].to_numpy(), df.y.to_numpy())))
        info = mlflow.sklearn.log_model(clf, name="model", registered_model_name=MODEL)
    rid = run.info.run_id
    version = int(info.registered_model_version)
    # The facts the tests check against: the graph as the server walks it.
    g = ctx.api("GET", "/api/v1/lineage", params={"node": f"run:{rid}", "direction": "both"})
    logged = next(nd["id"] for nd in g["nodes"] if nd["type"] == "logged_model")
    return {
        "experiment_id": exp, "run_id": rid, "run_name": "lineage-train", "model": MODEL, "model_version": version,
        "dataset": DATA, "train": train_ref, "test": test_ref, "logged_model": logged,
        "run_graph": {"nodes": sorted(nd["id"] for nd in g["nodes"]), "edges": sorted(f"{e['from']}>{e['to']}" for e in g["edges"])},
    }
