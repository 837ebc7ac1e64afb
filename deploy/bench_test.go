package deploy

import (
	"testing"
	"time"

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
