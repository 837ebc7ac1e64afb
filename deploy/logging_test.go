package deploy

import (
	"strings"
	"testing"

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
