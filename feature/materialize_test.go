package feature

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// Rows of customers 1–3: 1 has a later row and two rows at one event
// time (created breaks the tie); 2 is old; 3 is after the interval of a
// full run that ends at 2026-01-03.
const rowsV1 = "customer_id,event_timestamp,created,orders_7d,spend_7d,tier\n" +
	"1,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z,1,1.5,bronze\n" +
	"1,2026-01-02T00:00:00Z,2026-01-02T00:00:00Z,2,2.5,silver\n" +
	"1,2026-01-02T00:00:00Z,2026-01-02T06:00:00Z,3,,gold\n" +
	"2,2025-12-01T00:00:00Z,2025-12-01T00:00:00Z,9,9.5,gold\n" +
	"3,2026-01-04T00:00:00Z,2026-01-04T00:00:00Z,4,4.5,silver\n"

// Version 2 adds a newer row of 1, a row of 4, and a late row of 2 (an
// event time before the last materialization's end: incremental runs do
// not see it, as Feast's).
const rowsV2 = rowsV1 +
	"1,2026-01-05T00:00:00Z,2026-01-05T00:00:00Z,5,5.5,platinum\n" +
	"4,2026-01-05T12:00:00Z,2026-01-05T12:00:00Z,6,6.5,bronze\n" +
	"2,2026-01-02T00:00:00Z,2026-01-06T00:00:00Z,10,10.5,gold\n"

func setupStats(t *testing.T, s *Service, ttl time.Duration) {
	t.Helper()
	ctx := context.Background()
	pushCSV(t, s, "stats", map[string]string{"stats.csv": rowsV1})
	if _, _, err := s.ApplyEntity(ctx, customer(), ""); err != nil {
		t.Fatal(err)
	}
	v := statsView("stats")
	v.Spec.CreatedTimestampField = "created"
	v.Spec.TTL = Duration(ttl)
	if _, _, err := s.ApplyView(ctx, v, ""); err != nil {
		t.Fatal(err)
	}
}

func lookup(t *testing.T, s *Service, defaults bool, ids ...any) *OnlineResult {
	t.Helper()
	res, err := s.Online(context.Background(), OnlineRequest{
		Features:    []string{"customer_stats:orders_7d", "customer_stats:tier", "customer_stats:spend_7d"},
		Entities:    map[string][]any{"customer_id": ids},
		UseDefaults: defaults,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMaterializeAndLookup(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		now := ts("2026-01-03T00:00:00Z")
		s.now = func() time.Time { return now }
		setupStats(t, s, 35*24*time.Hour)
		m, err := s.Materialize(ctx, "customer_stats", time.Time{}, now, false)
		if err != nil {
			t.Fatal(err)
		}
		if m.State != StateSucceeded || m.RowsRead != 5 || m.KeysWritten != 2 || m.Source != "stats@1" || m.Start != nil {
			t.Fatalf("materialization %+v", m)
		}
		res := lookup(t, s, false, 1, "2", 3.0)
		if !reflect.DeepEqual(res.FeatureNames, []string{"customer_id", "customer_stats:orders_7d", "customer_stats:tier", "customer_stats:spend_7d"}) {
			t.Fatalf("names %v", res.FeatureNames)
		}
		wantOrders := []any{int64(3), int64(9), nil}
		wantTier := []any{"gold", "gold", nil}
		wantSpend := []any{nil, 9.5, nil}
		if got := res.Results[1].Values; !reflect.DeepEqual(got, wantOrders) {
			t.Errorf("orders %v, want %v", got, wantOrders)
		}
		if got := res.Results[2].Values; !reflect.DeepEqual(got, wantTier) {
			t.Errorf("tier %v, want %v", got, wantTier)
		}
		if got := res.Results[3].Values; !reflect.DeepEqual(got, wantSpend) {
			t.Errorf("spend %v, want %v", got, wantSpend)
		}
		if got, want := res.Results[1].Statuses, []string{StatusPresent, StatusPresent, StatusNotFound}; !reflect.DeepEqual(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
		if got := res.Results[3].Statuses[0]; got != StatusNullValue {
			t.Errorf("null spend: %s", got)
		}
		if got := res.Results[1].EventTimestamps[0]; !got.Equal(ts("2026-01-02T00:00:00Z")) {
			t.Errorf("event time %v", got)
		}
		// Ten days later customer 2's row (2025-12-01) is
		// outside the TTL of 35 days, 1's is not; defaults fill them when asked.
		now = ts("2026-01-13T00:00:00Z")
		res = lookup(t, s, false, 1, 2)
		if got, want := res.Results[1].Statuses, []string{StatusPresent, StatusOutsideMaxAge}; !reflect.DeepEqual(got, want) {
			t.Errorf("TTL statuses %v, want %v", got, want)
		}
		if res.Results[1].Values[1] != nil {
			t.Errorf("an expired value is served: %v", res.Results[1].Values[1])
		}
		res = lookup(t, s, true, 2, 99)
		if got, want := res.Results[1].Statuses, []string{StatusDefault, StatusDefault}; !reflect.DeepEqual(got, want) {
			t.Errorf("default statuses %v, want %v", got, want)
		}
		if got, want := res.Results[1].Values, []any{int64(0), int64(0)}; !reflect.DeepEqual(got, want) {
			t.Errorf("defaults %v, want %v", got, want)
		}
		if got := res.Results[2].Statuses[1]; got != StatusNotFound {
			t.Errorf("a feature without a default: %s", got)
		}

		// Incremental: from 2026-01-03 to 2026-01-06 over version 2.
		pushCSV(t, s, "stats", map[string]string{"stats.csv": rowsV2})
		now = ts("2026-01-06T00:00:00Z")
		m, err = s.Materialize(ctx, "customer_stats", time.Time{}, time.Time{}, true)
		if err != nil {
			t.Fatal(err)
		}
		if m.Start == nil || !m.Start.Equal(ts("2026-01-03T00:00:00Z")) || m.Source != "stats@2" || m.KeysWritten != 3 {
			t.Fatalf("incremental %+v", m)
		}
		res = lookup(t, s, false, 1, 2, 3, 4)
		if got, want := res.Results[1].Values, []any{int64(5), nil, int64(4), int64(6)}; !reflect.DeepEqual(got, want) {
			t.Errorf("after incremental %v, want %v (2 expired; its late row is not seen)", got, want)
		}
		ms, err := s.Materializations(ctx, "customer_stats", 0)
		if err != nil || len(ms) != 2 || ms[0].ID != m.ID || ms[1].Start != nil || ms[0].FinishedAt == nil {
			t.Fatalf("materializations %+v %v", ms, err)
		}
		// A full run over everything picks up the late row.
		if _, err := s.Materialize(ctx, "customer_stats", time.Time{}, time.Time{}, false); err != nil {
			t.Fatal(err)
		}
		res = lookup(t, s, false, 2)
		if got := res.Results[1].Values[0]; got != int64(10) {
			t.Errorf("full run: customer 2 has %v, want 10", got)
		}
	})
}

func TestMaterializeRefusals(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		setupStats(t, s, 0)
		off := statsView("stats")
		f := false
		off.Metadata.Name, off.Spec.Online = "offline_stats", &f
		if _, _, err := s.ApplyView(ctx, off, ""); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			run  func() error
			kind error
			msg  string
		}{
			{"offline view", func() error {
				_, err := s.Materialize(ctx, "offline_stats", time.Time{}, time.Time{}, false)
				return err
			}, errdefs.ErrInvalidState, "not online"},
			{"unknown view", func() error {
				_, err := s.Materialize(ctx, "nope", time.Time{}, time.Time{}, false)
				return err
			}, errdefs.ErrNotFound, "not found"},
			{"start after end", func() error {
				_, err := s.Materialize(ctx, "customer_stats", ts("2026-02-01T00:00:00Z"), ts("2026-01-01T00:00:00Z"), false)
				return err
			}, errdefs.ErrInvalidArgument, "after its end"},
			{"lookup offline view", func() error {
				_, err := s.Online(ctx, OnlineRequest{Features: []string{"offline_stats:tier"}, Entities: map[string][]any{"customer_id": {1}}})
				return err
			}, errdefs.ErrInvalidState, "not online"},
			{"lookup unknown feature", func() error {
				_, err := s.Online(ctx, OnlineRequest{Features: []string{"customer_stats:nope"}, Entities: map[string][]any{"customer_id": {1}}})
				return err
			}, errdefs.ErrNotFound, "no feature 'nope'"},
			{"lookup missing key", func() error {
				_, err := s.Online(ctx, OnlineRequest{Features: []string{"customer_stats:tier"}, Entities: map[string][]any{"cust": {1}}})
				return err
			}, errdefs.ErrInvalidArgument, "no values of join key 'customer_id'"},
			{"lookup fraction key", func() error {
				_, err := s.Online(ctx, OnlineRequest{Features: []string{"customer_stats:tier"}, Entities: map[string][]any{"customer_id": {1.5}}})
				return err
			}, errdefs.ErrInvalidArgument, "not an integer"},
		}
		for _, c := range cases {
			err := c.run()
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s: %v, want %v %q", c.name, err, c.kind, c.msg)
			}
		}
	})
}

func TestMaterializeCompositeKeyAndPath(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, openSQLite(t))
	dir := t.TempDir()
	writeFile(t, dir+"/a.csv", "store_id,sku,ts,stock\nS1,10,2026-01-01T00:00:00Z,5\nS1,10,2026-01-02T00:00:00Z,6\nS2,10,2026-01-01T00:00:00Z,7\n")
	writeFile(t, dir+"/b.csv", "store_id,sku,ts,stock\nS1,11,2026-01-01T00:00:00Z,8\n")
	for _, e := range []*Entity{
		{Metadata: Metadata{Name: "store"}, Spec: EntitySpec{JoinKeys: []string{"store_id"}}},
		{Metadata: Metadata{Name: "product"}, Spec: EntitySpec{JoinKeys: []string{"sku"}}},
	} {
		if _, _, err := s.ApplyEntity(ctx, e, ""); err != nil {
			t.Fatal(err)
		}
	}
	v := &FeatureView{Metadata: Metadata{Name: "stock"}, Spec: FeatureViewSpec{
		Entities: []string{"store", "product"}, Source: Source{Path: dir}, TimestampField: "ts",
		Features: []Feature{{Name: "stock", Type: TypeFloat64}}}}
	if _, _, err := s.ApplyView(ctx, v, ""); err != nil {
		t.Fatal(err)
	}
	m, err := s.Materialize(ctx, "stock", time.Time{}, time.Time{}, false)
	if err != nil || m.RowsRead != 4 || m.KeysWritten != 3 {
		t.Fatalf("%+v %v", m, err)
	}
	res, err := s.Online(ctx, OnlineRequest{Features: []string{"stock:stock"},
		Entities: map[string][]any{"store_id": {"S1", "S1", "S2", "S2"}, "sku": {10, "11", 10.0, 11}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Results[2].Values, []any{6.0, 8.0, 7.0, nil}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stock %v, want %v", got, want)
	}
	if got := s.OnlineStore.(*mapStore).keys("stock"); !reflect.DeepEqual(got, []string{"S1\x1f10", "S1\x1f11", "S2\x1f10"}) {
		t.Fatalf("keys %q", got)
	}
}

func TestApplyViewClearsOnlineRows(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, openSQLite(t))
	setupStats(t, s, 0)
	if _, err := s.Materialize(ctx, "customer_stats", time.Time{}, time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	ms := s.OnlineStore.(*mapStore)
	steps := []struct {
		name string
		edit func(v *FeatureView)
		keys int
	}{
		{"TTL and description: rows kept", func(v *FeatureView) { v.Spec.TTL = Duration(time.Hour); v.Metadata.Description = "x" }, 3},
		{"a feature's type: rows cleared", func(v *FeatureView) { v.Spec.Features[0].Type = TypeFloat64 }, 0},
	}
	for _, st := range steps {
		v := statsView("stats")
		v.Spec.CreatedTimestampField = "created"
		st.edit(v)
		if _, changed, err := s.ApplyView(ctx, v, ""); err != nil || !changed {
			t.Fatalf("%s: %v %v", st.name, changed, err)
		}
		if got := len(ms.keys("customer_stats")); got != st.keys {
			t.Fatalf("%s: %d keys online, want %d", st.name, got, st.keys)
		}
	}
}
