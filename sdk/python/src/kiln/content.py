"""Kiln's content store, from Python: manifests, hashing, upload, download.

A dataset version is a *manifest* (the files of a file or a folder, each
with its size, BLAKE3-256 digest and executable bit) whose canonical
encoding hashes to the version's digest. Files are stored once, as
objects named by their digests, in the server's content store
(``/api/v1/content``). This module builds manifests exactly as
``kiln data add`` does (package ``dataset`` of the Go code), so the same
files give the same digests from either.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple, Union

from . import _blake3
from ._transport import API, Transport, quote

PathLike = Union[str, "os.PathLike[str]"]

MAX_MISSING_BATCH = 10000  # digests per existence check (api.MaxMissingBatch)
_READ = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One file of a manifest: slash-separated relative path, size,
    BLAKE3-256 digest (64 hex digits) and executable bit."""

    path: str
    size: int
    digest: str
    exec: bool = False

    def to_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"path": self.path, "size": self.size, "digest": self.digest}
        if self.exec:
            d["exec"] = True
        return d


@dataclass
class Manifest:
    """The files of a version: kind "file" (one entry, the file's base
    name) or "dir"; entries sorted by path."""

    kind: str
    files: List[Entry] = field(default_factory=list)

    def encode(self) -> bytes:
        """The canonical encoding: compact JSON, fields in order, files
        sorted by path (bytewise), as Go's encoding/json writes it."""
        files = sorted(self.files, key=lambda e: e.path.encode("utf-8"))
        doc = {"format": 1, "kind": self.kind, "files": [e.to_json() for e in files]}
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        # Go escapes U+2028 and U+2029 in JSON strings; Python does not.
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode("utf-8")

    @property
    def digest(self) -> str:
        """The version digest: BLAKE3-256 of the canonical encoding."""
        h = _blake3.new()
        h.update(self.encode())
        return str(h.hexdigest())

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.files)

    @classmethod
    def from_json(cls, doc: Dict[str, Any]) -> "Manifest":
        return cls(doc["kind"], [Entry(f["path"], int(f["size"]), f["digest"], bool(f.get("exec"))) for f in doc.get("files") or []])


def hash_file(path: PathLike) -> str:
    """The BLAKE3-256 digest of a file, in hex."""
    h = _blake3.new()
    with open(path, "rb") as f:
        while True:
            b = f.read(_READ)
            if not b:
                break
            h.update(b)
    return str(h.hexdigest())


def check_path(rel: str) -> None:
    """The rules of dataset.ValidatePath."""
    if not rel or len(rel.encode("utf-8")) > 4096 or "\0" in rel or "\\" in rel or rel.startswith("/"):
        raise ValueError(f"invalid file path {rel!r} in a dataset version")
    for seg in rel.split("/"):
        if seg in ("", ".", "..") or len(seg.encode("utf-8")) > 255:
            raise ValueError(f"invalid file path {rel!r} in a dataset version")


@dataclass
class LocalFiles:
    """A local file or folder and its manifest: ``paths`` maps each entry's
    path to the file it was read from."""

    root: Path
    manifest: Manifest
    paths: Dict[str, Path]


def scan(path: PathLike) -> LocalFiles:
    """Hashes a local file or folder into a manifest, as ``kiln data add``
    does: every regular file under a folder (symbolic links to files are
    followed; links to folders and other special files are errors), the
    executable bit from the mode."""
    root = Path(path)
    st = os.stat(root)
    if stat.S_ISREG(st.st_mode):
        e = Entry(root.name, st.st_size, hash_file(root), bool(st.st_mode & 0o111))
        return LocalFiles(root, Manifest("file", [e]), {e.path: root})
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{root} is neither a file nor a folder")
    entries, paths = [], {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in dirnames:
            if (d / name).is_symlink():
                raise ValueError(f"'{(d / name).relative_to(root).as_posix()}' is a symbolic link to a folder, which cannot be versioned")
        for name in filenames:
            p = d / name
            rel = p.relative_to(root).as_posix()
            fst = os.stat(p)  # follows links
            if stat.S_ISDIR(fst.st_mode):
                raise ValueError(f"'{rel}' is a symbolic link to a folder, which cannot be versioned")
            if not stat.S_ISREG(fst.st_mode):
                raise ValueError(f"'{rel}' is not a regular file")
            check_path(rel)
            entries.append(Entry(rel, fst.st_size, hash_file(p), bool(fst.st_mode & 0o111)))
            paths[rel] = p
    return LocalFiles(root, Manifest("dir", sorted(entries, key=lambda e: e.path.encode("utf-8"))), paths)


@dataclass
class PushStats:
    """What a push sent: objects and bytes uploaded (the others were
    already in the content store)."""

    objects: int = 0
    bytes: int = 0
    sent_objects: int = 0
    sent_bytes: int = 0


class Content:
    """The content store of one server (``/api/v1/content``)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def missing(self, digests: Iterable[str]) -> List[str]:
        """The digests of these objects that the store lacks, in order."""
        ds = list(dict.fromkeys(digests))
        out: List[str] = []
        for i in range(0, len(ds), MAX_MISSING_BATCH):
            got = self._t.api("POST", "/content/objects/missing", json_body={"digests": ds[i:i + MAX_MISSING_BATCH]})
            out.extend(got.get("missing") or [])
        return out

    def put_object(self, digest: str, data: Union[bytes, IO[bytes]], size: Optional[int] = None) -> None:
        """Uploads one object; the server stores it only if it hashes to digest."""
        if isinstance(data, (bytes, bytearray)):
            size = len(data)
        if size is None:
            raise ValueError("the size of a streamed object is needed")
        self._t.request("PUT", f"{API}/content/objects/{quote(digest)}", data=data,
                        content_type="application/octet-stream", headers={"Content-Length": str(size)})

    def put_manifest(self, m: Manifest) -> str:
        """Stores a manifest (its objects must be stored already); returns its digest."""
        digest = m.digest
        self._t.request("PUT", f"{API}/content/manifests/{digest}", data=m.encode(), content_type="application/json")
        return digest

    def get_manifest(self, digest: str) -> Manifest:
        return Manifest.from_json(self._t.api("GET", f"/content/manifests/{quote(digest)}"))

    def push(self, files: LocalFiles) -> Tuple[str, PushStats]:
        """Uploads the objects of a scanned folder that the store lacks, then
        its manifest; returns (manifest digest, PushStats)."""
        m = files.manifest
        st = PushStats(objects=len(m.files), bytes=m.total_size)
        by_digest = {e.digest: e for e in m.files}
        for d in self.missing(by_digest):
            e = by_digest[d]
            with open(files.paths[e.path], "rb") as f:
                self.put_object(d, f, e.size)
            st.sent_objects += 1
            st.sent_bytes += e.size
        return self.put_manifest(m), st

    def download(self, digest: str, dst: IO[bytes], *, verify: bool = True) -> int:
        """Writes an object to dst; with verify, checks that it hashes to digest
        (raises DigestMismatch otherwise). Returns the bytes written."""
        from . import errors

        class _Tee:
            def __init__(self) -> None:
                self.h: Any = _blake3.new() if verify else None
                self.n = 0

            def write(self, b: bytes) -> int:
                if self.h is not None:
                    self.h.update(b)
                self.n += len(b)
                return dst.write(b)

        tee = _Tee()
        self._t.request("GET", f"{API}/content/objects/{quote(digest)}", stream_to=tee,  # type: ignore[arg-type]
                        headers={"Accept": "application/octet-stream"})
        if tee.h is not None and tee.h.hexdigest() != digest:
            raise errors.DigestMismatch(f"object {digest} as downloaded hashes to {tee.h.hexdigest()}")
        return tee.n
