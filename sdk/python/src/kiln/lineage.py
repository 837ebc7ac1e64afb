"""The lineage graph: dataset versions, runs, logged models, model
versions, endpoints, monitors, alerts and pipeline runs, and how each came
from the others (``GET /api/v1/lineage``; docs/lineage.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ._resource import Resource, attr, many
from ._transport import Transport, quote


@dataclass
class LineageNode(Resource):
    """A node: ``dataset:NAME@N``, ``run:ID``, ``logged-model:ID``,
    ``model:NAME/V``, ``endpoint:NAME``, ``monitor:NAME``,
    ``alert:MONITOR/RULE`` or ``pipeline-run:ID``."""

    id: str = ""
    type: str = ""
    label: str = ""
    attrs: Dict[str, str] = attr(factory=dict)


@dataclass
class LineageEdge(Resource):
    """from_ is upstream of to (relation: derived, input, output, registered,
    trained, serves, watches, fired, triggered, ran, resumed)."""

    from_: str = attr("", json="from")
    to: str = ""
    relation: str = ""


@dataclass
class LineageGraph(Resource):
    root: str = ""
    direction: str = ""
    depth: int = 0
    truncated: bool = False
    nodes: List[LineageNode] = attr(factory=list, conv=many(LineageNode))
    edges: List[LineageEdge] = attr(factory=list, conv=many(LineageEdge))

    def node(self, id: str) -> LineageNode:
        for n in self.nodes:
            if n.id == id:
                return n
        raise KeyError(id)

    def ids(self, type: Optional[str] = None) -> List[str]:
        """The ids of the nodes (of one type: dataset_version, run, model_version, ...)."""
        return [n.id for n in self.nodes if type is None or n.type == type]

    def upstream(self, id: str) -> List[str]:
        """The nodes with an edge into id."""
        return [e.from_ for e in self.edges if e.to == id]

    def downstream(self, id: str) -> List[str]:
        """The nodes id has an edge into."""
        return [e.to for e in self.edges if e.from_ == id]


class Lineage:
    """``client.lineage``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def graph(self, node: str, *, direction: str = "both", depth: Optional[int] = None,
              max_nodes: Optional[int] = None) -> LineageGraph:
        """The graph around node (e.g. "model:churn/3"), walked upstream,
        downstream or both, depth 1-25 (default 5)."""
        q = {"node": node, "direction": direction, "depth": depth, "max_nodes": max_nodes}
        return LineageGraph.from_json(self._t.api("GET", "/lineage", query=q))

    def dot(self, node: str, *, direction: str = "both", depth: Optional[int] = None) -> str:
        """The same graph in Graphviz dot."""
        q = {"node": node, "direction": direction, "depth": depth, "format": "dot"}
        return self._t.request("GET", "/api/v1/lineage", query=q, headers={"Accept": "text/vnd.graphviz"}).text()

    def run_datasets(self, run_id: str) -> List[Dict[str, Any]]:
        """The dataset versions an MLflow run used (version, context, ...)."""
        return list(self._t.api("GET", f"/runs/{quote(run_id)}/datasets").get("datasets") or [])

    def model_datasets(self, model: str, version: int) -> List[Dict[str, Any]]:
        """The dataset versions a registered model version used (linked, or through its run)."""
        got = self._t.api("GET", f"/models/{quote(model)}/versions/{int(version)}/datasets")
        return list(got.get("datasets") or [])
