"""Tests of kiln.worker: the real worker process on models saved by the real
mlflow client (model/testdata, written by model/testdata/gen.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))  # this checkout's package, installed or not

from kiln import worker as kw  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TESTDATA = ROOT / "model" / "testdata"
EXPECTED = json.loads((TESTDATA / "expected.json").read_text())


class Client:
    def __init__(self, model_dir):
        env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiln.worker", "--model-dir", str(model_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(model_dir),
            env=env,
        )
        self.next_id = 0

    def recv(self):
        frame = kw.read_frame(self.proc.stdout)
        assert frame is not None, self.proc.stderr.read().decode()
        return frame

    def send(self, header, chunks=()):
        kw.write_frame(self.proc.stdin, header, chunks)

    def predict(self, named):
        self.next_id += 1
        specs, chunks = kw.encode_tensors(named)
        self.send({"op": "predict", "id": self.next_id, "inputs": specs}, chunks)
        msg, payload = self.recv()
        assert msg["id"] == self.next_id
        if msg["op"] == "error":
            return msg, None
        return msg, dict(kw.decode_tensors(msg["outputs"], payload))

    def close(self):
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


@pytest.fixture
def client(request):
    c = Client(TESTDATA / request.param)
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait()


@pytest.mark.parametrize("client", ["pyfunc_echo"], indirect=True)
def test_columns_model(client):
    ready, _ = client.recv()
    assert ready["op"] == "ready" and ready["pid"] == client.proc.pid
    assert ready["input_kind"] == "columns"
    assert ready["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [-1]},
        {"name": "n", "datatype": "INT64", "shape": [-1]},
        {"name": "s", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in ready["outputs"]] == ["y", "m", "label"]
    exp = EXPECTED["pyfunc_echo"]
    inputs = [
        ("x", np.array(exp["inputs"]["x"], dtype=np.float64)),
        ("n", np.array(exp["inputs"]["n"], dtype=np.int64)),
        ("s", np.array(exp["inputs"]["s"], dtype=object)),
    ]
    # The model prints on every call: stdout must stay the protocol's.
    for _ in range(3):
        msg, out = client.predict(inputs)
        assert msg["op"] == "result", msg
        assert [o["datatype"] for o in msg["outputs"]] == ["FP64", "INT64", "BYTES"]
        assert out["y"].tolist() == exp["outputs"]["y"]
        assert out["m"].tolist() == exp["outputs"]["m"]
        assert [b.decode() for b in out["label"].tolist()] == exp["outputs"]["label"]
    client.send({"op": "ping", "id": 99})
    assert client.recv()[0] == {"op": "pong", "id": 99}
    # A column of the wrong type fails MLflow's schema enforcement: an input error.
    msg, _ = client.predict([("x", np.array(["a", "b", "c"], dtype=object)), inputs[1], inputs[2]])
    assert msg["op"] == "error" and msg["kind"] == "input", msg
    msg, _ = client.predict([inputs[0], ("n", np.array([1], dtype=np.int64)), inputs[2]])
    assert msg["op"] == "error" and msg["kind"] == "input" and "different lengths" in msg["message"], msg
    # The worker goes on after an error, and exits cleanly on EOF.
    assert client.predict(inputs)[0]["op"] == "result"
    assert client.close() == 0
    # mlflow's default tracking store (./mlruns) stays out of the model directory.
    assert not (TESTDATA / "pyfunc_echo" / "mlruns").exists()


@pytest.mark.parametrize("client", ["sklearn_logreg"], indirect=True)
def test_sklearn_columns(client):
    ready, _ = client.recv()
    assert ready["outputs"] == [{"name": "predictions", "datatype": "INT64", "shape": [-1]}]
    exp = EXPECTED["sklearn_logreg"]
    msg, out = client.predict([(k, np.array(v, dtype=np.float64)) for k, v in exp["inputs"].items()])
    assert msg["op"] == "result", msg
    assert out["predictions"].tolist() == exp["outputs"]["predictions"]


@pytest.mark.parametrize("client", ["sklearn_ridge_tensor"], indirect=True)
def test_sklearn_tensor(client):
    ready, _ = client.recv()
    assert ready["input_kind"] == "tensors"
    assert ready["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    exp = EXPECTED["sklearn_ridge_tensor"]
    msg, out = client.predict([("input", np.array(exp["inputs"]["input"], dtype=np.float32))])
    assert msg["op"] == "result", msg
    np.testing.assert_allclose(out["predictions"], exp["outputs"]["predictions"], rtol=1e-6)


@pytest.mark.parametrize("client", ["sklearn_logreg"], indirect=True)
def test_protocol_errors(client):
    client.recv()
    client.send({"op": "predict", "id": 1, "inputs": [{"name": "x", "datatype": "FP64", "shape": [4]}]}, [b"short"])
    msg, _ = client.recv()
    assert msg["op"] == "error" and msg["kind"] == "input" and "too short" in msg["message"]
    client.send({"op": "nope", "id": 2})
    assert client.recv()[0]["kind"] == "protocol"
    # A broken frame ends the worker with an error status.
    client.proc.stdin.write(b"\xff\xff\xff\xff\x00\x00\x00\x00")
    client.proc.stdin.close()
    assert client.proc.wait(timeout=30) == 2


def test_load_failure(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: no_such_module_xyz}}\n")
    c = Client(tmp_path)
    msg, _ = c.recv()
    assert msg["op"] == "error" and msg["kind"] == "load" and "no_such_module_xyz" in msg["message"]
    assert c.proc.wait(timeout=30) == 1


def test_tensor_codec_roundtrip():
    named = [
        ("b", np.array([True, False])),
        ("u", np.arange(6, dtype=np.uint16).reshape(2, 3)),
        ("f", np.array([1.5, np.nan], dtype=np.float16)),
        ("s", np.array(["é", "", "xyz"], dtype=object)),
        ("scalar", np.float64(2.5)),
        ("objnum", np.array([1, 2], dtype=object)),
    ]
    specs, chunks = kw.encode_tensors(named)
    payload = bytearray(b"".join(bytes(c) for c in chunks))
    got = dict(kw.decode_tensors(specs, payload))
    assert got["b"].tolist() == [True, False]
    assert got["u"].shape == (2, 3) and got["u"].dtype == np.uint16
    assert got["f"][0] == 1.5 and np.isnan(got["f"][1])
    assert got["s"].tolist() == ["é".encode(), b"", b"xyz"]
    assert got["scalar"].shape == () and got["scalar"] == 2.5
    assert specs[5]["datatype"] == "INT64"
    with pytest.raises(kw.ProtocolError):
        kw.decode_tensors(specs, payload + b"x")
