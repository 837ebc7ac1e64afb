"""Writes performance.json: logged predictions, late labels, and
scikit-learn's metrics of the labelled predictions per window and per
slice, for the tests of package monitor/feedback. Run from the repository
root:

    .venv/bin/python monitor/feedback/testdata/gen.py

Each case holds the prediction-log rows (predlog's column names), the
labels in the order they are sent (a key sent twice keeps its last label),
the query, and the expected windows. The join is done here with pandas
(inner join on request_id and row), independently of the Go code.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as M

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261202)
OUT = Path(__file__).with_name("performance.json")
T0 = 1_780_000_000_000  # ms, a fixed start
HOUR = 3_600_000


def softmax_towards(truth_idx, k, skill):
    logits = rng.normal(size=(len(truth_idx), k))
    logits[np.arange(len(truth_idx)), truth_idx] += skill
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p = np.round(p, 3)
    p[:, -1] = 1 - p[:, :-1].sum(axis=1)  # rows sum to 1 after rounding
    return np.clip(p, 0, 1)


def log_rows(n, hours):
    """Request ids and rows: most requests have one row, some two or three."""
    ids, rows = [], []
    r = 0
    while len(ids) < n:
        size = int(rng.choice([1, 1, 1, 2, 3]))
        for j in range(size):
            ids.append(f"req-{r:05d}")
            rows.append(j)
        r += 1
    ids, rows = ids[:n], rows[:n]
    ts = np.sort(rng.integers(T0, T0 + hours * HOUR, size=n))
    # Rows of one request share its timestamp.
    first = {}
    for i, rid in enumerate(ids):
        first.setdefault(rid, ts[i])
    return ids, rows, [int(first[i]) for i in ids]


def classification_metrics(df, metrics, classes, positive):
    yt = df["y_true"].astype(str).to_numpy()
    yp = df["y_pred"].astype(str).to_numpy()
    out = {}
    for m in metrics:
        if m == "accuracy":
            out[m] = M.accuracy_score(yt, yp)
        elif m in ("precision", "recall", "f1"):
            fn = {"precision": M.precision_score, "recall": M.recall_score, "f1": M.f1_score}[m]
            out[m] = fn(yt, yp, pos_label=positive, average="binary", zero_division=0)
        elif "_" in m and m.split("_")[0] in ("precision", "recall", "f1"):
            kind, avg = m.split("_")
            fn = {"precision": M.precision_score, "recall": M.recall_score, "f1": M.f1_score}[kind]
            out[m] = fn(yt, yp, average=avg, zero_division=0)
        elif m == "roc_auc":
            if len(set(yt)) < 2:
                continue
            col = classes.index(positive)
            out[m] = M.roc_auc_score(yt == positive, df[f"p{col}"].to_numpy())
        elif m == "roc_auc_ovr":
            present = sorted(set(yt), key=classes.index)
            if len(present) < 2:
                continue
            s = df[[f"p{classes.index(c)}" for c in present]].to_numpy()
            if len(present) == 2:
                out[m] = M.roc_auc_score(yt == present[1], s[:, 1] if positive not in present else df[f"p{classes.index(present[1])}"].to_numpy())
            else:
                if len(present) != len(classes):
                    s = s / s.sum(axis=1, keepdims=True)
                out[m] = M.roc_auc_score(yt, s, multi_class="ovr", average="macro", labels=present)
        elif m == "log_loss":
            s = df[[f"p{k}" for k in range(len(classes))]].to_numpy()
            out[m] = M.log_loss(yt, s, labels=classes)
    return {k: float(v) for k, v in out.items()}


def regression_metrics(df, metrics):
    yt, yp = df["y_true"].to_numpy(float), df["y_pred"].to_numpy(float)
    out = {}
    for m in metrics:
        if m == "r2" and len(yt) < 2:
            continue
        fn = {"mae": M.mean_absolute_error, "rmse": M.root_mean_squared_error,
              "mape": M.mean_absolute_percentage_error, "r2": M.r2_score, "mse": M.mean_squared_error}[m]
        out[m] = float(fn(yt, yp))
    return out


def expected(log, labels, query, metric_fn):
    lab = pd.DataFrame(labels).drop_duplicates(["request_id", "row"], keep="last")
    lab = lab.rename(columns={"label": "y_true"})
    ok = log[log["route"] != "shadow"] if not query.get("route") else log[log["route"] == query["route"]]
    ok = ok[ok["status"] < 400]
    frm, to, win = query["from_ms"], query["to_ms"], query["window_ms"]
    ok = ok[(ok["timestamp"] >= frm) & (ok["timestamp"] < to)]
    joined = ok.merge(lab, on=["request_id", "row"], how="inner")
    n = 1 if win == 0 else -(-(to - frm) // win)
    windows = []
    for w in range(n):
        lo = frm + w * win if win else frm
        hi = min(lo + win, to) if win else to
        wp = ok[(ok["timestamp"] >= lo) & (ok["timestamp"] < hi)]
        wj = joined[(joined["timestamp"] >= lo) & (joined["timestamp"] < hi)]
        entry = {"start_ms": int(lo), "end_ms": int(hi), "predictions": int(len(wp)), "labelled": int(len(wj)),
                 "metrics": metric_fn(wj) if len(wj) else {}, "slices": {}}
        for col in query.get("slice_by", []):
            src = "route" if col == "route" else "inputs." + col
            entry["slices"][col] = {str(v): metric_fn(g) for v, g in wj.groupby(wj[src].astype(str))}
        windows.append(entry)
    return windows


cases = []

# 1. Binary classifier, int labels 0/1, probabilities_0/1, 4 hours, two
# routes (a canary), a shadow copy, a failed request, duplicate labels.
n = 600
ids, rows, ts = log_rows(n, 4)
y = rng.integers(0, 2, size=n)
p = softmax_towards(y, 2, 1.3)
pred = p.argmax(axis=1)
country = rng.choice(["de", "fr", "us"], size=n)
route = rng.choice(["stable", "canary"], size=n, p=[0.8, 0.2])
status = np.where(rng.random(n) < 0.01, 500, 200)
log = pd.DataFrame({"timestamp": ts, "request_id": ids, "row": rows, "route": route, "status": status,
                    "inputs.country": country, "inputs.x": np.round(rng.normal(size=n), 3),
                    "outputs.label": pred, "outputs.probabilities_0": p[:, 0], "outputs.probabilities_1": p[:, 1],
                    "y_pred": pred, "p0": p[:, 0], "p1": p[:, 1]})
# Shadow copies of the first 50 rows, with other predictions: never counted.
sh = log.iloc[:50].copy()
sh["route"] = "shadow"
sh["outputs.label"] = 1 - sh["outputs.label"]
log = pd.concat([log, sh], ignore_index=True)
labelled = rng.random(n) < 0.7
labels = [{"request_id": ids[i], "row": rows[i], "label": int(y[i])} for i in range(n) if labelled[i]]
# Some labels were first sent wrong and corrected later.
for i in range(0, n, 37):
    if labelled[i]:
        labels.insert(0, {"request_id": ids[i], "row": rows[i], "label": int(1 - y[i])})
# Labels of requests that were never logged: they join nothing.
labels += [{"request_id": f"ghost-{i}", "row": 0, "label": 1} for i in range(5)]
query = {"from_ms": T0, "to_ms": T0 + 4 * HOUR, "window_ms": HOUR, "slice_by": ["country", "route"], "metrics": []}
mets = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
cases.append({"name": "binary", "task": "classification", "classes": ["0", "1"], "metrics": mets, "query": query,
              "log": log, "labels": labels,
              "windows": expected(log, labels, query, lambda d: classification_metrics(d, mets, [0, 1] and ["0", "1"], "1"))})

# 2. Multiclass, string labels, the model answers class indices (its
# classes are the sorted labels), three probability columns; one window;
# the canary route only.
n = 500
ids, rows, ts = log_rows(n, 2)
classes = ["cat", "dog", "emu"]
yi = rng.integers(0, 3, size=n)
p = softmax_towards(yi, 3, 1.5)
pred = p.argmax(axis=1)
route = rng.choice(["stable", "canary"], size=n, p=[0.5, 0.5])
log = pd.DataFrame({"timestamp": ts, "request_id": ids, "row": rows, "route": route, "status": 200,
                    "inputs.size": rng.choice(["s", "m", "l"], size=n),
                    "outputs.label": pred, "outputs.probabilities_0": p[:, 0], "outputs.probabilities_1": p[:, 1],
                    "outputs.probabilities_2": p[:, 2],
                    "y_pred": [classes[k] for k in pred], "p0": p[:, 0], "p1": p[:, 1], "p2": p[:, 2]})
labelled = rng.random(n) < 0.8
labels = [{"request_id": ids[i], "row": rows[i], "label": classes[yi[i]]} for i in range(n) if labelled[i]]
query = {"from_ms": T0, "to_ms": T0 + 2 * HOUR, "window_ms": 0, "slice_by": ["size"], "route": "canary", "metrics": []}
mets = ["accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc_ovr", "log_loss"]
cases.append({"name": "multiclass_strings", "task": "classification", "classes": classes, "metrics": mets, "query": query,
              "log": log, "labels": labels,
              "windows": expected(log, labels, query, lambda d: classification_metrics(d, mets, classes, "emu"))})

# 3. Regression: float labels, outputs.predictions, 30-minute windows over
# 3 hours, sliced by route; the range starts an hour in.
n = 400
ids, rows, ts = log_rows(n, 4)
yv = np.round(rng.normal(50, 10, size=n), 2)
yhat = np.round(yv + rng.normal(0, 4, size=n), 2)
route = rng.choice(["a", "b"], size=n)
log = pd.DataFrame({"timestamp": ts, "request_id": ids, "row": rows, "route": route, "status": 200,
                    "inputs.x": np.round(rng.normal(size=n), 3), "outputs.predictions": yhat, "y_pred": yhat})
labelled = rng.random(n) < 0.6
labels = [{"request_id": ids[i], "row": rows[i], "label": float(yv[i])} for i in range(n) if labelled[i]]
query = {"from_ms": T0 + HOUR, "to_ms": T0 + 4 * HOUR, "window_ms": HOUR // 2, "slice_by": ["route"], "metrics": []}
mets = ["mae", "rmse", "mape", "r2"]
cases.append({"name": "regression", "task": "regression", "classes": None, "metrics": mets, "query": query,
              "log": log, "labels": labels,
              "windows": expected(log, labels, query, lambda d: regression_metrics(d, mets))})

out = []
for c in cases:
    log = c.pop("log")
    cols = [k for k in log.columns if k in ("timestamp", "request_id", "row", "route", "status") or "." in k]
    c["log"] = {k: log[k].tolist() for k in cols}
    for k, v in c["log"].items():
        c["log"][k] = [x.item() if hasattr(x, "item") else x for x in v]
    out.append(c)
OUT.write_text(json.dumps({"cases": out}, indent=1) + "\n")
print(f"wrote {OUT} ({len(out)} cases)")
