package lineage

import (
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// NodeType is the kind of a lineage node.
type NodeType string

// Node types, each with its id prefix.
const (
	DatasetVersion NodeType = "dataset_version" // dataset:NAME@N
	Run            NodeType = "run"             // run:ID
	LoggedModel    NodeType = "logged_model"    // logged-model:ID
	ModelVersion   NodeType = "model_version"   // model:NAME/V
	Endpoint       NodeType = "endpoint"        // endpoint:NAME
	Monitor        NodeType = "monitor"         // monitor:NAME
	Alert          NodeType = "alert"           // alert:MONITOR/RULE
	PipelineRun    NodeType = "pipeline_run"    // pipeline-run:ID
)

var prefixes = map[string]NodeType{
	"dataset": DatasetVersion, "run": Run, "logged-model": LoggedModel, "model": ModelVersion,
	"endpoint": Endpoint, "monitor": Monitor, "alert": Alert, "pipeline-run": PipelineRun,
}

// MaxIDLength bounds a node id.
const MaxIDLength = 1024

// NodeID is a parsed node id: its type, its name (dataset, registered
// model, endpoint or monitor name; run, logged model or pipeline run id;
// an alert's monitor) and, for dataset and model versions, the version
// (an alert's rule is in Rule).
type NodeID struct {
	Type    NodeType
	Name    string
	Version int64
	Rule    string
}

// String formats the id in its canonical form.
func (n NodeID) String() string {
	switch n.Type {
	case DatasetVersion:
		return "dataset:" + n.Name + "@" + strconv.FormatInt(n.Version, 10)
	case ModelVersion:
		return "model:" + n.Name + "/" + strconv.FormatInt(n.Version, 10)
	case Alert:
		return "alert:" + n.Name + "/" + n.Rule
	case LoggedModel:
		return "logged-model:" + n.Name
	case PipelineRun:
		return "pipeline-run:" + n.Name
	}
	return string(n.Type) + ":" + n.Name
}

// ParseNodeID parses a node id; the version of a dataset or model is after
// the last "@" or "/" (names may hold either), a number from 1.
func ParseNodeID(s string) (NodeID, error) {
	if len(s) > MaxIDLength {
		return NodeID{}, errdefs.Invalid("node id longer than %d bytes", MaxIDLength)
	}
	prefix, rest, ok := strings.Cut(s, ":")
	typ, known := prefixes[prefix]
	if !ok || !known || rest == "" {
		return NodeID{}, errdefs.Invalid("invalid node id %q: want dataset:NAME@N, run:ID, logged-model:ID, model:NAME/V, endpoint:NAME, monitor:NAME, alert:MONITOR/RULE or pipeline-run:ID", clip(s))
	}
	n := NodeID{Type: typ, Name: rest}
	sep := ""
	switch typ {
	case DatasetVersion:
		sep = "@"
	case ModelVersion, Alert:
		sep = "/"
	}
	if sep == "" {
		return n, nil
	}
	i := strings.LastIndex(rest, sep)
	if i <= 0 || i == len(rest)-1 {
		return NodeID{}, errdefs.Invalid("invalid node id %q: want %s:NAME%sVERSION", clip(s), prefix, sep)
	}
	n.Name, n.Rule = rest[:i], rest[i+1:]
	if typ == Alert {
		return n, nil
	}
	v, err := strconv.ParseInt(n.Rule, 10, 64)
	if err != nil || v < 1 || strconv.FormatInt(v, 10) != n.Rule {
		return NodeID{}, errdefs.Invalid("invalid node id %q: the version must be a number from 1", clip(s))
	}
	n.Version, n.Rule = v, ""
	return n, nil
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
