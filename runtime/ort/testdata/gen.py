"""Writes the ONNX fixtures of runtime/ort (the onnxruntime backend).

Run from the repository root with the shared virtualenv:

    .venv/bin/python runtime/ort/testdata/gen.py

The ort tests also run every case of runtime/onnx/testdata/models; these
cases cover what those do not: every tensor element type in and out
(FP16 included, with a fixed shape), rank-0 inputs and outputs, string
ZipMap labels, and a sequence output that is not a ZipMap (which the
backend must refuse at load time). Each case is models/<case>/ with
model.onnx, inputs.json and expected.json (Open Inference Protocol
tensors; expected outputs from onnxruntime, ZipMap sequences as
[N, classes] tensors with "labels" in the ZipMap's order). A case without
expected.json must fail to load.
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
OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]

OIP = {
    np.float32: "FP32", np.float64: "FP64", np.float16: "FP16",
    np.int8: "INT8", np.int16: "INT16", np.int32: "INT32", np.int64: "INT64",
    np.uint8: "UINT8", np.uint16: "UINT16", np.uint32: "UINT32", np.uint64: "UINT64",
    np.bool_: "BOOL", np.object_: "BYTES", np.str_: "BYTES",
}


def jvalue(v, dt):
    if dt in ("FP32", "FP64", "FP16"):
        v = float(v)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if dt == "BOOL":
        return bool(v)
    if dt == "BYTES":
        return str(v)
    return int(v)


def jtensor(name, arr, labels=None):
    arr = np.asarray(arr)
    dt = "BYTES" if arr.dtype.kind in "OU" else OIP[np.dtype(arr.dtype.str).type]
    t = {"name": name, "datatype": dt, "shape": list(arr.shape),
         "data": [jvalue(v, dt) for v in arr.reshape(-1)]}
    if labels is not None:
        t["labels"] = [str(x) for x in labels]
    return t


def zipmap_labels(model, output):
    for node in model.graph.node:
        if node.op_type == "ZipMap" and node.output[0] == output:
            for a in node.attribute:
                if a.name == "classlabels_int64s":
                    return list(a.ints)
                if a.name == "classlabels_strings":
                    return [s.decode() for s in a.strings]
    raise ValueError(output)


def write_case(name, model, feeds, loads=True):
    d = os.path.join(MODELS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump({"inputs": [jtensor(k, v) for k, v in feeds.items()]}, f)
    if not loads:
        return
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    outs = []
    for oname, val in zip(names, sess.run(None, feeds)):
        if isinstance(val, list):  # ZipMap: one map per row
            labels = zipmap_labels(model, oname)
            arr = np.array([[row[k] for k in labels] for row in val], dtype=np.float32)
            outs.append(jtensor(oname, arr, labels))
        else:
            outs.append(jtensor(oname, val))
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"outputs": outs}, f)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def all_types():
    types = [
        ("f32", TP.FLOAT, np.float32), ("f64", TP.DOUBLE, np.float64),
        ("i8", TP.INT8, np.int8), ("i16", TP.INT16, np.int16), ("i32", TP.INT32, np.int32),
        ("i64", TP.INT64, np.int64), ("u8", TP.UINT8, np.uint8), ("u16", TP.UINT16, np.uint16),
        ("u32", TP.UINT32, np.uint32), ("u64", TP.UINT64, np.uint64), ("b", TP.BOOL, np.bool_),
        ("s", TP.STRING, np.object_),
    ]
    rng = np.random.default_rng(3)
    nodes, ins, outs, feeds = [], [], [], {}
    for name, elem, npt in types:
        ins.append(vi(name, elem, [None, 3]))
        outs.append(vi(name + "_out", elem, [None, 3]))
        nodes.append(helper.make_node("Identity", [name], [name + "_out"]))
        if npt is np.object_:
            feeds[name] = np.array([["a", "", "héllo"], ["x y", "z", "0"]], dtype=object)
        elif npt is np.bool_:
            feeds[name] = np.array([[True, False, True], [False, False, True]])
        elif np.issubdtype(npt, np.integer):
            info = np.iinfo(npt)
            feeds[name] = np.array([[info.min, 0, info.max], [1, 7, info.max // 3]], dtype=npt)
        else:
            feeds[name] = np.array([[1.5, np.nan, -np.inf], [np.inf, -0.0, 1e-7]], dtype=npt)
    # Arithmetic, so a wrong buffer shows up as a wrong value.
    nodes.append(helper.make_node("Add", ["f32", "f32"], ["f32_twice"]))
    outs.append(vi("f32_twice", TP.FLOAT, [None, 3]))
    # FP16 in and out with a fixed shape.
    ins.append(vi("h", TP.FLOAT16, [2, 2]))
    nodes.append(helper.make_node("Mul", ["h", "h"], ["h_sq"]))
    outs.append(vi("h_sq", TP.FLOAT16, [2, 2]))
    feeds["h"] = np.array([[0.5, -2], [65504, 1e-3]], dtype=np.float16)
    # A rank-0 input and output.
    ins.append(vi("k", TP.INT64, []))
    nodes.append(helper.make_node("Neg", ["k"], ["k_neg"]))
    outs.append(vi("k_neg", TP.INT64, []))
    feeds["k"] = np.array(41, dtype=np.int64)
    # A zero-length batch dimension flows through.
    ins.append(vi("e", TP.FLOAT, [None, 2]))
    nodes.append(helper.make_node("Relu", ["e"], ["e_out"]))
    outs.append(vi("e_out", TP.FLOAT, [None, 2]))
    feeds["e"] = np.zeros((0, 2), dtype=np.float32)
    graph = helper.make_graph(nodes, "all_types", ins, outs)
    model = helper.make_model(graph, opset_imports=OPSET[:1])
    model.ir_version = 8
    return model, feeds


def zipmap_strings():
    x = vi("X", TP.FLOAT, [None, 2])
    coef = [1.0, -1.0, 0.5, 0.5, -1.0, 2.0]
    nodes = [
        helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
                         coefficients=coef, intercepts=[0.1, 0.0, -0.2],
                         classlabels_strings=["zebra", "apple", "mango"], post_transform="SOFTMAX"),
        helper.make_node("ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml",
                         classlabels_strings=["zebra", "apple", "mango"]),
    ]
    outs = [vi("label", TP.STRING, [None]),
            helper.make_tensor_value_info("probabilities", TP.UNDEFINED, None)]
    outs[1].type.CopyFrom(helper.make_sequence_type_proto(
        helper.make_map_type_proto(TP.STRING, helper.make_tensor_type_proto(TP.FLOAT, []))))
    graph = helper.make_graph(nodes, "zipmap_strings", [x], outs)
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    rng = np.random.default_rng(5)
    return model, {"X": rng.normal(size=(7, 2)).astype(np.float32)}


def sequence_output():
    x = vi("X", TP.FLOAT, [None, 2])
    nodes = [helper.make_node("SequenceConstruct", ["X", "X"], ["seq"])]
    out = helper.make_tensor_sequence_value_info("seq", TP.FLOAT, None)
    graph = helper.make_graph(nodes, "sequence_output", [x], [out])
    model = helper.make_model(graph, opset_imports=OPSET[:1])
    model.ir_version = 8
    return model, {"X": np.ones((1, 2), dtype=np.float32)}


def main():
    os.makedirs(MODELS, exist_ok=True)
    write_case("all_types", *all_types())
    write_case("zipmap_strings", *zipmap_strings())
    write_case("sequence_output", *sequence_output(), loads=False)


if __name__ == "__main__":
    main()
