package deploy

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// FuzzApply feeds endpoint documents (the JSON that PUT /api/v1/endpoints
// and kiln apply send) to a Manager over a registry with one model
// version: it must never panic, and every refusal must be a domain error
// the API maps (invalid argument, not found, invalid state).
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"name":"main","version":"1","weight":100}]}}`,
		`{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"alias":"champion","weight":1}],"rollout":{"strategy":"canary","steps":[{"weight":10,"interval":"1m"}],"analysis":{"max_error_rate":0.01}}}}`,
		`{"metadata":{"name":"e"},"spec":{"routes":[{"model":"clf","version":"1","weight":90},{"model":"clf","version":"2","weight":10}],"shadow":{"version":"1","percent":10},"experiment":{"key_header":"X-User"}}}`,
		`{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"version":"1","weight":1}],"rollout":{"strategy":"blue-green","keep_previous":30},"capacity":{"max_concurrency":-1}}}`,
		`{"metadata":{"name":"E!"},"spec":{}}`,
	} {
		f.Add(s)
	}
	fx := newFixture(f, openSQLite(f))
	fx.register(f, "clf", "skl_svc_rbf_multi")
	m := fx.manager(f, ManagerOptions{})
	f.Fuzz(func(t *testing.T, doc string) {
		var e Endpoint
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return
		}
		_, err := m.Apply(bg, &e, "fuzz", "")
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrInvalidState) {
			t.Fatalf("Apply(%s) = %v, not a domain error", doc, err)
		}
		if err == nil {
			if _, err := m.Stats(e.Metadata.Name); err != nil {
				t.Fatalf("applied but no stats: %v", err)
			}
		}
	})
}
