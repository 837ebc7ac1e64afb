"""Client traffic for the closed-loop example: the rows of a table file sent
to the endpoint's MLflow scoring route, --batch rows a request.

  python traffic.py data/drifted-traffic.parquet               # every row once
  python traffic.py data/drifted-traffic.parquet --seconds 60  # over and over, for a minute

The server is $KILN_URL, else http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

import pandas as pd


def send(url: str, frame: pd.DataFrame) -> int:
    body = json.dumps({"dataframe_split": {"columns": list(frame.columns),
                                           "data": frame.astype(float).values.tolist()}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table")
    ap.add_argument("--endpoint", default="closed-loop")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=0, help="repeat the rows for this long (0: once)")
    ap.add_argument("--rate", type=float, default=20, help="requests per second at most")
    a = ap.parse_args()
    server = (os.environ.get("KILN_URL") or "http://127.0.0.1:5000").rstrip("/")
    url = f"{server}/endpoints/{a.endpoint}/invocations"
    df = pd.read_parquet(a.table)
    end = time.time() + a.seconds
    sent = failed = 0
    while True:
        for start in range(0, len(df), a.batch):
            t = time.time()
            code = send(url, df.iloc[start:start + a.batch])
            sent += 1
            failed += code != 200
            if a.seconds and time.time() > end:
                break
            time.sleep(max(0.0, 1 / a.rate - (time.time() - t)))
        if not a.seconds or time.time() > end:
            break
    print(f"{sent} requests to {a.endpoint}, {failed} failed", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
