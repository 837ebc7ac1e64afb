"""Artifacts through the mlflow-artifacts proxy with the real client."""

import hashlib
import os

import mlflow
import pytest


def test_nested_directories_round_trip(client, tmp_path):
    src = tmp_path / "src"
    (src / "plots" / "roc").mkdir(parents=True)
    (src / "README.md").write_text("hello")
    (src / "plots" / "loss.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    (src / "plots" / "roc" / "curve.json").write_text('{"auc": 0.91}')
    run = client.create_run("0")
    rid = run.info.run_id
    client.log_artifacts(rid, str(src), artifact_path="outputs")
    client.log_artifact(rid, str(src / "README.md"))

    top = {f.path: f.is_dir for f in client.list_artifacts(rid)}
    assert top == {"README.md": False, "outputs": True}
    plots = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(rid, "outputs/plots")}
    assert plots == {"outputs/plots/loss.csv": (False, 22), "outputs/plots/roc": (True, None)}

    dst = tmp_path / "dst"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="outputs", dst_path=str(dst))
    assert open(os.path.join(local, "plots", "roc", "curve.json")).read() == '{"auc": 0.91}'
    assert mlflow.artifacts.load_text(f"runs:/{rid}/README.md") == "hello"


def test_artifact_lands_in_store(kiln, client, tmp_path):
    """The object really is in the configured store, under MLflow's layout."""
    f = tmp_path / "model.txt"
    f.write_text("weights")
    run = client.create_run("0")
    client.log_artifact(run.info.run_id, str(f))
    key = f"0/{run.info.run_id}/artifacts/model.txt"
    if "artifact_dir" in kiln.extra:
        assert (kiln.extra["artifact_dir"] / key).read_text() == "weights"
    else:
        body = kiln.extra["s3"].get_object(Bucket="kiln-artifacts", Key="mlflow/" + key)["Body"].read()
        assert body == b"weights"


def test_large_file_100mb(client, tmp_path):
    size = 100 * 1024 * 1024
    src = tmp_path / "big.bin"
    h = hashlib.sha256()
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(size >> 20):
            chunk = block[i % 7 :] + block[: i % 7]
            f.write(chunk)
            h.update(chunk)
    rid = client.create_run("0").info.run_id
    client.log_artifact(rid, str(src))
    [entry] = client.list_artifacts(rid)
    assert entry.file_size == size
    out = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="big.bin", dst_path=str(tmp_path / "dl"))
    h2 = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h2.update(chunk)
    assert h2.hexdigest() == h.hexdigest()


@pytest.mark.parametrize("path", ["../../etc/passwd", "0/%2e%2e/%2e%2e/secret", "a/%00/b"])
def test_path_traversal_rejected(kiln, path):
    r = kiln.api("GET", "artifacts/list", params={"run_id": "x"})  # sanity: JSON errors
    assert r.headers["Content-Type"].startswith("application/json")
    r = __import__("requests").put(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts/{path}", data=b"x", timeout=10)
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_multipart_falls_back(kiln, client, tmp_path, monkeypatch):
    """With proxy multipart enabled the client falls back to one PUT on our 501."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1024")
    f = tmp_path / "mp.bin"
    f.write_bytes(os.urandom(8192))
    rid = client.create_run("0").info.run_id
    client.log_artifact(rid, str(f))
    out = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="mp.bin", dst_path=str(tmp_path / "o"))
    assert open(out, "rb").read() == f.read_bytes()
