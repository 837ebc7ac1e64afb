"""Seed an MLflow SQLite tracking database with N runs for the search case.

Seeding 100k runs through MLflow's REST API would take tens of minutes, so
the benchmark writes the same rows that MLflow's SqlAlchemyStore writes
(runs, the mlflow.runName tag, params, metrics and latest_metrics) directly
into the server's database, in MLflow 3.6's schema. Kiln is seeded through
its API instead. Usage: seed_mlflow.py DB_PATH EXPERIMENT_ID N
"""

import random
import sqlite3
import sys
import time
import uuid


def main(db: str, experiment_id: int, n: int) -> None:
    con = sqlite3.connect(db, timeout=60)
    art = con.execute("SELECT artifact_location FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone()[0]
    now = int(time.time() * 1000)
    rng = random.Random(42)
    runs, tags, params, metrics, latest = [], [], [], [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        name = f"seed-{i}"
        runs.append((rid, name, "LOCAL", "", "", "bench", "FINISHED", now + i, now + i, "", "active", f"{art}/{rid}/artifacts", experiment_id))
        tags.append(("mlflow.runName", name, rid))
        params.append(("alpha", str(i % 10), rid))
        for key in ("m", "loss"):
            v = rng.random()
            metrics.append((key, v, 1, rid, 0, 0))
            latest.append((key, v, 1, 0, 0, rid))
    with con:
        con.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, "
            "source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            runs,
        )
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics)
        con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest)
    print(f"seeded {n} runs into experiment {experiment_id}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
