"""Writes the drift benchmark's results.json and results.md from run.sh's
timings and both tools' outputs."""

import argparse
import json
import platform
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--kiln-exact", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--cpus", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = [json.loads(line) for line in open(a.runs)]
    kiln_runs = [r for r in runs if r["tool"] == "kiln" and r["mode"] == "sketch"]
    exact_run = next(r for r in runs if r["tool"] == "kiln" and r["mode"] == "exact")
    ev_runs = [r for r in runs if r["tool"] == "evidently"]
    kiln_s = statistics.median(r["wall_s"] for r in kiln_runs)
    kiln_best = min(r["wall_s"] for r in kiln_runs)
    ev = ev_runs[-1]["result"]
    ev_load = statistics.median(r["result"]["load_s"] for r in ev_runs)
    ev_compute = statistics.median(r["result"]["compute_s"] for r in ev_runs)
    ev_total = ev_load + ev_compute

    def agreement(path):
        k = json.load(open(path))
        rows, agree, max_abs, max_rel = [], 0, 0.0, 0.0
        for f in k["features"]:
            e = ev["columns"][f["name"]]
            same = f["method"] == e["method"] and f["drift"] == e["drift"]
            agree += same
            d = abs(f["score"] - e["score"])
            max_abs = max(max_abs, d)
            max_rel = max(max_rel, d / abs(e["score"]) if e["score"] else d)
            rows.append({"column": f["name"], "method": f["method"], "evidently_method": e["method"],
                         "score": f["score"], "evidently_score": e["score"], "drift": f["drift"],
                         "evidently_drift": e["drift"], "agree": same})
        return {"columns": rows, "agree": agree, "total": len(rows), "max_abs_score_diff": max_abs,
                "max_rel_score_diff": max_rel, "dataset_drift": k["dataset_drift"], "drifted": k["drifted"],
                "statistics": k["statistics"]}

    sketch, exact = agreement(a.kiln), agreement(a.kiln_exact)
    res = {
        "rows": {"reference": a.rows, "current": a.rows}, "columns": {"numeric": 20, "categorical": 5},
        "machine": {"cpus": a.cpus, "platform": platform.platform()},
        "kiln": {"wall_s_median": kiln_s, "wall_s_best": kiln_best, "runs": kiln_runs, "exact": exact_run},
        "evidently": {"load_s": ev_load, "compute_s": ev_compute, "total_s": ev_total, "runs": ev_runs},
        "ratio": ev_total / kiln_s, "ratio_best": ev_total / kiln_best, "ratio_exact": ev_total / exact_run["wall_s"],
        "target_ratio": 50,
        "evidently_dataset_drift": ev["dataset_drift"], "evidently_drifted": ev["drifted"],
        "agreement": {"sketch": sketch, "exact": exact},
    }
    for r in res["evidently"]["runs"]:
        r["result"] = {k: r["result"][k] for k in ("load_s", "compute_s")}
    with open(a.out + ".json", "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    loads = ", ".join(f"{r['load']:.2f}" for r in runs)
    md = [
        "# Drift: `kiln monitor drift` vs Evidently DataDriftPreset",
        "",
        f"{a.rows:,} reference × {a.rows:,} current rows, 20 numeric + 5 categorical columns "
        f"(8 drifted), Parquet; {a.cpus} CPUs; 1-minute load at the start of each step: {loads}.",
        "",
        "| | time | |",
        "|---|---|---|",
        f"| Evidently 0.7.23 | **{ev_total:.1f} s** | read_parquet {ev_load:.2f} s + DataDriftPreset run and dict {ev_compute:.1f} s |",
        f"| `kiln monitor drift` (sketches, default) | **{kiln_s:.2f} s** | whole command incl. reading, median of {len(kiln_runs)} (best {kiln_best:.2f} s) |",
        f"| `kiln monitor drift --exact` | {exact_run['wall_s']:.2f} s | every value held, one run |",
        "",
        f"Ratio: **{res['ratio']:.0f}×** faster with sketches on the median run ({res['ratio_best']:.0f}× on the best; "
        f"target ≥ 50×), {res['ratio_exact']:.0f}× with --exact.",
        "",
        f"Per-column decisions (test and drift flag) agreeing with Evidently: sketches {sketch['agree']}/{sketch['total']}, "
        f"--exact {exact['agree']}/{exact['total']}; dataset drift: Evidently {ev['dataset_drift']} "
        f"({ev['drifted']} columns), Kiln {sketch['dataset_drift']} ({sketch['drifted']}) / {exact['dataset_drift']} ({exact['drifted']}).",
        f"Largest score difference: sketches {sketch['max_abs_score_diff']:.4f} absolute; --exact "
        f"{exact['max_rel_score_diff']:.1e} relative.",
        "",
        "| column | test | Evidently score | Kiln (sketch) | Kiln (--exact) | drift (E / K / K exact) |",
        "|---|---|---|---|---|---|",
    ]
    for s, x in zip(sketch["columns"], exact["columns"]):
        md.append(f"| {s['column']} | {s['method']} | {s['evidently_score']:.5g} | {s['score']:.5g} | {x['score']:.5g} | "
                  f"{s['evidently_drift']} / {s['drift']} / {x['drift']} |")
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
