package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// DefaultKillGrace is how long a stopped step has between SIGTERM and
// SIGKILL unless told otherwise.
const DefaultKillGrace = 5 * time.Second

// Options configure an Executor.
type Options struct {
	// Parallelism bounds the attempts that run at once (default
	// runtime.NumCPU()).
	Parallelism int
	// WorkDir is the root of the attempt folders (default
	// $TMPDIR/kiln-steps); it is created when needed.
	WorkDir string
	// Stager fetches inputs and stores artifact outputs. A step with
	// neither needs none.
	Stager pipeline.Stager
	// BaseEnv is the environment every step starts from (default
	// os.Environ() at New).
	BaseEnv []string
	// AllowImages runs steps that name a container image as plain
	// processes (the image is ignored); without it such a step is
	// refused.
	AllowImages bool
	// KeepWorkDirs leaves the attempt folders in place (for debugging).
	KeepWorkDirs bool
	// KillGrace is the time between SIGTERM and SIGKILL when a step is
	// stopped (default DefaultKillGrace).
	KillGrace time.Duration
	// KilnDir is put first on each step's PATH, so that a step calling
	// `kiln …` runs the server's own binary (default SelfDir(): the
	// folder of the server's executable).
	KilnDir string
	Logger  *slog.Logger
}

// Executor is the local pipeline.Executor. It is safe for concurrent use.
type Executor struct {
	o     Options
	slots chan struct{}
}

var _ pipeline.Executor = (*Executor)(nil)

// New returns an Executor.
func New(o Options) *Executor {
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.NumCPU()
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(os.TempDir(), "kiln-steps")
	}
	if o.BaseEnv == nil {
		o.BaseEnv = os.Environ()
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.KilnDir == "" {
		o.KilnDir = SelfDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{o: o, slots: make(chan struct{}, o.Parallelism)}
}

// Run runs one attempt of t once a parallelism slot is free, in a fresh
// folder under Options.WorkDir that is removed afterwards (unless
// KeepWorkDirs). It returns ctx's error if ctx ends while it waits or
// runs; see RunTask for the rest.
func (e *Executor) Run(ctx context.Context, t *pipeline.Task, log io.Writer) (pipeline.Outcome, error) {
	if t == nil {
		return notRun("no task"), errdefs.Invalid("local executor: no task")
	}
	if t.Image != "" && !e.o.AllowImages {
		msg := fmt.Sprintf("step %s names image %q: the local executor runs plain processes (use executor: kubernetes, or let the local executor ignore images)", t.Step, t.Image)
		return notRun(msg), errdefs.Invalid("%s", msg)
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return pipeline.Outcome{ExitCode: -1, Error: "cancelled"}, ctx.Err()
	}
	defer func() { <-e.slots }()
	if err := ctx.Err(); err != nil {
		return pipeline.Outcome{ExitCode: -1, Error: "cancelled"}, err
	}

	if err := os.MkdirAll(e.o.WorkDir, 0o755); err != nil {
		return notRun("creating the work folder failed"), fmt.Errorf("local executor: %w", err)
	}
	dir, err := os.MkdirTemp(e.o.WorkDir, dirPrefix(t))
	if err != nil {
		return notRun("creating the attempt folder failed"), fmt.Errorf("local executor: %w", err)
	}
	if e.o.KeepWorkDirs {
		e.o.Logger.Debug("step attempt folder kept", "pipeline", t.Pipeline, "run", t.RunID, "step", t.Step, "attempt", t.Attempt, "dir", dir)
	} else {
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				e.o.Logger.Warn("removing a step attempt folder", "dir", dir, "err", err)
			}
		}()
	}
	out, err := RunTask(ctx, t, TaskOptions{Dir: dir, Stager: e.o.Stager, BaseEnv: e.o.BaseEnv, KillGrace: e.o.KillGrace, KilnDir: e.o.KilnDir}, log)
	if e.o.Logger.Enabled(ctx, slog.LevelDebug) {
		e.o.Logger.Debug("step attempt ended", "pipeline", t.Pipeline, "run", t.RunID, "step", t.Step, "attempt", t.Attempt,
			"handle", out.Handle, "exit_code", out.ExitCode, "error", out.Error, "err", err)
	}
	return out, err
}

// dirPrefix names an attempt folder after its step and attempt, in
// characters that are safe in a file name.
func dirPrefix(t *pipeline.Task) string {
	name := t.Step
	if len(name) > 48 {
		name = name[:48]
	}
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("step")
	}
	b.WriteByte('-')
	b.WriteString(strconv.Itoa(t.Attempt))
	b.WriteByte('-')
	return b.String()
}

// notRun is the Outcome of an attempt whose process never started.
func notRun(msg string) pipeline.Outcome { return pipeline.Outcome{ExitCode: -1, Error: msg} }

// ExitStatus is the status a process that ran the attempt on behalf of
// someone else (`kiln step exec`) exits with: the command's exit code
// (128+n when signal n killed it), 1 for an attempt that failed otherwise,
// 0 for success.
func ExitStatus(o pipeline.Outcome, err error) int {
	switch {
	case o.ExitCode > 255:
		return 255
	case o.ExitCode > 0:
		return o.ExitCode
	case err != nil || o.Error != "" || o.ExitCode < 0:
		return 1
	}
	return 0
}
