package deploy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/runtime"

	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/tensor"
)

// BenchmarkRoutingPath measures what the Manager adds to a request: the
// route pick (Model), admission (Admit and its release) and the
// statistics (Observe), for an endpoint of two weighted routes (90/10);
// with a 10% shadow, Observe also copies a tenth of the requests.
func BenchmarkRoutingPath(b *testing.B) {
	for _, bc := range []struct {
		name, doc string
	}{
		{"two-routes", `{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"name":"a","version":"1","weight":90},{"name":"b","version":"1","weight":10}]}}`},
		{"two-routes+shadow", `{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"name":"a","version":"1","weight":90},{"name":"b","version":"1","weight":10}],
			"shadow":{"version":"1","percent":10}}}`},
		{"capacity", `{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"name":"a","version":"1","weight":100}],"capacity":{"max_concurrency":64}}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, openSQLite(b))
			f.register(b, "clf", "skl_svc_rbf_multi")
			m := f.manager(b, ManagerOptions{})
			if _, err := m.Apply(bg, parseDoc(b, bc.doc), "b", ""); err != nil {
				b.Fatal(err)
			}
			x := &tensor.Tensor{Name: "X", DType: tensor.Float32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}
			inputs := []*tensor.Tensor{x}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := &serving.Call{Protocol: "v2-rest", Inputs: inputs, Outputs: inputs, Status: 200, Duration: 50 * time.Microsecond}
				for pb.Next() {
					sm, err := m.Model(bg, "e", "")
					if err != nil {
						b.Fatal(err)
					}
					release, err := m.Admit(bg, sm)
					if err != nil {
						b.Fatal(err)
					}
					c.Model, c.Start = sm, time.Now()
					m.Observe(bg, c)
					release()
				}
			})
		})
	}
}

// BenchmarkHandler compares the serving stack over a static repository
// (kiln serve) with the same stack over the Manager (kiln server) for an
// endpoint of two weighted routes and a 10% shadow, calling the HTTP
// handler in process, one-row requests.
func BenchmarkHandler(b *testing.B) {
	const fixture = "skl_rf100_clf"
	body := []byte(`{"inputs":[{"name":"X","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`)
	run := func(b *testing.B, h http.Handler, path string) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
	b.Run("static", func(b *testing.B) {
		rm, err := runtime.Load(bg, "onnx", runtime.Source{Path: filepath.Join(onnxModels, fixture, "model.onnx")})
		if err != nil {
			b.Fatal(err)
		}
		repo, _ := serving.NewStatic(&serving.Model{Name: "bench", Runtime: rm})
		srv, _ := serving.New(repo, nil, prometheus.NewRegistry(), serving.Options{})
		run(b, srv.Handler(), "/v2/models/bench/infer")
	})
	for _, sh := range []string{"", `,"shadow":{"version":"1","percent":10}`} {
		name := "endpoint"
		if sh != "" {
			name += "+shadow"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, openSQLite(b))
			f.register(b, "clf", fixture)
			m := f.manager(b, ManagerOptions{})
			if _, err := m.Apply(bg, parseDoc(b, `{"metadata":{"name":"bench"},"spec":{"model":"clf","routes":[{"name":"a","version":"1","weight":90},{"name":"b","version":"1","weight":10}]`+sh+`}}`), "b", ""); err != nil {
				b.Fatal(err)
			}
			srv, _ := serving.New(m, nil, prometheus.NewRegistry(), serving.Options{Observer: m, NoMetricsEndpoint: true})
			m.SetServer(srv)
			run(b, srv.Handler(), "/v2/models/bench/infer")
		})
	}
}
