"""Governance: model cards, promotion gates and approvals
(docs/model-cards.md, docs/gates.md, docs/access.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from ._documents import Document, prepare
from ._resource import Resource, attr, one
from ._transport import API, Transport, quote

CARD_FORMATS = ("json", "markdown", "md", "html")


@dataclass
class ModelCard(Resource):
    """A model card in the Model Card Toolkit's sections."""

    schema_version: str = ""
    generated_at: str = ""
    notes: List[str] = attr(factory=list)
    model_details: Dict[str, Any] = attr(factory=dict)  # name, version, overview, description, owners, licenses, ...
    model_parameters: Dict[str, Any] = attr(factory=dict)  # flavors, params, input_format, output_format, data
    quantitative_analysis: Dict[str, Any] = attr(factory=dict)  # performance_metrics: [{type, value, slice, source}]
    considerations: Dict[str, Any] = attr(factory=dict)  # users, use_cases, limitations, tradeoffs, ethical_considerations

    @property
    def overview(self) -> str:
        return str(self.model_details.get("overview", ""))

    @property
    def metrics(self) -> List[Dict[str, Any]]:
        return list(self.quantitative_analysis.get("performance_metrics") or [])


@dataclass
class GatePolicy(Resource):
    """A stored gate policy: its document, the digest of its spec and its generation."""

    policy: Dict[str, Any] = attr(factory=dict)
    digest: str = ""
    generation: int = 0
    updated_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0

    @property
    def name(self) -> str:
        return str((self.policy.get("metadata") or {}).get("name", ""))


@dataclass
class AppliedGatePolicy(Resource):
    created: bool = False
    changed: bool = False
    policy: GatePolicy = attr(factory=GatePolicy, conv=one(GatePolicy))


@dataclass
class GateResult(Resource):
    """A gate evaluation of a model version: ``passed``, the metrics of the
    candidate and baseline, every check, and which failed."""

    id: str = ""
    policy: str = ""
    policy_digest: str = ""
    policy_generation: int = 0
    passed: bool = False
    rubber_stamp: bool = False
    task: str = ""
    candidate: Dict[str, Any] = attr(factory=dict)
    baseline: Optional[Dict[str, Any]] = None
    baseline_alias: str = ""
    data: Dict[str, Any] = attr(factory=dict)
    positive_class: str = ""
    classes: List[str] = attr(factory=list)
    metrics: List[Dict[str, Any]] = attr(factory=list)
    slices: List[Dict[str, Any]] = attr(factory=list)
    checks: List[Dict[str, Any]] = attr(factory=list)
    failed: List[str] = attr(factory=list)
    actor: str = ""
    time: int = 0
    duration_ms: int = 0
    confusion_matrix: Optional[Dict[str, Any]] = None

    def metric(self, name: str) -> Optional[float]:
        """The candidate's value of a metric (None when it could not be computed;
        KeyError when the policy has no such metric)."""
        for m in self.metrics:
            if m.get("name") == name:
                return m.get("candidate")
        raise KeyError(name)


@dataclass
class ApprovalPolicy(Resource):
    name: str = ""
    model: str = ""
    aliases: List[str] = attr(factory=list)
    endpoints: List[str] = attr(factory=list)
    required: int = 0
    generation: int = 0
    updated_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0


@dataclass
class ApprovalRequest(Resource):
    """A request for a version to take a protected alias or endpoint, with its votes."""

    request_id: str = ""
    policy: str = ""
    model: str = ""
    version: int = 0
    target_type: str = ""  # alias or endpoint
    target: str = ""
    requested_by: str = ""
    reason: str = ""
    state: str = ""  # pending, approved, rejected
    required: int = 0
    approvals: int = 0
    creation_time: int = 0
    decided_time: int = 0
    votes: List[Dict[str, Any]] = attr(factory=list)  # voter, decision, comment, time


class ModelCards:
    """``client.model_cards``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _path(self, model: str, version: int) -> str:
        return f"/models/{quote(model)}/versions/{int(version)}/card"

    def get(self, model: str, version: int) -> ModelCard:
        """The card of a registered model version, from stored metadata and its edited text."""
        return ModelCard.from_json(self._t.api("GET", self._path(model, version), query={"format": "json"}))

    def render(self, model: str, version: int, format: str = "markdown") -> str:
        """The card as Markdown or a self-contained HTML page."""
        if format not in CARD_FORMATS or format == "json":
            raise ValueError("format is markdown (md) or html")
        return self._t.request("GET", API + self._path(model, version), query={"format": format},
                               headers={"Accept": "text/html" if format == "html" else "text/markdown"}).text()

    def update(self, model: str, version: int, *, overview: Optional[str] = None, license: Optional[str] = None,
               users: Optional[Sequence[str]] = None, use_cases: Optional[Sequence[str]] = None,
               limitations: Optional[Sequence[str]] = None, tradeoffs: Optional[Sequence[str]] = None,
               ethical_considerations: Optional[Sequence[str]] = None) -> ModelCard:
        """Changes the edited text of a card: fields left None are kept, empty ones cleared."""
        body: Dict[str, Any] = {}
        if overview is not None:
            body["overview"] = overview
        if license is not None:
            body["license"] = license
        cons = {k: list(v) for k, v in (("users", users), ("use_cases", use_cases), ("limitations", limitations),
                                        ("tradeoffs", tradeoffs), ("ethical_considerations", ethical_considerations))
                if v is not None}
        if cons:
            body["considerations"] = cons
        return ModelCard.from_json(self._t.api("PUT", self._path(model, version), json_body=body, query={"format": "json"}))


class Gates:
    """``client.gates``: promotion gate policies and their results."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, *, model: Optional[str] = None) -> List[GatePolicy]:
        got = self._t.api("GET", "/gate-policies", query={"model": model})
        return [GatePolicy.from_json(p) for p in got.get("policies") or []]

    def get(self, name: str) -> GatePolicy:
        return GatePolicy.from_json(self._t.api("GET", f"/gate-policies/{quote(name)}"))

    def apply(self, doc: Document, *, name: Optional[str] = None) -> AppliedGatePolicy:
        """Creates or replaces a gate policy from its GatePolicy document."""
        n, d = prepare(doc, name, "GatePolicy")
        d.setdefault("apiVersion", "kiln.dev/v1")
        d.setdefault("kind", "GatePolicy")
        return AppliedGatePolicy.from_json(self._t.api("PUT", f"/gate-policies/{quote(n)}", json_body=d))

    def delete(self, name: str) -> None:
        self._t.api("DELETE", f"/gate-policies/{quote(name)}")

    def evaluate(self, name: str, version: int) -> GateResult:
        """Evaluates a version of the policy's model against its baseline,
        stores the result and tags the version (a failed gate is a result
        with passed False, not an error)."""
        return GateResult.from_json(self._t.api("POST", f"/gate-policies/{quote(name)}/evaluate",
                                                json_body={"version": int(version)}))

    def results(self, model: str, version: int, *, policy: Optional[str] = None) -> List[GateResult]:
        """The gate results of a model version, newest first."""
        got = self._t.api("GET", f"/models/{quote(model)}/versions/{int(version)}/gate-results", query={"policy": policy})
        return [GateResult.from_json(r) for r in got.get("results") or []]


class Approvals:
    """``client.approvals``: policies that hold back protected aliases and
    endpoints, and the requests people approve or reject."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def policies(self, *, model: Optional[str] = None) -> List[ApprovalPolicy]:
        got = self._t.api("GET", "/approval-policies", query={"model": model})
        return [ApprovalPolicy.from_json(p) for p in got.get("policies") or []]

    def get_policy(self, name: str) -> ApprovalPolicy:
        return ApprovalPolicy.from_json(self._t.api("GET", f"/approval-policies/{quote(name)}"))

    def put_policy(self, name: str, model: str, *, required: int = 1, aliases: Optional[Sequence[str]] = None,
                   endpoints: Optional[Sequence[str]] = None) -> ApprovalPolicy:
        """Creates or replaces a policy: required approvals before a version
        of model takes one of aliases or serves on one of endpoints."""
        body: Dict[str, Any] = {"name": name, "model": model, "required": int(required)}
        if aliases:
            body["aliases"] = list(aliases)
        if endpoints:
            body["endpoints"] = list(endpoints)
        return ApprovalPolicy.from_json(self._t.api("PUT", f"/approval-policies/{quote(name)}", json_body=body))

    def delete_policy(self, name: str) -> None:
        self._t.api("DELETE", f"/approval-policies/{quote(name)}")

    def requests(self, *, model: Optional[str] = None, state: Optional[str] = None,
                 limit: Optional[int] = None) -> List[ApprovalRequest]:
        """Requests, newest first, with their votes."""
        got = self._t.api("GET", "/approval-requests", query={"model": model, "state": state, "limit": limit})
        return [ApprovalRequest.from_json(r) for r in got.get("requests") or []]

    def get(self, request_id: str) -> ApprovalRequest:
        return ApprovalRequest.from_json(self._t.api("GET", f"/approval-requests/{quote(request_id)}"))

    def request(self, model: str, version: int, *, alias: Optional[str] = None, endpoint: Optional[str] = None,
                reason: Optional[str] = None) -> ApprovalRequest:
        """Asks for a version to take a protected alias or serve on a
        protected endpoint (a pending request for the same move is returned)."""
        if (alias is None) == (endpoint is None):
            raise ValueError("give exactly one of alias and endpoint")
        body: Dict[str, Any] = {"model": model, "version": int(version)}
        for k, v in (("alias", alias), ("endpoint", endpoint), ("reason", reason)):
            if v is not None:
                body[k] = v
        return ApprovalRequest.from_json(self._t.api("POST", "/approval-requests", json_body=body))

    def approve(self, request_id: str, *, comment: Optional[str] = None) -> ApprovalRequest:
        """Approves a pending request (not your own)."""
        body = {"comment": comment} if comment else {}
        return ApprovalRequest.from_json(self._t.api("POST", f"/approval-requests/{quote(request_id)}/approve", json_body=body))

    def reject(self, request_id: str, *, comment: Optional[str] = None) -> ApprovalRequest:
        """Rejects a pending request (not your own); it is closed."""
        body = {"comment": comment} if comment else {}
        return ApprovalRequest.from_json(self._t.api("POST", f"/approval-requests/{quote(request_id)}/reject", json_body=body))
