package serving

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kiln-ml/kiln/serving/inferencepb"
)

type recorder struct {
	mu    sync.Mutex
	calls []Call
	hdr   []string
}

func (r *recorder) Observe(ctx context.Context, c *Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *c
	cp.Inputs, cp.Outputs = nil, nil
	if len(c.Inputs) > 0 {
		cp.Inputs = c.Inputs[:1:1]
	}
	if len(c.Outputs) > 0 {
		cp.Outputs = c.Outputs[:1:1]
	}
	r.calls = append(r.calls, cp)
	r.hdr = append(r.hdr, RequestHeader(ctx, "X-Subject"))
}

func TestObserver(t *testing.T) {
	rec := &recorder{}
	s, _ := linearServer(t, Options{Observer: rec, InvocationsModel: "lin"})
	h := s.Handler()
	good := `{"id":"r1","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`
	bad := `{"id":"r2","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`
	tests := []struct {
		path, ctype, body string
		status            int
		protocol, id      string
		inputs, outputs   bool
	}{
		{"/v2/models/lin/infer", "application/json", good, 200, "v2-rest", "r1", true, true},
		{"/v2/models/lin/infer", "application/json", bad, 400, "v2-rest", "r2", false, false},
		{"/v2/models/lin/infer", "application/json", `{"inputs":`, 400, "v2-rest", "*", false, false},
		{"/invocations", "application/json", `{"inputs":[[1,2,3]]}`, 200, "mlflow", "*", true, true},
		{"/invocations", "application/json", `{"inputs":[[1,2]]}`, 400, "mlflow", "*", false, false},
		{"/invocations", "application/json", `{"inputs":[[1,2,3]]}`, 200, "mlflow", "client-id-7", true, true},
		{"/v2/models/nope/infer", "application/json", good, 404, "", "", false, false}, // never reaches a model
	}
	want := 0
	for i, tc := range tests {
		hdrs := []string{"X-Subject", fmt.Sprint("s", i)}
		if tc.id != "*" && tc.id != "" && !strings.Contains(tc.body, tc.id) {
			hdrs = append(hdrs, RequestIDHeader, tc.id)
		}
		r := do(t, h, "POST", tc.path, tc.ctype, []byte(tc.body), hdrs...)
		if r.status != tc.status {
			t.Fatalf("%s %s: %v", tc.path, tc.body, r)
		}
		if tc.protocol == "" {
			continue
		}
		want++
		rec.mu.Lock()
		if len(rec.calls) != want {
			t.Fatalf("%d: %d calls observed, want %d", i, len(rec.calls), want)
		}
		c := rec.calls[want-1]
		hdr := rec.hdr[want-1]
		rec.mu.Unlock()
		// Without an id in the body or the header, one is generated and
		// sent back in X-Request-Id.
		if tc.id == "*" && (len(c.ID) != 16 || r.header.Get(RequestIDHeader) != c.ID) {
			t.Errorf("%d: generated id %q, response header %q", i, c.ID, r.header.Get(RequestIDHeader))
		}
		if tc.id != "*" && r.header.Get(RequestIDHeader) == "" {
			t.Errorf("%d: no %s in the response", i, RequestIDHeader)
		}
		if c.Model == nil || c.Model.Name != "lin" || c.Protocol != tc.protocol || (tc.id != "*" && c.ID != tc.id) || c.Status != tc.status {
			t.Errorf("%d: observed %+v", i, c)
		}
		if (c.Inputs != nil) != tc.inputs || (c.Outputs != nil) != tc.outputs || (c.Err == nil) != (tc.status == 200) {
			t.Errorf("%d: inputs %v outputs %v err %v", i, c.Inputs != nil, c.Outputs != nil, c.Err)
		}
		if c.Duration <= 0 || c.Start.IsZero() {
			t.Errorf("%d: no timing: %+v", i, c)
		}
		if hdr != fmt.Sprint("s", i) {
			t.Errorf("%d: RequestHeader = %q", i, hdr)
		}
	}
}

// shedding admits one request at a time and sheds the rest.
type shedding struct {
	*Static
	mu       sync.Mutex
	inFlight int
	admitted int
}

type overload struct{}

func (overload) Error() string             { return "endpoint lin is at its concurrency limit" }
func (overload) Unwrap() error             { return ErrOverloaded }
func (overload) RetryAfter() time.Duration { return 2500 * time.Millisecond }

func (s *shedding) Admit(ctx context.Context, m *Model) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight > 0 {
		return nil, overload{}
	}
	s.inFlight++
	s.admitted++
	return func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}, nil
}

func TestAdmitter(t *testing.T) {
	lin := newLinear()
	static, err := NewStatic(&Model{Name: "lin", Runtime: lin})
	if err != nil {
		t.Fatal(err)
	}
	repo := &shedding{Static: static}
	s, err := New(repo, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	body := []byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`)
	if r := do(t, h, "POST", "/v2/models/lin/infer", "application/json", body); r.status != 200 {
		t.Fatal(r)
	}
	// Hold the only slot, then every protocol sheds.
	release, err := repo.Admit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r := do(t, h, "POST", "/v2/models/lin/infer", "application/json", body)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "3" {
		t.Errorf("v2: %v Retry-After %q", r, r.header.Get("Retry-After"))
	}
	r = do(t, h, "POST", "/invocations", "application/json", []byte(`{"inputs":[[1,2,3]]}`))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "3" || !strings.Contains(string(r.body), "RESOURCE_EXHAUSTED") {
		t.Errorf("invocations: %v Retry-After %q", r, r.header.Get("Retry-After"))
	}
	c := grpcClient(t, s)
	_, err = c.ModelInfer(context.Background(), &inferencepb.ModelInferRequest{ModelName: "lin",
		Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3},
			Contents: &inferencepb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}}}}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC: %v", err)
	}
	if repo.admitted != 2 || lin.calls.Load() != 1 {
		t.Errorf("admitted %d, predicted %d", repo.admitted, lin.calls.Load())
	}
}
