"""Writes the MLflow model fixtures of the model/ and runtime/python tests.

Run from the repository root with the project's virtualenv (mlflow 3.6.0,
scikit-learn, xgboost, lightgbm, onnx, skl2onnx):

    .venv/bin/python model/testdata/gen.py

Each model is saved with the real mlflow client (mlflow.<flavor>.save_model,
with a signature and an input example) into model/testdata/<name>/, and the
predictions the reference library makes on fixed inputs are written to
model/testdata/expected.json:

    {"<name>": {"inputs": {"<column or tensor>": [...]}, "outputs": {...}}}

Only small files are kept: the python environment files (conda.yaml,
python_env.yaml, requirements.txt) are dropped, as are MLflow's metadata/
copies.
"""

import json
import os
import shutil
import time
import warnings

import lightgbm as lgb
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
DROP = ("conda.yaml", "python_env.yaml", "requirements.txt", "metadata")


def fresh(name):
    path = os.path.join(HERE, name)
    shutil.rmtree(path, ignore_errors=True)
    return path


def tidy(path):
    for f in DROP:
        p = os.path.join(path, f)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def columns(df):
    return {c: df[c].tolist() for c in df.columns}


class EchoModel(mlflow.pyfunc.PythonModel):
    """A custom pyfunc model for the worker tests: y = 2x, m = n + 1,
    label = s upper-cased. A negative x sleeps -x seconds first (request
    timeouts); n == -999 makes the process exit (worker crashes)."""

    def predict(self, context, model_input, params=None):
        import os as _os
        import time as _time

        if (model_input["n"] == -999).any():
            _os._exit(3)
        neg = model_input["x"][model_input["x"] < 0]
        if len(neg):
            _time.sleep(float(-neg.min()))
        print("printed by the model: must not corrupt the protocol")
        return pd.DataFrame(
            {
                "y": model_input["x"] * 2.0,
                "m": model_input["n"] + 1,
                "label": model_input["s"].str.upper(),
            }
        )


def main():
    expected = {}
    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    y = iris.target
    test_rows = [0, 1, 50, 51, 100, 101, 120, 149]
    X_test = X.iloc[test_rows].reset_index(drop=True)

    # sklearn, column-based signature (a DataFrame of doubles).
    logreg = LogisticRegression(max_iter=500).fit(X, y)
    path = fresh("sklearn_logreg")
    mlflow.sklearn.save_model(
        logreg,
        path,
        signature=infer_signature(X, logreg.predict(X)),
        input_example=X.head(3),
    )
    tidy(path)
    expected["sklearn_logreg"] = {
        "inputs": columns(X_test),
        "outputs": {"predictions": logreg.predict(X_test).tolist()},
    }

    # sklearn, tensor-based signature (a float32 matrix).
    Xt = X.to_numpy(dtype=np.float32)
    ridge = Ridge(alpha=0.5).fit(Xt, iris.data["petal width (cm)"].to_numpy() * 3.0 + 1.0)
    path = fresh("sklearn_ridge_tensor")
    mlflow.sklearn.save_model(
        ridge,
        path,
        signature=infer_signature(Xt, ridge.predict(Xt)),
        input_example=Xt[:2],
        serialization_format="pickle",
    )
    tidy(path)
    expected["sklearn_ridge_tensor"] = {
        "inputs": {"input": Xt[test_rows].tolist()},
        "outputs": {"predictions": ridge.predict(Xt[test_rows]).tolist()},
    }

    # xgboost (UBJ, MLflow's default format).
    xclf = xgb.XGBClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y)
    path = fresh("xgboost_clf")
    mlflow.xgboost.save_model(
        xclf, path, signature=infer_signature(X, xclf.predict(X)), input_example=X.head(2)
    )
    tidy(path)

    # lightgbm (sklearn API).
    lclf = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1, random_state=0).fit(X, y)
    path = fresh("lightgbm_clf")
    mlflow.lightgbm.save_model(
        lclf, path, signature=infer_signature(X, lclf.predict(X)), input_example=X.head(2)
    )
    tidy(path)

    # onnx (skl2onnx).
    onx = to_onnx(LogisticRegression(max_iter=500).fit(Xt, y), Xt[:1], target_opset=17)
    path = fresh("onnx_logreg")
    mlflow.onnx.save_model(onx, path, input_example=Xt[:2], save_as_external_data=False)
    tidy(path)

    # custom pyfunc (cloudpickled PythonModel), mixed column types.
    frame = pd.DataFrame(
        {
            "x": np.array([0.5, 1.0, 2.5], dtype=np.float64),
            "n": np.array([1, 2, 3], dtype=np.int64),
            "s": ["a", "bc", "Def"],
        }
    )
    echo = EchoModel()
    path = fresh("pyfunc_echo")
    mlflow.pyfunc.save_model(
        path,
        python_model=echo,
        signature=infer_signature(frame, echo.predict(None, frame)),
        input_example=frame.head(2),
    )
    tidy(path)
    out = echo.predict(None, frame)
    expected["pyfunc_echo"] = {"inputs": columns(frame), "outputs": columns(out)}

    # An MLmodel as log_model writes it (artifact_path, run_id, model_id),
    # logged to a throwaway local tracking store.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri("sqlite:///" + os.path.join(tmp, "mlflow.db"))
        exp = mlflow.create_experiment("fixtures", artifact_location="file://" + os.path.join(tmp, "art"))
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(
                logreg, name="model", signature=infer_signature(X, logreg.predict(X)), input_example=X.head(1)
            )
        local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=os.path.join(tmp, "dl"))
        path = fresh("logged_sklearn")
        os.makedirs(path)
        for f in ("MLmodel", "input_example.json", "serving_input_example.json"):
            shutil.copy(os.path.join(local, f), path)

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", sorted(expected), "in", HERE)


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"done in {time.time() - t:.1f}s")
