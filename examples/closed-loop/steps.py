"""The small steps of the closed-loop pipeline (one script, a subcommand each).

  tune STUDY           run the tuning study (kiln tune run -f STUDY -o json;
                       the study's `python` becomes --python, its trial
                       count --trials); outputs: the best trial's
                       parameters (one output each), best_value,
                       trials (how many completed) and study_run (the
                       study's parent run)
  register MODEL_URI   register the logged model as a new version of --model
                       (the MLflow client's register_model); output: version
  promote VERSION      move the alias --alias (champion) of --model to VERSION;
                       a gate policy protecting the alias refuses a version
                       without a passing result (exit 1 with its message)
  wait VERSION         wait until endpoint --endpoint serves VERSION with all
                       its traffic after a rollout that succeeded; exit 1 when
                       the rollout of VERSION rolled back or failed, 2 on
                       --timeout

The server is $KILN_URL (set by the pipeline's executor), else
$MLFLOW_TRACKING_URI, else http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SERVER = (os.environ.get("KILN_URL") or os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000").rstrip("/")


def call(method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(SERVER + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "X-Kiln-Actor": os.environ.get("KILN_ACTOR", "pipeline")})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read().decode(errors='replace')[:2000]}") from None
    return json.loads(raw) if raw else {}


def output(name: str, value: str) -> None:
    out = os.environ.get("KILN_OUTPUTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, name).write_text(value)
    print(f"output {name} = {value}")


def tune(a: argparse.Namespace) -> None:
    """Runs the study with kiln tune; its best trial's parameters become outputs."""
    import yaml  # only this step reads YAML (PyYAML comes with mlflow)

    try:
        doc = yaml.safe_load(Path(a.study).read_text())
    except (OSError, yaml.YAMLError) as e:
        sys.exit(f"study {a.study}: {e}")
    cmd = ((doc or {}).get("spec") or {}).get("command") or []
    if cmd and cmd[0] == "python":
        cmd[0] = a.python  # the interpreter of this pipeline, not the one on PATH
    args = [a.kiln, "tune", "run", "-f", "-", "-o", "json"] + (["--trials", str(a.trials)] if a.trials else [])
    # The study's progress (one line a trial) goes to the step's log as it comes.
    try:
        p = subprocess.run(args, input=json.dumps(doc), stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    except OSError as e:
        sys.exit(f"cannot run {a.kiln}: {e}")
    if p.returncode != 0:
        sys.exit(f"kiln tune exited {p.returncode}: {p.stdout[-2000:]}")
    res = json.loads(p.stdout)
    best = res.get("best") or {}
    if not best.get("params"):
        sys.exit(f"the study has no best trial: {p.stdout[-2000:]}")
    completed = sum(1 for t in res.get("trials") or [] if t.get("state") == "completed")
    print(f"study {res.get('study')} (run {res.get('parent_run_id')}): {completed} trials completed, "
          f"best trial {best.get('number')} {res.get('metric')} = {best.get('value')}")
    for k, v in best["params"].items():
        output(k, json.dumps(v) if isinstance(v, bool) else str(v))
    output("best_value", repr(float(best["value"])))
    output("trials", str(completed))
    output("study_run", res["parent_run_id"])


def register(a) -> None:
    import mlflow  # only this step needs the client

    mlflow.set_tracking_uri(SERVER)
    mv = mlflow.register_model(a.uri, a.model)
    output("version", str(mv.version))


def promote(a) -> None:
    # MLflow REST: the alias is gate-protected, so a refusal names the policy.
    call("POST", "/api/2.0/mlflow/registered-models/alias",
         {"name": a.model, "alias": a.alias, "version": str(a.version)})
    print(f"{a.model}@{a.alias} -> version {a.version}")


def wait(a) -> None:
    want = int(a.version)
    deadline = time.time() + a.timeout
    last = None
    while True:
        try:
            st = call("GET", f"/api/v1/endpoints/{a.endpoint}")["status"]
        except SystemExit as e:
            if "404" not in str(e):
                raise
            st = {"routes": []}
        routes = [r for r in st.get("routes") or [] if r.get("weight", 0) > 0]
        ro = st.get("rollout") or {}
        cand = (ro.get("candidate") or {}).get("version")
        line = (ro.get("phase"), ro.get("step"), cand, [(r["name"], r["version"], r["weight"]) for r in routes])
        if line != last:
            print(f"rollout phase={line[0]} step={line[1]} candidate={line[2]} routes={line[3]}", flush=True)
            last = line
        if cand == want and ro.get("phase") in ("rolled_back", "failed"):
            sys.exit(f"the rollout of version {want} ended {ro['phase']}: {ro.get('message', '')}")
        serves = routes and all(r["version"] == want for r in routes)
        if serves and (not ro or cand != want or ro.get("phase") == "succeeded"):
            print(f"endpoint {a.endpoint} serves version {want}")
            return
        if time.time() > deadline:
            print(f"version {want} not promoted within {a.timeout}s", file=sys.stderr)
            sys.exit(2)
        time.sleep(a.interval)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="closed-loop")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tune")
    p.add_argument("study")
    p.add_argument("--kiln", default="kiln", help="the kiln binary")
    p.add_argument("--python", default=sys.executable, help="the interpreter of the study's python command")
    p.add_argument("--trials", type=int, default=0, help="trials (0: the study's own)")
    p.set_defaults(fn=tune)
    p = sub.add_parser("register")
    p.add_argument("uri")
    p.set_defaults(fn=register)
    p = sub.add_parser("promote")
    p.add_argument("version")
    p.add_argument("--alias", default="champion")
    p.set_defaults(fn=promote)
    p = sub.add_parser("wait")
    p.add_argument("version")
    p.add_argument("--endpoint", default="closed-loop")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--interval", type=float, default=0.5)
    p.set_defaults(fn=wait)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    # A step that hangs says where: every 90 s the stacks go to the step's log.
    import faulthandler
    faulthandler.dump_traceback_later(90, repeat=True)
    main()
