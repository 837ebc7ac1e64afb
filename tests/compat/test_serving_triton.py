"""`kiln serve` speaks the Open Inference Protocol to the real Triton
clients, tritonclient.http and tritonclient.grpc.

Health, server and model metadata, the repository index, and inference
with FP32, FP64, INT64 and BYTES tensors, with the binary tensor data
extension on and off for inputs and for requested outputs, request id
echo, and the errors a client sees (unknown model, wrong shape, datatype,
input or output name). Outputs are checked against onnxruntime on the same
ONNX files. Triton-only calls that Kiln does not claim (model config,
statistics, shared memory, model control) are not tested.
"""

from __future__ import annotations

import mlflow.onnx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from sklearn.datasets import make_classification, make_regression
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from tritonclient.utils import InferenceServerException

RTOL, ATOL = 1e-5, 1e-7
OPSET = {"": 17, "ai.onnx.ml": 3}
# Given, so mlflow does not spend seconds inferring them per model.
ONNX_REQS = ["onnx", "onnxruntime"]
PROTOCOLS = ["http", "grpc"]


def counts_graph():
    """A hand-built INT64 graph: doubled = counts * 2, total = row sums."""
    two = helper.make_tensor("two", TensorProto.INT64, [], [2])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["counts", "two"], ["doubled"]),
         helper.make_node("ReduceSum", ["counts", "axes"], ["total"], keepdims=0)],
        "counts",
        [helper.make_tensor_value_info("counts", TensorProto.INT64, [None, 3])],
        [helper.make_tensor_value_info("doubled", TensorProto.INT64, [None, 3]),
         helper.make_tensor_value_info("total", TensorProto.INT64, [None])],
        initializer=[two, axes],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def models(tmp_path_factory, serve_model):
    """Four models, each served by its own `kiln serve`, with an
    onnxruntime session over the same file."""
    tmp = tmp_path_factory.mktemp("triton-models")
    X, y = make_classification(n_samples=300, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    Xr, yr = make_regression(n_samples=200, n_features=4, random_state=1)
    lin = LinearRegression().fit(Xr, yr)
    docs = ["fresh milk and great cheese", "awful sour milk", "great creamy yogurt", "dry tasteless cheese",
            "lovely butter", "rancid butter, never again"]
    text = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(docs, [1, 0, 1, 0, 1, 0])
    onnx_models = {
        "clf": convert_sklearn(clf, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=OPSET,
                               options={id(clf): {"zipmap": False}}),
        "linreg64": convert_sklearn(lin, initial_types=[("X", DoubleTensorType([None, 4]))], target_opset=OPSET),
        "counts": counts_graph(),
        "reviews": convert_sklearn(text, initial_types=[("text", StringTensorType([None, 1]))], target_opset=OPSET,
                                   options={TfidfVectorizer: {"tokenexp": r"\b\w\w+\b", "locale": "C.UTF-8"},
                                            LogisticRegression: {"zipmap": False}}),
    }
    out = {}
    for name, onx in onnx_models.items():
        mlflow.onnx.save_model(onx, tmp / name, pip_requirements=ONNX_REQS)
        sess = ort.InferenceSession(str(tmp / name / "model.onnx"), providers=["CPUExecutionProvider"])
        out[name] = (serve_model(str(tmp / name), name=name), sess)
    return out


def client(proto, server):
    if proto == "http":
        return httpclient, httpclient.InferenceServerClient(server.host)
    return grpcclient, grpcclient.InferenceServerClient(server.grpc)


def reference(sess, feeds) -> dict:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def response_id(proto, result) -> str:
    if proto == "http":
        return result.get_response()["id"]
    return result.get_response(as_json=True)["id"]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_health(models, proto):
    s, _ = models["clf"]
    _, c = client(proto, s)
    assert c.is_server_live()
    assert c.is_server_ready()
    assert c.is_model_ready("clf")


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_server_metadata(models, proto):
    s, _ = models["clf"]
    _, c = client(proto, s)
    md = c.get_server_metadata() if proto == "http" else c.get_server_metadata(as_json=True)
    assert md["name"] == "kiln"
    assert md["version"]
    assert "binary_tensor_data" in md["extensions"]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_model_metadata(models, proto):
    s, _ = models["clf"]
    _, c = client(proto, s)
    md = c.get_model_metadata("clf") if proto == "http" else c.get_model_metadata("clf", as_json=True)
    assert md["name"] == "clf"
    assert md["platform"] == "onnx_onnxv1"
    tensors = lambda key: [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in md[key]]
    assert tensors("inputs") == [("X", "FP32", [-1, 4])]
    assert tensors("outputs") == [("label", "INT64", [-1]), ("probabilities", "FP32", [-1, 3])]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_repository_index(models, proto):
    s, _ = models["counts"]
    _, c = client(proto, s)
    idx = c.get_model_repository_index() if proto == "http" else c.get_model_repository_index(as_json=True)["models"]
    assert [(m["name"], m["state"]) for m in idx] == [("counts", "READY")]


# (protocol, inputs as binary, outputs as binary); gRPC always carries raw binary contents.
INFER_MODES = [("http", True, True), ("http", True, False), ("http", False, True), ("http", False, False), ("grpc", None, None)]


def make_input(mod, name, arr, datatype, binary):
    inp = mod.InferInput(name, list(arr.shape), datatype)
    if binary is None:
        inp.set_data_from_numpy(arr)
    else:
        inp.set_data_from_numpy(arr, binary_data=binary)
    return inp


def requested(mod, names, binary):
    if binary is None:
        return [mod.InferRequestedOutput(n) for n in names]
    return [mod.InferRequestedOutput(n, binary_data=binary) for n in names]


@pytest.mark.parametrize("proto, bin_in, bin_out", INFER_MODES)
def test_infer_fp32(models, proto, bin_in, bin_out):
    s, sess = models["clf"]
    mod, c = client(proto, s)
    x = np.random.RandomState(2).randn(37, 4).astype(np.float32)
    want = reference(sess, {"X": x})
    res = c.infer("clf", [make_input(mod, "X", x, "FP32", bin_in)],
                  outputs=requested(mod, ["label", "probabilities"], bin_out), request_id=f"req-{proto}-{bin_in}-{bin_out}")
    assert response_id(proto, res) == f"req-{proto}-{bin_in}-{bin_out}"
    assert res.as_numpy("label").dtype == np.int64
    assert res.as_numpy("label").tolist() == want["label"].tolist()
    probs = res.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape == (37, 3)
    np.testing.assert_allclose(probs, want["probabilities"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("proto, bin_in, bin_out", INFER_MODES)
def test_infer_fp64(models, proto, bin_in, bin_out):
    s, sess = models["linreg64"]
    mod, c = client(proto, s)
    x = np.random.RandomState(3).randn(9, 4)
    want = reference(sess, {"X": x})
    res = c.infer("linreg64", [make_input(mod, "X", x, "FP64", bin_in)], outputs=requested(mod, ["variable"], bin_out))
    got = res.as_numpy("variable")
    assert got.dtype == np.float64 and got.shape == want["variable"].shape
    np.testing.assert_allclose(got, want["variable"], rtol=1e-12)


@pytest.mark.parametrize("proto, bin_in, bin_out", INFER_MODES)
def test_infer_int64(models, proto, bin_in, bin_out):
    s, sess = models["counts"]
    mod, c = client(proto, s)
    # Beyond 2**53: exact only if no float conversion happens on the way.
    x = np.array([[1, 2, 3], [2**53 + 1, -(2**55) - 3, 7], [0, 0, -1]], dtype=np.int64)
    want = reference(sess, {"counts": x})
    res = c.infer("counts", [make_input(mod, "counts", x, "INT64", bin_in)], outputs=requested(mod, ["doubled", "total"], bin_out))
    assert res.as_numpy("doubled").dtype == np.int64
    assert res.as_numpy("doubled").tolist() == want["doubled"].tolist()
    # onnxruntime 1.32 sums these rows inexactly (-27021597764222968 for the
    # second); Kiln's integer ReduceSum is exact, as numpy's is.
    assert res.as_numpy("total").tolist() == x.sum(axis=1).tolist()


@pytest.mark.parametrize("proto, bin_in, bin_out", INFER_MODES)
def test_infer_bytes(models, proto, bin_in, bin_out):
    s, sess = models["reviews"]
    mod, c = client(proto, s)
    texts = np.array([["Fresh milk, great cheese!"], ["sour, rancid and awful"], ["crème fraîche ünïcode"], [""]], dtype=object)
    want = reference(sess, {"text": texts})
    res = c.infer("reviews", [make_input(mod, "text", texts, "BYTES", bin_in)],
                  outputs=requested(mod, ["label", "probabilities"], bin_out))
    assert res.as_numpy("label").tolist() == want["label"].tolist()
    np.testing.assert_allclose(res.as_numpy("probabilities"), want["probabilities"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_default_and_subset_outputs(models, proto):
    s, sess = models["clf"]
    mod, c = client(proto, s)
    x = np.random.RandomState(4).randn(5, 4).astype(np.float32)
    want = reference(sess, {"X": x})
    # No outputs requested: all of them.
    res = c.infer("clf", [make_input(mod, "X", x, "FP32", None)])
    assert res.as_numpy("label").tolist() == want["label"].tolist()
    assert res.as_numpy("probabilities").shape == (5, 3)
    # One requested: only that one.
    res = c.infer("clf", [make_input(mod, "X", x, "FP32", None)], outputs=[mod.InferRequestedOutput("probabilities")])
    assert res.as_numpy("label") is None
    np.testing.assert_allclose(res.as_numpy("probabilities"), want["probabilities"], rtol=RTOL, atol=ATOL)


def test_large_binary_batch(models):
    s, sess = models["clf"]
    c = httpclient.InferenceServerClient(s.host)
    x = np.random.RandomState(5).randn(20000, 4).astype(np.float32)
    res = c.infer("clf", [make_input(httpclient, "X", x, "FP32", True)])
    assert res.as_numpy("label").tolist() == reference(sess, {"X": x})["label"].tolist()


def error_of(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as e:
        call()
    return e.value


BAD_STATUS = {"http": "400", "grpc": "StatusCode.INVALID_ARGUMENT"}
NOT_FOUND = {"http": "404", "grpc": "StatusCode.NOT_FOUND"}


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_unknown_model(models, proto):
    s, _ = models["clf"]
    mod, c = client(proto, s)
    x = np.zeros((1, 4), dtype=np.float32)
    e = error_of(lambda: c.infer("no-such-model", [make_input(mod, "X", x, "FP32", None)]))
    assert e.status() == NOT_FOUND[proto]
    assert "no-such-model" in e.message()
    e = error_of(lambda: c.get_model_metadata("no-such-model"))
    assert "no-such-model" in e.message()


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("case", ["shape", "rank", "datatype", "input-name", "output-name"])
def test_bad_request_names_the_tensor(models, proto, case):
    s, _ = models["clf"]
    mod, c = client(proto, s)
    x = np.zeros((2, 4), dtype=np.float32)
    name, outputs = "X", None
    if case == "shape":
        x = np.zeros((2, 5), dtype=np.float32)
    elif case == "rank":
        x = np.zeros((8,), dtype=np.float32)
    elif case == "datatype":
        x = np.zeros((2, 4), dtype=np.float64)
    elif case == "input-name":
        name = "features"
    else:
        outputs = [mod.InferRequestedOutput("scores")]
    dt = "FP64" if x.dtype == np.float64 else "FP32"
    e = error_of(lambda: c.infer("clf", [make_input(mod, name, x, dt, None)], outputs=outputs))
    assert e.status() == BAD_STATUS[proto], e
    want = {"shape": '"X"', "rank": '"X"', "datatype": '"X"', "input-name": '"features"', "output-name": '"scores"'}[case]
    assert want in e.message(), e.message()
    if case == "datatype":
        assert "FP64" in e.message() and "FP32" in e.message()
