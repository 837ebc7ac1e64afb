"""Datasets for the UI tests: "ui-sales" with two folder versions added by the
`kiln data` CLI (v2 changes sales.csv — more rows and a new column —, adds
notes.txt and removes README.md), both profiled, v2 validated by a suite
with one failing rule (a negative amount), an e-mail column for the PII
scan, and an MLflow run linked to v2; plus 30 empty datasets "ui-bulk-NN"
for the list's paging and prefix filter."""
import csv
import json
import os
import subprocess

from mlflow.tracking import MlflowClient

REGIONS = ["north", "south", "east", "west"]

SUITE = """kind: ValidationSuite
name: ui-sales-checks
rules:
  - check: not_null
    column: id
  - check: range
    column: amount
    min: 0
  - check: row_count
    min: 10
  - check: in_set
    column: region
    values: [north, south, east, west]
"""


def rows_v1():
    out = []
    for i in range(1, 41):
        out.append({"id": i, "region": REGIONS[i % 4], "amount": round(10 + (i * 7) % 50 + i / 10, 2),
                    "qty": 1 + i % 5, "email": f"user{i}@example.com"})
    return out


def rows_v2():
    out = rows_v1()
    for i in range(41, 61):
        out.append({"id": i, "region": REGIONS[i % 3], "amount": round(20 + (i * 3) % 40 + i / 10, 2),
                    "qty": 1 + i % 7, "email": f"user{i}@example.com"})
    out[4]["amount"] = -5.0  # fails range(amount)
    for i, r in enumerate(out):
        r["channel"] = "web" if i % 3 else "store"
    return out


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def seed(ctx):
    env = dict(os.environ, KILN_CACHE_DIR=str(ctx.tmp / "data-cache"))

    def kiln(*args):
        p = subprocess.run([ctx.kiln_bin, *args], env=env, capture_output=True, text=True, timeout=300)
        if p.returncode not in (0, 1):  # validate exits 1 when a rule fails
            raise RuntimeError(f"kiln {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    d1 = ctx.tmp / "sales-v1"
    d2 = ctx.tmp / "sales-v2"
    d1.mkdir()
    d2.mkdir()
    v1, v2 = rows_v1(), rows_v2()
    write_csv(d1 / "sales.csv", v1)
    (d1 / "README.md").write_text("# Sales\nDaily sales by region.\n")
    write_csv(d2 / "sales.csv", v2)
    (d2 / "notes.txt").write_text("January reload with the channel column.\n")

    kiln("data", "add", "ui-sales", str(d1), "-m", "January load", "--tag", "source=erp",
         "--description", "Daily sales by region")
    kiln("data", "add", "ui-sales", str(d2), "-m", "February reload", "--tag", "source=erp", "--tag", "reviewed=yes")
    kiln("data", "tag", "ui-sales", "owner=ana")
    kiln("data", "profile", "ui-sales@1")
    kiln("data", "profile", "ui-sales@2")
    suite = ctx.tmp / "checks.yaml"
    suite.write_text(SUITE)
    p = kiln("data", "validate", "ui-sales@2", "-f", str(suite), "-o", "json")
    report = json.loads(p.stdout)

    # An MLflow run that used v2.
    c = MlflowClient()
    exp = c.create_experiment("ui-data-training")
    run = c.create_run(exp, run_name="train-on-sales")
    c.set_terminated(run.info.run_id)
    ctx.api("POST", "/api/v1/datasets/ui-sales/versions/2/lineage/runs", json={"run_id": run.info.run_id, "context": "training"})

    for i in range(30):
        ctx.api("POST", "/api/v1/datasets", json={"name": f"ui-bulk-{i:02d}", "description": f"bulk dataset {i}"})

    def stats(rows, col):
        vals = [r[col] for r in rows]
        return {"min": min(vals), "max": max(vals), "count": len(vals)}

    return {
        "dataset": "ui-sales",
        "rows": {"1": len(v1), "2": len(v2)},
        "amount": {"1": stats(v1, "amount"), "2": stats(v2, "amount")},
        "regions_v2": {r: sum(1 for x in v2 if x["region"] == r) for r in REGIONS},
        "validation": {
            "suite": report.get("suite"),
            "passed": report.get("passed"),
            "failed_rules": [r["rule"] for r in report.get("results", []) if r["status"] != "passed"],
            "rules": [r["rule"] for r in report.get("results", [])],
        },
        "run_id": run.info.run_id,
        "experiment_id": exp,
        "bulk": [f"ui-bulk-{i:02d}" for i in range(30)],
    }
