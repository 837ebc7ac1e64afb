"""`kiln data` over real table files written by pandas and pyarrow.

Parquet and CSV files with nulls, pandas categoricals, naive and tz-aware
timestamps, nullable ints (Int64), floats with NaN, strings and booleans are
added with the `kiln data` CLI and profiled by the server
(`kiln data profile --output json`); every statistic is checked against
pandas' own on the same frame:

* count, missing, mean, std (ddof=1), min, max: exactly or to 1e-9 relative;
* quantiles: the reported value's rank in the data is within the KLL
  sketch's documented normalized rank error (about 1% for k = 256,
  dataset/profile/kll.go) of the asked rank;
* distinct counts: exact when the profile says so, else within three
  standard errors of the HyperLogLog (1.04/sqrt(2^14) ≈ 0.81% each);
* top values of categorical and low-cardinality columns: exactly pandas'
  value_counts (the frequent-items sketch is exact below its capacity).

Nested Parquet columns (a list, a struct) are refused by name.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))
ROWS = 20_000
KLL_RANK_ERROR = 0.01  # dataset/profile/kll.go: DefaultK = 256, ~1% at 99% confidence
HLL_TOLERANCE = 3 * 1.04 / math.sqrt(1 << 14)  # three standard errors
REL = 1e-9


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

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "--output", "json").stdout)


@pytest.fixture(scope="module")
def data(kiln, tmp_path_factory) -> DataCLI:
    return DataCLI(kiln.url, tmp_path_factory.mktemp("kiln-cache"))


def make_frame(n: int = ROWS, seed: int = 7) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    f = r.normal(50, 12, n)
    f[r.random(n) < 0.05] = np.nan
    inull = pd.array(r.integers(-1000, 1000, n), dtype="Int64")
    inull[r.random(n) < 0.1] = pd.NA
    bnull = pd.array(r.random(n) < 0.3, dtype="boolean")
    bnull[r.random(n) < 0.05] = pd.NA
    cat = pd.Categorical(
        r.choice(["low", "mid", "high", "extreme"], n, p=[0.5, 0.3, 0.15, 0.05]),
        categories=["low", "mid", "high", "extreme", "unused"],
    )
    cat[r.random(n) < 0.02] = np.nan
    s = pd.Series(np.char.add("user_", r.integers(0, 500, n).astype(str)), dtype=object)
    s[r.random(n) < 0.03] = None
    ts = pd.Series(pd.Timestamp("2024-03-01") + pd.to_timedelta(r.integers(0, 90 * 86400, n), unit="s"))
    naive = ts.copy()
    naive[r.random(n) < 0.04] = pd.NaT
    return pd.DataFrame({
        "f": f,
        "small": r.integers(0, 20, n).astype("float64") / 4,  # many ties
        "i": r.integers(0, 10**6, n),
        "inull": inull,
        "b": r.random(n) < 0.2,
        "bnull": bnull,
        "cat": cat,
        "s": s,
        "ts_naive": naive,
        "ts_utc": ts.dt.tz_localize("UTC"),
        "ts_paris": ts.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"),
        "uid": r.permutation(n).astype("int64") * 7,
    })


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def files(frame, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tables")
    out = {"parquet": d / "frame.parquet", "csv": d / "frame.csv"}
    frame.to_parquet(out["parquet"], index=False)
    frame.to_csv(out["csv"], index=False)
    # pandas/pyarrow really wrote what we mean to test.
    back = pq.read_table(out["parquet"]).schema
    assert pa.types.is_dictionary(back.field("cat").type)
    assert back.field("ts_paris").type.tz == "Europe/Paris" and back.field("ts_naive").type.tz is None
    return out


def close(got, want, what: str) -> None:
    assert got is not None, f"{what}: missing"
    assert math.isclose(got, want, rel_tol=REL, abs_tol=1e-12), f"{what}: kiln {got!r}, pandas {want!r}"


def numeric_values(s: pd.Series) -> np.ndarray | None:
    """The non-missing values of a column as kiln profiles them (bools as
    0/1, timestamps as nanoseconds since the epoch), or None for strings."""
    s = s.dropna()
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("int64").to_numpy(dtype="float64")
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.astype("float64").to_numpy()
    return None


def check_quantiles(col: dict, xs: np.ndarray) -> None:
    qs = col["quantiles"]
    assert [q["q"] for q in qs] == [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99], col["field"]["name"]
    xs = np.sort(xs)
    n = len(xs)
    for q in qs:
        v = q["value"]
        below = np.searchsorted(xs, v, side="left") / n  # fraction < v
        upto = np.searchsorted(xs, v, side="right") / n  # fraction ≤ v
        assert below - KLL_RANK_ERROR <= q["q"] <= upto + KLL_RANK_ERROR, (
            f"{col['field']['name']}: q={q['q']} value {v} has rank [{below:.4f}, {upto:.4f}]"
        )


def check_column(col: dict, s: pd.Series) -> None:
    name = col["field"]["name"]
    assert col["count"] == s.count(), name
    assert col["missing"] == s.isna().sum(), name
    nunique = s.nunique()
    if col["distinct_exact"]:
        assert col["distinct"] == nunique, name
    else:
        assert abs(col["distinct"] - nunique) <= HLL_TOLERANCE * nunique, f"{name}: ~{col['distinct']} vs {nunique}"

    xs = numeric_values(s)
    if xs is None:
        assert col.get("mean") is None and col.get("quantiles") is None, name
    else:
        close(col["min"], xs.min(), f"{name} min")
        close(col["max"], xs.max(), f"{name} max")
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            # pandas' own timestamp statistics: exact instants for min and max.
            lo, hi = pd.Timestamp(col["min_time"]), pd.Timestamp(col["max_time"])
            want_lo, want_hi = s.min(), s.max()
            if want_lo.tzinfo is None:
                want_lo, want_hi = want_lo.tz_localize("UTC"), want_hi.tz_localize("UTC")
            assert (lo, hi) == (want_lo, want_hi), name
            close(col["mean"], float(s.mean().value), f"{name} mean")
            close(col["std"], float(s.std().value), f"{name} std")
        elif pd.api.types.is_bool_dtype(s):
            close(col["mean"], float(s.mean()), f"{name} mean")
            close(col["std"], float(s.astype("float64").std(ddof=1)), f"{name} std")
        else:
            close(col["mean"], float(s.mean()), f"{name} mean")
            close(col["std"], float(s.std(ddof=1)), f"{name} std")
        if not pd.api.types.is_bool_dtype(s):
            check_quantiles(col, xs)


def check_top(col: dict, s: pd.Series) -> None:
    """Top values equal pandas' value_counts exactly (ties in any order)."""
    name = col["field"]["name"]
    vc = s.dropna().value_counts()
    if pd.api.types.is_bool_dtype(s):
        vc.index = [str(bool(v)).lower() for v in vc.index]
    vc = vc[vc > 0]  # pandas lists unused categories with count 0
    top = col["top"]
    assert col["top_error"] == 0, name
    assert top, name
    assert len(top) == min(10, len(vc)), name
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    for item in top:
        key = float(item["value"]) if numeric else item["value"]
        assert item["count"] == vc[key], f"{name}: {item}"
    assert [t["count"] for t in top] == list(vc.iloc[: len(top)]), name


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_profile_matches_pandas(data, unique, files, frame, fmt):
    name = f"frame-{fmt}-{unique}"
    added = data.json("add", name, str(files[fmt]))
    assert added["created"] and added["version"]["version"] == 1
    prof = data.json("profile", f"{name}@1")
    assert prof["stored"] is True
    p = prof["profile"]
    assert p["rows"] == len(frame)
    cols = {c["field"]["name"]: c for c in p["columns"]}
    assert list(cols) == list(frame.columns)

    types = {c: cols[c]["field"]["type"] for c in cols}
    assert types == {
        "f": "float64", "small": "float64", "i": "int64", "inull": "int64", "b": "bool", "bnull": "bool",
        "cat": "string", "s": "string", "ts_naive": "timestamp", "ts_utc": "timestamp",
        "ts_paris": "timestamp", "uid": "int64",
    }
    # The inferred schema: nullability from the data, time zones from the
    # file, the categorical domain from the values present (pandas' unused
    # category holds none).
    schema = {f["name"]: f for f in prof["schema"]["fields"]}
    assert list(schema) == list(frame.columns)
    assert {c for c, f in schema.items() if f["nullable"]} == {c for c in frame.columns if frame[c].isna().any()}
    assert schema["ts_utc"].get("utc") and schema["ts_paris"].get("utc")
    assert not schema["ts_naive"].get("utc")
    if fmt == "parquet":
        assert schema["ts_paris"].get("time_zone") == "Europe/Paris"
    assert schema["cat"].get("categorical") is True
    assert set(schema["cat"]["categories"]) == {"low", "mid", "high", "extreme"}

    for c in frame.columns:
        check_column(cols[c], frame[c])
    for c in ("cat", "s", "b", "bnull", "small"):
        check_top(cols[c], frame[c])

    # Stored: asked again, the same profile comes back without recomputing.
    again = data.run("profile", f"{name}@1", "--output", "json")
    assert "profiling" not in again.stderr
    assert json.loads(again.stdout)["profile"]["columns"][0]["count"] == cols["f"]["count"]


def test_parquet_and_csv_profiles_agree(data, unique, files, frame):
    """The same frame through both formats gives the same statistics."""
    got = {}
    for fmt in ("parquet", "csv"):
        name = f"agree-{fmt}-{unique}"
        data.run("add", name, str(files[fmt]))
        got[fmt] = {c["field"]["name"]: c for c in data.json("profile", name)["profile"]["columns"]}
    for c in frame.columns:
        a, b = got["parquet"][c], got["csv"][c]
        for k in ("count", "missing", "min", "max", "distinct", "top"):
            assert a.get(k) == b.get(k), f"{c}.{k}: parquet {a.get(k)} csv {b.get(k)}"
        for k in ("mean", "std"):
            if a.get(k) is not None:
                close(b[k], a[k], f"{c}.{k}")


def test_table_file_in_folder_version(data, unique, tmp_path, frame):
    """A folder holding one table file among other files is profiled as that table."""
    d = tmp_path / "folder"
    (d / "docs").mkdir(parents=True)
    (d / "docs" / "README.txt").write_text("not a table")
    frame.iloc[:1000].to_parquet(d / "part.parquet", index=False)
    name = f"folder-{unique}"
    data.run("add", name, str(d))
    prof = data.json("profile", name)
    assert prof["files"] == ["part.parquet"]
    assert prof["profile"]["rows"] == 1000
    cols = {c["field"]["name"]: c for c in prof["profile"]["columns"]}
    check_column(cols["f"], frame["f"].iloc[:1000])


@pytest.mark.parametrize(
    "column,arrow",
    [
        ("tags", pa.array([[1, 2], [], None, [3]], type=pa.list_(pa.int64()))),
        ("point", pa.array([{"x": 1.0, "y": 2.0}, None, {"x": 3.0, "y": 4.0}, {"x": 5.0, "y": 6.0}])),
    ],
    ids=["list", "struct"],
)
def test_nested_columns_rejected_by_name(data, unique, tmp_path, column, arrow):
    path = tmp_path / f"{column}.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2, 3, 4]), column: arrow}), path)
    assert pd.read_parquet(path)[column].notna().sum() == 3  # pandas reads it: the file is fine
    name = f"nested-{column}-{unique}"
    data.run("add", name, str(path))  # any file can be versioned
    p = data.run("profile", name, check=False)
    assert p.returncode != 0
    msg = p.stderr
    assert f'"{column}"' in msg and "nested" in msg, msg
    assert "panic" not in msg and "goroutine" not in msg, msg
    # A validation of that column is refused the same way, with a report
    # that says why (exit 2: could not run), not a crash.
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"kind: ValidationSuite\nrules:\n  - {{check: not_null, column: {column}}}\n")
    v = data.run("validate", name, "-f", str(suite), check=False)
    assert v.returncode == 2, (v.returncode, v.stdout, v.stderr)
    assert column in v.stdout + v.stderr
