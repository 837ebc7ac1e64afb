package main

// What the client commands (kiln data …, and later kiln runs …, kiln
// models …) share: which server to talk to, how to print results
// (--output json|yaml|table), progress bars, and exit codes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/dataset"
)

// defaultServer is the server of client commands when neither --server,
// $KILN_URL nor an http(s) $MLFLOW_TRACKING_URI names one.
const defaultServer = "http://127.0.0.1:5000"

// serverURL picks the server: the flag, else $KILN_URL, else
// $MLFLOW_TRACKING_URI when it is an http(s) URL (not file:… or
// databricks), else defaultServer.
func serverURL(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if u := getenv("KILN_URL"); u != "" {
		return u
	}
	if u := getenv("MLFLOW_TRACKING_URI"); u != "" {
		if p, err := url.Parse(u); err == nil && (p.Scheme == "http" || p.Scheme == "https") {
			return u
		}
	}
	return defaultServer
}

// clientFlags are the flags of a client command group.
type clientFlags struct {
	server string
	output string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.server, "server", "", "Kiln server URL (default $KILN_URL, else an http(s) $MLFLOW_TRACKING_URI, else "+defaultServer+")")
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
	cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp
	})
}

func (f *clientFlags) client() (*client.Client, error) {
	c, err := client.New(serverURL(f.server, os.Getenv), nil)
	if err != nil {
		return nil, err
	}
	c.UserAgent = "kiln/" + version
	c.Token, c.Username, c.Password = credentials(os.Getenv)
	c.Workspace = os.Getenv("KILN_WORKSPACE")
	return c, nil
}

// credentials picks what the client signs in with: $KILN_TOKEN, else
// MLflow's variables as the mlflow client reads them (user name and
// password, both set, win over $MLFLOW_TRACKING_TOKEN).
func credentials(getenv func(string) string) (token, user, password string) {
	if t := getenv("KILN_TOKEN"); t != "" {
		return t, "", ""
	}
	if u, p := getenv("MLFLOW_TRACKING_USERNAME"), getenv("MLFLOW_TRACKING_PASSWORD"); u != "" && p != "" {
		return "", u, p
	}
	return getenv("MLFLOW_TRACKING_TOKEN"), "", ""
}

// checkOutput validates --output before any work is done.
func (f *clientFlags) checkOutput() error {
	switch f.output {
	case "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown --output %q: want table, json or yaml", f.output)
}

// print writes v as JSON or YAML, or calls table to write it for people.
func (f *clientFlags) print(w io.Writer, v any, table func(w io.Writer) error) error {
	switch f.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case "yaml":
		return writeYAML(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if err := table(tw); err != nil {
		return err
	}
	return tw.Flush()
}

// writeYAML writes v as YAML with the field names and order of its JSON
// form (JSON is YAML, so the JSON encoding parses as a YAML node tree,
// which is then printed in block style).
func writeYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return err
	}
	var block func(*yaml.Node)
	block = func(n *yaml.Node) {
		n.Style &^= yaml.FlowStyle
		// Strings are quoted only where YAML needs it (the encoder quotes
		// what would read as another type), and where YAML 1.1 readers
		// such as PyYAML would take them for booleans.
		if n.Kind == yaml.ScalarNode && n.Style&yaml.DoubleQuotedStyle != 0 && !yaml11Bool[strings.ToLower(n.Value)] {
			n.Style &^= yaml.DoubleQuotedStyle
		}
		for _, c := range n.Content {
			block(c)
		}
	}
	block(&n)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	return enc.Close()
}

var yaml11Bool = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true}

// exitError makes the command exit with code. With err set, err is
// printed; without, the command has printed its outcome itself (a failed
// validation report).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e exitError) Unwrap() error { return e.err }

// exitCode returns the process exit status for a command's error, and the
// error to print (nil when there is nothing more to say).
func exitCode(err error) (int, error) {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code, ee.err
	}
	return 1, err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func formatTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04")
}

func shortDigest(d dataset.Digest) string { return d.String()[:12] }

// ellipsis clips s to n runes for a table cell, on one line.
func ellipsis(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// isTerminal says whether f is a terminal (progress bars are drawn only
// on one).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// progress reports transfer progress on w: bars on a terminal, one line
// per phase otherwise (logs, CI).
type progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	bars  map[dataset.Phase]*progressbar.ProgressBar
	start map[dataset.Phase]time.Time
	files map[dataset.Phase]int
	total map[dataset.Phase]int
	bytes map[dataset.Phase]int64
}

var _ dataset.Progress = (*progress)(nil)

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && isTerminal(f), bars: map[dataset.Phase]*progressbar.ProgressBar{},
		start: map[dataset.Phase]time.Time{}, files: map[dataset.Phase]int{}, total: map[dataset.Phase]int{}, bytes: map[dataset.Phase]int64{}}
}

var phaseVerb = map[dataset.Phase][2]string{
	dataset.PhaseHash:     {"hashing", "hashed"},
	dataset.PhaseUpload:   {"uploading", "uploaded"},
	dataset.PhaseDownload: {"downloading", "downloaded"},
	dataset.PhaseCheckout: {"checking out", "checked out"},
}

func (p *progress) Begin(ph dataset.Phase, files int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start[ph], p.files[ph], p.total[ph], p.bytes[ph] = time.Now(), 0, files, bytes
	if files == 0 {
		return
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s %s (%s)\n", phaseVerb[ph][0], plural(files, "file"), humanBytes(bytes))
		return
	}
	p.bars[ph] = progressbar.NewOptions64(bytes,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-12s 0/%d files", phaseVerb[ph][0], files)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
}

func (p *progress) Advance(ph dataset.Phase, files int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[ph] += files
	bar := p.bars[ph]
	if bar == nil {
		return
	}
	if files > 0 {
		bar.Describe(fmt.Sprintf("%-12s %d/%d files", phaseVerb[ph][0], p.files[ph], p.total[ph]))
	}
	if bytes > 0 {
		bar.Add64(bytes)
	}
}

func (p *progress) End(ph dataset.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bar := p.bars[ph]; bar != nil {
		bar.Finish()
		delete(p.bars, ph)
	}
	if p.total[ph] == 0 {
		return
	}
	d := time.Since(p.start[ph]).Round(time.Millisecond)
	fmt.Fprintf(p.w, "%s %d of %s (%s) in %s\n", phaseVerb[ph][1], p.files[ph], plural(p.total[ph], "file"), humanBytes(p.bytes[ph]), d)
}

// withTimeout bounds quick metadata calls (completion).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
