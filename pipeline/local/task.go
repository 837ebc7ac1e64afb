package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// MaxScalarOutput bounds the file a metric, parameter or model output is
// read from.
const MaxScalarOutput = 64 << 10

// drainTimeout bounds the wait for the log pipe's end once the step's
// process group is gone (a process that left the group may hold it).
var drainTimeout = time.Second

// TaskOptions configure RunTask.
type TaskOptions struct {
	// Dir is the attempt's folder: inputs/ and outputs/ are made inside.
	// Empty: a temporary folder, removed afterwards.
	Dir string
	// Stager fetches inputs and stores artifact outputs.
	Stager pipeline.Stager
	// BaseEnv is the environment the step starts from (default
	// os.Environ()).
	BaseEnv []string
	// KillGrace is the time between SIGTERM and SIGKILL (default
	// DefaultKillGrace).
	KillGrace time.Duration
	// KilnDir is put first on the step's PATH, so that a step calling
	// `kiln …` runs the kiln binary that runs it (default SelfDir(): the
	// folder of this process's executable).
	KilnDir string
}

// SelfDir is the folder of this process's executable (symbolic links
// resolved), or "" when it cannot be told.
func SelfDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	return filepath.Dir(exe)
}

// RunTask runs one attempt of t to its end, without a parallelism bound:
// inputs fetched to <Dir>/inputs/<name>, the command run in its own
// process group with its output streamed to log, outputs collected after
// a zero exit.
//
// A command that fails (non-zero exit, timeout, a declared output missing
// or malformed) is an Outcome with a non-zero ExitCode and Error saying
// what, and a nil error. A non-nil error means the attempt could not be
// carried out: errdefs.ErrInvalidArgument when it never can as written
// (no command, command not found, bad names), another error when staging
// or the system failed, ctx's error when ctx ended (Error "cancelled").
// Outcome.Handle is "pid:<n>" once the process started.
func RunTask(ctx context.Context, t *pipeline.Task, o TaskOptions, log io.Writer) (pipeline.Outcome, error) {
	if t == nil {
		return notRun("no task"), errdefs.Invalid("local executor: no task")
	}
	if err := checkTask(t); err != nil {
		return notRun(errdefs.Message(err)), err
	}
	if log == nil {
		log = io.Discard
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.BaseEnv == nil {
		o.BaseEnv = os.Environ()
	}
	if o.KilnDir == "" {
		o.KilnDir = SelfDir()
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "kiln-step-")
		if err != nil {
			return notRun("creating the attempt folder failed"), fmt.Errorf("local executor: %w", err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return notRun("bad attempt folder"), fmt.Errorf("local executor: %w", err)
	}
	inDir, outDir := filepath.Join(dir, "inputs"), filepath.Join(dir, "outputs")
	for _, d := range []string{inDir, outDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return notRun("creating the attempt folder failed"), fmt.Errorf("local executor: %w", err)
		}
	}

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if t.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, t.Timeout)
	}
	defer cancel()
	a := &attempt{ctx: ctx, runCtx: runCtx, t: t, o: o, inDir: inDir, outDir: outDir, log: log}
	return a.run()
}

type attempt struct {
	ctx, runCtx   context.Context
	t             *pipeline.Task
	o             TaskOptions
	inDir, outDir string
	log           io.Writer
	handle        string
}

// ended reports the Outcome of an attempt whose context ended.
func (a *attempt) ended(code int) (pipeline.Outcome, error, bool) {
	if code == 0 {
		code = -1
	}
	if err := a.ctx.Err(); err != nil {
		return pipeline.Outcome{ExitCode: code, Error: "cancelled", Handle: a.handle}, err, true
	}
	if a.runCtx.Err() != nil {
		if code < 0 {
			code = 1
		}
		return pipeline.Outcome{ExitCode: code, Error: fmt.Sprintf("timed out after %v", a.t.Timeout), Handle: a.handle}, nil, true
	}
	return pipeline.Outcome{}, nil, false
}

func (a *attempt) failed(code int, format string, args ...any) pipeline.Outcome {
	if code == 0 {
		code = 1
	}
	return pipeline.Outcome{ExitCode: code, Error: fmt.Sprintf(format, args...), Handle: a.handle}
}

func (a *attempt) run() (pipeline.Outcome, error) {
	t := a.t
	// Inputs.
	paths := make(map[string]string, len(t.Inputs))
	for _, in := range t.Inputs {
		if in.URI == "" {
			continue
		}
		if a.o.Stager == nil {
			return notRun("no stager for input " + in.Name), fmt.Errorf("local executor: step %s: input %s needs a stager", t.Step, in.Name)
		}
		dst := filepath.Join(a.inDir, in.Name)
		if err := a.o.Stager.Fetch(a.runCtx, in.URI, dst); err != nil {
			if out, err, ok := a.ended(-1); ok {
				return out, err
			}
			return notRun(fmt.Sprintf("fetching input %s (%s): %v", in.Name, in.URI, err)), fmt.Errorf("local executor: step %s: fetching input %s: %w", t.Step, in.Name, err)
		}
		paths[in.Name] = dst
	}
	env, err := buildEnv(a.o.BaseEnv, t, a.inDir, a.outDir, paths, a.o.KilnDir)
	if err != nil {
		return notRun(errdefs.Message(err)), err
	}
	path, err := lookPath(t.Command[0], env)
	if err != nil {
		msg := fmt.Sprintf("step %s: %v", t.Step, err)
		return notRun(msg), errdefs.Invalid("%s", msg)
	}
	if out, err, ok := a.ended(-1); ok {
		return out, err
	}

	// The process.
	code, desc, err := a.exec(path, env)
	if err != nil {
		return notRun(err.Error()), err
	}
	if out, err, ok := a.ended(code); ok {
		return out, err
	}
	if code != 0 {
		return a.failed(code, "%s", desc), nil
	}
	return a.outputs()
}

// exec runs the command to its end and returns its exit code (128+n for
// signal n) and a description ("exit status 3").
func (a *attempt) exec(path string, env []string) (int, string, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, "", fmt.Errorf("local executor: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: a.t.Command, Env: env, Dir: a.t.WorkingDir, Stdout: pw, Stderr: pw}
	setProcessGroup(cmd)
	if err := startCmd(cmd); err != nil {
		pr.Close()
		pw.Close()
		return 0, "", fmt.Errorf("local executor: step %s: starting %s: %w", a.t.Step, a.t.Command[0], err)
	}
	pw.Close()
	a.handle = "pid:" + strconv.Itoa(cmd.Process.Pid)

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer pr.Close()
		copyLines(pr, a.log)
	}()

	g := newGroup(cmd.Process, a.o.KillGrace)
	stop := context.AfterFunc(a.runCtx, g.terminate)
	reaped := false
	var waitErr error
	if !waitExited(cmd.Process) {
		waitErr = cmd.Wait()
		reaped = true
	}
	stop()
	// Whatever the step left behind in its group gets SIGTERM, and
	// SIGKILL once the log pipe closes or the grace period ends.
	g.terminate()
	select {
	case <-readDone:
	case <-g.killed:
	}
	g.finish()
	if !reaped {
		waitErr = cmd.Wait()
	}
	select {
	case <-readDone:
	default:
		tm := time.NewTimer(drainTimeout)
		select {
		case <-readDone:
		case <-tm.C:
			pr.Close()
			<-readDone
		}
		tm.Stop()
	}
	ps := cmd.ProcessState
	if ps == nil {
		return 0, "", fmt.Errorf("local executor: step %s: waiting: %w", a.t.Step, waitErr)
	}
	return exitCode(ps), ps.String(), nil
}

// outputs collects the declared outputs after a zero exit.
func (a *attempt) outputs() (pipeline.Outcome, error) {
	t := a.t
	wd := t.WorkingDir
	if wd == "" {
		wd = "."
	}
	where := func(o pipeline.Output) string {
		if o.Path != "" {
			if filepath.IsAbs(o.Path) {
				return o.Path
			}
			return filepath.Join(wd, o.Path)
		}
		return filepath.Join(a.outDir, o.Name)
	}
	var missing []string
	for _, o := range t.Outputs {
		if _, err := os.Stat(where(o)); err != nil {
			p := "$KILN_OUTPUTS/" + o.Name
			if o.Path != "" {
				p = o.Path
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", o.Name, p))
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return a.failed(1, "output %s was not written", missing[0]), nil
	default:
		return a.failed(1, "outputs %s were not written", strings.Join(missing, ", ")), nil
	}
	values := map[string]string{}
	for _, o := range t.Outputs {
		if outputType(o) == pipeline.OutputArtifact {
			continue
		}
		v, err := readScalar(where(o), outputType(o))
		if err != nil {
			return a.failed(1, "output %s: %v", o.Name, err), nil
		}
		values[o.Name] = v
	}
	for _, o := range t.Outputs {
		if outputType(o) != pipeline.OutputArtifact {
			continue
		}
		if a.o.Stager == nil || t.OutputPrefix == "" {
			return a.failed(1, "output %s: nowhere to store it (no stager or output prefix)", o.Name),
				fmt.Errorf("local executor: step %s: artifact output %s needs a stager and an output prefix", t.Step, o.Name)
		}
		uri := strings.TrimRight(t.OutputPrefix, "/") + "/" + o.Name
		if err := a.o.Stager.Store(a.runCtx, where(o), uri); err != nil {
			if out, err, ok := a.ended(1); ok {
				return out, err
			}
			return a.failed(1, "storing output %s: %v", o.Name, err), fmt.Errorf("local executor: step %s: storing output %s: %w", t.Step, o.Name, err)
		}
	}
	return pipeline.Outcome{Outputs: values, Handle: a.handle}, nil
}

func outputType(o pipeline.Output) string {
	if o.Type == "" {
		return pipeline.OutputArtifact
	}
	return o.Type
}

// readScalar reads a metric, parameter or model output's file.
func readScalar(path, typ string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return "", errors.New("is a folder, not a file holding its value")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxScalarOutput+1))
	if err != nil {
		return "", err
	}
	return parseScalar(data, typ)
}

// parseScalar checks and trims the value of a scalar output.
func parseScalar(data []byte, typ string) (string, error) {
	if len(data) > MaxScalarOutput {
		return "", fmt.Errorf("larger than %d KiB", MaxScalarOutput>>10)
	}
	if !utf8.Valid(data) || slices.Contains(data, 0) {
		return "", errors.New("not UTF-8 text")
	}
	v := strings.TrimSpace(string(data))
	switch typ {
	case pipeline.OutputMetric:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("%q is not a finite number", abbrev(v))
		}
	case pipeline.OutputModel:
		if v == "" {
			return "", errors.New("empty (want a model URI)")
		}
	case pipeline.OutputParameter:
	default:
		return "", fmt.Errorf("unknown output type %q", typ)
	}
	return v, nil
}

func abbrev(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:40] + "…"
}

// checkTask refuses a task that cannot run as written.
func checkTask(t *pipeline.Task) error {
	if len(t.Command) == 0 || t.Command[0] == "" {
		return errdefs.Invalid("step %s has no command", t.Step)
	}
	for _, in := range t.Inputs {
		if err := checkName(in.Name); err != nil {
			return errdefs.Invalid("step %s: input name %q: %v", t.Step, in.Name, err)
		}
	}
	for _, o := range t.Outputs {
		if err := checkName(o.Name); err != nil {
			return errdefs.Invalid("step %s: output name %q: %v", t.Step, o.Name, err)
		}
		switch outputType(o) {
		case pipeline.OutputArtifact, pipeline.OutputMetric, pipeline.OutputParameter, pipeline.OutputModel:
		default:
			return errdefs.Invalid("step %s: output %s has unknown type %q", t.Step, o.Name, o.Type)
		}
	}
	for k, v := range t.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return errdefs.Invalid("step %s: bad environment variable %q", t.Step, k)
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return errors.New("not a plain file name")
	}
	return nil
}

// EnvName is the environment variable holding an input's value or path:
// KILN_INPUT_ and the name upper-cased, other characters than letters and
// digits as underscores.
func EnvName(input string) string {
	b := []byte("KILN_INPUT_" + input)
	for i := len("KILN_INPUT_"); i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// RefSuffix ends the variable that names a dataset input's version:
// KILN_INPUT_<NAME>_REF holds "name@N", the version the run pinned.
const RefSuffix = "_REF"

// buildEnv layers the step's environment: base, the task's identity
// (MLFLOW_RUN_ID, KILN_PIPELINE, KILN_PIPELINE_RUN, KILN_STEP,
// KILN_ATTEMPT), t.Env, then KILN_INPUTS, KILN_OUTPUTS,
// KILN_INPUT_<NAME>_REF of each dataset input and KILN_INPUT_<NAME>. A
// later layer replaces an earlier one's variable (an input's own variable
// wins over another's _REF of the same name). Last, kilnDir (when
// absolute) is put first on PATH; a step environment without PATH gets
// kilnDir followed by this process's PATH, which is where the command
// would be looked up otherwise.
func buildEnv(base []string, t *pipeline.Task, inDir, outDir string, paths map[string]string, kilnDir string) ([]string, error) {
	env := make([]string, 0, len(base)+len(t.Env)+2*len(t.Inputs)+9)
	idx := make(map[string]int, cap(env))
	set := func(k, v string) {
		kv := k + "=" + v
		if i, ok := idx[k]; ok {
			env[i] = kv
			return
		}
		idx[k] = len(env)
		env = append(env, kv)
	}
	for _, kv := range base {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			env = append(env, kv)
			continue
		}
		set(k, v)
	}
	for _, kv := range [][2]string{
		{"MLFLOW_RUN_ID", t.TrackingRunID}, {"KILN_PIPELINE", t.Pipeline}, {"KILN_PIPELINE_RUN", t.RunID}, {"KILN_STEP", t.Step},
	} {
		if kv[1] != "" {
			set(kv[0], kv[1])
		}
	}
	if t.Attempt > 0 {
		set("KILN_ATTEMPT", strconv.Itoa(t.Attempt))
	}
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		set(k, t.Env[k])
	}
	set("KILN_INPUTS", inDir)
	set("KILN_OUTPUTS", outDir)
	for _, in := range t.Inputs {
		if ref, ok := strings.CutPrefix(in.URI, "dataset:"); ok && ref != "" {
			set(EnvName(in.Name)+RefSuffix, ref)
		}
	}
	for _, in := range t.Inputs {
		if p, ok := paths[in.Name]; ok {
			set(EnvName(in.Name), p)
		} else {
			if strings.ContainsRune(in.Value, 0) {
				return nil, errdefs.Invalid("step %s: input %s holds a NUL byte", t.Step, in.Name)
			}
			set(EnvName(in.Name), in.Value)
		}
	}
	if kilnDir != "" && filepath.IsAbs(kilnDir) && !strings.ContainsRune(kilnDir, filepath.ListSeparator) {
		cur := os.Getenv("PATH")
		if i, found := idx["PATH"]; found {
			cur = strings.TrimPrefix(env[i], "PATH=")
		}
		if first, _, _ := strings.Cut(cur, string(filepath.ListSeparator)); first != kilnDir {
			if cur == "" {
				set("PATH", kilnDir)
			} else {
				set("PATH", kilnDir+string(filepath.ListSeparator)+cur)
			}
		}
	}
	return env, nil
}

// lookPath finds the executable of name in the step's own PATH (the
// executor's when the step has none).
func lookPath(name string, env []string) (string, error) {
	if strings.ContainsRune(name, filepath.Separator) || strings.ContainsRune(name, '/') {
		return name, nil
	}
	pathEnv, found := "", false
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			pathEnv, found = v, true
			break
		}
	}
	if !found || !searchOwnPath {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("command %q not found in $PATH", name)
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in $PATH", name)
}
