"""The anchor side of bench/features/run.sh: online lookups from Python.

* direct: Python's sqlite3 and redis-py reading Kiln's own layout (the
  SQLite file and the Redis keys that the Go benchmark loaded), the floor of
  what a Python client of the same data costs;
* feast: Feast's SqliteOnlineStore and RedisOnlineStore ``online_read`` on
  ``--feast-entities`` entities x 100 Float64 features written with its own
  ``online_write_batch`` (when feast is installed).

It prints a table with p50/p99 latency (µs) and single-thread throughput,
the Kiln figures parsed from the Go benchmark output, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import struct
import sys
import time
from pathlib import Path


def pct(lat: list[int], cpu_ns: int) -> tuple[float, float, float, float]:
    """p50 and p99 (µs), lookups/s of one thread, CPU µs per lookup."""
    lat = sorted(lat)
    total = sum(lat)
    return lat[len(lat) // 2] / 1e3, lat[len(lat) * 99 // 100] / 1e3, len(lat) / (total / 1e9), cpu_ns / 1e3 / len(lat)


def measure(fn, make_keys, iters: int) -> tuple[float, float, float]:
    for _ in range(min(200, iters)):  # warm up
        fn(make_keys())
    lat = []
    cpu0 = time.process_time_ns()
    for _ in range(iters):
        keys = make_keys()
        t0 = time.perf_counter_ns()
        got = fn(keys)
        lat.append(time.perf_counter_ns() - t0)
        if got is None:
            raise SystemExit("lookup found nothing")
    return pct(lat, time.process_time_ns() - cpu0)


def bench_key(i: int) -> str:
    return f"customer_id={i}"


def direct(args, results: dict) -> None:
    view = "bench_online"
    rng = random.Random(5)
    if args.sqlite and Path(args.sqlite).exists():
        con = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True, check_same_thread=False)
        qs = {}

        def sqlite_get(keys):
            q = qs.get(len(keys))
            if q is None:
                q = qs[len(keys)] = (
                    "SELECT entity_key, event_time, created_time, value FROM feature_online "
                    f"WHERE view = ? AND entity_key IN ({','.join('?' * len(keys))})"
                )
            rows = {r[0]: r for r in con.execute(q, (view, *keys))}
            out = [rows.get(k) for k in keys]
            return out if out[-1] is not None else None

        for n in (1, 10):
            results[f"direct-sqlite/keys={n}"] = measure(
                sqlite_get, lambda: [bench_key(rng.randrange(args.entities)) for _ in range(n)], args.iters
            )
    if args.redis:
        import redis

        r = redis.Redis.from_url(args.redis)

        def decode(b):
            if b is None:
                return None
            ev, cr = struct.unpack(">QQ", b[1:17])
            return (ev ^ (1 << 63), cr ^ (1 << 63), b[17:])

        def redis_get(keys):
            rk = [f"kiln:fs:{view}:{k}" for k in keys]
            vals = [r.get(rk[0])] if len(rk) == 1 else r.mget(rk)
            out = [decode(v) for v in vals]
            return out if out[-1] is not None else None

        for n in (1, 10):
            results[f"direct-redis/keys={n}"] = measure(
                redis_get, lambda: [bench_key(rng.randrange(args.entities)) for _ in range(n)], args.iters
            )


def feast_bench(args, results: dict, info: dict) -> None:
    try:
        import feast  # noqa: F401
    except ImportError as e:
        info["feast"] = f"not installed ({e})"
        return
    from feast_side import run_feast

    info["feast"] = run_feast(args, results, measure)


def kiln_go(path: str) -> dict:
    out = {}
    if not path or not Path(path).exists():
        return out
    for line in Path(path).read_text().splitlines():
        m = re.match(r"BenchmarkOnline(Get|GetParallel)/(\w+)/keys=(\d+)-\d+\s+\d+\s+([\d.]+) ns/op(.*)", line)
        if not m:
            continue
        kind, store, n, nsop, rest = m.groups()
        d = out.setdefault(f"kiln-{store}/keys={n}", {})
        if kind == "Get":
            p50 = re.search(r"([\d.]+) p50-µs", rest)
            p99 = re.search(r"([\d.]+) p99-µs", rest)
            cpu = re.search(r"([\d.]+) cpu-µs/op", rest)
            d.update(p50=float(p50.group(1)), p99=float(p99.group(1)), tput1=1e9 / float(nsop),
                     cpu=float(cpu.group(1)) if cpu else 0.0)
        else:
            d["tput"] = 1e9 / float(nsop)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln-go", default="")
    ap.add_argument("--sqlite", default="")
    ap.add_argument("--redis", default="")
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--value", type=int, default=1000)
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--feast-entities", type=int, default=100_000)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--json", default="")
    ap.add_argument("--skip-feast", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))

    results: dict = {}
    info: dict = {"entities": args.entities, "feast_entities": args.feast_entities, "iters": args.iters}
    direct(args, results)
    if not args.skip_feast:
        feast_bench(args, results, info)
    kiln = kiln_go(args.kiln_go)

    print(f"{'side':28} {'p50 µs':>9} {'p99 µs':>9} {'CPU µs':>8} {'lookups/s 1 thread':>19} {'parallel':>9}")
    for k, (p50, p99, tput, cpu) in results.items():
        print(f"{k:28} {p50:9.1f} {p99:9.1f} {cpu:8.1f} {tput:19.0f}")
    for k, d in kiln.items():
        par = f"{d['tput']:9.0f}" if "tput" in d else ""
        print(f"{k:28} {d.get('p50', 0):9.1f} {d.get('p99', 0):9.1f} {d.get('cpu', 0):8.1f} {d.get('tput1', 0):19.0f} {par}")
    print("ratios (anchor / kiln, >1 = kiln faster):")
    for store, anchors in (("embedded", ("direct-sqlite", "feast-sqlite")), ("redis", ("direct-redis", "feast-redis"))):
        for n in (1, 10):
            kd = kiln.get(f"kiln-{store}/keys={n}")
            if not kd or "p50" not in kd:
                continue
            for a in anchors:
                ad = results.get(f"{a}/keys={n}")
                if ad:
                    cpu = f"  CPU {ad[3] / kd['cpu']:6.2f}x" if kd.get("cpu") else ""
                    print(f"  {a:14} vs kiln-{store:8} keys={n:<2}  p50 {ad[0] / kd['p50']:6.2f}x  p99 {ad[1] / kd['p99']:6.2f}x{cpu}")
    print("info:", json.dumps(info))
    if args.json:
        Path(args.json).write_text(json.dumps({"anchor": results, "kiln": kiln, "info": info}, indent=1))


if __name__ == "__main__":
    main()
