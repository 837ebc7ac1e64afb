"""Monitors (drift, outliers, performance of an endpoint's traffic, with
alert rules), alert receivers and alerts (``/api/v1/monitors``,
``/api/v1/alert-receivers``, ``/api/v1/alerts``; docs/monitors.md,
docs/alerts.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Union

from ._documents import Document, prepare
from ._resource import Resource, attr, one
from ._transport import Transport, quote, time_param

TimeArg = Union[datetime, timedelta, int, float, str, None]


@dataclass
class MonitorResult(Resource):
    """One evaluation of a monitor: status (ok, drift, no_data, error),
    the window, the reference, the traffic, and the drift, outlier and
    performance reports and alert transitions (docs/monitors.md, "Results")."""

    id: str = ""
    monitor: str = ""
    endpoint: str = ""
    generation: int = 0
    time: str = ""
    window_start: str = ""
    window_end: str = ""
    duration_seconds: float = 0.0
    status: str = ""
    message: str = ""
    reference: Optional[Dict[str, Any]] = None
    traffic: Optional[Dict[str, Any]] = None
    drift: Optional[Dict[str, Any]] = None
    prediction_drift: Optional[Dict[str, Any]] = None
    outliers: Optional[Dict[str, Any]] = None
    performance: Optional[Dict[str, Any]] = None
    alerts: List[Dict[str, Any]] = attr(factory=list)

    @property
    def drifted_features(self) -> List[str]:
        return [f["name"] for f in (self.drift or {}).get("features") or [] if f.get("drift")]


@dataclass
class Monitor(Resource):
    """A stored monitor: its document, generation, next run and, when
    listed or read, its latest result and number of firing alerts."""

    monitor: Dict[str, Any] = attr(factory=dict)
    generation: int = 0
    updated_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0
    next_run: int = 0
    latest: Optional[MonitorResult] = attr(conv=one(MonitorResult))
    firing_alerts: int = 0

    @property
    def name(self) -> str:
        return str((self.monitor.get("metadata") or {}).get("name", ""))

    @property
    def endpoint(self) -> str:
        return str((self.monitor.get("spec") or {}).get("endpoint", ""))


@dataclass
class AppliedMonitor(Resource):
    created: bool = False
    changed: bool = False
    monitor: Monitor = attr(factory=Monitor, conv=one(Monitor))


@dataclass
class AppliedReceiver(Resource):
    created: bool = False
    changed: bool = False
    receiver: Dict[str, Any] = attr(factory=dict)  # secrets and header values as "***"


@dataclass
class Alert(Resource):
    """An active alert (pending or firing) of a monitor's rule."""

    monitor: str = ""
    rule: str = ""
    fingerprint: str = ""
    labels: Dict[str, str] = attr(factory=dict)
    annotations: Dict[str, str] = attr(factory=dict)
    severity: str = ""
    state: str = ""
    value: float = 0.0
    active_since: str = ""
    fired_at: str = ""
    resolved_at: str = ""
    last_eval: str = ""


@dataclass
class AlertEvent(Resource):
    """A change of an alert's state (``from_`` → ``state``)."""

    id: str = ""
    monitor: str = ""
    rule: str = ""
    fingerprint: str = ""
    labels: Dict[str, str] = attr(factory=dict)
    from_: str = attr("", json="from")
    state: str = ""
    value: float = 0.0
    time: str = ""
    detail: Optional[Dict[str, Any]] = None


class Monitors:
    """``client.monitors``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, *, endpoint: Optional[str] = None) -> List[Monitor]:
        """Every monitor (of an endpoint), with its latest result."""
        got = self._t.api("GET", "/monitors", query={"endpoint": endpoint})
        return [Monitor.from_json(m) for m in got.get("monitors") or []]

    def get(self, name: str) -> Monitor:
        return Monitor.from_json(self._t.api("GET", f"/monitors/{quote(name)}"))

    def apply(self, doc: Document, *, name: Optional[str] = None) -> AppliedMonitor:
        """Creates or replaces a monitor from its Monitor document, idempotently."""
        n, d = prepare(doc, name, "Monitor")
        d.setdefault("apiVersion", "kiln.dev/v1")
        d.setdefault("kind", "Monitor")
        return AppliedMonitor.from_json(self._t.api("PUT", f"/monitors/{quote(n)}", json_body=d))

    def delete(self, name: str) -> None:
        """Deletes a monitor with its results (its alerts resolve; the history stays)."""
        self._t.api("DELETE", f"/monitors/{quote(name)}")

    def run(self, name: str) -> MonitorResult:
        """Evaluates the monitor now, stores and returns the result."""
        return MonitorResult.from_json(self._t.api("POST", f"/monitors/{quote(name)}/run"))

    def results(self, name: str, *, start: TimeArg = None, end: TimeArg = None,
                limit: Optional[int] = None) -> List[MonitorResult]:
        """The monitor's results evaluated in [start, end), oldest first (the newest limit)."""
        got = self._t.api("GET", f"/monitors/{quote(name)}/results",
                          query={"from": time_param(start), "to": time_param(end), "limit": limit})
        return [MonitorResult.from_json(r) for r in got.get("results") or []]

    def report(self, name: str) -> str:
        """The monitor's self-contained HTML report."""
        return self._t.request("GET", f"/api/v1/monitors/{quote(name)}/report", headers={"Accept": "text/html"}).text()


class AlertReceivers:
    """``client.alert_receivers``: where alerts are delivered (webhook, slack, alertmanager)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self) -> List[Dict[str, Any]]:
        return list(self._t.api("GET", "/alert-receivers").get("receivers") or [])

    def get(self, name: str) -> Dict[str, Any]:
        return dict(self._t.api("GET", f"/alert-receivers/{quote(name)}"))

    def apply(self, doc: Document, *, name: Optional[str] = None) -> AppliedReceiver:
        """Creates or replaces a receiver ("***" keeps a stored secret)."""
        n, d = prepare(doc, name, "AlertReceiver")
        d.setdefault("apiVersion", "kiln.dev/v1")
        d.setdefault("kind", "AlertReceiver")
        return AppliedReceiver.from_json(self._t.api("PUT", f"/alert-receivers/{quote(n)}", json_body=d))

    def delete(self, name: str) -> None:
        self._t.api("DELETE", f"/alert-receivers/{quote(name)}")


class Alerts:
    """``client.alerts``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, *, monitor: Optional[str] = None, state: Optional[str] = None) -> List[Alert]:
        """The pending and firing alerts (of a monitor; in one state)."""
        got = self._t.api("GET", "/alerts", query={"monitor": monitor})
        out = [Alert.from_json(a) for a in got.get("alerts") or []]
        return [a for a in out if state is None or a.state == state]

    def firing(self, *, monitor: Optional[str] = None) -> List[Alert]:
        return self.list(monitor=monitor, state="firing")

    def history(self, *, monitor: Optional[str] = None, rule: Optional[str] = None, start: TimeArg = None,
                end: TimeArg = None, limit: Optional[int] = None) -> List[AlertEvent]:
        """Alert state changes, newest first (at most limit, default 100)."""
        got = self._t.api("GET", "/alerts/history", query={"monitor": monitor, "rule": rule, "from": time_param(start),
                                                           "to": time_param(end), "limit": limit})
        return [AlertEvent.from_json(e) for e in got.get("events") or []]

