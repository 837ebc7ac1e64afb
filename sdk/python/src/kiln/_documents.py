"""Documents (Endpoint, Monitor, Pipeline, GatePolicy, AlertReceiver ...)
as the client takes them: a dict, or YAML or JSON text."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple, Union

Document = Union[Mapping[str, Any], str, bytes]


def parse(doc: Document, kind: str) -> Dict[str, Any]:
    """The document as a dict: text is read as JSON, else as YAML (which
    needs PyYAML). Its kind, when it says one, must be kind."""
    if isinstance(doc, (str, bytes)):
        text = doc.decode("utf-8") if isinstance(doc, bytes) else doc
        try:
            out = json.loads(text)
        except ValueError:
            try:
                import yaml
            except ImportError:  # pragma: no cover - PyYAML is usually there
                raise ValueError(f"a {kind} document given as YAML text needs PyYAML (pip install pyyaml), "
                                 "or pass the document as a dict") from None
            out = yaml.safe_load(text)
    else:
        out = dict(doc)
    if not isinstance(out, dict):
        raise ValueError(f"a {kind} document is a mapping, not {type(out).__name__}")
    if out.get("kind") not in (None, kind):
        raise ValueError(f"the document is a {out.get('kind')}, not a {kind}")
    return out


def name_of(doc: Dict[str, Any], name: Optional[str], kind: str) -> str:
    """The name to PUT the document under: name, else metadata.name."""
    meta = doc.get("metadata") or {}
    got = name or meta.get("name")
    if not got:
        raise ValueError(f"the {kind} document has no metadata.name; pass name=")
    return str(got)


def prepare(doc: Document, name: Optional[str], kind: str) -> Tuple[str, Dict[str, Any]]:
    d = parse(doc, kind)
    return name_of(d, name, kind), d
