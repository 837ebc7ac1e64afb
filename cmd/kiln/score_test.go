package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/score"
)

const rf100Model = "../../runtime/onnx/testdata/models/skl_rf100_clf/model.onnx"

// writeScoreCSV writes rows of (id, f0..f3).
func writeScoreCSV(t *testing.T, path string, rows int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,f0,f1,f2,f3\n")
	for i := range rows {
		fmt.Fprintf(&b, "c%d,%g,%g,%g,%g\n", i, float64(i%7)-3, float64(i%5)/2-1, float64(i%11)/5-1, float64(i%3)-1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runKiln(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestScoreCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	writeScoreCSV(t, in, 1000)
	tests := []struct {
		name string
		args []string
		// header of the output CSV, or the error
		header string
		err    string
	}{
		{
			name:   "keep one column",
			args:   []string{"--keep", "id", "--features", "f0,f1,f2,f3", "--workers", "3", "--batch-rows", "64"},
			header: "id,label,probabilities_0,probabilities_1,probabilities_2",
		},
		{
			name:   "keep all",
			args:   []string{"--keep-all", "--features", "f0,f1,f2,f3", "--chunk-rows", "100"},
			header: "id,f0,f1,f2,f3,label,probabilities_0,probabilities_1,probabilities_2",
		},
		{name: "text column fed to the model", args: nil, err: "takes 4 columns, the table has 5"},
		{name: "keep and keep-all", args: []string{"--keep", "id", "--keep-all"}, err: "exclude each other"},
		{name: "unknown feature", args: []string{"--features", "f0,zz"}, err: `no column "zz"`},
		{name: "resume without partial output", args: []string{"--resume", "--features", "f0,f1,f2,f3"}, err: "nothing to resume"},
		{name: "output is the input", args: []string{"--output", in}, err: "must not be the input"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out%d.csv", i))
			args := append([]string{"score", "--model", rf100Model, "--input", in, "--output", out}, tt.args...)
			stdout, _, err := runKiln(t, context.Background(), args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout, "scored 1000 rows") {
				t.Errorf("summary = %q", stdout)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(recs[0], ","); got != tt.header {
				t.Errorf("header = %s, want %s", got, tt.header)
			}
			if len(recs) != 1001 || recs[1000][0] != "c999" {
				t.Errorf("%d records, last %v", len(recs), recs[len(recs)-1])
			}
		})
	}
}

// TestScoreCommandInterrupted: a cancelled run (SIGINT) exits 130 and
// leaves a partial output that --resume completes.
func TestScoreCommandInterrupted(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	writeScoreCSV(t, in, 5000)
	out := filepath.Join(dir, "out.parquet")
	args := []string{"score", "--model", rf100Model, "--input", in, "--output", out, "--keep", "id",
		"--features", "f0,f1,f2,f3", "--batch-rows", "100", "--chunk-rows", "500", "--workers", "2"}

	// Cancel once the first chunk is in the journal.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if b, err := os.ReadFile(filepath.Join(score.PartialDir(out), "journal.json")); err == nil && strings.Contains(string(b), "chunk-000001") {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, stderr, err := runKiln(t, ctx, args...)
	cancel()
	<-done
	var ee exitError
	if err == nil {
		// The run beat the watcher: nothing to resume, but it must be complete.
		if _, err := os.Stat(out); err != nil {
			t.Fatal(err)
		}
		t.Log("the run finished before it could be interrupted")
		return
	}
	if !errors.As(err, &ee) || ee.code != 130 || !strings.Contains(stderr, "--resume") {
		t.Fatalf("err = %v, stderr = %q; want exit 130 and a hint to resume", err, stderr)
	}
	stdout, _, err := runKiln(t, context.Background(), append(args, "--resume")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "more from the interrupted run") {
		t.Errorf("summary = %q", stdout)
	}
	if _, err := os.Stat(score.PartialDir(out)); !os.IsNotExist(err) {
		t.Errorf("partial output left: %v", err)
	}
	whole := filepath.Join(dir, "whole.parquet")
	if _, _, err := runKiln(t, context.Background(), append(append(args[:6:6], whole), args[7:]...)...); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(out)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("resumed output (%d bytes) differs from an uninterrupted run (%d bytes)", len(b), len(a))
	}
}
