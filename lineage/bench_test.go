package lineage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// BenchmarkWalk walks, over real stores (SQLite), a dataset version read
// by N runs, each registered as a version of one model: the answer has
// 2N+1 nodes.
func BenchmarkWalk(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			ctx := context.Background()
			db := storetest.TestDatabases(b)["sqlite"](b)
			trk := tracking.New(db, tracking.Options{})
			reg := registry.New(db, trk)
			ds := dataset.NewStore(db)
			m, err := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: "d.csv", Size: 4, Digest: dataset.Sum([]byte("a,b\n"))}})
			if err != nil {
				b.Fatal(err)
			}
			v, _, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: "data", Manifest: m})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := reg.CreateRegisteredModel(ctx, "m", "", nil); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				r, err := trk.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: "0"})
				if err != nil {
					b.Fatal(err)
				}
				if err := ds.LinkRun(ctx, dataset.RunLink{Version: v.Ref(), RunID: r.Info.RunID}); err != nil {
					b.Fatal(err)
				}
				if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: "s3://b/m", RunID: r.Info.RunID}); err != nil {
					b.Fatal(err)
				}
			}
			st := &lineage.Stores{Datasets: ds, Tracking: trk, Registry: reg}
			root := lineage.NodeID{Type: lineage.DatasetVersion, Name: "data", Version: v.Version}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g, err := st.Walk(ctx, root, lineage.WalkOptions{Direction: lineage.Downstream})
				if err != nil || len(g.Nodes) != 2*n+1 {
					b.Fatalf("%d nodes, %v", len(g.Nodes), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(2*n+1), "µs/node")
		})
	}
}
