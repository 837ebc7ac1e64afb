"""Writes the LightGBM fixtures of runtime/lightgbm.

Run from the repository root with the shared virtualenv:

    .venv/bin/python runtime/lightgbm/testdata/gen.py

Each case is a directory models/<case>/ holding model.lgb (the text model
as Booster.save_model writes it), options.json (the Source.Options the Go
test passes: the MLflow lightgbm flavor's "data" and "model_class"),
inputs.json and expected.json (Open Inference Protocol tensors; the
expected outputs come from lightgbm itself, predicting on the very float32
inputs written to inputs.json). For Booster cases options.json is the
flavor configuration that mlflow.lightgbm.save_model writes into MLmodel.
MLflow pickles scikit-learn wrappers instead of writing model.lgb; for
those cases options.json names model.lgb with the wrapper's class, as a
model converted or logged by Kiln carries it.

Deterministic: fixed seeds, one thread, deterministic=True.
"""

import json
import math
import os
import shutil
import sys
import tempfile

import lightgbm as lgb
import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
assert lgb.__version__ == "4.7.0", lgb.__version__

BASE = dict(verbose=-1, num_threads=1, deterministic=True, force_row_wise=True, seed=7)


def jfloat(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor(name, datatype, arr):
    arr = np.asarray(arr)
    flat = arr.reshape(-1)
    if datatype in ("FP32", "FP64"):
        data = [jfloat(v) for v in flat]
    else:
        data = [int(v) for v in flat]
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def flavor_options(booster):
    """The lightgbm flavor configuration MLflow writes for a Booster."""
    d = tempfile.mkdtemp()
    # Keep MLflow's default ./mlruns store out of the working tree.
    os.environ["MLFLOW_TRACKING_URI"] = "file://" + os.path.join(d, "mlruns")
    import mlflow.lightgbm

    try:
        path = os.path.join(d, "m")
        mlflow.lightgbm.save_model(booster, path)
        with open(os.path.join(path, "MLmodel")) as f:
            fl = yaml.safe_load(f)["flavors"]["lightgbm"]
        return {"data": fl["data"], "model_class": fl["model_class"]}
    finally:
        shutil.rmtree(d)


def write_case(name, booster, X, outputs, options):
    d = os.path.join(MODELS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    path = os.path.join(d, "model.lgb")
    booster.save_model(path)
    # The saved file must predict exactly like the model in memory.
    again = lgb.Booster(model_file=path)
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_array_equal(raw, again.predict(X, raw_score=True))
    with open(os.path.join(d, "options.json"), "w") as f:
        json.dump(options, f, indent=1, sort_keys=True)
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump({"inputs": [tensor("input", "FP32", X)]}, f)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"outputs": outputs}, f)
    size = os.path.getsize(path)
    assert size < 512 * 1024, (name, size)
    print(f"{name}: {booster.num_trees()} trees, {size} bytes", file=sys.stderr)


def dtypes(booster):
    """All decision_type values of the model's nodes."""
    out = []
    for line in booster.model_to_string().splitlines():
        if line.startswith("decision_type="):
            out += [int(v) for v in line.split("=", 1)[1].split()]
    return out


def features(rng, n, f, nan=0.1):
    X = rng.normal(size=(n, f))
    X[rng.random((n, f)) < nan] = np.nan
    return X


def inputs(rng, f, n=48, nan=0.15, inf=True):
    """float32 rows with NaN, plus edge rows: all NaN, all zero, huge, ±Inf."""
    X = rng.normal(scale=1.3, size=(n, f))
    X[rng.random((n, f)) < nan] = np.nan
    X[0, :] = np.nan
    X[1, :] = 0.0
    X[2, :] = 1e30
    X[3, :] = -1e30
    if inf:
        X[4, :] = np.inf
        X[5, :] = -np.inf
    return X.astype(np.float32)


def nz(x):
    return np.nan_to_num(x)


def classifier_outputs(clf, X):
    return [
        tensor("label", "INT64", clf.predict(X).astype(np.int64)),
        tensor("probabilities", "FP32", clf.predict_proba(X)),
    ]


def predictions(booster, X):
    return [tensor("predictions", "FP32", booster.predict(X))]


def train(params, X, y, rounds, **kw):
    p = dict(BASE)
    p.update(params)
    return lgb.train(p, lgb.Dataset(X, y, **kw), num_boost_round=rounds)


def main():
    os.makedirs(MODELS, exist_ok=True)
    rng = np.random.default_rng(20240601)
    sk = dict(n_jobs=1, deterministic=True, force_row_wise=True, random_state=7, verbose=-1)

    # Binary classifier (scikit-learn wrapper), NaN in training and inputs.
    X = features(rng, 500, 6)
    y = (nz(X[:, 0]) + 0.5 * nz(X[:, 1]) * nz(X[:, 2]) - 0.3 * np.isnan(X[:, 3]) > 0.1).astype(int)
    clf = lgb.LGBMClassifier(n_estimators=30, num_leaves=15, learning_rate=0.2, min_child_samples=5, **sk).fit(X, y)
    Xi = inputs(rng, 6)
    write_case("binary_classifier", clf.booster_, Xi, classifier_outputs(clf, Xi),
               {"data": "model.lgb", "model_class": "lightgbm.sklearn.LGBMClassifier"})

    # 3-class classifier (softmax).
    X = features(rng, 600, 5)
    s = nz(X[:, 0]) - nz(X[:, 1])
    y = np.where(s < -0.5, 0, np.where(s < 0.6, 1, 2))
    clf = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, learning_rate=0.3, min_child_samples=5, **sk).fit(X, y)
    Xi = inputs(rng, 5)
    write_case("multiclass_classifier", clf.booster_, Xi, classifier_outputs(clf, Xi),
               {"data": "model.lgb", "model_class": "lightgbm.sklearn.LGBMClassifier"})

    # multiclassova booster: unnormalised per-class sigmoids, sigmoid 1.5.
    b = train(dict(objective="multiclassova", num_class=3, sigmoid=1.5, num_leaves=7, learning_rate=0.3), X, y, 15)
    write_case("multiclassova_booster", b, Xi, predictions(b, Xi), flavor_options(b))

    # multiclass booster: [N, 4] probabilities as "predictions".
    y4 = np.where(s < -0.7, 0, np.where(s < 0, 1, np.where(s < 0.7, 2, 3)))
    b = train(dict(objective="multiclass", num_class=4, num_leaves=5, learning_rate=0.3), X, y4, 10)
    write_case("multiclass_booster", b, Xi, predictions(b, Xi), flavor_options(b))

    # Binary booster with a non-default sigmoid parameter.
    X = features(rng, 400, 4)
    y = (nz(X[:, 0]) * nz(X[:, 1]) > 0).astype(int)
    b = train(dict(objective="binary", sigmoid=0.6, num_leaves=9, learning_rate=0.3), X, y, 20)
    Xi = inputs(rng, 4)
    write_case("binary_booster_sigmoid", b, Xi, predictions(b, Xi), flavor_options(b))

    # L2 regression (scikit-learn wrapper) with NaN: missing type NaN.
    X = features(rng, 500, 5, nan=0.2)
    y = 2 * nz(X[:, 0]) - nz(X[:, 1]) ** 2 + 3 * np.isnan(X[:, 2]) + rng.normal(scale=0.1, size=500)
    reg = lgb.LGBMRegressor(n_estimators=30, num_leaves=15, learning_rate=0.2, min_child_samples=5, **sk).fit(X, y)
    assert any((d >> 2) & 3 == 2 for d in dtypes(reg.booster_)), "no missing-type NaN split"
    Xi = inputs(rng, 5)
    write_case("regression_nan", reg.booster_, Xi, [tensor("predictions", "FP32", reg.predict(Xi))],
               {"data": "model.lgb", "model_class": "lightgbm.sklearn.LGBMRegressor"})

    # zero_as_missing: missing type Zero; inputs with zeros, NaN and values
    # inside LightGBM's zero band (|v| <= 1e-35).
    X = features(rng, 500, 4, nan=0.0)
    X[rng.random(X.shape) < 0.3] = 0.0
    y = np.where(X[:, 0] == 0, 5.0, X[:, 0]) + np.where(X[:, 1] == 0, -3.0, X[:, 1])
    b = train(dict(objective="regression", zero_as_missing=True, num_leaves=9, learning_rate=0.3), X, y, 20)
    assert any((d >> 2) & 3 == 1 for d in dtypes(b)), "no missing-type Zero split"
    Xi = inputs(rng, 4)
    Xi[6:30][rng.random((24, 4)) < 0.4] = 0.0
    Xi[30, :] = np.float32(1e-36)
    Xi[31, :] = np.float32(-1e-36)
    Xi[32, :] = np.float32(1e-30)
    write_case("regression_zero_as_missing", b, Xi, predictions(b, Xi), flavor_options(b))

    # Regression with the sqrt option (sign(x)·x² transform).
    b = train(dict(objective="regression", reg_sqrt=True, num_leaves=7, learning_rate=0.3), X, y * np.abs(y), 15)
    write_case("regression_sqrt", b, Xi, predictions(b, Xi), flavor_options(b))

    # Count and positive-valued objectives: exp link.
    X = features(rng, 500, 4)
    lam = np.exp(0.5 * nz(X[:, 0]) - 0.3 * nz(X[:, 1]))
    Xi = inputs(rng, 4)
    b = train(dict(objective="poisson", num_leaves=7, learning_rate=0.2), X, rng.poisson(lam), 25)
    write_case("poisson", b, Xi, predictions(b, Xi), flavor_options(b))
    tw = rng.poisson(lam) * rng.gamma(2.0, 1.0, size=500)
    b = train(dict(objective="tweedie", tweedie_variance_power=1.3, num_leaves=7, learning_rate=0.2), X, tw, 25)
    write_case("tweedie", b, Xi, predictions(b, Xi), flavor_options(b))
    b = train(dict(objective="gamma", num_leaves=7, learning_rate=0.2), X, rng.gamma(2.0, lam), 25)
    write_case("gamma", b, Xi, predictions(b, Xi), flavor_options(b))

    # Quantile and Huber regression (identity output).
    yr = 3 * nz(X[:, 0]) + rng.standard_t(2, size=500)
    b = train(dict(objective="quantile", alpha=0.3, num_leaves=7, learning_rate=0.2), X, yr, 25)
    write_case("quantile", b, Xi, predictions(b, Xi), flavor_options(b))
    b = train(dict(objective="huber", alpha=1.2, num_leaves=7, learning_rate=0.2), X, yr, 25)
    write_case("huber", b, Xi, predictions(b, Xi), flavor_options(b))

    # cross_entropy with labels in [0, 1]: logistic output.
    yp = 1 / (1 + np.exp(-(nz(X[:, 0]) + nz(X[:, 2]))))
    b = train(dict(objective="cross_entropy", num_leaves=7, learning_rate=0.3), X, yp, 20)
    write_case("cross_entropy", b, Xi, predictions(b, Xi), flavor_options(b))

    # Categorical features: column 1 with 120 categories (bitsets over
    # several 32-bit words), column 3 with 3 categories (one-hot splits).
    n = 2000
    X = np.column_stack([
        rng.normal(size=n),
        rng.integers(0, 120, size=n).astype(float),
        rng.normal(size=n),
        rng.integers(0, 3, size=n).astype(float),
    ])
    X[rng.random(n) < 0.05, 1] = np.nan
    X[rng.random(n) < 0.05, 0] = np.nan
    good = rng.permutation(120)[:50]
    y = 2.0 * np.isin(X[:, 1], good) + nz(X[:, 0]) + (X[:, 3] == 2) - 0.5 * (X[:, 3] == 0) + rng.normal(scale=0.1, size=n)
    b = train(dict(objective="regression", num_leaves=15, learning_rate=0.3, max_cat_to_onehot=4,
                   max_cat_threshold=64, cat_smooth=1, cat_l2=1, min_data_per_group=5, min_data_in_leaf=5),
              X, y, 20, categorical_feature=[1, 3])
    text = b.model_to_string()
    wide = [line for line in text.splitlines() if line.startswith("cat_boundaries=")]
    assert any(np.diff([int(v) for v in w.split("=")[1].split()]).max() > 1 for w in wide), "no multi-word bitset"
    Xi = inputs(rng, 4, n=64, inf=False)
    Xi[:, 1] = rng.integers(0, 120, size=64)
    Xi[:, 3] = rng.integers(0, 3, size=64)
    Xi[6:12, 1] = [120, 150, 1000, 5e9, 31.0, 63.0]  # unseen, huge, word edges
    Xi[12:18, 1] = [-1, -5, -0.5, 3.7, np.nan, -1e9]  # negative, fractional, NaN
    Xi[18:22, 3] = [3, -1, np.nan, 1.9]
    write_case("categorical", b, Xi, predictions(b, Xi), flavor_options(b))

    # Random forest: average_output.
    X = features(rng, 500, 5)
    y = nz(X[:, 0]) + np.sin(3 * nz(X[:, 1]))
    b = train(dict(objective="regression", boosting="rf", bagging_freq=1, bagging_fraction=0.6,
                   feature_fraction=0.8, num_leaves=15), X, y, 20)
    assert "average_output" in b.model_to_string()
    Xi = inputs(rng, 5)
    write_case("random_forest", b, Xi, predictions(b, Xi), flavor_options(b))

    # Random-forest binary classifier (scikit-learn wrapper).
    yb = (y > 0.3).astype(int)
    clf = lgb.LGBMClassifier(boosting_type="rf", n_estimators=15, num_leaves=9, subsample=0.6, subsample_freq=1,
                             colsample_bytree=0.8, **sk).fit(X, yb)
    write_case("random_forest_classifier", clf.booster_, Xi, classifier_outputs(clf, Xi),
               {"data": "model.lgb", "model_class": "lightgbm.sklearn.LGBMClassifier"})

    # Linear trees: NaN among a leaf's features falls back to the leaf value.
    X = features(rng, 600, 4)
    y = 2 * nz(X[:, 0]) + np.where(nz(X[:, 1]) > 0, 3 * nz(X[:, 2]), -nz(X[:, 2]))
    b = train(dict(objective="regression", linear_tree=True, num_leaves=7, learning_rate=0.3, linear_lambda=0.1), X, y, 15)
    assert "is_linear=1" in b.model_to_string()
    Xi = inputs(rng, 4, inf=False)
    write_case("linear_tree", b, Xi, predictions(b, Xi), flavor_options(b))

    # Ranker (scikit-learn wrapper): lambdarank raw scores.
    groups = [20] * 30
    X = features(rng, sum(groups), 5)
    rel = np.clip((nz(X[:, 0]) + 0.5 * nz(X[:, 1]) + 1.5).round(), 0, 4).astype(int)
    rk = lgb.LGBMRanker(n_estimators=20, num_leaves=7, learning_rate=0.2, min_child_samples=5, **sk)
    rk.fit(X, rel, group=groups)
    Xi = inputs(rng, 5)
    write_case("lambdarank", rk.booster_, Xi, [tensor("predictions", "FP32", rk.predict(Xi))],
               {"data": "model.lgb", "model_class": "lightgbm.sklearn.LGBMRanker"})

    # The benchmark model: 100 trees of 31 leaves over 20 features.
    X = features(rng, 5000, 20, nan=0.05)
    y = X @ rng.normal(size=20) + np.sin(nz(X[:, 0]) * 3)
    y = np.nan_to_num(y)
    b = train(dict(objective="regression", num_leaves=31, learning_rate=0.1, min_data_in_leaf=10), X, y, 100)
    assert b.num_trees() == 100
    Xi = inputs(rng, 20, n=64)
    write_case("bench_100x31", b, Xi, predictions(b, Xi), flavor_options(b))


if __name__ == "__main__":
    main()
