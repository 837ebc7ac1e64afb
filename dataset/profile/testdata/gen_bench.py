"""Writes the Parquet file that BenchmarkProfileParquet reads.

    .venv/bin/python dataset/profile/testdata/gen_bench.py [ROWS] [PATH]

ROWS defaults to 1,000,000 and PATH to dataset/profile/testdata/bench.parquet
(ignored by git). 20 columns as pandas/pyarrow write them (Snappy, dictionary
encoding, 1M-row row groups): 10 float64 (two with 5% nulls), 4 int64 (one
nullable), a bool, a timestamp, a pandas category, and strings of low,
medium and high cardinality. Deterministic (seed 42).
"""

import os
import sys

import numpy as np
import pandas as pd

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.parquet")
rng = np.random.default_rng(42)
cols = {}
for i in range(10):
    x = rng.normal(i * 10, 1 + i, rows)
    if i in (3, 7):
        x[rng.random(rows) < 0.05] = np.nan
    cols[f"f{i}"] = x
cols["i0"] = rng.integers(0, 100, rows)
cols["i1"] = rng.integers(-(10**9), 10**9, rows)
cols["i2"] = rng.zipf(1.5, rows) % 100000
i3 = pd.array(rng.integers(0, 10**6, rows), dtype="Int64")
i3[rng.random(rows) < 0.1] = pd.NA
cols["i3"] = i3
cols["flag"] = rng.random(rows) < 0.2
cols["ts"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 86400, rows), unit="s")
cols["cat"] = pd.Categorical(rng.choice(["a", "b", "c", "d", "e"], rows))
cols["s_low"] = rng.choice(["red", "green", "blue", "black"], rows)
cols["s_mid"] = np.char.add("user_", rng.integers(0, 10000, rows).astype(str))
cols["s_high"] = np.char.add("id_", rng.integers(0, 2**40, rows).astype(str))
pd.DataFrame(cols).to_parquet(out, index=False)
print(out, rows)
