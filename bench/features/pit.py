"""Point-in-time join benchmark: Kiln's feature/pit against pandas merge_asof.

Generates a feature source (N rows over K keys, late and duplicate rows,
a created timestamp) and an entity table (M rows, some keys absent) as
Parquet, then times, on the same files:

  * kiln: bench/features/pitbench (read both files, join, write Parquet);
  * pandas: read both files, sort, merge_asof(by=key, tolerance=ttl,
    allow_exact_matches=True) with rows sorted by (event, created) so the
    latest created wins among equal event times, restore the entity order,
    write Parquet. The merge alone is timed too.

and checks that both outputs are equal (values and nulls).

Usage: pit.py --features 10000000 --entities 1000000 [--keys 200000] --dir DIR --pitbench BIN
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

T0 = np.datetime64("2025-01-01T00:00:00", "us")
SPAN_US = 365 * 86400 * 10**6
TTL = pd.Timedelta(days=7)


def generate(n_feat, n_ent, n_keys, d, seed=0):
    rng = np.random.default_rng(seed)
    ev = T0 + rng.integers(0, SPAN_US, n_feat).astype("timedelta64[us]")
    # Duplicates: 5% of rows copy an earlier row's key and event time.
    keys = rng.integers(0, n_keys, n_feat)
    dup = rng.random(n_feat) < 0.05
    src = rng.integers(0, n_feat, n_feat)
    keys[dup] = keys[src[dup]]
    ev[dup] = ev[src[dup]]
    # Late rows: created up to 30 days after the event.
    created = ev + rng.integers(0, 30 * 86400 * 10**6, n_feat).astype("timedelta64[us]")
    feat = pd.DataFrame({
        "customer_id": keys.astype("int64"),
        "event_timestamp": pd.to_datetime(ev).tz_localize("UTC"),
        "created": pd.to_datetime(created).tz_localize("UTC"),
        "f_float": rng.normal(size=n_feat),
        "f_int": rng.integers(0, 1000, n_feat).astype("int64"),
        "f_cnt": rng.integers(0, 50, n_feat).astype("int64"),
    })
    ent = pd.DataFrame({
        # 10% of entity keys have no feature rows.
        "customer_id": rng.integers(0, int(n_keys * 1.1), n_ent).astype("int64"),
        "event_timestamp": pd.to_datetime(T0 + rng.integers(0, SPAN_US, n_ent).astype("timedelta64[us]")).tz_localize("UTC"),
        "label": rng.integers(0, 2, n_ent).astype("int64"),
    })
    fp, ep = os.path.join(d, "features.parquet"), os.path.join(d, "entities.parquet")
    feat.to_parquet(fp, index=False)
    ent.to_parquet(ep, index=False)
    return fp, ep


FEATURES = ["f_float", "f_int", "f_cnt"]


def pandas_join(ep, fp, out):
    t, c = time.perf_counter(), time.process_time()
    ent = pd.read_parquet(ep)
    feat = pd.read_parquet(fp, columns=["customer_id", "event_timestamp", "created"] + FEATURES)
    t_read = time.perf_counter() - t
    m0 = time.perf_counter()
    e = ent.reset_index().rename(columns={"index": "_row"}).sort_values("event_timestamp", kind="stable")
    f = feat.rename(columns={"event_timestamp": "_fts"})
    f["_seq"] = np.arange(len(f))
    f = f.sort_values(["_fts", "created", "_seq"], kind="stable")
    j = pd.merge_asof(e, f.drop(columns=["created", "_seq"]), left_on="event_timestamp", right_on="_fts",
                      by="customer_id", tolerance=TTL, direction="backward", allow_exact_matches=True)
    j = j.sort_values("_row").drop(columns=["_row", "_fts"]).reset_index(drop=True)
    t_merge = time.perf_counter() - m0
    j.to_parquet(out, index=False)
    return {"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c, "read_seconds": t_read,
            "merge_seconds": t_merge, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=int, default=10_000_000)
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=0, help="distinct keys (default features/50)")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--pitbench", required=True)
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--pandas-child", nargs=3, metavar=("ENTITIES", "FEATURES", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.pandas_child:
        # The pandas run in a process of its own, so its memory is its own.
        json.dump(pandas_join(*a.pandas_child), sys.stdout)
        return 0
    os.makedirs(a.dir, exist_ok=True)
    n_keys = a.keys or max(1, a.features // 50)
    t = time.perf_counter()
    fp, ep = generate(a.features, a.entities, n_keys, a.dir)
    gen = time.perf_counter() - t
    kout, pout = os.path.join(a.dir, "kiln.parquet"), os.path.join(a.dir, "pandas.parquet")
    r = subprocess.run([a.pitbench, "-entities", ep, "-source", fp, "-out", kout, "-keys", "customer_id",
                        "-ts", "event_timestamp", "-created", "created", "-features", ",".join(FEATURES),
                        "-ttl", "168h"], check=True, capture_output=True, text=True)
    kiln = json.loads(r.stdout)
    res = {"feature_rows": a.features, "entity_rows": a.entities, "keys": n_keys, "generate_seconds": gen, "kiln": kiln}
    if not a.skip_pandas:
        r = subprocess.run([sys.executable, __file__, "--dir", a.dir, "--pitbench", a.pitbench, "--pandas-child", ep, fp, pout],
                           check=True, capture_output=True, text=True)
        res["pandas"] = json.loads(r.stdout)
        k, p = pd.read_parquet(kout), pd.read_parquet(pout)
        equal = k.columns.tolist() == p.columns.tolist() and len(k) == len(p)
        for c in FEATURES:
            kc, pc = k[c], p[c]
            equal = equal and bool((kc.isna() == pc.isna()).all()) and bool((kc[kc.notna()].astype("float64") == pc[pc.notna()].astype("float64")).all())
        res["outputs_equal"] = equal
        res["null_rows"] = int(k["f_float"].isna().sum())
        res["speedup_end_to_end"] = res["pandas"]["seconds"] / kiln["seconds"]
        res["speedup_cpu"] = res["pandas"]["cpu_seconds"] / kiln["cpu_seconds"]
    res["load_average"] = os.getloadavg()
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0 if res.get("outputs_equal", True) else 1


if __name__ == "__main__":
    sys.exit(main())
