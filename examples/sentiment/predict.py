"""Ask the dairy-sentiment endpoint about a few comments and print the
predicted class with its probabilities (Open Inference Protocol REST,
POST /v2/models/ENDPOINT/infer, which returns both outputs).

    python predict.py                                     # the built-in comments
    python predict.py "milk: The milk was sour" "cheese: Lovely brie!"

Each argument is PRODUCT: COMMENT. The server is $KILN_URL, else
http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

COMMENTS = [
    ("milk", "The milk was fresh and creamy, my kids love it!"),
    ("cheese", "Terrible cheese, it was mouldy and smelled awful. Never again."),
    ("butter", "Do you deliver the salted butter to York?"),
    ("ice cream", "Best salted caramel ice cream I have had in years :)"),
    ("yoghurt", "The Greek yoghurt was sour and the lid was broken, very disappointed."),
]


def infer(server: str, endpoint: str, comments: list[tuple[str, str]]) -> list[tuple[str, list[float]]]:
    """(label, probabilities) per comment; probabilities in the model's class order."""
    n = len(comments)
    body = {"inputs": [
        {"name": "product", "shape": [n, 1], "datatype": "BYTES", "data": [p for p, _ in comments]},
        {"name": "text", "shape": [n, 1], "datatype": "BYTES", "data": [t for _, t in comments]},
    ]}
    req = urllib.request.Request(f"{server}/v2/models/{endpoint}/infer", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            out = {o["name"]: o for o in json.load(r)["outputs"]}
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{endpoint}: {e.code} {e.read().decode(errors='replace')[:500]}") from None
    except urllib.error.URLError as e:
        raise SystemExit(f"cannot reach {server}: {e.reason}") from None
    probs = out["probabilities"]["data"]
    k = out["probabilities"]["shape"][1]
    return [(out["label"]["data"][i], probs[i * k:(i + 1) * k]) for i in range(n)]


def parse(arg: str) -> tuple[str, str]:
    product, sep, text = arg.partition(":")
    if not sep or not product.strip() or not text.strip():
        raise SystemExit(f"{arg!r}: want PRODUCT: COMMENT, e.g. \"milk: The milk was sour\"")
    return product.strip(), text.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("comments", nargs="*", help="PRODUCT: COMMENT")
    ap.add_argument("--endpoint", default="dairy-sentiment")
    a = ap.parse_args()
    server = (os.environ.get("KILN_URL") or "http://127.0.0.1:5000").rstrip("/")
    comments = [parse(c) for c in a.comments] or COMMENTS
    # The classes in the model's order: scikit-learn sorts them.
    classes = ["negative", "neutral", "positive"]
    for (product, text), (label, probs) in zip(comments, infer(server, a.endpoint, comments)):
        shown = "  ".join(f"{c[:3]} {p:.2f}" for c, p in zip(classes, probs))
        print(f"{label:<9} ({shown})  [{product}] {text}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
