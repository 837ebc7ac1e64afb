"""Dataset versions end to end with the `kiln data` CLI against a freshly
built `kiln server` (SQLite + folder, PostgreSQL + S3): a folder tree's
round trip through add, pull and checkout, new versions and diffs, unchanged
re-adds, validation suites and their exit codes, deterministic splits, and
lineage from MLflow runs (the real `mlflow` client's log_input) to versions.
"""

from __future__ import annotations

import filecmp
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))


class DataCLI:
    """Runs `bin/kiln data …` against one server with its own cache folder."""

    def __init__(self, url: str, cache: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and k != "MLFLOW_TRACKING_URI"}
        self.env.update(KILN_URL=url, KILN_CACHE_DIR=str(cache))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([KILN_BIN, "data", *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"kiln data {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def json(self, *args: str, check: bool = True):
        return json.loads(self.run(*args, "--output", "json", check=check).stdout)


@pytest.fixture(scope="module")
def data(kiln, tmp_path_factory) -> DataCLI:
    return DataCLI(kiln.url, tmp_path_factory.mktemp("kiln-cache"))


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file under root by slash-separated relative path."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def assert_same_tree(a: Path, b: Path) -> None:
    fa, fb = tree_files(a), tree_files(b)
    assert sorted(fa) == sorted(fb)
    for rel in fa:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def write_tree(root: Path) -> None:
    rng = np.random.default_rng(3)
    (root / "images" / "cats" / "2026").mkdir(parents=True)
    (root / "images" / "dogs").mkdir(parents=True)
    (root / "tables").mkdir()
    (root / "README.md").write_text("# pets\n")
    (root / "EMPTY").write_bytes(b"")
    for i in range(3):
        (root / "images" / "cats" / "2026" / f"cat{i}.bin").write_bytes(rng.bytes(3000 + i))
    (root / "images" / "dogs" / "dog.bin").write_bytes(rng.bytes(70_000))
    (root / "images" / "dogs" / "copy-of-cat0.bin").write_bytes((root / "images" / "cats" / "2026" / "cat0.bin").read_bytes())
    pd.DataFrame({"id": np.arange(50), "label": rng.choice(["cat", "dog"], 50)}).to_parquet(root / "tables" / "labels.parquet", index=False)


def test_tree_round_trip_versions_and_diff(kiln, data, unique, tmp_path):
    src = tmp_path / "src"
    write_tree(src)
    original = tmp_path / "v1-copy"
    shutil.copytree(src, original)
    name = f"pets-{unique}"

    a1 = data.json("add", name, str(src), "-m", "first load", "--tag", "origin=test")
    v1 = a1["version"]
    assert a1["created"] is True and v1["version"] == 1 and v1["kind"] == "dir"
    assert v1["file_count"] == 8
    assert v1["total_size"] == sum(len(b) for b in tree_files(src).values())
    assert v1["tags"] == {"origin": "test"} and v1["description"] == "first load"
    # The duplicate file is stored once.
    assert a1["transfer"]["Objects"] == 7 and a1["transfer"]["Sent"] == 7

    # pull into a new folder: the same bytes, the empty file included.
    out = tmp_path / "pulled"
    p = data.json("pull", f"{name}@1", str(out))
    assert p["stats"]["Written"] == 8
    assert_same_tree(src, out)
    assert (out / "EMPTY").stat().st_size == 0
    # checkout from the local cache into another new folder.
    co = tmp_path / "checked-out"
    data.run("checkout", f"{name}@1", str(co))
    assert_same_tree(src, co)

    # Unchanged re-add: no new version.
    again = data.json("add", name, str(src))
    assert again["created"] is False and again["version"]["version"] == 1
    assert again["version"]["digest"] == v1["digest"]

    # Change one table file (more rows, a new column): version 2.
    df = pd.read_parquet(src / "tables" / "labels.parquet")
    df = pd.concat([df, df.iloc[:10]], ignore_index=True)
    df["weight"] = 1.5
    df.to_parquet(src / "tables" / "labels.parquet", index=False)
    a2 = data.json("add", name, str(src))
    assert a2["created"] is True and a2["version"]["version"] == 2
    assert a2["transfer"]["Sent"] == 1  # only the changed file travels
    d = data.json("diff", f"{name}@1", f"{name}@2")
    files = d["files"]
    assert files["added"] == [] and files["removed"] == []
    assert [c["path"] for c in files["changed"]] == ["tables/labels.parquet"]
    assert files["unchanged"] == 7
    [t] = d["tables"]
    assert t["path"] == "tables/labels.parquet" and t["status"] == "changed"
    assert (t["old_rows"], t["new_rows"]) == (50, 60)
    assert t["schema_changes"] == [{"kind": "added", "column": "weight"}]
    # The text form says the same.
    txt = data.run("diff", f"{name}@1", f"{name}@2").stdout
    assert "1 changed" in txt and "rows 50 → 60" in txt and "weight" in txt

    # Change a non-table file, remove one, add one: version 3.
    (src / "README.md").write_text("# pets, again\n")
    (src / "images" / "dogs" / "copy-of-cat0.bin").unlink()
    (src / "images" / "new.bin").write_bytes(b"new")
    a3 = data.json("add", name, str(src))
    assert a3["version"]["version"] == 3
    d = data.json("diff", f"{name}@3")  # against the version before it
    assert d["from"]["version"] == 2
    assert [e["path"] for e in d["files"]["added"]] == ["images/new.bin"]
    assert [e["path"] for e in d["files"]["removed"]] == ["images/dogs/copy-of-cat0.bin"]
    assert [c["path"] for c in d["files"]["changed"]] == ["README.md"]
    assert d["tables"] == []

    # Unchanged re-add of the latest: still 3, and no fourth version exists.
    assert data.json("add", name, str(src))["version"]["version"] == 3
    versions = data.json("versions", name)
    assert [v["version"] for v in versions] == [3, 2, 1]

    # Versions are immutable: version 1 still pulls the original bytes, and
    # pulling it over a folder holding version 3 restores it (--clean drops
    # the file version 1 lacks).
    data.run("pull", f"{name}@1", str(out))
    assert_same_tree(original, out)
    data.run("pull", f"{name}@3", str(out), "--clean")
    assert_same_tree(src, out)
    back = data.json("pull", f"{name}@1", str(out), "--clean")
    assert (back["stats"]["Written"], back["stats"]["Unchanged"], back["stats"]["Removed"]) == (3, 5, 1)
    assert_same_tree(original, out)

    # The objects really are in the configured store.
    digest = a1["version"]["digest"]
    if "artifact_dir" in kiln.extra:
        assert (kiln.extra["artifact_dir"] / "datasets" / "manifests" / f"{digest}.json").is_file()
    else:
        s3 = kiln.extra["s3"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kiln-artifacts", Prefix="mlflow/datasets/manifests/")["Contents"]]
        assert f"mlflow/datasets/manifests/{digest}.json" in keys


def test_show_and_tags(data, unique, tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("a,b\n1,x\n2,y\n")
    name = f"one-{unique}"
    data.run("add", name, str(f))
    data.run("tag", f"{name}@1", "stage=raw")
    det = data.json("show", f"{name}@1")
    assert det["version"]["tags"] == {"stage": "raw"}
    assert det["manifest"]["kind"] == "file" and [t["path"] for t in det["manifest"]["tables"]] == ["one.csv"]
    missing = data.run("show", f"{name}@9", check=False)
    assert missing.returncode != 0 and "panic" not in missing.stderr and name in missing.stderr


@pytest.fixture(scope="module")
def table_version(data, tmp_path_factory, kiln):
    """A 1001-row Parquet table as a version: id, label (3 classes), ts, x."""
    d = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(11)
    n = 1001
    df = pd.DataFrame({
        "id": np.arange(n),
        "label": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n) * 60, unit="s"),
        "x": rng.normal(size=n),
    })
    df.to_parquet(d / "t.parquet", index=False)
    name = "table-" + os.urandom(4).hex()
    data.run("add", name, str(d / "t.parquet"))
    return name, df, d


def test_validate_exit_codes(data, table_version, tmp_path):
    name, df, _ = table_version
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "kind: ValidationSuite\nname: good\nrules:\n"
        "  - {check: not_null, column: id}\n"
        "  - {check: unique, columns: [id]}\n"
        "  - {check: range, column: x, min: -10, max: 10}\n"
        "  - {check: in_set, column: label, values: [a, b, c]}\n"
        "  - {check: row_count, min: 1000, max: 1001}\n"
        "  - {check: type, column: ts, type: timestamp}\n"
    )
    p = data.run("validate", f"{name}@1", "-f", str(ok), check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASSED" in p.stdout
    rep = data.json("validate", f"{name}@1", "-f", str(ok))
    assert rep["passed"] is True and rep["rows"] == len(df) and rep["failed"] == 0

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: ValidationSuite\nname: strict\nrules:\n"
        "  - {check: not_null, column: id}\n"
        "  - {check: in_set, column: label, values: [a, b], name: no_class_c}\n"
    )
    p = data.run("validate", f"{name}@1", "-f", str(bad), check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "no_class_c" in p.stdout and "FAIL" in p.stdout
    rep = json.loads(data.run("validate", f"{name}@1", "-f", str(bad), "-o", "json", check=False).stdout)
    status = {r["rule"]: r["status"] for r in rep["results"]}
    assert status == {"not_null(id)": "passed", "no_class_c": "failed"}
    failing = next(r for r in rep["results"] if r["rule"] == "no_class_c")
    assert failing["unexpected"] == int((df["label"] == "c").sum())

    # A suite that cannot be read: exit 2, the problem named with its line.
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: ValidationSuite\nrules:\n  - {check: not_null, column: id, mostlyy: 0.5}\n")
    p = data.run("validate", f"{name}@1", "-f", str(broken), check=False)
    assert p.returncode == 2 and "mostlyy" in p.stderr and "line 3" in p.stderr, p.stderr

    # The results are stored on the version.
    det = data.json("show", f"{name}@1")
    verdicts = [(v["suite"], v["passed"]) for v in det["validations"]]
    assert ("good", True) in verdicts and ("strict", False) in verdicts


def part_ids(data: DataCLI, ref: str, where: Path) -> np.ndarray:
    out = where / ref.replace("@", "_")
    data.run("pull", ref, str(out))
    [f] = list(out.iterdir())
    return pd.read_parquet(f)["id"].to_numpy()


def test_split_deterministic(data, table_version, tmp_path):
    name, df, _ = table_version
    n = len(df)
    args = ("split", f"{name}@1", "--method", "random", "--fractions", "0.8,0.1,0.1", "--seed", "42")
    first = data.json(*args)
    second = data.json(*args)
    digests = [(o["part"], o["version"]["digest"]) for o in first["outputs"]]
    assert digests == [(o["part"], o["version"]["digest"]) for o in second["outputs"]]
    assert [o["part"] for o in first["outputs"]] == ["train", "validation", "test"]
    assert all(o["created"] for o in first["outputs"]) and not any(o["created"] for o in second["outputs"])
    assert [o["version"]["version"] for o in first["outputs"]] == [o["version"]["version"] for o in second["outputs"]]
    rows = [o["rows"] for o in first["outputs"]]
    assert sum(rows) == n
    # A random split hashes each row independently (so that appended rows
    # never move earlier ones): its parts are binomial, within 4 sigma.
    for r, f in zip(rows, (0.8, 0.1, 0.1)):
        assert abs(r - f * n) <= 4 * math.sqrt(n * f * (1 - f)), rows
    # The parts are disjoint and cover the table, and each records its parent.
    ids = [part_ids(data, f"{o['version']['dataset']}@{o['version']['version']}", tmp_path) for o in first["outputs"]]
    assert sorted(np.concatenate(ids).tolist()) == list(range(n))
    assert [len(i) for i in ids] == rows
    lin = data.json("lineage", f"{name}-test@{first['outputs'][2]['version']['version']}")
    assert lin["parent"] == {"dataset": name, "version": 1}
    # Another seed gives other parts.
    other = data.json("split", f"{name}@1", "--fractions", "0.8,0.1,0.1", "--seed", "43",
                      "--name", f"train={name}-s43-train", "--name", f"validation={name}-s43-val", "--name", f"test={name}-s43-test")
    assert [o["version"]["digest"] for o in other["outputs"]] != [d for _, d in digests]


def test_split_proportions_within_a_row(data, table_version):
    name, df, _ = table_version
    n = len(df)
    # Time split: rows ordered by ts, cut at the fractions' quantiles (all
    # timestamps distinct): each part within one row of its share.
    t = data.json("split", f"{name}@1", "--method", "time", "--column", "ts", "--fractions", "0.7,0.3",
                  "--name", f"train={name}-time-train", "--name", f"test={name}-time-test")
    rows = [o["rows"] for o in t["outputs"]]
    assert sum(rows) == n and all(abs(r - f * n) <= 1 for r, f in zip(rows, (0.7, 0.3))), rows
    # Stratified: each class within a row or two of its share, so the parts
    # within a row or two per class.
    s = data.json("split", f"{name}@1", "--method", "stratified", "--column", "label", "--fractions", "0.8,0.2", "--seed", "5",
                  "--name", f"train={name}-strat-train", "--name", f"test={name}-strat-test")
    rows = [o["rows"] for o in s["outputs"]]
    assert sum(rows) == n
    classes = df["label"].value_counts()
    assert all(abs(r - f * n) <= 2 * len(classes) for r, f in zip(rows, (0.8, 0.2))), rows
    again = data.json("split", f"{name}@1", "--method", "stratified", "--column", "label", "--fractions", "0.8,0.2", "--seed", "5",
                      "--name", f"train={name}-strat-train", "--name", f"test={name}-strat-test")
    assert [o["version"]["digest"] for o in again["outputs"]] == [o["version"]["digest"] for o in s["outputs"]]


def test_split_stratified_classes(data, table_version, tmp_path):
    name, df, _ = table_version
    s = data.json("split", f"{name}@1", "--method", "stratified", "--column", "label", "--fractions", "0.8,0.2", "--seed", "9",
                  "--name", f"train={name}-cls-train", "--name", f"test={name}-cls-test")
    train = part_ids(data, f"{name}-cls-train@{s['outputs'][0]['version']['version']}", tmp_path)
    counts = df.set_index("id").loc[train, "label"].value_counts()
    # dataset/split.go documents "to within a row or two per class".
    for cls, total in df["label"].value_counts().items():
        assert abs(counts[cls] - 0.8 * total) <= 2, (cls, counts[cls], total)


def test_lineage_from_mlflow_log_input(kiln, client, data, table_version, unique):
    name, df, _ = table_version
    api_url = f"{kiln.url}/api/v1/datasets/{name}/versions/1"
    mlflow.set_experiment(f"data-lineage-{unique}")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(df, source=api_url, name=name), context="training")
    rid = run.info.run_id

    lin = data.json("lineage", f"{name}@1")
    runs = {r["run_id"]: r for r in lin["runs"]}
    assert rid in runs and runs[rid]["context"] == "training"
    assert runs[rid]["mlflow_name"] == name
    txt = data.run("lineage", f"{name}@1").stdout
    assert rid in txt
    # The run's side: the API endpoint and the CLI list the version.
    r = requests.get(f"{kiln.url}/api/v1/runs/{rid}/datasets", timeout=30)
    assert r.status_code == 200, r.text
    assert [d["version"] for d in r.json()["datasets"]] == [{"dataset": name, "version": 1}]
    assert [d["version"] for d in data.json("lineage", "--run", rid)["datasets"]] == [{"dataset": name, "version": 1}]
    # MLflow itself still shows the input as logged.
    [inp] = client.get_run(rid).inputs.dataset_inputs
    assert inp.dataset.name == name and json.loads(inp.dataset.source)["url"] == api_url

    # A kiln:// URI through MlflowClient.log_inputs links too.
    rid2 = client.create_run(run.info.experiment_id).info.run_id
    ds = Dataset(name=name, digest="0" * 8, source_type="kiln", source=json.dumps({"uri": f"kiln://datasets/{name}@1"}))
    client.log_inputs(rid2, [DatasetInput(ds, tags=[InputTag("mlflow.data.context", "evaluation")])])
    runs = {r["run_id"]: r for r in data.json("lineage", f"{name}@1")["runs"]}
    assert runs[rid2]["context"] == "evaluation"

    # An input that names no Kiln version is not linked.
    with mlflow.start_run() as other:
        mlflow.log_input(mlflow.data.from_pandas(df, source="https://example.com/data.csv", name="elsewhere"))
    assert data.json("lineage", "--run", other.info.run_id)["datasets"] == []
    assert other.info.run_id not in {r["run_id"] for r in data.json("lineage", f"{name}@1")["runs"]}
