"""Evidently's side of the drift benchmark (and of tests/compat).

Loads two Parquet tables with pandas, runs Report([DataDriftPreset()]) and
computes its dict, and prints one JSON object: the load and compute times
(seconds) and, per column, Evidently's test, score, threshold and drift
decision (from the preset's ValueDrift tests), plus the dataset verdict.

Usage: evidently_drift.py REFERENCE.parquet CURRENT.parquet [OUT.json]
"""

import json
import re
import sys
import time

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

# Evidently's display names of its tests → Kiln's method names.
METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chi2",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Kullback-Leibler divergence": "kl",
    "Hellinger distance": "hellinger",
}


def run(ref_path, cur_path):
    t0 = time.perf_counter()
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    t1 = time.perf_counter()
    snap = Report([DataDriftPreset()], include_tests=True).run(cur, ref)
    d = snap.dict()
    t2 = time.perf_counter()
    return d, t1 - t0, t2 - t1


def parse(d):
    cols, share, count = {}, None, None
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("DriftedColumnsCount"):
            share, count = m["value"]["share"], m["value"]["count"]
            drift_share = cfg["drift_share"]
        elif cfg["type"].endswith("ValueDrift"):
            cols[cfg["column"]] = {
                "method": METHODS.get(cfg["method"], cfg["method"]),
                "evidently_method": cfg["method"],
                "score": m["value"],
                "threshold": cfg["threshold"],
            }
    for t in d["tests"]:
        mt = re.match(r"Value Drift for column (.*)$", t["name"])
        if mt and mt.group(1) in cols:
            cols[mt.group(1)]["drift"] = t["status"] == "FAIL"
    return {
        "columns": cols,
        "drifted": int(count),
        "share": share,
        "drift_share": drift_share,
        "dataset_drift": share >= drift_share,
    }


def main():
    d, load, compute = run(sys.argv[1], sys.argv[2])
    out = parse(d)
    out["load_s"], out["compute_s"] = load, compute
    text = json.dumps(out, indent=1, sort_keys=True)
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
