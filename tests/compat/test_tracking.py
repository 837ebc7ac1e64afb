"""Experiments, runs, params, metrics, tags, batches and search through the
real MLflow client against kiln."""

import math
import time

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def test_default_experiment_exists(client):
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert exp.lifecycle_stage == "active"


def test_experiment_lifecycle(client, unique):
    name = f"exp-{unique}"
    exp_id = client.create_experiment(name, tags={"team": "fraud"})
    exp = client.get_experiment(exp_id)
    assert exp.name == name
    assert exp.tags["team"] == "fraud"
    assert exp.artifact_location.endswith(f"/{exp_id}")
    assert client.get_experiment_by_name(name).experiment_id == exp_id

    client.set_experiment_tag(exp_id, "stage", "dev")
    client.delete_experiment_tag(exp_id, "team")
    tags = client.get_experiment(exp_id).tags
    assert tags.get("stage") == "dev" and "team" not in tags

    client.rename_experiment(exp_id, name + "-renamed")
    assert client.get_experiment(exp_id).name == name + "-renamed"

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    active = client.search_experiments(filter_string=f"name = '{name}-renamed'")
    assert active == []
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{name}-renamed'")
    assert [e.experiment_id for e in deleted] == [exp_id]
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_search_experiments_paging(client, unique):
    ids = [client.create_experiment(f"page-{unique}-{i}") for i in range(7)]
    seen, token = [], None
    while True:
        page = client.search_experiments(
            max_results=3, page_token=token, filter_string=f"name LIKE 'page-{unique}-%'", order_by=["name ASC"]
        )
        seen += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    assert seen == ids


def test_nested_runs_params_metrics_tags(kiln, unique):
    mlflow.set_experiment(f"nested-{unique}")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"l1_ratio": "0.1", "solver": "saga"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("owner", "ana")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.9)
    client = mlflow.MlflowClient()
    p = client.get_run(parent.info.run_id)
    c = client.get_run(child.info.run_id)
    assert p.info.status == "FINISHED" and p.info.end_time >= p.info.start_time
    assert p.info.run_name == "parent"
    assert p.data.params == {"alpha": "0.5", "l1_ratio": "0.1", "solver": "saga"}
    assert p.data.metrics["loss"] == pytest.approx(0.2)  # latest step
    assert p.data.tags["owner"] == "ana"
    assert c.data.tags["mlflow.parentRunId"] == parent.info.run_id
    hist = client.get_metric_history(parent.info.run_id, "loss")
    assert [m.step for m in hist] == [0, 1, 2, 3, 4]
    assert [m.value for m in hist] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    children = client.search_runs(
        [p.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert [r.info.run_id for r in children] == [child.info.run_id]


def test_params_write_once_tags_last_wins(client):
    run = client.create_run("0")
    rid = run.info.run_id
    client.log_param(rid, "lr", "0.1")
    client.log_param(rid, "lr", "0.1")  # same value: idempotent
    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "lr", "0.2")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    client.log_batch(rid, tags=[RunTag("t", "1"), RunTag("t", "2")])
    client.set_tag(rid, "t2", "x")
    client.delete_tag(rid, "t2")
    data = client.get_run(rid).data
    assert data.params["lr"] == "0.1"
    assert data.tags["t"] == "2"
    assert "t2" not in data.tags


def test_log_batch_at_limits(client):
    rid = client.create_run("0").info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"m{i}", float(i), now, 0) for i in range(1000)]
    client.log_batch(rid, metrics=metrics)
    params = [Param(f"p{i}", "v" * 6000) for i in range(100)]
    tags = [RunTag(f"t{i}", "w" * 8000) for i in range(100)]
    client.log_batch(rid, params=params, tags=tags)
    data = client.get_run(rid).data
    assert len(data.metrics) == 1000 and data.metrics["m999"] == 999.0
    assert len(data.params) == 100 and data.params["p0"] == "v" * 6000
    assert data.tags["t99"] == "w" * 8000
    # The client splits a batch larger than the server's limits.
    client.log_batch(rid, metrics=[Metric("big", float(i), now + i, i) for i in range(2500)])
    assert len(client.get_metric_history(rid, "big")) == 2500


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"metrics": [{"key": f"m{i}", "value": 1.0, "timestamp": 1, "step": 0} for i in range(1001)]}, "metrics"),
        ({"params": [{"key": f"p{i}", "value": "x"} for i in range(101)]}, "params"),
        ({"tags": [{"key": f"t{i}", "value": "x"} for i in range(101)]}, "tags"),
        ({"params": [{"key": "p", "value": "x" * 6001}]}, "p"),
        ({"tags": [{"key": "t", "value": "x" * 8001}]}, "t"),
        ({"metrics": [{"key": "bad/../key", "value": 1.0, "timestamp": 1}]}, "bad/../key"),
    ],
)
def test_log_batch_over_limits(kiln, client, body, needle):
    rid = client.create_run("0").info.run_id
    r = kiln.api("POST", "runs/log-batch", json={"run_id": rid, **body})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert needle in r.json()["message"]
    assert client.get_run(rid).data.metrics == {}  # nothing half-written


def test_nan_and_inf_metrics(client):
    rid = client.create_run("0").info.run_id
    client.log_metric(rid, "n", float("nan"))
    client.log_metric(rid, "i", float("inf"))
    m = client.get_run(rid).data.metrics
    assert math.isnan(m["n"]) and math.isinf(m["i"])


def test_search_runs_compound_order_paging(client, unique):
    exp_id = client.create_experiment(f"search-{unique}")
    ids = {}
    for i in range(12):
        run = client.create_run(exp_id, run_name=f"r{i:02d}", tags={"family": "gbm" if i % 2 else "linear"})
        rid = run.info.run_id
        ids[i] = rid
        client.log_batch(
            rid,
            metrics=[Metric("rmse", 10.0 - i, 0, 0), Metric("rmse", 100.0, 1, 0)] if i == 0 else [Metric("rmse", 10.0 - i, 0, 0)],
            params=[Param("depth", str(i % 4)), Param("model", "XGBoost" if i % 3 == 0 else "lgbm")],
        )
        client.set_terminated(rid, "FINISHED" if i < 10 else "FAILED")

    def search(flt, order=None, **kw):
        return [r.info.run_id for r in client.search_runs([exp_id], flt, order_by=order, **kw)]

    # Metric comparisons use the latest value: run 0's latest rmse is 100 (timestamp 1).
    assert search("metrics.rmse > 9") == [ids[0]]
    got = search("metrics.rmse <= 5 and params.depth = '1' and tags.family = 'gbm'", ["metrics.rmse ASC"])
    assert got == [ids[9], ids[5]]
    assert search("params.model LIKE 'XG%'", ["attributes.run_name ASC"]) == [ids[0], ids[3], ids[6], ids[9]]
    assert search("params.model LIKE 'xg%'") == []  # LIKE is case-sensitive
    assert len(search("params.model ILIKE 'xg%'")) == 4
    assert set(search("attributes.status = 'FAILED'")) == {ids[10], ids[11]}
    assert search(f"attributes.run_id IN ('{ids[1]}', '{ids[2]}')", ["metrics.rmse DESC"]) == [ids[1], ids[2]]
    assert search("attributes.run_name = 'r07'") == [ids[7]]
    assert set(search("metrics.rmse <= 0 and metrics.rmse >= -1")) == {ids[10], ids[11]}
    # Ordering by a param; then paging stitches to the full ordered list.
    full = search("", ["params.depth DESC", "attributes.run_name ASC"])
    assert len(full) == 12
    paged, token = [], None
    while True:
        page = client.search_runs([exp_id], "", order_by=["params.depth DESC", "attributes.run_name ASC"], max_results=5, page_token=token)
        paged += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert paged == full
    with pytest.raises(MlflowException) as e:
        client.search_runs([exp_id], "metrics.rmse > 1 OR metrics.rmse < 0")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_deleted_runs_view_type(client):
    rid = client.create_run("0").info.run_id
    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    active = {r.info.run_id for r in client.search_runs(["0"], f"attributes.run_id = '{rid}'")}
    deleted = {r.info.run_id for r in client.search_runs(["0"], f"attributes.run_id = '{rid}'", run_view_type=ViewType.DELETED_ONLY)}
    assert rid not in active and rid in deleted
    client.restore_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "active"


def test_log_inputs_datasets(client):
    import pandas as pd

    rid = client.create_run("0").info.run_id
    ds = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2], "b": [3, 4]}), name="train-v1", source="s3://b/train.csv")
    client.log_inputs(rid, [mlflow.entities.DatasetInput(ds._to_mlflow_entity(), [mlflow.entities.InputTag("mlflow.data.context", "training")])])
    run = client.get_run(rid)
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["train-v1"]
    found = client.search_runs(["0"], "datasets.name = 'train-v1' and datasets.context = 'training'")
    assert rid in [r.info.run_id for r in found]
