"""Ground-truth labels of logged predictions, and the performance Kiln
computes from them (``/api/v1/endpoints/E/feedback``, ``…/performance``;
docs/feedback.md)."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from ._resource import Resource, attr, many
from ._transport import API, Transport, csv_param, duration_param, quote, time_param

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TimeArg = Union[datetime, timedelta, int, float, str, None]
MAX_LABELS = 1_000_000  # per request (the server's bound)

_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
}


@dataclass
class Label(Resource):
    """A stored label: the request id and row of the prediction, the label,
    when it arrived and the upload format."""

    request_id: str = ""
    row: int = 0
    label: Any = None
    received_time: str = ""
    source: str = ""


@dataclass
class PerformanceWindow(Resource):
    """One window of prediction time: labelled and logged counts, metrics,
    why some are undefined, and per slice: column → value → metric → value."""

    start: str = ""
    end: str = ""
    labelled: int = 0
    predictions: int = 0
    metrics: Dict[str, float] = attr(factory=dict)
    undefined: Dict[str, str] = attr(factory=dict)
    slices: Dict[str, Dict[str, Dict[str, float]]] = attr(factory=dict)
    slice_labelled: Dict[str, Dict[str, int]] = attr(factory=dict)


@dataclass
class Performance(Resource):
    """Quality of the labelled predictions of an endpoint."""

    endpoint: str = ""
    task: str = ""
    from_: str = attr("", json="from")
    to: str = ""
    window: str = ""
    prediction: str = ""
    classes: List[str] = attr(factory=list)
    positive_class: str = ""
    metrics: List[str] = attr(factory=list)
    labelled: int = 0
    predictions: int = 0
    notes: List[str] = attr(factory=list)
    windows: List[PerformanceWindow] = attr(factory=list, conv=many(PerformanceWindow))

    def frame(self) -> "pd.DataFrame":
        """One row per window: start, end, labelled, predictions, then one column per metric."""
        import pandas as pd

        rows = [{"start": pd.Timestamp(w.start), "end": pd.Timestamp(w.end), "labelled": w.labelled,
                 "predictions": w.predictions, **w.metrics} for w in self.windows]
        return pd.DataFrame(rows, columns=["start", "end", "labelled", "predictions", *self.metrics])


def _plain(v: Any, what: str) -> Any:
    """A JSON value of a numpy/pandas scalar; NaN and None are errors."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        raise ValueError(f"{what} is missing")
    if isinstance(v, (str, bool)):
        return v
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(f"{what} is missing")
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    return str(v)


class Feedback:
    """``client.feedback``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def send(self, endpoint: str, labels: Iterable[Mapping[str, Any]]) -> int:
        """Stores labels, each ``{"request_id", "row" (default 0), "label"}``,
        in one transaction (all or none); returns how many were accepted.
        A later label for the same request id and row replaces the earlier."""
        body = []
        for i, lab in enumerate(labels):
            body.append({"request_id": str(_plain(lab["request_id"], f"label {i}: request_id")),
                         "row": int(_plain(lab.get("row", 0), f"label {i}: row")),
                         "label": _plain(lab["label"], f"label {i}: label")})
        if not body:
            return 0
        got = self._t.api("POST", f"/endpoints/{quote(endpoint)}/feedback", json_body=body)
        return int(got.get("accepted", 0))

    def send_one(self, endpoint: str, request_id: str, label: Any, *, row: int = 0) -> int:
        """Stores one label."""
        return self.send(endpoint, [{"request_id": request_id, "row": row, "label": label}])

    def send_file(self, endpoint: str, file: Union[str, "os.PathLike[str]", IO[bytes]], *,
                  content_type: Optional[str] = None, id_column: Optional[str] = None,
                  row_column: Optional[str] = None, label_column: Optional[str] = None) -> int:
        """Uploads a CSV, JSON Lines, JSON or Parquet file of labels (the
        format from the file's suffix, or content_type); the columns are
        request_id, row (optional) and label unless named otherwise."""
        if isinstance(file, (str, os.PathLike)):
            path = os.fspath(file)
            ct = content_type or _CONTENT_TYPES.get(os.path.splitext(path)[1].lower())
            if not ct:
                raise ValueError(f"cannot tell the format of {path}: name content_type")
            with open(path, "rb") as f:
                data = f.read()
        else:
            if not content_type:
                raise ValueError("content_type is needed for a file object")
            ct, data = content_type, file.read()
        got = self._t.request("POST", f"{API}/endpoints/{quote(endpoint)}/feedback", data=data, content_type=ct,
                              query={"id_column": id_column, "row_column": row_column, "label_column": label_column}).json()
        return int(got.get("accepted", 0))

    def send_frame(self, endpoint: str, df: "pd.DataFrame", *, request_id_col: str = "request_id",
                   label_col: str = "label", row_col: Optional[str] = "row", batch_size: int = 100_000) -> int:
        """Sends the labels of a DataFrame: one per row, from its request id,
        label and (when the column exists) row columns. Each batch of
        batch_size labels is stored in one transaction. Returns the labels
        accepted."""
        if not 0 < batch_size <= MAX_LABELS:
            raise ValueError(f"batch_size is 1 to {MAX_LABELS}")
        for c in (request_id_col, label_col):
            if c not in df.columns:
                raise KeyError(f"the DataFrame has no column {c!r} (it has {list(df.columns)[:20]})")
        ids = df[request_id_col].tolist()
        labs = df[label_col].tolist()
        rows: Sequence[Any] = df[row_col].tolist() if row_col and row_col in df.columns else [0] * len(df)
        total = 0
        for start in range(0, len(ids), batch_size):
            chunk = [{"request_id": ids[i], "row": rows[i], "label": labs[i]}
                     for i in range(start, min(start + batch_size, len(ids)))]
            try:
                total += self.send(endpoint, chunk)
            except ValueError as e:
                raise ValueError(f"rows {start}..{start + len(chunk) - 1} of the DataFrame: {e}") from None
        return total

    def get(self, endpoint: str, request_id: str) -> List[Label]:
        """The labels of one request, by row (NotFound when it has none)."""
        got = self._t.api("GET", f"/endpoints/{quote(endpoint)}/feedback/{quote(request_id)}")
        return [Label.from_json(x) for x in got.get("labels") or []]

    def performance(self, endpoint: str, *, start: TimeArg = None, end: TimeArg = None,
                    window: Union[timedelta, str, int, float, None] = None, task: Optional[str] = None,
                    metrics: Union[str, Iterable[str], None] = None, slice_by: Union[str, Iterable[str], None] = None,
                    route: Optional[str] = None, prediction: Optional[str] = None,
                    positive_class: Optional[str] = None) -> Performance:
        """Quality metrics of the labelled predictions made in [start, end)
        (default the last 24 hours), per window and per slice."""
        q = {"from": time_param(start), "to": time_param(end), "window": duration_param(window), "task": task,
             "metrics": csv_param(metrics), "slice_by": csv_param(slice_by), "route": route,
             "prediction": prediction, "positive_class": positive_class}
        return Performance.from_json(self._t.api("GET", f"/endpoints/{quote(endpoint)}/performance", query=q))

