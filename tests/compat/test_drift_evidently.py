"""`kiln monitor drift` against Evidently 0.7's DataDriftPreset and scipy.stats.

Seeded numpy tables with drifted and non-drifted numeric, integer and
categorical columns, at two sizes: at most 1,000 reference rows (Evidently
picks KS, chi-square and the Z-test) and more (normed Wasserstein and
Jensen-Shannon). Both sides are written to Parquet; Evidently runs on the
pandas frames, Kiln on the files, with --exact (every value held) and with
its default sketches.

Asserted per column: the same test, the same drift decision, and the same
dataset verdict; the score within
  - 1e-9 relative (p-values: also 1e-12 absolute) on exact paths: --exact,
    and the sketch path where it is exact (at most 1,024 distinct values
    per column, i.e. every categorical column and the small tables),
  - 0.02 absolute on the normed Wasserstein distance from sketches (KLL
    quantiles; docs/drift.md).
The fixtures avoid borderline columns: every score is checked (with scipy)
to be far from its threshold, since a decision near the threshold may
legitimately flip under sketching.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evidently import Report
from evidently.presets import DataDriftPreset
from scipy import stats
from scipy.spatial import distance

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))

METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chi2",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}

EXACT_REL = 1e-9
SKETCH_WASSERSTEIN_ABS = 0.02


def make_tables(n_ref, n_cur, seed):
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    # Numeric (float) columns: three drift, three do not.
    ref["n_shift"], cur["n_shift"] = rng.normal(0, 1, n_ref), rng.normal(0.8, 1, n_cur)
    ref["n_scale"], cur["n_scale"] = rng.normal(3, 1, n_ref), rng.normal(3, 2.2, n_cur)
    ref["n_exp"], cur["n_exp"] = rng.exponential(1, n_ref), 0.7 + rng.exponential(1, n_cur)
    ref["n_same"], cur["n_same"] = rng.normal(5, 2, n_ref), rng.normal(5, 2, n_cur)
    ref["n_same_u"], cur["n_same_u"] = rng.uniform(-1, 1, n_ref), rng.uniform(-1, 1, n_cur)
    ref["n_same_g"], cur["n_same_g"] = rng.gamma(2, 1, n_ref), rng.gamma(2, 1, n_cur)
    # A float column with 4 distinct values: chi-square / Jensen-Shannon.
    ref["n_levels"] = rng.choice([0.5, 1.5, 2.5, 3.5], n_ref, p=[0.4, 0.3, 0.2, 0.1])
    cur["n_levels"] = rng.choice([0.5, 1.5, 2.5, 3.5], n_cur, p=[0.1, 0.2, 0.3, 0.4])
    # Integers with at most 10 values: categorical for Evidently.
    ref["i_cat"], cur["i_cat"] = rng.integers(0, 6, n_ref), rng.integers(0, 6, n_cur)
    ref["i_cat_d"] = rng.choice(np.arange(8), n_ref)
    cur["i_cat_d"] = rng.choice(np.arange(8), n_cur, p=[0.3, 0.3, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    # Strings.
    colors = np.array(["red", "green", "blue", "black"])
    ref["s_color"] = rng.choice(colors, n_ref, p=[0.4, 0.3, 0.2, 0.1])
    cur["s_color"] = rng.choice(colors, n_cur, p=[0.1, 0.2, 0.3, 0.4])
    cities = np.array([f"city_{k}" for k in range(15)])
    ref["s_city"], cur["s_city"] = rng.choice(cities, n_ref), rng.choice(cities, n_cur)
    ref["s_yes"] = rng.choice(np.array(["yes", "no"]), n_ref, p=[0.7, 0.3])
    cur["s_yes"] = rng.choice(np.array(["yes", "no"]), n_cur, p=[0.7, 0.3])
    ref["s_yes_d"] = rng.choice(np.array(["yes", "no"]), n_ref, p=[0.7, 0.3])
    cur["s_yes_d"] = rng.choice(np.array(["yes", "no"]), n_cur, p=[0.3, 0.7])
    return pd.DataFrame(ref), pd.DataFrame(cur)


DRIFTED = {"n_shift", "n_scale", "n_exp", "n_levels", "i_cat_d", "s_color", "s_yes_d"}


def scipy_score(method, r, c):
    """The score of Evidently's test computed with scipy/numpy directly."""
    if method == "ks":
        return stats.ks_2samp(r, c)[1]
    if method == "wasserstein":
        return stats.wasserstein_distance(r, c) / max(np.std(r), 0.001)
    keys = sorted(set(r.tolist()) | set(c.tolist()))
    rc = pd.Series(r).value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
    cc = pd.Series(c).value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
    if method == "chi2":
        return stats.chisquare(cc, rc * (len(c) / len(r)))[1]
    if method == "jensenshannon":
        return distance.jensenshannon(rc / rc.sum(), cc / cc.sum())
    if method == "z":
        p1, p2 = 1 - rc[0] / rc.sum(), 1 - cc[0] / cc.sum()
        n1, n2 = rc.sum(), cc.sum()
        p = (p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        return 2 * stats.norm.sf(abs(z))
    raise AssertionError(method)


def far_from_threshold(method, score):
    if method in ("ks", "chi2", "z"):
        return score < 0.005 or score > 0.2
    return score > 0.15 or score < 0.06


def evidently(ref, cur):
    d = Report([DataDriftPreset()], include_tests=True).run(cur, ref).dict()
    cols, verdict = {}, None
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            cols[cfg["column"]] = {"method": METHODS[cfg["method"]], "score": m["value"], "threshold": cfg["threshold"]}
        elif cfg["type"].endswith("DriftedColumnsCount"):
            verdict = {"count": int(m["value"]["count"]), "share": m["value"]["share"]}
    for t in d["tests"]:
        if t["name"].startswith("Value Drift for column "):
            cols[t["name"][len("Value Drift for column "):]]["drift"] = t["status"] == "FAIL"
        elif t["name"].startswith("Share of Drifted Columns"):
            verdict["dataset_drift"] = t["status"] == "FAIL"
    return cols, verdict


def kiln(ref_path, cur_path, *flags):
    p = subprocess.run(
        [KILN_BIN, "monitor", "drift", "--reference", str(ref_path), "--current", str(cur_path), "--output", "json", *flags],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def close(a, b, rel, absolute=0.0):
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), absolute)


@pytest.fixture(scope="module", params=[(800, 700), (5000, 4000)], ids=["small", "large"])
def case(request, tmp_path_factory):
    if not os.path.exists(KILN_BIN):
        pytest.fail(f"kiln binary not found at {KILN_BIN}; run `make build`")
    n_ref, n_cur = request.param
    # The first seed whose columns are all far from their thresholds, on
    # the side the design intends (a non-drifted column may show a small
    # p-value by chance): deterministic, and no decision rests on noise.
    for seed in range(100):
        ref, cur = make_tables(n_ref, n_cur, seed)
        ev, verdict = evidently(ref, cur)
        if all(far_from_threshold(v["method"], v["score"]) and v["drift"] == (c in DRIFTED) for c, v in ev.items()):
            break
    else:
        pytest.fail("no seed gives a fixture without borderline columns")
    d = tmp_path_factory.mktemp(f"drift{n_ref}")
    ref.to_parquet(d / "ref.parquet", index=False)
    cur.to_parquet(d / "cur.parquet", index=False)
    return {"ref": ref, "cur": cur, "dir": d, "evidently": ev, "verdict": verdict, "n_ref": n_ref}


def test_fixture_is_what_it_says(case):
    ev = case["evidently"]
    assert set(ev) == set(case["ref"].columns)
    assert {c for c, v in ev.items() if v["drift"]} == DRIFTED
    expected = {"ks", "chi2", "z"} if case["n_ref"] <= 1000 else {"wasserstein", "jensenshannon"}
    assert {v["method"] for v in ev.values()} == expected
    # Evidently's scores are scipy's.
    for col, v in ev.items():
        r, c = case["ref"][col].to_numpy(), case["cur"][col].to_numpy()
        assert close(scipy_score(v["method"], r, c), v["score"], 1e-9, 1e-12), col


@pytest.mark.parametrize("mode", ["exact", "sketch"])
def test_kiln_matches_evidently(case, mode):
    flags = ["--exact"] if mode == "exact" else []
    out = kiln(case["dir"] / "ref.parquet", case["dir"] / "cur.parquet", *flags)
    ev = case["evidently"]
    assert out["statistics"] == mode
    got = {f["name"]: f for f in out["features"]}
    assert set(got) == set(ev)
    for col, e in ev.items():
        k = got[col]
        assert "error" not in k, (col, k)
        assert k["method"] == e["method"], col
        assert k["threshold"] == e["threshold"], col
        assert k["drift"] == e["drift"], (col, k["score"], e["score"])
        assert k["ref_count"] == len(case["ref"]) and k["cur_count"] == len(case["cur"]), col
        # Where the profile holds every distinct value the sketch path is
        # exact too: categorical columns, few-valued numbers, small tables.
        distinct = max(case["ref"][col].nunique(), case["cur"][col].nunique())
        if mode == "exact" or distinct < 1024:
            assert close(k["score"], e["score"], EXACT_REL, 1e-12), (col, k["score"], e["score"])
        else:
            assert k["method"] == "wasserstein"
            assert abs(k["score"] - e["score"]) <= SKETCH_WASSERSTEIN_ABS, (col, k["score"], e["score"])
    v = case["verdict"]
    assert out["drifted"] == v["count"] and out["total"] == len(ev)
    assert abs(out["share"] - v["share"]) < 1e-12
    assert out["dataset_drift"] == v["dataset_drift"]


def test_kiln_statistics_match_scipy(case):
    """The statistics behind the scores, against scipy directly (--exact)."""
    out = kiln(case["dir"] / "ref.parquet", case["dir"] / "cur.parquet", "--exact")
    for f in out["features"]:
        r, c = case["ref"][f["name"]].to_numpy(), case["cur"][f["name"]].to_numpy()
        if f["method"] == "ks":
            res = stats.ks_2samp(r, c)
            assert close(f["statistic"], res.statistic, 1e-12), f["name"]
            assert close(f["score"], res.pvalue, EXACT_REL, 1e-12), f["name"]
        elif f["method"] == "chi2":
            keys = sorted(set(r.tolist()) | set(c.tolist()))
            rc = pd.Series(r).value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
            cc = pd.Series(c).value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
            res = stats.chisquare(cc, rc * (len(c) / len(r)))
            assert close(f["statistic"], res.statistic, EXACT_REL), f["name"]
            assert close(f["score"], res.pvalue, EXACT_REL, 1e-12), f["name"]
        elif f["method"] == "wasserstein":
            w = stats.wasserstein_distance(r, c) / max(np.std(r), 0.001)
            assert close(f["score"], w, EXACT_REL), f["name"]


def test_dataset_share_and_methods_flags(case):
    """--drift-share moves the dataset verdict as Evidently's drift_share does;
    --method/--threshold apply to every column."""
    ev = case["evidently"]
    drifted = sum(v["drift"] for v in ev.values())
    share = drifted / len(ev)
    out = kiln(case["dir"] / "ref.parquet", case["dir"] / "cur.parquet", "--drift-share", repr(share))
    assert out["dataset_drift"] is True
    out = kiln(case["dir"] / "ref.parquet", case["dir"] / "cur.parquet", "--drift-share", f"{share + 0.01:.6f}")
    assert out["dataset_drift"] is False
    out = kiln(case["dir"] / "ref.parquet", case["dir"] / "cur.parquet", "--method", "psi", "--threshold", "0.2",
               "--columns", "s_color,s_city")
    assert [f["method"] for f in out["features"]] == ["psi", "psi"]
    assert [f["threshold"] for f in out["features"]] == [0.2, 0.2]
    assert [f["drift"] for f in out["features"]] == [True, False]
