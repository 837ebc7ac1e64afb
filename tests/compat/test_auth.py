"""The real mlflow client against a kiln server with access control on:
HTTP Basic (MLFLOW_TRACKING_USERNAME/PASSWORD) and Bearer tokens
(MLFLOW_TRACKING_TOKEN), role checks answered in MLflow's error format,
revocation, and the audit trail of what the client did."""

from __future__ import annotations

import os
import subprocess

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import KILN_BIN, free_port, wait_http

ADMIN = ("admin", "admin-password-1")


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build`")
    tmp = tmp_path_factory.mktemp("auth")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and not k.startswith("MLFLOW_TRACKING_")}
    log = open(tmp / "kiln.log", "wb")
    proc = subprocess.Popen(
        [KILN_BIN, "server", "--addr", f"127.0.0.1:{port}", "--grpc-addr", "", "--auth", "on",
         "--admin-password", ADMIN[1], "--db", f"sqlite://{tmp}/kiln.db", "--artifacts", f"file://{tmp}/artifacts",
         "--model-cache", str(tmp / "model-cache"), "--no-pipelines"],
        env=env, stdout=log, stderr=log)
    wait_http(url + "/health", proc)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def as_user(monkeypatch, secured):
    """Sets the mlflow client's credentials: as_user(user, password) or
    as_user(token=...)."""
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(secured)
    mlflow.set_registry_uri(secured)

    def set_(user=None, password=None, token=None):
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(k, raising=False)
        if user:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        if token:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)

    yield set_
    set_()
    # The other suites share the session's server through the global URIs.
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def admin_api(url, method, path, **kw):
    r = requests.request(method, f"{url}/api/v1/{path}", auth=ADMIN, timeout=30, **kw)
    assert r.status_code < 300, (r.status_code, r.text)
    return r.json() if r.content else None


def test_anonymous_is_refused(secured, as_user):
    as_user()
    with pytest.raises(MlflowException) as e:
        mlflow.MlflowClient().search_experiments()
    assert "UNAUTHENTICATED" in str(e.value) or "401" in str(e.value)
    r = requests.get(f"{secured}/api/2.0/mlflow/experiments/search", timeout=10)
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"
    # Probes stay open.
    assert requests.get(f"{secured}/health", timeout=10).status_code == 200


def test_basic_and_bearer_with_roles(secured, as_user):
    admin_api(secured, "POST", "users", json={"name": "ada", "password": "ada-password-1"})
    admin_api(secured, "PUT", "workspaces/default/grants", json={"user": "ada", "role": "editor"})

    # An editor, by user name and password: the whole log_model +
    # registration flow, artifacts through the mlflow-artifacts proxy.
    as_user("ada", "ada-password-1")
    X, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_experiment("auth-basic")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("acc", 0.97)
        model = LogisticRegression(max_iter=200).fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-auth", input_example=X.head(2))
    client = mlflow.MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics["acc"] == 0.97
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict(X.head(3))) == list(model.predict(X.head(3)))
    # Moving an alias is a maintainer's: refused in MLflow's format.
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias("iris-auth", "champion", 1)
    assert e.value.error_code == "PERMISSION_DENIED"
    assert "maintainer" in e.value.message
    # A wrong password is refused.
    as_user("ada", "not-her-password")
    with pytest.raises(MlflowException):
        client.search_experiments()

    # The same editor by token (Bearer).
    tok = admin_api(secured, "POST", "tokens", json={"user": "ada", "name": "laptop", "ttl": "1h"})
    as_user(token=tok["secret"])
    with mlflow.start_run(experiment_id=run.info.experiment_id) as run2:
        mlflow.log_metric("acc", 0.5)
    runs = client.search_runs([run.info.experiment_id])
    assert {r.info.run_id for r in runs} >= {run.info.run_id, run2.info.run_id}
    # A read-only token cannot write.
    ro = admin_api(secured, "POST", "tokens", json={"user": "ada", "scope": "read"})
    as_user(token=ro["secret"])
    assert client.get_run(run2.info.run_id).info.run_id == run2.info.run_id
    with pytest.raises(MlflowException) as e:
        client.log_metric(run2.info.run_id, "acc", 0.1)
    assert e.value.error_code == "PERMISSION_DENIED"
    # Revoked: refused at once (this server).
    admin_api(secured, "DELETE", f"tokens/{tok['token']['token_id']}")
    as_user(token=tok["secret"])
    with pytest.raises(MlflowException) as e:
        client.get_run(run.info.run_id)
    assert e.value.error_code == "UNAUTHENTICATED"

    # The maintainer the admin makes her can move the alias.
    admin_api(secured, "PUT", "workspaces/default/grants", json={"user": "ada", "role": "maintainer"})
    as_user("ada", "ada-password-1")
    client.set_registered_model_alias("iris-auth", "champion", 1)
    assert client.get_model_version_by_alias("iris-auth", "champion").version == "1"

    # Everything she did is in the audit log, with the refusals, and the
    # chain holds.
    events = admin_api(secured, "GET", "audit?actor=ada&limit=10000")["events"]
    actions = {(e["action"], e["status"]) for e in events}
    assert ("POST /api/2.0/mlflow/runs/create", 200) in actions
    assert ("POST /api/2.0/mlflow/registered-models/alias", 403) in actions
    assert ("POST /api/2.0/mlflow/registered-models/alias", 200) in actions
    assert any(a.startswith("PUT /api/2.0/mlflow-artifacts/artifacts") for a, _ in actions)
    v = admin_api(secured, "GET", "audit/verify")
    assert v["ok"] and v["events"] >= len(events)


def test_dataset_version_is_by_the_signed_in_user(secured, tmp_path):
    """`kiln data add` sends the local $USER as created_by; with access
    control on, the version records the user who signed the request."""
    admin_api(secured, "POST", "users", json={"name": "ci-bot", "password": "ci-bot-password-1"})
    admin_api(secured, "PUT", "workspaces/default/grants", json={"user": "ci-bot", "role": "editor"})
    data = tmp_path / "d"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and not k.startswith("MLFLOW_TRACKING_")}
    env.update(KILN_URL=secured, MLFLOW_TRACKING_USERNAME="ci-bot", MLFLOW_TRACKING_PASSWORD="ci-bot-password-1", USER="mallory")
    out = subprocess.run([KILN_BIN, "data", "add", "by-whom", str(data)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    v = admin_api(secured, "GET", "datasets/by-whom/versions/1")
    v = v.get("version", v)
    assert v["created_by"] == "ci-bot", v
