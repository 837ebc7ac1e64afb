package predlog

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tensor"
)

const crashChildEnv = "KILN_PREDLOG_CRASH_CHILD"

// TestCrashChild is the child of TestSIGKILLLosesNothing: it logs requests
// as fast as it can and prints each id once Observe has returned (the
// response would now go out), until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return // not the child: nothing to do
	}
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := blob.Open(ctx, "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Large fsync interval and segments: durability must come from the
	// write alone.
	l, err := Open(ctx, Options{Dir: filepath.Join(dir, "segments"), Bucket: b, DB: db, FsyncInterval: time.Hour, SegmentMaxBytes: 256 << 10, SegmentMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id := fmt.Sprintf("req-%d", i)
		in := &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{2, 3}, Data: []float64{1, 2, 3, 4, 5, float64(i)}}
		l.Observe(ctx, call("crash", id, []*tensor.Tensor{in}, nil))
		fmt.Fprintln(out, id)
		if i%64 == 0 {
			out.Flush()
		}
	}
}

// TestSIGKILLLosesNothing kills a process that logs requests and checks
// that every request it acknowledged is in the log after a restart.
func TestSIGKILLLosesNothing(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		id := sc.Text()
		if !strings.HasPrefix(id, "req-") {
			continue
		}
		acked[id] = true
		if len(acked) == 20000 { // several segments rolled, one active
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	for sc.Scan() { // what was printed before the kill
		if id := sc.Text(); strings.HasPrefix(id, "req-") {
			acked[id] = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := blob.Open(ctx, "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := &env{dir: filepath.Join(dir, "segments"), db: db, bucket: b, reg: prometheus.NewRegistry()}
	l := e.open(t, nil) // recovers and ships what the child left
	if err := l.Flush(ctx, ""); err != nil {
		t.Fatal(err)
	}
	_, rows := e.scan(t, "crash")
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r[ColRequestID].(string)] = true
	}
	missing := 0
	for id := range acked {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged requests lost (%d logged)", missing, len(acked), len(seen))
	}
	t.Logf("%d acknowledged, %d logged (some were written but not yet acknowledged)", len(acked), len(seen))
}
