"""Train a wine classifier and track it with MLflow.

A typical MLflow training script, as it would run against an MLflow
tracking server: nothing in it knows about Kiln. The tracking server comes
from the environment (MLFLOW_TRACKING_URI), as MLflow reads it.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python train.py
"""

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import train_test_split

EXPERIMENT = "wine-classifier"
MODEL_NAME = "wine-classifier"

X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)

mlflow.set_experiment(EXPERIMENT)
# Parameters, training metrics and tags of every fit, logged by MLflow itself.
mlflow.sklearn.autolog(log_models=False)

with mlflow.start_run(run_name="gradient-boosting") as run:
    mlflow.set_tag("team", "wine-research")
    model = GradientBoostingClassifier(n_estimators=50, learning_rate=0.1, max_depth=3, random_state=42)
    model.fit(X_train, y_train)

    predictions = model.predict(X_test)
    mlflow.log_metric("test_accuracy", accuracy_score(y_test, predictions))
    mlflow.log_metric("test_f1_macro", f1_score(y_test, predictions, average="macro"))
    # The test accuracy after each boosting stage: a metric history, one value per step.
    for step, staged in enumerate(model.staged_predict(X_test)):
        mlflow.log_metric("test_accuracy_by_stage", accuracy_score(y_test, staged), step=step)
    mlflow.log_dict(classification_report(y_test, predictions, output_dict=True), "classification_report.json")

    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X_test, predictions),
        input_example=X_test.head(3),
        registered_model_name=MODEL_NAME,
    )

client = MlflowClient()
client.set_registered_model_alias(MODEL_NAME, "champion", info.registered_model_version)
print(f"run {run.info.run_id}: test accuracy {accuracy_score(y_test, predictions):.3f}")
print(f"registered {MODEL_NAME} version {info.registered_model_version} (alias champion)")

# Load it back the way a batch job or a service would, and predict.
loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
print("predictions for the first five test wines:", loaded.predict(X_test.head(5)).tolist())
print("true classes:                             ", y_test.head(5).tolist())
