"""kiln.Client against a live `kiln server` (conftest.py): datasets made
with the CLI and read through the SDK (and the reverse), an ONNX model
logged with the real mlflow client, deployed, scored from a DataFrame,
labelled and measured; rollouts, monitors and alerts, a pipeline of shell
steps, a tuning study run by `kiln tune`, lineage, model cards, gates,
approvals, errors and the client's configuration."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

import kiln
from kiln import _blake3, content, frames
from kiln._transport import Transport, default_credentials, default_url, duration_param, time_param

from .conftest import ADMIN_PASSWORD, FEATURES, free_port, make_data


# -- configuration and errors -----------------------------------------------------------


def test_defaults_come_from_the_environment(monkeypatch, server):
    for k in ("KILN_URL", "MLFLOW_TRACKING_URI", "KILN_TOKEN", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "KILN_WORKSPACE"):
        monkeypatch.delenv(k, raising=False)
    assert default_url() == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///tmp/mlruns")  # not a server: ignored
    assert default_url() == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    assert default_url() == server.url
    monkeypatch.setenv("KILN_URL", server.url + "/")
    assert kiln.Client().url == server.url and kiln.Client().health()

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-tok")
    assert default_credentials() == ("mlflow-tok", "", "")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ada")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    assert default_credentials() == ("", "ada", "pw")  # as the mlflow client: user and password win
    monkeypatch.setenv("KILN_TOKEN", "kiln_abc_def")
    assert default_credentials() == ("kiln_abc_def", "", "")
    monkeypatch.setenv("KILN_WORKSPACE", "prod")
    h = kiln.Client(actor="ci")._t.headers()
    assert h["Authorization"] == "Bearer kiln_abc_def" and h["X-Kiln-Workspace"] == "prod" and h["X-Kiln-Actor"] == "ci"
    h = kiln.Client(username="bob", password="s3cret")._t.headers()
    assert h["Authorization"] == "Basic Ym9iOnMzY3JldA=="  # base64("bob:s3cret")
    assert kiln.Client(workspace="dev").with_workspace("staging")._t.headers()["X-Kiln-Workspace"] == "staging"

    with pytest.raises(ValueError, match="invalid Kiln server URL"):
        kiln.Client("ftp://example.com")
    with pytest.raises(ValueError, match="no query"):
        kiln.Client("http://127.0.0.1:1/?x=1")


def test_credentials_against_access_control(auth_server, monkeypatch):
    url = auth_server.url
    admin = kiln.Client(url, username="admin", password=ADMIN_PASSWORD)
    me = admin.whoami()
    assert (me.user, me.auth, me.admin) == ("admin", "password", True)
    with pytest.raises(kiln.Unauthenticated) as e:
        kiln.Client(url, username="admin", password="wrong").whoami()
    assert e.value.status == 401 and e.value.message == "Invalid user name or password"
    with pytest.raises(kiln.Unauthenticated):
        kiln.Client(url, token="").datasets.list()

    ro = json.loads(auth_server.cli("tokens", "create", "--name", "sdk-ro", "--scope", "read", "-o", "json").stdout)
    reader = kiln.Client(url, token=ro["secret"])
    assert (reader.whoami().auth, reader.whoami().scope, reader.whoami().token_id) == ("token", "read", ro["token"]["token_id"])
    assert reader.datasets.list() == []
    with pytest.raises(kiln.PermissionDenied) as e:
        reader.datasets.create("not-allowed")
    assert e.value.status == 403

    # The environment, as the kiln CLI and the mlflow client read it.
    for k in ("KILN_TOKEN", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "KILN_WORKSPACE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("KILN_URL", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    assert kiln.Client().whoami().auth == "password"
    monkeypatch.setenv("KILN_TOKEN", ro["secret"])
    assert kiln.Client().whoami().auth == "token"

    auth_server.cli("workspaces", "create", "dev")
    dev = json.loads(auth_server.cli("tokens", "create", "--name", "sdk-dev", "--workspace", "dev", "-o", "json").stdout)
    assert kiln.Client(url, token=dev["secret"]).whoami().token_workspace == "dev"


def test_query_parameters():
    from datetime import datetime, timedelta, timezone

    assert time_param(datetime(2026, 3, 1, tzinfo=timezone.utc)) == "2026-03-01T00:00:00Z"
    assert time_param(datetime(2026, 3, 1, 2)) == "2026-03-01T02:00:00Z"  # naive = UTC
    assert time_param(1700000000123) == "1700000000123"
    before = time_param(timedelta(hours=1))
    assert abs(datetime.fromisoformat(before.replace("Z", "+00:00")) - datetime.now(timezone.utc) + timedelta(hours=1)) < timedelta(seconds=5)
    assert duration_param(timedelta(minutes=15)) == "900s" and duration_param(0.25) == "250ms" and duration_param("1h") == "1h"
    t = Transport("http://h:1/prefix/")
    assert t.full_url("/x", {"a": None, "b": True, "c": [1, 2], "d": "é"}) == "http://h:1/prefix/x?b=true&c=1&c=2&d=%C3%A9"


def test_errors_carry_status_code_message_and_details(client, model, unique):
    with pytest.raises(kiln.NotFound) as e:
        client.datasets.get(f"no-such-{unique}")
    assert e.value.status == 404 and e.value.code == "NOT_FOUND"
    assert e.value.message == f"Dataset 'no-such-{unique}' does not exist"
    assert isinstance(e.value, kiln.KilnError) and "GET" in str(e.value)

    name = f"dup-{unique}"
    client.datasets.create(name, description="first", tags={"team": "sdk"})
    with pytest.raises(kiln.AlreadyExists) as e:
        client.datasets.create(name)
    assert e.value.status == 409

    bad = {"metadata": {"name": f"bad-{unique}"},
           "spec": {"model": model.name, "routes": [{"name": "main", "version": "1", "weight": -1}]}}
    with pytest.raises(kiln.InvalidArgument) as e:
        client.endpoints.apply(bad)
    assert e.value.status == 400
    assert [d.path for d in e.value.details][0] == "spec.routes[0].weight", e.value.details
    assert "spec.routes[0].weight" in str(e.value)

    # Errors of MLflow's REST API map to the same classes.
    with pytest.raises(kiln.NotFound):
        client.studies.get("0" * 32)
    # Unknown routes answer in the API's format too.
    with pytest.raises(kiln.NotFound, match="No API endpoint"):
        client._t.api("GET", "/no-such-route")

    with pytest.raises(ValueError, match="invalid dataset version"):
        client.datasets.version("sales@three")
    with pytest.raises(ValueError, match="unknown rollout action"):
        client.endpoints.rollout("x", "explode")

    closed = kiln.Client(f"http://127.0.0.1:{free_port()}", token="", timeout=5)
    with pytest.raises(kiln.KilnConnectionError) as e:
        closed.datasets.list()
    assert e.value.status is None and e.value.code == "UNAVAILABLE"


def test_whoami_and_openapi(client):
    me = client.whoami()
    assert me.user == "anonymous" and me.auth == "none"  # access control is off on loopback
    assert client.openapi().startswith("openapi: 3")


# -- datasets ---------------------------------------------------------------------------------


def test_datasets_added_with_the_cli_read_through_the_sdk(server, client, unique, tmp_path):
    name = f"sales-{unique}"
    v1 = pd.DataFrame({"id": [1, 2, 3, 4], "amount": [10.5, 20.0, 7.25, 3.0], "region": ["eu", "us", "eu", "apac"]})
    v1.to_csv(tmp_path / "sales.csv", index=False)
    server.cli("data", "add", name, str(tmp_path / "sales.csv"), "-m", "January", "--tag", "source=erp")
    v2 = pd.concat([v1, pd.DataFrame({"id": [5], "amount": [99.0], "region": ["us"]})], ignore_index=True)
    v2.to_csv(tmp_path / "sales.csv", index=False)
    server.cli("data", "add", name, str(tmp_path / "sales.csv"), "-m", "February")

    ds = client.datasets.get(name)
    assert ds.name == name and ds.latest_version == 2
    assert name in [d.name for d in client.datasets.list(prefix="sales-")]
    versions = client.datasets.versions(name)
    assert [v.version for v in versions] == [2, 1]  # newest first
    assert versions[1].description == "January" and versions[1].tags == {"source": "erp"}
    detail = client.datasets.version(f"{name}@1")
    assert detail.version.ref == f"{name}@1" and detail.uri == f"kiln://datasets/{name}@1"
    assert detail.tables == ["sales.csv"] and detail.version.kind == "file"
    assert client.datasets.version(name).version.version == 2  # the bare name is the latest
    assert client.datasets.version(name, version=1).version.digest == versions[1].digest
    assert client.datasets.version(f"{name}@v1").version.digest == versions[1].digest

    # The SDK hashes the file as the CLI did.
    assert versions[0].digest == content.scan(tmp_path / "sales.csv").manifest.digest

    prof = client.datasets.profile(f"{name}@2")  # computed and stored: the version had none
    assert prof.rows == 5 and prof.stored
    assert prof.column("amount")["max"] == 99.0 and prof.column("amount")["missing"] == 0
    assert client.datasets.version(f"{name}@2").version.profile["rows"] == 5

    suite = {"kind": "ValidationSuite", "name": "sales-checks",
             "rules": [{"check": "not_null", "column": "amount"}, {"check": "range", "column": "amount", "min": 0, "max": 50}]}
    failed = client.datasets.validate(f"{name}@2", suite)
    assert not failed.passed and failed.validation_id > 0 and failed.report["failed"] == 1
    passed = client.datasets.validate(f"{name}@1", "kind: ValidationSuite\nrules:\n  - {check: row_count, min: 4, max: 4}\n")
    assert passed.passed
    dry = client.datasets.validate(f"{name}@1", suite, dry_run=True)
    assert dry.passed and dry.validation_id == 0
    stored = client.datasets.validations(f"{name}@2")
    assert [(v.suite, v.passed) for v in stored] == [("sales-checks", False)]
    assert [v.id for v in client.datasets.version(f"{name}@1").validations] == [passed.validation_id]

    diff = client.datasets.diff(f"{name}@2")  # from the previous version
    assert str(diff.from_) == f"{name}@1" and str(diff.to) == f"{name}@2"
    assert [(t["path"], t["old_rows"], t["new_rows"]) for t in diff.tables] == [("sales.csv", 4, 5)]
    assert len(diff.files["changed"]) == 1

    tagged = client.datasets.tag(f"{name}@2", {"reviewed": "yes", "tmp": "x"})
    assert tagged.tags == {"reviewed": "yes", "tmp": "x"}
    assert client.datasets.untag(f"{name}@2", "tmp").tags == {"reviewed": "yes"}
    assert client.datasets.update(name, description="sales ledger").description == "sales ledger"

    # Files come back byte for byte, and as a DataFrame.
    pd.testing.assert_frame_equal(client.datasets.read_frame(f"{name}@1"), v1)
    pd.testing.assert_frame_equal(client.datasets.read_frame(name), v2)
    assert client.datasets.read_bytes(f"{name}@2", "sales.csv", verify=True) == (tmp_path / "sales.csv").read_bytes()
    out = client.datasets.download(f"{name}@1", tmp_path / "pulled", verify=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "sales.csv"), v1)

    client.datasets.delete(name)
    with pytest.raises(kiln.NotFound):
        client.datasets.get(name)


def test_dataset_folder_added_with_the_sdk_matches_the_cli(server, client, unique, tmp_path):
    """Sizes around BLAKE3's block (64 B) and chunk (1 KiB) bounds, names
    that JSON escapes differently, and an executable bit: the SDK's
    manifest must hash to the CLI's digest byte for byte."""
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    for n in (0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 3073, 9000, 70001):
        (root / f"f{n}.bin").write_bytes(bytes((i * 31 + n) % 256 for i in range(n)))
    (root / "sub" / "ünï cødé \"q\" & <x>.txt").write_text("héllo\n")
    run = root / "sub" / "deeper" / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)

    cli = json.loads(server.cli("data", "add", f"tree-cli-{unique}", str(root), "-o", "json").stdout)
    scanned = content.scan(root)
    assert scanned.manifest.digest == cli["version"]["digest"]
    assert any(e.exec for e in scanned.manifest.files)
    assert client.datasets.manifest(f"tree-cli-{unique}@1").encode() == scanned.manifest.encode()

    # Same content under another name: nothing to upload, same digest.
    again = client.datasets.add(f"tree-sdk-{unique}", root, description="from the sdk", tags={"by": "sdk"})
    assert again.created and again.version.digest == cli["version"]["digest"]
    assert again.pushed.sent_objects == 0 and again.pushed.objects == 14
    # Unchanged content is no new version.
    assert not client.datasets.add(f"tree-sdk-{unique}", root).created

    # New content is uploaded by the SDK and pulled by the CLI.
    (root / "new.csv").write_text("a,b\n1,2\n")
    v2 = client.datasets.add(f"tree-sdk-{unique}", root)
    assert v2.created and v2.version.version == 2 and v2.pushed.sent_objects == 1 and v2.pushed.sent_bytes == 8
    server.cli("data", "pull", f"tree-sdk-{unique}@2", str(tmp_path / "pulled"))
    assert (tmp_path / "pulled" / "new.csv").read_text() == "a,b\n1,2\n"
    assert (tmp_path / "pulled" / "f70001.bin").read_bytes() == (root / "f70001.bin").read_bytes()
    assert os.access(tmp_path / "pulled" / "sub" / "deeper" / "run.sh", os.X_OK)


def test_pure_python_blake3_matches_reference_vectors():
    # From the BLAKE3 reference test vectors (input: bytes i % 251).
    vec = {0: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
           1: "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
           1024: "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
           1025: "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"}
    for n, want in vec.items():
        data = bytes(i % 251 for i in range(n))
        assert _blake3.Blake3(data).hexdigest() == want, n
        h = _blake3.Blake3()
        for i in range(0, n, 7):  # in pieces
            h.update(data[i:i + 7])
        assert h.hexdigest() == want, n


def test_paginate_every_page(client, unique):
    for i in range(5):
        client.datasets.create(f"page-{unique}-{i}")
    first = client.datasets.page(prefix=f"page-{unique}-", max_results=2)
    assert [d.name for d in first] == [f"page-{unique}-0", f"page-{unique}-1"] and first.next_page_token
    names = [d.name for d in client.datasets.iter(prefix=f"page-{unique}-", page_size=2)]
    assert names == [f"page-{unique}-{i}" for i in range(5)]
    assert len(client.datasets.list(prefix=f"page-{unique}-")) == 5
    # contains: a part of the name, any ASCII case, paged the same way.
    part = f"GE-{unique}-3".upper()
    assert [d.name for d in client.datasets.iter(contains=part, page_size=1)] == [f"page-{unique}-3"]


# -- serving, the prediction log, labels and performance -------------------------------------


def test_predict_frame_send_labels_and_performance(client, model, endpoint):
    rng = np.random.default_rng(11)
    df, truth = make_data(rng, 230)
    df.index = pd.RangeIndex(1000, 1230)  # answers keep the caller's index
    scored = client.predict_frame(endpoint, df, batch_size=100, request_id_prefix="sdk-test")
    assert list(scored.index) == list(df.index)
    assert list(scored.columns[:3]) == ["request_id", "row", "prediction"]
    assert scored["request_id"].nunique() == 3 and scored["request_id"].iloc[0] == "sdk-test-000000"
    assert scored.groupby("request_id")["row"].apply(list).tolist() == [list(range(100)), list(range(100)), list(range(30))]
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), model.pipe.predict(df))

    # Labels for 200 of the 230 predictions, one of them corrected later.
    labels = scored.assign(label=truth).iloc[:200]
    assert client.send_labels(endpoint, labels, batch_size=64) == 200
    one = labels.iloc[5]
    assert client.feedback.send_one(endpoint, one.request_id, int(1 - one.label), row=int(one.row)) == 1
    assert client.feedback.send(endpoint, [{"request_id": one.request_id, "row": int(one.row), "label": int(one.label)}]) == 1
    got = {lab.row: lab.label for lab in client.feedback.get(endpoint, one.request_id)}
    assert got[int(one.row)] == int(one.label) and len(got) == 100
    with pytest.raises(kiln.NotFound):
        client.feedback.get(endpoint, "never-sent")
    with pytest.raises(ValueError, match="label is missing"):
        client.send_labels(endpoint, labels.assign(label=np.nan))

    log = client.predictions_frame(endpoint)  # flushed first
    mine = log[log["request_id"].str.startswith("sdk-test-")]
    assert len(mine) == 230 and set(mine["status"]) == {200}
    assert {f"inputs.{f}" for f in FEATURES} <= set(log.columns)
    merged = mine.merge(scored, on=["request_id", "row"])
    np.testing.assert_allclose(merged["inputs.f0"], df["f0"].to_numpy(), rtol=1e-6)
    assert client.predictions.segments(endpoint) and client.predictions.segments(endpoint)[0].rows >= 230

    perf = client.performance(endpoint, metrics=["accuracy"], window="1h")
    assert perf.task == "classification" and perf.labelled == 200 and perf.predictions >= 230
    want = accuracy_score(truth[:200], scored["prediction"].to_numpy()[:200])
    assert perf.windows[-1].metrics["accuracy"] == pytest.approx(want, abs=1e-12)
    frame = perf.frame()
    assert list(frame.columns) == ["start", "end", "labelled", "predictions", "accuracy"]
    assert frame["labelled"].sum() == 200

    stats = client.endpoints.stats(endpoint)
    assert stats[0].kind == "endpoint" and stats[0].total["requests"] >= 3


def test_label_files_and_answer_shapes(client, model, unique, tmp_path):
    endpoint = f"sdk-files-{unique}"  # its own, so that these labels count in no other test's performance
    client.endpoints.apply(client.endpoints.document(endpoint, model.name, version=1))
    client.endpoints.wait_ready(endpoint)
    scored = client.predict_frame(endpoint, make_data(np.random.default_rng(2), 4)[0], request_id_prefix="sdk-file")
    scored[["request_id", "row"]].assign(truth=[0, 1, 1, 0]).rename(columns={"request_id": "order"}).to_csv(
        tmp_path / "labels.csv", index=False)
    n = client.feedback.send_file(endpoint, tmp_path / "labels.csv", id_column="order", label_column="truth")
    assert n == 4
    assert [lab.label for lab in client.feedback.get(endpoint, "sdk-file-000000")] == [0, 1, 1, 0]
    (tmp_path / "bad.csv").write_text("request_id,label\nzz-1,1\nzz-2,\n")
    with pytest.raises(kiln.InvalidArgument, match="line 3"):  # all or nothing
        client.feedback.send_file(endpoint, tmp_path / "bad.csv")
    with pytest.raises(kiln.NotFound):
        client.feedback.get(endpoint, "zz-1")

    # MLflow scoring answers, flattened into columns (docs/serving.md).
    assert frames.predictions_to_rows([1, 0], 2) == [{"prediction": 1}, {"prediction": 0}]
    assert frames.predictions_to_rows([[0.2, 0.8]], 1) == [{"prediction_0": 0.2, "prediction_1": 0.8}]
    assert frames.predictions_to_rows([{"label": 1, "probabilities": [0.3, 0.7]}], 1) == [
        {"label": 1, "probabilities_0": 0.3, "probabilities_1": 0.7}]
    assert frames.predictions_to_rows([{"label": "b", "probabilities": {"a": 0.1, "b": 0.9}}], 1) == [
        {"label": "b", "probabilities_a": 0.1, "probabilities_b": 0.9}]
    assert frames.predictions_to_rows({"label": [1, 0], "score": [[0.1, 0.9], [0.8, 0.2]]}, 2) == [
        {"label": 1, "score_0": 0.1, "score_1": 0.9}, {"label": 0, "score_0": 0.8, "score_1": 0.2}]
    with pytest.raises(ValueError, match="3 predictions for 2 rows"):
        frames.predictions_to_rows([1, 2, 3], 2)
    # Requests carry every value exactly; missing ones as null.
    sent = frames.split_json(pd.DataFrame({"a": np.array([0.1, np.nan], dtype=np.float32), "b": [0.1234567890123456789, 2.0],
                                           "c": ["x", None], "t": pd.to_datetime(["2026-01-01", None])}))
    assert sent["columns"] == ["a", "b", "c", "t"]
    assert sent["data"][0][:3] == [float(np.float32(0.1)), 0.1234567890123456789, "x"]
    assert sent["data"][1][0] is None and sent["data"][1][2] is None and sent["data"][1][3] is None

    one = client.endpoints.predict(endpoint, [dict(zip(FEATURES, [0.5, 0.1, -0.2, 1.0]))], request_id="sdk-one")
    assert one.request_id == "sdk-one" and one.predictions in ([0], [1])
    client.endpoints.delete(endpoint)


def test_endpoint_rollout_actions_events_and_delete(client, model, unique):
    ep = f"sdk-roll-{unique}"
    doc = client.endpoints.document(ep, model.name, version=1)
    assert client.endpoints.apply(doc, reason="first").created
    client.endpoints.wait_ready(ep)
    assert ep in [e.name for e in client.endpoints.list()]
    assert not client.endpoints.apply(doc).changed  # idempotent

    canary = json.loads(json.dumps(doc))
    canary["spec"]["routes"][0]["version"] = "2"
    canary["spec"]["rollout"] = {"strategy": "canary", "steps": [{"weight": 25, "interval": "1h"}]}
    dry = client.endpoints.apply(canary, dry_run=True)
    assert dry.dry_run and dry.changed and '+      version: "2"' in dry.diff
    assert client.endpoints.get(ep).routes[0].version == 1  # a dry run changes nothing

    st = client.endpoints.apply(canary, reason="v2 canary").state
    assert st.rollout["phase"] == "progressing"
    assert sorted((r.version, r.weight) for r in st.routes) == [(1, 75), (2, 25)]
    assert client.endpoints.pause(ep, reason="hold").rollout["phase"] == "paused"
    assert client.endpoints.resume(ep).rollout["phase"] == "progressing"
    promoted = client.endpoints.promote(ep, reason="looks good")
    assert promoted.rollout["phase"] == "succeeded"
    assert [(r.version, r.weight) for r in promoted.routes if r.weight > 0] == [(2, 100)]
    back = client.endpoints.rollback(ep, reason="oops")
    assert back.rollout["phase"] == "rolled_back"
    assert [(r.version, r.weight) for r in back.routes if r.weight > 0] == [(1, 100)]

    events = client.endpoints.events(ep)
    assert [e.action for e in events] == ["rollback", "promote", "resume", "pause", "update", "create"]
    assert events[0].reason == "oops" and events[-1].reason == "first"
    assert len(client.endpoints.events(ep, limit=2)) == 2

    client.endpoints.delete(ep)
    with pytest.raises(kiln.NotFound):
        client.endpoints.get(ep)


# -- monitors and alerts ------------------------------------------------------------------------


def test_monitor_run_results_alerts_and_report(client, model, unique):
    # An endpoint of its own, so that the monitor's first (scheduled) run finds no traffic.
    endpoint = f"sdk-mon-ep-{unique}"
    client.endpoints.apply(client.endpoints.document(endpoint, model.name, version=1))
    client.endpoints.wait_ready(endpoint)
    assert client.datasets.profile(model.dataset).rows == 400  # a dataset reference needs a profile
    name = f"sdk-mon-{unique}"
    doc = f"""
apiVersion: kiln.dev/v1
kind: Monitor
metadata: {{name: {name}}}
spec:
  endpoint: {endpoint}
  reference: {{dataset: "{model.dataset}"}}
  window: 1h
  schedule: {{every: 1h}}
  features: [f0, f1, f2, f3]
  alerts:
    - name: always
      expr: drift_share >= 0
      severity: warning
      annotations: {{summary: "{{{{ .Value }}}} drifted"}}
"""
    applied = client.monitors.apply(doc)  # YAML text
    assert applied.created and applied.monitor.name == name and applied.monitor.endpoint == endpoint
    assert not client.monitors.apply(doc).changed
    assert name in [m.name for m in client.monitors.list(endpoint=endpoint)]
    deadline = time.time() + 60  # a new monitor is due at once
    while (first := client.monitors.get(name).latest) is None:
        assert time.time() < deadline, "the scheduler never ran the new monitor"
        time.sleep(0.2)
    assert first.status == "no_data" and client.alerts.firing(monitor=name) == []

    client.predict_frame(endpoint, make_data(np.random.default_rng(5), 120)[0], batch_size=40)
    client.predictions.flush(endpoint)
    res = client.monitors.run(name)
    assert res.status in ("ok", "drift"), res.message
    assert res.reference["dataset"] == model.dataset and res.reference["rows"] == 400
    assert res.traffic["rows"] >= 120
    assert {f["name"] for f in res.drift["features"]} == set(FEATURES)
    assert any(t["rule"] == "always" and t["to"] == "firing" for t in res.alerts), res.alerts
    assert res.id in [r.id for r in client.monitors.results(name)]
    assert client.monitors.get(name).firing_alerts == 1

    firing = client.alerts.firing(monitor=name)
    assert [(a.rule, a.severity, a.labels.get("endpoint")) for a in firing] == [("always", "warning", endpoint)]
    assert firing[0].annotations["summary"].endswith(" drifted")
    hist = client.alerts.history(monitor=name)
    assert hist and hist[0].rule == "always" and hist[0].state == "firing"
    assert "<html" in client.monitors.report(name).lower()

    client.monitors.delete(name)
    with pytest.raises(kiln.NotFound):
        client.monitors.get(name)
    assert client.alerts.firing(monitor=name) == []  # its alerts resolved
    client.endpoints.delete(endpoint)


def test_alert_receivers(client, unique):
    name = f"sdk-hook-{unique}"
    doc = {"metadata": {"name": name}, "spec": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cr3t"}}
    got = client.alert_receivers.apply(doc)
    assert got.created and got.receiver["spec"]["secret"] == "***"
    assert client.alert_receivers.get(name)["spec"]["url"] == "http://127.0.0.1:9/hook"
    assert name in [r["metadata"]["name"] for r in client.alert_receivers.list()]
    client.alert_receivers.delete(name)
    with pytest.raises(kiln.NotFound):
        client.alert_receivers.get(name)


# -- pipelines ----------------------------------------------------------------------------------------


def test_pipeline_of_shell_steps(client, unique, tmp_path):
    name = f"sdk-pipe-{unique}"
    flag = tmp_path / "flag"
    doc = {"metadata": {"name": name}, "spec": {
        "parameters": [{"name": "who", "default": "world"}, {"name": "flag", "default": str(flag)}],
        "steps": [
            {"name": "say", "command": ["sh", "-c", "echo hello {{params.who}}; echo to stderr >&2"]},
            {"name": "check", "command": ["sh", "-c", 'test -f "$0"', "{{params.flag}}"], "depends_on": ["say"]},
        ]}}
    assert client.pipelines.apply(doc).created
    assert client.pipelines.get(name).spec["steps"][0]["name"] == "say"

    failed = client.pipelines.run(name, {"who": "sdk"}, wait=True, timeout=120)
    assert failed.state == "failed"
    assert failed.step("say").state == "succeeded" and failed.step("check").state == "failed"
    assert failed.step("check").exit_code == 1
    log = client.pipelines.log_text(failed.run_id, "say")
    assert "hello sdk\n" in log and "to stderr\n" in log
    assert client.pipelines.logs(failed.run_id, "say").chunks[0].step == "say"

    flag.write_text("now it exists")
    resumed = client.pipelines.wait(client.pipelines.resume(failed.run_id).run_id, timeout=120)
    assert resumed.state == "succeeded" and resumed.resumed_from == failed.run_id
    assert resumed.step("say").state in ("succeeded", "cached") and resumed.step("check").state == "succeeded"
    assert resumed.tracking_run_id  # the MLflow parent run
    assert client.pipelines.get(name).last_run.run_id == resumed.run_id

    runs = client.pipelines.runs(name)
    assert [r.run_id for r in runs] == [resumed.run_id, failed.run_id]  # newest first
    page = client.pipelines.runs_page(name, limit=1)
    assert len(page) == 1 and page.next_page_token
    assert [r.run_id for r in client.pipelines.iter_runs(name, page_size=1)] == [resumed.run_id, failed.run_id]

    slow = {"metadata": {"name": name + "-slow"}, "spec": {"steps": [{"name": "nap", "command": ["sleep", "60"]}]}}
    client.pipelines.apply(slow)
    r = client.pipelines.run(name + "-slow")
    deadline = time.time() + 30
    while client.pipelines.get_run(r.run_id).step("nap").state != "running":
        assert time.time() < deadline, client.pipelines.get_run(r.run_id).raw
        time.sleep(0.1)
    client.pipelines.cancel(r.run_id, reason="test")
    assert client.pipelines.wait(r.run_id, timeout=60).state == "cancelled"
    assert [x.run_id for x in client.pipelines.runs(name + "-slow", state="cancelled")] == [r.run_id]

    client.pipelines.delete(name + "-slow")
    with pytest.raises(kiln.NotFound):
        client.pipelines.get(name + "-slow")
    with pytest.raises(kiln.InvalidArgument):
        client.pipelines.run(name, {"nope": "1"})


# -- tuning ------------------------------------------------------------------------------------------------


TRIAL = r"""
import json, os, sys, time, urllib.request
x = int(sys.argv[1])
body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "loss", "value": (x - 2) ** 2 + 0.5,
        "timestamp": int(time.time() * 1000), "step": 0}
req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
                             data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
"""


def test_tuning_study_read_from_its_runs(server, client, unique, tmp_path):
    study = f"sdk-study-{unique}"
    (tmp_path / "study.yaml").write_text(json.dumps({
        "apiVersion": "kiln.dev/v1", "kind": "Study", "metadata": {"name": study},
        "spec": {"objective": {"metric": "loss", "direction": "minimize"},
                 "command": [sys.executable, "-c", TRIAL, "{{params.x}}"],
                 "parameters": [{"name": "x", "type": "int", "low": 0, "high": 3}],
                 "sampler": {"type": "grid"}}}))
    server.cli("tune", "run", "-f", str(tmp_path / "study.yaml"), "-o", "json")
    shown = json.loads(server.cli("tune", "show", study, "-o", "json").stdout)

    got = client.studies.get(study)
    assert got.study == study and got.experiment == f"studies/{study}" and got.metric == "loss"
    assert got.direction == "minimize" and got.parent_run_id == shown["parent_run_id"]
    assert [(t.number, t.params["x"], t.state, t.value) for t in got.trials] == [
        (0, "0", "completed", 4.5), (1, "1", "completed", 1.5), (2, "2", "completed", 0.5), (3, "3", "completed", 1.5)]
    assert got.best is not None and got.best.params == {"x": "2"} and got.best.value == 0.5
    assert got.best.run_id == shown["best"]["run_id"] and got.counts == {"completed": 4}
    assert got.duration_ms > 0
    by_id = client.studies.get(got.parent_run_id)
    assert by_id.study == study and by_id.experiment == "" and len(by_id.trials) == 4
    assert list(got.frame()["x"]) == ["0", "1", "2", "3"]
    with pytest.raises(kiln.NotFound):
        client.studies.get(f"never-ran-{unique}")


# -- lineage, model cards, gates, approvals --------------------------------------------------------


def test_lineage_from_dataset_to_endpoint(client, model, endpoint):
    ds_node = "dataset:" + model.dataset
    g = client.lineage.graph(f"model:{model.name}/1")
    assert g.root == f"model:{model.name}/1"
    assert {ds_node, f"run:{model.run_id}", f"endpoint:{endpoint}"} <= set(g.ids())
    assert g.node(ds_node).type == "dataset_version"
    assert f"run:{model.run_id}" in g.downstream(ds_node)
    assert f"model:{model.name}/1" in g.upstream(f"endpoint:{endpoint}")
    up = client.lineage.graph(f"endpoint:{endpoint}", direction="upstream", depth=10)
    assert ds_node in up.ids("dataset_version")
    assert "digraph" in client.lineage.dot(f"model:{model.name}/1")

    # mlflow.log_input with the SDK's dataset linked the run to the version.
    lin = client.datasets.lineage(model.dataset)
    assert model.run_id in lin.run_ids and lin.runs[0]["context"] == "training"
    assert [d["version"]["dataset"] for d in client.lineage.run_datasets(model.run_id)] == [model.dataset.split("@")[0]]
    assert [d["via"] for d in client.lineage.model_datasets(model.name, 1)] == ["run"]
    linked = client.datasets.link_model_version(model.dataset, model.name, 2)
    assert any(m["model_version"] == 2 and m["via"] == "link" for m in linked.model_versions)


def test_model_card_gate_and_approval(client, model, unique, tmp_path):
    rng = np.random.default_rng(21)
    ev, y = make_data(rng, 300)
    ev.assign(y=y).to_parquet(tmp_path / "eval.parquet", index=False)
    ds = f"sdk-eval-{unique}"
    client.datasets.add(ds, tmp_path / "eval.parquet")

    policy = f"sdk-gate-{unique}"
    gate = client.gates.apply({"metadata": {"name": policy}, "spec": {
        "model": model.name, "data": f"{ds}@1", "label": "y", "baseline": "none",
        "metrics": [{"name": "accuracy", "threshold": {"min": 0.7}}, {"name": "f1"}]}})
    assert gate.created and gate.policy.generation == 1 and gate.policy.name == policy
    assert policy in [p.name for p in client.gates.list(model=model.name)]
    res = client.gates.evaluate(policy, 1)
    want = accuracy_score(y, model.pipe.predict(ev))
    assert res.passed and res.metric("accuracy") == pytest.approx(want, abs=1e-9)
    assert [c["passed"] for c in res.checks] == [True]
    assert [r.id for r in client.gates.results(model.name, 1, policy=policy)] == [res.id]
    strict = client.gates.apply({"metadata": {"name": policy}, "spec": {
        "model": model.name, "data": f"{ds}@1", "label": "y", "baseline": "none",
        "metrics": [{"name": "accuracy", "threshold": {"min": 0.999}}]}})
    assert strict.changed and strict.policy.generation == 2
    failed = client.gates.evaluate(policy, 1)
    assert not failed.passed and failed.failed

    card = client.model_cards.get(model.name, 1)
    assert card.model_details["name"] == model.name and card.model_details["version"] == 1
    assert card.model_details["run_id"] == model.run_id
    assert any(m["type"] == "accuracy" and m["source"] == f"gate:{policy}" for m in card.metrics)
    edited = client.model_cards.update(model.name, 1, overview="Predicts churn from four features.",
                                       limitations=["synthetic data"])
    assert edited.overview == "Predicts churn from four features."
    assert edited.considerations["limitations"] == ["synthetic data"]
    assert "Predicts churn from four features." in client.model_cards.render(model.name, 1)
    assert "<html" in client.model_cards.render(model.name, 1, format="html").lower()
    client.gates.delete(policy)
    with pytest.raises(kiln.NotFound):
        client.gates.get(policy)

    ap = client.approvals.put_policy(f"sdk-ap-{unique}", model.name, required=1, aliases=[f"prod-{unique}"])
    assert ap.required == 1 and client.approvals.get_policy(ap.name).aliases == [f"prod-{unique}"]
    asker = kiln.Client(client.url, token="", actor="ada")
    req = asker.approvals.request(model.name, 1, alias=f"prod-{unique}", reason="passes its gate")
    assert req.state == "pending" and req.requested_by == "ada"
    with pytest.raises(kiln.PermissionDenied, match="cannot decide"):
        asker.approvals.approve(req.request_id)
    done = kiln.Client(client.url, token="", actor="bob").approvals.approve(req.request_id, comment="ok")
    assert done.state == "approved" and [v["voter"] for v in done.votes] == ["bob"]
    assert client.approvals.get(req.request_id).state == "approved"
    assert [r.request_id for r in client.approvals.requests(model=model.name, state="approved")] == [req.request_id]
    client.approvals.delete_policy(ap.name)
    assert ap.name not in [p.name for p in client.approvals.policies()]


def test_alongside_the_mlflow_client(client, model):
    mc = client.mlflow_client()
    assert sorted(v.version for v in mc.search_model_versions(f"name = '{model.name}'")) == ["1", "2"]
    assert mc.get_run(model.run_id).info.run_id == model.run_id


def test_import_needs_no_third_party_package():
    code = ("import sys; import kiln; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('pandas', 'numpy', 'mlflow', 'requests', 'yaml', 'pyarrow')]; print(bad); sys.exit(1 if bad else 0)")
    import subprocess

    src = str(Path(kiln.__file__).resolve().parents[1])
    res = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src}, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_batch_scoring_job(client, model):
    job = client.score_jobs.submit(f"models:/{model.name}/1", model.dataset, keep=["y"])
    assert job.state in ("queued", "running", "succeeded") and job.id
    done = client.score_jobs.wait(job.id, timeout=120)
    assert done.state == "succeeded", done.error
    assert done.rows_done == 400 and done.output_uri.endswith("predictions.parquet")
    import mlflow.artifacts  # the output is an artifact: the mlflow client reads it

    out = pd.read_parquet(mlflow.artifacts.download_artifacts(artifact_uri=done.output_uri))
    assert list(out.columns[:2]) == ["y", "label"] and list(out["y"]) == list(model.y)
    np.testing.assert_array_equal(out["label"].to_numpy(), model.pipe.predict(model.train))
    assert job.id in [j.id for j in client.score_jobs.list(state="succeeded")]
    assert [j.id for j in client.score_jobs.iter(page_size=1)][:1] == [client.score_jobs.page(max_results=1).items[0].id]
