//go:build unix

package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// dirStager is a Stager over a folder: "fake:/a/b" is <root>/a/b.
type dirStager struct{ root string }

func (s dirStager) path(uri string) (string, error) {
	p, ok := strings.CutPrefix(uri, "fake:/")
	if !ok {
		return "", fmt.Errorf("unknown URI %q", uri)
	}
	return filepath.Join(s.root, filepath.FromSlash(p)), nil
}

func (s dirStager) Fetch(_ context.Context, uri, dst string) error {
	src, err := s.path(uri)
	if err != nil {
		return err
	}
	return copyAny(src, dst)
}

func (s dirStager) Store(_ context.Context, src, uri string) error {
	dst, err := s.path(uri)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return copyAny(src, dst)
}

func copyAny(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.CopyFS(dst, os.DirFS(src))
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// syncBuffer is a log writer safe to read while the step writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (zombies are dead: PID 1
// here may not reap them).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
			return data[i+2] != 'Z'
		}
	}
	return true
}

func readPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for _, name := range []string{"p", "c1", "c2"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("pid file %s: %v", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

func TestEnvAndInputs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "data"), 0o755)
	os.WriteFile(filepath.Join(root, "data", "rows.csv"), []byte("a,b\n1,2\n"), 0o644)
	e := New(Options{WorkDir: t.TempDir(), Stager: dirStager{root}, BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "BASE=1", "FOO=base"}})
	task := &pipeline.Task{
		Pipeline: "p", RunID: "r1", Step: "s", Attempt: 2, TrackingRunID: "tr",
		Command: sh(`cd "$KILN_OUTPUTS" && printf '%s|%s|%s|%s|%s|%s' "$FOO" "$BASE" "$MLFLOW_RUN_ID" "$KILN_STEP" "$KILN_ATTEMPT" "$KILN_INPUT_MIN_AUC" > env &&
			cat "$KILN_INPUT_DATA/rows.csv" > data && printf %s "$KILN_INPUT_DATA" > datapath && printf %s "$KILN_INPUTS" > inputs`),
		Env:     map[string]string{"FOO": "bar"},
		Inputs:  []pipeline.TaskInput{{Name: "data", URI: "fake:/data"}, {Name: "min-auc", Value: "0.8"}},
		Outputs: []pipeline.Output{{Name: "env", Type: "parameter"}, {Name: "data", Type: "parameter"}, {Name: "datapath", Type: "parameter"}, {Name: "inputs", Type: "parameter"}},
	}
	out, err := e.Run(context.Background(), task, nil)
	if err != nil || out.Error != "" || out.ExitCode != 0 {
		t.Fatalf("Run: %+v, %v", out, err)
	}
	if got, want := out.Outputs["env"], "bar|1|tr|s|2|0.8"; got != want {
		t.Errorf("env seen %q, want %q", got, want)
	}
	if got := out.Outputs["data"]; got != "a,b\n1,2" {
		t.Errorf("input content %q", got)
	}
	if got, want := out.Outputs["datapath"], filepath.Join(out.Outputs["inputs"], "data"); got != want {
		t.Errorf("KILN_INPUT_DATA %q, want %q", got, want)
	}
	if !strings.HasPrefix(out.Handle, "pid:") {
		t.Errorf("handle %q", out.Handle)
	}
}

func TestOutputs(t *testing.T) {
	root := t.TempDir()
	wd := t.TempDir()
	work := t.TempDir()
	e := New(Options{WorkDir: work, Stager: dirStager{root}})
	task := &pipeline.Task{
		Step: "train", Attempt: 1, WorkingDir: wd, OutputPrefix: "fake:/runs/r1/train/1/outputs/",
		Command: sh(`echo ' 0.93 ' > "$KILN_OUTPUTS/auc"; echo models:/m/3 > "$KILN_OUTPUTS/model"; echo hi > "$KILN_OUTPUTS/note"
			mkdir -p out/dir && echo w > out/dir/weights.bin && echo r > report.txt`),
		Outputs: []pipeline.Output{
			{Name: "auc", Type: "metric"}, {Name: "model", Type: "model"}, {Name: "note", Type: "parameter"},
			{Name: "weights", Path: "out/dir"}, {Name: "report", Type: "artifact", Path: "report.txt"},
		},
	}
	out, err := e.Run(context.Background(), task, nil)
	if err != nil || out.Error != "" {
		t.Fatalf("Run: %+v, %v", out, err)
	}
	want := map[string]string{"auc": "0.93", "model": "models:/m/3", "note": "hi"}
	if fmt.Sprint(out.Outputs) != fmt.Sprint(want) {
		t.Errorf("outputs %v, want %v", out.Outputs, want)
	}
	for p, content := range map[string]string{"runs/r1/train/1/outputs/weights/weights.bin": "w\n", "runs/r1/train/1/outputs/report": "r\n"} {
		if data, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(data) != content {
			t.Errorf("stored %s: %q, %v", p, data, err)
		}
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("attempt folders left: %v", ents)
	}
}

func TestKeepWorkDirs(t *testing.T) {
	work := t.TempDir()
	e := New(Options{WorkDir: work, KeepWorkDirs: true})
	if out, err := e.Run(context.Background(), &pipeline.Task{Step: "s", Attempt: 1, Command: []string{"true"}}, nil); err != nil || out.Error != "" {
		t.Fatalf("Run: %+v, %v", out, err)
	}
	ents, _ := os.ReadDir(work)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "s-1-") {
		t.Errorf("attempt folders %v, want one s-1-…", ents)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		outputs []pipeline.Output
		code    int
		want    string // in Outcome.Error
	}{
		{"exit code", "exit 3", nil, 3, "exit status 3"},
		{"signal", "kill -9 $$", nil, 137, "signal: killed"},
		{"missing output", "true", []pipeline.Output{{Name: "auc", Type: "metric"}}, 1, "output auc ($KILN_OUTPUTS/auc) was not written"},
		{"missing outputs", "true", []pipeline.Output{{Name: "a", Type: "metric"}, {Name: "m", Path: "x/y"}}, 1, "outputs a ($KILN_OUTPUTS/a), m (x/y) were not written"},
		{"bad metric", "echo abc > $KILN_OUTPUTS/auc", []pipeline.Output{{Name: "auc", Type: "metric"}}, 1, `output auc: "abc" is not a finite number`},
		{"NaN metric", "echo NaN > $KILN_OUTPUTS/auc", []pipeline.Output{{Name: "auc", Type: "metric"}}, 1, "not a finite number"},
		{"empty model", ": > $KILN_OUTPUTS/m", []pipeline.Output{{Name: "m", Type: "model"}}, 1, "output m: empty"},
		{"too large", "head -c 70000 /dev/zero | tr '\\0' 1 > $KILN_OUTPUTS/p", []pipeline.Output{{Name: "p", Type: "parameter"}}, 1, "larger than 64 KiB"},
		{"outputs not read after failure", "exit 2", []pipeline.Output{{Name: "auc", Type: "metric"}}, 2, "exit status 2"},
	}
	e := New(Options{WorkDir: t.TempDir()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.Run(context.Background(), &pipeline.Task{Step: "s", Command: sh(tt.script), Outputs: tt.outputs}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if out.ExitCode != tt.code || !strings.Contains(out.Error, tt.want) {
				t.Errorf("got code %d error %q, want %d and %q", out.ExitCode, out.Error, tt.code, tt.want)
			}
			if ExitStatus(out, err) != tt.code {
				t.Errorf("ExitStatus %d, want %d", ExitStatus(out, err), tt.code)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name string
		task pipeline.Task
		want string
	}{
		{"image", pipeline.Task{Step: "s", Image: "python:3.12", Command: []string{"true"}}, "names image"},
		{"no command", pipeline.Task{Step: "s"}, "has no command"},
		{"not found", pipeline.Task{Step: "s", Command: []string{"no-such-command-kiln"}}, `command "no-such-command-kiln" not found`},
		{"bad input name", pipeline.Task{Step: "s", Command: []string{"true"}, Inputs: []pipeline.TaskInput{{Name: "../x", Value: "1"}}}, "input name"},
		{"bad env", pipeline.Task{Step: "s", Command: []string{"true"}, Env: map[string]string{"A=B": "1"}}, "bad environment variable"},
	}
	e := New(Options{WorkDir: t.TempDir()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.Run(context.Background(), &tt.task, nil)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(out.Error, tt.want) || out.ExitCode != -1 {
				t.Errorf("got %+v, %v; want an invalid-argument error saying %q", out, err, tt.want)
			}
		})
	}
	allow := New(Options{WorkDir: t.TempDir(), AllowImages: true})
	if out, err := allow.Run(context.Background(), &pipeline.Task{Step: "s", Image: "python:3.12", Command: []string{"true"}}, nil); err != nil || out.Error != "" {
		t.Errorf("AllowImages: %+v, %v", out, err)
	}
}

const treeScript = `trap '' TERM; echo $$ > "$D/p"; sleep 60 & echo $! > "$D/c1"; sleep 60 & echo $! > "$D/c2"; wait`

func TestStopKillsTree(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    string
		wantErr error
	}{
		{"timeout", 300 * time.Millisecond, false, "timed out after 300ms", nil},
		{"cancel", 0, true, "cancelled", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			// SIGTERM is ignored by the whole tree: only the SIGKILL after
			// the grace period stops it.
			e := New(Options{WorkDir: t.TempDir(), KillGrace: 100 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() {
					defer cancel()
					for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
						if _, err := os.Stat(filepath.Join(d, "c2")); err == nil {
							return
						}
					}
				}()
			}
			out, err := e.Run(ctx, &pipeline.Task{Step: "s", Command: sh(treeScript), Env: map[string]string{"D": d}, Timeout: tt.timeout}, nil)
			if !errors.Is(err, tt.wantErr) || out.Error != tt.want || out.ExitCode == 0 {
				t.Fatalf("got %+v, %v; want %q, %v", out, err, tt.want, tt.wantErr)
			}
			for _, pid := range readPids(t, d) {
				waitFor(t, fmt.Sprintf("process %d to end", pid), func() bool { return !alive(pid) })
			}
		})
	}
}

func TestLeftoversKilled(t *testing.T) {
	d := t.TempDir()
	e := New(Options{WorkDir: t.TempDir()})
	// The step exits at once, leaving two children behind that hold the log pipe.
	out, err := e.Run(context.Background(), &pipeline.Task{Step: "s", Command: sh(`echo $$ > "$D/p"; sleep 60 & echo $! > "$D/c1"; sleep 60 & echo $! > "$D/c2"`), Env: map[string]string{"D": d}}, nil)
	if err != nil || out.Error != "" {
		t.Fatalf("Run: %+v, %v", out, err)
	}
	for _, pid := range readPids(t, d) {
		waitFor(t, fmt.Sprintf("process %d to end", pid), func() bool { return !alive(pid) })
	}
}

func TestLogStreaming(t *testing.T) {
	d := t.TempDir()
	var log syncBuffer
	done := make(chan struct{})
	var out pipeline.Outcome
	var err error
	go func() {
		defer close(done)
		out, err = RunTask(context.Background(), &pipeline.Task{Step: "s", Env: map[string]string{"D": d},
			Command: sh(`echo line1; echo err1 >&2; printf partial; while [ ! -e "$D/go" ]; do sleep 0.01; done; echo " end"`)}, TaskOptions{}, &log)
	}()
	// The step waits for "go", so what arrives before it is streamed.
	waitFor(t, "streamed lines", func() bool { return strings.Contains(log.String(), "partial") })
	if s := log.String(); s != "line1\nerr1\npartial" {
		t.Errorf("log before exit %q", s)
	}
	os.WriteFile(filepath.Join(d, "go"), nil, 0o644)
	<-done
	if err != nil || out.Error != "" {
		t.Fatalf("RunTask: %+v, %v", out, err)
	}
	if s := log.String(); s != "line1\nerr1\npartial end\n" {
		t.Errorf("log %q", s)
	}
}

func TestParallelism(t *testing.T) {
	const n, limit = 6, 2
	d := t.TempDir()
	e := New(Options{WorkDir: t.TempDir(), Parallelism: limit})
	var mu sync.Mutex
	running := map[string]bool{}
	finished := 0
	maxRunning := 0
	var wg sync.WaitGroup
	for i := range n {
		step := fmt.Sprintf("s%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := writerFunc(func(p []byte) {
				mu.Lock()
				defer mu.Unlock()
				for _, line := range strings.Fields(string(p)) {
					switch line {
					case "started":
						running[step] = true
						maxRunning = max(maxRunning, len(running))
					case "done":
						delete(running, step)
						finished++
					}
				}
			})
			out, err := e.Run(context.Background(), &pipeline.Task{Step: step, Env: map[string]string{"D": d},
				Command: sh(`echo started; while [ ! -e "$D/$KILN_STEP" ]; do sleep 0.01; done; echo done`)}, w)
			if err != nil || out.Error != "" {
				t.Errorf("%s: %+v, %v", step, out, err)
			}
		}()
	}
	for left := n; left > 0; left-- {
		var pick string
		waitFor(t, "running steps", func() bool {
			mu.Lock()
			defer mu.Unlock()
			if len(running) < min(limit, left) {
				return false
			}
			for s := range running {
				pick = s
			}
			return true
		})
		os.WriteFile(filepath.Join(d, pick), nil, 0o644)
		waitFor(t, pick+" to finish", func() bool { mu.Lock(); defer mu.Unlock(); return !running[pick] })
	}
	wg.Wait()
	if maxRunning != limit || finished != n {
		t.Errorf("at most %d running at once, %d finished; want %d and %d", maxRunning, finished, limit, n)
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestSlotWaitCancelled(t *testing.T) {
	d := t.TempDir()
	e := New(Options{WorkDir: t.TempDir(), Parallelism: 1})
	first := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), &pipeline.Task{Step: "a", Env: map[string]string{"D": d},
			Command: sh(`touch "$D/started"; while [ ! -e "$D/go" ]; do sleep 0.01; done`)}, nil)
		first <- err
	}()
	waitFor(t, "first step", func() bool { _, err := os.Stat(filepath.Join(d, "started")); return err == nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := e.Run(ctx, &pipeline.Task{Step: "b", Command: sh(`touch "$D/b"`), Env: map[string]string{"D": d}}, nil)
	if !errors.Is(err, context.Canceled) || out.Error != "cancelled" {
		t.Errorf("waiting for a slot: %+v, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(d, "b")); err == nil {
		t.Error("the cancelled step ran")
	}
	os.WriteFile(filepath.Join(d, "go"), nil, 0o644)
	if err := <-first; err != nil {
		t.Error(err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	e := New(Options{WorkDir: t.TempDir()})
	run := func() {
		if out, err := e.Run(context.Background(), &pipeline.Task{Step: "s", Command: sh("echo x"), Timeout: time.Minute}, io.Discard); err != nil || out.Error != "" {
			t.Fatalf("Run: %+v, %v", out, err)
		}
	}
	run()
	before := runtime.NumGoroutine()
	for range 20 {
		run()
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		o    pipeline.Outcome
		err  error
		want int
	}{
		{pipeline.Outcome{}, nil, 0},
		{pipeline.Outcome{ExitCode: 3, Error: "exit status 3"}, nil, 3},
		{pipeline.Outcome{ExitCode: -1, Error: "x"}, errors.New("x"), 1},
		{pipeline.Outcome{ExitCode: 300}, nil, 255},
	}
	for _, tt := range tests {
		if got := ExitStatus(tt.o, tt.err); got != tt.want {
			t.Errorf("ExitStatus(%+v, %v) = %d, want %d", tt.o, tt.err, got, tt.want)
		}
	}
}

func BenchmarkRunTrue(b *testing.B) {
	e := New(Options{WorkDir: b.TempDir()})
	task := &pipeline.Task{Step: "s", Attempt: 1, Command: []string{"true"}}
	for b.Loop() {
		if out, err := e.Run(context.Background(), task, io.Discard); err != nil || out.Error != "" {
			b.Fatalf("Run: %+v, %v", out, err)
		}
	}
}
