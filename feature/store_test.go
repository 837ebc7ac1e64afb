package feature

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

func customer() *Entity {
	return &Entity{Metadata: Metadata{Name: "customer"}, Spec: EntitySpec{JoinKeys: []string{"customer_id"}}}
}

const statsCSV = "customer_id,event_timestamp,orders_7d,spend_7d,tier\n" +
	"1,2026-01-01T00:00:00Z,3,10.5,gold\n" +
	"2,2026-01-01T00:00:00Z,1,2,silver\n"

func statsView(source string) *FeatureView {
	return &FeatureView{Metadata: Metadata{Name: "customer_stats"}, Spec: FeatureViewSpec{
		Entities:       []string{"customer"},
		Source:         Source{Dataset: source},
		TimestampField: "event_timestamp",
		TTL:            Duration(48 * time.Hour),
		Features: []Feature{
			{Name: "orders_7d", Type: TypeInt64, Default: 0},
			{Name: "spend_7d", Type: TypeFloat64},
			{Name: "tier", Type: TypeString},
		},
	}}
}

func TestApplyVersions(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		pushCSV(t, s, "stats", map[string]string{"stats.csv": statsCSV})
		if _, _, err := s.ApplyView(ctx, statsView("stats@1"), "ann"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `entity "customer" does not exist`) {
			t.Fatalf("view before its entity: %v", err)
		}
		steps := []struct {
			name    string
			apply   func() (int64, bool, error)
			version int64
			changed bool
		}{
			{"entity", func() (int64, bool, error) { return s.ApplyEntity(ctx, customer(), "ann") }, 1, true},
			{"entity again", func() (int64, bool, error) { return s.ApplyEntity(ctx, customer(), "bob") }, 1, false},
			{"view", func() (int64, bool, error) { return s.ApplyView(ctx, statsView("stats@1"), "ann") }, 1, true},
			{"view again, default as float", func() (int64, bool, error) {
				v := statsView("stats@1")
				v.Spec.Features[0].Default = float64(0)
				on := true
				v.Spec.Online = &on
				return s.ApplyView(ctx, v, "ann")
			}, 1, false},
			{"view changed", func() (int64, bool, error) {
				v := statsView("stats@1")
				v.Spec.TTL = Duration(time.Hour)
				return s.ApplyView(ctx, v, "bob")
			}, 2, true},
		}
		for _, st := range steps {
			v, changed, err := st.apply()
			if err != nil || v != st.version || changed != st.changed {
				t.Fatalf("%s: version %d changed %v err %v; want %d %v", st.name, v, changed, err, st.version, st.changed)
			}
		}
		v1, n, err := s.View(ctx, "customer_stats", 1)
		if err != nil || n != 1 || v1.Spec.TTL.D() != 48*time.Hour {
			t.Fatalf("version 1: %+v %d %v", v1, n, err)
		}
		latest, n, err := s.View(ctx, "customer_stats", 0)
		if err != nil || n != 2 || latest.Spec.TTL.D() != time.Hour {
			t.Fatalf("latest: %+v %d %v", latest, n, err)
		}
		keys, err := s.JoinKeys(ctx, latest)
		if err != nil || len(keys) != 1 || keys[0] != "customer_id" {
			t.Fatalf("join keys %v %v", keys, err)
		}
		if err := s.DeleteEntity(ctx, "customer", "ann"); !errors.Is(err, errdefs.ErrInvalidState) {
			t.Fatalf("deleting a used entity: %v", err)
		}
		changedKeys := customer()
		changedKeys.Spec.JoinKeys = []string{"cid"}
		if _, _, err := s.ApplyEntity(ctx, changedKeys, "ann"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("changing join keys of a used entity: %v", err)
		}
		if err := s.DeleteView(ctx, "customer_stats", "ann"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.View(ctx, "customer_stats", 0); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleted view: %v", err)
		}
		if _, _, err := s.View(ctx, "customer_stats", 2); err != nil {
			t.Fatalf("a deleted view's version stays readable: %v", err)
		}
		if err := s.DeleteView(ctx, "customer_stats", "ann"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		vs, err := s.ViewVersions(ctx, "customer_stats")
		if err != nil || len(vs) != 3 || !vs[0].Status.Deleted || vs[0].FeatureView != nil || vs[2].Status.CreatedBy != "ann" {
			t.Fatalf("versions %+v %v", vs, err)
		}
		views, err := s.Views(ctx)
		if err != nil || len(views) != 0 {
			t.Fatalf("views after delete: %v %v", views, err)
		}
		if v, changed, err := s.ApplyView(ctx, statsView("stats@1"), "ann"); err != nil || v != 4 || !changed {
			t.Fatalf("re-apply after delete: %d %v %v", v, changed, err)
		}
		if err := s.DeleteView(ctx, "customer_stats", "ann"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteEntity(ctx, "customer", "ann"); err != nil {
			t.Fatalf("deleting an unused entity: %v", err)
		}
		ents, err := s.Entities(ctx)
		if err != nil || len(ents) != 0 {
			t.Fatalf("entities %v %v", ents, err)
		}
	})
}

func TestApplyViewChecksSource(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		pushCSV(t, s, "stats", map[string]string{"stats.csv": statsCSV})
		if _, _, err := s.ApplyEntity(ctx, customer(), ""); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			edit func(v *FeatureView)
			want string // "" = accepted
		}{
			{"ok", func(v *FeatureView) {}, ""},
			{"missing feature column", func(v *FeatureView) { v.Spec.Features[1].Name = "spend_30d" }, `spec.features[1].type: the source has no column "spend_30d"`},
			{"wrong type", func(v *FeatureView) { v.Spec.Features[2].Type = TypeInt64 }, `spec.features[2].type: column "tier" of the source is string, not compatible with int64`},
			{"float from int", func(v *FeatureView) { v.Spec.Features[0].Type = TypeFloat64 }, ""},
			{"timestamp not a time", func(v *FeatureView) { v.Spec.TimestampField = "tier"; v.Spec.Features = v.Spec.Features[:2] }, `spec.timestamp_field: column "tier" of the source is string`},
			{"no dataset version", func(v *FeatureView) { v.Spec.Source.Dataset = "stats@7" }, `spec.source.dataset: Dataset 'stats' has no version 7`},
			{"no dataset", func(v *FeatureView) { v.Spec.Source.Dataset = "nope" }, `spec.source.dataset`},
			{"feature is a join key", func(v *FeatureView) { v.Spec.Features[0].Name = "customer_id" }, `is a join key`},
			{"unreachable path is not checked", func(v *FeatureView) { v.Spec.Source = Source{Path: "/nonexistent/stats.parquet"} }, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				v := statsView("stats@1")
				c.edit(v)
				_, _, err := s.ApplyView(ctx, v, "")
				if c.want == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v, want %q", err, c.want)
				}
			})
		}
	})
}
