"""Seeds a kiln server for the browser tests: runs seed(ctx) of every module
in seeds/ (in name order; only those whose name contains $KILN_UI_ONLY when
it is set) and writes the facts they record as JSON, keyed by module name
(seeds/models.py's facts are facts.models in the tests).

    python seed.py http://127.0.0.1:PORT facts.json
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

import requests


class Ctx:
    def __init__(self, url: str):
        self.url = url
        self.password = os.environ["KILN_UI_ADMIN_PASSWORD"]
        self.tmp = Path(os.environ.get("KILN_UI_TMP", "/tmp"))
        self.kiln_bin = os.environ.get("KILN_BIN", "kiln")
        self.facts: dict = {}
        self.http = requests.Session()
        self.http.auth = ("admin", self.password)
        os.environ["MLFLOW_TRACKING_URI"] = url
        os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
        os.environ["MLFLOW_TRACKING_PASSWORD"] = self.password
        os.environ["KILN_URL"] = url  # the kiln CLI

    def api(self, method: str, path: str, **kw):
        """Calls the native API (/api/v1…) and returns the decoded JSON."""
        r = self.http.request(method, self.url + path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else {}


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    ctx = Ctx(url)
    here = Path(__file__).parent / "seeds"
    only = os.environ.get("KILN_UI_ONLY", "")
    for f in sorted(here.glob("*.py")):
        if f.name.startswith("_") or only not in f.stem:
            continue
        spec = importlib.util.spec_from_file_location(f"seeds.{f.stem}", f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print(f"seeding {f.stem}", flush=True)
        ctx.facts[f.stem] = mod.seed(ctx) or {}
    Path(out).write_text(json.dumps(ctx.facts, indent=1))


if __name__ == "__main__":
    main()
