package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/tensor"
)

// TestBatchingEquivalence sends the same concurrent requests to a server
// with batching and one without; every response must be byte-identical.
func TestBatchingEquivalence(t *testing.T) {
	plain, _ := linearServer(t, Options{})
	batched, lin := linearServer(t, Options{MaxBatchSize: 16, MaxBatchDelay: 20 * time.Millisecond})
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 64
	bodies := make([]string, n)
	for i := range bodies {
		rows := 1 + rng.IntN(5)
		vals := make([]string, rows*3)
		for k := range vals {
			vals[k] = fmt.Sprint(float32(rng.NormFloat64()))
		}
		bodies[i] = fmt.Sprintf(`{"id":"%d","inputs":[{"name":"x","shape":[%d,3],"datatype":"FP32","data":[%s]}]}`, i, rows, strings.Join(vals, ","))
	}
	want := make([]string, n)
	for i, b := range bodies {
		r := do(t, plain.Handler(), "POST", "/v2/models/lin/infer", "application/json", []byte(b))
		if r.status != 200 {
			t.Fatal(r)
		}
		want[i] = string(r.body)
	}
	got := make([]string, n)
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() {
			r := do(t, batched.Handler(), "POST", "/v2/models/lin/infer", "application/json", []byte(b))
			got[i] = r.String()
		})
	}
	wg.Wait()
	for i := range want {
		if got[i] != "200 "+want[i] {
			t.Errorf("request %d batched:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if calls := lin.calls.Load(); calls >= n {
		t.Logf("no two requests were batched (%d predictions for %d requests)", calls, n)
	}
}

// gatedServer returns a batching server whose model blocks until the
// gate closes, so requests pile up deterministically.
func gatedServer(t *testing.T, maxRows int, delay time.Duration) (*Server, *linearModel, chan struct{}) {
	lin := newLinear()
	lin.gate = make(chan struct{})
	s, _ := testServer(t, Options{MaxBatchSize: maxRows, MaxBatchDelay: delay}, &Model{Name: "lin", Runtime: lin})
	return s, lin, lin.gate
}

func xTensor(rows int, v float32) *tensor.Tensor {
	d := make([]float32, rows*3)
	for i := range d {
		d[i] = v
	}
	return &tensor.Tensor{Name: "x", DType: tensor.Float32, Shape: []int64{int64(rows), 3}, Data: d}
}

func TestBatchingJoins(t *testing.T) {
	s, lin, gate := gatedServer(t, 64, time.Hour)
	st := s.state(mustModel(t, s, "lin"))
	ctx := context.Background()

	// The first request runs at once (nobody else in flight) and holds
	// the model; the next ones queue into one batch.
	results := make([][]*tensor.Tensor, 5)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	wg.Go(func() { results[0], errs[0] = s.predict(ctx, st, []*tensor.Tensor{xTensor(1, 0)}) })
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 1 })
	for i := 1; i < 5; i++ {
		wg.Go(func() { results[i], errs[i] = s.predict(ctx, st, []*tensor.Tensor{xTensor(i, float32(i))}) })
	}
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 5 })
	// Fill the batch to its maximum so it runs without the (hour-long) delay.
	big := make(chan error, 1)
	go func() {
		_, err := s.predict(ctx, st, []*tensor.Tensor{xTensor(64-(1+2+3+4), 1)})
		big <- err
	}()
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 6 })
	close(gate)
	wg.Wait()
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		want, _ := lin.Predict(ctx, []*tensor.Tensor{xTensor(i, float32(i))})
		if !reflect.DeepEqual(results[i], want) {
			t.Errorf("request %d: got %v, want %v", i, results[i], want)
		}
	}
	lin.mu.Lock()
	rows := append([]int(nil), lin.rows...)
	lin.mu.Unlock()
	// The first request alone, then one batch of 64 rows, then the
	// reference predictions above (1, 2, 3, 4 rows).
	slices.Sort(rows[:2])
	if !reflect.DeepEqual(rows[:2], []int{1, 64}) {
		t.Errorf("prediction rows = %v, want [1 64 ...]", rows)
	}
}

func TestBatchingLargeRequestAlone(t *testing.T) {
	s, lin, gate := gatedServer(t, 4, time.Hour)
	close(gate)
	st := s.state(mustModel(t, s, "lin"))
	// Rows ≥ the maximum never wait.
	if _, err := s.predict(context.Background(), st, []*tensor.Tensor{xTensor(4, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.predict(context.Background(), st, []*tensor.Tensor{xTensor(9, 1)}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lin.rows, []int{4, 9}) {
		t.Errorf("rows = %v", lin.rows)
	}
}

func TestBatchingCancelledCaller(t *testing.T) {
	s, lin, gate := gatedServer(t, 64, 50*time.Millisecond)
	st := s.state(mustModel(t, s, "lin"))
	bg := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { s.predict(bg, st, []*tensor.Tensor{xTensor(1, 0)}) }) // holds the model
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 1 })

	ctx, cancel := context.WithCancel(bg)
	cancelled := make(chan error, 1)
	go func() {
		_, err := s.predict(ctx, st, []*tensor.Tensor{xTensor(2, 2)}) // leads the batch
		cancelled <- err
	}()
	var other []*tensor.Tensor
	var otherErr error
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 2 })
	wg.Go(func() { other, otherErr = s.predict(bg, st, []*tensor.Tensor{xTensor(3, 3)}) })
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 3 })
	cancel()
	close(gate)
	if err := <-cancelled; err != context.Canceled {
		t.Errorf("cancelled caller got %v", err)
	}
	wg.Wait()
	want, _ := lin.Predict(bg, []*tensor.Tensor{xTensor(3, 3)})
	if otherErr != nil || !reflect.DeepEqual(other, want) {
		t.Errorf("the other caller got %v, %v; want %v", other, otherErr, want)
	}
}

func TestBatchingFailureIsolated(t *testing.T) {
	s, _, gate := gatedServer(t, 64, 30*time.Millisecond)
	st := s.state(mustModel(t, s, "lin"))
	bg := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { s.predict(bg, st, []*tensor.Tensor{xTensor(1, 0)}) })
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 1 })
	var goodErr, badErr error
	var good []*tensor.Tensor
	wg.Go(func() { good, goodErr = s.predict(bg, st, []*tensor.Tensor{xTensor(2, 1)}) })
	wg.Go(func() { _, badErr = s.predict(bg, st, []*tensor.Tensor{xTensor(1, 999)}) })
	waitFor(t, func() bool { return st.batcher.inflight.Load() == 3 })
	close(gate)
	wg.Wait()
	if goodErr != nil || len(good) != 2 || good[0].Shape[0] != 2 {
		t.Errorf("good request: %v, %v", good, goodErr)
	}
	if badErr == nil || !strings.Contains(badErr.Error(), "999") {
		t.Errorf("bad request: %v", badErr)
	}
}

func TestBatchingIncompatibleShapes(t *testing.T) {
	b := newBatcher(echoModel{dt: tensor.Int64}, 8, 20*time.Millisecond, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"}))
	var wg sync.WaitGroup
	for i := 1; i <= 6; i++ {
		wg.Go(func() {
			cols := 1 + i%3
			data := make([]int64, cols)
			for k := range data {
				data[k] = int64(i*10 + k)
			}
			in := &tensor.Tensor{Name: "x", DType: tensor.Int64, Shape: []int64{1, int64(cols)}, Data: data}
			out, err := b.predict(context.Background(), []*tensor.Tensor{in})
			if err != nil || !reflect.DeepEqual(out[0].Data, data) || !reflect.DeepEqual(out[0].Shape, in.Shape) {
				t.Errorf("request %d: %v, %v", i, out, err)
			}
		})
	}
	wg.Wait()
}

func TestBatchRowsAndSplit(t *testing.T) {
	if _, ok := batchRows([]*tensor.Tensor{{Shape: []int64{2, 3}}, {Shape: []int64{3}}}); ok {
		t.Error("inputs with different first dimensions are batchable")
	}
	if _, ok := batchRows([]*tensor.Tensor{{Shape: nil}}); ok {
		t.Error("a scalar input is batchable")
	}
	items := []*batchItem{{rows: 1}, {rows: 2}}
	out := &tensor.Tensor{Name: "o", DType: tensor.String, Shape: []int64{3, 2}, Data: []string{"a", "b", "c", "d", "e", "f"}}
	if !splitOutputs(items, []*tensor.Tensor{out}, 3) {
		t.Fatal("split failed")
	}
	if !reflect.DeepEqual(items[1].outs[0].Data, []string{"c", "d", "e", "f"}) || !reflect.DeepEqual(items[1].outs[0].Shape, []int64{2, 2}) {
		t.Errorf("second item got %v", items[1].outs[0])
	}
	if splitOutputs(items, []*tensor.Tensor{{Name: "sum", DType: tensor.Int64, Shape: []int64{1}, Data: []int64{1}}}, 3) {
		t.Error("an output that is not per row was split")
	}
}

func mustModel(t *testing.T, s *Server, name string) *Model {
	t.Helper()
	m, err := s.repo.Model(context.Background(), name, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(time.Millisecond)
	}
}
