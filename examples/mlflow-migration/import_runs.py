"""Copy experiments, runs, logged models and registered models from one
MLflow tracking server (or store) to another — from your MLflow to Kiln —
with nothing but the MLflow client.

    python import_runs.py --from sqlite:///mlflow.db --to http://127.0.0.1:5000
    python import_runs.py --from http://old-mlflow:5000 --experiment wine-classifier --model wine-classifier

What is copied, per experiment (by name; created when absent):

* runs: name, start and end time, status, tags (mlflow.user, mlflow.source.*
  …), params, every metric's full history (steps and timestamps), dataset
  inputs, artifacts; run ids are new (the old one is the tag
  imported_from.run_id);
* MLflow 3 logged models of those runs (artifacts, params, tags), with the
  MLmodel file's run_id and model_id pointing at the copies, and the runs'
  model outputs;
* registered models: description, tags, versions in order (sources pointing
  at the copied logged models or run artifacts), version tags, aliases and
  stages. Version numbers are assigned again from 1 in a new model: equal
  when the source has no deleted versions.

Running it again copies only what is new: runs, models and versions
already copied (tagged imported_from.*) are skipped, and a run whose copy
was interrupted is copied again. Deleted runs are not copied.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, LoggedModelOutput, Metric, Param, ViewType
from mlflow.entities.logged_model_status import LoggedModelStatus

RUN_TAG = "imported_from.run_id"
DONE_TAG = "imported_from.complete"  # set last: a copy without it was interrupted
MODEL_TAG = "imported_from.model_id"
VERSION_TAG = "imported_from.version"
BATCH_METRICS, BATCH_PARAMS = 1000, 100


def pages(fn, **kw):
    """Every item of a paged MLflow search."""
    token = None
    while True:
        page = fn(page_token=token, **kw)
        yield from page
        token = page.token
        if not token:
            return


def download(uri: str, tracking_uri: str, into: Path) -> Path | None:
    """The artifacts under uri in a local folder; None when there are none."""
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into), tracking_uri=tracking_uri)
    except Exception as e:  # an empty artifact root answers differently per store
        if "No such file" in str(e) or "does not exist" in str(e) or "RESOURCE_DOES_NOT_EXIST" in str(e):
            return None
        raise
    p = Path(path)
    return p if p.exists() and any(p.iterdir()) else None


class Importer:
    """Copies from src to dst; ids maps old run and model ids to the new ones."""

    def __init__(self, src: str, dst: str, log=print):
        self.src_uri, self.dst_uri = src, dst
        self.src = MlflowClient(tracking_uri=src, registry_uri=src)
        self.dst = MlflowClient(tracking_uri=dst, registry_uri=dst)
        self.runs: dict[str, str] = {}
        self.models: dict[str, str] = {}
        self.log = log

    # --- experiments and runs -------------------------------------------------

    def experiment(self, name: str) -> None:
        exp = self.src.get_experiment_by_name(name)
        if exp is None:
            raise SystemExit(f"no experiment {name!r} in {self.src_uri}")
        target = self.dst.get_experiment_by_name(name)
        if target is None:
            tags = {k: v for k, v in exp.tags.items() if not k.startswith("mlflow.")}
            exp_id = self.dst.create_experiment(name, tags=tags or None)
        else:
            exp_id = target.experiment_id
        done, interrupted = {}, set()
        for r in pages(self.dst.search_runs, experiment_ids=[exp_id], run_view_type=ViewType.ALL):
            if RUN_TAG not in r.data.tags:
                continue
            if r.data.tags.get(DONE_TAG) == "true":
                done[r.data.tags[RUN_TAG]] = r.info.run_id
            else:  # an interrupted copy: made again below, with its logged models
                interrupted.add(r.info.run_id)
                if r.info.lifecycle_stage == "active":
                    self.dst.delete_run(r.info.run_id)
        self.runs.update(done)
        for lm in pages(self.dst.search_logged_models, experiment_ids=[exp_id]):
            if MODEL_TAG in lm.tags and lm.source_run_id not in interrupted:
                self.models[lm.tags[MODEL_TAG]] = lm.model_id
        runs = list(pages(self.src.search_runs, experiment_ids=[exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
                          order_by=["attributes.start_time ASC"]))
        new = [r for r in runs if r.info.run_id not in done]
        for run in new:
            self.run(run, exp_id)
        # Child runs point at the copies of their parents (copied in any order).
        for run in new:
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent in self.runs:
                self.dst.set_tag(self.runs[run.info.run_id], "mlflow.parentRunId", self.runs[parent])
        copied = len(new)
        self.log(f"experiment {name}: {copied} runs copied, {len(runs) - copied} already there")

    def run(self, run, exp_id: str) -> None:
        info, data = run.info, run.data
        tags = {**{k: v for k, v in data.tags.items() if k != DONE_TAG}, RUN_TAG: info.run_id}
        new = self.dst.create_run(exp_id, start_time=info.start_time, tags=tags, run_name=info.run_name)
        rid = new.info.run_id
        self.runs[info.run_id] = rid
        params = [Param(k, v) for k, v in data.params.items()]
        for i in range(0, len(params), BATCH_PARAMS):
            self.dst.log_batch(rid, params=params[i:i + BATCH_PARAMS])

        for lm in pages(self.src.search_logged_models, experiment_ids=[info.experiment_id],
                        filter_string=f"source_run_id = '{info.run_id}'"):
            self.logged_model(lm, exp_id, rid)

        # One point per (key, timestamp, step, value), as MLflow's database stores them
        # (a point logged again with a model_id is the same point, linked to the model).
        points: dict[tuple, Metric] = {}
        for key in data.metrics:
            for m in self.src.get_metric_history(info.run_id, key):
                k = (m.key, m.timestamp, m.step, repr(m.value))
                if k not in points or (m.model_id and not points[k].model_id):
                    points[k] = Metric(m.key, m.value, m.timestamp, m.step, model_id=self.models.get(m.model_id),
                                       dataset_name=m.dataset_name, dataset_digest=m.dataset_digest)
        metrics = list(points.values())
        for i in range(0, len(metrics), BATCH_METRICS):
            self.dst.log_batch(rid, metrics=metrics[i:i + BATCH_METRICS])

        if run.inputs and run.inputs.dataset_inputs:
            self.dst.log_inputs(rid, datasets=[DatasetInput(d.dataset, d.tags) for d in run.inputs.dataset_inputs])
        outputs = getattr(run, "outputs", None)
        if outputs and outputs.model_outputs:
            mapped = [LoggedModelOutput(self.models[o.model_id], o.step) for o in outputs.model_outputs
                      if o.model_id in self.models]
            if mapped:
                self.dst.log_outputs(rid, mapped)

        with tempfile.TemporaryDirectory() as tmp:
            local = download(info.artifact_uri, self.src_uri, Path(tmp))
            if local:
                self.dst.log_artifacts(rid, str(local))
        self.dst.set_tag(rid, DONE_TAG, "true")
        self.dst.set_terminated(rid, status=info.status, end_time=info.end_time)

    def logged_model(self, lm, exp_id: str, run_id: str) -> None:
        if lm.model_id in self.models:
            return
        # mlflow.modelVersions is the registry's to write: it names the source's versions.
        tags = {k: v for k, v in lm.tags.items() if k != "mlflow.modelVersions"}
        new = self.dst.create_logged_model(exp_id, name=lm.name, source_run_id=run_id,
                                           tags={**tags, MODEL_TAG: lm.model_id}, params=lm.params or None,
                                           model_type=lm.model_type)
        self.models[lm.model_id] = new.model_id
        with tempfile.TemporaryDirectory() as tmp:
            local = download(lm.artifact_location, self.src_uri, Path(tmp))
            if local:
                mlmodel = local / "MLmodel"
                if mlmodel.exists():  # the copy's MLmodel names the copies
                    doc = yaml.safe_load(mlmodel.read_text())
                    doc.update({k: v for k, v in (("run_id", run_id), ("model_id", new.model_id)) if k in doc})
                    mlmodel.write_text(yaml.safe_dump(doc, sort_keys=False))
                self.dst.log_model_artifacts(new.model_id, str(local))
        self.dst.finalize_logged_model(new.model_id, LoggedModelStatus.READY)

    # --- the registry ---------------------------------------------------------

    def registered_model(self, name: str) -> None:
        rm = self.src.get_registered_model(name)
        try:
            self.dst.get_registered_model(name)
        except mlflow.exceptions.MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.dst.create_registered_model(name, tags=rm.tags or None, description=rm.description or None)
        # Version numbers as text: the REST API gives strings, the database stores ints.
        have = {v.tags[VERSION_TAG]: str(v.version)
                for v in pages(self.dst.search_model_versions, filter_string=f"name = '{name}'") if VERSION_TAG in v.tags}
        versions = sorted(pages(self.src.search_model_versions, filter_string=f"name = '{name}'"), key=lambda v: int(v.version))
        numbers = dict(have)
        copied = 0
        for v in versions:
            if str(v.version) in have:
                continue
            source, model_id = self.version_source(v)
            run_id = self.runs.get(v.run_id) if v.run_id else None
            mv = self.dst.create_model_version(name, source, run_id=run_id, tags={**v.tags, VERSION_TAG: str(v.version)},
                                               description=v.description or None, model_id=model_id)
            numbers[str(v.version)] = str(mv.version)
            if v.current_stage and v.current_stage != "None":
                self.dst.transition_model_version_stage(name, mv.version, v.current_stage)
            copied += 1
        # An alias the target already has stays where it is: it may be serving.
        taken = self.dst.get_registered_model(name).aliases or {}
        notes = []
        for alias, version in (rm.aliases or {}).items():
            version = str(version)
            if alias in taken and str(taken[alias]) != numbers.get(version):
                copied_as = f", copied as {numbers[version]}" if version in numbers else ""
                notes.append(f"{alias} stays on version {taken[alias]} (the source's {alias} is its version {version}"
                             f"{copied_as})")
            elif version in numbers:
                self.dst.set_registered_model_alias(name, alias, numbers[version])
                notes.append(f"{alias} → {numbers[version]}")
        self.log(f"registered model {name}: {copied} versions copied, {len(versions) - copied} already there; "
                 f"aliases: {', '.join(notes) or 'none'}")

    def version_source(self, v) -> tuple[str, str | None]:
        """The copy's source: the copied logged model, else the path under the copied run."""
        model_id = getattr(v, "model_id", None)
        if not model_id and v.source.startswith("models:/m-"):  # some stores leave model_id empty
            model_id = v.source.removeprefix("models:/").split("/", 1)[0]
        if model_id and model_id in self.models:
            return f"models:/{self.models[model_id]}", self.models[model_id]
        if v.run_id and v.run_id in self.runs:
            src_root = self.src.get_run(v.run_id).info.artifact_uri.rstrip("/")
            if v.source.startswith(f"runs:/{v.run_id}/"):
                return f"runs:/{self.runs[v.run_id]}/{v.source.split('/', 2)[2]}", None
            if v.source.startswith(src_root + "/"):
                return f"runs:/{self.runs[v.run_id]}/{v.source[len(src_root) + 1:]}", None
        raise SystemExit(f"{v.name} version {v.version}: its source {v.source} is neither a copied logged model nor "
                         f"under a copied run (import its experiment too)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", required=True, help="the MLflow tracking URI to copy from")
    ap.add_argument("--to", dest="dst", default=os.environ.get("MLFLOW_TRACKING_URI"),
                    help="the tracking URI to copy to (default $MLFLOW_TRACKING_URI)")
    ap.add_argument("--experiment", action="append", help="an experiment to copy (repeatable; default: all)")
    ap.add_argument("--model", action="append", help="a registered model to copy (repeatable; default: all)")
    a = ap.parse_args()
    if not a.dst:
        raise SystemExit("--to (or MLFLOW_TRACKING_URI) names the server to copy to")
    if a.src.rstrip("/") == a.dst.rstrip("/"):
        raise SystemExit("--from and --to are the same")
    # MLflow's database registry store looks logged models up through the default
    # tracking URI (MlflowClient()), so that is the target too.
    mlflow.set_tracking_uri(a.dst)
    mlflow.set_registry_uri(a.dst)
    imp = Importer(a.src, a.dst, log=lambda s: print(s, file=sys.stderr))
    names = a.experiment or [e.name for e in pages(imp.src.search_experiments)]
    for name in names:
        imp.experiment(name)
    models = a.model or [m.name for m in pages(imp.src.search_registered_models)]
    for name in models:
        imp.registered_model(name)


if __name__ == "__main__":
    main()
