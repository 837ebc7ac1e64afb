"""Helpers of test_monitoring.py: seeded traffic, a webhook receiver that
checks Kiln's X-Kiln-Signature, the reference statistics of the drift
tests (scipy, as Evidently computes them) and small HTTP helpers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

KILN_BIN = os.environ.get("KILN_BIN", str(Path(__file__).resolve().parents[2] / "bin" / "kiln"))
NUMERIC = ["f0", "f1", "f2", "f3"]
FEATURES = NUMERIC + ["plan"]
PLANS = ["basic", "plus", "pro"]


def draw(rng: np.random.Generator, n: int, drifted: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """n rows of the four numeric features and the plan, and their true
    class. Drifted rows shift f0, f1, f2 and the plan mix; f3 stays."""
    f = rng.normal(size=(n, 4))
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])
    if drifted:
        f[:, 0] += 2.5
        f[:, 1] = 2 * f[:, 1] + 2
        f[:, 2] -= 2.5
        plan = rng.choice(PLANS, n, p=[0.1, 0.2, 0.7])
    logit = f[:, 0] + 0.5 * f[:, 1] - 0.7 * f[:, 2] + 0.3 * f[:, 3] + 1.0 * (plan == "pro") - 0.5 * (plan == "basic")
    y = (logit + rng.normal(scale=0.8, size=n) > 0).astype(np.int64)
    df = pd.DataFrame({c: f[:, i].astype(np.float32) for i, c in enumerate(NUMERIC)})
    df["plan"] = plan
    return df, y


@dataclass
class Hook:
    """One request the webhook received."""

    path: str
    headers: dict
    body: bytes
    signature_ok: bool

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    """A loopback HTTP server that records every POST and checks its
    signature: X-Kiln-Signature = "sha256=" + hex HMAC-SHA256(secret,
    X-Kiln-Timestamp + "." + body) (monitor/alert/deliver.go, Sign)."""

    def __init__(self, secret: str):
        self.secret = secret.encode()
        self.hooks: list[Hook] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ts = self.headers.get("X-Kiln-Timestamp", "")
                want = "sha256=" + hmac.new(outer.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(self.headers.get("X-Kiln-Signature", ""), want)
                with outer.lock:
                    outer.hooks.append(Hook(self.path, dict(self.headers.items()), body, ok))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kiln-alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[Hook]:
        with self.lock:
            return list(self.hooks)

    def wait_for(self, n: int, timeout: float = 60) -> list[Hook]:
        """Waits until at least n requests came (delivery is asynchronous)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.received()
            if len(got) >= n:
                return got
            time.sleep(0.1)
        raise AssertionError(f"the webhook received {len(self.received())} requests within {timeout}s, want {n}: "
                             f"{[h.body[:300] for h in self.received()]}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scipy_drift(method: str, ref: pd.Series, cur: pd.Series) -> float:
    """The p-value of Evidently's test: ks = scipy.stats.ks_2samp; chi2 =
    scipy.stats.chisquare of the current counts against the reference
    shares over the union of categories."""
    if method == "ks":
        return float(stats.ks_2samp(ref.to_numpy(np.float64), cur.to_numpy(np.float64)).pvalue)
    if method == "chi2":
        cats = sorted(set(ref) | set(cur))
        rc = ref.value_counts().reindex(cats, fill_value=0).to_numpy(np.float64)
        cc = cur.value_counts().reindex(cats, fill_value=0).to_numpy(np.float64)
        return float(stats.chisquare(cc, rc / rc.sum() * cc.sum()).pvalue)
    raise AssertionError(f"unexpected method {method}")


def outlier_rows(ref: pd.DataFrame, cur: pd.DataFrame) -> int:
    """Rows of cur with a numeric feature outside the reference's [min, max]."""
    out = np.zeros(len(cur), dtype=bool)
    for c in NUMERIC:
        out |= (cur[c] < ref[c].min()).to_numpy() | (cur[c] > ref[c].max()).to_numpy()
    return int(out.sum())


EXTERNAL_REF = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def metric_value(text: str, name: str, labels: dict) -> float | None:
    """The value of a Prometheus sample with (at least) these labels."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line[len(name):line.rindex("}") + 1]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def kiln_cli(url: str, *args: str, stdin: str | None = None, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and k != "MLFLOW_TRACKING_URI"}
    env.update(KILN_URL=url, KILN_ACTOR="pytest")
    if cache is not None:
        env["KILN_CACHE_DIR"] = str(cache)
    p = subprocess.run([KILN_BIN, *args], env=env, input=stdin, capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        raise AssertionError(f"kiln {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p
