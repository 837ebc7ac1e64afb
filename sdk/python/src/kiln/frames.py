"""pandas helpers: score a DataFrame through a deployed endpoint with
request ids, and turn answers into columns. pandas is imported when
these are called, never by ``import kiln``."""

from __future__ import annotations

import json
import math
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ._transport import Transport, quote

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

MAX_REQUEST_ID = 128


def _columns(pred: Any, out: Dict[str, Any]) -> None:
    """Flattens one row's prediction into out: a scalar is "prediction",
    a list "prediction_<k>", an object one column per output (a list
    output as "<name>_<k>", a per-class map as "<name>_<class>")."""
    if isinstance(pred, dict):
        for name, v in pred.items():
            if isinstance(v, list):
                for k, x in enumerate(v):
                    out[f"{name}_{k}"] = x
            elif isinstance(v, dict):
                for k, x in v.items():
                    out[f"{name}_{k}"] = x
            else:
                out[name] = v
    elif isinstance(pred, list):
        for k, x in enumerate(pred):
            out[f"prediction_{k}"] = x
    else:
        out["prediction"] = pred


def predictions_to_rows(preds: Any, n: int) -> List[Dict[str, Any]]:
    """The per-row columns of an /invocations answer for n rows."""
    if isinstance(preds, dict):  # several outputs, answered as whole outputs
        rows: List[Dict[str, Any]] = [{} for _ in range(n)]
        for name, v in preds.items():
            if not isinstance(v, list) or len(v) != n:
                raise ValueError(f"output {name!r} of the answer does not have one value per row")
            for i, x in enumerate(v):
                _columns({name: x}, rows[i])
        return rows
    if not isinstance(preds, list) or len(preds) != n:
        got = len(preds) if isinstance(preds, list) else type(preds).__name__
        raise ValueError(f"the endpoint answered {got} predictions for {n} rows")
    rows = []
    for p in preds:
        r: Dict[str, Any] = {}
        _columns(p, r)
        rows.append(r)
    return rows


def _cell(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None  # a missing value (NaN for float inputs, an error for others)
    if v is not None and type(v).__name__ == "NaTType":
        return None
    return v


def _json_default(v: Any) -> Any:
    if hasattr(v, "isoformat"):  # datetime, date, pandas Timestamp
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars left in object columns
        return v.item()
    if isinstance(v, (bytes, bytearray)):
        import base64

        return base64.b64encode(v).decode("ascii")  # binary columns are base64 in MLflow's JSON
    return str(v)


def split_json(df: "pd.DataFrame") -> Dict[str, Any]:
    """df as MLflow's ``dataframe_split`` (columns, data), every value
    exact: floats at full precision (float32 as the double of the same
    value), NaN and NaT as null."""
    cols = [df[c].tolist() for c in df.columns]  # Python scalars, column by column
    data = [[_cell(v) for v in row] for row in zip(*cols)] if cols else [[] for _ in range(len(df))]
    return {"columns": [str(c) for c in df.columns], "data": data}


def predict_frame(t: Transport, endpoint: str, df: "pd.DataFrame", *, batch_size: int = 1000,
                  request_id_prefix: Optional[str] = None, timeout: Optional[float] = None) -> "pd.DataFrame":
    """Sends df to the endpoint's MLflow scoring route in batches of
    batch_size rows, each a request with its own id, and returns one row
    per input row (same index): ``request_id`` and ``row`` (the keys that
    labels join on), then the predictions."""
    import pandas as pd

    if batch_size < 1:
        raise ValueError("batch_size is at least 1")
    prefix = request_id_prefix or uuid.uuid4().hex[:16]
    if len(prefix) > MAX_REQUEST_ID - 8:
        raise ValueError(f"request_id_prefix is at most {MAX_REQUEST_ID - 8} characters")
    frames = []
    for b, start in enumerate(range(0, len(df), batch_size)):
        part = df.iloc[start:start + batch_size]
        rid = f"{prefix}-{b:06d}"
        body = json.dumps({"dataframe_split": split_json(part)}, ensure_ascii=False, allow_nan=False,
                          default=_json_default).encode("utf-8")
        resp = t.request("POST", f"/endpoints/{quote(endpoint)}/invocations", data=body, content_type="application/json",
                         headers={"X-Request-Id": rid}, timeout=timeout)
        got_id = resp.headers.get("X-Request-Id") or rid
        rows = predictions_to_rows(resp.json().get("predictions"), len(part))
        out = pd.DataFrame(rows, index=part.index)
        out.insert(0, "row", range(len(part)))
        out.insert(0, "request_id", got_id)
        frames.append(out)
    if not frames:
        return pd.DataFrame({"request_id": pd.Series(dtype=str), "row": pd.Series(dtype="int64")}, index=df.index)
    return pd.concat(frames)
