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
      script start with "core_", "mlp_", "text_" or "knn_".

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


# ---------------------------------------------------------------- models

PREFIXES = ("core_", "mlp_", "text_", "knn_")


def ort_run(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return names, sess.run(None, feeds)


def write_case(name, model, feeds, labels=None):
    """Writes model.onnx, inputs.json and expected.json (from onnxruntime)."""
    assert name.startswith(PREFIXES), name
    d = os.path.join(MODELS, name)
    os.makedirs(d, exist_ok=True)
    # onnxruntime validates the model when it loads it below. skl2onnx
    # names graphs with a random uuid; a fixed name keeps files stable.
    model.graph.name = name
    ops = sorted(((o.domain, o.version) for o in model.opset_import))  # skl2onnx's order varies
    del model.opset_import[:]
    for dom, ver in ops:
        model.opset_import.append(helper.make_opsetid(dom, ver))
    data = model.SerializeToString()
    assert len(data) < 1 << 20, (name, len(data))
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(data)
    names, outs = ort_run(model, feeds)
    labels = labels or {}
    outputs = []
    for n, v in zip(names, outs):
        if isinstance(v, list):  # seq(map) from ZipMap: one row per map
            keys = list(v[0].keys())
            arr = np.array([[row[k] for k in keys] for row in v], dtype=np.float32)
            outputs.append(jtensor(n, arr, labels=keys))
        else:
            outputs.append(jtensor(n, v, labels=labels.get(n)))
    write_json(os.path.join(d, "inputs.json"), {"inputs": [jtensor(k, v) for k, v in feeds.items()]})
    write_json(os.path.join(d, "expected.json"), {"outputs": outputs})


def graph_model(name, nodes, inputs, outputs, inits=(), opset=21, ml=False):
    ops = [helper.make_opsetid("", opset)]
    if ml:
        ops.append(helper.make_opsetid("ai.onnx.ml", 3))
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=ops, producer_name="kiln-gen-core", producer_version="1")
    m.ir_version = 8 if opset <= 17 else 10
    return m


F, D, I64, I32, B, S = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL, TensorProto.STRING


def vi(name, t, shape=None):
    return helper.make_tensor_value_info(name, t, shape)


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def with_nan(rng, n, k, dtype=np.float32):
    x = rng.randn(n, k).astype(dtype)
    x[1, 0] = np.nan
    x[3, :] = np.nan
    return x


def core_cases():
    rng = np.random.RandomState(42)
    N = 6

    # Broadcasting arithmetic, comparisons, Where and the variadic ops.
    x = with_nan(rng, N, 3)
    y = rng.randn(3).astype(np.float32)
    z = rng.randn(N, 1).astype(np.float32) + 2
    a = rng.randint(-9, 9, size=(N, 3)).astype(np.int64)
    b = np.array([[1, -2, 3]], np.int64)
    nodes = [
        helper.make_node("Add", ["x", "y"], ["add"]),
        helper.make_node("Sub", ["z", "x"], ["sub"]),
        helper.make_node("Mul", ["x", "z"], ["mul"]),
        helper.make_node("Div", ["x", "y"], ["div"]),
        helper.make_node("Mul", ["x", "half"], ["scaled"]),
        helper.make_node("Max", ["x", "y", "z"], ["max"]),
        helper.make_node("Min", ["x", "y"], ["min"]),
        helper.make_node("Sum", ["x", "y", "z"], ["sum"]),
        helper.make_node("Mean", ["x", "z"], ["mean"]),
        helper.make_node("Pow", ["z", "two"], ["pow2"]),
        helper.make_node("Pow", ["z", "y"], ["powy"]),
        helper.make_node("Less", ["x", "y"], ["less"]),
        helper.make_node("GreaterOrEqual", ["x", "z"], ["ge"]),
        helper.make_node("Equal", ["a", "b"], ["eq"]),
        helper.make_node("Where", ["less", "x", "y"], ["where"]),
        helper.make_node("Add", ["a", "b"], ["iadd"]),
        helper.make_node("Mul", ["a", "b"], ["imul"]),
        helper.make_node("Div", ["a", "b"], ["idiv"]),
        helper.make_node("Sub", ["a", "three"], ["isub"]),
        helper.make_node("Mod", ["a", "b"], ["imod"]),
        helper.make_node("Clip", ["x", "lo", "hi"], ["clip"]),
        helper.make_node("Clip", ["a", "", "ihi"], ["iclip"]),
    ]
    inits = [const("half", np.float32(0.5)), const("two", np.float32(2)), const("three", np.int64(3)),
             const("lo", np.float32(-0.5)), const("hi", np.float32(0.75)), const("ihi", np.int64(2))]
    outs = [vi(n, F) for n in ["add", "sub", "mul", "div", "scaled", "max", "min", "sum", "mean", "pow2", "powy", "where", "clip"]]
    outs += [vi(n, B) for n in ["less", "ge", "eq"]] + [vi(n, I64) for n in ["iadd", "imul", "idiv", "isub", "imod", "iclip"]]
    m = graph_model("broadcast", nodes, [vi("x", F, ["N", 3]), vi("y", F, [3]), vi("z", F, ["N", 1]), vi("a", I64, ["N", 3]), vi("b", I64, [1, 3])], outs, inits, opset=13)
    write_case("core_broadcast", m, {"x": x, "y": y, "z": z, "a": a, "b": b})

    # Unary math and activations.
    u = with_nan(rng, N, 4) * 2
    u[0, :] = [0.5, -0.5, 1.5, -2.5]  # Round: halves to even
    u[2, 1] = np.inf
    u[2, 2] = -np.inf
    ops = ["Exp", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Erf", "Tanh", "Sigmoid", "Relu", "Softsign", "Softplus"]
    nodes = [helper.make_node(o, ["u"], [o.lower()]) for o in ops]
    nodes += [
        helper.make_node("Abs", ["u"], ["absu"]),
        helper.make_node("Log", ["absu"], ["log"]),
        helper.make_node("Sqrt", ["absu"], ["sqrt"]),
        helper.make_node("LeakyRelu", ["u"], ["leaky"], alpha=0.1),
        helper.make_node("Elu", ["u"], ["elu"], alpha=0.7),
        helper.make_node("Selu", ["u"], ["selu"]),
        helper.make_node("HardSigmoid", ["u"], ["hsig"], alpha=0.3, beta=0.4),
        helper.make_node("PRelu", ["u", "slope"], ["prelu"]),
        helper.make_node("IsNaN", ["u"], ["isnan"]),
        helper.make_node("IsInf", ["u"], ["isinf"]),
        helper.make_node("IsInf", ["u"], ["isposinf"], detect_negative=0),
        helper.make_node("Not", ["isnan"], ["notnan"]),
        helper.make_node("And", ["isnan", "isinf"], ["and"]),
        helper.make_node("Or", ["isnan", "isinf"], ["or"]),
        helper.make_node("Xor", ["notnan", "isposinf"], ["xor"]),
    ]
    outs = [vi(o.lower(), F) for o in ops] + [vi(n, F) for n in ["log", "sqrt", "leaky", "elu", "selu", "hsig", "prelu"]]
    outs += [vi(n, B) for n in ["isnan", "isinf", "isposinf", "notnan", "and", "or", "xor"]]
    m = graph_model("unary", nodes, [vi("u", F, ["N", 4])], outs, [const("slope", np.array([0.1, 0.2, 0.3, 0.4], np.float32))], opset=13)
    write_case("core_unary", m, {"u": u})

    # Double precision.
    dd = with_nan(rng, N, 3, np.float64)
    nodes = [helper.make_node("Exp", ["d"], ["exp"]), helper.make_node("Softmax", ["d"], ["softmax"]),
             helper.make_node("Add", ["d", "dc"], ["add"]), helper.make_node("Div", ["d", "dc"], ["div"]),
             helper.make_node("MatMul", ["d", "dw"], ["mm"]), helper.make_node("ReduceSum", ["d", "one"], ["rsum"])]
    m = graph_model("double", nodes, [vi("d", D, ["N", 3])], [vi(n, D) for n in ["exp", "softmax", "add", "div", "mm", "rsum"]],
                    [const("dc", np.array([1e-300, 2.5, -1e10])), const("dw", rng.randn(3, 2)), const("one", np.array([1], np.int64))], opset=20)
    write_case("core_double", m, {"d": dd})

    # Gelu (opset 20).
    gx = with_nan(rng, N, 3)
    nodes = [helper.make_node("Gelu", ["x"], ["gelu"]), helper.make_node("Gelu", ["x"], ["gelu_tanh"], approximate="tanh")]
    m = graph_model("gelu", nodes, [vi("x", F, ["N", 3])], [vi("gelu", F), vi("gelu_tanh", F)], opset=20)
    write_case("core_gelu", m, {"x": gx})

    # Shape and movement ops (opset 13: axes and split sizes as inputs).
    s = with_nan(rng, N, 4)
    nodes = [
        helper.make_node("Reshape", ["s", "shape3"], ["r3"]),
        helper.make_node("Transpose", ["r3"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("Transpose", ["s"], ["t2"]),
        helper.make_node("Reshape", ["s", "shape_zero"], ["r0"]),
        helper.make_node("Flatten", ["r3"], ["flat"], axis=1),
        helper.make_node("Flatten", ["r3"], ["flat0"], axis=0),
        helper.make_node("Slice", ["s", "starts", "ends", "axes", "steps"], ["slice"]),
        helper.make_node("Slice", ["s", "starts2", "ends2"], ["slice2"]),
        helper.make_node("Slice", ["s", "rstart", "rend", "raxes", "rsteps"], ["slicerev"]),
        helper.make_node("Gather", ["s", "gidx"], ["gather1"], axis=1),
        helper.make_node("Gather", ["s", "gidx0"], ["gather0"], axis=0),
        helper.make_node("Unsqueeze", ["s", "uaxes"], ["unsq"]),
        helper.make_node("Squeeze", ["unsq", "uaxes"], ["sq"]),
        helper.make_node("Squeeze", ["unsq"], ["sqall"]),
        helper.make_node("Concat", ["s", "slice2", "s"], ["cat"], axis=1),
        helper.make_node("Concat", ["s", "s"], ["cat0"], axis=-2),
        helper.make_node("Split", ["s", "splits"], ["sp1", "sp2"], axis=1),
        helper.make_node("Split", ["s"], ["eq1", "eq2"], axis=1),
        helper.make_node("Shape", ["s"], ["shape"]),
        helper.make_node("Size", ["s"], ["size"]),
        helper.make_node("Expand", ["y4", "eshape"], ["expand"]),
        helper.make_node("Tile", ["s", "reps"], ["tile"]),
        helper.make_node("Identity", ["s"], ["ident"]),
        helper.make_node("Gather", ["shape", "zero"], ["nrows"]),
    ]
    inits = [const("shape3", np.array([-1, 2, 2], np.int64)), const("shape_zero", np.array([0, 2, -1], np.int64)),
             const("starts", np.array([1, 0], np.int64)), const("ends", np.array([5, 4], np.int64)),
             const("axes", np.array([0, 1], np.int64)), const("steps", np.array([2, 3], np.int64)),
             const("starts2", np.array([0, 1], np.int64)), const("ends2", np.array([9223372036854775807, 3], np.int64)),
             const("rstart", np.array([-1], np.int64)), const("rend", np.array([-9223372036854775807], np.int64)),
             const("raxes", np.array([1], np.int64)), const("rsteps", np.array([-1], np.int64)),
             const("gidx", np.array([3, 0, -1], np.int64)), const("gidx0", np.array([[0, 2], [-1, 1]], np.int32)),
             const("uaxes", np.array([0, -1], np.int64)), const("splits", np.array([1, 3], np.int64)),
             const("eshape", np.array([3, 1, 4], np.int64)), const("reps", np.array([2, 1], np.int64)),
             const("y4", np.array([[1, 2, 3, 4]], np.float32)), const("zero", np.array(0, np.int64))]
    names = ["r3", "tr", "t2", "r0", "flat", "flat0", "slice", "slice2", "slicerev", "gather1", "gather0", "unsq", "sq", "sqall",
             "cat", "cat0", "sp1", "sp2", "eq1", "eq2", "expand", "tile", "ident"]
    outs = [vi(n, F) for n in names] + [vi("shape", I64), vi("size", I64), vi("nrows", I64)]
    m = graph_model("shapes", nodes, [vi("s", F, ["N", 4])], outs, inits, opset=13)
    write_case("core_shape_ops", m, {"s": s})

    # The same family at opset 11, where axes and splits are attributes,
    # and Softmax flattens to 2-D at the axis.
    t = with_nan(rng, N, 12).reshape(N, 3, 4)
    nodes = [
        helper.make_node("Unsqueeze", ["t"], ["unsq"], axes=[1]),
        helper.make_node("Squeeze", ["unsq"], ["sq"], axes=[1]),
        helper.make_node("Split", ["t"], ["p1", "p2"], axis=2, split=[3, 1]),
        helper.make_node("ReduceSum", ["t"], ["rsum"], axes=[1]),
        helper.make_node("ReduceMean", ["t"], ["rmean"], axes=[2], keepdims=0),
        helper.make_node("ReduceMax", ["t"], ["rmax"], axes=[1, 2]),
        helper.make_node("Softmax", ["t"], ["sm1"], axis=1),
        helper.make_node("Softmax", ["t"], ["smdef"]),
        helper.make_node("LogSoftmax", ["t"], ["lsm"], axis=2),
        helper.make_node("Hardmax", ["t"], ["hm"], axis=1),
        helper.make_node("Slice", ["t", "st", "en"], ["slc"]),
        helper.make_node("Clip", ["t", "cmin"], ["clip"]),
    ]
    outs = [vi(n, F) for n in ["unsq", "sq", "p1", "p2", "rsum", "rmean", "rmax", "sm1", "smdef", "lsm", "hm", "slc", "clip"]]
    m = graph_model("opset11", nodes, [vi("t", F, ["N", 3, 4])], outs,
                    [const("st", np.array([0, 1], np.int64)), const("en", np.array([2, 3], np.int64)), const("cmin", np.float32(0))], opset=11)
    write_case("core_opset11", m, {"t": t})

    # Opset 9: Clip bounds, Slice bounds as attributes; Softmax flattens.
    nodes = [
        helper.make_node("Clip", ["t"], ["clip"], min=-0.3, max=0.6),
        helper.make_node("Slice", ["t"], ["slc"], starts=[1, 0], ends=[3, -1], axes=[1, 2]),
        helper.make_node("Softmax", ["t"], ["sm"]),
        helper.make_node("Dropout", ["t"], ["drop", "mask"], ratio=0.3),
        helper.make_node("Cast", ["t"], ["as_int"], to=TensorProto.INT32),
        helper.make_node("Flatten", ["t"], ["flat"], axis=2),
    ]
    m = graph_model("opset9", nodes, [vi("t", F, ["N", 3, 4])], [vi(n, F) for n in ["clip", "slc", "sm", "drop", "mask"]] + [vi("as_int", I32), vi("flat", F)], opset=9)
    tt = t.copy()
    tt[np.isnan(tt)] = 0.25  # NaN to int is platform-specific in C++
    write_case("core_opset9", m, {"t": tt * 10})

    # Softmax and LogSoftmax at opset 13: one axis, not a flattened tail.
    nodes = [helper.make_node("Softmax", ["t"], ["sm1"], axis=1), helper.make_node("Softmax", ["t"], ["smdef"]),
             helper.make_node("LogSoftmax", ["t"], ["lsm0"], axis=0), helper.make_node("Softmax", ["t"], ["smneg"], axis=-2)]
    m = graph_model("softmax13", nodes, [vi("t", F, ["N", 3, 4])], [vi(n, F) for n in ["sm1", "smdef", "lsm0", "smneg"]], opset=13)
    write_case("core_softmax13", m, {"t": t})

    # Reductions with axes as inputs (opset 18), ArgMax/ArgMin, TopK.
    r = with_nan(rng, N, 12).reshape(N, 3, 4)
    r[5] = np.abs(r[5]) + 0.5
    ax1 = const("ax1", np.array([1], np.int64))
    ax12 = const("ax12", np.array([-1, 1], np.int64))
    nodes = [
        helper.make_node("ReduceSum", ["r", "ax1"], ["sum"]),
        helper.make_node("ReduceMean", ["r", "ax12"], ["mean"], keepdims=0),
        helper.make_node("ReduceMax", ["r", "ax1"], ["max"]),
        helper.make_node("ReduceMin", ["rclean"], ["minall"], keepdims=0),  # NaN in a full reduction is unspecified in onnxruntime
        helper.make_node("ReduceProd", ["r", "ax1"], ["prod"]),
        helper.make_node("ReduceL1", ["r", "ax12"], ["l1"]),
        helper.make_node("ReduceL2", ["r", "ax1"], ["l2"]),
        helper.make_node("ReduceLogSumExp", ["r", "ax1"], ["lse"]),
        helper.make_node("ReduceSumSquare", ["r", "ax12"], ["ss"]),
        helper.make_node("ReduceSum", ["r", "empty"], ["noop"], noop_with_empty_axes=1),
        helper.make_node("ReduceSum", ["ri", "ax1"], ["isum"], keepdims=0),
        helper.make_node("ReduceMax", ["ri", "ax12"], ["imax"]),
        helper.make_node("ArgMax", ["ri"], ["argmax"], axis=2),
        helper.make_node("ArgMin", ["ri"], ["argmin"], axis=1, keepdims=0),
        helper.make_node("ArgMax", ["ri"], ["argmax_last"], axis=2, select_last_index=1),
        helper.make_node("TopK", ["rclean", "k"], ["topv", "topi"], axis=-1),
        helper.make_node("TopK", ["rclean", "k"], ["lowv", "lowi"], axis=1, largest=0),
    ]
    ri = rng.randint(-3, 4, size=(N, 3, 4)).astype(np.int64)
    rclean = np.nan_to_num(r, nan=0.0)
    outs = [vi(n, F) for n in ["sum", "mean", "max", "minall", "prod", "l1", "l2", "lse", "ss", "noop", "topv", "lowv"]]
    outs += [vi(n, I64) for n in ["isum", "imax", "argmax", "argmin", "argmax_last", "topi", "lowi"]]
    m = graph_model("reduce18", nodes, [vi("r", F, ["N", 3, 4]), vi("ri", I64, ["N", 3, 4]), vi("rclean", F, ["N", 3, 4])], outs,
                    [ax1, ax12, const("empty", np.array([], np.int64)), const("k", np.array([2], np.int64))], opset=18)
    write_case("core_reduce18", m, {"r": r, "ri": ri, "rclean": rclean})

    # Cast, including to and from strings, and CastLike.
    c = np.array([[0.1, 1.0, -2.5], [1e10, 1.5e-7, np.nan], [np.inf, -np.inf, -0.0], [123456789.0, 3.14159265, 1 / 3]], np.float32)
    strs = np.array([["1.5", " 2", "1e3"], ["-4", "+7.25", "0.001"], ["NaN", "inf", "-INF"], ["12", "300", "-0"]], dtype=object)
    ints = np.array([[1, -2, 300], [0, 7, -9], [65535, 2**31 - 1, -(2**31)], [255, 256, -1]], np.int64)
    nodes = [
        helper.make_node("Cast", ["c"], ["c2s"], to=S),
        helper.make_node("Cast", ["c"], ["c2d"], to=D),
        helper.make_node("Cast", ["c"], ["c2b"], to=B),
        helper.make_node("Cast", ["c"], ["c2h"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["c2h"], ["h2f"], to=F),
        helper.make_node("Cast", ["s"], ["s2f"], to=F),
        helper.make_node("Cast", ["s"], ["s2d"], to=D),
        helper.make_node("Cast", ["i"], ["i2s"], to=S),
        helper.make_node("Cast", ["i"], ["i2f"], to=F),
        helper.make_node("Cast", ["i"], ["i2u8"], to=TensorProto.UINT8),
        helper.make_node("Cast", ["i"], ["i2i16"], to=TensorProto.INT16),
        helper.make_node("Cast", ["i"], ["i2b"], to=B),
        helper.make_node("Cast", ["c2b"], ["b2s"], to=S),
        helper.make_node("Cast", ["c2b"], ["b2f"], to=F),
        helper.make_node("CastLike", ["i", "c"], ["like"]),
        helper.make_node("Cast", ["i2s"], ["s2i"], to=I64),
        helper.make_node("Cast", ["cs"], ["cs2i"], to=I32),
        helper.make_node("Cast", ["cs"], ["cs2u8"], to=TensorProto.UINT8),
        helper.make_node("Cast", ["cd"], ["cd2i64"], to=I64),
    ]
    cs = np.array([[2.7, -2.7, 300.5], [1e20, -1e20, 255.9], [0.5, -0.5, 65536.0], [-129.0, 128.0, 3.0]], np.float32)
    cd = np.array([[2.7, -2.7, 1e18], [-1e18, 2.5e15, 0.0], [1e19, -1e19, 7.0], [-0.9, 0.9, 42.0]], np.float64)
    outs = [vi("c2s", S), vi("c2d", D), vi("c2b", B), vi("c2h", TensorProto.FLOAT16), vi("h2f", F), vi("s2f", F), vi("s2d", D),
            vi("i2s", S), vi("i2f", F), vi("i2u8", TensorProto.UINT8), vi("i2i16", TensorProto.INT16), vi("i2b", B),
            vi("b2s", S), vi("b2f", F), vi("like", F), vi("s2i", I64), vi("cs2i", I32), vi("cs2u8", TensorProto.UINT8), vi("cd2i64", I64)]
    m = graph_model("cast", nodes, [vi("c", F, ["N", 3]), vi("s", S, ["N", 3]), vi("i", I64, ["N", 3]), vi("cs", F, ["N", 3]), vi("cd", D, ["N", 3])], outs, opset=21)
    write_case("core_cast", m, {"c": c, "s": strs, "i": ints, "cs": cs, "cd": cd})

    # Gemm and MatMul: static and dynamic weights, transposes, batches.
    ga = with_nan(rng, N, 5)
    gw = rng.randn(5, 3).astype(np.float32)
    gwt = rng.randn(3, 5).astype(np.float32)
    gb = rng.randn(3).astype(np.float32)
    gd = rng.randn(5, 4).astype(np.float32)
    batch = rng.randn(2, N, 5).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["a", "w", "bias"], ["gemm"]),
        helper.make_node("Gemm", ["a", "wt", "bias"], ["gemm_tb"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Gemm", ["a", "d"], ["gemm_dyn"], alpha=1.5),
        helper.make_node("Transpose", ["a"], ["at"]),
        helper.make_node("Gemm", ["at", "w", "cfull"], ["gemm_ta"], transA=1),
        helper.make_node("MatMul", ["a", "w"], ["mm"]),
        helper.make_node("MatMul", ["a", "d"], ["mm_dyn"]),
        helper.make_node("MatMul", ["batch", "w"], ["mm_batch"]),
        helper.make_node("MatMul", ["batch", "bt"], ["mm_bb"]),
        helper.make_node("MatMul", ["vec", "w"], ["mm_vec"]),
        helper.make_node("MatMul", ["ai", "wi"], ["mm_int"]),
    ]
    inits = [const("w", gw), const("wt", gwt), const("bias", gb), const("cfull", np.float32(0.25)), const("vec", rng.randn(5).astype(np.float32)),
             const("bt", rng.randn(1, 5, 2).astype(np.float32)), const("wi", rng.randint(-3, 3, size=(5, 2)).astype(np.int64))]
    outs = [vi(n, F) for n in ["gemm", "gemm_tb", "gemm_dyn", "gemm_ta", "mm", "mm_dyn", "mm_batch", "mm_bb", "mm_vec"]] + [vi("mm_int", I64)]
    m = graph_model("gemm", nodes, [vi("a", F, ["N", 5]), vi("d", F, [5, 4]), vi("batch", F, [2, "N", 5]), vi("ai", I64, ["N", 5])], outs, inits, opset=13)
    write_case("core_gemm", m, {"a": ga, "d": gd, "batch": batch, "ai": rng.randint(-5, 5, size=(N, 5)).astype(np.int64)})

    # Constants and shape-driven creation.
    nodes = [
        helper.make_node("Constant", [], ["cf"], value_floats=[1.0, 2.0, 3.0]),
        helper.make_node("Constant", [], ["ci"], value_int=4),
        helper.make_node("Constant", [], ["ct"], value=helper.make_tensor("v", F, [2, 3], [1, 2, 3, 4, 5, 6])),
        helper.make_node("Constant", [], ["cstr"], value_strings=["a", "b"]),
        helper.make_node("Add", ["x", "cf"], ["xplus"]),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("ConstantOfShape", ["xs"], ["zeros"]),
        helper.make_node("ConstantOfShape", ["xs"], ["sevens"], value=helper.make_tensor("v", I64, [1], [7])),
        helper.make_node("Shape", ["x"], ["nrows"], end=1),
        helper.make_node("Shape", ["x"], ["ncols"], start=-1),
        helper.make_node("Squeeze", ["nrows"], ["nrows_s"]),
        helper.make_node("Range", ["zero", "nrows_s", "one"], ["range"]),
        helper.make_node("Range", ["fstart", "flimit", "fdelta"], ["frange"]),
        helper.make_node("Greater", ["x", "zerof"], ["pos"]),
        helper.make_node("NonZero", ["pos"], ["nz"]),
        helper.make_node("Expand", ["ct", "xs23"], ["ex"]),
        helper.make_node("Mul", ["ci", "range"], ["range4"]),
    ]
    inits = [const("zero", np.array(0, np.int64)), const("one", np.array(1, np.int64)), const("zerof", np.float32(0)),
             const("fstart", np.float32(1.5)), const("flimit", np.float32(-2)), const("fdelta", np.float32(-0.75)),
             const("xs23", np.array([2, 1, 3], np.int64))]
    outs = [vi("xplus", F), vi("zeros", F), vi("sevens", I64), vi("nrows", I64), vi("ncols", I64), vi("range", I64), vi("frange", F),
            vi("nz", I64), vi("ex", F), vi("range4", I64), vi("cstr", S), vi("ct", F)]
    x3 = with_nan(rng, N, 3)
    m = graph_model("constants", nodes, [vi("x", F, ["N", 3])], outs, inits, opset=17)
    write_case("core_constants", m, {"x": x3})

    # Normalization layers of small PyTorch MLPs.
    bx = with_nan(rng, N, 3)
    b3 = rng.randn(N, 3, 2).astype(np.float32)
    nodes = [
        helper.make_node("BatchNormalization", ["bx", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("BatchNormalization", ["b3", "scale", "bias", "mean", "var"], ["bn3"]),
        helper.make_node("LayerNormalization", ["b3", "ln_scale", "ln_bias"], ["ln", "ln_mean", "ln_inv"]),
        helper.make_node("LayerNormalization", ["b3", "ln_scale2"], ["ln1"], axis=1, epsilon=1e-2),
    ]
    inits = [const("scale", np.array([1.5, -0.5, 2], np.float32)), const("bias", np.array([0.1, 0.2, -0.3], np.float32)),
             const("mean", np.array([0.5, -1, 0], np.float32)), const("var", np.array([0.25, 4, 1], np.float32)),
             const("ln_scale", np.array([2, 0.5], np.float32)), const("ln_bias", np.array([1, -1], np.float32)),
             const("ln_scale2", rng.randn(3, 2).astype(np.float32))]
    m = graph_model("norm", nodes, [vi("bx", F, ["N", 3]), vi("b3", F, ["N", 3, 2])], [vi(n, F) for n in ["bn", "bn3", "ln", "ln_mean", "ln_inv", "ln1"]], inits, opset=17)
    write_case("core_norm", m, {"bx": bx, "b3": b3})

    # LpNormalization (OneVsRestClassifier's probabilities), zero rows
    # included.
    lx = with_nan(rng, N, 3)
    lx[4] = 0
    nodes = [helper.make_node("LpNormalization", ["lx"], ["l2"]), helper.make_node("LpNormalization", ["lx"], ["l1"], p=1, axis=0)]
    m = graph_model("lpnorm", nodes, [vi("lx", F, ["N", 3])], [vi("l2", F), vi("l1", F)], opset=17)
    write_case("core_lpnorm", m, {"lx": lx})

    # Scan: a running sum as state and, per row of a constant, the squared
    # distances to every input row (skl2onnx's cdist), stacked on axis 1
    # and in reverse.
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "row"], ["acc_out"]),
         helper.make_node("Sub", ["xs", "row"], ["diff"]),
         helper.make_node("Mul", ["diff", "diff"], ["sq"]),
         helper.make_node("ReduceSum", ["sq", "one"], ["dist"], keepdims=0),
         helper.make_node("Identity", ["xs"], ["xs_out"])],
        "cdist", [vi("acc_in", F, [3]), vi("xs", F, ["N", 3]), vi("row", F, [3])],
        [vi("acc_out", F, [3]), vi("xs_out", F, ["N", 3]), vi("dist", F, ["N"])],
        [const("one", np.array([1], np.int64))])
    nodes = [helper.make_node("Scan", ["acc0", "sx", "train"], ["acc", "xs_final", "dists"], body=body, num_scan_inputs=1),
             helper.make_node("Scan", ["acc0", "sx", "train"], ["acc_r", "xs_r", "dists_r"], body=body, num_scan_inputs=1,
                              scan_input_directions=[1], scan_output_axes=[1]),
             helper.make_node("Scan", ["acc0", "sx", "train_t"], ["acc_t", "xs_t", "dists_t"], body=body, num_scan_inputs=1,
                              scan_input_axes=[1], scan_output_directions=[1])]
    train = rng.randn(4, 3).astype(np.float32)
    m = graph_model("scan", nodes, [vi("sx", F, ["N", 3])], [vi(n, F) for n in ["acc", "xs_final", "dists", "acc_r", "xs_r", "dists_r", "acc_t", "xs_t", "dists_t"]],
                    [const("acc0", np.zeros(3, np.float32)), const("train", train), const("train_t", train.T.copy())], opset=17)
    write_case("core_scan", m, {"sx": with_nan(rng, N, 3)})

    # Strings through the generic ops.
    words = np.array([["milk", "cheese", "butter"], ["yogurt", "milk", "cream"], ["", "whey", "kefir"], ["ghee", "cheese", "milk"]], dtype=object)
    nodes = [
        helper.make_node("Equal", ["w", "milk"], ["is_milk"]),
        helper.make_node("Where", ["is_milk", "w", "other"], ["masked"]),
        helper.make_node("Transpose", ["w"], ["wt"]),
        helper.make_node("Gather", ["w", "gi"], ["wg"], axis=1),
        helper.make_node("Concat", ["w", "wg"], ["wc"], axis=1),
        helper.make_node("Reshape", ["w", "flat"], ["wr"]),
        helper.make_node("Slice", ["w", "s0", "s1"], ["ws"]),
        helper.make_node("Identity", ["w"], ["wi"]),
    ]
    inits = [const("milk", np.array(["milk"], dtype=object)), const("other", np.array(["-"], dtype=object)),
             const("gi", np.array([2, 0], np.int64)), const("flat", np.array([-1], np.int64)),
             const("s0", np.array([1], np.int64)), const("s1", np.array([3], np.int64))]
    m = graph_model("strings", nodes, [vi("w", S, ["N", 3])], [vi("is_milk", B)] + [vi(n, S) for n in ["masked", "wt", "wg", "wc", "wr", "ws", "wi"]], inits, opset=19)
    write_case("core_strings", m, {"w": words})


# Customer comments about dairy products, labelled by sentiment.
COMMENTS = [
    ("The milk was fresh and creamy, I love it", "positive"),
    ("Great cheese, rich taste and perfect texture", "positive"),
    ("This yogurt is delicious and not too sweet", "positive"),
    ("Wonderful butter, my family enjoys it every morning", "positive"),
    ("Best kefir I have ever had, excellent quality", "positive"),
    ("The cream is smooth and tasty, highly recommended", "positive"),
    ("Lovely goat cheese, fresh and tangy", "positive"),
    ("Excellent milk, great value and fast delivery", "positive"),
    ("Delicious ice cream, the kids loved it", "positive"),
    ("Fantastic mozzarella, perfect for pizza", "positive"),
    ("The milk was sour and smelled awful", "negative"),
    ("Terrible cheese, dry and tasteless", "negative"),
    ("This yogurt was spoiled before the expiry date", "negative"),
    ("Awful butter, rancid taste, never again", "negative"),
    ("The cream was lumpy and bad, very disappointed", "negative"),
    ("Horrible kefir, too sour and watery", "negative"),
    ("The package leaked and the milk was warm", "negative"),
    ("Bad quality cheese, it went mouldy in two days", "negative"),
    ("Disgusting flavour, the yogurt tasted like plastic", "negative"),
    ("Worst ice cream ever, full of ice crystals", "negative"),
    ("The milk arrived on Tuesday", "neutral"),
    ("I bought cheese and butter this week", "neutral"),
    ("The yogurt comes in a plastic cup", "neutral"),
    ("Butter is sold in packs of two hundred grams", "neutral"),
    ("The kefir bottle holds one litre", "neutral"),
    ("We usually keep the cream in the fridge", "neutral"),
    ("The cheese is made from cow milk", "neutral"),
    ("Delivery of the milk is on Mondays and Thursdays", "neutral"),
    ("The ice cream is stored in the freezer", "neutral"),
    ("This shop sells yogurt, milk and cheese", "neutral"),
]

# Texts to score: some unseen, with capitals, punctuation, accents, an
# empty comment and one without any known word.
TEXTS = [
    "Fresh milk, GREAT taste!",
    "the cheese was dry and awful",
    "Yogurt delivered on Monday",
    "",
    "Crème fraîche très bonne",
    "zzz qqq",
    "Sour milk, bad butter, terrible cream",
    "I love this kefir; excellent!",
]


# onnxruntime's StringNormalizer needs an installed locale; en_US.UTF-8
# (its default) is missing on slim images, C.UTF-8 is everywhere. Kiln
# ignores the attribute and maps case with Unicode's simple mappings.
LOCALE = "C.UTF-8"


def text_cases():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    docs = [c for c, _ in COMMENTS]
    labels = [l for _, l in COMMENTS]
    feeds = {"text": np.array(TEXTS, dtype=object).reshape(-1, 1)}
    types = [("text", StringTensorType([None, 1]))]

    # sklearn's default token pattern, in the RE2 form the Tokenizer takes.
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(docs, labels)
    onx = convert_sklearn(pipe, initial_types=types, target_opset={"": 21, "ai.onnx.ml": 3},
                          options={TfidfVectorizer: {"tokenexp": r"\b\w\w+\b", "locale": LOCALE}})
    write_case("text_tfidf_logreg", onx, feeds)

    # Unigrams and bigrams, English stop words, sublinear tf, split on
    # separators instead of a token expression.
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                         LogisticRegression(max_iter=1000, C=5)).fit(docs, labels)
    onx = convert_sklearn(pipe, initial_types=types, target_opset={"": 21, "ai.onnx.ml": 3},
                          options={TfidfVectorizer: {"separators": [" ", "[.,;:!?]"], "locale": LOCALE}})
    write_case("text_tfidf_bigrams", onx, feeds)

    # Character n-grams are beyond the Tokenizer; word n-grams with an
    # explicit token expression and probabilities as a plain tensor.
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 3), token_pattern=r"[a-z]+"), LogisticRegression(max_iter=1000)).fit(docs, labels)
    onx = convert_sklearn(pipe, initial_types=types, target_opset={"": 21, "ai.onnx.ml": 3},
                          options={TfidfVectorizer: {"tokenexp": "[a-z]+", "locale": LOCALE}, LogisticRegression: {"zipmap": False}})
    write_case("text_tfidf_trigrams_nozipmap", onx, feeds)


def mlp_cases():
    from sklearn.datasets import make_classification, make_regression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from skl2onnx import to_onnx

    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=400, random_state=0).fit(X, y)
    onx = to_onnx(clf, X[:1], target_opset={"": 21, "ai.onnx.ml": 3})
    write_case("mlp_classifier", onx, {"X": X[:20]})

    Xb, yb = make_classification(n_samples=200, n_features=6, random_state=1)
    Xb = Xb.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", max_iter=400, random_state=1).fit(Xb, yb)
    onx = to_onnx(clf, Xb[:1], target_opset={"": 21, "ai.onnx.ml": 3}, options={"zipmap": False})
    write_case("mlp_classifier_binary", onx, {"X": Xb[:20]})

    Xr, yr = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.1, random_state=2)
    Xr = Xr.astype(np.float32)
    reg = MLPRegressor(hidden_layer_sizes=(24, 12), activation="logistic", max_iter=600, random_state=2).fit(Xr, yr)
    onx = to_onnx(reg, Xr[:1], target_opset={"": 21, "ai.onnx.ml": 3})
    write_case("mlp_regressor", onx, {"X": Xr[:20]})

    reg = MLPRegressor(hidden_layer_sizes=(20,), activation="relu", max_iter=600, random_state=3).fit(Xr, yr[:, 0])
    onx = to_onnx(reg, Xr[:1], target_opset={"": 21, "ai.onnx.ml": 3})
    write_case("mlp_regressor_single", onx, {"X": Xr[:20]})


def text_op_cases():
    MS = "com.microsoft"
    words = np.array(["Milk", "the", "CHEESE", "and", "Crème", "The", "ÉCOLE", ""], dtype=object)
    text = np.array([["Hello World, fresh milk!", "a bb ccc dddd"], ["", "crème-fraîche;yogurt"], ["x", "no separators here"]], dtype=object)
    ids = np.array([[1, 2, 3, 1, 2, 4], [4, 4, 4, 4, 2, 1], [5, 6, 7, 8, 9, 1]], np.int64)
    tok = dict(mark=0, pad_value="#", mincharnum=1)
    nodes = [
        helper.make_node("StringNormalizer", ["words"], ["lower_stop"], case_change_action="LOWER", stopwords=["the", "and"], locale=LOCALE),
        helper.make_node("StringNormalizer", ["words"], ["upper_cs"], case_change_action="UPPER", is_case_sensitive=1, stopwords=["The", "Milk"], locale=LOCALE),
        helper.make_node("StringNormalizer", ["words"], ["none_stop"], stopwords=["THE", "milk"], locale=LOCALE),
        helper.make_node("StringNormalizer", ["only_stop"], ["all_gone"], stopwords=["a", "b"], locale=LOCALE),
        helper.make_node("Tokenizer", ["text"], ["tok_exp"], domain=MS, tokenexp=r"\b\w\w+\b", **tok),
        helper.make_node("Tokenizer", ["text"], ["tok_mark"], domain=MS, mark=1, pad_value="<pad>", mincharnum=2, tokenexp="[a-z]+"),
        helper.make_node("Tokenizer", ["text"], ["tok_sep"], domain=MS, separators=[" ", "[,;!-]"], **tok),
        helper.make_node("Tokenizer", ["text"], ["tok_sep3"], domain=MS, mark=1, pad_value="_", mincharnum=3, separators=[" "]),
        helper.make_node("Tokenizer", ["short"], ["tok_chars"], domain=MS, separators=[""], mark=1, pad_value="#", mincharnum=1),
        helper.make_node("Tokenizer", ["short"], ["tok_dot"], domain=MS, tokenexp=".", **tok),
        helper.make_node("TfIdfVectorizer", ["ids"], ["tf_skip"], mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=1,
                         ngram_counts=[0, 4], ngram_indexes=[5, 4, 3, 2, 1, 0, 6], pool_int64s=[1, 2, 4, 9, 1, 2, 4, 4, 2, 1, 1, 4][:10]),
        helper.make_node("TfIdfVectorizer", ["ids"], ["idf_w"], mode="IDF", min_gram_length=2, max_gram_length=2, max_skip_count=0,
                         ngram_counts=[0, 3], ngram_indexes=[5, 4, 3, 2, 1, 0], pool_int64s=[1, 2, 4, 1, 2, 4, 4, 2, 1],
                         weights=[0.5, 1.5, 2.5, 3.5, 4.5, 5.5]),
        helper.make_node("TfIdfVectorizer", ["ids32"], ["tfidf_w"], mode="TFIDF", min_gram_length=1, max_gram_length=3, max_skip_count=2,
                         ngram_counts=[0, 2, 4], ngram_indexes=[0, 1, 2, 3, 4], pool_int64s=[4, 1, 4, 4, 1, 2, 4, 4, 4, 1],
                         weights=[0.25, 0.5, 1.0, 2.0, 4.0]),
        helper.make_node("Reshape", ["tok_exp", "rows"], ["tok_rows"]),
        helper.make_node("TfIdfVectorizer", ["tok_rows"], ["tf_words"], mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=0,
                         ngram_counts=[0, 3], ngram_indexes=[2, 0, 1, 3], pool_strings=["milk", "Hello", "fresh", "fresh", "milk"]),
    ]
    outs = [vi(n, S) for n in ["lower_stop", "upper_cs", "none_stop", "all_gone", "tok_exp", "tok_mark", "tok_sep", "tok_sep3", "tok_chars", "tok_dot"]]
    outs += [vi(n, F) for n in ["tf_skip", "idf_w", "tfidf_w", "tf_words"]]
    inputs = [vi("words", S, ["C"]), vi("only_stop", S, [1, "C"]), vi("text", S, ["N", 2]), vi("short", S, ["K"]), vi("ids", I64, ["N", 6]), vi("ids32", I32, ["N", 6])]
    m = helper.make_model(helper.make_graph(nodes, "textops", inputs, outs, [const("rows", np.array([0, -1], np.int64))]),
                          opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)], producer_name="kiln-gen-core")
    m.ir_version = 10
    feeds = {"words": words, "only_stop": np.array([["a", "b", "a"]], dtype=object), "text": text,
             "short": np.array(["ab", "", "çé"], dtype=object), "ids": ids, "ids32": ids.astype(np.int32)}
    write_case("text_ops", m, feeds)


def knn_cases():
    from sklearn.datasets import make_classification, make_regression
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from skl2onnx import to_onnx

    X, y = make_classification(n_samples=60, n_features=5, n_informative=3, n_redundant=1, n_classes=3, random_state=4)
    X = X.astype(np.float32)
    clf = KNeighborsClassifier(n_neighbors=5).fit(X[:40], y[:40])
    write_case("knn_classifier", to_onnx(clf, X[:1], target_opset={"": 21, "ai.onnx.ml": 3}), {"X": X[40:]})
    Xr, yr = make_regression(n_samples=60, n_features=4, random_state=5)
    Xr = Xr.astype(np.float32)
    reg = KNeighborsRegressor(n_neighbors=3, weights="distance").fit(Xr[:40], yr[:40])
    write_case("knn_regressor", to_onnx(reg, Xr[:1], target_opset={"": 21, "ai.onnx.ml": 3}), {"X": Xr[40:]})


def clean(prefixes):
    if not os.path.isdir(MODELS):
        return
    for d in os.listdir(MODELS):
        if d.startswith(prefixes):
            shutil.rmtree(os.path.join(MODELS, d))


def main():
    decode_cases()
    clean(PREFIXES)
    core_cases()
    mlp_cases()
    text_cases()
    text_op_cases()
    knn_cases()


if __name__ == "__main__":
    main()
