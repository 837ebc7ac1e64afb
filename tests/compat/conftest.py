"""Fixtures that start a freshly built `kiln server` for the MLflow client,
and `kiln serve` for the inference clients (`serve_model`).

The `kiln` fixture is parametrised over storage backends:

* ``sqlite-file``: SQLite metadata + local-folder artifacts (always);
* ``postgres-s3``: PostgreSQL metadata (``KILN_TEST_POSTGRES``, a URL of a
  server where we may create databases) + artifacts in a real S3-compatible
  server (versitygw, started here from ``$PATH``).

With ``CI=true`` a missing PostgreSQL or versitygw fails the run instead of
skipping the backend.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
KILN_BIN = os.environ.get("KILN_BIN", str(ROOT / "bin" / "kiln"))
IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def need(what: str, how: str):
    if IN_CI:
        pytest.fail(f"{what} is required in CI: {how}")
    pytest.skip(f"{what} not available: {how}")


@dataclass
class Kiln:
    """A running kiln server and how to reach and restart it."""

    url: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    backend: str = ""
    extra: dict = field(default_factory=dict)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([KILN_BIN, *self.args], env=self.env, stdout=log, stderr=log)
        wait_http(self.url + "/health", self.proc)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/api/2.0/mlflow/{path}", timeout=60, **kw)


def start_versitygw(tmp: Path) -> tuple[str, subprocess.Popen]:
    exe = shutil.which("versitygw") or str(Path(os.environ.get("GOPATH", Path.home() / "go")) / "bin" / "versitygw")
    if not os.path.exists(exe):
        need("versitygw", "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
    data = tmp / "s3data"
    data.mkdir()
    port = free_port()
    env = dict(os.environ, ROOT_ACCESS_KEY="kilntest", ROOT_SECRET_KEY="kilntestsecret")
    log = open(tmp / "versitygw.log", "wb")
    proc = subprocess.Popen(
        [exe, "--port", f"127.0.0.1:{port}", "posix", str(data)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url, proc)
    return url, proc


def _pg_exec(admin_url: str, sql: str) -> None:
    subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)


def _pg_with_db(admin_url: str, name: str) -> str:
    base, _, query = admin_url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session", params=["sqlite-file", "postgres-s3"])
def kiln(request, tmp_path_factory):
    """A running kiln server; mlflow's tracking URI points at it."""
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build`")
    backend = request.param
    tmp = tmp_path_factory.mktemp(backend)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    grpc_port = free_port()
    args = ["server", "--addr", f"127.0.0.1:{port}", "--grpc-addr", f"127.0.0.1:{grpc_port}",
            "--model-cache", str(tmp / "model-cache")]
    procs: list[subprocess.Popen] = []
    extra: dict = {"grpc": f"127.0.0.1:{grpc_port}", "host": f"127.0.0.1:{port}"}
    if backend == "sqlite-file":
        args += ["--db", f"sqlite://{tmp}/kiln.db", "--artifacts", f"file://{tmp}/artifacts"]
        extra["artifact_dir"] = tmp / "artifacts"
    else:
        pg = os.environ.get("KILN_TEST_POSTGRES")
        if not pg:
            need("PostgreSQL", "set KILN_TEST_POSTGRES (make test starts one with scripts/postgres.sh)")
        dbname = "kiln_compat_" + uuid.uuid4().hex[:8]
        _pg_exec(pg, f"CREATE DATABASE {dbname}")
        s3url, s3proc = start_versitygw(tmp)
        procs.append(s3proc)
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=s3url,
            aws_access_key_id="kilntest",
            aws_secret_access_key="kilntestsecret",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="kiln-artifacts")
        extra["s3"] = s3
        env.update(AWS_ACCESS_KEY_ID="kilntest", AWS_SECRET_ACCESS_KEY="kilntestsecret")
        args += [
            "--db", _pg_with_db(pg, dbname),
            "--artifacts", "s3://kiln-artifacts/mlflow",
            "--s3-endpoint", s3url, "--s3-path-style", "--s3-region", "us-east-1",
        ]
    k = Kiln(url=url, args=args, env=env, log=tmp / "kiln.log", backend=backend, extra=extra)
    k.start()
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    yield k
    k.stop()
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


@pytest.fixture
def client(kiln):
    mlflow.set_tracking_uri(kiln.url)
    mlflow.set_registry_uri(kiln.url)
    return mlflow.MlflowClient(kiln.url, kiln.url)


@pytest.fixture
def unique():
    """A short unique suffix for names, so tests can share one server."""
    return uuid.uuid4().hex[:8]


@dataclass
class KilnServe:
    """A running `kiln serve MODEL_URI`: its REST and gRPC addresses."""

    url: str  # http://127.0.0.1:PORT
    grpc: str  # 127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT (tritonclient.http's url)
    name: str  # the model name clients use
    log: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_kiln_serve(uri: str, log: Path, *, name: str | None = None, env: dict | None = None,
                     args: tuple[str, ...] = (), timeout: float = 60) -> KilnServe:
    """Starts `kiln serve uri` on free loopback ports and waits until /ping answers 200."""
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build`")
    port, gport = free_port(), free_port()
    cmd = [KILN_BIN, "serve", uri, "--addr", f"127.0.0.1:{port}", "--grpc-addr", f"127.0.0.1:{gport}", *args]
    if name:
        cmd += ["--name", name]
    base = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and k != "MLFLOW_TRACKING_URI"}
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, env={**base, **(env or {})}, stdout=f, stderr=f)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"kiln serve {uri} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if requests.get(url + "/ping", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"kiln serve {uri} did not become ready within {timeout}s")
        time.sleep(0.05)
    index = requests.post(url + "/v2/repository/index", json={}, timeout=5)
    index.raise_for_status()
    return KilnServe(url=url, grpc=f"127.0.0.1:{gport}", host=f"127.0.0.1:{port}",
                     name=name or index.json()[0]["name"], log=log, proc=proc)


@pytest.fixture(scope="module")
def serve_model(tmp_path_factory):
    """A function that starts `kiln serve` for a model URI (a path, runs:/,
    models:/); every server it started is stopped when the module ends."""
    started: list[KilnServe] = []
    tmp = tmp_path_factory.mktemp("serve")

    def start(uri: str, env: dict | None = None, **kw) -> KilnServe:
        # Models downloaded from a tracking server are cached here, not in ~/.cache.
        env = {"XDG_CACHE_HOME": str(tmp / "cache"), **(env or {})}
        s = start_kiln_serve(uri, tmp / f"serve-{len(started)}.log", env=env, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
