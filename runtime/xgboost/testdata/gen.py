"""Writes the XGBoost fixtures of runtime/xgboost (see /work/notes/fixtures.md).

Run with the shared virtualenv from the repository root:

    .venv/bin/python runtime/xgboost/testdata/gen.py

Every case is a directory testdata/models/<case>/ holding the model file(s)
(model.json and model.ubj, the same booster in both formats, or an MLflow
xgboost flavor directory with model.xgb), inputs.json and expected.json in the
Open Inference Protocol's tensor shape, and options.json with the
runtime.Source options the Go test passes (the MLflow flavor's data and
model_class). Expected outputs come from xgboost itself: XGBClassifier's
predict / predict_proba for classifiers (what MLflow's pyfunc returns),
XGBRegressor.predict or Booster.predict otherwise, and output_margin where a
case also checks margins. Everything is seeded, single-threaded and small.
"""

import json
import os
import shutil
import warnings
import zlib

import numpy as np
import pandas as pd
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")

warnings.filterwarnings("ignore")
assert xgb.__version__ == "3.2.0", xgb.__version__

N_TEST = 40


def jfloat(v):
    v = float(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor(name, arr, dtype):
    arr = np.asarray(arr)
    if dtype == "FP32":
        data = [jfloat(np.float32(v)) for v in arr.reshape(-1)]
    elif dtype == "INT64":
        data = [int(v) for v in arr.reshape(-1)]
    else:
        raise ValueError(dtype)
    return {"name": name, "datatype": dtype, "shape": list(arr.shape), "data": data}


def features(rng, n, f, nan_frac=0.1):
    X = rng.normal(size=(n, f)).astype(np.float32)
    if nan_frac:
        mask = rng.random(size=(n, f)) < nan_frac
        X[mask] = np.nan
    return X


def test_rows(rng, f):
    X = features(rng, N_TEST, f, nan_frac=0.15)
    X[0, :] = np.nan  # a row with every feature missing
    X[1, :] = 0.0
    X[2, 0] = 1e30
    X[3, 0] = -1e30
    return X


def write_case(name, inputs, outputs, options=None, models=None, booster=None, formats=("json", "ubj")):
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    if booster is not None:
        for ext in formats:
            booster.save_model(os.path.join(d, "model." + ext))
    for fname, writer in (models or {}).items():
        writer(os.path.join(d, fname))
    with open(os.path.join(d, "inputs.json"), "w") as fp:
        json.dump({"inputs": inputs}, fp)
    with open(os.path.join(d, "expected.json"), "w") as fp:
        json.dump({"outputs": outputs}, fp)
    with open(os.path.join(d, "options.json"), "w") as fp:
        json.dump(options or {}, fp, indent=1, sort_keys=True)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name:28s} {size/1024:8.1f} KiB")


def classifier_outputs(model, X, n_classes):
    label = np.asarray(model.predict(X)).astype(np.int64)
    proba = np.asarray(model.predict_proba(X), dtype=np.float32)
    labels = [str(c) for c in range(n_classes)]
    out = [tensor("label", label, "INT64"), tensor("probabilities", proba, "FP32")]
    out[1]["labels"] = labels
    return out


SK_CLF = {"model_class": "xgboost.sklearn.XGBClassifier"}
SK_REG = {"model_class": "xgboost.sklearn.XGBRegressor"}
BOOSTER = {"model_class": "xgboost.core.Booster"}
COMMON = dict(max_depth=4, learning_rate=0.3, n_jobs=1, random_state=0)


def sk_regressor(name, objective, target, n_estimators=30, f=6, extra=None, formats=("json", "ubj")):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    X = features(rng, 400, f)
    y = target(rng, np.nan_to_num(X))
    params = dict(COMMON, n_estimators=n_estimators, objective=objective)
    params.update(extra or {})
    m = xgb.XGBRegressor(**params).fit(X, y)
    T = test_rows(rng, f)
    pred = np.asarray(m.predict(T), dtype=np.float32)
    write_case(name, [tensor("input", T, "FP32")], [tensor("predictions", pred, "FP32")],
               options=SK_REG, booster=m.get_booster(), formats=formats)
    return m


def sk_classifier(name, n_classes, n_estimators=30, f=5, extra=None, formats=("json", "ubj")):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    X = features(rng, 450, f)
    Z = np.nan_to_num(X)
    if n_classes == 2:
        y = (Z[:, 0] + 0.5 * Z[:, 1] * Z[:, 2] + 0.3 * rng.normal(size=len(Z)) > 0).astype(int)
    else:
        score = np.stack([Z[:, 0], Z[:, 1] - Z[:, 2], 0.5 * Z[:, 3] + 0.2], 1)[:, :n_classes]
        y = np.argmax(score + 0.3 * rng.normal(size=score.shape), 1)
    params = dict(COMMON, n_estimators=n_estimators)
    params.update(extra or {})
    m = xgb.XGBClassifier(**params).fit(X, y)
    T = test_rows(rng, f)
    write_case(name, [tensor("input", T, "FP32")], classifier_outputs(m, T, n_classes),
               options=SK_CLF, booster=m.get_booster(), formats=formats)
    return m


def booster_case(name, params, make_dmatrix, rounds=20, f=5, margin=False, formats=("json", "ubj")):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    X = features(rng, 400, f)
    dtrain = make_dmatrix(rng, X)
    p = {"max_depth": 4, "eta": 0.3, "nthread": 1, "seed": 0}
    p.update(params)
    b = xgb.train(p, dtrain, rounds)
    T = test_rows(rng, f)
    pred = np.asarray(b.predict(xgb.DMatrix(T)), dtype=np.float32)
    outputs = [tensor("predictions", pred, "FP32")]
    if margin:
        # Not an output of the runtime; kept for reading the fixture.
        outputs_margin = np.asarray(b.predict(xgb.DMatrix(T), output_margin=True), dtype=np.float32)
        assert outputs_margin.shape == pred.shape
    write_case(name, [tensor("input", T, "FP32")], outputs, options=BOOSTER, booster=b, formats=formats)
    return b


def margin_case(name, model, X, T, options):
    """A model loaded with output_margin: the raw margins, as
    predict(output_margin=True) returns them."""
    model.fit(X[0], X[1])
    margin = np.asarray(model.predict(T, output_margin=True), dtype=np.float32)
    write_case(name, [tensor("input", T, "FP32")], [tensor("predictions", margin, "FP32")],
               options=dict(options, output_margin=True), booster=model.get_booster(), formats=("json",))


def dm_labels(fn):
    def make(rng, X):
        return xgb.DMatrix(X, label=fn(rng, np.nan_to_num(X)))
    return make


def categorical_case(name, max_cat_to_onehot):
    rng = np.random.default_rng(2024 + max_cat_to_onehot)
    n = 600
    c_small = rng.integers(0, 4, n)
    c_large = rng.integers(0, 14, n)
    x0 = rng.normal(size=n)
    x1 = rng.normal(size=n)
    y = ((c_small == 2) * 1.5 + np.isin(c_large, [1, 5, 7, 9, 12]) * 2.0 + x0 - 0.5 * x1
         + 0.1 * rng.normal(size=n))
    y = (y > np.median(y)).astype(int)
    cs = c_small.astype(float)
    cl = c_large.astype(float)
    cs[rng.random(n) < 0.08] = np.nan
    cl[rng.random(n) < 0.08] = np.nan
    x0[rng.random(n) < 0.05] = np.nan

    def frame(x0, cs, x1, cl):
        return pd.DataFrame({
            "x0": x0.astype(np.float32),
            "c_small": pd.Categorical.from_codes(np.nan_to_num(cs, nan=-1).astype(int), categories=list(range(4))),
            "x1": x1.astype(np.float32),
            "c_large": pd.Categorical.from_codes(np.nan_to_num(cl, nan=-1).astype(int), categories=list(range(14))),
        })

    df = frame(x0, cs, x1, cl)
    m = xgb.XGBClassifier(**dict(COMMON, n_estimators=30, enable_categorical=True,
                                 tree_method="hist", max_cat_to_onehot=max_cat_to_onehot))
    m.fit(df, y)

    # Test rows: the integer category codes as XGBoost sees them, NaN for a
    # missing category, plus codes XGBoost never saw (out of range, negative,
    # fractional), which only a numeric array can carry.
    k = N_TEST
    T = np.stack([rng.normal(size=k), rng.integers(0, 4, k).astype(float),
                  rng.normal(size=k), rng.integers(0, 14, k).astype(float)], 1).astype(np.float32)
    T[rng.random(size=T.shape) < 0.12] = np.nan
    T[0, :] = np.nan
    in_range = T.copy()
    T[k - 1, 3] = 20  # past the largest category
    T[k - 2, 1] = -1  # negative code
    T[k - 3, 3] = 5.7  # fractional code truncates
    T[k - 4, 1] = 3e9
    booster = m.get_booster()
    ft = booster.feature_types
    dm = xgb.DMatrix(T, feature_names=booster.feature_names, feature_types=ft, enable_categorical=True)
    proba1 = booster.predict(dm).astype(np.float32)
    # The pandas path (what MLflow's pyfunc feeds) agrees on in-range rows.
    sk = frame(in_range[:, 0], in_range[:, 1], in_range[:, 2], in_range[:, 3])
    sk_proba = m.predict_proba(sk)[:, 1].astype(np.float32)
    ok = np.arange(k - 4)
    assert np.allclose(sk_proba[ok], proba1[ok], rtol=1e-6, atol=1e-7), "pandas vs numpy codes"
    label = (proba1 > 0.5).astype(np.int64)
    proba = np.stack([1 - proba1, proba1], 1).astype(np.float32)
    outs = [tensor("label", label, "INT64"), tensor("probabilities", proba, "FP32")]
    outs[1]["labels"] = ["0", "1"]
    write_case(name, [tensor("input", T, "FP32")], outs, options=SK_CLF, booster=booster)
    n_cat_nodes = sum(len(t["categories_nodes"]) for t in
                      json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"])
    sizes = [s for t in json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
             for s in t["categories_sizes"]]
    print(f"    {n_cat_nodes} categorical splits, category set sizes {sorted(set(sizes))}")


def string_categories_case(name):
    """Categories that are strings: the model stores them, the runtime
    takes their codes. XGBoost 3.2 stores non-ASCII categories truncated
    (its offsets count characters, its values bytes), which the second
    column keeps visible."""
    rng = np.random.default_rng(31)
    n = 400
    colors = ["blue", "green", "red", "yellow"]
    cities = ["bern", "zürich"]
    codes = rng.integers(0, 4, n)
    city = rng.integers(0, 2, n)
    x = rng.normal(size=n).astype(np.float32)
    y = ((codes == 2) | (x > 1) | ((city == 1) & (x > 0))).astype(int)

    def frame(x, codes, city):
        return pd.DataFrame({"x": x, "color": pd.Categorical.from_codes(codes, categories=colors),
                             "city": pd.Categorical.from_codes(city, categories=cities)})

    m = xgb.XGBClassifier(**dict(COMMON, n_estimators=10, max_depth=3, enable_categorical=True))
    m.fit(frame(x, np.where(rng.random(n) < 0.1, -1, codes), city), y)
    k = N_TEST
    tcodes = np.where(rng.random(k) < 0.15, -1, rng.integers(0, 4, k))
    tcity = rng.integers(0, 2, k)
    tx = rng.normal(size=k).astype(np.float32)
    tx[rng.random(k) < 0.1] = np.nan
    T = np.stack([tx, np.where(tcodes < 0, np.nan, tcodes), tcity], 1).astype(np.float32)
    write_case(name, [tensor("input", T, "FP32")], classifier_outputs(m, frame(tx, tcodes, tcity), 2),
               options=SK_CLF, booster=m.get_booster())


def mlflow_case(name):
    import mlflow.xgboost
    rng = np.random.default_rng(77)
    X = features(rng, 300, 4)
    Z = np.nan_to_num(X)
    y = (Z[:, 0] - Z[:, 1] > 0.2).astype(int)
    m = xgb.XGBClassifier(**dict(COMMON, n_estimators=20)).fit(X, y)
    T = test_rows(rng, 4)
    d = os.path.join(OUT, name)

    def save(path):
        tmp = os.path.join(OUT, "_mlflow_tmp")
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        mlflow.xgboost.save_model(m, tmp, model_format="xgb")
        shutil.copy(os.path.join(tmp, "model.xgb"), os.path.join(d, "model.xgb"))
        # MLmodel without the fields that change on every run.
        with open(os.path.join(tmp, "MLmodel")) as fp:
            lines = [ln for ln in fp if not ln.startswith(("utc_time_created", "model_uuid", "model_size_bytes", "model_id"))]
        with open(os.path.join(d, "MLmodel"), "w") as fp:
            fp.writelines(lines)
        shutil.rmtree(tmp)

    write_case(name, [tensor("input", T, "FP32")], classifier_outputs(m, T, 2),
               options={"data": "model.xgb", "model_class": "xgboost.sklearn.XGBClassifier"},
               models={"model.xgb": save})
    with open(os.path.join(d, "model.xgb"), "rb") as fp:
        assert fp.read(2) == b"{L", "MLflow's model.xgb is expected to be UBJSON"


def main():
    os.makedirs(OUT, exist_ok=True)
    lin = lambda rng, Z: Z[:, 0] * 2 + np.sin(Z[:, 1]) * 3 - Z[:, 2] * Z[:, 3] + 0.1 * rng.normal(size=len(Z))
    pos = lambda rng, Z: np.exp(0.4 * Z[:, 0] - 0.3 * Z[:, 1] + 0.2 * Z[:, 2]) + 0.05 * rng.random(len(Z))
    count = lambda rng, Z: rng.poisson(np.exp(0.5 * Z[:, 0] - 0.4 * Z[:, 1] + 0.3)).astype(float)

    # Regression objectives (XGBRegressor, as MLflow saves it).
    sk_regressor("reg_squarederror", "reg:squarederror", lin, n_estimators=40)
    sk_regressor("count_poisson", "count:poisson", count)
    sk_regressor("reg_gamma", "reg:gamma", pos)
    sk_regressor("reg_tweedie", "reg:tweedie", count, extra={"tweedie_variance_power": 1.3})
    sk_regressor("reg_squaredlogerror", "reg:squaredlogerror", pos, n_estimators=15, formats=("json",))
    sk_regressor("reg_pseudohubererror", "reg:pseudohubererror", lin, n_estimators=15, formats=("json",))
    sk_regressor("reg_absoluteerror", "reg:absoluteerror", lin, n_estimators=15, formats=("json",))
    sk_regressor("reg_logistic", "reg:logistic",
                 lambda rng, Z: 1 / (1 + np.exp(-(Z[:, 0] - Z[:, 1]))), n_estimators=15, formats=("json",))
    sk_regressor("reg_quantile_two", "reg:quantileerror", lin, n_estimators=25,
                 extra={"quantile_alpha": np.array([0.1, 0.9])})
    sk_regressor("reg_dart", "reg:squarederror", lin, n_estimators=30,
                 extra={"booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0, "sample_type": "weighted",
                        "normalize_type": "forest"})
    sk_regressor("reg_gblinear", "reg:squarederror", lin, n_estimators=20,
                 extra={"booster": "gblinear", "learning_rate": 0.5})
    sk_regressor("reg_user_base_score", "reg:gamma", pos, n_estimators=10, formats=("json",),
                 extra={"base_score": 2.5})
    sk_regressor("reg_forest", "reg:squarederror", lin, n_estimators=4, formats=("json",),
                 extra={"num_parallel_tree": 5, "subsample": 0.8, "colsample_bynode": 0.8})

    # Early stopping: the sklearn wrapper predicts with best_iteration.
    rng = np.random.default_rng(99)
    X = features(rng, 500, 4)
    y = lin(rng, np.nan_to_num(X)) + 2 * rng.normal(size=500)
    m = xgb.XGBRegressor(**dict(COMMON, n_estimators=60, early_stopping_rounds=3, learning_rate=0.6))
    m.fit(X[:300], y[:300], eval_set=[(X[300:], y[300:])], verbose=False)
    assert m.best_iteration + 1 < m.get_booster().num_boosted_rounds(), "early stopping did not stop"
    T = test_rows(rng, 4)
    write_case("reg_early_stopping", [tensor("input", T, "FP32")],
               [tensor("predictions", np.asarray(m.predict(T), dtype=np.float32), "FP32")],
               options=SK_REG, booster=m.get_booster(), formats=("json",))

    # Classifiers.
    sk_classifier("binary_logistic", 2, n_estimators=30)
    sk_classifier("multi_softprob", 3, n_estimators=20)
    sk_classifier("multi_softmax", 3, n_estimators=20, extra={"objective": "multi:softmax"})
    sk_classifier("binary_hinge", 2, n_estimators=15, extra={"objective": "binary:hinge"}, formats=("json",))
    sk_classifier("binary_dart", 2, n_estimators=25,
                  extra={"booster": "dart", "rate_drop": 0.2, "skip_drop": 0.0}, formats=("ubj",))
    sk_classifier("multi_gblinear", 3, n_estimators=15, extra={"booster": "gblinear"}, formats=("json",))
    sk_classifier("binary_forest", 2, n_estimators=1, formats=("ubj",),
                  extra={"num_parallel_tree": 8, "subsample": 0.7, "colsample_bynode": 0.7, "learning_rate": 1.0})
    categorical_case("categorical_partition", max_cat_to_onehot=1)
    categorical_case("categorical_onehot", max_cat_to_onehot=64)
    string_categories_case("categorical_strings")
    mlflow_case("mlflow_xgb_dir")

    # Boosters trained with xgb.train (MLflow's model_class xgboost.core.Booster).
    booster_case("booster_logitraw", {"objective": "binary:logitraw"},
                 dm_labels(lambda rng, Z: (Z[:, 0] + Z[:, 1] > 0).astype(float)), margin=True)
    booster_case("booster_logistic", {"objective": "binary:logistic", "base_score": 0.3},
                 dm_labels(lambda rng, Z: (Z[:, 0] - Z[:, 2] > 0.3).astype(float)), formats=("json",))
    booster_case("booster_softprob", {"objective": "multi:softprob", "num_class": 4},
                 dm_labels(lambda rng, Z: np.clip(np.floor(Z[:, 0] + 2), 0, 3)), rounds=10, formats=("ubj",))
    booster_case("booster_softmax", {"objective": "multi:softmax", "num_class": 3},
                 dm_labels(lambda rng, Z: np.clip(np.floor(Z[:, 1] + 1.5), 0, 2)), rounds=10, formats=("json",))

    def cox(rng, X):
        Z = np.nan_to_num(X)
        t = rng.exponential(np.exp(-(Z[:, 0] - 0.5 * Z[:, 1])))
        censored = rng.random(len(t)) < 0.3
        return xgb.DMatrix(X, label=np.where(censored, -t, t))

    def aft(rng, X):
        Z = np.nan_to_num(X)
        t = rng.exponential(np.exp(Z[:, 0] - 0.5 * Z[:, 1])) + 0.01
        upper = np.where(rng.random(len(t)) < 0.3, np.inf, t)
        d = xgb.DMatrix(X)
        d.set_float_info("label_lower_bound", t)
        d.set_float_info("label_upper_bound", upper)
        return d

    def rank(rng, X):
        Z = np.nan_to_num(X)
        rel = np.clip(np.round(Z[:, 0] + Z[:, 1] + 1.5), 0, 4)
        d = xgb.DMatrix(X, label=rel)
        d.set_group([20] * (len(X) // 20))
        return d

    booster_case("booster_cox", {"objective": "survival:cox"}, cox, rounds=15, formats=("json",))
    booster_case("booster_aft", {"objective": "survival:aft", "aft_loss_distribution": "normal",
                                 "aft_loss_distribution_scale": 1.2}, aft, rounds=15, formats=("json",))
    booster_case("booster_rank_pairwise", {"objective": "rank:pairwise"}, rank, rounds=10, formats=("json",))
    booster_case("booster_rank_ndcg", {"objective": "rank:ndcg"}, rank, rounds=10, formats=("ubj",))
    booster_case("booster_rank_map", {"objective": "rank:map"},
                 lambda rng, X: (lambda d: (d.set_group([20] * 20), d)[1])(
                     xgb.DMatrix(X, label=(np.nan_to_num(X)[:, 0] > 0).astype(float))),
                 rounds=10, formats=("json",))
    booster_case("booster_multi_target", {"objective": "reg:squarederror", "multi_strategy": "one_output_per_tree"},
                 lambda rng, X: xgb.DMatrix(X, label=np.stack([np.nan_to_num(X)[:, 0], np.nan_to_num(X)[:, 1] * 2], 1)),
                 rounds=10, formats=("ubj",))

    # Raw margins (output_margin), which check base_score's link directly.
    rng = np.random.default_rng(5)
    X = features(rng, 300, 4)
    Z = np.nan_to_num(X)
    T = test_rows(rng, 4)
    small = dict(COMMON, n_estimators=10, max_depth=3)
    margin_case("margin_binary_logistic", xgb.XGBClassifier(**small),
                (X, (Z[:, 0] + Z[:, 1] > 0).astype(int)), T, SK_CLF)
    margin_case("margin_softprob", xgb.XGBClassifier(**small),
                (X, np.clip(np.floor(Z[:, 2] + 1.5), 0, 2).astype(int)), T, SK_CLF)
    margin_case("margin_gamma", xgb.XGBRegressor(**dict(small, objective="reg:gamma", base_score=2.5)),
                (X, pos(rng, Z)), T, SK_REG)

    # A model the runtime refuses: multi-target trees.
    unsupported = os.path.join(HERE, "unsupported")
    os.makedirs(unsupported, exist_ok=True)
    b = xgb.train({"tree_method": "hist", "multi_strategy": "multi_output_tree", "max_depth": 2, "nthread": 1},
                  xgb.DMatrix(X, label=np.stack([Z[:, 0], Z[:, 1]], 1)), 3)
    b.save_model(os.path.join(unsupported, "multi_output_tree.json"))

    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"total {total/1024/1024:.2f} MiB")


if __name__ == "__main__":
    main()
