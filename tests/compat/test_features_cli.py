"""The feature store through the `kiln` command line, on each storage backend
of the `kiln` fixture: a dataset version pushed with `kiln data add`, an
Entity and a FeatureView applied from one file with `kiln apply -f` (the view
first in the file), `kiln feature materialize` (full, then incremental over a
newer dataset version) and `kiln feature online`, whose values and statuses
are compared with the latest row per key computed here with pandas (greatest
event time, then greatest created time, then the row last in the file) and
the view's TTL relative to now.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import KILN_BIN

TTL_DAYS = 7


class CLI:
    def __init__(self, url: str, cache: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and k != "MLFLOW_TRACKING_URI"}
        self.env.update(KILN_URL=url, KILN_CACHE_DIR=str(cache))

    def run(self, *args: str) -> str:
        p = subprocess.run([KILN_BIN, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"kiln {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def json(self, *args: str):
        return json.loads(self.run(*args, "-o", "json"))


def iso(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_rows(rng, now, n_keys=80, n=1500):
    # Event times on a minute grid over the last 20 days, ending two hours
    # ago; created up to a day later (late arrivals); duplicates of the
    # same key and event time with a later or equal created time.
    ev = now - pd.Timedelta(hours=2) - pd.to_timedelta(rng.integers(0, 20 * 24 * 60, n), unit="min")
    df = pd.DataFrame({
        "customer_id": rng.integers(0, n_keys, n),
        "event_timestamp": ev,
        "created": ev + pd.to_timedelta(rng.integers(0, 24 * 60, n), unit="min"),
        "orders": rng.integers(0, 1000, n),
        "spend": rng.normal(100, 30, n).round(2),
        "tier": rng.choice(["gold", "silver", "bronze"], n),
    })
    dup = df.sample(200, random_state=2).copy()
    dup["created"] += pd.to_timedelta(rng.integers(0, 2, len(dup)), unit="min")
    dup["orders"] = rng.integers(0, 1000, len(dup))
    return pd.concat([df, dup], ignore_index=True)


def latest(df: pd.DataFrame) -> pd.DataFrame:
    s = df.reset_index(drop=True)
    s["_pos"] = np.arange(len(s))
    s = s.sort_values(["event_timestamp", "created", "_pos"], kind="stable")
    return s.groupby("customer_id").tail(1).set_index("customer_id")


def write_csv(df: pd.DataFrame, path: Path):
    out = df.copy()
    out["event_timestamp"], out["created"] = iso(out["event_timestamp"]), iso(out["created"])
    out.to_csv(path, index=False)


def check_online(cli: CLI, view: str, want: pd.DataFrame, ids: list[int], now: pd.Timestamp):
    res = cli.json("feature", "online", "--features", f"{view}:orders,{view}:tier,{view}:spend",
                   "--entity", "customer_id=" + ",".join(map(str, ids)))
    names = res["metadata"]["feature_names"]
    assert names == ["customer_id", f"{view}:orders", f"{view}:tier", f"{view}:spend"], names
    cols = {n: c for n, c in zip(names, res["results"])}
    for i, cid in enumerate(ids):
        orders = cols[f"{view}:orders"]
        if cid not in want.index:
            assert orders["statuses"][i] == "NOT_FOUND" and orders["values"][i] is None, (cid, orders)
            continue
        row = want.loc[cid]
        if now - row["event_timestamp"] > pd.Timedelta(days=TTL_DAYS):
            assert orders["statuses"][i] == "OUTSIDE_MAX_AGE" and orders["values"][i] is None, (cid, orders)
            continue
        assert orders["statuses"][i] == "PRESENT", (cid, orders)
        assert orders["values"][i] == int(row["orders"]), (cid, orders["values"][i], row)
        assert cols[f"{view}:tier"]["values"][i] == row["tier"]
        assert abs(cols[f"{view}:spend"]["values"][i] - float(row["spend"])) < 1e-9
        got_ev = pd.Timestamp(orders["event_timestamps"][i])
        assert got_ev == row["event_timestamp"].floor("us"), (cid, got_ev, row["event_timestamp"])


def test_feature_store_cli(kiln, unique, tmp_path):
    cli = CLI(kiln.url, tmp_path / "cache")
    rng = np.random.default_rng(7)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    rows = make_rows(rng, now)
    data = tmp_path / "v1"
    data.mkdir()
    write_csv(rows, data / "stats.csv")
    ds, ent, view = f"stats-{unique}", f"customer-{unique}", f"stats_{unique}"
    cli.run("data", "add", ds, str(data))

    manifest = tmp_path / "features.yaml"
    manifest.write_text(f"""\
apiVersion: kiln.dev/v1
kind: FeatureView
metadata: {{name: {view}, description: order statistics}}
spec:
  entities: [{ent}]
  source: {{dataset: "{ds}@latest"}}
  timestamp_field: event_timestamp
  created_timestamp_field: created
  ttl: {TTL_DAYS}d
  features:
    - {{name: orders, type: int64, default: 0}}
    - {{name: tier, type: string}}
    - {{name: spend, type: float64}}
---
apiVersion: kiln.dev/v1
kind: Entity
metadata: {{name: {ent}}}
spec: {{join_keys: [customer_id]}}
""")
    out = cli.run("apply", "-f", str(manifest), "--no-diff")
    assert f"entity/{ent} created" in out and f"featureview/{view} created" in out, out
    assert out.index(f"entity/{ent}") < out.index(f"featureview/{view}"), out
    out = cli.run("apply", "-f", str(manifest), "--no-diff")
    assert f"featureview/{view} unchanged" in out, out

    # Everything up to an hour ago (all of version 1).
    end1 = now - pd.Timedelta(hours=1)
    m = cli.json("feature", "materialize", view, "--end", end1.isoformat().replace("+00:00", "Z"))
    want = latest(rows)
    assert m["state"] == "succeeded" and m["rows_read"] == len(rows) and m["keys_written"] == len(want), m
    assert m["source"] == f"{ds}@1", m
    ids = sorted(want.index.tolist())[:40] + [10_000]
    check_online(cli, view, want, ids, now)

    ents = cli.json("feature", "entities")
    assert [e["spec"]["join_keys"] for e in ents if e["metadata"]["name"] == ent] == [["customer_id"]], ents
    table = cli.run("feature", "online", "--features", f"{view}:orders", "--entity", "customer_id=10000")
    assert "NOT_FOUND" in table and "CUSTOMER_ID" in table, table
    views = cli.json("feature", "views")
    assert [v["status"]["version"] for v in views if v["metadata"]["name"] == view] == [1], views

    # Version 2 adds rows within the last hour for some keys; the
    # incremental run starts at end1 and picks them up.
    fresh = rows.sample(30, random_state=3).drop_duplicates("customer_id").copy()
    fresh["event_timestamp"] = now - pd.Timedelta(minutes=30)
    fresh["created"] = fresh["event_timestamp"]
    fresh["orders"] = rng.integers(5000, 6000, len(fresh))
    rows2 = pd.concat([rows, fresh], ignore_index=True)
    data2 = tmp_path / "v2"
    data2.mkdir()
    write_csv(rows2, data2 / "stats.csv")
    cli.run("data", "add", ds, str(data2))
    m2 = cli.json("feature", "materialize", view, "--incremental")
    assert m2["state"] == "succeeded" and m2["source"] == f"{ds}@2" and m2["keys_written"] == len(fresh), m2
    assert pd.Timestamp(m2["start"]) == end1, m2
    check_online(cli, view, latest(rows2), sorted(fresh["customer_id"].tolist()) + ids[:10], pd.Timestamp.now(tz="UTC"))

    table = cli.run("feature", "get", view)
    assert "MATERIALIZED" in table and f"{ds}@2" in table, table
    versions = cli.json("feature", "get", view, "--versions")
    assert [v["status"]["version"] for v in versions] == [1], versions
