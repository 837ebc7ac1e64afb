package lineage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Direction says which way a walk follows the edges: upstream (towards
// the data a node came from), downstream (towards what was made from it)
// or both (the union of the two walks, never sideways to siblings).
type Direction string

// Directions.
const (
	Upstream   Direction = "upstream"
	Downstream Direction = "downstream"
	Both       Direction = "both"
)

// ParseDirection parses a direction; "" is Both.
func ParseDirection(s string) (Direction, error) {
	switch d := Direction(strings.ToLower(s)); d {
	case "":
		return Both, nil
	case Upstream, Downstream, Both:
		return d, nil
	}
	return "", errdefs.Invalid("invalid direction %q: want upstream, downstream or both", clip(s))
}

// Relations: what an edge From → To means (From is always the upstream
// end).
const (
	RelDerived    = "derived"    // dataset version → a version cut or derived from it
	RelInput      = "input"      // dataset version or logged model → a run that used it
	RelOutput     = "output"     // run → a logged model it produced
	RelRegistered = "registered" // logged model or run → the model version registered from it
	RelTrained    = "trained"    // dataset version → a model version linked to it directly
	RelServes     = "serves"     // model version → an endpoint routing (or mirroring) to it
	RelWatches    = "watches"    // endpoint → a monitor of it
	RelFired      = "fired"      // monitor → one of its alerts
	RelTriggered  = "triggered"  // alert, dataset or model version → a pipeline run it started
	RelRan        = "ran"        // pipeline run → a tracking run of it (the parent or a step's)
	RelResumed    = "resumed"    // pipeline run → the run that resumed it
)

// Link is one neighbour of a node and the relation between them.
type Link struct {
	Node     NodeID
	Relation string
}

// Node is a node of a graph answer: its id, type, a short label and a few
// attributes (state, times, digests) for display.
type Node struct {
	ID    string            `json:"id"`
	Type  NodeType          `json:"type"`
	Label string            `json:"label"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Edge is a directed edge, From upstream of To.
type Edge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Relation string `json:"relation"`
}

// Graph is the answer of a walk.
type Graph struct {
	Root      string    `json:"root"`
	Direction Direction `json:"direction"`
	Depth     int       `json:"depth"`
	Nodes     []Node    `json:"nodes"`
	Edges     []Edge    `json:"edges"`
	// Truncated says MaxNodes stopped the walk before Depth did.
	Truncated bool `json:"truncated,omitempty"`
}

// Source answers for one node: what it is and its neighbours each way.
// Describe returns an errdefs.NotFound error for a node that does not
// exist; a neighbour that no longer exists is left out by the walker.
type Source interface {
	Describe(ctx context.Context, id NodeID) (Node, error)
	Upstream(ctx context.Context, id NodeID) ([]Link, error)
	Downstream(ctx context.Context, id NodeID) ([]Link, error)
}

// Bounds of a walk.
const (
	DefaultDepth    = 5
	MaxDepth        = 25
	DefaultMaxNodes = 500
	MaxMaxNodes     = 5000
)

// WalkOptions bound a walk.
type WalkOptions struct {
	Direction Direction
	Depth     int // DefaultDepth when 0, at most MaxDepth
	MaxNodes  int // DefaultMaxNodes when 0, at most MaxMaxNodes
}

// Walk walks the graph from root breadth first, up to opts.Depth edges
// away and at most opts.MaxNodes nodes, and returns the nodes (root
// first, then in the order reached) and the edges between them.
func Walk(ctx context.Context, src Source, root NodeID, opts WalkOptions) (*Graph, error) {
	if opts.Direction == "" {
		opts.Direction = Both
	}
	if _, err := ParseDirection(string(opts.Direction)); err != nil {
		return nil, err
	}
	switch {
	case opts.Depth == 0:
		opts.Depth = DefaultDepth
	case opts.Depth < 0 || opts.Depth > MaxDepth:
		return nil, errdefs.Invalid("depth %d out of range: want 1 to %d", opts.Depth, MaxDepth)
	}
	switch {
	case opts.MaxNodes == 0:
		opts.MaxNodes = DefaultMaxNodes
	case opts.MaxNodes < 0 || opts.MaxNodes > MaxMaxNodes:
		return nil, errdefs.Invalid("max_nodes %d out of range: want 1 to %d", opts.MaxNodes, MaxMaxNodes)
	}
	rootNode, err := src.Describe(ctx, root)
	if err != nil {
		return nil, err
	}
	w := &walker{src: src, max: opts.MaxNodes, seen: map[string]bool{rootNode.ID: true}, edges: map[Edge]bool{}}
	g := &Graph{Root: rootNode.ID, Direction: opts.Direction, Depth: opts.Depth, Nodes: []Node{rootNode}}
	w.g = g
	if opts.Direction != Downstream {
		if err := w.walk(ctx, root, Upstream, opts.Depth); err != nil {
			return nil, err
		}
	}
	if opts.Direction != Upstream {
		if err := w.walk(ctx, root, Downstream, opts.Depth); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(g.Edges, func(a, b Edge) int {
		return strings.Compare(a.From+"\x00"+a.To+"\x00"+a.Relation, b.From+"\x00"+b.To+"\x00"+b.Relation)
	})
	if g.Edges == nil {
		g.Edges = []Edge{}
	}
	return g, nil
}

type walker struct {
	src   Source
	max   int
	g     *Graph
	seen  map[string]bool
	edges map[Edge]bool
}

func (w *walker) walk(ctx context.Context, root NodeID, dir Direction, depth int) error {
	frontier := []NodeID{root}
	expanded := map[string]bool{}
	for d := 0; d < depth && len(frontier) > 0; d++ {
		var next []NodeID
		for _, id := range frontier {
			if expanded[id.String()] {
				continue
			}
			expanded[id.String()] = true
			var links []Link
			var err error
			if dir == Upstream {
				links, err = w.src.Upstream(ctx, id)
			} else {
				links, err = w.src.Downstream(ctx, id)
			}
			if err != nil {
				return fmt.Errorf("lineage of %s: %w", id, err)
			}
			for _, l := range links {
				key := l.Node.String()
				if !w.seen[key] {
					if len(w.g.Nodes) >= w.max {
						w.g.Truncated = true
						continue
					}
					n, err := w.src.Describe(ctx, l.Node)
					if errors.Is(err, errdefs.ErrNotFound) {
						continue // deleted since it was linked
					}
					if err != nil {
						return fmt.Errorf("lineage node %s: %w", key, err)
					}
					w.seen[key] = true
					w.g.Nodes = append(w.g.Nodes, n)
				}
				e := Edge{From: key, To: id.String(), Relation: l.Relation}
				if dir == Downstream {
					e.From, e.To = id.String(), key
				}
				if !w.edges[e] {
					w.edges[e] = true
					w.g.Edges = append(w.g.Edges, e)
				}
				next = append(next, l.Node)
			}
		}
		frontier = next
	}
	return nil
}

// Dot renders the graph in Graphviz's dot language: one box per node
// (coloured by type, the root bold) and one labelled arrow per edge.
func (g *Graph) Dot() string {
	var b strings.Builder
	b.WriteString("digraph lineage {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n")
	for _, n := range g.Nodes {
		attrs := fmt.Sprintf("label=%s, fillcolor=%q", dotQuote(string(n.Type)+"\n"+n.Label), dotColors[n.Type])
		if n.ID == g.Root {
			attrs += ", penwidth=3"
		}
		fmt.Fprintf(&b, "  %s [%s];\n", dotQuote(n.ID), attrs)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(e.From), dotQuote(e.To), dotQuote(e.Relation))
	}
	b.WriteString("}\n")
	return b.String()
}

var dotColors = map[NodeType]string{
	DatasetVersion: "#dbeafe", Run: "#fef3c7", LoggedModel: "#fde68a", ModelVersion: "#dcfce7",
	Endpoint: "#e9d5ff", Monitor: "#fce7f3", Alert: "#fecaca", PipelineRun: "#e5e7eb",
}

// dotQuote quotes s as a dot string: backslashes and quotes escaped,
// newlines as \n.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}
