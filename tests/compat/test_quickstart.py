"""docs/quickstart.md, run as a reader would: every file it says to save is
written as it stands, every shell block runs in order (but the setup ones:
`make run`, `make venv`, `make demo`) against a fresh `kiln server`, and the
outcome the page promises is checked: the drift alert starts the
retraining pipeline, version 2 of `churn` is trained on churn-data@2, takes
the alias `champion` and serves all of the endpoint's traffic."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import KILN_BIN, ROOT, free_port, wait_http

DOC = ROOT / "docs" / "quickstart.md"
SETUP = ("make run", "make venv", "make demo", "make build")


def script_of(md: str, url: str, work: Path) -> str:
    """Writes the page's files into work and returns its shell blocks as one script."""
    parts = re.split(r"(?ms)^```(\w*)\n(.*?)^```\n", md)
    lines = ["set -euo pipefail", f"cd {work}"]
    blocks = 0
    for i in range(1, len(parts), 3):
        lang, body, before = parts[i], parts[i + 1], parts[i - 1]
        saved = re.findall(r"Save [^.]*? as `([^`]+)`", before.strip().split("\n\n")[-1])
        if saved and lang in ("python", "yaml"):
            (work / saved[-1]).write_text(body)
            continue
        if lang != "sh" or any(s in body for s in SETUP):
            continue
        body = body.replace("http://127.0.0.1:5000", url)
        # "using the run id that `kiln pipeline runs` printed"
        body = body.replace("RUN_ID", "$(kiln pipeline runs churn-retrain -o json | python -c "
                                      "'import json,sys; print(json.load(sys.stdin)[\"runs\"][0][\"run_id\"])')")
        lines += [f"echo '>>> block {blocks}'", body]
        blocks += 1
    assert blocks >= 7, f"only {blocks} shell blocks found in {DOC}"
    return "\n".join(lines) + "\n"


def test_quickstart_runs_as_written(tmp_path):
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build`")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and not k.startswith("MLFLOW_")}
    srv = tmp_path / "server"
    srv.mkdir()
    log = open(srv / "kiln.log", "wb")
    proc = subprocess.Popen([KILN_BIN, "server", "--addr", f"127.0.0.1:{port}", "--grpc-addr", "",
                             "--db", f"sqlite://{srv}/kiln.db", "--artifacts", f"file://{srv}/artifacts",
                             "--model-cache", str(srv / "model-cache"), "--pipeline-work-dir", str(srv / "steps")],
                            env=env, stdout=log, stderr=log)
    try:
        wait_http(url + "/health", proc)
        work = tmp_path / "work"
        work.mkdir()
        (work / "run.sh").write_text(script_of(DOC.read_text(), url, work))
        venv_bin = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
        run_env = dict(env, KILN_URL=url, MLFLOW_TRACKING_URI=url,
                       PATH=f"{Path(KILN_BIN).parent}:{venv_bin}:{env['PATH']}")
        out = subprocess.run(["bash", str(work / "run.sh")], env=run_env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"quickstart failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
        api = lambda p: requests.get(f"{url}{p}", timeout=30).json()  # noqa: E731
        got = api("/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion")
        assert int(got.get("model_version", {}).get("version", 0)) == 2, (got, out.stdout[-3000:])
        runs = api("/api/v1/pipelines/churn-retrain/runs")["runs"]
        assert any(r["state"] == "succeeded" and r.get("created_by") == "trigger/churn-drift/data-drift" for r in runs), runs
        ep = api("/api/v1/endpoints/churn")
        live = [r for r in ep["status"]["routes"] if r.get("weight", 0) > 0]
        assert [(r["model"], r["version"]) for r in live] == [("churn", 2)], ep["status"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
