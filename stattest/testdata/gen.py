"""Writes reference.json: inputs and reference values for stattest's tests.

Run with the repository's virtualenv (scipy 1.17, numpy 2.3):

    /work/main/.venv/bin/python stattest/testdata/gen.py

p-values and distances come from scipy (ks_2samp, kstwo.sf, chi2.sf,
chisquare, chi2_contingency, wasserstein_distance, jensenshannon, entropy,
norm.cdf). PSI, the normed Wasserstein distance, the binning, the zero fill,
the Z-test and the Hellinger distance are written here as Evidently's
stattests define them (evidently/legacy/calculations/stattests/*.py), on
top of numpy and scipy, since Evidently itself is not installed.

Numeric samples are stored as integers k and mean k/1000 (the division is
correctly rounded in Python and Go alike, so both sides test the same
doubles).
"""

import json
import os

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

rng = np.random.default_rng(20240601)
SCALE = 1000.0


def ints(x):
    return np.round(np.asarray(x) * SCALE).astype(np.int64)


def vals(k):
    return np.asarray(k, dtype=np.float64) / SCALE


# ---- Evidently's definitions (legacy/calculations/stattests) ----

def binned(ref, cur, feature_type, feel_zeroes=True):
    """utils.py::get_binned_data."""
    if feature_type == "num" and len(np.unique(ref)) > 20:
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        rp = np.histogram(ref, bins)[0] / len(ref)
        cp = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys = sorted(set(ref.tolist()) | set(cur.tolist()))
        rc = {k: 0 for k in keys}
        cc = {k: 0 for k in keys}
        for v in ref.tolist():
            rc[v] += 1
        for v in cur.tolist():
            cc[v] += 1
        rp = np.array([rc[k] for k in keys], dtype=float) / len(ref)
        cp = np.array([cc[k] for k in keys], dtype=float) / len(cur)
    if feel_zeroes:
        for p in (rp, cp):
            mn = p[p != 0].min()
            np.place(p, p == 0, mn / 10**6 if mn <= 0.0001 else 0.0001)
    return rp, cp


def psi(ref, cur, t):
    rp, cp = binned(ref, cur, t)
    return float(np.sum((rp - cp) * np.log(rp / cp)))


def kl(ref, cur, t):
    rp, cp = binned(ref, cur, t)
    return float(stats.entropy(rp, cp))


def js(ref, cur, t):
    rp, cp = binned(ref, cur, t, feel_zeroes=False)
    return float(distance.jensenshannon(rp, cp))


def wasserstein_norm(ref, cur):
    norm = max(np.std(ref), 0.001)
    return float(stats.wasserstein_distance(ref, cur) / norm)


def hellinger(ref, cur, t):
    if t == "cat":
        keys = set(ref.tolist()) | set(cur.tolist())
        rf = {k: 0.0 for k in keys}
        cf = {k: 0.0 for k in keys}
        for v in ref.tolist():
            rf[v] += 1 / len(ref)
        for v in cur.tolist():
            cf[v] += 1 / len(cur)
        h = sum((np.sqrt(rf[k]) - np.sqrt(cf[k])) ** 2 for k in keys)
        return float(np.sqrt(h) / np.sqrt(2))
    bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    h1 = np.histogram(ref, bins=bins, density=True)[0]
    h2 = np.histogram(cur, bins=bins, density=True)[0]
    w = np.diff(bins)
    s = float(np.sum(np.sqrt(h1 * h2) * w))
    return float(np.sqrt(1 - min(s, 1.0)))


def chisquare_ev(ref, cur):
    keys = sorted(set(ref.tolist()) | set(cur.tolist()))
    rc = {k: 0 for k in keys}
    cc = {k: 0 for k in keys}
    for v in ref.tolist():
        rc[v] += 1
    for v in cur.tolist():
        cc[v] += 1
    k_norm = len(cur) / len(ref)
    f_exp = [rc[k] * k_norm for k in keys]
    f_obs = [cc[k] for k in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = stats.chisquare(f_obs, f_exp)
    return float(r.statistic), float(r.pvalue)


def z_ev(ref, cur):
    if len(set(ref.tolist())) == 1 and len(set(cur.tolist())) == 1 and ref[0] == cur[0]:
        return 0.0, 1.0
    first = sorted(set(ref.tolist()) | set(cur.tolist()))[0]
    a = np.array([0 if x == first else 1 for x in ref.tolist()])
    b = np.array([0 if x == first else 1 for x in cur.tolist()])
    n1, n2 = len(a), len(b)
    p1, p2 = a.sum() / n1, b.sum() / n2
    P = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(P * (1 - P) * (1.0 / n1 + 1.0 / n2))
    return float(z), float(2 * (1 - stats.norm.cdf(np.abs(z))))


# ---- numeric sample pairs ----

def pair(name, a, b):
    ka, kb = ints(a), ints(b)
    ra, rb = vals(ka), vals(kb)
    ks = stats.ks_2samp(ra, rb)
    return {
        "name": name,
        "ref": ka.tolist(),
        "cur": kb.tolist(),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein": float(stats.wasserstein_distance(ra, rb)),
        "wasserstein_norm": wasserstein_norm(ra, rb),
        "psi": psi(ra, rb, "num"),
        "kl": kl(ra, rb, "num"),
        "jensenshannon": js(ra, rb, "num"),
        "hellinger": hellinger(ra, rb, "num"),
        "chisquare": chisquare_ev(ra, rb) if len(set(ra.tolist()) | set(rb.tolist())) <= 30 else None,
        "z": z_ev(ra, rb) if len(set(ra.tolist()) | set(rb.tolist())) <= 30 else None,
    }


numeric = [
    pair("tiny 5 vs 7", rng.normal(0, 1, 5), rng.normal(0.5, 1, 7)),
    pair("equal 20 vs 20 shifted", rng.normal(0, 1, 20), rng.normal(0.8, 1, 20)),
    pair("ties 50 vs 37", np.round(rng.normal(0, 1, 50), 1), np.round(rng.normal(0.2, 1.2, 37), 1)),
    pair("identical", np.arange(30) / 7.0, np.arange(30) / 7.0),
    pair("1000 vs 800", rng.normal(10, 2, 1000), rng.normal(10.1, 2, 800)),
    pair("3000 vs 3000 strong shift", rng.normal(0, 1, 3000), rng.normal(1.0, 1, 3000)),
    pair("2000 vs 1500 gamma", rng.gamma(2.0, 1.5, 2000), rng.gamma(2.2, 1.5, 1500)),
    pair("few values 400 vs 300", rng.integers(0, 4, 400), rng.integers(0, 5, 300)),
    pair("binary 200 vs 150", rng.integers(0, 2, 200), (rng.random(150) < 0.6).astype(int)),
    pair("asymp 12000 vs 300", rng.normal(0, 1, 12000), rng.normal(0.1, 1, 300)),
    pair("asymp 15000 vs 60", rng.normal(0, 1, 15000), rng.normal(0.3, 1, 60)),
    pair("asymp 11000 vs 10500", rng.normal(0, 1, 11000), rng.normal(0.02, 1, 10500)),
    pair("asymp 20000 vs 12000 shifted", rng.normal(0, 1, 20000), rng.normal(0.25, 1, 12000)),
]

# ---- weighted Wasserstein (scipy's u_weights/v_weights) ----

weighted = []
for n1, n2 in [(10, 15), (200, 120)]:
    a = ints(rng.normal(0, 1, n1))
    b = ints(rng.normal(0.3, 1.3, n2))
    wa = rng.integers(1, 20, n1)
    wb = rng.integers(1, 20, n2)
    weighted.append({
        "ref": a.tolist(), "cur": b.tolist(),
        "ref_weights": wa.tolist(), "cur_weights": wb.tolist(),
        "wasserstein": float(stats.wasserstein_distance(vals(a), vals(b), wa, wb)),
    })

# ---- categorical pairs ----

def cat_pair(name, ref, cur):
    ref = np.array(ref, dtype=object)
    cur = np.array(cur, dtype=object)
    return {
        "name": name,
        "ref": ref.tolist(),
        "cur": cur.tolist(),
        "chisquare": chisquare_ev(ref, cur),
        "z": z_ev(ref, cur),
        "psi": psi(ref, cur, "cat"),
        "kl": kl(ref, cur, "cat"),
        "jensenshannon": js(ref, cur, "cat"),
        "hellinger": hellinger(ref, cur, "cat"),
    }


colors = np.array(["red", "green", "blue", "yellow"], dtype=object)
categorical = [
    cat_pair("four colours", rng.choice(colors, 500, p=[0.4, 0.3, 0.2, 0.1]),
             rng.choice(colors, 400, p=[0.35, 0.3, 0.2, 0.15])),
    cat_pair("new category", rng.choice(colors[:3], 300), rng.choice(colors, 200)),
    cat_pair("two values", rng.choice(colors[:2], 250, p=[0.7, 0.3]), rng.choice(colors[:2], 180, p=[0.6, 0.4])),
    cat_pair("one value each", ["a"] * 10, ["b"] * 12),
    cat_pair("same constant", ["a"] * 10, ["a"] * 12),
]

# ---- distribution functions ----

kstwo = []
for n in [1, 2, 5, 10, 50, 100, 140, 141, 500, 1000, 5000, 20000, 100000, 100001, 500000]:
    xs = {0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99}
    for c in [0.3, 0.6, 0.8, 0.87, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0]:
        x = c / np.sqrt(n)
        if x < 1:
            xs.add(float(x))
    xs.add(0.75 / n)
    xs.add(1.0 - 0.5 / n)
    for x in sorted(xs):
        kstwo.append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})

chi2 = []
for df in [1, 2, 3, 5, 10, 50, 100, 1000]:
    for x in sorted({0.01, 0.5, 1.0, df / 2, float(df), 2.0 * df, df + 5 * np.sqrt(df), 100.0, 1000.0}):
        chi2.append({"df": df, "x": float(x), "sf": float(stats.chi2.sf(x, df))})

contingency = []
for table in [[[10, 20], [30, 25]], [[3, 7], [9, 1]], [[12, 5, 9], [8, 15, 11]], [[100, 120, 90, 40], [80, 140, 60, 70], [5, 9, 12, 3]]]:
    for corr in (True, False):
        r = stats.chi2_contingency(table, correction=corr)
        contingency.append({"table": table, "correction": corr, "statistic": float(r.statistic),
                            "pvalue": float(r.pvalue), "dof": int(r.dof)})

out = {
    "generator": "stattest/testdata/gen.py",
    "scipy": scipy.__version__,
    "numpy": np.__version__,
    "scale": SCALE,
    "numeric": numeric,
    "weighted": weighted,
    "categorical": categorical,
    "kstwo": kstwo,
    "chi2": chi2,
    "contingency": contingency,
}


def finite(v):
    """JSON has no infinities: write them as the strings Go's tests read."""
    if isinstance(v, float) and not np.isfinite(v):
        return "NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v


out = finite(out)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"), allow_nan=False)
    f.write("\n")
print(f"wrote {path}: {len(numeric)} numeric, {len(categorical)} categorical, {len(kstwo)} kstwo, {len(chi2)} chi2")
