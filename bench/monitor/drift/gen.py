"""Writes the drift benchmark's reference and current tables as Parquet.

20 numeric + 5 categorical columns (the issue's shape); the current table
has drifted copies of some columns, far from Evidently's thresholds (normed
Wasserstein 0.1, Jensen-Shannon 0.1), so every per-column decision is
clear-cut and must agree:

  num_00..num_19  float64; num_00..num_05 drift (mean shift of 0.3-1.0 std,
                  or a scale change), the others keep their distribution
  int_small       (one of the categorical five) int64 0..4: categorical in
                  Evidently's inference (at most 10 distinct integers)
  cat_0..cat_3    strings; cat_0 and cat_1 drift

Usage: gen.py OUTDIR [ROWS] [SEED]
"""

import sys

import numpy as np
import pandas as pd


def tables(rows, seed):
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    shifts = {0: 1.0, 1: 0.5, 2: 0.3, 3: 0.8}
    for i in range(20):
        name = f"num_{i:02d}"
        kind = i % 3
        if kind == 0:
            gen = lambda n, loc=0.0, scale=1.0: rng.normal(loc, scale, n)
        elif kind == 1:
            gen = lambda n, loc=0.0, scale=1.0: loc + scale * rng.exponential(1.0, n)
        else:
            gen = lambda n, loc=0.0, scale=1.0: loc + scale * rng.uniform(-1.7, 1.7, n)
        ref[name] = gen(rows)
        if i in shifts:
            cur[name] = gen(rows, loc=shifts[i])
        elif i == 4:
            cur[name] = gen(rows, scale=1.6)
        elif i == 5:
            cur[name] = gen(rows, scale=0.4)
        else:
            cur[name] = gen(rows)
    levels = np.array([f"level_{k}" for k in range(12)])
    p_ref = np.linspace(1, 3, 12)
    p_ref /= p_ref.sum()
    p_drift = p_ref[::-1].copy()
    ref["cat_0"] = rng.choice(levels, rows, p=p_ref)
    cur["cat_0"] = rng.choice(levels, rows, p=p_drift)
    colors = np.array(["red", "green", "blue"])
    ref["cat_1"] = rng.choice(colors, rows, p=[0.6, 0.3, 0.1])
    cur["cat_1"] = rng.choice(colors, rows, p=[0.3, 0.3, 0.4])
    cities = np.array([f"city_{k:02d}" for k in range(40)])
    ref["cat_2"] = rng.choice(cities, rows)
    cur["cat_2"] = rng.choice(cities, rows)
    ref["cat_3"] = rng.choice(np.array(["yes", "no"]), rows, p=[0.7, 0.3])
    cur["cat_3"] = rng.choice(np.array(["yes", "no"]), rows, p=[0.7, 0.3])
    ref["int_small"] = rng.integers(0, 5, rows)
    cur["int_small"] = rng.integers(0, 5, rows)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    ref, cur = tables(rows, seed)
    ref.to_parquet(f"{out}/reference.parquet", index=False)
    cur.to_parquet(f"{out}/current.parquet", index=False)


if __name__ == "__main__":
    main()
