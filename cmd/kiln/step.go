package main

// kiln step: what runs inside a Kubernetes step's pod (package
// pipeline/kube builds the Job). `kiln step install DIR` is the init
// container, copying this binary into the pod's shared folder; `kiln step
// exec` is the step container: it reads the task from $KILN_TASK, stages
// inputs and outputs over the server's HTTP API, runs the command with
// pipeline/local.RunTask and writes the Outcome as the container's
// termination message.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/kube"
	"github.com/kiln-ml/kiln/pipeline/local"
)

// newStepCmd is the kiln step command group, used inside a Kubernetes
// step's pod.
func newStepCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "step", Short: "Run one pipeline step attempt (inside a Kubernetes Job)", Hidden: true}
	cmd.AddCommand(newStepExecCmd(), newStepInstallCmd())
	return cmd
}

func newStepExecCmd() *cobra.Command {
	var server, dir, termLog, taskFile string
	cmd := &cobra.Command{
		Use:   "exec",
		Short: "Run the step attempt described by $" + kube.TaskEnv,
		Long: `Run one attempt of a pipeline step, as the Kubernetes executor's pod does:
read the task (JSON) from $` + kube.TaskEnv + ` or --task-file, fetch its inputs from the
Kiln server (--server, default $KILN_URL) into DIR/inputs, run the command,
store its artifact outputs on the server, and write the outcome (exit code,
error, scalar outputs) as JSON to --termination-log. The exit status is the
command's (1 when the attempt failed otherwise).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			write := func(o pipeline.Outcome, st *client.Stager, t *pipeline.Task) error {
				return writeOutcome(cmd, termLog, o, st, t)
			}
			raw := os.Getenv(kube.TaskEnv)
			if taskFile != "" {
				data, err := os.ReadFile(taskFile)
				if err != nil {
					return err
				}
				raw = string(data)
			}
			if raw == "" {
				err := errdefs.Invalid("no task: set $%s or --task-file", kube.TaskEnv)
				write(pipeline.Outcome{ExitCode: -1, Error: errdefs.Message(err)}, nil, nil)
				return err
			}
			t, err := kube.DecodeTask(raw)
			if err != nil {
				write(pipeline.Outcome{ExitCode: -1, Error: errdefs.Message(err)}, nil, nil)
				return err
			}
			c, err := client.New(serverURL(server, os.Getenv), nil)
			if err != nil {
				write(pipeline.Outcome{ExitCode: -1, Error: errdefs.Message(err)}, nil, t)
				return err
			}
			c.UserAgent = "kiln/" + version + " (step exec)"
			c.Token = os.Getenv("KILN_TOKEN")
			st := c.Stager()
			base := make([]string, 0, len(os.Environ()))
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, kube.TaskEnv+"=") {
					base = append(base, kv)
				}
			}
			out, runErr := local.RunTask(ctx, t, local.TaskOptions{Dir: dir, Stager: st, BaseEnv: base}, cmd.OutOrStdout())
			out.Handle = ""
			if err := write(out, st, t); err != nil {
				fmt.Fprintf(stderr, "kiln step exec: writing the outcome: %v\n", err)
				if runErr == nil {
					runErr = err
				}
			}
			code := local.ExitStatus(out, runErr)
			if runErr != nil {
				return exitError{code: max(code, 1), err: runErr}
			}
			if code != 0 {
				fmt.Fprintf(stderr, "kiln step exec: step %s attempt %d failed: %s\n", t.Step, t.Attempt, out.Error)
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "Kiln server URL (default $KILN_URL, else an http(s) $MLFLOW_TRACKING_URI, else "+defaultServer+")")
	cmd.Flags().StringVar(&dir, "dir", "", "the attempt's folder, holding inputs/ and outputs/ (default: a temporary folder)")
	cmd.Flags().StringVar(&termLog, "termination-log", kube.TerminationLog, `where the outcome is written ("-": standard output)`)
	cmd.Flags().StringVar(&taskFile, "task-file", "", "read the task from this file instead of $"+kube.TaskEnv)
	return cmd
}

// writeOutcome writes o as the termination message; an outcome too large
// for one is stored next to the attempt's outputs (through st) and the
// message points at it.
func writeOutcome(cmd *cobra.Command, termLog string, o pipeline.Outcome, st *client.Stager, t *pipeline.Task) error {
	uri := ""
	if t != nil && st != nil {
		uri = kube.OutcomeURI(t)
	}
	msg, full := kube.EncodeOutcome(o, uri)
	if !full && uri != "" {
		if err := storeOutcome(cmd, st, o, uri); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "kiln step exec: storing the outcome at %s: %v\n", uri, err)
			msg, _ = kube.EncodeOutcome(o, "")
		}
	}
	if termLog == "-" {
		_, err := fmt.Fprintln(cmd.OutOrStdout(), msg)
		return err
	}
	return os.WriteFile(termLog, []byte(msg), 0o644)
}

func storeOutcome(cmd *cobra.Command, st *client.Stager, o pipeline.Outcome, uri string) error {
	f, err := os.CreateTemp("", "kiln-outcome-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(kube.OutcomeJSON(o))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return st.Store(cmd.Context(), f.Name(), uri)
}

func newStepInstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install DIR",
		Short: "Copy this kiln binary to DIR/kiln (the Kubernetes step's init container)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the kiln binary: %w", err)
			}
			if p, err := filepath.EvalSymlinks(exe); err == nil {
				exe = p
			}
			dst := filepath.Join(args[0], "kiln")
			if err := copyExecutable(exe, dst); err != nil {
				return fmt.Errorf("installing kiln at %s: %w", dst, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s\n", dst)
			return nil
		},
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
