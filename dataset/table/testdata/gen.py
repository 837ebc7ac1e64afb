"""Writes the table fixtures and what pandas itself makes of them.

Run from the repository root with /work/main/.venv/bin/python (pandas 2.3,
pyarrow 22):

    .venv/bin/python dataset/table/testdata/gen.py

Deterministic (fixed seeds, fixed timestamps). For each fixture it writes
<name>.expected.json with

  rows      the row count pandas reads
  columns   per column, in file order:
    name, type (the Kiln table type the Go reader must infer or map to),
    unit/utc for timestamps, nullable,
    values    {"index": [...], "values": [...]} cells at those row indexes
              as pandas reads them (null as null; timestamps as integers in
              the column's unit, dates as days since the epoch, decimals as
              floats),
    stats     pandas' own statistics over the non-null values: count,
              missing, nunique, top (value_counts, first 5), and for numbers
              (bools as 0/1, timestamps/dates as integers) mean, std (ddof=1,
              as describe() reports), min, max, q25/q50/q75 (describe()'s
              linear interpolation) and rank-error brackets
              q{25,50,75}_lo/_hi = quantile(p -/+ 0.02, lower/higher).

The nested fixtures (a list column, a struct column, a map column) must be
rejected by the Go reader with an error naming the column.
"""

import datetime as dt
import decimal
import json
import math
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
EPS = 0.02


def path(name):
    return os.path.join(HERE, name)


def cell(v):
    """A pandas cell as JSON: None for missing, NaN as the string "NaN"."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v


def numeric_view(s, kind, unit=None):
    """The non-null values of s as numbers the way the Go profile sees them."""
    s = s.dropna()
    if kind == "timestamp":
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        s = s.astype(f"datetime64[{unit}]")
        return s.astype("int64")
    if kind == "date":
        return pd.Series([(d - dt.date(1970, 1, 1)).days for d in s], dtype="int64")
    if kind == "bool":
        return s.astype(bool).astype("int64")
    if kind == "float" and s.dtype == object:  # decimals
        return s.astype(float)
    return s


def stats(s, kind, unit=None):
    out = {"count": int(s.notna().sum()), "missing": int(s.isna().sum())}
    nonnull = s.dropna()
    out["nunique"] = int(nonnull.nunique())
    if kind in ("timestamp", "date"):
        vc = numeric_view(s, kind, unit).value_counts()
    else:
        vc = nonnull.value_counts()
    out["top"] = [[cell(k) if kind not in ("string",) else str(k), int(c)] for k, c in vc.head(5).items()]
    if kind in ("int", "float", "bool", "timestamp", "date") and len(nonnull) > 0:
        x = numeric_view(s, kind, unit).astype("float64")
        x = x[np.isfinite(x)]
        d = x.describe()
        out.update(
            mean=float(d["mean"]),
            std=float(d["std"]) if len(x) > 1 else None,
            min=float(d["min"]),
            max=float(d["max"]),
            q25=float(d["25%"]),
            q50=float(d["50%"]),
            q75=float(d["75%"]),
        )
        for p in (25, 50, 75):
            out[f"q{p}_lo"] = float(x.quantile(max(p / 100 - EPS, 0), interpolation="lower"))
            out[f"q{p}_hi"] = float(x.quantile(min(p / 100 + EPS, 1), interpolation="higher"))
    return out


def values_at(s, kind, idx, unit=None):
    vals = []
    for i in idx:
        v = s.iloc[i]
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            vals.append(None)
            continue
        if kind == "timestamp":
            ts = pd.Timestamp(v)
            if ts.tzinfo is not None:
                ts = ts.tz_convert("UTC").tz_localize(None)
            vals.append(int(ts.value) // {"ms": 10**6, "us": 10**3, "ns": 1}[unit])  # .value is always ns
        elif kind == "date":
            vals.append((v - dt.date(1970, 1, 1)).days)
        elif kind == "string":
            vals.append(str(v))
        else:
            vals.append(cell(v))
    return vals


def expected(name, df, spec, idx=None):
    """spec: column -> (kiln type, unit, utc, nullable, kind for stats)."""
    if idx is None:
        idx = list(range(len(df)))
    cols = []
    for c in df.columns:
        typ, unit, utc, nullable, kind = spec[c]
        col = {"name": str(c), "type": typ, "nullable": nullable}
        if unit:
            col["unit"], col["utc"] = unit, utc
        col["values"] = {"index": idx, "values": values_at(df[c], kind, idx, unit)}
        col["stats"] = stats(df[c], kind, unit)
        cols.append(col)
    with open(path(name + ".expected.json"), "w") as f:
        json.dump({"rows": len(df), "columns": cols}, f, indent=1, sort_keys=True)
        f.write("\n")


def gen_csv():
    rng = np.random.default_rng(7)
    na_tokens = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", "-NaN", "n/a", "<NA>", "#NA", "-nan", "1.#QNAN"]
    names = ['plain', 'with,comma', 'with "quotes"', 'multi\nline', ' spaced ', 'ünïcödé', 'a', 'b']
    rows = []
    n = 400
    for i in range(n):
        x = "" if i % 9 == 0 else repr(round(float(rng.normal(10, 3)), 6))
        if i % 9 == 0:
            x = na_tokens[(i // 9) % len(na_tokens)]
        flag = ["True", "False", "true", "FALSE", ""][i % 5]
        cat = ["red", "green", "blue"][int(rng.integers(0, 3))] if i % 17 else "NA"
        ts = (pd.Timestamp("2024-03-01 08:00:00") + pd.Timedelta(seconds=int(i) * 3607)).strftime("%Y-%m-%d %H:%M:%S")
        if i % 23 == 0:
            ts = ""
        day = (dt.date(2023, 1, 1) + dt.timedelta(days=int(i % 97))).isoformat()
        count = str(int(rng.integers(-50, 1000)))
        rows.append([str(i), x, names[i % len(names)], flag, cat, ts, day, count])
    import csv as pycsv

    with open(path("basic.csv"), "w", newline="", encoding="utf-8") as f:
        w = pycsv.writer(f, quoting=pycsv.QUOTE_MINIMAL)
        w.writerow(["id", "x", "name", "flag", "cat", "ts", "day", "count"])
        w.writerows(rows)
    df = pd.read_csv(path("basic.csv"))
    df["ts"] = pd.to_datetime(df["ts"])
    df["day"] = pd.to_datetime(df["day"]).dt.date
    spec = {
        "id": ("int64", None, None, False, "int"),
        "x": ("float64", None, None, True, "float"),
        "name": ("string", None, None, False, "string"),
        "flag": ("bool", None, None, True, "bool"),
        "cat": ("string", None, None, True, "string"),
        "ts": ("timestamp", "ns", False, True, "timestamp"),
        "day": ("date", None, None, False, "date"),
        "count": ("int64", None, None, False, "int"),
    }
    expected("basic.csv", df, spec)

    # Another dialect: ';' separated, "'" quoted, no header.
    text = "1;'a;b';2.5\n2;'it''s';\n3;plain;-1e3\n"
    with open(path("dialect.csv"), "w", newline="") as f:
        f.write(text)
    df = pd.read_csv(path("dialect.csv"), sep=";", quotechar="'", header=None)
    df.columns = [str(c) for c in df.columns]
    spec = {
        "0": ("int64", None, None, False, "int"),
        "1": ("string", None, None, False, "string"),
        "2": ("float64", None, None, True, "float"),
    }
    expected("dialect.csv", df, spec)


def gen_jsonl():
    rng = np.random.default_rng(11)
    lines = []
    for i in range(300):
        rec = {"id": i, "score": None if i % 7 == 0 else round(float(rng.uniform(-1, 1)), 5)}
        rec["label"] = None if i % 11 == 0 else ["cat", "dog", "bird", "fish"][int(rng.integers(0, 4))]
        rec["ok"] = bool(i % 3)
        rec["at"] = (pd.Timestamp("2024-06-01T00:00:00Z") + pd.Timedelta(minutes=int(i) * 61)).isoformat().replace("+00:00", "Z")
        if i % 13 == 5:
            del rec["score"]  # an absent key is a null
        if i in (3, 4):  # one written raw, one with \u escapes (a surrogate pair)
            rec["label"] = 'quote " and \\ backslash \u00e9 \U0001F600'
        lines.append(json.dumps(rec, ensure_ascii=(i % 2 == 0)))
    with open(path("basic.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    df = pd.read_json(path("basic.jsonl"), lines=True, convert_dates=False)
    df["at"] = pd.to_datetime(df["at"])
    spec = {
        "id": ("int64", None, None, False, "int"),
        "score": ("float64", None, None, True, "float"),
        "label": ("string", None, None, True, "string"),
        "ok": ("bool", None, None, False, "bool"),
        "at": ("timestamp", "ns", True, False, "timestamp"),
    }
    expected("basic.jsonl", df, spec)
    with open(path("nested.jsonl"), "w") as f:
        f.write('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n{"a": 3, "b": {"inner": 1}}\n')


def gen_parquet():
    rng = np.random.default_rng(3)
    n = 5000
    f64 = rng.normal(100, 15, n)
    f64[rng.random(n) < 0.1] = np.nan
    ints = pd.array(rng.integers(-1000, 1000, n), dtype="Int64")
    ints[rng.random(n) < 0.05] = pd.NA
    strs = np.array([f"user_{int(k)}" for k in rng.integers(0, 700, n)], dtype=object)
    strs[rng.random(n) < 0.07] = None
    flags = pd.array(rng.random(n) < 0.3, dtype="boolean")
    flags[rng.random(n) < 0.02] = pd.NA
    cats = pd.Categorical(rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]), categories=["red", "green", "blue", "unused"])
    cats[rng.random(n) < 0.04] = np.nan
    base = pd.Timestamp("2021-01-01")
    ts_ns = pd.Series(base + pd.to_timedelta(rng.integers(0, 3 * 365 * 86400, n), unit="s") + pd.to_timedelta(rng.integers(0, 10**9, n), unit="ns"))
    ts_ns[rng.random(n) < 0.03] = pd.NaT
    ts_tz = pd.Series(pd.Timestamp("2022-05-01", tz="Europe/Paris") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"))
    ts_tz[rng.random(n) < 0.03] = pd.NaT
    ts_ms = pd.Series((base + pd.to_timedelta(rng.integers(0, 10**10, n), unit="ms"))).astype("datetime64[ms]")
    ts_us = pd.Series((base + pd.to_timedelta(rng.integers(0, 10**12, n), unit="us"))).astype("datetime64[us]")
    dates = pd.Series([dt.date(2000, 1, 1) + dt.timedelta(days=int(k)) for k in rng.integers(0, 9000, n)], dtype=object)
    dates[rng.random(n) < 0.05] = None
    decs = pd.Series([decimal.Decimal(int(k)).scaleb(-2) for k in rng.integers(-10**6, 10**6, n)], dtype=object)
    decs[rng.random(n) < 0.05] = None
    df = pd.DataFrame(
        {
            "f64": f64,
            "i64": ints,
            "i32": rng.integers(-(2**31), 2**31 - 1, n).astype("int32"),
            "u8": rng.integers(0, 256, n).astype("uint8"),
            "f32": rng.normal(0, 1, n).astype("float32"),
            "s": strs,
            "b": flags,
            "cat": cats,
            "ts_ns": ts_ns,
            "ts_tz": ts_tz,
            "ts_ms": ts_ms,
            "ts_us": ts_us,
            "d": dates,
            "dec": decs,
            "low": rng.choice(["x", "y"], n),
        }
    )
    table = pa.Table.from_pandas(df, preserve_index=False)
    # Small dictionary pages force the "s" column to fall back from
    # dictionary to plain encoding inside a row group.
    pq.write_table(table, path("mixed.parquet"), row_group_size=1500, dictionary_pagesize_limit=2048, data_page_size=4096)
    back = pd.read_parquet(path("mixed.parquet"))
    spec = {
        "f64": ("float64", None, None, True, "float"),
        "i64": ("int64", None, None, True, "int"),
        "i32": ("int64", None, None, True, "int"),
        "u8": ("int64", None, None, True, "int"),
        "f32": ("float64", None, None, True, "float"),
        "s": ("string", None, None, True, "string"),
        "b": ("bool", None, None, True, "bool"),
        "cat": ("string", None, None, True, "string"),
        "ts_ns": ("timestamp", "ns", False, True, "timestamp"),
        "ts_tz": ("timestamp", "ns", True, True, "timestamp"),
        "ts_ms": ("timestamp", "ms", False, True, "timestamp"),
        "ts_us": ("timestamp", "us", False, True, "timestamp"),
        "d": ("date", None, None, True, "date"),
        "dec": ("float64", None, None, True, "float"),
        "low": ("string", None, None, True, "string"),
    }
    idx = list(range(0, n, 37)) + [1499, 1500, 1501, 2999, 3000, n - 1]
    expected("mixed.parquet", back, spec, idx=sorted(set(idx)))

    # Required (non-nullable) columns and a pandas index stored as a column.
    small = pd.DataFrame({"k": np.arange(10, dtype="int64"), "v": np.linspace(0, 1, 10)}, index=pd.Index(np.arange(100, 110), name=None))
    schema = pa.schema([pa.field("k", pa.int64(), nullable=False), pa.field("v", pa.float64(), nullable=False)])
    pq.write_table(pa.Table.from_pandas(small, schema=schema, preserve_index=False), path("required.parquet"))
    pq.write_table(pa.Table.from_pandas(small, preserve_index=True), path("indexed.parquet"))

    # Legacy INT96 timestamps (Spark/Impala, pyarrow on request).
    t96 = pd.DataFrame({"t": pd.to_datetime(["2020-01-01 00:00:00.123456789", None, "1969-12-31 23:59:59", "1900-03-01 12:00:00"], format="ISO8601")})
    pq.write_table(pa.Table.from_pandas(t96, preserve_index=False), path("int96.parquet"), use_deprecated_int96_timestamps=True)
    expected("int96.parquet", pd.read_parquet(path("int96.parquet")), {"t": ("timestamp", "ns", False, True, "timestamp")})

    # Nested columns: a list, a struct and a map.
    pq.write_table(pa.table({"id": [1, 2, 3], "tags": [["a"], ["b", "c"], []]}), path("nested_list.parquet"))
    pq.write_table(pa.table({"id": [1, 2], "point": [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]}), path("nested_struct.parquet"))
    pq.write_table(
        pa.table({"id": [1, 2], "attrs": pa.array([[("a", 1)], [("b", 2)]], type=pa.map_(pa.string(), pa.int64()))}),
        path("nested_map.parquet"),
    )


if __name__ == "__main__":
    gen_csv()
    gen_jsonl()
    gen_parquet()
