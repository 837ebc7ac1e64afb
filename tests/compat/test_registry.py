"""The MLflow 3 log_model + registration flow, aliases and the registry
search calls, with the real client, scikit-learn and pyfunc."""

import numpy as np
import pytest
import mlflow
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_sklearn_log_model_register_alias_load(kiln, client, iris, unique):
    X, y = iris
    name = f"iris-{unique}"
    mlflow.set_experiment(f"iris-exp-{unique}")
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 500)
        mlflow.log_metric("train_acc", model.score(X, y))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=X.head(3))
    assert info.model_id.startswith("m-")
    assert int(info.registered_model_version) == 1

    lm = client.get_logged_model(info.model_id)
    assert lm.status == "READY" or str(lm.status).endswith("READY")
    assert lm.source_run_id == run.info.run_id
    assert lm.params.get("max_iter") == "500"

    mv = client.get_model_version(name, "1")
    assert mv.status == "READY" and mv.run_id == run.info.run_id
    assert mv.source == f"models:/{info.model_id}"

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    # A second version; the alias moves; the old version stays loadable.
    model2 = LogisticRegression(max_iter=500, C=0.01).fit(X, y)
    with mlflow.start_run():
        info2 = mlflow.sklearn.log_model(model2, name="model", registered_model_name=name)
    assert int(info2.registered_model_version) == 2
    client.set_registered_model_alias(name, "champion", "2")
    loaded2 = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(loaded2.predict(X), model2.predict(X))
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X), model.predict(X))
    rm = client.get_registered_model(name)
    assert rm.aliases == {"champion": "2"}


def test_legacy_run_artifact_source(client, iris, unique):
    """MLflow 2-style registration: source is the run's artifact path."""
    X, y = iris
    name = f"legacy-{unique}"
    model = LogisticRegression(max_iter=300).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="m")
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/m", run_id=run.info.run_id)
    assert mv.version == "1"
    assert client.get_model_version_download_uri(name, "1")


def test_registry_search_and_stages(client, unique):
    names = [f"reg-{unique}-{c}" for c in "abc"]
    for n in names:
        client.create_registered_model(n, tags={"team": "risk" if n.endswith("a") else "ops"}, description=f"desc {n}")
    client.update_registered_model(names[0], description="updated")
    assert client.get_registered_model(names[0]).description == "updated"
    found = client.search_registered_models(filter_string=f"name LIKE 'reg-{unique}-%'", order_by=["name DESC"])
    assert [m.name for m in found] == names[::-1]
    by_tag = client.search_registered_models(filter_string=f"name LIKE 'reg-{unique}-%' AND tags.team = 'risk'")
    assert [m.name for m in by_tag] == [names[0]]
    page1 = client.search_registered_models(filter_string=f"name LIKE 'reg-{unique}-%'", max_results=2, order_by=["name ASC"])
    assert [m.name for m in page1] == names[:2] and page1.token
    page2 = client.search_registered_models(filter_string=f"name LIKE 'reg-{unique}-%'", max_results=2, order_by=["name ASC"], page_token=page1.token)
    assert [m.name for m in page2] == names[2:]

    rid = client.create_run("0").info.run_id
    for _ in range(3):
        client.create_model_version(names[1], f"runs:/{rid}/model", run_id=rid)
    versions = client.search_model_versions(f"name = '{names[1]}'")
    assert sorted(v.version for v in versions) == ["1", "2", "3"]
    assert {v.version for v in client.search_model_versions(f"run_id = '{rid}'")} == {"1", "2", "3"}

    client.transition_model_version_stage(names[1], "1", "Production")
    client.transition_model_version_stage(names[1], "2", "Production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{names[1]}'")}
    assert stages == {"1": "Archived", "2": "Production", "3": "None"}
    latest = {v.current_stage: v.version for v in client.get_latest_versions(names[1])}
    assert latest["Production"] == "2" and latest["None"] == "3"

    client.set_model_version_tag(names[1], "3", "validated", "yes")
    assert client.get_model_version(names[1], "3").tags == {"validated": "yes"}
    client.delete_model_version_tag(names[1], "3", "validated")
    assert client.get_model_version(names[1], "3").tags == {}

    client.rename_registered_model(names[2], names[2] + "-new")
    assert client.get_registered_model(names[2] + "-new").name == names[2] + "-new"
    client.delete_model_version(names[1], "3")
    assert {v.version for v in client.search_model_versions(f"name = '{names[1]}'")} == {"1", "2"}
    client.delete_registered_model(names[0])
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(names[0])
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("alias", ["latest", "v12", "bad alias!"])
def test_bad_aliases_rejected(client, unique, alias):
    name = f"alias-{unique}"
    client.create_registered_model(name)
    rid = client.create_run("0").info.run_id
    client.create_model_version(name, f"runs:/{rid}/model", run_id=rid)
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, alias, "1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
