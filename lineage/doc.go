// Package lineage is Kiln's lineage graph: the nodes (dataset versions,
// runs, logged models, model versions, endpoints, monitors, alerts and
// pipeline runs), their stable ids ("dataset:NAME@N", "run:ID",
// "logged-model:ID", "model:NAME/V", "endpoint:NAME", "monitor:NAME",
// "alert:MONITOR/RULE", "pipeline-run:ID") and the edges between them.
//
// This first part holds the node ids only; the walker, the API route and
// the OpenLineage events are not written yet.
package lineage
