"""Pipeline scheduling overhead: kiln's local executor against `dvc repro`.

Two DAGs of trivial steps:
  chain   N steps in a line (each depends on the one before)
  fanout  1 root -> W parallel steps -> 1 join

Kiln: a `kiln server` (SQLite, a temporary folder) runs a Pipeline of
steps with command [true] (cache off, so every step runs); the run's times
come from the server (creation -> end) and the steps' from their records.
overhead per step = (run wall time - sum of the steps' own durations) / steps
for the chain (nothing overlaps), and wall time / steps for the fan-out
(steps overlap, so the sum means nothing there).

DVC: dvc init --no-scm in a temporary folder, dvc.yaml with the same DAG
(stages with cmd `touch <out>`: DVC needs each stage's out to exist, and
deps on the upstream outs), `dvc repro` timed from start to end, run once
to warm up (the .dvc folder, its caches), then with --force.

Prints a Markdown table. Usage:
  python bench.py --kiln bin/kiln --dvc bench/data/.venv-dvc/bin/dvc [--chain 100] [--fanout 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url}: {e.code} {e.read().decode(errors='replace')}") from None


def chain(n: int) -> list[dict]:
    return [{"name": f"s{i}", "command": ["true"], **({"depends_on": [f"s{i-1}"]} if i else {})} for i in range(n)]


def fanout(w: int) -> list[dict]:
    return ([{"name": "root", "command": ["true"]}]
            + [{"name": f"f{i}", "command": ["true"], "depends_on": ["root"]} for i in range(w)]
            + [{"name": "join", "command": ["true"], "depends_on": [f"f{i}" for i in range(w)]}])


class Kiln:
    def __init__(self, exe: str, tmp: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(tmp / "kiln.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
        self.proc = subprocess.Popen([exe, "server", "--addr", f"127.0.0.1:{port}", "--grpc-addr", "",
                                      "--db", f"sqlite://{tmp}/kiln.db", "--artifacts", f"file://{tmp}/artifacts"],
                                     cwd=tmp, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"kiln server did not start; see {tmp}/kiln.log")
                time.sleep(0.05)

    def run(self, name: str, steps: list[dict]) -> dict:
        doc = {"apiVersion": "kiln.dev/v1", "kind": "Pipeline", "metadata": {"name": name},
               "spec": {"cache": False, "steps": steps}}
        http("PUT", f"{self.url}/api/v1/pipelines/{name}", doc)
        run = http("POST", f"{self.url}/api/v1/pipelines/{name}/runs", {})["run"]
        while True:
            r = http("GET", f"{self.url}/api/v1/pipeline-runs/{run['run_id']}")
            if r["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.02)
        if r["state"] != "succeeded":
            raise RuntimeError(f"run {r['run_id']} {r['state']}: {r.get('error')}")
        wall = (r["end_time"] - r["creation_time"]) / 1000
        busy = sum(s["end_time"] - s["start_time"] for s in r["steps"]) / 1000
        return {"wall": wall, "busy": busy, "steps": len(r["steps"])}

    def close(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def dvc_yaml(steps: list[dict]) -> str:
    stages = {}
    for s in steps:
        stages[s["name"]] = {"cmd": f"touch {s['name']}.out",
                             "deps": [f"{d}.out" for d in s.get("depends_on", [])] or None,
                             "outs": [{f"{s['name']}.out": {"cache": False}}]}
        if stages[s["name"]]["deps"] is None:
            del stages[s["name"]]["deps"]
    return json.dumps({"stages": stages})  # JSON is YAML


def dvc_run(dvc: str, tmp: Path, name: str, steps: list[dict], repeat: int) -> list[float]:
    d = tmp / f"dvc-{name}"
    d.mkdir()
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=d, env=env, check=True)
    (d / "dvc.yaml").write_text(dvc_yaml(steps))
    subprocess.run([dvc, "repro", "-q"], cwd=d, env=env, check=True)  # warm-up, writes dvc.lock
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([dvc, "repro", "-q", "--force"], cwd=d, env=env, check=True)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--dvc", required=True)
    ap.add_argument("--chain", type=int, default=100)
    ap.add_argument("--fanout", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-kiln", action="store_true")
    ap.add_argument("--skip-dvc", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kiln-pipeline-bench-"))
    dags = {"chain": chain(a.chain), "fanout": fanout(a.fanout)}
    res: dict = {}
    try:
        if not a.skip_kiln:
            k = Kiln(a.kiln, tmp)
            try:
                for name, steps in dags.items():
                    k.run(f"warm-{name}", steps[:3] if name == "chain" else fanout(3))
                    res[("kiln", name)] = [k.run(f"bench-{name}-{i}", steps) for i in range(a.repeat)]
            finally:
                k.close()
        if not a.skip_dvc:
            for name, steps in dags.items():
                res[("dvc", name)] = dvc_run(a.dvc, tmp, name, steps, a.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"| DAG | steps | kiln wall (median of {a.repeat}) | kiln overhead / step | dvc repro wall | dvc / step | dvc ÷ kiln |")
    print("|---|---|---|---|---|---|---|")
    for name, steps in dags.items():
        n = len(steps)
        kr, dr = res.get(("kiln", name)), res.get(("dvc", name))
        kw = statistics.median(r["wall"] for r in kr) if kr else None
        if kr and name == "chain":
            ko = statistics.median((r["wall"] - r["busy"]) / r["steps"] for r in kr)
        elif kr:
            ko = kw / n
        dw = statistics.median(dr) if dr else None
        cell = lambda v, unit="s": "—" if v is None else (f"{v * 1000:.1f} ms" if unit == "ms" else f"{v:.2f} s")
        ratio = f"{dw / kw:.1f}×" if kw and dw else "—"
        label = f"chain of {a.chain}" if name == "chain" else f"fan-out 1 → {a.fanout} → 1"
        print(f"| {label} | {n} | {cell(kw)} | {cell(ko if kr else None, 'ms')} | {cell(dw)} | "
              f"{cell(dw / n if dw else None, 'ms')} | {ratio} |")
    print(f"\nkiln overhead/step: chain = (wall - sum of step durations) / steps; fan-out = wall / steps "
          f"(steps overlap). Target: < 20 ms. Machine: {os.cpu_count()} CPUs.")


if __name__ == "__main__":
    main()
