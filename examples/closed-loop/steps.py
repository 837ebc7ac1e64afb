"""The small steps of the closed-loop pipeline (one script, a subcommand each).

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
