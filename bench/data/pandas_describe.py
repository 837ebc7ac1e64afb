"""The pandas side of the profiling case of bench/data/run.sh.

    .venv/bin/python bench/data/pandas_describe.py FILE.parquet

Times pandas.read_parquet (pyarrow engine, its default threads) and
DataFrame.describe(include="all") of the frame, and prints one JSON object:
rows, columns, read_s, describe_s, total_s, max_rss_mb (the process's peak
resident set), and two statistics for the report's cross-check with Kiln's
profile (the mean and the count of column f3).
"""

import json
import resource
import sys
import time

import pandas as pd

path = sys.argv[1]
t0 = time.perf_counter()
df = pd.read_parquet(path)
t1 = time.perf_counter()
desc = df.describe(include="all")
t2 = time.perf_counter()
print(json.dumps({
    "rows": len(df),
    "columns": df.shape[1],
    "read_s": t1 - t0,
    "describe_s": t2 - t1,
    "total_s": t2 - t0,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "check": {"f3_mean": float(desc.loc["mean", "f3"]), "f3_count": int(desc.loc["count", "f3"])},
    "pandas": pd.__version__,
}))
