"""Pipelines (DAGs of steps run by the server), their runs and step logs
(``/api/v1/pipelines``, ``/api/v1/pipeline-runs``; docs/pipelines.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional

from . import errors
from ._documents import Document, prepare
from ._resource import Page, Resource, attr, many, one, paginate
from ._transport import Transport, quote

TERMINAL_RUN_STATES = ("succeeded", "failed", "cancelled")


@dataclass
class StepRun(Resource):
    """A step of a run: state (pending, queued, running, succeeded, failed,
    skipped, cached, cancelled, upstream_failed), attempt, outputs, ..."""

    step: str = ""
    state: str = ""
    attempt: int = 0
    cache_key: str = ""
    cached_from: str = ""
    tracking_run_id: str = ""
    outputs: Dict[str, str] = attr(factory=dict)
    exit_code: Optional[int] = None
    error: str = ""
    executor: str = ""
    handle: str = ""
    owner: str = ""
    start_time: int = 0
    end_time: int = 0
    next_attempt_time: int = 0


@dataclass
class PipelineRun(Resource):
    """A run of a pipeline; ``steps`` and ``spec`` only when read by id."""

    run_id: str = ""
    pipeline: str = ""
    generation: int = 0
    state: str = ""
    parameters: Dict[str, str] = attr(factory=dict)
    no_cache: bool = False
    cause: Dict[str, Any] = attr(factory=dict)
    created_by: str = ""
    resumed_from: str = ""
    tracking_run_id: str = ""  # the MLflow parent run
    experiment_id: str = ""
    error: str = ""
    creation_time: int = 0
    start_time: int = 0
    end_time: int = 0
    steps: List[StepRun] = attr(factory=list, conv=many(StepRun))
    spec: Optional[Dict[str, Any]] = None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_RUN_STATES

    def step(self, name: str) -> StepRun:
        for s in self.steps:
            if s.step == name:
                return s
        raise KeyError(name)


@dataclass
class Pipeline(Resource):
    """A stored pipeline: its document, generation and newest run."""

    apiVersion: str = ""
    kind: str = ""
    metadata: Dict[str, Any] = attr(factory=dict)
    spec: Dict[str, Any] = attr(factory=dict)
    generation: int = 0
    updated_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0
    last_run: Optional[PipelineRun] = attr(conv=one(PipelineRun))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def document(self) -> Dict[str, Any]:
        return {"apiVersion": self.apiVersion, "kind": self.kind, "metadata": self.metadata, "spec": self.spec}


@dataclass
class AppliedPipeline(Resource):
    created: bool = False
    changed: bool = False
    pipeline: Pipeline = attr(factory=Pipeline, conv=one(Pipeline))


@dataclass
class StartedRun(Resource):
    """A started run; ``created`` False when a dedup key named an earlier one."""

    created: bool = False
    run: PipelineRun = attr(factory=PipelineRun, conv=one(PipelineRun))


@dataclass
class LogChunk(Resource):
    step: str = ""
    attempt: int = 0
    seq: int = 0
    time: int = 0
    data: str = ""


@dataclass
class StepLog(Resource):
    """Chunks of a step attempt's output; ``next_after`` asks for more."""

    chunks: List[LogChunk] = attr(factory=list, conv=many(LogChunk))
    next_after: int = 0

    @property
    def text(self) -> str:
        return "".join(c.data for c in self.chunks)


class Pipelines:
    """``client.pipelines``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self) -> List[Pipeline]:
        return [Pipeline.from_json(p) for p in self._t.api("GET", "/pipelines").get("pipelines") or []]

    def get(self, name: str) -> Pipeline:
        return Pipeline.from_json(self._t.api("GET", f"/pipelines/{quote(name)}"))

    def apply(self, doc: Document, *, name: Optional[str] = None) -> AppliedPipeline:
        """Creates or replaces a pipeline from its Pipeline document, idempotently."""
        n, d = prepare(doc, name, "Pipeline")
        d.setdefault("apiVersion", "kiln.dev/v1")
        d.setdefault("kind", "Pipeline")
        return AppliedPipeline.from_json(self._t.api("PUT", f"/pipelines/{quote(n)}", json_body=d))

    def delete(self, name: str) -> None:
        """Deletes a pipeline; its active runs are cancelled, its history stays."""
        self._t.api("DELETE", f"/pipelines/{quote(name)}")

    def run(self, name: str, parameters: Optional[Mapping[str, Any]] = None, *, no_cache: bool = False,
            dedup_key: Optional[str] = None, wait: bool = False, timeout: float = 600.0) -> PipelineRun:
        """Starts a run (parameters are checked against the spec's); with
        wait, returns when it has ended (see wait)."""
        body: Dict[str, Any] = {}
        if parameters:
            body["parameters"] = {k: _param(v) for k, v in parameters.items()}
        if no_cache:
            body["no_cache"] = True
        if dedup_key:
            body["dedup_key"] = dedup_key
        started = StartedRun.from_json(self._t.api("POST", f"/pipelines/{quote(name)}/runs", json_body=body))
        return self.wait(started.run.run_id, timeout=timeout) if wait else started.run

    def runs_page(self, name: Optional[str] = None, *, state: Optional[str] = None, limit: Optional[int] = None,
                  page_token: Optional[str] = None) -> Page[PipelineRun]:
        """One page of runs (of one pipeline), newest first, without steps.
        state may be "active" for those not yet finished."""
        q = {"pipeline": name, "state": state, "limit": limit, "page_token": page_token}
        got = self._t.api("GET", "/pipeline-runs", query=q)
        return Page([PipelineRun.from_json(r) for r in got.get("runs") or []], got.get("next_page_token") or None)

    def iter_runs(self, name: Optional[str] = None, *, state: Optional[str] = None,
                  page_size: Optional[int] = None) -> Iterator[PipelineRun]:
        """Every run (of one pipeline), newest first, page after page."""
        return paginate(lambda tok: self.runs_page(name, state=state, limit=page_size, page_token=tok))

    def runs(self, name: Optional[str] = None, *, state: Optional[str] = None,
             limit: Optional[int] = None) -> List[PipelineRun]:
        """The runs (of one pipeline), newest first: all of them, or the newest limit."""
        return list(paginate(lambda tok: self.runs_page(name, state=state, limit=min(limit or 1000, 1000), page_token=tok),
                             limit=limit))

    def get_run(self, run_id: str) -> PipelineRun:
        """A run with its steps and the spec it started with."""
        return PipelineRun.from_json(self._t.api("GET", f"/pipeline-runs/{quote(run_id)}"))

    def cancel(self, run_id: str, *, reason: Optional[str] = None) -> PipelineRun:
        body = {"reason": reason} if reason else {}
        return PipelineRun.from_json(self._t.api("POST", f"/pipeline-runs/{quote(run_id)}/cancel", json_body=body))

    def resume(self, run_id: str, *, parameters: Optional[Mapping[str, Any]] = None, no_cache: bool = False,
               dedup_key: Optional[str] = None) -> PipelineRun:
        """Starts a new run that reuses the succeeded steps of a failed or cancelled one."""
        body: Dict[str, Any] = {}
        if parameters is not None:
            body["parameters"] = {k: _param(v) for k, v in parameters.items()}
        if no_cache:
            body["no_cache"] = True
        if dedup_key:
            body["dedup_key"] = dedup_key
        return StartedRun.from_json(self._t.api("POST", f"/pipeline-runs/{quote(run_id)}/resume", json_body=body)).run

    def wait(self, run_id: str, *, timeout: float = 600.0, poll: float = 0.25) -> PipelineRun:
        """Waits until the run has ended (succeeded, failed or cancelled) and
        returns it; DeadlineExceeded after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get_run(run_id)
            if r.done:
                return r
            if time.monotonic() > deadline:
                raise errors.DeadlineExceeded(f"pipeline run {run_id} is still {r.state} after {timeout:g}s")
            time.sleep(poll)

    def logs(self, run_id: str, step: str, *, attempt: Optional[int] = None, after: Optional[int] = None,
             limit: Optional[int] = None) -> StepLog:
        """A step attempt's output (stdout and stderr merged), the chunks after
        sequence number after; attempt 0 or None is the latest."""
        got = self._t.api("GET", f"/pipeline-runs/{quote(run_id)}/steps/{quote(step)}/logs",
                          query={"attempt": attempt, "after": after, "limit": limit})
        return StepLog.from_json(got)

    def log_text(self, run_id: str, step: str, *, attempt: Optional[int] = None) -> str:
        """The whole output of a step attempt, every page read."""
        out, after = [], 0
        while True:
            page = self.logs(run_id, step, attempt=attempt, after=after)
            out.append(page.text)
            if not page.chunks or page.next_after <= after:
                return "".join(out)
            after = page.next_after

    def triggers(self, name: str) -> List[Dict[str, Any]]:
        """The states of the pipeline's schedules and triggers."""
        return list(self._t.api("GET", f"/pipelines/{quote(name)}/triggers").get("states") or [])


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
