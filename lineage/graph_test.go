package lineage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// mapSource is a Source over a fixed edge list (From upstream of To).
type mapSource struct {
	edges   []Edge
	missing map[string]bool
	calls   int
}

func (m *mapSource) Describe(_ context.Context, id NodeID) (Node, error) {
	if m.missing[id.String()] {
		return Node{}, errdefs.NotFound("no %s", id)
	}
	return Node{ID: id.String(), Type: id.Type, Label: id.Name}, nil
}

func (m *mapSource) links(id NodeID, up bool) ([]Link, error) {
	m.calls++
	var out []Link
	for _, e := range m.edges {
		from, to := e.From, e.To
		if up {
			from, to = to, from
		}
		if from == id.String() {
			n, err := ParseNodeID(to)
			if err != nil {
				return nil, err
			}
			out = append(out, Link{Node: n, Relation: e.Relation})
		}
	}
	return out, nil
}

func (m *mapSource) Upstream(_ context.Context, id NodeID) ([]Link, error) { return m.links(id, true) }
func (m *mapSource) Downstream(_ context.Context, id NodeID) ([]Link, error) {
	return m.links(id, false)
}

// The closed loop's chain, with a sibling run on the same data and a
// deleted model version.
var loop = []Edge{
	{"dataset:churn@1", "dataset:churn@2", RelDerived},
	{"dataset:churn@2", "run:r1", RelInput},
	{"dataset:churn@2", "run:sibling", RelInput},
	{"run:r1", "logged-model:m-1", RelOutput},
	{"logged-model:m-1", "model:churn/1", RelRegistered},
	{"logged-model:m-1", "model:churn/2", RelRegistered},
	{"model:churn/1", "endpoint:churn-api", RelServes},
	{"endpoint:churn-api", "monitor:churn", RelWatches},
	{"monitor:churn", "alert:churn/data-drift", RelFired},
	{"alert:churn/data-drift", "pipeline-run:p1", RelTriggered},
	{"pipeline-run:p1", "run:r2", RelRan},
}

func ids(g *Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.ID)
	}
	return out
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	root := func(s string) NodeID {
		n, err := ParseNodeID(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cases := []struct {
		name      string
		root      string
		opts      WalkOptions
		missing   string
		nodes     string // space-separated, in order
		edges     int
		truncated bool
	}{
		{"downstream from data", "dataset:churn@2", WalkOptions{Direction: Downstream, Depth: 25},
			"", "dataset:churn@2 run:r1 run:sibling logged-model:m-1 model:churn/1 model:churn/2 endpoint:churn-api monitor:churn alert:churn/data-drift pipeline-run:p1 run:r2", 10, false},
		{"upstream from the alert", "alert:churn/data-drift", WalkOptions{Direction: Upstream, Depth: 25},
			"", "alert:churn/data-drift monitor:churn endpoint:churn-api model:churn/1 logged-model:m-1 run:r1 dataset:churn@2 dataset:churn@1", 7, false},
		// Both ways from the model version: its ancestors and descendants,
		// not the sibling run or the other version of the same logged model.
		{"both from a version", "model:churn/1", WalkOptions{Depth: 2},
			"", "model:churn/1 logged-model:m-1 run:r1 endpoint:churn-api monitor:churn", 4, false},
		{"depth 1", "run:r1", WalkOptions{Direction: Both, Depth: 1}, "", "run:r1 dataset:churn@2 logged-model:m-1", 2, false},
		{"bounded", "dataset:churn@1", WalkOptions{Direction: Downstream, Depth: 25, MaxNodes: 3}, "", "dataset:churn@1 dataset:churn@2 run:r1", 2, true},
		{"deleted neighbour left out", "logged-model:m-1", WalkOptions{Direction: Downstream, Depth: 1}, "model:churn/2", "logged-model:m-1 model:churn/1", 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &mapSource{edges: loop, missing: map[string]bool{c.missing: c.missing != ""}}
			g, err := Walk(ctx, src, root(c.root), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ids(g), " "); got != c.nodes {
				t.Errorf("nodes\n got %s\nwant %s", got, c.nodes)
			}
			if len(g.Edges) != c.edges || g.Truncated != c.truncated {
				t.Errorf("edges %d truncated %v, want %d %v: %+v", len(g.Edges), g.Truncated, c.edges, c.truncated, g.Edges)
			}
			for _, e := range g.Edges {
				found := false
				for _, l := range loop {
					found = found || l == e
				}
				if !found {
					t.Errorf("edge %+v is not in the graph (reversed?)", e)
				}
			}
		})
	}
}

func TestWalkErrors(t *testing.T) {
	ctx := context.Background()
	src := &mapSource{edges: loop, missing: map[string]bool{"run:gone": true}}
	if _, err := Walk(ctx, src, NodeID{Type: Run, Name: "gone"}, WalkOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing root: %v", err)
	}
	for _, o := range []WalkOptions{{Depth: -1}, {Depth: MaxDepth + 1}, {MaxNodes: MaxMaxNodes + 1}, {Direction: "sideways"}} {
		if _, err := Walk(ctx, src, NodeID{Type: Run, Name: "r1"}, o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want invalid", o, err)
		}
	}
}

func TestWalkCycle(t *testing.T) {
	// A resumed run that (wrongly) points back: the walk still ends.
	src := &mapSource{edges: []Edge{
		{"pipeline-run:a", "pipeline-run:b", RelResumed},
		{"pipeline-run:b", "pipeline-run:a", RelResumed},
	}}
	g, err := Walk(context.Background(), src, NodeID{Type: PipelineRun, Name: "a"}, WalkOptions{Depth: MaxDepth})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 2 || len(g.Edges) != 2 || src.calls > 4 {
		t.Errorf("nodes %v edges %v after %d calls", ids(g), g.Edges, src.calls)
	}
}

func TestDot(t *testing.T) {
	g := &Graph{Root: "run:r1", Nodes: []Node{{ID: "run:r1", Type: Run, Label: `train "v2"`}, {ID: "dataset:a@1", Type: DatasetVersion, Label: "a@1"}},
		Edges: []Edge{{From: "dataset:a@1", To: "run:r1", Relation: RelInput}}}
	d := g.Dot()
	for _, want := range []string{`digraph lineage {`, `"run:r1" [label="run\ntrain \"v2\"", fillcolor="#fef3c7", penwidth=3];`,
		`"dataset:a@1" -> "run:r1" [label="input"];`} {
		if !strings.Contains(d, want) {
			t.Errorf("dot lacks %s:\n%s", want, d)
		}
	}
}
