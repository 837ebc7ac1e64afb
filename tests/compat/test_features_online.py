"""The online store end to end, on the embedded store and on Redis: a feature
view over a CSV with late and duplicate rows is applied through the API,
materialized in intervals (newer first, then an older interval again, which
must not roll values back), and looked up by POST and GET; every value is
compared with the latest row per key computed here with pandas (greatest
event time, ties by greatest created time).

The Redis server is ``KILN_TEST_REDIS`` (``make test`` starts one with
scripts/redis.sh); with ``CI=true`` its absence fails the test.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pandas as pd
import pytest
import requests

from conftest import KILN_BIN, Kiln, free_port, need

T0 = pd.Timestamp("2026-03-01", tz="UTC")


@pytest.fixture(scope="module", params=["embedded", "redis"])
def kiln_online(request, tmp_path_factory):
    """A kiln server on SQLite whose online store is embedded or Redis."""
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build`")
    store = request.param
    tmp = tmp_path_factory.mktemp(f"online-{store}")
    port = free_port()
    args = ["server", "--addr", f"127.0.0.1:{port}", "--grpc-addr", f"127.0.0.1:{free_port()}",
            "--model-cache", str(tmp / "model-cache"),
            "--db", f"sqlite://{tmp}/kiln.db", "--artifacts", f"file://{tmp}/artifacts"]
    if store == "redis":
        url = os.environ.get("KILN_TEST_REDIS")
        if not url:
            need("Redis", "set KILN_TEST_REDIS (make test starts one with scripts/redis.sh)")
        args += ["--online-store", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    k = Kiln(url=f"http://127.0.0.1:{port}", args=args, env=env, log=tmp / "kiln.log", backend=store)
    k.start()
    k.extra["tmp"] = tmp
    yield k
    k.stop()


def v1(k: Kiln, method: str, path: str, **kw) -> dict:
    r = requests.request(method, f"{k.url}/api/v1/{path}", timeout=120, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else {}


def make_source(rng, n_keys=200, n=4000):
    ev = T0 + pd.to_timedelta(rng.integers(0, 24 * 30, n), unit="h")
    df = pd.DataFrame({
        "customer_id": rng.integers(0, n_keys, n),
        "event_timestamp": ev,
        "created": ev + pd.to_timedelta(rng.integers(0, 96, n), unit="h"),  # late rows
        "orders": rng.integers(0, 1000, n),
        "spend": rng.normal(50, 20, n).round(3),
    })
    # Duplicates: same key and event time, created later (these win) or earlier (these lose).
    dup = df.sample(600, random_state=1).copy()
    dup["created"] += pd.to_timedelta(rng.choice([-1, 1], len(dup)) * rng.integers(1, 5, len(dup)), unit="h")
    dup["orders"] = rng.integers(1000, 2000, len(dup))
    df = pd.concat([df, dup]).sample(frac=1, random_state=2).reset_index(drop=True)
    # Keep (key, event, created) unique so the expected winner is unambiguous.
    return df.drop_duplicates(["customer_id", "event_timestamp", "created"], keep="first").reset_index(drop=True)


def latest(df: pd.DataFrame, end=None) -> pd.DataFrame:
    if end is not None:
        df = df[df["event_timestamp"] < end]
    return df.sort_values(["event_timestamp", "created"]).groupby("customer_id").tail(1).set_index("customer_id")


def lookup(k: Kiln, view: str, keys: list[int], how: str) -> dict[int, tuple]:
    feats = [f"{view}:orders", f"{view}:spend"]
    if how == "post":
        body = v1(k, "POST", "features/online", json={"features": feats, "entities": {"customer_id": keys}})
    else:
        params = [("features", ",".join(feats))] + [("customer_id", str(x)) for x in keys]
        body = v1(k, "GET", "features/online", params=params)
    names = body["metadata"]["feature_names"]
    assert names[0] == "customer_id" and names[1:] == ["orders", "spend"] or names[1:] == feats, names
    res = body["results"]
    out = {}
    for i, key in enumerate(keys):
        assert int(res[0]["values"][i]) == key
        st = (res[1]["statuses"][i], res[2]["statuses"][i])
        out[key] = (st, res[1]["values"][i], res[2]["values"][i], res[1]["event_timestamps"][i])
    return out


def check(k: Kiln, view: str, want: pd.DataFrame, n_keys: int, how: str) -> None:
    keys = list(range(n_keys)) + [10_000]  # the last key has no rows
    got = lookup(k, view, keys, how)
    for key in keys:
        st, orders, spend, ts = got[key]
        if key not in want.index:
            assert st == ("NOT_FOUND", "NOT_FOUND"), (key, got[key])
            continue
        row = want.loc[key]
        assert st == ("PRESENT", "PRESENT"), (key, got[key])
        assert int(orders) == int(row["orders"]), (key, got[key], row.to_dict())
        assert float(spend) == pytest.approx(float(row["spend"])), (key, got[key])
        assert pd.Timestamp(ts) == row["event_timestamp"], (key, ts, row["event_timestamp"])


def test_online_newer_wins(kiln_online):
    k = kiln_online
    # A view name of its own: the Redis server outlives the test.
    view = "cust_online_" + uuid.uuid4().hex[:8]
    rng = np.random.default_rng(7)
    n_keys = 200
    src = make_source(rng, n_keys)
    path = k.extra["tmp"] / f"{view}.csv"
    out = src.copy()
    for c in ("event_timestamp", "created"):
        out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)

    v1(k, "PUT", "entities/customer", json={"apiVersion": "kiln.dev/v1", "kind": "Entity",
                                          "metadata": {"name": "customer"}, "spec": {"join_keys": ["customer_id"]}})
    v1(k, "PUT", f"feature-views/{view}", json={
        "apiVersion": "kiln.dev/v1", "kind": "FeatureView", "metadata": {"name": view},
        "spec": {"entities": ["customer"], "source": {"path": str(path), "format": "csv"},
                 "timestamp_field": "event_timestamp", "created_timestamp_field": "created",
                 "features": [{"name": "orders", "type": "int64"}, {"name": "spend", "type": "float64"}],
                 "online": True}})

    mid = T0 + pd.Timedelta(days=15)
    # The newer half first, then the older half: the older must not replace it.
    v1(k, "POST", f"feature-views/{view}/materialize", json={"start": mid.isoformat(), "end": "2027-01-01T00:00:00Z"})
    newer = latest(src[src["event_timestamp"] >= mid])
    check(k, view, newer, n_keys, "post")
    v1(k, "POST", f"feature-views/{view}/materialize", json={"start": T0.isoformat(), "end": mid.isoformat()})
    check(k, view, latest(src), n_keys, "post")
    check(k, view, latest(src), n_keys, "get")
    # Everything again: idempotent.
    v1(k, "POST", f"feature-views/{view}/materialize", json={"start": T0.isoformat(), "end": "2027-01-01T00:00:00Z"})
    check(k, view, latest(src), n_keys, "post")
    # Deleting the view deletes its online records.
    v1(k, "DELETE", f"feature-views/{view}")
    r = requests.post(f"{k.url}/api/v1/features/online", timeout=60,
                      json={"features": [f"{view}:orders"], "entities": {"customer_id": [0]}})
    assert r.status_code == 404, r.text
