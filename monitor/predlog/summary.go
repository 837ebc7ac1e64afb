package predlog

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
)

// latencyK is the KLL parameter of latency sketches (about 1% rank error).
const latencyK = 200

// Sketch is a mergeable quantile sketch of latencies in seconds (a KLL
// sketch; JSON: base64 of its binary form).
type Sketch struct {
	kll *profile.KLL
}

func newSketch() *Sketch { return &Sketch{kll: profile.NewKLL(latencyK)} }

// Add adds one latency in seconds.
func (s *Sketch) Add(seconds float64) { s.kll.Add(seconds) }

// Count returns the number of latencies added.
func (s *Sketch) Count() int64 {
	if s == nil || s.kll == nil {
		return 0
	}
	return int64(s.kll.N())
}

// Quantile returns the latency quantile q in seconds (NaN when empty).
func (s *Sketch) Quantile(q float64) float64 {
	if s.Count() == 0 {
		return math.NaN()
	}
	return s.kll.Quantiles([]float64{q})[0]
}

// Merge adds o into s.
func (s *Sketch) Merge(o *Sketch) error {
	if o.Count() == 0 {
		return nil
	}
	return s.kll.Merge(o.kll)
}

// MarshalJSON writes the sketch as base64 of its binary form.
func (s *Sketch) MarshalJSON() ([]byte, error) {
	b, err := s.kll.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Sketch) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	k := profile.NewKLL(latencyK)
	if len(b) > 0 {
		if err := k.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("latency sketch: %w", err)
		}
	}
	s.kll = k
	return nil
}

// RouteSummary is what a route (or variant) answered.
type RouteSummary struct {
	Requests     int64   `json:"requests"`
	Errors       int64   `json:"errors"`
	ClientErrors int64   `json:"client_errors"`
	Latency      *Sketch `json:"latency"`
}

// LatencyQuantile returns the route's latency quantile q in seconds (NaN
// when it has no requests).
func (r *RouteSummary) LatencyQuantile(q float64) float64 {
	if r == nil {
		return math.NaN()
	}
	return r.Latency.Quantile(q)
}

// Summary is the mergeable summary of a span of an endpoint's log: one per
// shipped segment, merged over windows by (*Index).Summary.
type Summary struct {
	// Start and End are the first and last request times (zero when
	// empty).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Requests counts requests, Rows predicted rows; Errors counts failed
	// requests (5xx, or failed without a status), ClientErrors 4xx.
	Requests     int64 `json:"requests"`
	Rows         int64 `json:"rows"`
	Errors       int64 `json:"errors"`
	ClientErrors int64 `json:"client_errors"`
	// Routes are the per-route figures ("" for an endpoint without
	// routes, e.g. standalone serving).
	Routes map[string]*RouteSummary `json:"routes"`
	// Models counts requests per model version ("fraud/3").
	Models map[string]int64 `json:"models,omitempty"`
	// Latency is the whole endpoint's latency sketch.
	Latency *Sketch `json:"latency"`
	// Profile profiles the columns "inputs.<feature>" and
	// "outputs.<output>" (nil when no tensor was logged).
	Profile *profile.Profile `json:"profile,omitempty"`
	// Outliers counts, per feature (no prefix), the rows outside its
	// bounds; OutlierRows the rows with any.
	Outliers    map[string]int64 `json:"outliers"`
	OutlierRows int64            `json:"outlier_rows"`
}

func newSummary() *Summary {
	return &Summary{Routes: map[string]*RouteSummary{}, Models: map[string]int64{}, Latency: newSketch(), Outliers: map[string]int64{}}
}

// EmptySummary returns a summary of nothing, ready to Merge into.
func EmptySummary() *Summary { return newSummary() }

// LatencyQuantile returns the latency quantile q in seconds over every
// request (NaN when there are none).
func (s *Summary) LatencyQuantile(q float64) float64 {
	if s == nil {
		return math.NaN()
	}
	return s.Latency.Quantile(q)
}

// ErrorRate returns Errors / Requests (0 without requests).
func (s *Summary) ErrorRate() float64 {
	if s == nil || s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

func (s *Summary) addRequest(t time.Time, route, model string, latency float64, status int, failed bool) {
	if s.Start.IsZero() || t.Before(s.Start) {
		s.Start = t
	}
	if t.After(s.End) {
		s.End = t
	}
	s.Requests++
	rs := s.Routes[route]
	if rs == nil {
		rs = &RouteSummary{Latency: newSketch()}
		s.Routes[route] = rs
	}
	rs.Requests++
	switch {
	case status >= 400 && status < 500:
		s.ClientErrors++
		rs.ClientErrors++
	case status >= 500 || failed:
		s.Errors++
		rs.Errors++
	}
	if model != "" {
		s.Models[model]++
	}
	s.Latency.Add(latency)
	rs.Latency.Add(latency)
}

// Merge adds o into s. Profiles of different columns (a model version that
// added a feature) merge over the union of their columns.
func (s *Summary) Merge(o *Summary) error {
	if o == nil {
		return nil
	}
	s.fill()
	if !o.Start.IsZero() && (s.Start.IsZero() || o.Start.Before(s.Start)) {
		s.Start = o.Start
	}
	if o.End.After(s.End) {
		s.End = o.End
	}
	s.Requests += o.Requests
	s.Rows += o.Rows
	s.Errors += o.Errors
	s.ClientErrors += o.ClientErrors
	for name, r := range o.Routes {
		rs := s.Routes[name]
		if rs == nil {
			rs = &RouteSummary{Latency: newSketch()}
			s.Routes[name] = rs
		}
		rs.Requests += r.Requests
		rs.Errors += r.Errors
		rs.ClientErrors += r.ClientErrors
		if r.Latency != nil {
			if err := rs.Latency.Merge(r.Latency); err != nil {
				return err
			}
		}
	}
	for m, n := range o.Models {
		s.Models[m] += n
	}
	if o.Latency != nil {
		if err := s.Latency.Merge(o.Latency); err != nil {
			return err
		}
	}
	for f, n := range o.Outliers {
		s.Outliers[f] += n
	}
	s.OutlierRows += o.OutlierRows
	return s.mergeProfile(o.Profile)
}

// fill makes the maps and sketches of a decoded or zero summary usable.
func (s *Summary) fill() {
	if s.Routes == nil {
		s.Routes = map[string]*RouteSummary{}
	}
	for _, r := range s.Routes {
		if r.Latency == nil {
			r.Latency = newSketch()
		}
	}
	if s.Models == nil {
		s.Models = map[string]int64{}
	}
	if s.Outliers == nil {
		s.Outliers = map[string]int64{}
	}
	if s.Latency == nil || s.Latency.kll == nil {
		s.Latency = newSketch()
	}
}

// UnmarshalJSON decodes a summary and makes it mergeable.
func (s *Summary) UnmarshalJSON(b []byte) error {
	type plain Summary
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Summary(v)
	s.fill()
	return nil
}

func (s *Summary) mergeProfile(o *profile.Profile) error {
	switch {
	case o == nil:
		return nil
	case s.Profile == nil:
		p, err := cloneProfile(o)
		if err != nil {
			return err
		}
		s.Profile = p
		return nil
	}
	if sameColumns(s.Profile, o) {
		return s.Profile.MergeFrom(o)
	}
	// Union of the columns: s's order, then o's new ones; each side gets
	// empty columns for what it lacks.
	var fields []table.Field
	seen := map[string]bool{}
	for _, p := range []*profile.Profile{s.Profile, o} {
		for _, c := range p.Columns {
			if !seen[c.Field.Name] {
				seen[c.Field.Name] = true
				fields = append(fields, c.Field)
			}
		}
	}
	a, err := padProfile(s.Profile, fields)
	if err != nil {
		return err
	}
	b, err := padProfile(o, fields)
	if err != nil {
		return err
	}
	if err := a.MergeFrom(b); err != nil {
		return err
	}
	s.Profile = a
	return nil
}

func sameColumns(a, b *profile.Profile) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i, c := range a.Columns {
		if c.Field.Name != b.Columns[i].Field.Name || c.Field.Type != b.Columns[i].Field.Type {
			return false
		}
	}
	return true
}

func cloneProfile(p *profile.Profile) (*profile.Profile, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var out profile.Profile
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// padProfile returns p with the columns of fields, in that order: p's own
// where it has them (by name; a column of another type is replaced by an
// empty one), empty ones elsewhere.
func padProfile(p *profile.Profile, fields []table.Field) (*profile.Profile, error) {
	empty := profile.New(table.Schema{Fields: fields}, profile.Options{})
	var doc struct {
		Rows    int64             `json:"rows"`
		Columns []json.RawMessage `json:"columns"`
	}
	eb, err := json.Marshal(empty)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(eb, &doc); err != nil {
		return nil, err
	}
	own := map[string]*profile.Column{}
	for _, c := range p.Columns {
		own[c.Field.Name] = c
	}
	for i, f := range fields {
		if c := own[f.Name]; c != nil && c.Field.Type == f.Type {
			cb, err := json.Marshal(c)
			if err != nil {
				return nil, err
			}
			doc.Columns[i] = cb
		}
	}
	doc.Rows = p.Rows
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var out profile.Profile
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
