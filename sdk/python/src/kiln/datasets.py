"""Datasets: named series of immutable, content-addressed versions
(``/api/v1/datasets``; docs/data.md).

A version is named ``"sales@3"`` (or ``"sales@v3"``), ``"sales@latest"``,
or ``"sales"`` for the latest one; methods that take a version take such a
string, or a name and a ``version=`` number.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union, cast

from . import _blake3
from . import content as _content
from ._resource import Page, Resource, attr, many, one, paginate
from ._transport import API, Transport, quote

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PathLike = Union[str, "os.PathLike[str]"]
TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")


@dataclass
class VersionRef(Resource):
    """A dataset version by name and number."""

    dataset: str = ""
    version: int = 0

    def __str__(self) -> str:
        return f"{self.dataset}@{self.version}"


@dataclass
class Dataset(Resource):
    name: str = ""
    description: str = ""
    tags: Dict[str, str] = attr(factory=dict)
    creation_time: int = 0  # ms since the epoch
    last_update_time: int = 0
    latest_version: int = 0  # 0 when the dataset has no version


@dataclass
class DatasetVersion(Resource):
    """One version: its digest, size, description, tags, where it came from
    and, once computed, its table schema and profile."""

    dataset: str = ""
    version: int = 0
    digest: str = ""
    kind: str = ""  # "file" or "dir"
    file_count: int = 0
    total_size: int = 0
    description: str = ""
    tags: Dict[str, str] = attr(factory=dict)
    source: str = ""
    created_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0
    parent: Optional[VersionRef] = attr(conv=one(VersionRef))
    split_spec: Optional[Dict[str, Any]] = None
    schema: Optional[Dict[str, Any]] = None
    profile: Optional[Dict[str, Any]] = None

    @property
    def ref(self) -> str:
        """``"name@N"``."""
        return f"{self.dataset}@{self.version}"

    @property
    def uri(self) -> str:
        """``kiln://datasets/name@N``: names the version as an MLflow dataset source."""
        return f"kiln://datasets/{self.dataset}@{self.version}"


@dataclass
class ValidationResult(Resource):
    """A stored validation of a version."""

    id: int = 0
    version: Optional[VersionRef] = attr(conv=one(VersionRef))
    suite: str = ""
    passed: bool = False
    report: Dict[str, Any] = attr(factory=dict)
    creation_time: int = 0


@dataclass
class DatasetLineage(Resource):
    """A version's parent and splits, the runs that used it and the model
    versions trained on it."""

    version: Optional[VersionRef] = attr(conv=one(VersionRef))
    parent: Optional[VersionRef] = attr(conv=one(VersionRef))
    children: List[VersionRef] = attr(factory=list, conv=many(VersionRef))
    runs: List[Dict[str, Any]] = attr(factory=list)  # run_id, context, mlflow_name, ...
    model_versions: List[Dict[str, Any]] = attr(factory=list)  # model_name, model_version, via, run_id

    @property
    def run_ids(self) -> List[str]:
        return [r.get("run_id", "") for r in self.runs]


@dataclass
class VersionDetail(Resource):
    """A version with its manifest summary, validations and lineage."""

    version: DatasetVersion = attr(factory=DatasetVersion, conv=one(DatasetVersion))
    uri: str = ""
    manifest: Dict[str, Any] = attr(factory=dict)  # kind, file_count, total_size, tables
    validations: List[ValidationResult] = attr(factory=list, conv=many(ValidationResult))
    lineage: DatasetLineage = attr(factory=DatasetLineage, conv=one(DatasetLineage))

    @property
    def tables(self) -> List[str]:
        """The paths of the version's table files."""
        return [t["path"] for t in self.manifest.get("tables") or []]


@dataclass
class CreatedVersion(Resource):
    """The answer of creating a version: ``created`` is False when the
    content equalled the latest version's (which is then ``version``)."""

    version: DatasetVersion = attr(factory=DatasetVersion, conv=one(DatasetVersion))
    created: bool = False
    transfer: Optional[Dict[str, Any]] = None  # what a server-read source copied
    pushed: Optional[_content.PushStats] = None  # what add() uploaded


@dataclass
class ProfileResult(Resource):
    version: Optional[VersionRef] = attr(conv=one(VersionRef))
    files: List[str] = attr(factory=list)
    stored: bool = False
    schema: Optional[Dict[str, Any]] = None
    profile: Dict[str, Any] = attr(factory=dict)  # rows, columns: [{field, count, missing, mean, quantiles, top, ...}]

    @property
    def rows(self) -> int:
        return int(self.profile.get("rows") or 0)

    def column(self, name: str) -> Dict[str, Any]:
        """The profile of one column (KeyError when there is none)."""
        columns: List[Dict[str, Any]] = self.profile.get("columns") or []
        for c in columns:
            if (c.get("field") or {}).get("name") == name:
                return c
        raise KeyError(name)


@dataclass
class Validation(Resource):
    """The report of running a suite (``validation_id`` 0 for a dry run)."""

    version: Optional[VersionRef] = attr(conv=one(VersionRef))
    validation_id: int = 0
    report: Dict[str, Any] = attr(factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.report.get("passed"))


@dataclass
class DatasetDiff(Resource):
    from_: Optional[VersionRef] = attr(json="from", conv=one(VersionRef))
    to: Optional[VersionRef] = attr(conv=one(VersionRef))
    files: Dict[str, Any] = attr(factory=dict)  # added, removed, changed, unchanged, size_delta
    tables: List[Dict[str, Any]] = attr(factory=list)  # path, status, old_rows, new_rows, schema_changes
    tables_truncated: bool = False


@dataclass
class SplitPart(Resource):
    part: str = ""
    rows: int = 0
    version: DatasetVersion = attr(factory=DatasetVersion, conv=one(DatasetVersion))
    created: bool = False


@dataclass
class SplitResult(Resource):
    source: Optional[VersionRef] = attr(conv=one(VersionRef))
    outputs: List[SplitPart] = attr(factory=list, conv=many(SplitPart))
    stats: Dict[str, Any] = attr(factory=dict)


def parse_ref(ref: str, version: Union[int, str, None] = None) -> Tuple[str, str]:
    """(name, version segment) of "name@3", "name@v3", "name@latest", "name"."""
    name, sep, v = str(ref).rpartition("@")
    if not sep:
        name, v = str(ref), ""
    if version is not None:
        if sep:
            raise ValueError(f"{ref!r} names its version already; leave out version=")
        v = str(version)
    v = v or "latest"
    if v[:1] in ("v", "V") and v[1:].isdigit():
        v = v[1:]
    if not name or not (v == "latest" or v.isdigit()):
        raise ValueError(f"invalid dataset version {ref!r}: want NAME@N, NAME@latest or NAME")
    return name, v


class Datasets:
    """``client.datasets``."""

    def __init__(self, t: Transport) -> None:
        self._t = t
        self.content = _content.Content(t)

    def _vpath(self, ref: str, version: Union[int, str, None], *more: str) -> str:
        name, v = parse_ref(ref, version)
        return "/".join([f"/datasets/{quote(name)}/versions/{v}", *more]).rstrip("/")

    # -- datasets ---------------------------------------------------------

    def page(self, *, prefix: Optional[str] = None, contains: Optional[str] = None,
             max_results: Optional[int] = None, page_token: Optional[str] = None) -> Page[Dataset]:
        """One page of datasets, by name: those whose name starts with
        prefix and whose name or description contains contains (ASCII case
        ignored), when given."""
        got = self._t.api("GET", "/datasets", query={"prefix": prefix, "contains": contains,
                                                     "max_results": max_results, "page_token": page_token})
        return Page([Dataset.from_json(d) for d in got.get("datasets") or []], got.get("next_page_token") or None)

    def iter(self, *, prefix: Optional[str] = None, contains: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[Dataset]:
        """Every dataset (filtered as page does), page after page."""
        return paginate(lambda tok: self.page(prefix=prefix, contains=contains, max_results=page_size, page_token=tok))

    def list(self, *, prefix: Optional[str] = None, contains: Optional[str] = None) -> List[Dataset]:
        """Every dataset (filtered as page does), all pages read."""
        return list(self.iter(prefix=prefix, contains=contains))

    def get(self, name: str) -> Dataset:
        return Dataset.from_json(self._t.api("GET", f"/datasets/{quote(name)}")["dataset"])

    def create(self, name: str, *, description: Optional[str] = None, tags: Optional[Mapping[str, str]] = None) -> Dataset:
        """Creates an empty dataset (AlreadyExists if there is one)."""
        body: Dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if tags:
            body["tags"] = dict(tags)
        return Dataset.from_json(self._t.api("POST", "/datasets", json_body=body)["dataset"])

    def update(self, name: str, *, description: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
               delete_tags: Optional[List[str]] = None) -> Dataset:
        """Sets the description, sets tags and deletes tag keys."""
        return Dataset.from_json(self._t.api("PATCH", f"/datasets/{quote(name)}",
                                             json_body=_update(description, tags, delete_tags))["dataset"])

    def delete(self, name: str) -> None:
        """Deletes a dataset and its versions' metadata (objects stay)."""
        self._t.api("DELETE", f"/datasets/{quote(name)}")

    # -- versions ---------------------------------------------------------

    def versions_page(self, name: str, *, max_results: Optional[int] = None,
                      page_token: Optional[str] = None) -> Page[DatasetVersion]:
        """One page of a dataset's versions, newest first."""
        got = self._t.api("GET", f"/datasets/{quote(name)}/versions",
                          query={"max_results": max_results, "page_token": page_token})
        return Page([DatasetVersion.from_json(v) for v in got.get("versions") or []], got.get("next_page_token") or None)

    def iter_versions(self, name: str, *, page_size: Optional[int] = None) -> Iterator[DatasetVersion]:
        """Every version of a dataset, newest first, page after page."""
        return paginate(lambda tok: self.versions_page(name, max_results=page_size, page_token=tok))

    def versions(self, name: str) -> List[DatasetVersion]:
        """Every version of a dataset, newest first (all pages)."""
        return list(self.iter_versions(name))

    def version(self, ref: str, version: Union[int, str, None] = None) -> VersionDetail:
        """A version with its schema, profile, manifest summary, validations and lineage."""
        return VersionDetail.from_json(self._t.api("GET", self._vpath(ref, version)))

    def update_version(self, ref: str, *, version: Union[int, str, None] = None, description: Optional[str] = None,
                       tags: Optional[Mapping[str, str]] = None, delete_tags: Optional[List[str]] = None) -> DatasetVersion:
        """Sets a version's description, sets and deletes its tags (its content is immutable)."""
        got = self._t.api("PATCH", self._vpath(ref, version), json_body=_update(description, tags, delete_tags))
        return DatasetVersion.from_json(got["version"])

    def tag(self, ref: str, tags: Mapping[str, str], *, version: Union[int, str, None] = None) -> DatasetVersion:
        """Sets tags on a version."""
        return self.update_version(ref, version=version, tags=tags)

    def untag(self, ref: str, *keys: str, version: Union[int, str, None] = None) -> DatasetVersion:
        """Deletes tags of a version."""
        return self.update_version(ref, version=version, delete_tags=list(keys))

    def create_version(self, name: str, *, manifest: Optional[str] = None, source_url: Optional[str] = None,
                       description: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
                       source: Optional[str] = None) -> CreatedVersion:
        """Registers a version from a manifest already in the content store
        (its digest), or from a URL the server reads itself (s3://, gs://,
        azblob://). The dataset is created if needed; content equal to the
        latest version's creates nothing (``created`` False)."""
        if (manifest is None) == (source_url is None):
            raise ValueError("give exactly one of manifest and source_url")
        body: Dict[str, Any] = {}
        for k, v in (("manifest", manifest), ("source_url", source_url), ("description", description), ("source", source)):
            if v is not None:
                body[k] = v
        if tags:
            body["tags"] = dict(tags)
        return CreatedVersion.from_json(self._t.api("POST", f"/datasets/{quote(name)}/versions", json_body=body))

    def add(self, name: str, path: PathLike, *, description: Optional[str] = None,
            tags: Optional[Mapping[str, str]] = None, source: Optional[str] = None) -> CreatedVersion:
        """Records a local file or folder as a new version, as ``kiln data
        add`` does: hashes it (BLAKE3; install ``kiln[data]`` for speed),
        uploads the objects the server lacks and the manifest, and creates
        the version. A URL (s3://...) is read by the server instead."""
        p = os.fspath(path)
        if "://" in p:
            return self.create_version(name, source_url=p, description=description, tags=tags)
        files = _content.scan(p)
        digest, stats = self.content.push(files)
        out = self.create_version(name, manifest=digest, description=description, tags=tags,
                                  source=source if source is not None else str(Path(p).resolve()))
        out.pushed = stats
        return out

    # -- content ----------------------------------------------------------

    def manifest(self, ref: str, version: Union[int, str, None] = None) -> _content.Manifest:
        """The full manifest of a version (every file, with its digest)."""
        v = self.version(ref, version).version
        return self.content.get_manifest(v.digest)

    def download(self, ref: str, dest: PathLike, *, version: Union[int, str, None] = None,
                 verify: Optional[bool] = None) -> Path:
        """Writes a version's files into folder dest (a file version as
        dest/<its name>); returns dest. Each object is checked against its
        digest when verify is True, or None and the fast ``blake3`` package
        is installed."""
        m = self.manifest(ref, version)
        check = _blake3.fast() if verify is None else verify
        root = Path(dest)
        for e in m.files:
            _content.check_path(e.path)
            out = root.joinpath(*e.path.split("/"))
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "wb") as f:
                self.content.download(e.digest, f, verify=check)
            if e.exec:
                out.chmod(out.stat().st_mode | 0o111)
        return root

    def read_bytes(self, ref: str, path: Optional[str] = None, *, version: Union[int, str, None] = None,
                   verify: Optional[bool] = None) -> bytes:
        """The content of one file of a version (the only file when path is None)."""
        return self._read(self.manifest(ref, version), path, ref, verify)

    def _read(self, m: _content.Manifest, path: Optional[str], ref: str, verify: Optional[bool]) -> bytes:
        e = _pick(m, path, ref)
        buf = io.BytesIO()
        self.content.download(e.digest, buf, verify=_blake3.fast() if verify is None else verify)
        return buf.getvalue()

    def read_frame(self, ref: str, path: Optional[str] = None, *, version: Union[int, str, None] = None,
                   verify: Optional[bool] = None, **read_kw: Any) -> "pd.DataFrame":
        """A table file of a version (CSV, Parquet or JSON Lines) as a pandas
        DataFrame; path picks the file when the version has several tables."""
        import pandas as pd

        m = self.manifest(ref, version)
        tables = [e for e in m.files if e.path.lower().endswith(TABLE_SUFFIXES)]
        if path is None:
            if len(tables) != 1:
                raise ValueError(f"{ref} has {len(tables)} table files; name one with path= ({[e.path for e in tables][:10]})")
            path = tables[0].path
        data = io.BytesIO(self._read(m, path, ref, verify))
        low = path.lower()
        if low.endswith(".parquet"):
            return pd.read_parquet(data, **read_kw)
        if low.endswith((".jsonl", ".ndjson")):
            return cast(pd.DataFrame, pd.read_json(data, lines=True, **read_kw))
        return cast(pd.DataFrame, pd.read_csv(data, **read_kw))

    # -- tables: profile, validation, diff, splits, PII -------------------

    def profile(self, ref: str, version: Union[int, str, None] = None, *, compute: bool = True) -> ProfileResult:
        """A version's stored profile; with compute (the default) it is
        computed and stored first when the version has none."""
        from .errors import NotFound

        try:
            return ProfileResult.from_json(self._t.api("GET", self._vpath(ref, version, "profile")))
        except NotFound as e:
            if not compute or "no profile" not in e.message:
                raise
        return self.compute_profile(ref, version)

    def compute_profile(self, ref: str, version: Union[int, str, None] = None, *, path: Optional[str] = None) -> ProfileResult:
        """Profiles the version's table files on the server (and stores the
        profile, unless path picks one file of several)."""
        body = {"path": path} if path else None
        return ProfileResult.from_json(self._t.api("POST", self._vpath(ref, version, "profile"), json_body=body,
                                                   data=None if body else b"", content_type="application/json"))

    def validations(self, ref: str, version: Union[int, str, None] = None) -> List[ValidationResult]:
        """The version's stored validation results, oldest first."""
        got = self._t.api("GET", self._vpath(ref, version, "validations"))
        return [ValidationResult.from_json(v) for v in got.get("validations") or []]

    def validate(self, ref: str, suite: Union[str, Mapping[str, Any]], *, version: Union[int, str, None] = None,
                 path: Optional[str] = None, dry_run: bool = False) -> Validation:
        """Runs a validation suite (its YAML text, or the suite as a dict)
        on the version and stores the result (unless dry_run). A failing
        suite is a result with ``passed`` False, not an error."""
        text = suite if isinstance(suite, str) else _json_text(suite)
        body: Dict[str, Any] = {"suite": text}
        if path:
            body["path"] = path
        if dry_run:
            body["dry_run"] = True
        return Validation.from_json(self._t.api("POST", self._vpath(ref, version, "validations"), json_body=body))

    def diff(self, ref: str, from_ref: Optional[str] = None, *, version: Union[int, str, None] = None,
             tables: bool = True) -> DatasetDiff:
        """What changed from from_ref (default the previous version) to ref:
        files, and row counts and schemas of table files."""
        q = {"from": from_ref, "tables": tables}
        return DatasetDiff.from_json(self._t.api("GET", self._vpath(ref, version, "diff"), query=q))

    def split(self, ref: str, spec: Mapping[str, Any], *, version: Union[int, str, None] = None,
              names: Optional[Mapping[str, str]] = None) -> SplitResult:
        """Cuts a table version into seeded parts, each recorded as a
        version of its own dataset (spec: {method, seed, parts, column, ...})."""
        body: Dict[str, Any] = {"spec": dict(spec)}
        if names:
            body["names"] = dict(names)
        return SplitResult.from_json(self._t.api("POST", self._vpath(ref, version, "splits"), json_body=body))

    def pii(self, ref: str, version: Union[int, str, None] = None, *, path: Optional[str] = None,
            kinds: Optional[List[str]] = None) -> Dict[str, Any]:
        """Personal data in the version's tables, counted per file, column and kind."""
        q = {"path": path, "kinds": ",".join(kinds) if kinds else None}
        return self._t.api("GET", self._vpath(ref, version, "pii"), query=q)

    # -- lineage ----------------------------------------------------------

    def lineage(self, ref: str, version: Union[int, str, None] = None) -> DatasetLineage:
        return DatasetLineage.from_json(self._t.api("GET", self._vpath(ref, version, "lineage")))

    def link_run(self, ref: str, run_id: str, *, context: Optional[str] = None,
                 version: Union[int, str, None] = None) -> DatasetLineage:
        """Records that an MLflow run used the version."""
        body = {"run_id": run_id, **({"context": context} if context else {})}
        return DatasetLineage.from_json(self._t.api("POST", self._vpath(ref, version, "lineage", "runs"), json_body=body))

    def link_model_version(self, ref: str, model: str, model_version: int, *,
                           version: Union[int, str, None] = None) -> DatasetLineage:
        """Records that a registered model version used the version."""
        body = {"name": model, "version": int(model_version)}
        return DatasetLineage.from_json(self._t.api("POST", self._vpath(ref, version, "lineage", "model-versions"), json_body=body))

    def mlflow_dataset(self, ref: str, df: "pd.DataFrame", *, version: Union[int, str, None] = None,
                       targets: Optional[str] = None) -> Any:
        """An MLflow dataset of df whose source names this version, so that
        ``mlflow.log_input(ds)`` links the run to it (docs/data.md)."""
        import mlflow.data

        name, v = parse_ref(ref, version)
        if v == "latest":
            v = str(self.version(name).version.version)
        source = f"{self._t.url}{API}/datasets/{quote(name)}/versions/{v}"
        # mlflow.data exports from_pandas without a static declaration.
        return mlflow.data.from_pandas(df, source=source, name=name, targets=targets)  # type: ignore[attr-defined]


def _pick(m: _content.Manifest, path: Optional[str], ref: str) -> _content.Entry:
    if path is None:
        if len(m.files) != 1:
            raise ValueError(f"{ref} has {len(m.files)} files; name one with path=")
        return m.files[0]
    for e in m.files:
        if e.path == path:
            return e
    from .errors import NotFound

    raise NotFound(f"{ref} has no file {path!r}")


def _update(description: Optional[str], tags: Optional[Mapping[str, str]], delete_tags: Optional[List[str]]) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if description is not None:
        body["description"] = description
    if tags:
        body["tags"] = dict(tags)
    if delete_tags:
        body["delete_tags"] = list(delete_tags)
    return body


def _json_text(doc: Mapping[str, Any]) -> str:
    import json

    return json.dumps(doc)  # JSON is YAML
