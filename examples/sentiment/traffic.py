"""Client traffic for the sentiment example: the comments of a CSV file
(gen_data.py's columns product, text, label) sent to the endpoint's MLflow
scoring route, --batch comments a request, each request with its own
X-Request-Id (PREFIX-N), so labels can be joined to the predictions later.

    python traffic.py data/week1.csv --prefix week1 --labels data/week1-labels.csv

--labels writes what customer care found when it read a share
(--label-share) of the comments: request_id,row,label, the file that
`kiln feedback send ENDPOINT -f FILE` uploads. Prints the predicted class mix.
The server is $KILN_URL, else http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import urllib.error
import urllib.request
from collections import Counter


def send(url: str, request_id: str, rows: list[dict[str, str]]) -> list[str]:
    """The predicted classes of rows (one request)."""
    body = {"dataframe_split": {"columns": ["product", "text"], "data": [[r["product"], r["text"]] for r in rows]}}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-Request-Id": request_id})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)["predictions"]
    except urllib.error.HTTPError as e:
        raise SystemExit(f"request {request_id}: {e.code} {e.read().decode(errors='replace')[:500]}") from None
    except urllib.error.URLError as e:
        raise SystemExit(f"cannot reach {url}: {e.reason}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("comments", help="CSV with columns product, text (and label for --labels)")
    ap.add_argument("--endpoint", default="dairy-sentiment")
    ap.add_argument("--prefix", default="comment", help="request ids are PREFIX-0, PREFIX-1, …")
    ap.add_argument("--batch", type=int, default=10, help="comments per request")
    ap.add_argument("--labels", help="write the reviewed labels here (CSV: request_id,row,label)")
    ap.add_argument("--label-share", type=float, default=0.5, help="share of the comments customer care reviewed")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.batch < 1:
        raise SystemExit("--batch must be at least 1")
    server = (os.environ.get("KILN_URL") or "http://127.0.0.1:5000").rstrip("/")
    url = f"{server}/endpoints/{a.endpoint}/invocations"
    with open(a.comments, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"product", "text"} <= set(rows[0]):
        raise SystemExit(f"{a.comments}: want a header with the columns product and text")
    if a.labels and "label" not in rows[0]:
        raise SystemExit(f"{a.comments}: --labels needs a label column")
    rng = random.Random(a.seed)
    predicted: Counter[str] = Counter()
    labels, right = [], 0
    for n, start in enumerate(range(0, len(rows), a.batch)):
        part = rows[start:start + a.batch]
        rid = f"{a.prefix}-{n}"
        preds = send(url, rid, part)
        predicted.update(preds)
        for i, (row, pred) in enumerate(zip(part, preds)):
            if a.labels and rng.random() < a.label_share:
                labels.append({"request_id": rid, "row": i, "label": row["label"]})
                right += pred == row["label"]
    if a.labels:
        with open(a.labels, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["request_id", "row", "label"])
            w.writeheader()
            w.writerows(labels)
    mix = ", ".join(f"{k} {v / len(rows):.0%}" for k, v in predicted.most_common())
    print(f"{len(rows)} comments in {n + 1} requests to {a.endpoint}: predicted {mix}", file=sys.stderr)
    if labels:
        print(f"{len(labels)} reviewed by customer care ({a.labels}): {right / len(labels):.0%} predicted right",
              file=sys.stderr)


if __name__ == "__main__":
    main()
