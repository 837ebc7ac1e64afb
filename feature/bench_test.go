package feature

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/feature/online"
)

// BenchmarkOnline is one Service.Online call for one entity and ten
// features over the embedded store on SQLite: definitions read, key
// built, record fetched and decoded.
func BenchmarkOnline(b *testing.B) {
	ctx := context.Background()
	db := openSQLite(b)
	s := newTestService(b, db)
	s.OnlineStore = online.NewEmbedded(db)
	var csv strings.Builder
	csv.WriteString("customer_id,event_timestamp")
	var feats []Feature
	var refs []string
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&csv, ",f%d", i)
		feats = append(feats, Feature{Name: fmt.Sprintf("f%d", i), Type: TypeFloat64})
		refs = append(refs, fmt.Sprintf("stats:f%d", i))
	}
	csv.WriteString("\n")
	for k := 0; k < 1000; k++ {
		fmt.Fprintf(&csv, "%d,2026-01-01T00:00:00Z", k)
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&csv, ",%d.5", k+i)
		}
		csv.WriteString("\n")
	}
	pushCSV(b, s, "stats", map[string]string{"stats.csv": csv.String()})
	if _, _, err := s.ApplyEntity(ctx, customer(), ""); err != nil {
		b.Fatal(err)
	}
	v := &FeatureView{Metadata: Metadata{Name: "stats"}, Spec: FeatureViewSpec{Entities: []string{"customer"},
		Source: Source{Dataset: "stats"}, TimestampField: "event_timestamp", Features: feats}}
	if _, _, err := s.ApplyView(ctx, v, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Materialize(ctx, "stats", time.Time{}, time.Time{}, false); err != nil {
		b.Fatal(err)
	}
	req := OnlineRequest{Features: refs, Entities: map[string][]any{"customer_id": {int64(42)}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.Online(ctx, req)
		if err != nil || res.Results[1].Statuses[0] != StatusPresent {
			b.Fatal(err)
		}
	}
}
