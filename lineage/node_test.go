package lineage

import "testing"

func TestParseNodeID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NodeID
		bad  bool
	}{
		{in: "dataset:iris@3", want: NodeID{Type: DatasetVersion, Name: "iris", Version: 3}},
		{in: "dataset:a@b@2", want: NodeID{Type: DatasetVersion, Name: "a@b", Version: 2}},
		{in: "model:team/churn/7", want: NodeID{Type: ModelVersion, Name: "team/churn", Version: 7}},
		{in: "run:0123abcd", want: NodeID{Type: Run, Name: "0123abcd"}},
		{in: "logged-model:m-1", want: NodeID{Type: LoggedModel, Name: "m-1"}},
		{in: "endpoint:churn", want: NodeID{Type: Endpoint, Name: "churn"}},
		{in: "monitor:drift", want: NodeID{Type: Monitor, Name: "drift"}},
		{in: "alert:drift/psi", want: NodeID{Type: Alert, Name: "drift", Rule: "psi"}},
		{in: "pipeline-run:01J", want: NodeID{Type: PipelineRun, Name: "01J"}},
		{in: "dataset:iris", bad: true},
		{in: "dataset:iris@0", bad: true},
		{in: "dataset:iris@03", bad: true},
		{in: "model:x/", bad: true},
		{in: "alert:drift", bad: true},
		{in: "run:", bad: true},
		{in: "thing:x", bad: true},
		{in: "nocolon", bad: true},
	} {
		got, err := ParseNodeID(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: parsed as %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%q: String() = %q", tc.in, got.String())
		}
	}
}

func FuzzParseNodeID(f *testing.F) {
	for _, s := range []string{"dataset:iris@3", "model:a/b/2", "alert:m/r", "run:x", "pipeline-run:y", ":", "dataset:@1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNodeID(s)
		if err != nil {
			return
		}
		back, err := ParseNodeID(n.String())
		if err != nil || back != n {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, n, n.String(), back, err)
		}
	})
}
