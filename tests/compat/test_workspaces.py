"""Workspaces as namespaces with the real mlflow client: tokens bound to a
workspace (the mlflow client cannot send X-Kiln-Workspace), what one
workspace made is not found from another, and `kiln model copy` promotes a
version that the mlflow client then loads and predicts with in the other
workspace."""

from __future__ import annotations

import os
import subprocess

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import KILN_BIN
from test_auth import admin_api, as_user, secured  # noqa: F401  (fixtures)


def kiln(url: str, *args: str, user: str, password: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "MLFLOW_"))}
    env.update(KILN_URL=url, MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)
    return subprocess.run([KILN_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def test_workspaces_isolate_and_copy(secured, as_user):  # noqa: F811
    url = secured
    for ws in ("dev", "prod"):
        admin_api(url, "POST", "workspaces", json={"name": ws})
    for user in ("pat", "dan"):
        admin_api(url, "POST", "users", json={"name": user, "password": f"{user}-password-1"})
        admin_api(url, "PUT", "workspaces/dev/grants", json={"user": user, "role": "editor"})
    admin_api(url, "PUT", "workspaces/prod/grants", json={"user": "pat", "role": "maintainer"})  # aliases need maintainer
    tok = {ws: admin_api(url, "POST", "tokens", json={"user": "pat", "workspace": ws, "ttl": "1h"})["secret"] for ws in ("dev", "prod")}

    # In dev, with a token bound to it: an experiment, a run, a registered model.
    as_user(token=tok["dev"])
    X, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_experiment("ws-churn-exp")
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=200).fit(X, y)
        mlflow.sklearn.log_model(model, name="model", registered_model_name="ws-churn", input_example=X.head(2))
    client = mlflow.MlflowClient()
    assert client.get_model_version("ws-churn", "1").run_id == run.info.run_id

    # From prod it does not exist: not listed, not found by name or id.
    as_user(token=tok["prod"])
    assert "ws-churn" not in {m.name for m in client.search_registered_models()}
    assert client.get_experiment_by_name("ws-churn-exp") is None
    for call in (lambda: client.get_registered_model("ws-churn"), lambda: client.get_run(run.info.run_id)):
        with pytest.raises(MlflowException) as e:
            call()
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST", e.value
    # Registered model and experiment names are per workspace: prod has a
    # ws-churn-exp and registers a ws-churn of its own.
    prod_exp = mlflow.set_experiment("ws-churn-exp")
    assert prod_exp.name == "ws-churn-exp" and prod_exp.experiment_id != run.info.experiment_id
    with mlflow.start_run() as prod_run:
        prod_model = LogisticRegression(max_iter=200, C=0.01).fit(X, y)
        info = mlflow.sklearn.log_model(prod_model, name="model", input_example=X.head(2))
    pmv = mlflow.register_model(info.model_uri, "ws-churn")
    assert (pmv.name, pmv.version) == ("ws-churn", "1"), pmv
    assert client.get_model_version("ws-churn", "1").run_id == prod_run.info.run_id
    assert [m.name for m in client.search_registered_models(filter_string="name = 'ws-churn'")] == ["ws-churn"]
    assert [(v.name, v.version) for v in client.search_model_versions("name = 'ws-churn'")] == [("ws-churn", "1")]
    client.set_registered_model_alias("ws-churn", "champion", "1")
    assert client.get_model_version_by_alias("ws-churn", "champion").run_id == prod_run.info.run_id
    with pytest.raises(MlflowException) as e:
        client.create_registered_model("ws-churn")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS", e.value
    assert [e.experiment_id for e in client.search_experiments(filter_string="name = 'ws-churn-exp'")] == [prod_exp.experiment_id]
    # dev's are untouched: its experiment, and its model of dev's run.
    as_user(token=tok["dev"])
    assert client.get_experiment_by_name("ws-churn-exp").experiment_id == run.info.experiment_id
    assert client.get_model_version("ws-churn", "1").run_id == run.info.run_id
    assert [v.version for v in client.search_model_versions("name = 'ws-churn'")] == ["1"]
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias("ws-churn", "champion")
    as_user(token=tok["prod"])

    # dan edits only dev: his copy to prod is refused, and nothing appears there.
    p = kiln(url, "model", "copy", "ws-churn/1", "--workspace", "dev", "--to-workspace", "prod", "--name", "ws-churn-prod",
             user="dan", password="dan-password-1")
    assert p.returncode != 0 and "prod" in p.stderr, (p.stdout, p.stderr)
    assert "ws-churn-prod" not in {m.name for m in client.search_registered_models()}

    # pat, an editor of both, promotes it.
    p = kiln(url, "model", "copy", "ws-churn/1", "--workspace", "dev", "--to-workspace", "prod", "--name", "ws-churn-prod",
             "-o", "json", user="pat", password="pat-password-1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    mv = client.get_model_version("ws-churn-prod", "1")
    assert mv.tags.get("kiln.copied_from") == "dev:ws-churn/1", mv.tags
    assert mv.run_id == run.info.run_id
    loaded = mlflow.pyfunc.load_model("models:/ws-churn-prod/1")
    assert list(loaded.predict(X.head(5))) == list(model.predict(X.head(5)))
    # A copy without --name keeps the name: dev's ws-churn/1 becomes
    # version 2 of prod's ws-churn.
    p = kiln(url, "model", "copy", "ws-churn/1", "--workspace", "dev", "--to", "prod", "-o", "json",
             user="pat", password="pat-password-1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    mv = client.get_model_version("ws-churn", "2")
    assert mv.tags.get("kiln.copied_from") == "dev:ws-churn/1", mv.tags
    assert mv.run_id == run.info.run_id
    assert list(mlflow.pyfunc.load_model("models:/ws-churn/2").predict(X.head(5))) == list(model.predict(X.head(5)))
    assert list(mlflow.pyfunc.load_model("models:/ws-churn@champion").predict(X.head(5))) == list(prod_model.predict(X.head(5)))
    # MLflow's copy_model_version names the source as models:/ws-churn/1:
    # prod's version 1, not dev's.
    cp = client.copy_model_version("models:/ws-churn/1", "ws-churn-copy")
    assert (cp.name, cp.version) == ("ws-churn-copy", "1"), cp
    assert list(mlflow.pyfunc.load_model("models:/ws-churn-copy/1").predict(X.head(5))) == list(prod_model.predict(X.head(5)))
    # And dev does not see prod's copies.
    as_user(token=tok["dev"])
    assert "ws-churn-prod" not in {m.name for m in client.search_registered_models()}
    assert [v.version for v in client.search_model_versions("name = 'ws-churn'")] == ["1"]
