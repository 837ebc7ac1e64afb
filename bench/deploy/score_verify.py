"""Checks the predictions of the batch-scoring benchmark before its figures
count, and prints a JSON summary.

    .venv/bin/python bench/deploy/score_verify.py OUT_DIR

Reads OUT_DIR/reference.json (scikit-learn's labels and class-1
probabilities for the first 1,000 rows), kiln's outputs
(kiln_parquet.parquet from the Parquet input, kiln_csv.csv from the CSV
input) and mlflow's (mlflow_out.json, {"predictions": [...]}) and checks:
kiln's labels and probabilities on the reference rows (probabilities
within 1e-5, float32 trees), mlflow's labels on them, and that kiln and
mlflow agree on the label of every row (at least 99.99%: a probability of
exactly 0.5 may break either way).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def main(out: Path) -> None:
    ref = json.loads((out / "reference.json").read_text())
    ref_labels = np.array(ref["labels"])
    ref_p1 = np.array(ref["probabilities"])
    n = len(ref_labels)
    kiln = {
        "parquet": pq.read_table(out / "kiln_parquet.parquet").to_pandas(),
        "csv": pd.read_csv(out / "kiln_csv.csv"),
    }
    mlflow = np.array(json.loads((out / "mlflow_out.json").read_text())["predictions"])
    summary = {"rows": int(len(mlflow))}
    failures = []
    for name, df in kiln.items():
        if list(df.columns) != ["label", "probabilities_0", "probabilities_1"]:
            failures.append(f"kiln {name}: columns {list(df.columns)}")
            continue
        if len(df) != len(mlflow):
            failures.append(f"kiln {name}: {len(df)} rows, mlflow {len(mlflow)}")
            continue
        lab = df["label"].to_numpy()
        bad = int((lab[:n] != ref_labels).sum())
        err = float(np.abs(df["probabilities_1"].to_numpy()[:n] - ref_p1).max())
        agree = float((lab == mlflow).mean())
        summary[f"kiln_{name}"] = {"reference_label_mismatches": bad, "max_probability_error": err, "label_agreement_with_mlflow": agree}
        if bad > 0 or err > 1e-5:
            failures.append(f"kiln {name}: {bad} label mismatches, max probability error {err}")
        if agree < 0.9999:
            failures.append(f"kiln {name}: agrees with mlflow on {agree:.6f} of the labels")
    bad = int((mlflow[:n] != ref_labels).sum())
    summary["mlflow_reference_label_mismatches"] = bad
    if bad > 0:
        failures.append(f"mlflow: {bad} label mismatches with scikit-learn's")
    summary["ok"] = not failures
    summary["failures"] = failures
    print(json.dumps(summary))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
