package lineage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/store/storetest"
)

// A training-set version derives from its parent (the entities) and from
// every dataset version its kiln.training_set.source.* tags name; a path
// source is not a node.
func TestTrainingSetUpstream(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ds := dataset.NewStore(open(t))
			mk := func(name string, content string, parent *dataset.VersionRef, tags map[string]string) {
				t.Helper()
				m, err := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: name + ".parquet", Size: int64(len(content)), Digest: dataset.Sum([]byte(content))}})
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: name, Manifest: m, Parent: parent, Tags: tags}); err != nil {
					t.Fatal(err)
				}
			}
			mk("ents", "e", nil, nil)
			mk("stats", "s", nil, nil)
			mk("risk", "r1", nil, nil)
			mk("risk", "r2", nil, nil)
			mk("train", "t", &dataset.VersionRef{Dataset: "ents", Version: 1}, map[string]string{
				"kiln.training_set.source.stats": "stats@1", "kiln.training_set.source.risk": "risk@2",
				"kiln.training_set.source.files": "s3://bucket/features/", "kiln.training_set.view.stats": "3",
			})
			g, err := (&lineage.Stores{Datasets: ds}).Walk(ctx, lineage.NodeID{Type: lineage.DatasetVersion, Name: "train", Version: 1},
				lineage.WalkOptions{Direction: lineage.Upstream})
			if err != nil {
				t.Fatal(err)
			}
			var edges []string
			for _, e := range g.Edges {
				edges = append(edges, e.From+" "+e.Relation+" "+e.To)
			}
			got := strings.Join(edges, "; ")
			for _, from := range []string{"ents@1", "stats@1", "risk@2"} {
				if !strings.Contains(got, from+" derived ") {
					t.Errorf("no edge from %s: %s", from, got)
				}
			}
			if len(edges) != 3 {
				t.Errorf("%d edges, want 3: %s", len(edges), got)
			}
		})
	}
}
