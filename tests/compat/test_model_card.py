"""Model cards with the real mlflow client: a run with params, metrics
(one per slice) and a dataset input, logged and registered with MLflow 3's
log_model, then the card fetched from Kiln's API as JSON, Markdown and HTML,
its text edited, and the edit seen by mlflow as version tags."""

import json

import mlflow
import pandas as pd
import requests
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def card_url(kiln, name, version):
    return f"{kiln.url}/api/v1/models/{name}/versions/{version}/card"


def test_model_card_from_mlflow_run(kiln, client, unique):
    X, y = load_iris(return_X_y=True, as_frame=True)
    name = f"card-{unique}"
    mlflow.set_experiment(f"card-exp-{unique}")
    model = LogisticRegression(max_iter=300, C=0.5).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_params({"max_iter": 300, "C": 0.5})
        mlflow.log_metric("train_acc", model.score(X, y))
        big = X["petal length (cm)"] > 4
        mlflow.log_metric("train_acc/slice/petal:long", model.score(X[big], y[big]))
        train = pd.concat([X, y.rename("target")], axis=1)
        mlflow.log_input(mlflow.data.from_pandas(train, name="iris-train", targets="target"), context="training")
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=X.head(3))
    version = int(info.registered_model_version)
    client.update_model_version(name, str(version), description="Iris species <classifier>.")

    r = requests.get(card_url(kiln, name, version), timeout=30)
    assert r.status_code == 200, r.text
    card = r.json()
    d, p = card["model_details"], card["model_parameters"]
    assert d["name"] == name and d["version"] == version and d["run_id"] == run.info.run_id
    assert d["model_id"] == info.model_id and d["description"] == "Iris species <classifier>."
    assert {"C": "0.5", "max_iter": "300"}.items() <= {q["name"]: q["value"] for q in p["params"]}.items()
    assert "sklearn" in p["flavors"] and "python_function" in p["flavors"], card.get("notes")
    assert [f["name"] for f in p["input_format"]] == list(X.columns)
    # An MLflow dataset input that is no Kiln dataset version.
    assert any(ds["name"] == "iris-train" and ds["via"] == "mlflow" and ds["context"] == "training" and ds["digest"]
               for ds in p["data"]), p["data"]
    metrics = {(m["type"], m.get("slice", "")): m for m in card["quantitative_analysis"]["performance_metrics"]}
    assert abs(metrics[("train_acc", "")]["value"] - model.score(X, y)) < 1e-9
    assert abs(metrics[("train_acc", "petal=long")]["value"] - model.score(X[big], y[big])) < 1e-9
    # MLflow 3's log_model links the run's metrics to the logged model: they
    # are the model's own, not repeated as the run's.
    assert metrics[("train_acc", "")]["source"] == "logged-model:" + info.model_id
    assert len(metrics) == len(card["quantitative_analysis"]["performance_metrics"]) == 2

    # Edit the text; mlflow sees it as version tags.
    edit = {"overview": "Classifies <script>alert(1)</script> irises.",
            "considerations": {"limitations": ["Three species only."], "ethical_considerations": ["None known."]}}
    r = requests.put(card_url(kiln, name, version), json=edit, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["considerations"]["limitations"] == ["Three species only."]
    tags = client.get_model_version(name, str(version)).tags
    assert json.loads(tags["kiln.card.limitations"]) == ["Three species only."]
    assert tags["kiln.card.overview"].startswith("Classifies")

    md = requests.get(card_url(kiln, name, version), params={"format": "markdown"}, timeout=30)
    assert md.status_code == 200 and md.headers["Content-Type"].startswith("text/markdown")
    for want in ("## Model details", "## Model parameters", "## Quantitative analysis", "## Considerations",
                 "- Three species only.", "| train_acc |", "| petal=long |"):
        assert want in md.text, md.text

    html = requests.get(card_url(kiln, name, version), headers={"Accept": "text/html"}, timeout=30)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "<script" not in html.text and "&lt;script&gt;" in html.text

    # Errors in Kiln's format.
    r = requests.get(card_url(kiln, name, version + 5), timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = requests.put(card_url(kiln, name, version), json={}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT"
