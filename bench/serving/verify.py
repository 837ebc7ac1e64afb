"""Checks, before anything is timed, that `kiln serve` and `mlflow models
serve` give the same predictions for the benchmark's request rows, and that
both match scikit-learn (reference.json, written by models.py).

    .venv/bin/python bench/serving/verify.py OUT MODEL KILN_URL MLFLOW_URL

Exits non-zero (and the benchmark stops) on any difference: labels must be
equal, Kiln's probabilities (V2 protocol, float32) within 1e-5 relative of
scikit-learn's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import requests


def main(out: Path, model: str, kiln: str, mlflow: str) -> int:
    ref = json.loads((out / "reference.json").read_text())[model]
    split = (out / "body-split-64.json").read_bytes()
    hdr = {"Content-Type": "application/json"}
    got = {}
    for who, url in (("kiln", kiln), ("mlflow", mlflow)):
        r = requests.post(url + "/invocations", data=split, headers=hdr, timeout=60)
        r.raise_for_status()
        got[who] = r.json()["predictions"]
    r = requests.post(f"{kiln}/v2/models/{model}/infer", data=(out / "body-v2-64.json").read_bytes(), timeout=60)
    r.raise_for_status()
    v2 = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in r.json()["outputs"]}
    problems = []
    for who in ("kiln", "mlflow"):
        if got[who] != ref["label"]:
            problems.append(f"{who} /invocations labels differ from scikit-learn's: {got[who][:8]}... vs {ref['label'][:8]}...")
    if v2["label"].tolist() != ref["label"]:
        problems.append("kiln V2 labels differ from scikit-learn's")
    try:
        np.testing.assert_allclose(v2["probabilities"], np.asarray(ref["probabilities"]), rtol=1e-5, atol=1e-6)
    except AssertionError as e:
        problems.append(f"kiln V2 probabilities differ from scikit-learn's: {e}")
    if problems:
        print(f"{model}: " + "\n".join(problems), file=sys.stderr)
        return 1
    print(f"{model}: kiln (/invocations and V2) and mlflow agree with scikit-learn on 64 rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))
