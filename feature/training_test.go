package feature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// Late and duplicate rows: customer 1 has two rows at 01:00 (created 02:00
// and 05:00: the later created wins) and a row at 03:00 that arrived late.
const trainStatsCSV = "customer_id,event_timestamp,created,orders,spend\n" +
	"1,2026-01-01T01:00:00Z,2026-01-01T05:00:00Z,5,50.5\n" +
	"1,2026-01-01T01:00:00Z,2026-01-01T02:00:00Z,4,40\n" +
	"1,2026-01-01T03:00:00Z,2026-01-02T00:00:00Z,7,70\n" +
	"2,2026-01-01T01:00:00Z,2026-01-01T01:00:00Z,1,1\n"

const trainEntitiesCSV = "customer_id,event_timestamp,label\n" +
	"1,2026-01-01T02:00:00Z,1\n" + // the 01:00 duplicate created last: 5
	"1,2026-01-01T04:00:00Z,0\n" + // the late 03:00 row: 7
	"2,2026-01-01T04:00:00Z,1\n" + // 01:00 is 3h old, ttl 2h: null
	"3,2026-01-01T04:00:00Z,0\n" + // no rows: null
	"1,2026-01-01T00:30:00Z,1\n" // before every row: null

func TestTrainingSet(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		pushCSV(t, s, "train-stats", map[string]string{"stats.csv": trainStatsCSV})
		pushCSV(t, s, "train-entities", map[string]string{"entities.csv": trainEntitiesCSV})
		if _, _, err := s.ApplyEntity(ctx, &Entity{Metadata: Metadata{Name: "buyer"}, Spec: EntitySpec{JoinKeys: []string{"customer_id"}}}, "ann"); err != nil {
			t.Fatal(err)
		}
		view := &FeatureView{Metadata: Metadata{Name: "buyer_stats"}, Spec: FeatureViewSpec{
			Entities: []string{"buyer"}, Source: Source{Dataset: "train-stats"}, TimestampField: "event_timestamp",
			CreatedTimestampField: "created", TTL: Duration(2 * time.Hour),
			Features: []Feature{{Name: "orders", Type: TypeInt64}, {Name: "spend", Type: TypeFloat64}},
		}}
		if _, _, err := s.ApplyView(ctx, view, "ann"); err != nil {
			t.Fatal(err)
		}
		req := TrainingSetRequest{Entities: EntitiesSource{Dataset: "train-entities@1"},
			Features: []string{"buyer_stats:orders", "buyer_stats:spend"}, Output: TrainingSetOutput{Dataset: "train-out"}, Actor: "ann"}
		ver, err := s.TrainingSet(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if ver.Dataset != "train-out" || ver.Version != 1 || ver.CreatedBy != "ann" {
			t.Errorf("version %s@%d by %q", ver.Dataset, ver.Version, ver.CreatedBy)
		}
		if ver.Parent == nil || ver.Parent.String() != "train-entities@1" {
			t.Errorf("parent %v, want train-entities@1", ver.Parent)
		}
		wantTags := map[string]string{TagTrainingEntities: "train-entities@1", TagViewPrefix + "buyer_stats": "1",
			TagSourcePrefix + "buyer_stats": "train-stats@1", TagTrainingRows: "5", TagMatchedPrefix + "buyer_stats": "2"}
		for k, v := range wantTags {
			if ver.Tags[k] != v {
				t.Errorf("tag %s = %q, want %q", k, ver.Tags[k], v)
			}
		}
		var spec TrainingSetSpec
		if err := json.Unmarshal(ver.SplitSpec, &spec); err != nil || len(spec.Views) != 1 || spec.Views[0].Source != "train-stats@1" || spec.Views[0].TTL != "2h0m0s" {
			t.Errorf("spec %s (%v)", ver.SplitSpec, err)
		}

		rows := readVersion(t, s, ver)
		want := []string{"1 1 5 50.5", "1 0 7 70", "2 1 <nil> <nil>", "3 0 <nil> <nil>", "1 1 <nil> <nil>"}
		if len(rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(rows), len(want))
		}
		for i, r := range rows {
			got := fmt.Sprint(r[0], " ", r[2], " ", r[3], " ", r[4])
			if got != want[i] {
				t.Errorf("row %d: %s, want %s", i, got, want[i])
			}
		}

		// The same request again stores the same content: no new version.
		again, err := s.TrainingSet(ctx, req)
		if err != nil || again.Version != 1 {
			t.Errorf("again: version %v, %v", again, err)
		}
	})
}

func TestTrainingSetErrors(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		pushCSV(t, s, "err-entities", map[string]string{"entities.csv": trainEntitiesCSV})
		cases := []struct {
			name string
			req  TrainingSetRequest
			kind error
		}{
			{"no entities", TrainingSetRequest{Features: []string{"v:f"}, Output: TrainingSetOutput{Dataset: "o"}}, errdefs.ErrInvalidArgument},
			{"no features", TrainingSetRequest{Entities: EntitiesSource{Dataset: "err-entities@1"}, Output: TrainingSetOutput{Dataset: "o"}}, errdefs.ErrInvalidArgument},
			{"bad ref", TrainingSetRequest{Entities: EntitiesSource{Dataset: "err-entities@1"}, Features: []string{"nocolon"}, Output: TrainingSetOutput{Dataset: "o"}}, errdefs.ErrInvalidArgument},
			{"twice", TrainingSetRequest{Entities: EntitiesSource{Dataset: "err-entities@1"}, Features: []string{"v:f", "v:f"}, Output: TrainingSetOutput{Dataset: "o"}}, errdefs.ErrInvalidArgument},
			{"no output", TrainingSetRequest{Entities: EntitiesSource{Dataset: "err-entities@1"}, Features: []string{"v:f"}}, errdefs.ErrInvalidArgument},
			{"unknown view", TrainingSetRequest{Entities: EntitiesSource{Dataset: "err-entities@1"}, Features: []string{"nope:f"}, Output: TrainingSetOutput{Dataset: "o"}}, errdefs.ErrNotFound},
			{"unknown entities", TrainingSetRequest{Entities: EntitiesSource{Dataset: "nope@1"}, Features: []string{"v:f"}, Output: TrainingSetOutput{Dataset: "o"}}, errdefs.ErrNotFound},
		}
		for _, c := range cases {
			if _, err := s.TrainingSet(ctx, c.req); !errors.Is(err, c.kind) {
				t.Errorf("%s: %v, want %v", c.name, err, c.kind)
			}
		}
	})
}

// readVersion reads the single table file of a version.
func readVersion(t *testing.T, s *Service, v *dataset.Version) [][]any {
	t.Helper()
	ctx := context.Background()
	m, err := s.Content.GetManifest(ctx, v.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 1 {
		t.Fatalf("%d files", len(m.Files))
	}
	dir := t.TempDir()
	if _, err := dataset.Checkout(ctx, s.Content, m, dir, dataset.CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := table.Open(ctx, filepath.Join(dir, m.Files[0].Path), table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := os.Stat(filepath.Join(dir, m.Files[0].Path)); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < b.Len; i++ {
			row := make([]any, len(b.Columns))
			for j := range b.Columns {
				c := &b.Columns[j]
				switch {
				case c.Null(i):
					row[j] = nil
				case c.Type == table.Int64:
					row[j] = c.Ints[i]
				case c.Type == table.Float64:
					row[j] = c.Floats[i]
				default:
					row[j] = c.Format(i, &r.Schema().Fields[j])
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}
