"""Batch scoring for the UI tests: an XGBoost model registered as
ui-scorer (served by Kiln's pure-Go runtime), a CSV input uploaded as an
artifact, and one finished score job."""
import time

import mlflow
import numpy as np
import xgboost as xgb


def seed(ctx):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    booster = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    mlflow.set_experiment("ui-scoring")
    with mlflow.start_run():
        mlflow.xgboost.log_model(booster, name="model", registered_model_name="ui-scorer")
    rows = "\n".join(f"{i},{a:.4f},{b:.4f},{c:.4f}" for i, (a, b, c) in enumerate(X[:50]))
    csv = "id,f0,f1,f2\n" + rows + "\n"
    r = ctx.http.put(ctx.url + "/api/2.0/mlflow-artifacts/artifacts/ui-scoring/in.csv", data=csv.encode())
    r.raise_for_status()
    job = ctx.api("POST", "/api/v1/score-jobs", json={
        "model": "models:/ui-scorer/1", "input": "mlflow-artifacts:/ui-scoring/in.csv",
        "output": "ui-scoring/out.parquet", "keep": ["id"], "features": ["f0", "f1", "f2"],
    })
    for _ in range(300):
        j = ctx.api("GET", f"/api/v1/score-jobs/{job['id']}")
        if j["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert j["state"] == "succeeded", j
    return {"job": job["id"], "rows": 50}
