"""Synthetic data of the closed-loop example.

Writes a folder with train.parquet and eval.parquet (four float features
f0..f3 and the label y) for one of two worlds:

* reference: the features are standard normal and
  y = 1[1.5 f0 + f1 - f2 + 0.3 f3 + noise > 0];
* drifted: the features moved (f0 +2, f1 spread ×1.5 around -1, f2 +1.5)
  and the concept changed (f0 and f2 now count the other way), so a model
  of the reference world ranks the drifted world's rows badly and a
  retrained one ranks them well.

    python gen_data.py --world reference --out data/reference
    kiln data add closed-loop-data data/reference

--traffic N also writes traffic.parquet: N rows of the world without the
label (what clients send to the endpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["f0", "f1", "f2", "f3"]


def draw(rng: np.random.Generator, n: int, world: str) -> pd.DataFrame:
    """n labelled rows of the world."""
    f = rng.normal(size=(n, 4))
    if world == "reference":
        logit = 1.5 * f[:, 0] + f[:, 1] - f[:, 2] + 0.3 * f[:, 3]
    elif world == "drifted":
        logit = -1.5 * f[:, 0] + f[:, 1] + f[:, 2] + 0.3 * f[:, 3]
        f[:, 0] += 2.0
        f[:, 1] = 1.5 * f[:, 1] - 1.0
        f[:, 2] += 1.5
    else:
        raise SystemExit(f"unknown world {world!r}: reference or drifted")
    y = (logit + rng.normal(scale=0.7, size=n) > 0).astype(np.int64)
    df = pd.DataFrame({c: f[:, i].astype(np.float32) for i, c in enumerate(FEATURES)})
    df["y"] = y
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="reference", choices=["reference", "drifted"])
    ap.add_argument("--out", required=True, help="folder to write train.parquet and eval.parquet into")
    ap.add_argument("--rows", type=int, default=2000, help="training rows (eval: a quarter of it)")
    ap.add_argument("--traffic", type=int, default=0, help="also write this many unlabelled rows to traffic.parquet")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    draw(rng, a.rows, a.world).to_parquet(out / "train.parquet", index=False)
    draw(rng, max(a.rows // 4, 200), a.world).to_parquet(out / "eval.parquet", index=False)
    if a.traffic:
        # Traffic is not part of the dataset version: written next to it.
        draw(rng, a.traffic, a.world)[FEATURES].to_parquet(out.parent / f"{out.name}-traffic.parquet", index=False)
    print(f"wrote {out}/train.parquet ({a.rows} rows) and eval.parquet ({a.world})")


if __name__ == "__main__":
    main()
