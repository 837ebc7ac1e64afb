"""Pipelines and tuning studies for the UI tests.

Pipelines (local executor, sh commands that finish in a moment):
- ui-etl: extract → clean (an implied dependency: it reads extract's
  output through a template) and features → train, with parameters, a
  schedule and two triggers; one run that succeeds;
- ui-broken: prepare → fit (exits 3 after logging to stderr, twice: one
  retry) → report
  (upstream_failed), with an on_exit handler; one run that fails;
- ui-slow: warmup → long (sleeps a minute), no run yet: the tests start
  and cancel one.

Studies (`kiln tune -f`, trials are a stdlib-only Python command that logs
the objective over REST):
- ui-grid: a grid of 5 × 2 points minimising loss, one trial failing;
- ui-rand: 4 random trials maximising score.
"""
import json
import os
import subprocess
import sys
import time

PY_TRIAL = r"""
import base64, json, os, sys, time, urllib.request
x, opt, mode = float(sys.argv[1]), sys.argv[2], sys.argv[3]
uri = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
run = os.environ["MLFLOW_RUN_ID"]
headers = {"Content-Type": "application/json"}
if os.environ.get("MLFLOW_TRACKING_TOKEN"):
    headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
    cred = os.environ["MLFLOW_TRACKING_USERNAME"] + ":" + os.environ["MLFLOW_TRACKING_PASSWORD"]
    headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
def log(key, value, step):
    body = json.dumps({"run_id": run, "key": key, "value": value, "timestamp": int(time.time() * 1000), "step": step}).encode()
    urllib.request.urlopen(urllib.request.Request(uri + "/api/2.0/mlflow/runs/log-metric", data=body, headers=headers, method="POST"), timeout=30).read()
if mode == "grid":
    if x == 1.0 and opt == "b":
        print("diverged: loss is nan", file=sys.stderr)
        sys.exit(2)
    final = (x - 0.4) ** 2 + (0.1 if opt == "b" else 0.0)
    for step in range(3):
        log("loss", final + 0.5 / (step + 1) - 0.5 / 3, step)
    print("loss", final)
else:
    score = 1.0 - (x - 0.7) ** 2
    log("score", score, 0)
    print("score", score)
"""

ETL = {
    "apiVersion": "kiln.dev/v1", "kind": "Pipeline",
    "metadata": {"name": "ui-etl", "description": "Extract, clean, build features and train"},
    "spec": {
        "parameters": [{"name": "rows", "type": "int", "default": 100}, {"name": "label", "default": "churn"}],
        "steps": [
            # extract takes a few seconds, so a run started from the UI is still going when
            # its page first loads and the page's refresh is what shows its end.
            {"name": "extract", "command": ["sh", "-c", 'echo "extracting {{params.rows}} rows"; sleep 3; echo {{params.rows}} > "$KILN_OUTPUTS/rows"'],
             "outputs": [{"name": "rows", "type": "parameter"}]},
            {"name": "clean", "command": ["sh", "-c", 'echo "cleaning $0 rows"; echo "dropped 3 duplicates"', "{{steps.extract.outputs.rows}}"]},
            {"name": "features", "depends_on": ["extract"],
             "command": ["sh", "-c", 'echo "building features for {{params.label}}"; echo 12 > "$KILN_OUTPUTS/n_features"'],
             "outputs": [{"name": "n_features", "type": "metric"}]},
            {"name": "train", "depends_on": ["clean", "features"],
             "command": ["sh", "-c", 'echo "training on {{steps.features.outputs.n_features}} features"; echo 0.91 > "$KILN_OUTPUTS/auc"'],
             "outputs": [{"name": "auc", "type": "metric"}]},
        ],
        "schedules": [{"name": "yearly", "cron": "30 4 1 1 *", "timezone": "UTC"}],
        "triggers": [{"name": "on-raw-data", "dataset": "ui-raw"}, {"name": "hook", "webhook": {}}],
    },
}

BROKEN = {
    "apiVersion": "kiln.dev/v1", "kind": "Pipeline",
    "metadata": {"name": "ui-broken", "description": "A pipeline whose fit step fails"},
    "spec": {
        "steps": [
            {"name": "prepare", "command": ["sh", "-c", 'echo "preparing"']},
            {"name": "fit", "depends_on": ["prepare"], "retry": {"limit": 1, "backoff": "1s"},
             "command": ["sh", "-c", 'echo "fitting, attempt $KILN_ATTEMPT"; echo "error: out of memory" >&2; exit 3']},
            {"name": "report", "depends_on": ["fit"], "command": ["sh", "-c", 'echo "report"']},
        ],
        "on_exit": {"name": "notify", "command": ["sh", "-c", 'echo "pipeline {{pipeline.status}}"']},
    },
}

SLOW = {
    "apiVersion": "kiln.dev/v1", "kind": "Pipeline",
    "metadata": {"name": "ui-slow", "description": "A step that sleeps a minute"},
    "spec": {
        "cache": False,
        "steps": [
            {"name": "warmup", "command": ["sh", "-c", 'echo "warming up"']},
            {"name": "long", "depends_on": ["warmup"], "command": ["sh", "-c", 'echo "sleeping"; sleep 60; echo "woke up"']},
        ],
    },
}


def wait_run(ctx, run_id: str, timeout: float = 120) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        r = ctx.api("GET", f"/api/v1/pipeline-runs/{run_id}")
        if r["state"] in ("succeeded", "failed", "cancelled"):
            return r
        time.sleep(0.3)
    raise RuntimeError(f"pipeline run {run_id} did not end in {timeout}s: {r['state']}")


def study(ctx, token: str, doc: dict) -> dict:
    path = ctx.tmp / f"{doc['metadata']['name']}.json"
    path.write_text(json.dumps(doc))
    env = {**os.environ, "KILN_TOKEN": token}
    env.pop("MLFLOW_TRACKING_TOKEN", None)
    p = subprocess.run([ctx.kiln_bin, "tune", "-f", str(path), "-o", "json"], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"kiln tune {doc['metadata']['name']}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout)


def seed(ctx):
    runs = {}
    for doc in (ETL, BROKEN, SLOW):
        ctx.api("PUT", f"/api/v1/pipelines/{doc['metadata']['name']}", json=doc)
    etl = ctx.api("POST", "/api/v1/pipelines/ui-etl/runs", json={"parameters": {"rows": "250"}})["run"]
    broken = ctx.api("POST", "/api/v1/pipelines/ui-broken/runs", json={})["run"]
    runs["etl"] = wait_run(ctx, etl["run_id"])
    runs["broken"] = wait_run(ctx, broken["run_id"])
    assert runs["etl"]["state"] == "succeeded", runs["etl"]
    assert runs["broken"]["state"] == "failed", runs["broken"]

    tok = ctx.api("POST", "/api/v1/tokens", json={"name": "ui-tune"})["secret"]
    trial = [sys.executable, "-c", PY_TRIAL]
    grid = study(ctx, tok, {
        "apiVersion": "kiln.dev/v1", "kind": "Study", "metadata": {"name": "ui-grid"},
        "spec": {
            "objective": {"metric": "loss", "direction": "minimize"},
            "command": trial + ["{{params.x}}", "{{params.opt}}", "grid"],
            "parameters": [{"name": "x", "type": "float", "low": 0, "high": 1, "step": 0.25},
                           {"name": "opt", "type": "categorical", "choices": ["a", "b"]}],
            "sampler": {"type": "grid"}, "parallelism": 2,
        },
    })
    rand = study(ctx, tok, {
        "apiVersion": "kiln.dev/v1", "kind": "Study", "metadata": {"name": "ui-rand"},
        "spec": {
            "objective": {"metric": "score", "direction": "maximize"},
            "command": trial + ["{{params.x}}", "-", "rand"],
            "parameters": [{"name": "x", "type": "float", "low": 0, "high": 1}],
            "sampler": {"type": "random", "seed": 3}, "trials": 4,
        },
    })

    def summary(res):
        return {
            "parent_run_id": res["parent_run_id"], "experiment_id": res["experiment_id"], "metric": res["metric"],
            "best_run": res["best"]["run_id"], "best_number": res["best"]["number"], "best_value": res["best"]["value"],
            "trials": [{"number": t["number"], "state": t["state"], "run_id": t["run_id"], "value": t.get("value"), "params": t["params"]} for t in res["trials"]],
            "counts": res["counts"],
        }

    return {
        "etl_run": runs["etl"]["run_id"], "broken_run": runs["broken"]["run_id"],
        "etl_steps": [s["step"] for s in runs["etl"]["steps"]],
        "broken_steps": {s["step"]: s["state"] for s in runs["broken"]["steps"]},
        "studies": {"grid": summary(grid), "rand": summary(rand)},
    }
