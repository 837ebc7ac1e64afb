#!/usr/bin/env python3
"""Writes the core-operator fixtures of runtime/onnx.

Run from the repository root with the shared virtualenv:

    .venv/bin/python runtime/onnx/testdata/gen_core.py

It writes

  testdata/decode/<name>.onnx + <name>.json
      models for the decoder test; the JSON describes what onnx's own
      Python reader sees in the file (ir_version, opsets, value infos,
      initializers, nodes and attributes), and decode_test.go checks that
      Decode reads the same.

  testdata/models/<case>/model.onnx + inputs.json + expected.json
      models whose expected outputs are computed by onnxruntime on the same
      model and inputs (layout: /work/notes/fixtures.md). Case names of this
      script start with "core_", "mlp_" or "text_".

Everything is deterministic (fixed seeds, fixed corpus).
"""

import json
import math
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DECODE = os.path.join(HERE, "decode")
MODELS = os.path.join(HERE, "models")

OIP = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.bool_): "BOOL",
}

ONNX_OIP = {
    TensorProto.FLOAT: "FP32",
    TensorProto.DOUBLE: "FP64",
    TensorProto.FLOAT16: "FP16",
    TensorProto.INT8: "INT8",
    TensorProto.INT16: "INT16",
    TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64",
    TensorProto.UINT8: "UINT8",
    TensorProto.UINT16: "UINT16",
    TensorProto.UINT32: "UINT32",
    TensorProto.UINT64: "UINT64",
    TensorProto.BOOL: "BOOL",
    TensorProto.STRING: "BYTES",
}


def jnum(v):
    """A JSON-safe number: NaN and infinities as the fixture strings."""
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


def jdata(arr):
    arr = np.asarray(arr)
    if arr.dtype == np.float16:
        # Half floats travel as their values; Go compares the decoded bits.
        return [jnum(float(x)) for x in arr.reshape(-1)]
    if arr.dtype.kind in ("U", "S", "O"):
        return [x.decode() if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)]
    return [jnum(x) for x in arr.reshape(-1)]


def oip_type(arr):
    arr = np.asarray(arr)
    if arr.dtype.kind in ("U", "S", "O"):
        return "BYTES"
    return OIP[arr.dtype]


def jtensor(name, arr, labels=None):
    arr = np.asarray(arr)
    t = {"name": name, "datatype": oip_type(arr), "shape": list(arr.shape), "data": jdata(arr)}
    if labels is not None:
        t["labels"] = [str(x) for x in labels]
    return t


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


# ---------------------------------------------------------------- decoder


def describe_type(tp):
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        shape = None
        if tp.tensor_type.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tp.tensor_type.shape.dim]
        return {"kind": "tensor", "elem": ONNX_OIP.get(tp.tensor_type.elem_type, "INVALID"), "shape": shape}
    if which == "sequence_type":
        inner = describe_type(tp.sequence_type.elem_type)
        if inner["kind"] not in ("tensor", "map"):
            return {"kind": "other"}
        return {"kind": "sequence", "elem": inner["elem"], "key": inner.get("key", "INVALID"), "shape": None}
    if which == "map_type":
        inner = describe_type(tp.map_type.value_type)
        if inner["kind"] != "tensor":
            return {"kind": "other"}
        return {"kind": "map", "elem": inner["elem"], "key": ONNX_OIP.get(tp.map_type.key_type, "INVALID"), "shape": None}
    return {"kind": "other"}


def describe_value_info(vi):
    d = describe_type(vi.type)
    d["name"] = vi.name
    return d


def describe_tensor(t):
    arr = numpy_helper.to_array(t)
    dt = ONNX_OIP[t.data_type]
    if t.data_type == TensorProto.FLOAT16:
        data = [int(x) for x in arr.view(np.uint16).reshape(-1)]
    else:
        data = jdata(arr)
    return {"name": t.name, "datatype": dt, "shape": list(t.dims), "data": data}


def describe_attr(a):
    T = onnx.AttributeProto
    d = {"type": int(a.type)}
    if a.type == T.FLOAT:
        d["f"] = jnum(a.f)
    elif a.type == T.INT:
        d["i"] = a.i
    elif a.type == T.STRING:
        d["s"] = a.s.decode()
    elif a.type == T.TENSOR:
        d["t"] = describe_tensor(a.t)
    elif a.type == T.GRAPH:
        d["g"] = describe_graph(a.g)
    elif a.type == T.FLOATS:
        d["floats"] = [jnum(x) for x in a.floats]
    elif a.type == T.INTS:
        d["ints"] = list(a.ints)
    elif a.type == T.STRINGS:
        d["strings"] = [x.decode() for x in a.strings]
    elif a.type == T.TENSORS:
        d["tensors"] = [describe_tensor(t) for t in a.tensors]
    elif a.type == T.GRAPHS:
        d["graphs"] = [describe_graph(g) for g in a.graphs]
    return d


def describe_graph(g):
    return {
        "name": g.name,
        "inputs": [describe_value_info(v) for v in g.input],
        "outputs": [describe_value_info(v) for v in g.output],
        "value_info": [describe_value_info(v) for v in g.value_info],
        "initializers": sorted((describe_tensor(t) for t in g.initializer), key=lambda d: d["name"]),
        "nodes": [
            {
                "name": n.name,
                "op_type": n.op_type,
                "domain": n.domain,
                "inputs": list(n.input),
                "outputs": list(n.output),
                "attrs": {a.name: describe_attr(a) for a in n.attribute},
            }
            for n in g.node
        ],
    }


def describe_model(m):
    return {
        "ir_version": m.ir_version,
        "opsets": {("" if o.domain == "ai.onnx" else o.domain): o.version for o in m.opset_import},
        "producer_name": m.producer_name,
        "producer_version": m.producer_version,
        "metadata": {p.key: p.value for p in m.metadata_props},
        "graph": describe_graph(m.graph),
    }


def write_decode(name, model):
    os.makedirs(DECODE, exist_ok=True)
    data = model.SerializeToString()
    with open(os.path.join(DECODE, name + ".onnx"), "wb") as f:
        f.write(data)
    # Describe what onnx reads back from the bytes, not the Python object.
    write_json(os.path.join(DECODE, name + ".json"), describe_model(onnx.load_from_string(data)))


def decode_cases():
    rng = np.random.RandomState(7)
    inits = []
    specs = [
        ("f32", TensorProto.FLOAT, np.array([[1.5, -2.25, float("nan")], [float("inf"), -float("inf"), 3e-39]], np.float32)),
        ("f64", TensorProto.DOUBLE, np.array([1e300, -0.5, float("nan")], np.float64)),
        ("f16", TensorProto.FLOAT16, np.array([1.0, -2.5, 65504.0, 6e-8], np.float16)),
        ("i8", TensorProto.INT8, np.array([-128, 0, 127], np.int8)),
        ("i16", TensorProto.INT16, np.array([-32768, 5, 32767], np.int16)),
        ("i32", TensorProto.INT32, np.array([[-(2**31), 1], [2, 2**31 - 1]], np.int32)),
        ("i64", TensorProto.INT64, np.array([-(2**63), -1, 2**63 - 1], np.int64)),
        ("u8", TensorProto.UINT8, np.array([0, 200, 255], np.uint8)),
        ("u16", TensorProto.UINT16, np.array([0, 65535], np.uint16)),
        ("u32", TensorProto.UINT32, np.array([0, 2**32 - 1], np.uint32)),
        ("u64", TensorProto.UINT64, np.array([0, 2**64 - 1], np.uint64)),
        ("b", TensorProto.BOOL, np.array([True, False, True], np.bool_)),
        ("scalar", TensorProto.FLOAT, np.array(4.0, np.float32)),
        ("empty", TensorProto.FLOAT, np.zeros((0, 3), np.float32)),
        ("big", TensorProto.FLOAT, rng.randn(4, 5).astype(np.float32)),
    ]
    for name, dt, arr in specs:
        vals = arr.reshape(-1)
        if dt == TensorProto.FLOAT16:
            typed = helper.make_tensor(name + "_typed", dt, arr.shape, vals.view(np.uint16).tolist())
        else:
            typed = helper.make_tensor(name + "_typed", dt, arr.shape, vals.tolist())
        raw = helper.make_tensor(name + "_raw", dt, arr.shape, arr.tobytes(), raw=True)
        inits += [typed, raw]
    inits.append(helper.make_tensor("s_typed", TensorProto.STRING, [2, 2], [b"milk", b"", "ch\u00e8vre".encode(), b"a b"]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="id")], "tensors", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="gen_core", producer_version="1")
    model.ir_version = 8
    helper.set_model_props(model, {"author": "kiln", "purpose": "decode test"})
    write_decode("tensors", model)

    # Attributes of every type, value infos of every kind, a subgraph.
    sub_in = helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2])
    sub_out = helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2])
    sub = helper.make_graph([helper.make_node("Neg", ["s_in"], ["s_out"])], "body", [sub_in], [sub_out],
                           [helper.make_tensor("w", TensorProto.INT64, [2], [3, 4])])
    node = helper.make_node(
        "Everything", ["a", "", "b"], ["c", "d"], name="every", domain="test.kiln",
        f=0.25, i=-7, s="text", t=helper.make_tensor("tt", TensorProto.INT32, [2], [5, 6]), g=sub,
        floats=[1.0, -1.5], ints=[1, 2, -3], strings=["x", "yz"],
        tensors=[helper.make_tensor("t1", TensorProto.DOUBLE, [], [2.5]), helper.make_tensor("t2", TensorProto.STRING, [1], [b"q"])],
        graphs=[sub, sub],
    )
    inputs = [
        helper.make_tensor_value_info("a", TensorProto.INT64, [None, 4]),
        helper.make_tensor_value_info("b", TensorProto.STRING, None),
        helper.make_value_info("m", helper.make_map_type_proto(TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.DOUBLE, None))),
        helper.make_value_info("o", helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [1]))),
        helper.make_tensor_value_info("bf", TensorProto.BFLOAT16, [2]),
    ]
    outputs = [
        helper.make_value_info("c", helper.make_sequence_type_proto(helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, None)))),
        helper.make_value_info("d", helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [3, "k"]))),
    ]
    vinfo = [helper.make_tensor_value_info("mid", TensorProto.FLOAT16, [1, 2, 3])]
    graph = helper.make_graph([node], "attrs", inputs, outputs, value_info=vinfo)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 3), helper.make_opsetid("test.kiln", 1)],
                              producer_name="gen_core", producer_version="2")
    model.ir_version = 10
    write_decode("attributes", model)


def main():
    decode_cases()


if __name__ == "__main__":
    main()
