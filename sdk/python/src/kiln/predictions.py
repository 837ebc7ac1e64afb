"""The prediction log of deployed endpoints: every request they answered,
shipped to the artifact store as Parquet (docs/prediction-log.md).
Predictions come only from serving; this module reads them."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, List, Union

from ._resource import Resource
from ._transport import API, Transport, quote, time_param

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TimeArg = Union[datetime, timedelta, int, float, str, None]


@dataclass
class Segment(Resource):
    """One shipped segment of the log (a Parquet object in the artifact store)."""

    id: str = ""
    endpoint: str = ""
    replica: str = ""
    start: str = ""
    end: str = ""
    requests: int = 0
    rows: int = 0
    size_bytes: int = 0
    object_key: str = ""
    created: str = ""


@dataclass
class Erasure(Resource):
    """What erasing a subject's records did."""

    endpoint: str = ""
    segments_scanned: int = 0
    segments_rewritten: int = 0
    segments_deleted: int = 0
    records_deleted: int = 0
    rows_deleted: int = 0
    leftovers_deleted: int = 0
    subject_digest: str = ""


class Predictions:
    """``client.predictions``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def flush(self, endpoint: str) -> None:
        """Ships the endpoint's local log segments now: afterwards every
        prediction this server logged before the call can be read."""
        self._t.api("POST", f"/endpoints/{quote(endpoint)}/predictions/flush")

    def segments(self, endpoint: str, *, start: TimeArg = None, end: TimeArg = None) -> List[Segment]:
        """The shipped segments overlapping [start, end), oldest first."""
        got = self._t.api("GET", f"/endpoints/{quote(endpoint)}/predictions/segments",
                          query={"from": time_param(start), "to": time_param(end)})
        return [Segment.from_json(s) for s in got.get("segments") or []]

    def download(self, endpoint: str, dest: Union[str, "os.PathLike[str]", io.BufferedIOBase, io.RawIOBase, None] = None, *,
                 start: TimeArg = None, end: TimeArg = None, format: str = "parquet") -> bytes:
        """The log over [start, end) as one Parquet (or "jsonl") file: one
        row per predicted row, the request's metadata, then ``inputs.*``
        and ``outputs.*`` columns. Written to dest (a path or a binary file)
        when given, else returned."""
        if format not in ("parquet", "jsonl"):
            raise ValueError("format is parquet or jsonl")
        q = {"from": time_param(start), "to": time_param(end), "format": format}
        path = f"{API}/endpoints/{quote(endpoint)}/predictions"
        accept = {"Accept": "application/vnd.apache.parquet" if format == "parquet" else "application/x-ndjson"}
        if dest is None:
            return self._t.request("GET", path, query=q, headers=accept).body
        if isinstance(dest, (str, os.PathLike)):
            with open(dest, "wb") as f:
                self._t.request("GET", path, query=q, headers=accept, stream_to=f)
        else:
            self._t.request("GET", path, query=q, headers=accept, stream_to=dest)  # type: ignore[arg-type]
        return b""

    def frame(self, endpoint: str, *, start: TimeArg = None, end: TimeArg = None, flush: bool = True,
              successful_only: bool = False) -> "pd.DataFrame":
        """The log over [start, end) as a pandas DataFrame (Parquet through
        pyarrow when installed, else JSON Lines). flush ships this server's
        latest records first; successful_only keeps status < 400 rows."""
        import pandas as pd

        if flush:
            self.flush(endpoint)
        try:
            import pyarrow  # noqa: F401

            df = pd.read_parquet(io.BytesIO(self.download(endpoint, start=start, end=end)))
        except ImportError:
            body = self.download(endpoint, start=start, end=end, format="jsonl")
            df = pd.read_json(io.BytesIO(body), lines=True) if body.strip() else pd.DataFrame(
                columns=["timestamp", "request_id", "row", "endpoint", "route", "model", "model_version",
                         "protocol", "latency_ms", "status", "error", "subject", "outliers"])
        if successful_only and len(df):
            df = df[(df["status"] < 400) & (df["error"].fillna("") == "")].reset_index(drop=True)
        return df

    def erase(self, endpoint: str, subject: str) -> Erasure:
        """Erases every logged prediction of a subject key (right to erasure)."""
        got = self._t.api("POST", f"/endpoints/{quote(endpoint)}/predictions/erase", json_body={"subject": subject})
        return Erasure.from_json(got)
