"""Writes the end-to-end fixtures of the gate tests: a small dataset and
three models of it, as MLflow ONNX model directories, with the metrics
scikit-learn computes from onnxruntime's predictions. Run from the
repository root:

    .venv/bin/python deploy/gate/testdata/gen.py

    eval.csv     x1..x4 features, region (a slice column: region "c" is
                 noisy), y (0/1 label), target (a regression target)
    good/        logistic regression on x1..x4 (ZipMap probabilities,
                 column signature)
    bad/         logistic regression on shuffled labels (no ZipMap, no
                 signature: the policy names the features)
    reg/         linear regression of target
    expected.json  sklearn metrics of each model's onnxruntime output
"""

import json
import shutil
from pathlib import Path

import mlflow.onnx
import numpy as np
import onnxruntime as ort
import pandas as pd
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn import metrics as M
from sklearn.linear_model import LinearRegression, LogisticRegression

HERE = Path(__file__).parent
rng = np.random.default_rng(7)
n = 240
X = rng.normal(size=(n, 4))
region = rng.choice(["a", "b", "c"], size=n)
logit = 2.0 * X[:, 0] - 1.5 * X[:, 1] + 0.5 * X[:, 2]
y = (logit + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
# Region c: half its labels flipped, so the good model does much worse there.
flip = (region == "c") & (rng.random(n) < 0.45)
y[flip] = 1 - y[flip]
target = 3.0 * X[:, 0] - X[:, 3] + rng.normal(scale=0.3, size=n)
frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "x4": X[:, 3], "region": region, "y": y, "target": target})
frame.to_csv(HERE / "eval.csv", index=False, float_format="%.17g")
feats = frame[["x1", "x2", "x3", "x4"]]
Xf = feats.to_numpy(dtype=np.float32)


def save(name, onx, signature=None):
    path = HERE / name
    shutil.rmtree(path, ignore_errors=True)
    mlflow.onnx.save_model(onx, str(path), signature=signature, save_as_external_data=False)
    for extra in ["conda.yaml", "python_env.yaml", "requirements.txt"]:
        (path / extra).unlink(missing_ok=True)
    return path


def predict(onx):
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: Xf})
    return out


def classification_metrics(label, proba, mask=None):
    yt = y if mask is None else y[mask]
    if mask is not None:
        label, proba = label[mask], proba[mask]
    p = np.asarray(proba, dtype=np.float64)
    return {
        "accuracy": M.accuracy_score(yt, label),
        "f1": M.f1_score(yt, label),
        "roc_auc": M.roc_auc_score(yt, p[:, 1]),
        "log_loss": M.log_loss(yt, p, labels=[0, 1]),
    }


expected = {}
good = LogisticRegression().fit(Xf, y)
onx = to_onnx(good, Xf[:1], target_opset={"": 17, "ai.onnx.ml": 3})
save("good", onx, signature=infer_signature(feats, good.predict(Xf)))
label, proba = predict(onx)
proba = np.array([[d[0], d[1]] for d in proba])
expected["good"] = classification_metrics(label, proba)
expected["good_slices"] = {r: classification_metrics(label, proba, region == r) for r in ["a", "b", "c"]}

bad = LogisticRegression().fit(Xf, rng.permutation(y))
onx = to_onnx(bad, Xf[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(bad): {"zipmap": False}})
save("bad", onx)
label, proba = predict(onx)
expected["bad"] = classification_metrics(label, proba)

reg = LinearRegression().fit(Xf, target)
onx = to_onnx(reg, Xf[:1], target_opset=17)
save("reg", onx, signature=infer_signature(feats, reg.predict(Xf)))
(pred,) = predict(onx)
pred = np.asarray(pred, dtype=np.float64).ravel()
expected["reg"] = {
    "mae": M.mean_absolute_error(target, pred),
    "rmse": M.root_mean_squared_error(target, pred),
    "r2": M.r2_score(target, pred),
}
expected = {k: {m: (float(v) if not isinstance(v, dict) else {a: float(b) for a, b in v.items()}) for m, v in d.items()} for k, d in expected.items()}
(HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
print(json.dumps(expected, indent=1))
