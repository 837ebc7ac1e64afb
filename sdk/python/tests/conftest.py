"""Fixtures of the kiln client's tests: a live `kiln server` (the freshly
built bin/kiln, or $KILN_BIN; a missing binary fails, never skips) on free
loopback ports with SQLite and a local artifact folder; the mlflow client
pointed at it; a second server with access control on; and a tiny ONNX
classifier logged with mlflow, registered and deployed as an endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))  # this checkout's package, installed or not

import kiln  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
KILN_BIN = os.environ.get("KILN_BIN", str(ROOT / "bin" / "kiln"))
FEATURES = ["f0", "f1", "f2", "f3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running kiln server and its files."""

    url: str
    tmp: Path
    log: Path
    env: dict
    proc: subprocess.Popen

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        """Runs `kiln ARGS --server URL`."""
        res = subprocess.run([KILN_BIN, *args, "--server", self.url], env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kiln {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
        return res

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(tmp: Path, *extra: str) -> Server:
    """Starts `kiln server` on free loopback ports with its files under tmp
    and waits for /health."""
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build` (go build -o bin/kiln ./cmd/kiln)")
    port, grpc = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KILN_", "MLFLOW_TRACKING_", "MLFLOW_REGISTRY_"))}
    env["KILN_CACHE_DIR"] = str(tmp / "cli-cache")
    log = tmp / "kiln.log"
    args = [KILN_BIN, "server", "--addr", f"127.0.0.1:{port}", "--grpc-addr", f"127.0.0.1:{grpc}",
            "--db", f"sqlite://{tmp}/kiln.db", "--artifacts", f"file://{tmp}/artifacts",
            "--model-cache", str(tmp / "model-cache"), "--pipeline-work-dir", str(tmp / "pipeline-work"), *extra]
    with open(log, "ab") as f:
        proc = subprocess.Popen(args, env=env, stdout=f, stderr=f)
    srv = Server(url=url, tmp=tmp, log=log, env=env, proc=proc)
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"kiln server exited with {proc.returncode}:\n{srv.logs()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return srv
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"kiln server did not answer /health within 30s:\n{srv.logs()}")
        time.sleep(0.05)


def stop_server(srv: Server) -> None:
    srv.proc.terminate()
    try:
        srv.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """The server most tests share: access control off (it listens on loopback)."""
    srv = start_server(tmp_path_factory.mktemp("kiln-sdk"))
    import mlflow

    mlflow.set_tracking_uri(srv.url)
    mlflow.set_registry_uri(srv.url)
    yield srv
    stop_server(srv)


ADMIN_PASSWORD = "sdk-admin-pass-1"


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory) -> Server:
    """A second server with access control on; its user "admin" has
    ADMIN_PASSWORD (srv.cli signs in as admin)."""
    srv = start_server(tmp_path_factory.mktemp("kiln-auth"), "--auth", "on", "--admin-password", ADMIN_PASSWORD)
    srv.env.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)  # for srv.cli
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def client(server) -> kiln.Client:
    """A client of the server with no credentials (access control is off on loopback)."""
    return kiln.Client(server.url, token="", workspace="")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Model:
    """A registered ONNX classifier (two versions) and the data it was
    trained on; pipe is version 1's scikit-learn model."""

    name: str
    train: "object"  # pandas DataFrame of FEATURES
    y: "object"  # numpy array of 0/1
    pipe: "object"  # the fitted scikit-learn model
    run_id: str
    dataset: str  # the training table (with column y) as a dataset version name@1


def make_data(rng, n: int):
    import numpy as np
    import pandas as pd

    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] - 0.7 * x[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
    return pd.DataFrame(x.astype(np.float32), columns=FEATURES), y


@pytest.fixture(scope="session")
def model(server, client, tmp_path_factory) -> Model:
    """Two versions of a logistic regression converted with skl2onnx and
    logged with mlflow.onnx (as tests/compat does); the run records its
    training table, added through the SDK, as an MLflow dataset input."""
    import mlflow
    import mlflow.onnx
    import numpy as np
    from mlflow.models import infer_signature
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    u = uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(7)
    train, y = make_data(rng, 400)
    table = train.assign(y=y)
    table.to_csv(tmp / "train.csv", index=False)
    ds = f"sdk-train-{u}"
    client.datasets.add(ds, tmp / "train.csv", description="training table")
    name = f"sdk-model-{u}"
    mlflow.set_experiment(f"sdk-{u}")
    run_id, pipes = "", []
    for c in (1.0, 0.01):
        pipe = LogisticRegression(C=c, max_iter=500).fit(train, y)
        onx = convert_sklearn(pipe, initial_types=[("input", FloatTensorType([None, 4]))],
                              target_opset={"": 17, "ai.onnx.ml": 3}, options={id(pipe): {"zipmap": False}})
        with mlflow.start_run() as run:
            if not run_id:
                run_id = run.info.run_id
                mlflow.log_input(client.datasets.mlflow_dataset(f"{ds}@1", table, targets="y"), context="training")
            mlflow.onnx.log_model(onx, name="model", signature=infer_signature(train, pipe.predict(train)),
                                  pip_requirements=["onnx", "onnxruntime"], registered_model_name=name)
        pipes.append(pipe)
    return Model(name=name, train=train, y=y, pipe=pipes[0], run_id=run_id, dataset=f"{ds}@1")


@pytest.fixture(scope="session")
def endpoint(client, model) -> str:
    """An endpoint serving version 1 of the model, every request logged."""
    ep = f"sdk-ep-{uuid.uuid4().hex[:8]}"
    doc = client.endpoints.document(ep, model.name, version=1, logging={"mode": "all"})
    res = client.endpoints.apply(doc)
    assert res.created and res.changed, res
    client.endpoints.wait_ready(ep, timeout=120)
    return ep
