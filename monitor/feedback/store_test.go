package feedback

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store/storetest"
)

func TestStore(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := NewStore(open(t))
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			st.now = func() time.Time { return t0 }
			n, err := st.Put(ctx, "ep", []Label{
				{RequestID: "a", Value: "cat"},
				{RequestID: "a", Row: 1, Value: 2.5},
				{RequestID: "b", Value: true, Source: "csv"},
				{RequestID: "a", Value: "dog"}, // same key in one call: the last wins
			})
			if err != nil || n != 4 {
				t.Fatalf("put: %d %v", n, err)
			}
			got, err := st.Get(ctx, "ep", "a")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Value != "dog" || got[1].Value != 2.5 || got[1].Row != 1 || !got[0].ReceivedAt.Equal(t0) {
				t.Fatalf("get a: %+v", got)
			}
			// A later upload replaces the label and its time.
			st.now = func() time.Time { return t0.Add(time.Hour) }
			if _, err := st.Put(ctx, "ep", []Label{{RequestID: "b", Value: false}}); err != nil {
				t.Fatal(err)
			}
			got, _ = st.Get(ctx, "ep", "b")
			if len(got) != 1 || got[0].Value != false || got[0].Source != "" || !got[0].ReceivedAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("get b: %+v", got)
			}
			// Other endpoints are apart.
			if got, _ := st.Get(ctx, "other", "a"); len(got) != 0 {
				t.Fatalf("other endpoint: %+v", got)
			}
			var since []string
			err = st.Since(ctx, "ep", t0.Add(time.Minute), func(l Label) error {
				since = append(since, fmt.Sprintf("%s/%d", l.RequestID, l.Row))
				return nil
			})
			if err != nil || strings.Join(since, ",") != "b/0" {
				t.Fatalf("since: %v %v", since, err)
			}
			since = nil
			st.Since(ctx, "ep", time.Time{}, func(l Label) error {
				since = append(since, fmt.Sprintf("%s/%d", l.RequestID, l.Row))
				return nil
			})
			if strings.Join(since, ",") != "a/0,a/1,b/0" {
				t.Fatalf("since all: %v", since)
			}
			stop := errors.New("stop")
			if err := st.Since(ctx, "ep", time.Time{}, func(Label) error { return stop }); err != stop {
				t.Fatalf("since stop: %v", err)
			}
			// Bulk: many chunks in one transaction.
			bulk := make([]Label, 2345)
			for i := range bulk {
				bulk[i] = Label{RequestID: fmt.Sprintf("bulk-%d", i/3), Row: int64(i % 3), Value: float64(i)}
			}
			if n, err := st.Put(ctx, "bulk", bulk); err != nil || n != len(bulk) {
				t.Fatalf("bulk: %d %v", n, err)
			}
			count := 0
			st.Since(ctx, "bulk", time.Time{}, func(Label) error { count++; return nil })
			if count != len(bulk) {
				t.Fatalf("bulk stored %d", count)
			}
			// One invalid label stores nothing, and is named.
			bad := append([]Label{{RequestID: "ok", Value: 1.0}}, Label{RequestID: "x", Row: -1, Value: 1.0})
			_, err = st.Put(ctx, "ep2", bad)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !errors.Is(err, ErrInvalidLabel) || !strings.Contains(err.Error(), "label 2") {
				t.Fatalf("invalid: %v", err)
			}
			if got, _ := st.Get(ctx, "ep2", "ok"); len(got) != 0 {
				t.Fatalf("stored despite an invalid label: %+v", got)
			}
		})
	}
}

func TestLabelValidate(t *testing.T) {
	long := strings.Repeat("é", MaxRequestIDLen)
	for _, tc := range []struct {
		l  Label
		ok bool
	}{
		{Label{RequestID: "a", Value: "x"}, true},
		{Label{RequestID: long, Value: 1}, true},
		{Label{RequestID: long + "x", Value: 1}, false},
		{Label{RequestID: "", Value: 1}, false},
		{Label{RequestID: "a\x00b", Value: 1}, false},
		{Label{RequestID: "\xff", Value: 1}, false},
		{Label{RequestID: "a", Row: -1, Value: 1}, false},
		{Label{RequestID: "a", Value: nil}, false},
		{Label{RequestID: "a", Value: ""}, false},
		{Label{RequestID: "a", Value: []any{1}}, false},
		{Label{RequestID: "a", Value: map[string]any{}}, false},
		{Label{RequestID: "a", Value: math.NaN()}, false},
		{Label{RequestID: "a", Value: strings.Repeat("x", MaxLabelLen+1)}, false},
		{Label{RequestID: "a", Value: int64(3)}, true},
		{Label{RequestID: "a", Value: false}, true},
	} {
		err := tc.l.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.l, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: not an invalid argument: %v", tc.l, err)
		}
	}
	l := Label{RequestID: "a", Value: 3}
	l.Validate()
	if l.Value != 3.0 {
		t.Fatalf("int not normalised: %T", l.Value)
	}
}
