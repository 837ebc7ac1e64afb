package lineage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// Over a real registry: a version copied to another workspace's model is
// linked both ways (relation copied), also for names holding LIKE's
// wildcards, and Visible hides what the request's workspace may not see.
func TestStoresCopiedAndVisible(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			reg := registry.New(db, tracking.New(db, tracking.Options{}))
			mk := func(model string, tags ...registry.KV) {
				t.Helper()
				if _, err := reg.GetRegisteredModel(ctx, model); err != nil {
					if _, err := reg.CreateRegisteredModel(ctx, model, "", nil); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: model, Source: "s3://bucket/" + model, Tags: tags}); err != nil {
					t.Fatal(err)
				}
			}
			mk("churn_v")                                                                     // churn_v/1
			mk("churnXv")                                                                     // churnXv/1: matches LIKE 'churn_v' but is not it
			mk("churn_prod", registry.KV{Key: lineage.CopiedFromTag, Value: "dev:churn_v/1"}) // the copy
			mk("other", registry.KV{Key: lineage.CopiedFromTag, Value: "dev:churnXv/1"})      // a copy of the look-alike
			mk("churn_v", registry.KV{Key: lineage.CopiedFromTag, Value: "nonsense"})         // churn_v/2: a bad tag is ignored
			hidden := map[string]bool{}
			st := &lineage.Stores{Registry: reg, Visible: func(_ context.Context, rt, name string) bool { return rt != "registered_model" || !hidden[name] }}
			edges := func(root lineage.NodeID, dir lineage.Direction) string {
				t.Helper()
				g, err := st.Walk(ctx, root, lineage.WalkOptions{Direction: dir})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, e := range g.Edges {
					out = append(out, e.From+" "+e.Relation+" "+e.To)
				}
				return strings.Join(out, "; ")
			}
			src := lineage.NodeID{Type: lineage.ModelVersion, Name: "churn_v", Version: 1}
			cp := lineage.NodeID{Type: lineage.ModelVersion, Name: "churn_prod", Version: 1}
			if got, want := edges(src, lineage.Downstream), "model:churn_v/1 copied model:churn_prod/1"; got != want {
				t.Errorf("downstream: %s, want %s", got, want)
			}
			if got, want := edges(cp, lineage.Upstream), "model:churn_v/1 copied model:churn_prod/1"; got != want {
				t.Errorf("upstream: %s, want %s", got, want)
			}
			if got := edges(lineage.NodeID{Type: lineage.ModelVersion, Name: "churn_v", Version: 2}, lineage.Both); got != "" {
				t.Errorf("a bad tag made edges: %s", got)
			}
			hidden["churn_prod"] = true
			if got := edges(src, lineage.Downstream); got != "" {
				t.Errorf("a hidden copy is still linked: %s", got)
			}
			if _, err := st.Walk(ctx, cp, lineage.WalkOptions{}); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("walk from a hidden node: %v, want not found", err)
			}
		})
	}
}
