"""Batch scoring: a model over a dataset version, an artifact or an
object URL, run by the server, predictions written to the artifact store
(``/api/v1/score-jobs``; docs/batch-scoring.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence

from . import errors
from ._resource import Page, Resource, attr, paginate
from ._transport import Transport, quote


@dataclass
class ScoreJob(Resource):
    """A job: state (queued, running, succeeded, failed), progress and where the output is."""

    id: str = ""
    model: str = ""
    input: str = ""
    output: str = ""
    output_uri: str = ""
    keep: List[str] = attr(factory=list)
    keep_all: bool = False
    features: List[str] = attr(factory=list)
    batch_rows: int = 0
    state: str = ""
    rows_done: int = 0
    rows_total: int = 0
    error: str = ""
    created_by: str = ""
    creation_time: int = 0
    start_time: int = 0
    end_time: int = 0
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")


class ScoreJobs:
    """``client.score_jobs``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def submit(self, model: str, input: str, *, output: Optional[str] = None, keep: Optional[Sequence[str]] = None,
               keep_all: bool = False, features: Optional[Sequence[str]] = None,
               batch_rows: Optional[int] = None) -> ScoreJob:
        """Queues a job: model is models:/NAME/VERSION, models:/NAME@ALIAS,
        runs:/... ; input a dataset version (NAME@VERSION[/path]), an
        artifact or an object URL; output a .parquet, .csv or .jsonl path
        in the artifact store (default score-jobs/ID/predictions.parquet)."""
        body: Dict[str, Any] = {"model": model, "input": input}
        if output:
            body["output"] = output
        if keep:
            body["keep"] = list(keep)
        if keep_all:
            body["keep_all"] = True
        if features:
            body["features"] = list(features)
        if batch_rows:
            body["batch_rows"] = int(batch_rows)
        return ScoreJob.from_json(self._t.api("POST", "/score-jobs", json_body=body))

    def get(self, job_id: str) -> ScoreJob:
        return ScoreJob.from_json(self._t.api("GET", f"/score-jobs/{quote(job_id)}"))

    def page(self, *, state: Optional[str] = None, max_results: Optional[int] = None,
             page_token: Optional[str] = None) -> Page[ScoreJob]:
        got = self._t.api("GET", "/score-jobs", query={"state": state, "max_results": max_results, "page_token": page_token})
        return Page([ScoreJob.from_json(j) for j in got.get("jobs") or []], got.get("next_page_token") or None)

    def iter(self, *, state: Optional[str] = None, page_size: Optional[int] = None) -> Iterator[ScoreJob]:
        """Every job (in one state), newest first, page after page."""
        return paginate(lambda tok: self.page(state=state, max_results=page_size, page_token=tok))

    def list(self, *, state: Optional[str] = None) -> List[ScoreJob]:
        return list(self.iter(state=state))

    def wait(self, job_id: str, *, timeout: float = 600.0, poll: float = 0.25) -> ScoreJob:
        """Waits until the job has succeeded or failed; DeadlineExceeded after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            j = self.get(job_id)
            if j.done:
                return j
            if time.monotonic() > deadline:
                raise errors.DeadlineExceeded(f"score job {job_id} is still {j.state} after {timeout:g}s")
            time.sleep(poll)
