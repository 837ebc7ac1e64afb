"""Turns the measurements of bench/data/run.sh into results.json and
results.md.

    python3 bench/data/report.py TMPDIR RESULTS

TMPDIR holds steps.jsonl (one JSON object per timed step: case, tool,
step, seconds, load averages before and after, and the step's own JSON
output when it printed one), meta.json (machine, versions, scale, notes),
hash.json (hashing throughput), pandas.json and kiln-profile.json
(profiling). RESULTS is the output path without extension.
"""

import json
import sys
from pathlib import Path

tmp, results = Path(sys.argv[1]), sys.argv[2]
steps = [json.loads(line) for line in (tmp / "steps.jsonl").read_text().splitlines() if line.strip()]
meta = json.loads((tmp / "meta.json").read_text())
hashing = json.loads((tmp / "hash.json").read_text()) if (tmp / "hash.json").exists() else None
pandas = json.loads((tmp / "pandas.json").read_text()) if (tmp / "pandas.json").exists() else None
kprof = json.loads((tmp / "kiln-profile.json").read_text()) if (tmp / "kiln-profile.json").exists() else None


def t(case, tool, step):
    for s in steps:
        if (s["case"], s["tool"], s["step"]) == (case, tool, step):
            return s["seconds"]
    return None


def fmt_s(x):
    if x is None:
        return "–"
    return f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def ratio(dvc, kiln):
    if dvc is None or kiln is None or kiln <= 0:
        return None
    return dvc / kiln


def fmt_r(r):
    return "–" if r is None else f"**{r:.1f}×**"


# Each comparison: DVC's steps against Kiln's, summed.
small = f"{meta['small_files']:,} small files ({meta['small_mb']} MB)"
comparisons = [
    ("small", f"{small}: add + push", ["add", "push"], ["add"]),
    ("small", f"{small}: unchanged re-add + re-push", ["re-add", "re-push"], ["re-add"]),
    ("small", f"{small}: one file changed, add + push", ["add-1-changed", "push-1-changed"], ["add-1-changed"]),
    ("large", f"{meta['large_label']}: add + push", ["add", "push"], ["add"]),
    ("large", f"{meta['large_label']}: unchanged re-add + re-push", ["re-add", "re-push"], ["re-add"]),
]
def synced(case, tool, step):
    for s in steps:
        if (s["case"], s["tool"], s["step"]) == (case, tool, step):
            return s["seconds"] + s.get("sync_s", 0)
    return None


def total(xs):
    return None if None in xs else sum(xs)


rows = []
for case, label, dsteps, ksteps in comparisons:
    d = [t(case, "dvc", s) for s in dsteps]
    dt, kt = total(d), total([t(case, "kiln", s) for s in ksteps])
    ds, ks = total([synced(case, "dvc", s) for s in dsteps]), total([synced(case, "kiln", s) for s in ksteps])
    rows.append({"case": label, "dvc_s": dt, "dvc_steps": dict(zip(dsteps, d)), "kiln_s": kt, "ratio": ratio(dt, kt),
                 "dvc_synced_s": ds, "kiln_synced_s": ks, "ratio_synced": ratio(ds, ks)})

doc = {"meta": meta, "steps": steps, "comparisons": rows, "hashing": hashing, "profile": {"kiln": kprof, "pandas": pandas}}
Path(results + ".json").write_text(json.dumps(doc, indent=2) + "\n")

md = []
md.append(f"# bench/data results ({meta['date']})\n")
md.append(f"Machine: {meta['machine']}. Load average {meta['load_start']} at the start, {meta['load_end']} at the end. "
          f"DVC {meta['dvc']}; kiln {meta['kiln']}; {meta['b3sum']}; {meta['sha256sum']}.\n")
for n in meta.get("notes", []):
    md.append(f"- {n}")
md.append("")
md.append("## Kiln against DVC (wall time, one run each)\n")
md.append("| case | DVC | Kiln | DVC / Kiln | with write-back: DVC | Kiln | DVC / Kiln |")
md.append("|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    detail = " + ".join(f"{s} {fmt_s(v)}" for s, v in r["dvc_steps"].items())
    md.append(f"| {r['case']} | {fmt_s(r['dvc_s'])} ({detail}) | {fmt_s(r['kiln_s'])} | {fmt_r(r['ratio'])} "
              f"| {fmt_s(r['dvc_synced_s'])} | {fmt_s(r['kiln_synced_s'])} | {fmt_r(r['ratio_synced'])} |")
md.append("")
md.append("\"With write-back\" adds the `sync` right after each step: the time to get onto the disk what the step "
          "left in the page cache (DVC writes without fsync; Kiln's file:// store syncs each object before "
          "acknowledging it).\n")
md.append("## Every step\n")
md.append("| case | tool | step | wall | then sync | load before → after | what it did |")
md.append("|---|---|---|---:|---:|---|---|")
for s in steps:
    md.append(f"| {s['case']} | {s['tool']} | {s['step']} | {fmt_s(s['seconds'])} | {fmt_s(s.get('sync_s'))} "
              f"| {s['load_before']} → {s['load_after']} | {s.get('note', '')} |")
md.append("")
md.append("Load averages are the 1-minute figure of the whole machine and include this benchmark's own processes.")
md.append("")
if hashing:
    md.append(f"## Hashing throughput ({hashing['files']} files, {hashing['bytes'] / 2**30:.2f} GiB, page cache warm; best of {hashing['reps']})\n")
    md.append("| hasher | MB/s | time | Kiln's time / its time |")
    md.append("|---|---:|---:|---:|")
    k = hashing["results"]["kiln"]["seconds"]
    for name, r in hashing["results"].items():
        md.append(f"| {r['label']} | {r['mb_per_s']:.0f} | {r['seconds']:.2f} s | {k / r['seconds']:.2f} |")
    md.append("")
    md.append(f"Kiln's per-file digests equal b3sum's: {hashing['digests_match_b3sum']}.\n")
if kprof and pandas:
    md.append(f"## Profiling {pandas['rows']:,} rows × {pandas['columns']} columns of Parquet ({meta['profile_file_mb']:.0f} MB)\n")
    md.append("| | Kiln | pandas |")
    md.append("|---|---:|---:|")
    md.append(f"| read + profile / describe(include=\"all\") | {fmt_s(kprof['profile_s'])} | {fmt_s(pandas['total_s'])} "
              f"(read {fmt_s(pandas['read_s'])} + describe {fmt_s(pandas['describe_s'])}) |")
    md.append(f"| peak memory | {kprof['server_peak_rss_mb']:.0f} MB (kiln server, whole life) | {pandas['max_rss_mb']:.0f} MB |")
    md.append(f"| ratio | {fmt_r(pandas['total_s'] / kprof['profile_s'])} | |")
    md.append("")
    md.append(f"Kiln's time is `kiln data profile` of a freshly added version (computed on the server from its artifact "
              f"store; adding the file took {fmt_s(kprof['add_s'])} more). Cross-check: f3 count {kprof['check']['f3_count']} "
              f"(pandas {pandas['check']['f3_count']}), mean {kprof['check']['f3_mean']:.12g} (pandas {pandas['check']['f3_mean']:.12g}).\n")
Path(results + ".md").write_text("\n".join(md))
print("\n".join(md))
