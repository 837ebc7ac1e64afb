"""Tuning studies, read back from the tracking server (docs/tuning.md).

``kiln tune run`` records a study as one MLflow parent run (tag
``kiln.study``, params sampler, seed, objective, direction, ...) with one
child run per trial (tags ``kiln.trial``, ``kiln.trial.state``; the
trial's parameters as params; the objective as a metric), and names the
best trial on the parent (``kiln.study.best_run``). :class:`Studies`
reads that back as ``kiln tune show`` does (Go: tune.ShowStudy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from . import errors
from ._resource import Resource, attr
from ._transport import Transport

TAG_PARENT = "mlflow.parentRunId"
TAG_STUDY = "kiln.study"
TAG_TRIAL = "kiln.trial"
TAG_TRIAL_STATE = "kiln.trial.state"
TAG_BEST_RUN = "kiln.study.best_run"
_STUDY_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass
class Trial(Resource):
    """One trial: number, state (completed, pruned, failed, running),
    parameters, the objective's value (completed trials), its run."""

    number: int = 0
    state: str = ""
    params: Dict[str, str] = attr(factory=dict)
    value: Optional[float] = None
    run_id: str = ""
    start_time: int = 0  # ms since the epoch
    end_time: int = 0


@dataclass
class Study(Resource):
    """A tracked study; ``raw`` is its parent run as the tracking server answered it."""

    study: str = ""
    experiment: str = ""
    experiment_id: str = ""
    parent_run_id: str = ""
    metric: str = ""
    direction: str = ""
    seed: int = 0
    trials: List[Trial] = attr(factory=list)
    best: Optional[Trial] = None
    counts: Dict[str, int] = attr(factory=dict)
    duration_ms: int = 0
    stopped: str = ""

    def frame(self) -> Any:
        """The trials as a pandas DataFrame: number, state, value, run_id, one column per parameter."""
        import pandas as pd

        return pd.DataFrame([{"number": t.number, "state": t.state, "value": t.value, "run_id": t.run_id, **t.params}
                             for t in self.trials])


def _tags(run: Dict[str, Any]) -> Dict[str, str]:
    return {t["key"]: t.get("value", "") for t in (run.get("data") or {}).get("tags") or []}


def _params(run: Dict[str, Any]) -> Dict[str, str]:
    return {p["key"]: p.get("value", "") for p in (run.get("data") or {}).get("params") or []}


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


class Studies:
    """``client.studies``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _mlflow(self, method: str, path: str, **kw: Any) -> Any:
        return self._t.request(method, "/api/2.0/mlflow/" + path, **kw).json()

    def _run(self, run_id: str) -> Dict[str, Any]:
        run: Dict[str, Any] = self._mlflow("GET", "runs/get", query={"run_id": run_id})["run"]
        return run

    def _search(self, experiment_id: str, filter_: str, order_by: Optional[List[str]] = None) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        token = None
        while True:
            body: Dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 1000, "filter": filter_}
            if order_by:
                body["order_by"] = order_by
            if token:
                body["page_token"] = token
            got = self._mlflow("POST", "runs/search", json_body=body)
            out.extend(got.get("runs") or [])
            token = got.get("next_page_token")
            if not token or not got.get("runs"):
                return out

    def parent_run_id(self, study: str, *, experiment: Optional[str] = None) -> str:
        """The parent run of a study: study itself when it is a run id, else
        the study's latest parent run in ``studies/<study>`` (or experiment)."""
        return self._resolve(study, experiment)[0]

    def _resolve(self, study: str, experiment: Optional[str]) -> "tuple[str, str]":
        """(parent run id, the experiment's name when looked up by name)."""
        if experiment is None:
            try:
                self._run(study)
                return study, ""
            except errors.NotFound:
                pass
            if not _STUDY_NAME.match(study):
                raise errors.NotFound(f"no run {study!r}, and it is no study name")
            experiment = "studies/" + study
        try:
            exp = self._mlflow("GET", "experiments/get-by-name", query={"experiment_name": experiment})["experiment"]
        except errors.NotFound:
            raise errors.NotFound(f"no run {study!r} and no experiment {experiment!r}: "
                                  "name a study's parent run or a study that has run") from None
        safe = study.replace("'", "")
        runs = self._search(exp["experiment_id"], f"tags.`{TAG_STUDY}` = '{safe}'", ["attributes.start_time DESC"])
        parents = [r for r in runs if TAG_TRIAL not in _tags(r) and TAG_PARENT not in _tags(r)]
        if not parents:
            raise errors.NotFound(f"experiment {experiment!r} has no run of study {study!r}")
        return max(parents, key=lambda r: _int(r["info"].get("start_time")))["info"]["run_id"], experiment

    def get(self, study: str, *, experiment: Optional[str] = None) -> Study:
        """A study by parent run id, or by name (its latest run): settings,
        every trial, counts per state and the best trial."""
        parent_id, exp_name = self._resolve(study, experiment)
        p = self._run(parent_id)
        tags, params = _tags(p), _params(p)
        name = tags.get(TAG_STUDY, "")
        if not name:
            raise errors.InvalidArgument(f"run {parent_id} is not a study's parent run (it has no {TAG_STUDY} tag)")
        info = p.get("info") or {}
        metric = params.get("objective", "")
        out = Study(raw=p, study=name, experiment=exp_name,
                    experiment_id=str(info.get("experiment_id", "")), parent_run_id=parent_id, metric=metric,
                    direction=params.get("direction", ""), seed=_int(params.get("seed")),
                    stopped=tags.get("kiln.study.stopped", ""))
        if _int(info.get("end_time")) > 0:
            out.duration_ms = _int(info.get("end_time")) - _int(info.get("start_time"))
        for r in self._search(out.experiment_id, f"tags.`{TAG_PARENT}` = '{parent_id}'"):
            rt = _tags(r)
            try:
                number = int(rt.get(TAG_TRIAL, ""))
            except ValueError:
                continue
            ri = r.get("info") or {}
            t = Trial(raw=r, number=number, state=rt.get(TAG_TRIAL_STATE, ""), params=_params(r),
                      run_id=ri.get("run_id", ""), start_time=_int(ri.get("start_time")), end_time=_int(ri.get("end_time")))
            if t.state == "completed":
                for m in (r.get("data") or {}).get("metrics") or []:
                    if m.get("key") == metric:
                        t.value = float(m["value"])
            out.counts[t.state] = out.counts.get(t.state, 0) + 1
            out.trials.append(t)
        out.trials.sort(key=lambda t: t.number)
        best = tags.get(TAG_BEST_RUN, "")
        out.best = next((t for t in out.trials if best and t.run_id == best), None)
        return out
