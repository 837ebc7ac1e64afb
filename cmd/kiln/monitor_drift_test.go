package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runDriftCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"monitor", "drift"}, args...))
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		var msg error
		code, msg = exitCode(err)
		if msg != nil {
			errOut.WriteString(msg.Error())
		}
	}
	return out.String(), errOut.String(), code
}

func TestMonitorDriftCmd(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, shift int) string {
		var b strings.Builder
		b.WriteString("x,y,s\n")
		for i := range 300 {
			s := []string{"a", "b", "c"}[(i+shift)%3]
			if shift > 0 && i%2 == 0 {
				s = "a"
			}
			fmt.Fprintf(&b, "%d.25,%d,%s\n", (i*7)%100+shift, (i*13)%50, s)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ref, cur := write("ref.csv", 0), write("cur.csv", 40)

	out, errOut, code := runDriftCmd(t, "--reference", ref, "--current", cur)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"FEATURE", "x ", "ks", "DRIFT", "DATASET DRIFT: 2 of 3 columns drifted", "300 reference rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = runDriftCmd(t, "--reference", ref, "--current", cur, "-o", "json", "--exact", "--histograms", "--columns", "x,s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Statistics   string `json:"statistics"`
		DatasetDrift bool   `json:"dataset_drift"`
		Total        int    `json:"total"`
		Features     []struct {
			Name      string
			Method    string
			Drift     bool
			Histogram *struct{ Ref []float64 }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Statistics != "exact" || res.Total != 2 || !res.DatasetDrift || len(res.Features) != 2 ||
		res.Features[0].Method != "ks" || res.Features[1].Method != "chi2" || res.Features[0].Histogram == nil {
		t.Errorf("%+v", res)
	}

	if _, _, code = runDriftCmd(t, "--reference", ref, "--current", cur, "--fail-on-drift"); code != 1 {
		t.Errorf("--fail-on-drift with drift: exit %d", code)
	}
	if _, _, code = runDriftCmd(t, "--reference", ref, "--current", ref, "--fail-on-drift"); code != 0 {
		t.Errorf("--fail-on-drift without drift: exit %d", code)
	}
	out, _, code = runDriftCmd(t, "--reference", ref, "--current", cur, "-o", "yaml", "--method", "psi", "--threshold", "0.3", "--drift-share", "1")
	if code != 0 || !strings.Contains(out, "method: psi") || !strings.Contains(out, "threshold: 0.3") || !strings.Contains(out, "dataset_drift: false") {
		t.Errorf("yaml (exit %d):\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--reference", ref},
		{"--reference", ref, "--current", filepath.Join(dir, "none.csv")},
		{"--reference", ref, "--current", cur, "--method", "nope"},
		{"--reference", ref, "--current", cur, "--drift-share", "2"},
		{"--reference", ref, "--current", cur, "--columns", "zz"},
		{"--reference", ref, "--current", cur, "-o", "xml"},
	} {
		if _, errOut, code := runDriftCmd(t, args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}
