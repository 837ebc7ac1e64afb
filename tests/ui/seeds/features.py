"""The feature store for the UI tests: a CSV of customer statistics added as
the dataset "ui-feat-stats" with the `kiln data` CLI, the entities
"ui-customer" (join key customer_id) and "ui-store", the feature view
"ui_customer_stats" applied twice (version 2 changes its description and
TTL) and materialized once, and the view "ui_customer_tiers" over the same
source, never materialized (the tests materialize it). The facts hold the
latest row per customer, as an online lookup must answer it."""
import csv
import os
import subprocess
from datetime import datetime, timedelta, timezone

TIERS = ["gold", "silver", "bronze"]


def make_rows(now):
    rows = []
    # 12 customers, 4 rows each over the last days; the newest row wins.
    for cid in range(1, 13):
        for k in range(4):
            ev = now - timedelta(days=4 - k, hours=cid)
            rows.append({
                "customer_id": cid,
                "event_timestamp": ev.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "orders_7d": cid * 10 + k,
                "spend_7d": round(cid * 12.5 + k * 0.25, 2),
                "tier": TIERS[(cid + k) % 3],
                "_ev": ev,
            })
    return rows


def view_doc(name, description, ttl, features):
    return {
        "apiVersion": "kiln.dev/v1", "kind": "FeatureView",
        "metadata": {"name": name, "description": description},
        "spec": {
            "entities": ["ui-customer"],
            "source": {"dataset": "ui-feat-stats@latest"},
            "timestamp_field": "event_timestamp",
            "ttl": ttl,
            "features": features,
        },
    }


def seed(ctx):
    env = dict(os.environ, KILN_CACHE_DIR=str(ctx.tmp / "features-cache"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = make_rows(now)
    d = ctx.tmp / "feat-stats"
    d.mkdir()
    cols = ["customer_id", "event_timestamp", "orders_7d", "spend_7d", "tier"]
    with open(d / "stats.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    p = subprocess.run([ctx.kiln_bin, "data", "add", "ui-feat-stats", str(d), "-m", "customer statistics"],
                       env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"kiln data add: {p.returncode}\n{p.stdout}\n{p.stderr}")

    ctx.api("PUT", "/api/v1/entities/ui-customer", json={
        "apiVersion": "kiln.dev/v1", "kind": "Entity",
        "metadata": {"name": "ui-customer", "description": "a paying customer"},
        "spec": {"join_keys": ["customer_id"]}})
    ctx.api("PUT", "/api/v1/entities/ui-store", json={
        "apiVersion": "kiln.dev/v1", "kind": "Entity",
        "metadata": {"name": "ui-store", "description": "a shop"},
        "spec": {"join_keys": ["store_id"]}})
    feats = [
        {"name": "orders_7d", "type": "int64", "default": 0, "description": "orders in the last 7 days"},
        {"name": "spend_7d", "type": "float64"},
        {"name": "tier", "type": "string", "description": "loyalty tier"},
    ]
    ctx.api("PUT", "/api/v1/feature-views/ui_customer_stats", json=view_doc("ui_customer_stats", "order statistics", "30d", feats))
    ctx.api("PUT", "/api/v1/feature-views/ui_customer_stats", json=view_doc("ui_customer_stats", "order statistics per customer", "90d", feats))
    ctx.api("PUT", "/api/v1/feature-views/ui_customer_tiers", json=view_doc("ui_customer_tiers", "loyalty tiers", "0s",
                                                                           [{"name": "tier", "type": "string"}]))
    m = ctx.api("POST", "/api/v1/feature-views/ui_customer_stats/materialize", json={})
    if m.get("state") != "succeeded":
        raise RuntimeError(f"materialize: {m}")

    latest = {}
    for r in rows:
        cur = latest.get(r["customer_id"])
        if cur is None or r["_ev"] > cur["_ev"]:
            latest[r["customer_id"]] = r
    return {
        "entities": {"ui-customer": ["customer_id"], "ui-store": ["store_id"]},
        "view": "ui_customer_stats",
        "view_versions": 2,
        "unmaterialized_view": "ui_customer_tiers",
        "features": [f["name"] for f in feats],
        "rows": len(rows),
        "keys": len(latest),
        "materialization": {"rows_read": m.get("rows_read"), "keys_written": m.get("keys_written"), "source": m.get("source")},
        "latest": {str(cid): {"orders_7d": r["orders_7d"], "spend_7d": r["spend_7d"], "tier": r["tier"],
                              "event_timestamp": r["event_timestamp"]} for cid, r in latest.items()},
    }
