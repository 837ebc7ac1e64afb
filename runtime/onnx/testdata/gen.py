#!/usr/bin/env python3
"""Writes the ONNX-ML correctness fixtures of runtime/onnx.

Run from the repository root with the shared virtualenv:

    .venv/bin/python runtime/onnx/testdata/gen.py

Each case is a directory testdata/models/<case>/ with model.onnx,
inputs.json and expected.json (layout: /work/notes/fixtures.md). The
models are trained with scikit-learn, XGBoost and LightGBM and converted
with skl2onnx / onnxmltools, or built by hand with onnx.helper to reach
operator attributes the converters never write; the expected outputs are
what onnxruntime computes on the same model and inputs (one thread, so the
float summation order is fixed).

Case names of this script start with "skl_", "xgb_", "lgbm_" or "ml_"; it
removes and rewrites only those directories (gen_core.py owns the others).
Everything is deterministic: fixed seeds, single-threaded training.
"""

import json
import math
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP
from onnx import helper

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
PREFIXES = ("skl_", "xgb_", "lgbm_", "ml_")
ML = "ai.onnx.ml"

OIP = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.bool_): "BOOL",
}


def jnum(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def jtensor(name, arr, labels=None):
    arr = np.asarray(arr)
    if arr.dtype.kind in ("U", "S", "O"):
        dt = "BYTES"
        data = [x.decode() if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)]
    else:
        dt = OIP[arr.dtype]
        data = [jnum(x) for x in arr.reshape(-1)]
    t = {"name": name, "datatype": dt, "shape": [int(d) for d in arr.shape], "data": data}
    if labels is not None:
        t["labels"] = [str(x) for x in labels]
    return t


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def zipmap_labels(model, output):
    """The class labels of the ZipMap node producing output, in order."""
    for n in model.graph.node:
        if n.op_type == "ZipMap" and output in n.output:
            for a in n.attribute:
                if a.name == "classlabels_int64s":
                    return list(a.ints)
                if a.name == "classlabels_strings":
                    return [s.decode() for s in a.strings]
    raise ValueError("no ZipMap produces " + output)


def save(name, model, inputs):
    """Writes case name: the model, its inputs and onnxruntime's outputs."""
    assert name.startswith(PREFIXES), name
    # The converters name graphs with a random uuid and list opsets in
    # set order: make both deterministic.
    model.graph.name = name
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    onnx.checker.check_model(model)
    d = os.path.join(MODELS, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    data = model.SerializeToString()
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(data)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, inputs)
    expected = []
    for oname, val in zip(names, outs):
        if isinstance(val, list):  # ZipMap: a sequence of maps
            labels = zipmap_labels(model, oname)
            arr = np.array([[row[k] for k in labels] for row in val], dtype=np.float32)
            expected.append(jtensor(oname, arr, labels))
        else:
            expected.append(jtensor(oname, val))
    write_json(os.path.join(d, "inputs.json"), {"inputs": [jtensor(k, v) for k, v in inputs.items()]})
    write_json(os.path.join(d, "expected.json"), {"outputs": expected})
    size = os.path.getsize(os.path.join(d, "model.onnx"))
    assert size < 1 << 20, (name, size)
    print(f"{name:32s} {size:8d} bytes  outputs {names}")


def with_nan(X, rng, frac=0.15):
    """X with some entries set to NaN (at least one per column)."""
    X = X.copy()
    mask = rng.rand(*X.shape) < frac
    for j in range(X.shape[1]):
        mask[j % X.shape[0], j] = True
    X[mask] = np.nan
    return X


def data(rng, n, f, classes=None):
    X = rng.randn(n, f).astype(np.float32)
    w = rng.randn(f)
    z = X @ w + 0.3 * rng.randn(n)
    if classes is None:
        return X, (z + 0.5 * np.sin(3 * X[:, 0])).astype(np.float32)
    q = np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1])
    return X, np.digitize(z, q)


# ------------------------------------------------------------ scikit-learn


def skl(model, X, zipmap=True, target_opset=21, **kw):
    from skl2onnx import to_onnx

    opts = {}
    if not zipmap:
        opts = {id(model): {"zipmap": False}}
    return to_onnx(model, X[:1], options=opts, target_opset=target_opset, **kw)


def sklearn_cases():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Binarizer, LabelEncoder, Normalizer, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, SVR, OneClassSVM
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rng = np.random.RandomState(42)

    # Logistic regression, binary and multiclass, with and without ZipMap.
    X, y = data(rng, 200, 5, classes=2)
    Xt = rng.randn(16, 5).astype(np.float32)
    m = LogisticRegression(max_iter=1000).fit(X, y)
    save("skl_logreg_binary", skl(m, X), {"X": Xt})
    save("skl_logreg_binary_nozipmap", skl(m, X, zipmap=False), {"X": Xt})

    X, y = data(rng, 300, 4, classes=3)
    names = np.array(["alpha", "beta", "gamma"])[y]
    Xt = rng.randn(16, 4).astype(np.float32)
    m = LogisticRegression(max_iter=1000).fit(X, names)
    save("skl_logreg_multi", skl(m, X), {"X": Xt})
    save("skl_logreg_multi_nozipmap", skl(m, X, zipmap=False), {"X": Xt})

    # Decision trees: NaN inputs go down the false branch (the converted
    # trees carry no missing-value direction).
    X, y = data(rng, 300, 6, classes=3)
    Xt = with_nan(rng.randn(24, 6).astype(np.float32), rng)
    m = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y)
    save("skl_dtree_clf", skl(m, X, zipmap=False), {"X": Xt})
    X, y = data(rng, 300, 6)
    m = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, y)
    save("skl_dtree_reg", skl(m, X), {"X": with_nan(rng.randn(24, 6).astype(np.float32), rng)})
    # Random forests.
    X, y = data(rng, 400, 6, classes=2)
    m = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0, n_jobs=1).fit(X, y)
    save("skl_rf_clf_binary", skl(m, X), {"X": with_nan(rng.randn(24, 6).astype(np.float32), rng)})
    X, y = data(rng, 1000, 4, classes=3)
    m = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0, n_jobs=1).fit(X, y)
    # The benchmark model (BenchmarkForest100): 100 trees, depth 8, 4 features.
    save("skl_rf100_clf", skl(m, X, zipmap=False), {"X": with_nan(rng.randn(64, 4).astype(np.float32), rng)})
    X, y = data(rng, 400, 5)
    m = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0, n_jobs=1).fit(X, y)
    save("skl_rf_reg", skl(m, X), {"X": with_nan(rng.randn(24, 5).astype(np.float32), rng)})

    # Gradient boosting.
    X, y = data(rng, 400, 5, classes=2)
    m = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    save("skl_gb_clf_binary", skl(m, X), {"X": with_nan(rng.randn(24, 5).astype(np.float32), rng)})
    X, y = data(rng, 400, 5, classes=4)
    m = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    save("skl_gb_clf_multi", skl(m, X, zipmap=False), {"X": with_nan(rng.randn(24, 5).astype(np.float32), rng)})
    X, y = data(rng, 400, 5)
    m = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(X, y)
    save("skl_gb_reg", skl(m, X), {"X": with_nan(rng.randn(24, 5).astype(np.float32), rng)})

    # A ColumnTransformer pipeline with one graph input per column: numeric
    # columns scaled, string categories one-hot encoded (unknown ones give
    # zeros), into a logistic regression.
    n = 300
    age = rng.uniform(18, 80, n).astype(np.float32)
    income = rng.lognormal(10, 0.5, n).astype(np.float32)
    city = rng.choice(["paris", "lyon", "nantes", "lille"], n)
    plan = rng.choice(["free", "pro", "team"], n)
    z = 0.04 * (age - 45) + (income > 25000) + (city == "paris") - (plan == "free") + 0.3 * rng.randn(n)
    target = (z > 0.4).astype(np.int64)
    import pandas as pd

    df = pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan})
    ct = ColumnTransformer([
        ("num", StandardScaler(), ["age", "income"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
    ])
    pipe = Pipeline([("pre", ct), ("lr", LogisticRegression(max_iter=1000))]).fit(df, target)
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [("age", FloatTensorType([None, 1])), ("income", FloatTensorType([None, 1])),
             ("city", StringTensorType([None, 1])), ("plan", StringTensorType([None, 1]))]
    onx = convert_sklearn(pipe, initial_types=types, target_opset=21)
    k = 12
    save("skl_pipeline_columns", onx, {
        "age": rng.uniform(18, 80, (k, 1)).astype(np.float32),
        "income": rng.lognormal(10, 0.5, (k, 1)).astype(np.float32),
        "city": np.array([["paris"], ["lyon"], ["nantes"], ["lille"], ["rome"], ["paris"], ["lyon"], ["nantes"],
                          ["lille"], ["paris"], ["berlin"], ["lyon"]], dtype=object),
        "plan": np.array([["free"], ["pro"], ["team"], ["pro"], ["free"], ["gold"], ["team"], ["free"], ["pro"],
                          ["team"], ["pro"], ["free"]], dtype=object),
    })

    # Support vector machines.
    X, y = data(rng, 150, 4, classes=3)
    Xt = rng.randn(16, 4).astype(np.float32)
    m = SVC(kernel="rbf", probability=True, random_state=0).fit(X, y)
    save("skl_svc_rbf_proba", skl(m, X, zipmap=False), {"X": Xt})
    m = SVC(kernel="rbf", probability=False).fit(X, y)
    save("skl_svc_rbf_multi", skl(m, X, zipmap=False), {"X": Xt})
    m = SVC(kernel="poly", degree=3, probability=True, random_state=0).fit(X, y)
    save("skl_svc_poly_proba", skl(m, X), {"X": Xt})
    X, y = data(rng, 150, 4, classes=2)
    m = SVC(kernel="linear", probability=False).fit(X, y)
    save("skl_svc_linear_binary", skl(m, X, zipmap=False), {"X": Xt})
    m = SVC(kernel="sigmoid", probability=True, random_state=0, gamma=0.1).fit(X, y)
    save("skl_svc_sigmoid_binary_proba", skl(m, X, zipmap=False), {"X": Xt})
    X, y = data(rng, 150, 4)
    m = SVR(kernel="rbf", C=2.0).fit(X, y)
    save("skl_svr_rbf", skl(m, X), {"X": Xt})
    m = OneClassSVM(kernel="rbf", gamma=0.3, nu=0.2).fit(X)
    save("skl_oneclass_svm", skl(m, X), {"X": Xt * 2})

    # Linear regression with two targets.
    X = rng.randn(100, 4).astype(np.float32)
    Y = np.stack([X @ rng.randn(4) + 1, X @ rng.randn(4) - 2], axis=1).astype(np.float32)
    m = LinearRegression().fit(X, Y)
    save("skl_linreg", skl(m, X), {"X": rng.randn(10, 4).astype(np.float32)})

    # Preprocessing.
    X = with_nan(rng.randn(50, 4).astype(np.float32), rng)
    m = SimpleImputer(strategy="mean").fit(X)
    save("skl_imputer", skl(m, X), {"X": with_nan(rng.randn(12, 4).astype(np.float32), rng, 0.3)})
    X = rng.randn(20, 4).astype(np.float32)
    save("skl_binarizer", skl(Binarizer(threshold=0.25).fit(X), X), {"X": rng.randn(10, 4).astype(np.float32)})
    for norm in ("l1", "l2", "max"):
        save(f"skl_normalizer_{norm}", skl(Normalizer(norm=norm).fit(X), X),
             {"X": np.vstack([rng.randn(8, 4), np.zeros((1, 4))]).astype(np.float32)})
    scaler = Pipeline([("s", StandardScaler()), ("n", Normalizer())]).fit(X)
    save("skl_scaler_normalizer", skl(scaler, X), {"X": rng.randn(8, 4).astype(np.float32)})
    le = LabelEncoder().fit(["cat", "dog", "emu", "yak"])
    from skl2onnx.common.data_types import StringTensorType as STT

    save("skl_label_encoder", convert_sklearn(le, initial_types=[("X", STT([None]))], target_opset=21),
         {"X": np.array(["dog", "yak", "cat", "emu", "cow", "dog"], dtype=object)})


# ------------------------------------------------------- XGBoost, LightGBM


def boosting_cases():
    import lightgbm as lgb
    import xgboost as xgb
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    rng = np.random.RandomState(7)
    X, y = data(rng, 500, 6, classes=3)
    Xm = with_nan(X, rng, 0.1)  # trained with missing values: learned directions
    m = xgb.XGBClassifier(n_estimators=20, max_depth=4, learning_rate=0.3, n_jobs=1, random_state=0,
                          tree_method="exact").fit(Xm, y)
    onx = convert_xgboost(m, initial_types=[("X", FloatTensorType([None, 6]))], target_opset=15)
    save("xgb_clf_multi", onx, {"X": with_nan(rng.randn(24, 6).astype(np.float32), rng)})
    X, y = data(rng, 500, 5, classes=2)
    m = xgb.XGBClassifier(n_estimators=25, max_depth=3, n_jobs=1, random_state=0, tree_method="exact").fit(
        with_nan(X, rng, 0.1), y)
    onx = convert_xgboost(m, initial_types=[("X", FloatTensorType([None, 5]))], target_opset=15)
    save("xgb_clf_binary", onx, {"X": with_nan(rng.randn(24, 5).astype(np.float32), rng)})

    X, y = data(rng, 400, 5)
    m = xgb.XGBRegressor(n_estimators=30, max_depth=4, n_jobs=1, random_state=0, tree_method="exact",
                         base_score=0.5).fit(with_nan(X, rng, 0.1), y)
    onx = convert_xgboost(m, initial_types=[("X", FloatTensorType([None, 5]))], target_opset=15)
    save("xgb_reg", onx, {"X": with_nan(rng.randn(24, 5).astype(np.float32), rng)})

    # LightGBM with a categorical feature (column 0, integer codes) and NaN.
    X, y = data(rng, 600, 5, classes=2)
    X[:, 0] = rng.randint(0, 6, len(X))
    y = ((y == 1) ^ np.isin(X[:, 0], [1, 4])).astype(int)
    Xm = with_nan(X, rng, 0.08)
    m = lgb.LGBMClassifier(n_estimators=20, num_leaves=8, min_child_samples=5, n_jobs=1, random_state=0,
                           deterministic=True, verbose=-1).fit(Xm, y, categorical_feature=[0])
    onx = convert_lightgbm(m, initial_types=[("X", FloatTensorType([None, 5]))], target_opset=15,
                           zipmap=False)
    Xt = rng.randn(24, 5).astype(np.float32)
    Xt[:, 0] = rng.randint(0, 7, len(Xt))
    save("lgbm_clf_binary_categorical", onx, {"X": with_nan(Xt, rng)})
    X, y = data(rng, 600, 4, classes=3)
    m = lgb.LGBMClassifier(n_estimators=15, num_leaves=6, n_jobs=1, random_state=0, deterministic=True,
                           verbose=-1).fit(with_nan(X, rng, 0.1), y)
    onx = convert_lightgbm(m, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=15)
    save("lgbm_clf_multi", onx, {"X": with_nan(rng.randn(24, 4).astype(np.float32), rng)})
    X, y = data(rng, 500, 4)
    m = lgb.LGBMRegressor(n_estimators=25, num_leaves=8, n_jobs=1, random_state=0, deterministic=True,
                          verbose=-1).fit(with_nan(X, rng, 0.1), y)
    onx = convert_lightgbm(m, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=15)
    save("lgbm_reg", onx, {"X": with_nan(rng.randn(24, 4).astype(np.float32), rng)})


# ------------------------------------------------------ hand-built graphs


def mk(nodes, inputs, outputs, ml_opset=3, initializers=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, ml_opset)])
    m.ir_version = 8 if ml_opset < 4 else 10
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def ft(name, values, elem=TP.FLOAT):
    values = np.asarray(values)
    return helper.make_tensor(name, elem, values.shape, values.reshape(-1).tolist())


def small_tree(prefix="", **extra):
    """Two trees over 3 features using every comparison mode; tree 0 has
    two weights per leaf (targets 0 and 1), tree 1 one (target 1)."""
    a = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4],
        nodes_featureids=[0, 1, 2, 0, 0, 0, 0, 2, 1, 0, 0, 0],
        nodes_modes=["BRANCH_LT", "BRANCH_GTE", "BRANCH_EQ", "LEAF", "LEAF", "LEAF", "LEAF",
                     "BRANCH_NEQ", "BRANCH_GT", "LEAF", "LEAF", "LEAF"],
        nodes_values=[0.25, -0.5, 1.0, 0, 0, 0, 0, 0.0, 0.75, 0, 0, 0],
        nodes_truenodeids=[1, 3, 5, 0, 0, 0, 0, 1, 3, 0, 0, 0],
        nodes_falsenodeids=[2, 4, 6, 0, 0, 0, 0, 2, 4, 0, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    )
    a[prefix + "treeids"] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    a[prefix + "nodeids"] = [3, 3, 4, 4, 5, 5, 6, 6, 2, 3, 4]
    a[prefix + "ids"] = [0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1]
    a[prefix + "weights"] = [1.5, -0.5, 0.25, 2.0, -1.0, 0.75, 3.0, -2.5, 0.5, -1.25, 2.25]
    a.update(extra)
    return a


def tree_inputs(rng, n=20, f=3, dtype=np.float32):
    X = rng.choice([-1.0, -0.5, 0.0, 0.25, 0.75, 1.0, 2.0], size=(n, f)) + (rng.rand(n, f) < 0.3) * rng.randn(n, f)
    X = X.astype(dtype)
    X[1, 0] = X[2, 2] = X[3, 1] = X[4, 2] = X[5, 0] = np.nan
    return X


def handbuilt_cases():
    rng = np.random.RandomState(3)
    X = tree_inputs(rng)

    # TreeEnsembleRegressor: every aggregate function and post-transform.
    nodes, outs = [], []
    for i, (agg, post, base) in enumerate([
        ("SUM", "NONE", [0.5, -0.25]), ("AVERAGE", "NONE", [1.0, 2.0]), ("MIN", "NONE", []),
        ("MAX", "NONE", [0.1, 0.2]), ("SUM", "LOGISTIC", []), ("SUM", "SOFTMAX", [0.3, 0.0]),
        ("SUM", "SOFTMAX_ZERO", []), ("AVERAGE", "PROBIT", [])]):
        attrs = small_tree("target_", n_targets=2, aggregate_function=agg, post_transform=post)
        if base:
            attrs["base_values"] = base
        nodes.append(helper.make_node("TreeEnsembleRegressor", ["X"], [f"Y{i}"], domain=ML, name=f"reg{i}", **attrs))
        outs.append(vi(f"Y{i}", TP.FLOAT, [None, 2]))
    save("ml_tree_regressor_modes", mk(nodes, [vi("X", TP.FLOAT, [None, 3])], outs), {"X": X})

    # One target: onnxruntime applies only PROBIT; the first weight of a leaf.
    nodes, outs = [], []
    for i, (agg, post, base) in enumerate([("SUM", "NONE", [0.75]), ("AVERAGE", "NONE", []), ("MIN", "NONE", [1.0]),
                                           ("MAX", "LOGISTIC", []), ("SUM", "PROBIT", [])]):
        attrs = small_tree("target_", n_targets=1, aggregate_function=agg, post_transform=post)
        attrs["target_ids"] = [0] * len(attrs["target_ids"])
        if base:
            attrs["base_values"] = base
        nodes.append(helper.make_node("TreeEnsembleRegressor", ["X"], [f"Y{i}"], domain=ML, name=f"one{i}", **attrs))
        outs.append(vi(f"Y{i}", TP.FLOAT, [None, 1]))
    X01 = np.clip(np.nan_to_num(X, nan=0.3) * 0.2 + 0.5, 0.05, 0.95).astype(np.float32)
    save("ml_tree_regressor_single", mk(nodes, [vi("X", TP.FLOAT, [None, 3])], outs), {"X": X01})

    # Double input with *_as_tensor thresholds and weights.
    attrs = small_tree("target_", n_targets=2)
    for k in ("nodes_values", "target_weights"):
        attrs[k + "_as_tensor"] = ft(k, np.array(attrs.pop(k)) + 1e-9, TP.DOUBLE)
    attrs["base_values_as_tensor"] = ft("b", [0.1, 0.2], TP.DOUBLE)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, **attrs)
    save("ml_tree_regressor_double", mk([node], [vi("X", TP.DOUBLE, [None, 3])], [vi("Y", TP.FLOAT, [None, 2])]),
         {"X": tree_inputs(rng, dtype=np.float64)})

    # TreeEnsembleClassifier: three classes, base values, string labels,
    # every post-transform.
    nodes, outs = [], []
    for i, post in enumerate(["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"]):
        attrs = small_tree("class_", classlabels_strings=["no", "maybe", "yes"], post_transform=post)
        attrs["class_ids"] = [0, 1, 2, 1, 0, 2, 1, 2, 0, 2, 1]
        if i % 2:
            attrs["base_values"] = [0.1, -0.2, 0.3]
        nodes.append(helper.make_node("TreeEnsembleClassifier", ["X"], [f"L{i}", f"S{i}"], domain=ML, name=f"c{i}", **attrs))
        outs += [vi(f"L{i}", TP.STRING, [None]), vi(f"S{i}", TP.FLOAT, [None, 3])]
    save("ml_tree_classifier_multi", mk(nodes, [vi("X", TP.FLOAT, [None, 3])], outs), {"X": X})

    # Binary classifiers the way onnxruntime special-cases them.
    nodes, outs = [], []
    variants = [
        # weights for class 0 only, all positive (random-forest style)
        dict(ids=0, weights="pos", base=None, post="NONE"),
        # class 1 only, mixed signs, logistic (gradient-boosting style)
        dict(ids=1, weights="mixed", base=None, post="LOGISTIC"),
        dict(ids=0, weights="mixed", base=[0.4], post="LOGISTIC"),
        dict(ids=0, weights="mixed", base=[0.2, 0.3], post="NONE"),
        dict(ids=1, weights="mixed", base=[0.2, 0.3], post="NONE"),
        dict(ids=0, weights="pos", base=None, post="PROBIT"),
        dict(ids=0, weights="pos", base=None, post="LOGISTIC"),
        dict(ids=0, weights="pos", base=None, post="SOFTMAX"),
        dict(ids=0, weights="pos", base=[0.5], post="SOFTMAX_ZERO"),
        dict(ids=1, weights="pos", base=[0.25], post="SOFTMAX"),
        dict(ids=0, weights="mixed", base=None, post="SOFTMAX_ZERO"),
        # both classes weighted: not onnxruntime's binary case
        dict(ids=None, weights="mixed", base=None, post="NONE"),
        dict(ids=None, weights="pos", base=[0.1, 0.5], post="SOFTMAX"),
    ]
    for i, v in enumerate(variants):
        attrs = small_tree("class_", classlabels_int64s=[3, 8], post_transform=v["post"])
        nw = len(attrs["class_ids"])
        attrs["class_ids"] = [v["ids"]] * nw if v["ids"] is not None else [j % 2 for j in range(nw)]
        if v["weights"] == "pos":
            attrs["class_weights"] = [abs(w) / 4 for w in attrs["class_weights"]]
        if v["base"]:
            attrs["base_values"] = v["base"]
        nodes.append(helper.make_node("TreeEnsembleClassifier", ["X"], [f"L{i}", f"S{i}"], domain=ML, name=f"b{i}", **attrs))
        outs += [vi(f"L{i}", TP.INT64, [None]), vi(f"S{i}", TP.FLOAT, [None, 2])]
    save("ml_tree_classifier_binary", mk(nodes, [vi("X", TP.FLOAT, [None, 3])], outs), {"X": X01})

    # Random forests over a small grid of thresholds (so that EQ and NEQ
    # splits and ties matter), every mode, random missing-value directions,
    # several weights per leaf: regressors and classifiers with every
    # aggregate and post-transform, checked against onnxruntime.
    grid = [-1.0, -0.5, 0.0, 0.5, 1.0]

    def random_forest(prefix, n_trees, n_targets, leaf_weights=2):
        a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                             "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                             prefix + "treeids", prefix + "nodeids", prefix + "ids", prefix + "weights")}
        modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
        for t in range(n_trees):
            count = [0]

            def grow(depth):
                nid = count[0]
                count[0] += 1
                a["nodes_treeids"].append(t)
                a["nodes_nodeids"].append(nid)
                pos = len(a["nodes_nodeids"]) - 1
                if depth == 0 or rng.rand() < 0.2:
                    a["nodes_featureids"].append(0)
                    a["nodes_modes"].append("LEAF")
                    a["nodes_values"].append(0.0)
                    a["nodes_truenodeids"].append(0)
                    a["nodes_falsenodeids"].append(0)
                    a["nodes_missing_value_tracks_true"].append(0)
                    for _ in range(1 + rng.randint(leaf_weights)):
                        a[prefix + "treeids"].append(t)
                        a[prefix + "nodeids"].append(nid)
                        a[prefix + "ids"].append(int(rng.randint(n_targets)))
                        a[prefix + "weights"].append(float(np.float32(rng.randn())))
                    return nid
                a["nodes_featureids"].append(int(rng.randint(4)))
                a["nodes_modes"].append(modes[rng.randint(len(modes))])
                a["nodes_values"].append(float(rng.choice(grid)))
                a["nodes_missing_value_tracks_true"].append(int(rng.randint(2)))
                a["nodes_truenodeids"].append(0)
                a["nodes_falsenodeids"].append(0)
                a["nodes_truenodeids"][pos] = grow(depth - 1)
                a["nodes_falsenodeids"][pos] = grow(depth - 1)
                return nid
            grow(4)
        return a

    Xr = rng.choice(grid + [0.25, -0.75, 2.0], size=(40, 4)).astype(np.float32)
    Xr[rng.rand(40, 4) < 0.12] = np.nan
    nodes, outs = [], []
    for i, (agg, post, nt) in enumerate([("SUM", "NONE", 3), ("AVERAGE", "SOFTMAX", 3), ("MIN", "LOGISTIC", 2),
                                         ("MAX", "SOFTMAX_ZERO", 3), ("SUM", "NONE", 1), ("AVERAGE", "NONE", 1),
                                         ("MIN", "NONE", 1), ("MAX", "NONE", 1)]):
        attrs = random_forest("target_", 6, nt)
        attrs.update(n_targets=nt, aggregate_function=agg, post_transform=post)
        if i % 3 == 0:
            attrs["base_values"] = rng.randn(nt).round(3).tolist()
        nodes.append(helper.make_node("TreeEnsembleRegressor", ["X"], [f"R{i}"], domain=ML, name=f"rr{i}", **attrs))
        outs.append(vi(f"R{i}", TP.FLOAT, [None, nt]))
    for i, (post, nc) in enumerate([("NONE", 4), ("SOFTMAX", 3), ("LOGISTIC", 2), ("NONE", 2), ("SOFTMAX_ZERO", 3)]):
        attrs = random_forest("class_", 5, nc)
        attrs.update(classlabels_int64s=list(range(10, 10 + nc)), post_transform=post)
        if i % 2 == 0:
            attrs["base_values"] = rng.randn(nc).round(3).tolist()
        nodes.append(helper.make_node("TreeEnsembleClassifier", ["X"], [f"L{i}", f"S{i}"], domain=ML, name=f"rc{i}", **attrs))
        outs += [vi(f"L{i}", TP.INT64, [None]), vi(f"S{i}", TP.FLOAT, [None, nc])]
    save("ml_tree_random", mk(nodes, [vi("X", TP.FLOAT, [None, 4])], outs), {"X": Xr})

    # Integer input to a tree classifier.
    attrs = small_tree("class_", classlabels_int64s=[0, 1, 2])
    attrs["class_ids"] = [0, 1, 2, 1, 0, 2, 1, 2, 0, 2, 1]
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["L", "S"], domain=ML, **attrs)
    save("ml_tree_classifier_int_input", mk([node], [vi("X", TP.INT64, [None, 3])],
                                            [vi("L", TP.INT64, [None]), vi("S", TP.FLOAT, [None, 3])]),
         {"X": rng.randint(-2, 3, (12, 3)).astype(np.int64)})

    # TreeEnsemble (ai.onnx.ml 5): set membership, missing-value tracking,
    # a single-leaf tree, every aggregate function, float and double.
    def te5(dtype, agg, post, name):
        el = TP.DOUBLE if dtype == np.float64 else TP.FLOAT
        return helper.make_node(
            "TreeEnsemble", ["X"], [name], domain=ML, name=name, n_targets=3, aggregate_function=agg, post_transform=post,
            tree_roots=[0, 4, 7],
            # tree 0: x0 in {1,3,5} ? (x1 <= 0.5 ? L0 : L1) : (x2 in {-2, 7, 40} ? L2 : L3)
            # tree 1: x1 > 0 ? (x0 == 2 ? L4 : L5) : (x2 member {0, 1, 2, 3} missing->true ? L6 : L7)
            # tree 2: a single leaf L8
            nodes_modes=helper.make_tensor("modes", TP.UINT8, (8,), [6, 0, 6, 0, 3, 4, 6, 0]),
            nodes_featureids=[0, 1, 2, 0, 1, 0, 2, 0],
            nodes_splits=ft("splits", [0, 0.5, 0, 0, 0.0, 2.0, 0, 0], el),
            membership_values=ft("members", [1, 3, 5, np.nan, -2, 7, 40, np.nan, 0, 1, 2, 3, np.nan], el),
            nodes_truenodeids=[1, 0, 2, 0, 5, 4, 6, 8],
            nodes_trueleafs=[0, 1, 1, 0, 0, 1, 1, 1],
            nodes_falsenodeids=[2, 1, 3, 0, 6, 5, 7, 8],
            nodes_falseleafs=[0, 1, 1, 0, 0, 1, 1, 1],
            nodes_missing_value_tracks_true=[0, 1, 0, 0, 1, 0, 1, 0],
            leaf_targetids=[0, 1, 2, 0, 1, 2, 0, 1, 2],
            leaf_weights=ft("weights", [1.0, -2.0, 3.5, 0.25, 4.0, -1.0, 2.0, 0.5, 0.125], el),
        )
    for dtype, suffix in ((np.float32, "float"), (np.float64, "double")):
        el = TP.DOUBLE if dtype == np.float64 else TP.FLOAT
        nodes, outs = [], []
        for i, (agg, post) in enumerate([(1, 0), (0, 0), (2, 0), (3, 0), (1, 1), (1, 2), (1, 3)]):
            nodes.append(te5(dtype, agg, post, f"Y{i}"))
            outs.append(vi(f"Y{i}", el, [None, 3]))
        Xm = rng.choice([0, 1, 2, 3, 4, 5, -2, 7, 40, 0.5, -0.25, 1.5, 7.5, 40.25, -2.5], size=(32, 3)).astype(dtype)
        for r, c in [(1, 0), (2, 1), (3, 2), (4, 0), (4, 1), (5, 2), (6, 1)]:
            Xm[r, c] = np.nan
        save(f"ml_tree_ensemble5_{suffix}", mk(nodes, [vi("X", el, [None, 3])], outs, ml_opset=5), {"X": Xm})

    # Linear models: binary with one coefficient row, every post-transform.
    Xl = rng.randn(10, 3).astype(np.float32)
    nodes, outs = [], []
    for i, (post, rows, labels) in enumerate([("NONE", 1, [0, 1]), ("LOGISTIC", 1, [5, 9]), ("NONE", 3, [1, 2, 3]),
                                             ("SOFTMAX", 3, [1, 2, 3]), ("SOFTMAX_ZERO", 3, [1, 2, 3]),
                                             ("LOGISTIC", 3, [1, 2, 3]), ("PROBIT", 2, [0, 1]),
                                             ("SOFTMAX", 1, [0, 1]), ("SOFTMAX_ZERO", 1, [2, 4])]):
        coef = rng.randn(rows * 3).round(3).tolist()
        if post == "PROBIT":
            coef = [c * 0.05 for c in coef]
        inter = (rng.randn(rows) * 0.1 + (0.5 if post == "PROBIT" else 0)).round(3).tolist()
        nodes.append(helper.make_node("LinearClassifier", ["X"], [f"L{i}", f"S{i}"], domain=ML, name=f"lc{i}",
                                      coefficients=coef, intercepts=inter, classlabels_ints=labels, post_transform=post))
        outs += [vi(f"L{i}", TP.INT64, [None]), vi(f"S{i}", TP.FLOAT, [None, max(rows, 2 if len(labels) == 2 else rows)])]
    nodes.append(helper.make_node("LinearClassifier", ["X"], ["LS", "SS"], domain=ML, name="strings",
                                  coefficients=rng.randn(3).tolist(), intercepts=[0.1], classlabels_strings=["neg", "pos"]))
    outs += [vi("LS", TP.STRING, [None]), vi("SS", TP.FLOAT, [None, 2])]
    for i, (post, t) in enumerate([("NONE", 1), ("NONE", 2), ("SOFTMAX", 3), ("LOGISTIC", 1)]):
        nodes.append(helper.make_node("LinearRegressor", ["X"], [f"R{i}"], domain=ML, name=f"lr{i}", targets=t,
                                      coefficients=rng.randn(3 * t).tolist(), intercepts=rng.randn(t).tolist(),
                                      post_transform=post))
        outs.append(vi(f"R{i}", TP.FLOAT, [None, t]))
    save("ml_linear_models", mk(nodes, [vi("X", TP.FLOAT, [None, 3])], outs), {"X": Xl})

    # SVMs built by hand: binary decisions with every post-transform, a
    # liblinear-style classifier, linear and polynomial regressors.
    Xs = rng.randn(10, 3).astype(np.float32)
    sv = rng.randn(5, 3).round(3)
    nodes, outs = [], []
    # (Not PROBIT: onnxruntime leaves the second score column of a binary
    # model unwritten then, so the expected values would be garbage.)
    for i, post in enumerate(["NONE", "LOGISTIC", "SOFTMAX"]):
        nodes.append(helper.make_node("SVMClassifier", ["X"], [f"L{i}", f"S{i}"], domain=ML, name=f"svc{i}",
                                      kernel_type="RBF", kernel_params=[0.4, 0.0, 3.0], classlabels_ints=[4, 6],
                                      vectors_per_class=[2, 3], support_vectors=sv.reshape(-1).tolist(),
                                      coefficients=[0.7, -0.2, 0.5, -0.6, -0.4], rho=[0.05 * i], post_transform=post))
        outs += [vi(f"L{i}", TP.INT64, [None]), vi(f"S{i}", TP.FLOAT, [None, 2])]
    for i, (post, labels) in enumerate([("NONE", [1, 2, 3]), ("SOFTMAX", [1, 2, 3]), ("NONE", [0, 1]), ("LOGISTIC", [0, 1])]):
        nodes.append(helper.make_node("SVMClassifier", ["X"], [f"LL{i}", f"LS{i}"], domain=ML, name=f"lin{i}",
                                      classlabels_ints=labels, coefficients=rng.randn(3 * len(labels)).round(3).tolist(),
                                      rho=[0.1], post_transform=post, kernel_params=[0.0, 0.0, 0.0]))
        outs += [vi(f"LL{i}", TP.INT64, [None]), vi(f"LS{i}", TP.FLOAT, [None, len(labels)])]
    nodes.append(helper.make_node("SVMClassifier", ["X"], ["ML", "MS"], domain=ML, name="multi_sigmoid",
                                  kernel_type="SIGMOID", kernel_params=[0.3, 0.1, 0.0], classlabels_strings=["a", "b", "c"],
                                  vectors_per_class=[2, 2, 1], support_vectors=sv.reshape(-1).tolist(),
                                  coefficients=rng.randn(10).round(3).tolist(), rho=[0.1, -0.2, 0.05], post_transform="NONE"))
    outs += [vi("ML", TP.STRING, [None]), vi("MS", TP.FLOAT, [None, 3])]
    nodes.append(helper.make_node("SVMRegressor", ["X"], ["R0"], domain=ML, name="reg_lin", coefficients=[0.5, -1.0, 2.0], rho=[0.3],
                                  kernel_params=[0.0, 0.0, 0.0]))
    nodes.append(helper.make_node("SVMRegressor", ["X"], ["R1"], domain=ML, name="reg_poly", kernel_type="POLY",
                                  kernel_params=[0.5, 1.0, 2.0], n_supports=5, support_vectors=sv.reshape(-1).tolist(),
                                  coefficients=[0.3, -0.1, 0.2, 0.4, -0.5], rho=[-0.2]))
    nodes.append(helper.make_node("SVMRegressor", ["X"], ["R2"], domain=ML, name="reg_one", kernel_type="RBF",
                                  kernel_params=[0.5, 0.0, 0.0], n_supports=5, support_vectors=sv.reshape(-1).tolist(),
                                  coefficients=[0.3, -0.1, 0.2, 0.4, -0.5], rho=[-0.05], one_class=1))
    outs += [vi("R0", TP.FLOAT, [None, 1]), vi("R1", TP.FLOAT, [None, 1]), vi("R2", TP.FLOAT, [None, 1])]
    save("ml_svm_models", mk(nodes, [vi("X", TP.FLOAT, [None, 3])], outs), {"X": Xs})

    # Preprocessing operators on one input.
    Xp = np.array([[1.5, -2.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 4.0, 2.5, -0.5], [2.0, 1.0, 7.0, 1.0]],
                  dtype=np.float32)
    nodes = [
        helper.make_node("Scaler", ["X"], ["scaled"], domain=ML, offset=[0.5, -1.0, 2.0, 0.0], scale=[2.0, 0.5, 1.5, -1.0]),
        helper.make_node("Scaler", ["X"], ["scaled1"], domain=ML, offset=[1.0], scale=[3.0]),
        helper.make_node("Normalizer", ["X"], ["max"], domain=ML, norm="MAX"),
        helper.make_node("Normalizer", ["X"], ["l1"], domain=ML, norm="L1"),
        helper.make_node("Normalizer", ["X"], ["l2"], domain=ML, norm="L2"),
        helper.make_node("Binarizer", ["X"], ["bin"], domain=ML, threshold=0.75),
        helper.make_node("Imputer", ["X"], ["imp"], domain=ML, imputed_value_floats=[9.0, 8.0, 7.0, 6.0], replaced_value_float=0.0),
        helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["picked"], domain=ML),
        helper.make_node("FeatureVectorizer", ["X", "scaled", "scaled1"], ["vec"], domain=ML, inputdimensions=[4, 2, 5]),
        helper.make_node("OneHotEncoder", ["ints"], ["onehot"], domain=ML, cats_int64s=[3, 1, 4, 5, 9], zeros=1),
        helper.make_node("OneHotEncoder", ["X"], ["onehot_f"], domain=ML, cats_int64s=[0, 1, 2, -1], zeros=1),
        helper.make_node("CategoryMapper", ["ints"], ["cats"], domain=ML, cats_int64s=[1, 3, 5], cats_strings=["one", "three", "five"],
                         default_string="other"),
        helper.make_node("CategoryMapper", ["words"], ["codes"], domain=ML, cats_int64s=[1, 3, 5], cats_strings=["one", "three", "five"],
                         default_int64=-7),
        helper.make_node("ZipMap", ["X"], ["zipped"], domain=ML, classlabels_int64s=[10, 20, 30, 40]),
        helper.make_node("ArrayFeatureExtractor", ["words", "idx2"], ["picked_words"], domain=ML),
    ]
    outs = [vi("scaled", TP.FLOAT, [None, 4]), vi("scaled1", TP.FLOAT, [None, 4]), vi("max", TP.FLOAT, [None, 4]),
            vi("l1", TP.FLOAT, [None, 4]), vi("l2", TP.FLOAT, [None, 4]), vi("bin", TP.FLOAT, [None, 4]),
            vi("imp", TP.FLOAT, [None, 4]), vi("picked", TP.FLOAT, [None, 2]), vi("vec", TP.FLOAT, [None, 11]),
            vi("onehot", TP.FLOAT, [None, 3, 5]), vi("onehot_f", TP.FLOAT, [None, 4, 4]), vi("cats", TP.STRING, [None, 3]),
            vi("codes", TP.INT64, [None, 2]),
            helper.make_value_info("zipped", helper.make_sequence_type_proto(helper.make_map_type_proto(TP.INT64, helper.make_tensor_type_proto(TP.FLOAT, [])))),
            vi("picked_words", TP.STRING, [None, 1])]
    init = [helper.make_tensor("idx", TP.INT64, (2,), [3, 1]), helper.make_tensor("idx2", TP.INT64, (1,), [1])]
    save("ml_preprocess", mk(nodes, [vi("X", TP.FLOAT, [None, 4]), vi("ints", TP.INT64, [None, 3]),
                                     vi("words", TP.STRING, [None, 2])], outs, initializers=init),
         {"X": Xp, "ints": np.array([[3, 1, 7], [5, 5, 9], [0, 4, 1], [9, 3, 3]], dtype=np.int64),
          "words": np.array([["one", "two"], ["five", "three"], ["", "one"], ["three", "three"]], dtype=object)})

    # Imputer with NaN as the replaced value, per-feature and broadcast.
    Xi = with_nan(rng.randn(8, 3).astype(np.float32), rng, 0.3)
    nodes = [helper.make_node("Imputer", ["X"], ["A"], domain=ML, imputed_value_floats=[1.0, 2.0, 3.0], replaced_value_float=float("nan")),
             helper.make_node("Imputer", ["X"], ["B"], domain=ML, imputed_value_floats=[-5.0], replaced_value_float=float("nan")),
             helper.make_node("Imputer", ["I"], ["C"], domain=ML, imputed_value_int64s=[100], replaced_value_int64=-1)]
    save("ml_imputer_nan", mk(nodes, [vi("X", TP.FLOAT, [None, 3]), vi("I", TP.INT64, [None, 2])],
                               [vi("A", TP.FLOAT, [None, 3]), vi("B", TP.FLOAT, [None, 3]), vi("C", TP.INT64, [None, 2])]),
         {"X": Xi, "I": np.array([[1, -1], [-1, -1], [3, 4]], dtype=np.int64)})

    # LabelEncoder 2 (lists) and 4 (tensors, defaults, NaN keys).
    nodes2 = [
        helper.make_node("LabelEncoder", ["S"], ["s2i"], domain=ML, keys_strings=["a", "b", "c"], values_int64s=[7, 8, 9], default_int64=-3),
        helper.make_node("LabelEncoder", ["I"], ["i2s"], domain=ML, keys_int64s=[1, 2, 3], values_strings=["x", "y", "z"]),
        helper.make_node("LabelEncoder", ["F"], ["f2f"], domain=ML, keys_floats=[0.5, 1.5, 2.5], values_floats=[10.0, 20.0, 30.0], default_float=-1.0),
        helper.make_node("LabelEncoder", ["S"], ["s2f"], domain=ML, keys_strings=["a", "c"], values_floats=[0.25, 0.75]),
    ]
    outs2 = [vi("s2i", TP.INT64, [None]), vi("i2s", TP.STRING, [None]), vi("f2f", TP.FLOAT, [None]), vi("s2f", TP.FLOAT, [None])]
    ins2 = {"S": np.array(["a", "c", "z", "b", "a"], dtype=object), "I": np.array([3, 1, 0, 2, 5], dtype=np.int64),
            "F": np.array([1.5, 0.5, 3.0, 2.5, np.nan], dtype=np.float32)}
    save("ml_label_encoder_v2", mk(nodes2, [vi("S", TP.STRING, [None]), vi("I", TP.INT64, [None]), vi("F", TP.FLOAT, [None])], outs2,
                                  ml_opset=2), ins2)
    nodes4 = [
        helper.make_node("LabelEncoder", ["S"], ["s2i16"], domain=ML, keys_tensor=helper.make_tensor("k", TP.STRING, (3,), [b"a", b"b", b"c"]),
                         values_tensor=ft("v", [1, 2, 3], TP.INT16), default_tensor=ft("d", [42], TP.INT16)),
        helper.make_node("LabelEncoder", ["D"], ["d2s"], domain=ML, keys_tensor=ft("k", [0.5, np.nan, 2.0], TP.DOUBLE),
                         values_strings=["half", "missing", "two"], default_string="none"),
        helper.make_node("LabelEncoder", ["F"], ["f2i"], domain=ML, keys_floats=[1.5, float("nan")], values_int64s=[15, 99]),
        helper.make_node("LabelEncoder", ["I"], ["i2d"], domain=ML, keys_tensor=ft("k", [4, 5], TP.INT64),
                         values_tensor=ft("v", [0.25, 0.5], TP.DOUBLE)),
    ]
    outs4 = [vi("s2i16", TP.INT16, [None]), vi("d2s", TP.STRING, [None]), vi("f2i", TP.INT64, [None]), vi("i2d", TP.DOUBLE, [None])]
    ins4 = {"S": ins2["S"], "D": np.array([2.0, np.nan, 0.5, 1.0, 0.5]), "F": ins2["F"],
            "I": np.array([5, 4, 3, 4, 0], dtype=np.int64)}
    save("ml_label_encoder_v4", mk(nodes4, [vi("S", TP.STRING, [None]), vi("D", TP.DOUBLE, [None]), vi("F", TP.FLOAT, [None]),
                                           vi("I", TP.INT64, [None])], outs4, ml_opset=4), ins4)


def main():
    os.makedirs(MODELS, exist_ok=True)
    for name in sorted(os.listdir(MODELS)):
        if name.startswith(PREFIXES):
            shutil.rmtree(os.path.join(MODELS, name))
    handbuilt_cases()
    sklearn_cases()
    boosting_cases()


if __name__ == "__main__":
    main()
