"""Kiln's pyfunc worker: serves one MLflow model to a parent process.

Run as ``python -m kiln.worker --model-dir DIR``. The worker loads the model
with ``mlflow.pyfunc.load_model`` and answers requests on stdin/stdout until
stdin reaches EOF, then exits 0. Anything the model prints goes to stderr:
the worker keeps stdout for the protocol. The Go side is
``github.com/kiln-ml/kiln/runtime/python``; keep the two descriptions equal.

Protocol
--------
Every message, in both directions, is one frame::

    u32 little-endian  H, the header length
    u32 little-endian  P, the payload length
    H bytes            header: a UTF-8 JSON object with an "op"
    P bytes            payload: the data of the tensors the header lists

A tensor is described in a header as ``{"name", "datatype", "shape"}`` with
an Open Inference Protocol datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16,
FP32, FP64, BYTES). The tensors' data follow each other in the payload, in
the header's order: fixed-size types row-major and little-endian (BOOL one
byte, 0 or 1); BYTES as, per element, a u32 little-endian length and the
bytes.

Worker to parent, once, when the model is loaded::

    {"op": "ready", "pid", "python", "mlflow",
     "input_kind": "columns" | "tensors" | "none",
     "inputs": [spec], "outputs": [spec]}

where a spec is ``{"name", "datatype", "shape"}`` from the model's MLflow
signature ("datatype": "" when any type goes). A column-based signature
gives one 1-D input per column (shape [-1]); a tensor-based one its
tensors (an unnamed single tensor is called "input", several "input_<i>");
an unnamed single output is called "predictions". If loading fails the
worker sends ``{"op": "error", "kind": "load", "message"}`` and exits 1.

Parent to worker, then worker to parent (one request at a time)::

    {"op": "predict", "id": n, "inputs": [tensor]} + payload
        -> {"op": "result", "id": n, "outputs": [tensor]} + payload
        or {"op": "error", "id": n, "kind": "input" | "model", "message"}
    {"op": "ping", "id": n}  ->  {"op": "pong", "id": n}

For "columns" models the inputs become a pandas DataFrame (one column per
input, in signature order); for "tensors" models a numpy array (a single
unnamed tensor) or a dict of arrays; with no signature, the single input
as an array, or a dict. The model's result becomes tensors: a DataFrame
one per column, a dict one per key, an array or list one tensor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Set, Tuple, cast

import numpy as np

_PREFIX = struct.Struct("<II")
_U32 = struct.Struct("<I")
MAX_HEADER = 64 << 20
MAX_PAYLOAD = (1 << 32) - 1

_DTYPES: Dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


class ProtocolError(Exception):
    """A frame that does not follow the protocol."""


class InputError(Exception):
    """Inputs that do not fit the model."""


# ---------------------------------------------------------------- framing


def read_exact(f: BinaryIO, n: int) -> Optional[bytearray]:
    """Reads exactly n bytes; None on EOF before the first byte."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            if got == 0:
                return None
            raise ProtocolError(f"stream ended inside a frame ({got} of {n} bytes)")
        got += k
    return buf


def read_frame(f: BinaryIO) -> Optional[Tuple[Dict[str, Any], bytearray]]:
    """Reads one frame; None on a clean EOF."""
    prefix = read_exact(f, _PREFIX.size)
    if prefix is None:
        return None
    hlen, plen = _PREFIX.unpack(prefix)
    if hlen == 0 or hlen > MAX_HEADER:
        raise ProtocolError(f"bad header length {hlen}")
    header = read_exact(f, hlen)
    if header is None:
        raise ProtocolError("stream ended inside a frame")
    payload = read_exact(f, plen) if plen else bytearray()
    if payload is None:
        raise ProtocolError("stream ended inside a frame")
    msg = json.loads(header)
    if not isinstance(msg, dict):
        raise ProtocolError("header is not a JSON object")
    return msg, payload


def write_frame(f: BinaryIO, header: Dict[str, Any], chunks: Sequence[Any] = ()) -> None:
    """Writes one frame whose payload is the concatenation of chunks."""
    h = json.dumps(header, separators=(",", ":")).encode()
    plen = sum(memoryview(c).nbytes for c in chunks)
    if plen > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {plen} bytes is too large")
    f.write(_PREFIX.pack(len(h), plen))
    f.write(h)
    for c in chunks:
        f.write(c)
    f.flush()


# ---------------------------------------------------------------- tensors


def decode_tensors(specs: List[Dict[str, Any]], payload: bytearray) -> List[Tuple[str, np.ndarray]]:
    """Decodes the tensors a header lists from its payload."""
    out = []
    off = 0
    view = memoryview(payload)
    for spec in specs:
        name = str(spec.get("name", ""))
        shape = tuple(int(d) for d in spec.get("shape", []))
        if any(d < 0 for d in shape):
            raise ProtocolError(f"tensor {name!r}: negative dimension in {list(shape)}")
        n = int(np.prod(shape, dtype=np.int64))
        dt = spec.get("datatype")
        if dt == "BYTES":
            items = []
            for _ in range(n):
                if off + 4 > len(payload):
                    raise ProtocolError(f"tensor {name!r}: payload too short")
                (k,) = _U32.unpack_from(payload, off)
                off += 4
                if off + k > len(payload):
                    raise ProtocolError(f"tensor {name!r}: payload too short")
                items.append(bytes(view[off : off + k]))
                off += k
            arr = np.empty(n, dtype=object)
            arr[:] = items
            out.append((name, arr.reshape(shape)))
            continue
        if dt not in _DTYPES:
            raise ProtocolError(f"tensor {name!r}: unknown datatype {dt!r}")
        dtype = _DTYPES[dt]
        size = n * dtype.itemsize
        if off + size > len(payload):
            raise ProtocolError(f"tensor {name!r}: payload too short")
        arr = np.frombuffer(payload, dtype=dtype, count=n, offset=off).reshape(shape)
        off += size
        out.append((name, arr))
    if off != len(payload):
        raise ProtocolError(f"payload has {len(payload) - off} bytes after the tensors")
    return out


def _bytes_of(x: Any) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8", "surrogateescape")
    if x is None:
        return b""
    return str(x).encode()


def encode_tensor(name: str, arr: Any) -> Tuple[Dict[str, Any], List[Any]]:
    """Encodes an array as a tensor descriptor and its payload chunks."""
    a = np.asarray(arr)
    if a.dtype.kind == "O":
        # Objects that are all numbers or booleans travel as numbers.
        try:
            b = np.array(a.tolist())
            if b.dtype.kind in "biuf" and b.shape == a.shape:
                a = b
        except (ValueError, TypeError):
            pass
    kind = a.dtype.kind
    if kind in "OUSM" or kind == "m":
        flat = a.reshape(-1)
        chunks: List[Any] = []
        for x in flat.tolist() if kind != "M" else np.datetime_as_string(flat):
            raw = _bytes_of(x)
            chunks.append(_U32.pack(len(raw)))
            chunks.append(raw)
        return {"name": name, "datatype": "BYTES", "shape": list(a.shape)}, chunks
    if kind == "b":
        dt = "BOOL"
    elif kind in "iu":
        dt = ("INT" if kind == "i" else "UINT") + str(a.dtype.itemsize * 8)
    elif kind == "f":
        if a.dtype.itemsize > 8:
            a = a.astype(np.float64)
        dt = {2: "FP16", 4: "FP32", 8: "FP64"}[a.dtype.itemsize]
    else:
        raise TypeError(f"output {name!r} has numpy dtype {a.dtype}, which has no tensor datatype")
    a = a.astype(_DTYPES[dt], order="C", copy=False)
    return {"name": name, "datatype": dt, "shape": list(a.shape)}, [memoryview(cast(Any, a)).cast("B")]


def encode_tensors(named: List[Tuple[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Any]]:
    specs, chunks = [], []
    for name, arr in named:
        s, c = encode_tensor(name, arr)
        specs.append(s)
        chunks.extend(c)
    return specs, chunks


# ---------------------------------------------------------------- model


def _oip(dtype: Any) -> str:
    """The OIP datatype of a numpy dtype ("" when it has none)."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        return ""
    if d.kind in "USOM":
        return "BYTES"
    for name, nd in _DTYPES.items():
        if nd.kind == d.kind and nd.itemsize == d.itemsize:
            return name
    return ""


def _schema_specs(schema: Any, inputs: bool) -> Tuple[str, List[Dict[str, Any]]]:
    if schema is None:
        return "none", []
    specs = []
    items = schema.inputs
    if schema.is_tensor_spec():
        for i, t in enumerate(items):
            name = t.name or (("input" if inputs else "predictions") if len(items) == 1 else f"{'input' if inputs else 'output'}_{i}")
            specs.append({"name": name, "datatype": _oip(t.type), "shape": [int(d) for d in t.shape]})
        return "tensors", specs
    for i, c in enumerate(items):
        try:
            dt = _oip(c.type.to_numpy())
        except Exception:  # Array, Object, Map, AnyType: no fixed tensor type
            dt = ""
        name = c.name if c.name is not None else (f"input_{i}" if inputs else f"output_{i}")
        specs.append({"name": name, "datatype": dt, "shape": [-1]})
    return "columns", specs


class Worker:
    """Holds a loaded model and turns requests into predictions."""

    def __init__(self, model: Any) -> None:
        self.model = model
        sig = getattr(model.metadata, "signature", None)
        self.input_schema = sig.inputs if sig is not None else None
        self.input_kind, self.inputs = _schema_specs(self.input_schema, True)
        _, self.outputs = _schema_specs(sig.outputs if sig is not None else None, False)
        self.binary_cols: Set[str] = set()
        if self.input_kind == "columns" and self.input_schema is not None:
            for spec, col in zip(self.inputs, self.input_schema.inputs):
                if str(getattr(col.type, "name", "")) == "binary":
                    self.binary_cols.add(spec["name"])

    def ready(self) -> Dict[str, Any]:
        import platform

        import mlflow

        return {
            "op": "ready",
            "pid": os.getpid(),
            "python": platform.python_version(),
            "mlflow": mlflow.__version__,
            "input_kind": self.input_kind,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }

    def _text(self, name: str, arr: np.ndarray) -> np.ndarray:
        if arr.dtype != object or name in self.binary_cols:
            return arr
        out = np.empty(arr.shape, dtype=object)
        out.reshape(-1)[:] = [b.decode("utf-8", "surrogateescape") for b in arr.reshape(-1)]
        return out

    def model_input(self, tensors: List[Tuple[str, np.ndarray]]) -> Any:
        import pandas as pd

        if self.input_kind == "columns" and self.input_schema is not None:
            by_name = {n: a for n, a in tensors}
            cols: Dict[Any, Any] = {}
            for spec, col in zip(self.inputs, self.input_schema.inputs):
                name = spec["name"]
                if name not in by_name:
                    continue
                arr = by_name[name]
                if arr.ndim == 2 and arr.shape[1] == 1:
                    arr = arr[:, 0]
                key = col.name if col.name is not None else len(cols)
                cols[key] = self._text(name, arr) if arr.ndim == 1 else list(arr)
            lengths = {len(v) for v in cols.values()}
            if len(lengths) > 1:
                raise InputError(f"columns have different lengths {sorted(lengths)}")
            return pd.DataFrame(cols)
        arrays = [(n, self._text(n, a)) for n, a in tensors]
        if self.input_kind == "tensors":
            if len(self.inputs) == 1 and self.input_schema is not None and self.input_schema.inputs[0].name is None:
                return arrays[0][1]
            return {n: a for n, a in arrays}
        if len(arrays) == 1:
            return arrays[0][1]
        return {n: a for n, a in arrays}

    def outputs_of(self, result: Any) -> List[Tuple[str, Any]]:
        import pandas as pd

        default = self.outputs[0]["name"] if len(self.outputs) == 1 else "predictions"
        if isinstance(result, pd.DataFrame):
            return [(str(c), result[c].to_numpy()) for c in result.columns]
        if isinstance(result, pd.Series):
            return [(str(result.name) if result.name is not None else default, result.to_numpy())]
        if isinstance(result, dict):
            return [(str(k), np.asarray(v)) for k, v in result.items()]
        return [(default, np.asarray(result))]

    def predict(self, tensors: List[Tuple[str, np.ndarray]]) -> List[Tuple[str, Any]]:
        return self.outputs_of(self.model.predict(self.model_input(tensors)))


def _error_kind(e: BaseException) -> str:
    if isinstance(e, InputError):
        return "input"
    try:
        from mlflow.exceptions import MlflowException

        if isinstance(e, MlflowException) and e.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
            return "input"
    except ImportError:
        pass
    return "model"


def serve(worker: Worker, inp: BinaryIO, out: BinaryIO) -> None:
    """Answers requests from inp on out until EOF."""
    write_frame(out, worker.ready())
    while True:
        frame = read_frame(inp)
        if frame is None:
            return
        msg, payload = frame
        op, rid = msg.get("op"), msg.get("id", 0)
        if op == "ping":
            write_frame(out, {"op": "pong", "id": rid})
            continue
        if op != "predict":
            write_frame(out, {"op": "error", "id": rid, "kind": "protocol", "message": f"unknown op {op!r}"})
            continue
        try:
            tensors = decode_tensors(msg.get("inputs", []), payload)
        except (ProtocolError, ValueError, TypeError) as e:
            write_frame(out, {"op": "error", "id": rid, "kind": "input", "message": str(e)})
            continue
        try:
            specs, chunks = encode_tensors(worker.predict(tensors))
        except Exception as e:  # the model's own errors go back to the caller
            traceback.print_exc(file=sys.stderr)
            write_frame(out, {"op": "error", "id": rid, "kind": _error_kind(e), "message": f"{type(e).__name__}: {e}"})
            continue
        write_frame(out, {"op": "result", "id": rid, "outputs": specs}, chunks)


def _protocol_streams() -> Tuple[BinaryIO, BinaryIO]:
    """Takes stdin and stdout for the protocol: the model reads /dev/null
    and writes to stderr instead."""
    sys.stdout.flush()
    inp = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return inp, out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kiln.worker", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True, help="the MLflow model directory")
    args = ap.parse_args(argv)
    inp, out = _protocol_streams()
    scratch = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # Loading a model makes mlflow open its default tracking store,
        # which creates ./mlruns: keep it out of the model directory.
        scratch = tempfile.mkdtemp(prefix="kiln-worker-")
        os.environ["MLFLOW_TRACKING_URI"] = Path(scratch, "mlruns").as_uri()
    try:
        try:
            import mlflow.pyfunc

            worker = Worker(mlflow.pyfunc.load_model(args.model_dir))
        except BaseException as e:  # noqa: BLE001 - reported to the parent, then exit
            traceback.print_exc(file=sys.stderr)
            write_frame(out, {"op": "error", "id": 0, "kind": "load", "message": f"{type(e).__name__}: {e}"})
            return 1
        try:
            serve(worker, inp, out)
        except BrokenPipeError:
            return 0
        except ProtocolError as e:
            print(f"kiln.worker: protocol error: {e}", file=sys.stderr)
            return 2
        return 0
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
