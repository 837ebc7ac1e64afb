package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/feature/online"
	"github.com/kiln-ml/kiln/serving"
)

// fakeStore is a FeatureLookup over maps: views, their join keys, and
// rows by key text; defaults served as feature.Service serves them.
type fakeStore struct {
	views map[string]*feature.FeatureView
	keys  map[string][]string         // view → join keys
	rows  map[string]map[string][]any // view → key → values (view feature order)
	mu    sync.Mutex
	reqs  []feature.OnlineRequest
	fail  error
}

func (s *fakeStore) View(_ context.Context, name string, _ int64) (*feature.FeatureView, int64, error) {
	v, ok := s.views[name]
	if !ok {
		return nil, 0, errdefs.NotFound("Feature view '%s' not found", name)
	}
	return v, 1, nil
}

func (s *fakeStore) JoinKeys(_ context.Context, v *feature.FeatureView) ([]string, error) {
	return s.keys[v.Metadata.Name], nil
}

func (s *fakeStore) Online(_ context.Context, req feature.OnlineRequest) (*feature.OnlineResult, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	var joinKeys []string
	for _, f := range req.Features {
		ref, _ := feature.ParseRef(f)
		for _, k := range s.keys[ref.View] {
			if !slices.Contains(joinKeys, k) {
				joinKeys = append(joinKeys, k)
			}
		}
	}
	n := len(req.Entities[joinKeys[0]])
	res := &feature.OnlineResult{FeatureNames: append(slices.Clone(joinKeys), req.Features...)}
	for _, k := range joinKeys {
		res.Results = append(res.Results, feature.OnlineColumn{Values: req.Entities[k], Statuses: make([]string, n)})
	}
	for _, f := range req.Features {
		ref, _ := feature.ParseRef(f)
		v := s.views[ref.View]
		fi := slices.IndexFunc(v.Spec.Features, func(x feature.Feature) bool { return x.Name == ref.Feature })
		col := feature.OnlineColumn{Values: make([]any, n), Statuses: make([]string, n)}
		for r := range n {
			var parts []string
			for _, k := range s.keys[ref.View] {
				t, err := feature.KeyText(req.Entities[k][r])
				if err != nil {
					return nil, errdefs.Invalid("Join key '%s', row %d: %v", k, r, err)
				}
				parts = append(parts, t)
			}
			vals, ok := s.rows[ref.View][strings.Join(parts, "|")]
			switch {
			case ok:
				col.Values[r], col.Statuses[r] = vals[fi], feature.StatusPresent
			case req.UseDefaults && v.Spec.Features[fi].Default != nil:
				d, _ := feature.CoerceValue(v.Spec.Features[fi].Type, v.Spec.Features[fi].Default)
				col.Values[r], col.Statuses[r] = d, feature.StatusDefault
			default:
				col.Statuses[r] = feature.StatusNotFound
			}
		}
		res.Results = append(res.Results, col)
	}
	return res, nil
}

func (s *fakeStore) requests() []feature.OnlineRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// pipelineRows are the rows of the skl_pipeline_columns fixture (age,
// income FP32, city, plan BYTES) and its reference labels.
type pipelineRows struct {
	age, income []float64
	city, plan  []string
	labels      []int64
}

func loadPipelineRows(t *testing.T) pipelineRows { return loadPipelineRowsB(t) }

func loadPipelineRowsB(t testing.TB) pipelineRows {
	t.Helper()
	var in struct {
		Inputs []struct {
			Name string `json:"name"`
			Data []any  `json:"data"`
		} `json:"inputs"`
	}
	b, err := os.ReadFile(filepath.Join(onnxModels, "skl_pipeline_columns", "inputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	var p pipelineRows
	for _, c := range in.Inputs {
		for _, v := range c.Data {
			switch c.Name {
			case "age":
				p.age = append(p.age, v.(float64))
			case "income":
				p.income = append(p.income, v.(float64))
			case "city":
				p.city = append(p.city, v.(string))
			case "plan":
				p.plan = append(p.plan, v.(string))
			}
		}
	}
	p.labels = loadCase(t, "skl_pipeline_columns").labels
	return p
}

// featureObserver keeps the keys and inputs the serving stack reports.
type featureObserver struct {
	m     *Manager
	mu    sync.Mutex
	calls []serving.Call
}

func (o *featureObserver) Observe(ctx context.Context, c *serving.Call) {
	o.m.Observe(ctx, c)
	cp := *c
	cp.Inputs, cp.Keys = nil, nil
	for _, t := range c.Inputs {
		cp.Inputs = append(cp.Inputs, t.Clone())
	}
	for _, t := range c.Keys {
		cp.Keys = append(cp.Keys, t.Clone())
	}
	o.mu.Lock()
	o.calls = append(o.calls, cp)
	o.mu.Unlock()
}

func (o *featureObserver) last() serving.Call {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[len(o.calls)-1]
}

// TestEndpointFeatures: endpoints over the column pipeline whose age,
// income and city come from the feature store, by customer_id; the
// predictions equal those of the full rows on an endpoint without
// features.
func TestEndpointFeatures(t *testing.T) {
	rows := loadPipelineRows(t)
	f := newFixture(t, openSQLite(t))
	f.register(t, "pipe", "skl_pipeline_columns")
	st := &fakeStore{
		views: map[string]*feature.FeatureView{"customer_stats": {Metadata: feature.Metadata{Name: "customer_stats"}, Spec: feature.FeatureViewSpec{
			Features: []feature.Feature{{Name: "age", Type: "float64", Default: 40}, {Name: "income", Type: "float64", Default: 30000}, {Name: "city", Type: "string"}},
		}}, "offline": {Metadata: feature.Metadata{Name: "offline"}, Spec: feature.FeatureViewSpec{
			Features: []feature.Feature{{Name: "x", Type: "int64"}}, Online: new(bool),
		}}},
		keys: map[string][]string{"customer_stats": {"customer_id"}, "offline": {"customer_id"}},
		rows: map[string]map[string][]any{"customer_stats": {}},
	}
	for i := range rows.age {
		st.rows["customer_stats"][fmt.Sprint(100+i)] = []any{rows.age[i], rows.income[i], rows.city[i]}
	}
	// 900 has a row without a city; its age and income have defaults.
	m := f.manager(t, ManagerOptions{})
	m.SetFeatures(st)
	obs := &featureObserver{m: m}
	srv, err := serving.New(m, nil, prometheus.NewRegistry(), serving.Options{Observer: obs, NoMetricsEndpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	m.SetServer(srv)
	mux := http.NewServeMux()
	mux.Handle("/v2/", srv.Handler())
	mux.Handle("POST /endpoints/{endpoint}/invocations", srv.InvocationsHandlerFunc(func(r *http.Request) string { return r.PathValue("endpoint") }))
	for _, doc := range []string{
		`{"metadata":{"name":"plain"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}]}}`,
		`{"metadata":{"name":"feat"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
			"features":{"refs":["customer_stats:age","customer_stats:income","customer_stats:city"]}}}`,
		`{"metadata":{"name":"featdef"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
			"features":{"refs":["customer_stats:age","customer_stats:income"],"on_missing":"default"}}}`,
	} {
		if _, err := m.Apply(bg, parseDoc(t, doc), "alice", ""); err != nil {
			t.Fatal(err)
		}
	}
	post := func(path, body string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		mux.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Result().StatusCode, string(b)
	}
	// The reference: the plain endpoint on full rows.
	full := func(idx []int, age, income []float64) string {
		var a, in []float64
		var c, p []string
		for k, i := range idx {
			a, in, c, p = append(a, rows.age[i]), append(in, rows.income[i]), append(c, rows.city[i]), append(p, rows.plan[i])
			if age != nil {
				a[k] = age[k]
			}
			if income != nil {
				in[k] = income[k]
			}
		}
		body, _ := json.Marshal(map[string]any{"dataframe_split": map[string]any{
			"columns": []string{"age", "income", "city", "plan"}, "data": transpose(a, in, c, p)}})
		code, out := post("/endpoints/plain/invocations", string(body))
		if code != 200 {
			t.Fatalf("reference: %d %s", code, out)
		}
		return out
	}
	ids := func(idx []int) []any {
		var out []any
		for _, i := range idx {
			out = append(out, 100+i)
		}
		return out
	}
	plans := func(idx []int) []any {
		var out []any
		for _, i := range idx {
			out = append(out, rows.plan[i])
		}
		return out
	}
	v2Body := func(keys []any, plan []any, extra ...string) string {
		b, _ := json.Marshal(keys)
		p, _ := json.Marshal(plan)
		s := fmt.Sprintf(`{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[%d],"data":%s},{"name":"plan","datatype":"BYTES","shape":[%d,1],"data":%s}`,
			len(keys), b, len(keys), p)
		for _, e := range extra {
			s += "," + e
		}
		return s + "]}"
	}
	all := make([]int, len(rows.age))
	for i := range all {
		all[i] = i
	}

	t.Run("v2 every row in one lookup", func(t *testing.T) {
		before := len(st.requests())
		code, out := post("/v2/models/feat/infer", v2Body(ids(all), plans(all)))
		if code != 200 {
			t.Fatalf("%d %s", code, out)
		}
		var r inferResponse
		json.Unmarshal([]byte(out), &r)
		if got := labelsOf(r); !equalLabels(got, rows.labels) {
			t.Errorf("labels %v, want %v", got, rows.labels)
		}
		reqs := st.requests()[before:]
		if len(reqs) != 1 || len(reqs[0].Entities["customer_id"]) != len(all) || reqs[0].UseDefaults {
			t.Fatalf("lookups %+v", reqs)
		}
		if want := []string{"customer_stats:age", "customer_stats:income", "customer_stats:city"}; !slices.Equal(reqs[0].Features, want) {
			t.Errorf("looked up %v, want %v", reqs[0].Features, want)
		}
		// The log sees the key apart, the features among the inputs.
		c := obs.last()
		if len(c.Keys) != 1 || c.Keys[0].Name != "customer_id" || c.Keys[0].Data.([]int64)[3] != 103 {
			t.Errorf("observed keys %+v", c.Keys)
		}
		var names []string
		for _, in := range c.Inputs {
			names = append(names, in.Name)
		}
		if !slices.Equal(names, []string{"age", "income", "city", "plan"}) || c.Inputs[2].Data.([]string)[4] != rows.city[4] {
			t.Errorf("observed inputs %v", names)
		}
	})

	tests := []struct {
		name, path, body string
		status           int
		want             func() string // the response body, or a substring of the error
		lookedUp         []string      // the features of the lookup (nil: not checked)
	}{
		{"invocations split", "/endpoints/feat/invocations",
			`{"dataframe_split":{"columns":["customer_id","plan"],"data":[[101,"pro"],[104,"free"],[100,"free"]]}}`,
			200, func() string { return full([]int{1, 4, 0}, nil, nil) }, nil},
		{"invocations records", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":105,"plan":"gold"},{"customer_id":106,"plan":"team"}]}`,
			200, func() string { return full([]int{5, 6}, nil, nil) }, nil},
		{"a string key reads as the integer", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":"107","plan":"free"}]}`,
			200, func() string { return full([]int{7}, nil, nil) }, nil},
		{"the request's value wins", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":101,"plan":"pro","income":99000},{"customer_id":102,"plan":"team","income":99000}]}`,
			200, func() string { return full([]int{1, 2}, nil, []float64{99000, 99000}) },
			[]string{"customer_stats:age", "customer_stats:city"}},
		{"a null cell is filled in", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":101,"plan":"pro","income":99000},{"customer_id":102,"plan":"team","income":null}]}`,
			200, func() string { return full([]int{1, 2}, nil, []float64{99000, rows.income[2]}) },
			[]string{"customer_stats:age", "customer_stats:income", "customer_stats:city"}},
		{"v2 missing: error", "/v2/models/feat/infer", v2Body([]any{101, 999}, []any{"pro", "free"}),
			400, func() string {
				return `{"error":"endpoint \"feat\": no value of feature customer_stats:age for customer_id=999 (NOT_FOUND); customer_stats:income for customer_id=999 (NOT_FOUND); customer_stats:city for customer_id=999 (NOT_FOUND) — send the value in the request, or set spec.features.on_missing: default to serve the features' declared defaults"}`
			}, nil},
		{"invocations missing: error", "/endpoints/feat/invocations",
			`{"dataframe_split":{"columns":["customer_id","plan"],"data":[[998,"pro"]]}}`,
			400, func() string {
				return `"error_code":"INVALID_PARAMETER_VALUE","message":"endpoint \"feat\": no value of feature customer_stats:age for customer_id=998 (NOT_FOUND)`
			}, nil},
		{"missing: the request's values suffice", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":997,"plan":"pro","age":30,"income":20000,"city":"rome"}]}`,
			200, func() string {
				body := `{"dataframe_records":[{"age":30,"income":20000,"city":"rome","plan":"pro"}]}`
				_, out := post("/endpoints/plain/invocations", body)
				return out
			}, nil},
		{"missing: default", "/endpoints/featdef/invocations",
			`{"dataframe_records":[{"customer_id":103,"plan":"pro","city":"lille"},{"customer_id":996,"plan":"pro","city":"lille"}]}`,
			200, func() string { return full([]int{3, 3}, []float64{rows.age[3], 40}, []float64{rows.income[3], 30000}) }, nil},
		{"missing: no default", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":995,"plan":"pro","age":1,"income":2}]}`,
			400, func() string { return `customer_stats:city for customer_id=995 (NOT_FOUND)` }, []string{"customer_stats:city"}},
		{"no entity key", "/v2/models/feat/infer",
			`{"inputs":[{"name":"plan","datatype":"BYTES","shape":[1],"data":["pro"]}]}`,
			400, func() string { return `missing entity key \"customer_id\"` }, nil},
		{"a key of the wrong kind", "/endpoints/feat/invocations",
			`{"dataframe_records":[{"customer_id":1.5,"plan":"pro"}]}`,
			400, func() string { return `Join key 'customer_id', row 0` }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(st.requests())
			code, out := post(tc.path, tc.body)
			want := tc.want()
			if code != tc.status || (code == 200 && out != want) || (code != 200 && !strings.Contains(out, want)) {
				t.Fatalf("got %d %s\nwant %d %s", code, out, tc.status, want)
			}
			if tc.lookedUp != nil {
				reqs := st.requests()[before:]
				if len(reqs) != 1 || !slices.Equal(reqs[0].Features, tc.lookedUp) {
					t.Errorf("lookups %+v, want one of %v", reqs, tc.lookedUp)
				}
			}
		})
	}

	t.Run("store down", func(t *testing.T) {
		st.fail = errors.New("connection refused")
		defer func() { st.fail = nil }()
		code, out := post("/v2/models/feat/infer", v2Body([]any{101}, []any{"pro"}))
		if code != 503 || !strings.Contains(out, "connection refused") {
			t.Fatalf("%d %s", code, out)
		}
	})

	t.Run("apply checks the refs", func(t *testing.T) {
		for ref, want := range map[string]string{
			"nope:age":           `spec.features.refs[0]: Feature view 'nope' not found`,
			"customer_stats:zip": `spec.features.refs[0]: feature view "customer_stats" has no feature "zip"`,
			"offline:x":          `spec.features.refs[0]: feature view "offline" is not online`,
		} {
			_, err := m.Apply(bg, parseDoc(t, `{"metadata":{"name":"bad"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
				"features":{"refs":["`+ref+`"]}}}`), "alice", "")
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %s", ref, err, want)
			}
		}
		m2 := f.manager(t, ManagerOptions{})
		_, err := m2.Apply(bg, parseDoc(t, `{"metadata":{"name":"bad"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
			"features":{"refs":["customer_stats:age"]}}}`), "alice", "")
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "spec.features: this server has no feature store") {
			t.Errorf("without a feature store: %v", err)
		}
	})

	t.Run("removing the features", func(t *testing.T) {
		if _, err := m.Apply(bg, parseDoc(t, `{"metadata":{"name":"feat"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}]}}`), "alice", ""); err != nil {
			t.Fatal(err)
		}
		code, out := post("/v2/models/feat/infer", v2Body([]any{101}, []any{"pro"}))
		if code != 400 || !strings.Contains(out, "customer_id") {
			t.Fatalf("%d %s", code, out)
		}
	})
}

func transpose(cols ...any) [][]any {
	var n int
	switch c := cols[0].(type) {
	case []float64:
		n = len(c)
	}
	out := make([][]any, n)
	for r := range n {
		for _, c := range cols {
			switch c := c.(type) {
			case []float64:
				out[r] = append(out[r], c[r])
			case []string:
				out[r] = append(out[r], c[r])
			}
		}
	}
	return out
}

func TestValidateFeatures(t *testing.T) {
	tests := []struct {
		features string
		want     string // "" = valid
	}{
		{`{"refs":["customer_stats:orders_7d","customer_stats:spend_7d"]}`, ""},
		{`{"refs":["a:x","b:y"],"on_missing":"default"}`, ""},
		{`{"refs":[]}`, "spec.features.refs: name at least one feature"},
		{`{"refs":["orders_7d"]}`, `spec.features.refs[0]: feature reference "orders_7d" must be view:feature`},
		{`{"refs":["a:x","a:x"]}`, `spec.features.refs[1]: "a:x" is also spec.features.refs[0]`},
		{`{"refs":["a:x","b:x"]}`, `spec.features.refs[1]: feature "x" is also spec.features.refs[0] (a:x)`},
		{`{"refs":["a:x"],"on_missing":"zero"}`, `spec.features.on_missing: must be "error" or "default", got "zero"`},
	}
	for _, tc := range tests {
		e := parseDoc(t, `{"metadata":{"name":"e"},"spec":{"model":"m","routes":[{"version":"1","weight":1}],"features":`+tc.features+`}}`)
		err := e.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.features, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.features, err, tc.want)
		}
	}
}

// TestFeatureFillUnit: the fill-in's rules on a fake store, without a
// model.
func TestFeatureFillUnit(t *testing.T) {
	st := &fakeStore{
		views: map[string]*feature.FeatureView{"v": {Metadata: feature.Metadata{Name: "v"}, Spec: feature.FeatureViewSpec{
			Features: []feature.Feature{{Name: "a", Type: "int64", Default: 0}, {Name: "b", Type: "float64"}}}}},
		keys: map[string][]string{"v": {"k1", "k2"}},
		rows: map[string]map[string][]any{"v": {"1|x": {int64(5), 0.5}, "2|y": {int64(6), math.Pi}}},
	}
	m := &Manager{log: slog.New(slog.DiscardHandler)}
	m.SetFeatures(st)
	tests := []struct {
		name      string
		onMissing string
		keys      [][]any
		given     [][]any
		want      [][]any
		err       string
	}{
		{"composite keys", "", [][]any{{int64(1), int64(2)}, {"x", "y"}}, nil,
			[][]any{{int64(5), int64(6)}, {0.5, math.Pi}}, ""},
		{"given values kept", "", [][]any{{int64(1), int64(2)}, {"x", "y"}}, [][]any{{int64(9), nil}, {nil, nil}},
			[][]any{{int64(9), int64(6)}, {0.5, math.Pi}}, ""},
		{"missing names the entity", "", [][]any{{int64(1), int64(3)}, {"x", "z"}}, nil, nil,
			`customer_stats`},
		{"default where declared", "default", [][]any{{int64(3)}, {"z"}}, [][]any{{nil}, {1.0}},
			[][]any{{int64(0)}, {1.0}}, ""},
		{"no default", "default", [][]any{{int64(3)}, {"z"}}, nil, nil,
			`v:b for k1=3, k2="z" (NOT_FOUND) — the feature declares no default`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFeatureSet(m, "e", &EndpointFeatures{Refs: []string{"v:a", "v:b"}, OnMissing: tc.onMissing})
			keys, names, err := fs.Plan(bg)
			if err != nil || !slices.Equal(keys, []string{"k1", "k2"}) || !slices.Equal(names, []string{"a", "b"}) {
				t.Fatalf("plan %v %v %v", keys, names, err)
			}
			n := len(tc.keys[0])
			rows := &serving.FeatureRows{N: n, KeyNames: keys, Keys: tc.keys, Names: names, Values: tc.given}
			if rows.Values == nil {
				rows.Values = [][]any{make([]any, n), make([]any, n)}
			}
			err = fs.Fill(bg, rows)
			if tc.err != "" {
				if tc.err == "customer_stats" { // the message of the first missing entity
					tc.err = `endpoint "e": no value of feature v:a for k1=3, k2="z" (NOT_FOUND); v:b for k1=3, k2="z" (NOT_FOUND)`
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rows.Values) != fmt.Sprint(tc.want) {
				t.Errorf("values %v, want %v", rows.Values, tc.want)
			}
		})
	}
	// Nothing to look up: no lookup.
	fs := newFeatureSet(m, "e", &EndpointFeatures{Refs: []string{"v:a"}})
	before := len(st.requests())
	rows := &serving.FeatureRows{N: 1, KeyNames: []string{"k1", "k2"}, Keys: [][]any{{int64(1)}, {"x"}}, Names: []string{"a"}, Values: [][]any{{int64(3)}}}
	if err := fs.Fill(bg, rows); err != nil || len(st.requests()) != before {
		t.Errorf("a request with every value looked up %d times (%v)", len(st.requests())-before, err)
	}
}

// BenchmarkEndpointFeatures is a V2 request to the column pipeline whose
// age, income and city come from a feature.Service over the embedded
// online store on SQLite (one lookup of 1 or 12 customers), against the
// same rows sent whole.
func BenchmarkEndpointFeatures(b *testing.B) {
	rows := loadPipelineRowsB(b)
	f := newFixture(b, openSQLite(b))
	f.register(b, "pipe", "skl_pipeline_columns")
	src := filepath.Join(b.TempDir(), "stats.csv")
	csv := "customer_id,event_timestamp,age,income,city\n"
	for i := range rows.age {
		csv += fmt.Sprintf("%d,2026-01-01T00:00:00Z,%v,%v,%s\n", 100+i, rows.age[i], rows.income[i], rows.city[i])
	}
	if err := os.WriteFile(src, []byte(csv), 0o644); err != nil {
		b.Fatal(err)
	}
	fsvc := &feature.Service{DB: f.db, OnlineStore: online.NewEmbedded(f.db)}
	ent, err := feature.ParseEntity([]byte(`{"spec":{"join_keys":["customer_id"]}}`), "customer")
	if err != nil {
		b.Fatal(err)
	}
	view, err := feature.ParseFeatureView([]byte(`{"spec":{"entities":["customer"],"source":{"path":`+strconv.Quote(src)+`,"format":"csv"},
		"timestamp_field":"event_timestamp","features":[{"name":"age","type":"float64"},{"name":"income","type":"float64"},{"name":"city","type":"string"}]}}`), "customer_stats")
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := fsvc.ApplyEntity(bg, ent, ""); err != nil {
		b.Fatal(err)
	}
	if _, _, err := fsvc.ApplyView(bg, view, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := fsvc.Materialize(bg, "customer_stats", time.Time{}, time.Now(), false); err != nil {
		b.Fatal(err)
	}
	m := f.manager(b, ManagerOptions{})
	m.SetFeatures(fsvc)
	srv, err := serving.New(m, nil, prometheus.NewRegistry(), serving.Options{Observer: m, NoMetricsEndpoint: true})
	if err != nil {
		b.Fatal(err)
	}
	m.SetServer(srv)
	for _, doc := range []string{
		`{"metadata":{"name":"plain"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}]}}`,
		`{"metadata":{"name":"feat"},"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
			"features":{"refs":["customer_stats:age","customer_stats:income","customer_stats:city"]}}}`,
	} {
		if _, err := m.Apply(bg, parseDoc(b, doc), "", ""); err != nil {
			b.Fatal(err)
		}
	}
	h := srv.Handler()
	for _, n := range []int{1, 12} {
		var ids, age, income []any
		var city, plan []any
		for i := range n {
			ids, age, income = append(ids, 100+i), append(age, rows.age[i]), append(income, rows.income[i])
			city, plan = append(city, rows.city[i]), append(plan, rows.plan[i])
		}
		in := func(name, dt string, v []any) map[string]any {
			return map[string]any{"name": name, "datatype": dt, "shape": []int{n, 1}, "data": v}
		}
		keyed, _ := json.Marshal(map[string]any{"inputs": []any{in("customer_id", "INT64", ids), in("plan", "BYTES", plan)}})
		whole, _ := json.Marshal(map[string]any{"inputs": []any{in("age", "FP32", age), in("income", "FP32", income), in("city", "BYTES", city), in("plan", "BYTES", plan)}})
		for _, c := range []struct {
			name, path string
			body       []byte
		}{{"keys", "/v2/models/feat/infer", keyed}, {"whole", "/v2/models/plain/infer", whole}} {
			b.Run(fmt.Sprintf("%s/rows=%d", c.name, n), func(b *testing.B) {
				for b.Loop() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("POST", c.path, bytes.NewReader(c.body))
					req.Header.Set("Content-Type", "application/json")
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
