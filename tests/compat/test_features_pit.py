"""Point-in-time correct training sets end to end: feature views applied with
`kiln apply`, their sources and the entity table pushed with `kiln data add`,
the training set built by `kiln feature training-set` on a freshly built
`kiln server` (SQLite + folder, PostgreSQL + S3) and pulled back, compared
value for value and null for null with a straightforward pandas
implementation of Feast's semantics written here.

The data has late rows (created long after their event time), duplicates
(same key and event time: the latest created wins; exact ties: the row last
in the source), rows on the TTL boundaries, keys absent from the features,
null keys on both sides, a second view keyed by a string with naive
millisecond timestamps and no TTL, and a composite-key view.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))
T0 = pd.Timestamp("2026-03-01", tz="UTC")


class CLI:
    def __init__(self, url: str, cache: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and k != "MLFLOW_TRACKING_URI"}
        self.env.update(KILN_URL=url, KILN_CACHE_DIR=str(cache))

    def run(self, *args: str) -> str:
        p = subprocess.run([KILN_BIN, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"kiln {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p.stdout


def hours(rng, n, span):
    """Times on an hour grid (many ties and exact TTL boundaries)."""
    return T0 + pd.to_timedelta(rng.integers(0, span, n), unit="h")


def make_data(rng):
    n_cust, n_merch = 60, 15
    # customer_stats: int key, UTC microsecond times, created, TTL 2 days.
    n = 3000
    ev = hours(rng, n, 24 * 20)
    cust = pd.Series(rng.integers(0, n_cust, n), dtype="Int64")
    cust[rng.random(n) < 0.02] = pd.NA  # null keys never match
    created = ev + pd.to_timedelta(rng.integers(0, 72, n), unit="h")  # late arrivals
    stats = pd.DataFrame({"customer_id": cust, "event_timestamp": ev, "created": created,
                          "orders": rng.integers(0, 100, n), "spend": rng.normal(50, 20, n).round(2),
                          "tier": rng.choice(["gold", "silver", "bronze"], n)})
    # Duplicates: same key and event time, later or equal created.
    dup = stats.sample(400, random_state=1).copy()
    dup["created"] = dup["created"] + pd.to_timedelta(rng.integers(0, 3, len(dup)), unit="h")
    dup["orders"] = rng.integers(100, 200, len(dup))
    stats = pd.concat([stats, dup]).sample(frac=1, random_state=2).reset_index(drop=True)
    stats.loc[rng.random(len(stats)) < 0.03, "spend"] = np.nan  # null values stay null
    stats["event_timestamp"] = stats["event_timestamp"].astype("datetime64[us, UTC]")
    stats["created"] = stats["created"].astype("datetime64[us, UTC]")

    # merchant_risk: string key, naive millisecond times, no created, no TTL.
    m = 800
    risk = pd.DataFrame({"merchant_id": rng.choice([f"m{i}" for i in range(n_merch)], m),
                         "ts": hours(rng, m, 24 * 20).tz_localize(None).astype("datetime64[ms]"),
                         "risk": rng.random(m).round(3)})
    risk = pd.concat([risk, risk.sample(100, random_state=3).assign(risk=lambda d: d["risk"] + 1)]).reset_index(drop=True)

    # pair_stats: composite key (customer_id, merchant_id), TTL 1 day.
    p = 1500
    pair = pd.DataFrame({"customer_id": rng.integers(0, n_cust, p), "merchant_id": rng.choice([f"m{i}" for i in range(n_merch)], p),
                         "event_timestamp": hours(rng, p, 24 * 20).astype("datetime64[us, UTC]"),
                         "visits": rng.integers(0, 9, p)})

    e = 2500
    ents = pd.DataFrame({"customer_id": pd.Series(rng.integers(0, n_cust + 10, e), dtype="Int64"),  # some absent
                         "merchant_id": rng.choice([f"m{i}" for i in range(n_merch + 3)] + [None], e),
                         "event_timestamp": hours(rng, e, 24 * 22).astype("datetime64[us, UTC]"),
                         "label": rng.integers(0, 2, e)})
    ents.loc[rng.random(e) < 0.02, "customer_id"] = pd.NA
    return stats, risk, pair, ents


def reference(ents, feats, keys, ts, created, ttl, cols, prefix):
    """Feast's point-in-time join, spelled out: candidates with the same
    (non-null) key and event time in [t - ttl, t], the greatest event time,
    then created time, then source position."""
    e = ents[keys + ["event_timestamp"]].copy()
    e["_row"] = np.arange(len(e))
    f = feats.copy()
    f["_ft"] = pd.to_datetime(f[ts], utc=True) if f[ts].dt.tz is None else f[ts].dt.tz_convert("UTC")
    f["_ct"] = f[created] if created else pd.NaT
    f["_seq"] = np.arange(len(f))
    e = e.dropna(subset=keys)
    f = f.dropna(subset=keys)
    for k in keys:
        e[k] = e[k].astype(str)
        f[k] = f[k].astype(str)
    j = e.merge(f[keys + ["_ft", "_ct", "_seq"] + cols], on=keys, how="inner")
    ok = j["_ft"] <= j["event_timestamp"]
    if ttl is not None:
        ok &= j["_ft"] >= j["event_timestamp"] - ttl
    j = j[ok].sort_values(["_row", "_ft", "_ct", "_seq"], na_position="first")
    best = j.groupby("_row").tail(1).set_index("_row")
    out = pd.DataFrame(index=np.arange(len(ents)))
    for c in cols:
        out[prefix + c] = best[c].reindex(out.index)
    return out


@pytest.fixture(scope="module")
def cli(kiln, tmp_path_factory) -> CLI:
    return CLI(kiln.url, tmp_path_factory.mktemp("kiln-cache"))


def test_training_set_matches_pandas(cli, unique, tmp_path):
    rng = np.random.default_rng(9)
    stats, risk, pair, ents = make_data(rng)
    names = {k: f"{k}-{unique}" for k in ["stats", "risk", "pair", "ents"]}
    for key, df in zip(["stats", "risk", "pair", "ents"], [stats, risk, pair, ents]):
        path = tmp_path / f"{key}.parquet"
        df.to_parquet(path, index=False)
        cli.run("data", "add", names[key], str(path))

    views = {"stats": f"cust_stats_{unique}", "risk": f"merchant_risk_{unique}", "pair": f"pair_stats_{unique}"}
    cust, merch = f"customer_{unique}", f"merchant_{unique}"
    manifest = f"""
apiVersion: kiln.dev/v1
kind: Entity
metadata: {{name: {cust}}}
spec: {{join_keys: [customer_id]}}
---
apiVersion: kiln.dev/v1
kind: Entity
metadata: {{name: {merch}}}
spec: {{join_keys: [merchant_id]}}
---
apiVersion: kiln.dev/v1
kind: FeatureView
metadata: {{name: {views['stats']}}}
spec:
  entities: [{cust}]
  source: {{dataset: "{names['stats']}@1"}}
  timestamp_field: event_timestamp
  created_timestamp_field: created
  ttl: 2d
  features:
    - {{name: orders, type: int64}}
    - {{name: spend, type: float64}}
    - {{name: tier, type: string}}
---
apiVersion: kiln.dev/v1
kind: FeatureView
metadata: {{name: {views['risk']}}}
spec:
  entities: [{merch}]
  source: {{dataset: "{names['risk']}"}}
  timestamp_field: ts
  features: [{{name: risk, type: float64}}]
---
apiVersion: kiln.dev/v1
kind: FeatureView
metadata: {{name: {views['pair']}}}
spec:
  entities: [{cust}, {merch}]
  source: {{dataset: "{names['pair']}@1"}}
  timestamp_field: event_timestamp
  ttl: 24h
  features: [{{name: visits, type: int64}}]
"""
    (tmp_path / "features.yaml").write_text(manifest)
    cli.run("apply", "-f", str(tmp_path / "features.yaml"))

    feats = [f"{views['stats']}:orders", f"{views['stats']}:spend", f"{views['stats']}:tier",
             f"{views['risk']}:risk", f"{views['pair']}:visits"]
    out_name = f"train-{unique}"
    ans = json.loads(cli.run("feature", "training-set", "--entities", f"{names['ents']}@1", "--features", ",".join(feats),
                             "--output", out_name, "--full-feature-names", "--format", "json"))
    assert ans["dataset"] == out_name and ans["version"] == 1
    assert ans["parent"] == {"dataset": names["ents"], "version": 1}
    assert ans["tags"]["kiln.training_set.source." + views["risk"]] == f"{names['risk']}@1"
    assert ans["tags"]["kiln.training_set.rows"] == str(len(ents))

    cli.run("data", "pull", f"{out_name}@1", str(tmp_path / "out"))
    files = list((tmp_path / "out").glob("*.parquet"))
    assert len(files) == 1
    got = pd.read_parquet(files[0])

    want = pd.concat([
        ents.reset_index(drop=True),
        reference(ents, stats, ["customer_id"], "event_timestamp", "created", pd.Timedelta("2d"), ["orders", "spend", "tier"], views["stats"] + "__"),
        reference(ents, risk, ["merchant_id"], "ts", None, None, ["risk"], views["risk"] + "__"),
        reference(ents, pair, ["customer_id", "merchant_id"], "event_timestamp", None, pd.Timedelta("24h"), ["visits"], views["pair"] + "__"),
    ], axis=1)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    # Entity columns pass through in order.
    assert got["label"].tolist() == want["label"].tolist()
    assert (got["event_timestamp"] == want["event_timestamp"]).all()
    assert got["customer_id"].isna().tolist() == want["customer_id"].isna().tolist()
    matched = 0
    for c in want.columns[len(ents.columns):]:
        g, w = got[c], want[c]
        assert g.isna().tolist() == w.isna().tolist(), f"{c}: nulls differ at rows {list(np.flatnonzero(g.isna() != w.isna()))[:10]}"
        mask = w.notna()
        gv, wv = g[mask].tolist(), w[mask].tolist()
        assert gv == wv, f"{c}: values differ"
        matched += int(mask.sum())
    # The data exercise both outcomes.
    assert matched > 1000 and want[views["stats"] + "__orders"].isna().sum() > 200
    # Duplicates resolved by created time: some chosen rows are the later duplicates.
    assert (want[views["stats"] + "__orders"].dropna() >= 100).sum() > 10
