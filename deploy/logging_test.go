package deploy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/pii"
)

func TestLoggingSpec(t *testing.T) {
	base := func(l *Logging) *Endpoint {
		e := &Endpoint{Metadata: Metadata{Name: "ep"}}
		e.Spec.Model = "m"
		e.Spec.Routes = []Route{{ModelRef: ModelRef{Version: "1"}, Weight: 100}}
		e.Spec.Logging = l
		return e
	}
	tests := []struct {
		name string
		l    *Logging
		err  string // "" = valid
	}{
		{"default", nil, ""},
		{"full", &Logging{Mode: LogRequest, SampleRate: 0.25, SubjectHeader: "X-Customer"}, ""},
		{"none", &Logging{Mode: LogNone}, ""},
		{"bad mode", &Logging{Mode: "everything"}, "spec.logging.mode"},
		{"rate above 1", &Logging{SampleRate: 1.5}, "spec.logging.sample_rate"},
		{"negative rate", &Logging{SampleRate: -0.1}, "spec.logging.sample_rate"},
		{"bad header", &Logging{SubjectHeader: "X Customer"}, "spec.logging.subject_header"},
		{"pii", &Logging{PII: &LogPII{Mask: true, Kinds: []pii.Kind{pii.Email, pii.Card}, Custom: map[string]string{"employee": `EMP-\d{6}`}}}, ""},
		{"pii unknown kind", &Logging{PII: &LogPII{Mask: true, Kinds: []pii.Kind{"passport"}}}, `spec.logging.pii: unknown PII kind "passport"`},
		{"pii bad regexp", &Logging{PII: &LogPII{Mask: true, Custom: map[string]string{"x": "("}}}, `spec.logging.pii: custom PII detector "x"`},
		{"retention", &Logging{Retention: Duration(7 * 24 * time.Hour)}, ""},
		{"retention zero is the default", &Logging{Retention: 0}, ""},
		{"negative retention", &Logging{Retention: Duration(-time.Hour)}, "spec.logging.retention: must not be negative"},
	}
	for _, tc := range tests {
		err := base(tc.l).Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.err)
		}
	}
	if e := (*Logging)(nil).Effective(); e.Mode != LogAll || e.SampleRate != 1 || e.SubjectHeader != DefaultSubjectHeader {
		t.Errorf("defaults: %+v", e)
	}
	if e := (&Logging{SampleRate: 0.5}).Effective(); e.Mode != LogAll || e.SampleRate != 0.5 {
		t.Errorf("partial: %+v", e)
	}
}

func TestDurationDays(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30d", 30 * day, false},
		{"1d12h", day + 12*time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"0d", 0, false},
		{"-2d", -2 * day, false},
		{"720h", 720 * time.Hour, false},
		{"250ms", 250 * time.Millisecond, false},
		{"d", 0, true},
		{"xd", 0, true},
		{"1d-1h", 0, true},
		{"1e3d", 0, true},
		{"1dd", 0, true},
		{"200000000d", 0, true}, // past 292 years
		{"30 days", 0, true},
	}
	for _, tc := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tc.in))
		switch {
		case tc.err && err == nil:
			t.Errorf("%q: parsed as %v, want an error", tc.in, d.D())
		case !tc.err && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !tc.err && d.D() != tc.want:
			t.Errorf("%q: %v, want %v", tc.in, d.D(), tc.want)
		}
	}
	// In a spec, as JSON; and what is written reads back the same.
	var l Logging
	if err := json.Unmarshal([]byte(`{"retention":"30d"}`), &l); err != nil || l.Retention.D() != 30*day {
		t.Fatalf("retention from JSON: %v %v", l.Retention.D(), err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back Logging
	if err := json.Unmarshal(b, &back); err != nil || back.Retention != l.Retention {
		t.Fatalf("round trip %s: %v %v", b, back.Retention.D(), err)
	}
}

// The Manager hands an applied spec.logging.retention to the prediction
// log (its Settings) as written; an endpoint without one has none (the
// server's default applies).
func TestManagerLoggingRetention(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	f.register(t, "clf", "skl_svc_rbf_multi")
	m := f.manager(t, ManagerOptions{})
	for name, logging := range map[string]string{"kept": `,"logging":{"retention":"7d","subject_header":"X-Customer"}`, "plain": ""} {
		e := parseDoc(t, `{"metadata":{"name":"`+name+`"},"spec":{"model":"clf","routes":[{"version":"1","weight":100}]`+logging+`}}`)
		if _, err := m.Apply(bg, e, "a", ""); err != nil {
			t.Fatal(err)
		}
	}
	if l, ok := m.Logging("kept"); !ok || l.Retention.D() != 7*24*time.Hour || l.SubjectHeader != "X-Customer" {
		t.Fatalf("kept: %+v %v", l, ok)
	}
	if l, ok := m.Logging("plain"); !ok || l.Retention != 0 {
		t.Fatalf("plain: %+v %v", l, ok)
	}
}
