"""Endpoints: registered model versions served inside ``kiln server``,
their routes, rollouts, live figures and change history
(``/api/v1/endpoints``; docs/deployments.md), and MLflow-scoring calls to
them (``/endpoints/NAME/invocations``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from . import errors
from ._documents import Document, prepare
from ._resource import Resource, attr, one
from ._transport import Transport, quote

ROLLOUT_ACTIONS = ("promote", "pause", "resume", "rollback")


@dataclass
class LiveRoute(Resource):
    """A route as it serves now: the model version it resolved to, its
    weight and load state (loading, ready, failed, unloaded)."""

    name: str = ""
    model: str = ""
    version: int = 0
    weight: float = 0.0
    state: str = ""
    reason: str = ""


@dataclass
class EndpointState(Resource):
    """An endpoint's document (``endpoint``) and what it does now (``status``)."""

    endpoint: Dict[str, Any] = attr(factory=dict)
    status: Dict[str, Any] = attr(factory=dict)

    @property
    def name(self) -> str:
        return str((self.endpoint.get("metadata") or {}).get("name", ""))

    @property
    def spec(self) -> Dict[str, Any]:
        return dict(self.endpoint.get("spec") or {})

    @property
    def routes(self) -> List[LiveRoute]:
        return [LiveRoute.from_json(r) for r in self.status.get("routes") or []]

    @property
    def rollout(self) -> Optional[Dict[str, Any]]:
        """phase (progressing, paused, succeeded, rolled_back, failed), step, stable, candidate, ..."""
        return self.status.get("rollout")

    @property
    def ready(self) -> bool:
        """Every route is loaded and ready."""
        rs = self.routes
        return bool(rs) and all(r.state == "ready" for r in rs)


@dataclass
class ApplyResult(Resource):
    """What an apply did: ``created`` (201), ``changed``, the resulting
    state (the current one for a dry run; None for a dry run that would
    create), and the unified ``diff`` of the stored document."""

    created: bool = False
    changed: bool = False
    dry_run: bool = False
    state: Optional[EndpointState] = attr(conv=one(EndpointState))
    diff: str = ""


@dataclass
class EndpointEvent(Resource):
    """A recorded change of an endpoint: who, when (ms), what, why."""

    id: int = 0
    endpoint: str = ""
    time: int = 0
    actor: str = ""
    action: str = ""
    reason: str = ""
    detail: Optional[Dict[str, Any]] = None


@dataclass
class RouteStats(Resource):
    """Live figures of the endpoint (kind "endpoint"), a route, variant or shadow.
    ``total`` and ``window`` have requests, errors, error_rate, p50_ms, p90_ms, p99_ms."""

    name: str = ""
    kind: str = ""
    model: str = ""
    version: int = 0
    weight: float = 0.0
    total: Dict[str, Any] = attr(factory=dict)
    window: Dict[str, Any] = attr(factory=dict)
    window_seconds: float = 0.0
    rps: float = 0.0
    shadow: Optional[Dict[str, Any]] = None
    capacity: Optional[Dict[str, Any]] = None


@dataclass
class Prediction(Resource):
    """The answer of an /invocations call: ``predictions`` as MLflow's
    scoring server shapes them, and the request id that labels join on."""

    predictions: Any = None
    request_id: str = ""


class Endpoints:
    """``client.endpoints``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self) -> List[EndpointState]:
        """Every endpoint of the workspace, by name, with its status."""
        return [EndpointState.from_json(e) for e in self._t.api("GET", "/endpoints").get("endpoints") or []]

    def get(self, name: str) -> EndpointState:
        return EndpointState.from_json(self._t.api("GET", f"/endpoints/{quote(name)}"))

    def apply(self, doc: Document, *, name: Optional[str] = None, dry_run: bool = False,
              reason: Optional[str] = None) -> ApplyResult:
        """Creates or changes an endpoint from its Endpoint document (a dict,
        or YAML/JSON text), idempotently. An invalid document raises
        InvalidArgument whose ``details`` name the fields."""
        n, d = prepare(doc, name, "Endpoint")
        d.setdefault("apiVersion", "kiln.dev/v1")
        d.setdefault("kind", "Endpoint")
        got = self._t.api("PUT", f"/endpoints/{quote(n)}", json_body=d, query={"dry_run": dry_run or None, "reason": reason})
        return ApplyResult.from_json(got)

    def delete(self, name: str, *, reason: Optional[str] = None) -> None:
        """Deletes an endpoint (its events stay)."""
        self._t.api("DELETE", f"/endpoints/{quote(name)}", query={"reason": reason})

    def rollout(self, name: str, action: str, *, reason: Optional[str] = None) -> EndpointState:
        """promote, pause, resume or rollback the endpoint's rollout."""
        if action not in ROLLOUT_ACTIONS:
            raise ValueError(f"unknown rollout action {action!r}: want one of {', '.join(ROLLOUT_ACTIONS)}")
        body = {"reason": reason} if reason else {}
        return EndpointState.from_json(self._t.api("POST", f"/endpoints/{quote(name)}/rollout/{action}", json_body=body))

    def promote(self, name: str, *, reason: Optional[str] = None) -> EndpointState:
        """Gives the candidate all traffic now."""
        return self.rollout(name, "promote", reason=reason)

    def pause(self, name: str, *, reason: Optional[str] = None) -> EndpointState:
        """Holds a progressing rollout at its step."""
        return self.rollout(name, "pause", reason=reason)

    def resume(self, name: str, *, reason: Optional[str] = None) -> EndpointState:
        """Continues a paused rollout (or retries a rolled back one)."""
        return self.rollout(name, "resume", reason=reason)

    def rollback(self, name: str, *, reason: Optional[str] = None) -> EndpointState:
        """Puts all traffic back on the stable version at once."""
        return self.rollout(name, "rollback", reason=reason)

    def stats(self, name: str) -> List[RouteStats]:
        """Live figures: the whole endpoint first, then its routes, variants and shadow."""
        got = self._t.api("GET", f"/endpoints/{quote(name)}/stats")
        return [RouteStats.from_json(s) for s in got.get("stats") or []]

    def events(self, name: str, *, limit: Optional[int] = None) -> List[EndpointEvent]:
        """The endpoint's recorded changes, newest first (at most limit, ≤ 1000)."""
        got = self._t.api("GET", f"/endpoints/{quote(name)}/events", query={"limit": limit})
        return [EndpointEvent.from_json(e) for e in got.get("events") or []]

    def wait_ready(self, name: str, *, timeout: float = 120.0, poll: float = 0.2) -> EndpointState:
        """Waits until every route of the endpoint is loaded; raises
        InvalidState when a route failed to load, DeadlineExceeded at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.get(name)
            failed = [r for r in st.routes if r.state == "failed"]
            if failed:
                raise errors.InvalidState(f"endpoint {name}: route {failed[0].name} failed to load: {failed[0].reason}")
            if st.ready:
                return st
            if time.monotonic() > deadline:
                raise errors.DeadlineExceeded(f"endpoint {name} was not ready within {timeout:g}s: "
                                              f"{[(r.name, r.state) for r in st.routes]}")
            time.sleep(poll)

    def invoke(self, name: str, body: Mapping[str, Any], *, request_id: Optional[str] = None,
               headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> Prediction:
        """One MLflow-scoring call (``POST /endpoints/NAME/invocations``) with
        a JSON body (``dataframe_split``, ``dataframe_records``,
        ``instances`` or ``inputs``); request_id is sent as X-Request-Id
        (the server makes one when absent) and answered back."""
        h = dict(headers or {})
        if request_id:
            h["X-Request-Id"] = request_id
        data = json.dumps(body, ensure_ascii=False, allow_nan=True).encode("utf-8")
        resp = self._t.request("POST", f"/endpoints/{quote(name)}/invocations", data=data,
                               content_type="application/json", headers=h, timeout=timeout)
        got = resp.json()
        return Prediction(raw=got, predictions=got.get("predictions") if isinstance(got, dict) else got,
                          request_id=resp.headers.get("X-Request-Id") or request_id or "")

    def predict(self, name: str, records: List[Mapping[str, Any]], *, request_id: Optional[str] = None) -> Prediction:
        """Predictions for rows given as records ({column: value})."""
        return self.invoke(name, {"dataframe_records": list(records)}, request_id=request_id)

    @staticmethod
    def document(name: str, model: str, *, version: Optional[int] = None, alias: Optional[str] = None,
                 logging: Optional[Mapping[str, Any]] = None, **spec: Any) -> Dict[str, Any]:
        """A one-route Endpoint document for a registered model's version or alias."""
        if (version is None) == (alias is None):
            raise ValueError("give exactly one of version and alias")
        route: Dict[str, Any] = {"name": "main", "weight": 100}
        if version is not None:
            route["version"] = str(version)
        else:
            route["alias"] = alias
        s: Dict[str, Any] = {"model": model, "routes": [route], **spec}
        if logging is not None:
            s["logging"] = dict(logging)
        return {"apiVersion": "kiln.dev/v1", "kind": "Endpoint", "metadata": {"name": name}, "spec": s}
