"""Synthetic customer-churn data of the closed-loop example.

Writes a folder with train.parquet and eval.parquet for one of two worlds.
Each row is a customer of a telecom operator:

  customer_id      C000001, … (unique across the version's files)
  tenure_months    months since the customer signed up
  monthly_charges  the monthly bill, USD
  support_calls    calls to customer support in the last quarter
  data_usage_gb    mobile data used last month, GB
  late_payments    bills paid late in the last year
  churned          1 when the customer left within the next month (the label)

* reference: churn is driven by a short tenure, a high bill, many support
  calls and late payments; heavy users stay;
* drifted: after a price rise and a competitor's offer aimed at loyal,
  heavy users, the features moved (bills +25 USD, more support calls, more
  data, an older customer base) and the concept changed: long-standing
  heavy users now leave, and a call to support (which now offers a
  retention discount) keeps a customer. A model of the reference world
  ranks the drifted world's customers badly; a retrained one ranks them
  well.

    python gen_data.py --world reference --out data/reference
    kiln data add closed-loop-data data/reference

--traffic N also writes <out>-traffic.parquet next to the folder: N
customers of the world without the id and the label (what clients send
to the endpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "late_payments"]
LABEL = "churned"
WORLDS = ("reference", "drifted")


def draw(rng: np.random.Generator, n: int, world: str, first_id: int = 1) -> pd.DataFrame:
    """n labelled customers of the world, with ids first_id, first_id+1, …"""
    if world not in WORLDS:
        raise SystemExit(f"unknown world {world!r}: reference or drifted")
    drifted = world == "drifted"
    tenure = rng.gamma(2.0, 20.0 if drifted else 12.0, n).clip(1, 72).round()
    charges = rng.normal(90.0 if drifted else 65.0, 20.0, n).clip(18, 160).round(2)
    calls = rng.poisson(3.0 if drifted else 1.5, n).astype(float)
    usage = rng.lognormal(2.8 if drifted else 2.3, 0.6, n).round(2)
    late = rng.poisson(0.3, n).astype(float)
    # Standardised around the world's own centre, so both worlds churn at
    # a similar rate whatever the shift of their features.
    z_tenure = (tenure - tenure.mean()) / tenure.std()
    z_charges = (charges - charges.mean()) / charges.std()
    z_calls = (calls - calls.mean()) / calls.std()
    z_usage = (np.log(usage) - np.log(usage).mean()) / np.log(usage).std()
    if drifted:
        logit = 1.6 * z_tenure + 1.2 * z_usage - 1.0 * z_calls + 0.3 * z_charges + 0.8 * late - 1.0
    else:
        logit = -1.6 * z_tenure - 1.0 * z_usage + 1.0 * z_calls + 0.9 * z_charges + 0.8 * late - 1.0
    # A short tenure with a high bill churns in either world: a non-linear
    # effect a tree ensemble finds and a linear model would not.
    logit += 2.5 * ((tenure < 6) & (charges > 80))
    y = (logit + rng.logistic(scale=0.7, size=n) > 0).astype(np.int64)
    df = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(first_id, first_id + n)],
        "tenure_months": tenure.astype(np.float32),
        "monthly_charges": charges.astype(np.float32),
        "support_calls": calls.astype(np.float32),
        "data_usage_gb": usage.astype(np.float32),
        "late_payments": late.astype(np.float32),
    })
    df[LABEL] = y
    return df


def write(rng: np.random.Generator, out: Path, world: str, rows: int, eval_rows: int) -> None:
    """train.parquet (rows customers) and eval.parquet (eval_rows more) of the world, in out."""
    out.mkdir(parents=True, exist_ok=True)
    draw(rng, rows, world).to_parquet(out / "train.parquet", index=False)
    draw(rng, eval_rows, world, first_id=rows + 1).to_parquet(out / "eval.parquet", index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="reference", choices=WORLDS)
    ap.add_argument("--out", required=True, help="folder to write train.parquet and eval.parquet into")
    ap.add_argument("--rows", type=int, default=2000, help="training rows (eval: a quarter of it, at least 200)")
    ap.add_argument("--traffic", type=int, default=0, help="also write this many unlabelled rows to <out>-traffic.parquet")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.rows < 1 or a.traffic < 0:
        raise SystemExit("--rows must be at least 1 and --traffic at least 0")
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    write(rng, out, a.world, a.rows, max(a.rows // 4, 200))
    if a.traffic:
        # Traffic is not part of the dataset version: written next to it.
        draw(rng, a.traffic, a.world)[FEATURES].to_parquet(out.parent / f"{out.name}-traffic.parquet", index=False)
    print(f"wrote {out}/train.parquet ({a.rows} customers) and eval.parquet ({a.world} world)")


if __name__ == "__main__":
    main()
