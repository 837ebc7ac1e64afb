"""Error cases: the client sees MLflow's error codes, and raw bad input gets
MLflow-style 4xx errors, never a 500."""

import pytest
import requests
from mlflow.exceptions import MlflowException


def test_missing_experiment(client):
    with pytest.raises(MlflowException) as e:
        client.get_experiment("987654321")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name("no-such-experiment-anywhere") is None


def test_duplicate_experiment_and_model(client, unique):
    client.create_experiment(f"dup-{unique}")
    with pytest.raises(MlflowException) as e:
        client.create_experiment(f"dup-{unique}")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    client.create_registered_model(f"dupm-{unique}")
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(f"dupm-{unique}")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_bad_run_id(client):
    with pytest.raises(MlflowException) as e:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.log_metric("0123456789abcdef0123456789abcdef", "m", 1.0)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("POST", "runs/log-batch", {"data": "{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "runs/log-batch", {"json": {"run_id": 42, "metrics": "nope"}}),
        ("POST", "runs/log-metric", {"json": {"run_id": "x", "key": "k", "value": "abc", "timestamp": 1}}),
        ("POST", "experiments/create", {"json": {}}),
        ("POST", "experiments/create", {"json": {"name": 123}}),
        ("POST", "runs/create", {"data": "{}", "headers": {"Content-Type": "text/plain"}}),
        ("GET", "runs/get", {"params": {"run_id": "nope"}}),
        ("GET", "experiments/get", {"params": {"experiment_id": "not-a-number"}}),
        ("POST", "runs/search", {"json": {"experiment_ids": ["0"], "filter": "metrics.x >"}}),
        ("POST", "runs/search", {"json": {"experiment_ids": ["0"], "max_results": 50001}}),
        ("POST", "registered-models/create", {"json": {"name": ""}}),
        ("GET", "registered-models/get", {"params": {"name": "missing-model-xyz"}}),
        ("POST", "model-versions/create", {"json": {"name": "missing-model-xyz", "source": "/tmp/x"}}),
        ("POST", "runs/log-batch", {"data": b'{"run_id":"' + b"a" * (33 << 20) + b'"}', "headers": {"Content-Type": "application/json"}}),
    ],
)
def test_bad_input_is_4xx(kiln, method, path, kwargs):
    r = kiln.api(method, path, **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) >= {"error_code", "message"}
    assert body["error_code"] in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_DOES_NOT_EXIST"}


def test_unknown_endpoint(kiln):
    r = requests.get(f"{kiln.url}/api/2.0/mlflow/no/such/thing", timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_version_and_health(kiln):
    assert requests.get(f"{kiln.url}/health", timeout=5).text == "OK"
    v = requests.get(f"{kiln.url}/version", timeout=5).text
    assert v.startswith("3.")
