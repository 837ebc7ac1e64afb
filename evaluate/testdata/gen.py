"""Writes metrics.json: scikit-learn's values of every metric of package
evaluate on small, seeded cases. Run from the repository root:

    .venv/bin/python evaluate/testdata/gen.py

A metric that sklearn refuses on a case is recorded as null, with the
error message under "errors".
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics as M

warnings.simplefilter("ignore")
rng = np.random.default_rng(20240611)
OUT = Path(__file__).with_name("metrics.json")


def proba(n, k, y_true, classes, skill):
    """Random probabilities that lean towards the true class."""
    logits = rng.normal(size=(n, k))
    for i, y in enumerate(y_true):
        logits[i, classes.index(y)] += skill
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p = np.round(p, 2)  # rounding makes ties, which AUC must handle
    if k > 2:
        p /= p.sum(axis=1, keepdims=True)  # multiclass AUC wants rows summing to 1
    return p


def classification_case(name, y_true, y_pred, score_classes, scores, positive=None):
    y_true = list(y_true)
    y_pred = list(y_pred)
    yt, yp = np.array(y_true), np.array(y_pred)
    s = None if scores is None else np.asarray(scores, dtype=np.float64)
    out, errs = {}, {}

    def put(metric, fn):
        try:
            v = float(fn())
            if math.isnan(v):
                raise ValueError("undefined (sklearn returned NaN)")
            out[metric] = v
        except ValueError as e:
            out[metric] = None
            errs[metric] = str(e)

    labels_all = sorted(set(y_true) | set(y_pred))
    pos = positive
    if pos is None:
        pos = 1 if 1 in labels_all else labels_all[-1]
    put("accuracy", lambda: M.accuracy_score(yt, yp))
    for kind, fn in [("precision", M.precision_score), ("recall", M.recall_score), ("f1", M.f1_score)]:
        put(kind, lambda fn=fn: fn(yt, yp, pos_label=pos, average="binary", zero_division=0))
        for avg in ["macro", "micro", "weighted"]:
            put(f"{kind}_{avg}", lambda fn=fn, avg=avg: fn(yt, yp, average=avg, zero_division=0))
    if s is not None:
        if s.ndim == 1:
            # One column: the probability of score_classes[0].
            put("roc_auc", lambda: M.roc_auc_score(yt == score_classes[0], s) if pos == score_classes[0]
                else M.roc_auc_score(yt == pos, 1 - s))
            put("roc_auc_ovr", lambda: out["roc_auc"] if out["roc_auc"] is not None else M.roc_auc_score(yt == pos, s))
            put("log_loss", lambda: M.log_loss(yt == score_classes[0], s))
        else:
            col = score_classes.index(pos) if pos in score_classes else None
            present = sorted(set(y_true))
            if len(present) <= 2:
                put("roc_auc", lambda: M.roc_auc_score(yt == pos, s[:, col]))
                out["roc_auc_ovr"] = out["roc_auc"]
                if "roc_auc" in errs:
                    errs["roc_auc_ovr"] = errs["roc_auc"]
            else:
                put("roc_auc", lambda: M.roc_auc_score(yt, s))  # sklearn refuses multiclass without multi_class
                cols = [score_classes.index(c) for c in present]
                put("roc_auc_ovr", lambda: M.roc_auc_score(yt, s[:, cols] / s[:, cols].sum(axis=1, keepdims=True),
                                                           multi_class="ovr", average="macro", labels=present)
                    if len(cols) != len(score_classes) else M.roc_auc_score(yt, s, multi_class="ovr", average="macro", labels=score_classes))
            put("log_loss", lambda: M.log_loss(yt, s, labels=score_classes))
    labels = sorted(set(y_true) | set(y_pred))
    cm = M.confusion_matrix(yt, yp, labels=labels)
    return {
        "name": name,
        "y_true": [str(v) for v in y_true],
        "y_pred": [str(v) for v in y_pred],
        "score_classes": None if score_classes is None else [str(c) for c in score_classes],
        "scores": None if s is None else s.tolist(),
        "positive_class": None if positive is None else str(positive),
        "metrics": out,
        "errors": errs,
        "confusion": {"labels": [str(l) for l in labels], "matrix": cm.tolist()},
    }


def regression_case(name, y_true, y_pred):
    yt, yp = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    out, errs = {}, {}
    for metric, fn in [
        ("mae", M.mean_absolute_error),
        ("mse", M.mean_squared_error),
        ("rmse", M.root_mean_squared_error),
        ("mape", M.mean_absolute_percentage_error),
        ("r2", M.r2_score),
    ]:
        v = fn(yt, yp)
        if isinstance(v, float) and math.isnan(v):
            out[metric] = None
            errs[metric] = "undefined"
        else:
            out[metric] = float(v)
    return {"name": name, "y_true": yt.tolist(), "y_pred": yp.tolist(), "metrics": out, "errors": errs}


cases = []
# Binary, int labels, two probability columns.
n = 400
y = rng.integers(0, 2, size=n)
p = proba(n, 2, list(y), [0, 1], 1.2)
pred = p.argmax(axis=1)
cases.append(classification_case("binary_int", y.tolist(), pred.tolist(), [0, 1], p))
# Binary, string labels, one column (the probability of "yes"), positive "yes".
y = rng.choice(["no", "yes"], size=300, p=[0.7, 0.3])
p = proba(300, 2, list(y), ["no", "yes"], 0.8)[:, 1]
pred = np.where(p >= 0.5, "yes", "no")
cases.append(classification_case("binary_str_one_column", y.tolist(), pred.tolist(), ["yes"], p, positive="yes"))
# Binary with positive class 0 (the lesser label).
y = rng.integers(0, 2, size=200)
p = proba(200, 2, list(y), [0, 1], 0.5)
cases.append(classification_case("binary_positive_zero", y.tolist(), p.argmax(axis=1).tolist(), [0, 1], p, positive=0))
# Binary where the model never predicts the positive class (zero division).
y = rng.integers(0, 2, size=50)
p = np.tile([0.9, 0.1], (50, 1))
cases.append(classification_case("binary_never_positive", y.tolist(), [0] * 50, [0, 1], p))
# Multiclass, int labels.
n = 500
y = rng.integers(0, 3, size=n)
p = proba(n, 3, list(y), [0, 1, 2], 1.0)
cases.append(classification_case("multiclass_int", y.tolist(), p.argmax(axis=1).tolist(), [0, 1, 2], p))
# Multiclass, string labels, a predicted label that never occurs as a true one.
y = rng.choice(["cat", "dog", "eel", "fox"], size=300)
p = proba(300, 4, list(y), ["cat", "dog", "eel", "fox"], 1.5)
pred = np.array(["cat", "dog", "eel", "fox"])[p.argmax(axis=1)]
pred[:7] = "gnu"
cases.append(classification_case("multiclass_str_extra_pred", y.tolist(), pred.tolist(), ["cat", "dog", "eel", "fox"], p))
# Numeric labels that sort differently as strings (2 < 10).
y = rng.choice([2, 10, 33], size=240)
p = proba(240, 3, list(y), [2, 10, 33], 1.0)
cases.append(classification_case("multiclass_numeric_order", y.tolist(), np.array([2, 10, 33])[p.argmax(axis=1)].tolist(), [2, 10, 33], p))
# One class only: ROC AUC undefined.
cases.append(classification_case("one_class", [1] * 20, [1] * 15 + [0] * 5, [0, 1], np.tile([0.3, 0.7], (20, 1))))
# Labels only, no scores.
y = rng.integers(0, 2, size=100)
cases.append(classification_case("no_scores", y.tolist(), rng.integers(0, 2, size=100).tolist(), None, None))

reg = []
n = 300
y = rng.normal(10, 3, size=n)
reg.append(regression_case("normal", y, y + rng.normal(0, 1.5, size=n)))
y = rng.normal(0, 1, size=200)
y[:5] = 0.0  # MAPE divides by max(|y|, eps)
reg.append(regression_case("zeros_in_target", y, y + rng.normal(0, 0.1, size=200)))
reg.append(regression_case("constant_target_perfect", [4.0] * 10, [4.0] * 10))
reg.append(regression_case("constant_target_imperfect", [4.0] * 10, [4.0] * 9 + [5.0]))
reg.append(regression_case("worse_than_mean", [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]))

# Slices: accuracy per group and its disparity.
g = rng.choice(["a", "b", "c"], size=300)
y = rng.integers(0, 2, size=300)
pred = np.where(rng.random(300) < np.where(g == "a", 0.9, np.where(g == "b", 0.75, 0.6)), y, 1 - y)
acc = {k: float(M.accuracy_score(y[g == k], pred[g == k])) for k in ["a", "b", "c"]}
slices = {
    "group": g.tolist(),
    "y_true": [str(v) for v in y],
    "y_pred": [str(v) for v in pred],
    "accuracy": acc,
    "difference": max(acc.values()) - min(acc.values()),
    "ratio": min(acc.values()) / max(acc.values()),
}

OUT.write_text(json.dumps({
    "sklearn": sklearn.__version__,
    "classification": cases,
    "regression": reg,
    "slices": slices,
}, indent=1) + "\n")
print(f"wrote {OUT} (sklearn {sklearn.__version__})")
