// Package lineage is Kiln's lineage graph: the nodes (dataset versions,
// runs, logged models, model versions, endpoints, monitors, alerts and
// pipeline runs), their stable ids ("dataset:NAME@N", "run:ID",
// "logged-model:ID", "model:NAME/V", "endpoint:NAME", "monitor:NAME",
// "alert:MONITOR/RULE", "pipeline-run:ID") and the edges between them.
//
// Walk walks the graph from a node over a Source, upstream, downstream or
// both, bounded in depth and size; Stores is the Source over Kiln's
// stores (served as GET /api/v1/lineage), and Graph.Dot renders an answer
// for Graphviz.
//
// Emitter turns the pipeline engine's lifecycle events into OpenLineage
// RunEvents, written to a JSON Lines file or posted to an HTTP endpoint.
//
// Cards builds a model version's card (the Model Card Toolkit's sections)
// from the stores and the edited text kept in kiln.card.* version tags,
// and renders it as Markdown or self-contained HTML.
package lineage
