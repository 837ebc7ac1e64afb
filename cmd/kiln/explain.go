package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/serving"
)

type explainFlags struct {
	model, endpoint   string
	input, background string
	contentType       string
	method            string
	nsamples          int
	seed              uint64
	maxBackground     int
	output            string
	importance        bool
	store             string
	server            string
	backend           string
	logLevel          string
}

func newExplainCmd() *cobra.Command {
	f := explainFlags{}
	cmd := &cobra.Command{
		Use:   "explain (--model URI | --endpoint NAME) --input FILE",
		Short: "Explain predictions with SHAP values (exact TreeSHAP for tree ensembles, Kernel SHAP otherwise)",
		Long: `Explain a model's predictions on the rows of --input: per row and feature, how
much the feature moved the output away from the expected value (SHAP values;
expected value + the row's values = the output).

With --model, the model is loaded here, as 'kiln serve' loads it (a model file,
an MLflow model directory, runs:/ or models:/ through --server). With
--endpoint, the rows go to the server's POST /endpoints/NAME/explain.

Methods (--method, default: picked for the model):
  tree_path_dependent  exact TreeSHAP of XGBoost and LightGBM models, in the
                       raw margin (log-odds, per-class margins); no background
  tree_interventional  exact TreeSHAP of ONNX tree ensembles (no covers),
                       against background rows
  kernel               Kernel SHAP of any model's output (probabilities for
                       classifiers), against background rows; exact up to 12
                       varying features, sampled (--nsamples, --seed) beyond
The background is --background, else the model's input example, else (here
only) a sample of the input rows.

--input is CSV with a header (.csv) or an /invocations JSON body (.json:
dataframe_split, dataframe_records, instances, inputs).

--importance prints the global feature importance (mean |SHAP| over the rows)
as a bar chart; --store models:/NAME/VERSION records it on that model version
as the tag kiln.explain.importance, through the server.`,
		Example: `  kiln explain --model ./model.json --input rows.csv
  kiln explain --model models:/churn/3 --input sample.csv --importance --store models:/churn/3
  kiln explain --model ./iris.onnx --input rows.csv --background train.csv --output json
  kiln explain --endpoint churn --input request.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExplain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "model to load and explain here (file, MLflow model directory, runs:/ or models:/ URI)")
	fl.StringVar(&f.endpoint, "endpoint", "", "endpoint of the server to explain through (POST /endpoints/NAME/explain)")
	fl.StringVarP(&f.input, "input", "i", "", "rows to explain: CSV with a header, or an /invocations JSON body (- for stdin, CSV)")
	fl.StringVar(&f.background, "background", "", "background rows (same formats as --input) for the interventional and kernel methods")
	fl.StringVar(&f.contentType, "content-type", "", "content type of --input and --background (default: by extension; .json is JSON, anything else CSV)")
	fl.StringVar(&f.method, "method", "", "method: tree, tree_path_dependent, tree_interventional or kernel (default: picked for the model)")
	fl.IntVar(&f.nsamples, "nsamples", 0, "Kernel SHAP: coalitions evaluated per row (default 2·features + 2048, as shap)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed for sampling coalitions and background rows")
	fl.IntVar(&f.maxBackground, "max-background", 0, "background rows kept (more are summarised; default 100 for trees, 20 for Kernel SHAP)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fl.BoolVar(&f.importance, "importance", false, "print the global feature importance (mean |SHAP|) instead of the values")
	fl.StringVar(&f.store, "store", "", "store the global importance on this model version (models:/NAME/VERSION) through the server")
	fl.StringVar(&f.server, "server", "", "Kiln server URL (default $KILN_URL, else an http(s) $MLFLOW_TRACKING_URI, else "+defaultServer+")")
	fl.StringVar(&f.backend, "backend", "", "runtime backend to load --model with (onnx, xgboost, lightgbm, python, ...)")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("method", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"tree", explain.MethodTreePathDependent, explain.MethodTreeInterventional, explain.MethodKernel}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func runExplain(ctx context.Context, stdout, stderr io.Writer, f explainFlags) error {
	if (f.model == "") == (f.endpoint == "") {
		return errors.New("give exactly one of --model (explain here) and --endpoint (explain on the server)")
	}
	if f.input == "" {
		return errors.New("--input is required")
	}
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("unknown --output %q: want table or json", f.output)
	}
	var store model.URI
	if f.store != "" {
		u, err := model.ParseURI(f.store)
		if err != nil {
			return err
		}
		if u.Kind != model.URIVersion {
			return fmt.Errorf("--store %s: want models:/NAME/VERSION", f.store)
		}
		store = u
	}
	body, ct, err := readExplainInput(f.input, f.contentType)
	if err != nil {
		return err
	}
	server := serverURL(f.server, os.Getenv)
	var resp *explain.Response
	var ex *explain.Explanation
	if f.endpoint != "" {
		if resp, err = explainRemote(ctx, server, f, body, ct); err != nil {
			return err
		}
		if ex, err = responseExplanation(resp); err != nil {
			return err
		}
	} else {
		if ex, err = explainLocal(ctx, stderr, server, f, body, ct); err != nil {
			return err
		}
	}
	if f.importance || f.store != "" {
		imp := explain.ImportanceOf(ex)
		if f.store != "" {
			ts := &restTagSetter{base: server, client: &http.Client{Timeout: time.Minute}}
			if err := explain.StoreImportance(ctx, ts, store.Name, store.Version, imp); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "stored the importance of %s on %s as tag %s\n", plural(len(imp.Features), "feature"), f.store, explain.ImportanceTag)
		}
		if f.importance || f.store == "" {
			if f.output == "json" {
				return writeJSON(stdout, imp)
			}
			return printImportance(stdout, imp)
		}
		return nil
	}
	if f.output == "json" {
		if resp == nil {
			resp = explain.NewResponse(ex, "")
		}
		return writeJSON(stdout, resp)
	}
	return printExplanation(stdout, ex)
}

// readExplainInput reads a rows file and tells its content type.
func readExplainInput(path, contentType string) ([]byte, string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<30))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", err
	}
	ct := contentType
	if ct == "" {
		ct = "text/csv"
		if strings.EqualFold(filepath.Ext(path), ".json") {
			ct = "application/json"
		}
	}
	return b, ct, nil
}

func explainLocal(ctx context.Context, stderr io.Writer, server string, f explainFlags, body []byte, ct string) (*explain.Explanation, error) {
	log := newLogger(config.Log{Level: f.logLevel, Format: "text"})
	sf := serveFlags{backend: f.backend, trackingURI: f.server}
	if sf.trackingURI == "" && (os.Getenv("KILN_URL") != "" || os.Getenv("MLFLOW_TRACKING_URI") != "" || strings.HasPrefix(f.model, "models:") || strings.HasPrefix(f.model, "runs:")) {
		sf.trackingURI = server
	}
	m, err := loadServeModel(ctx, f.model, sf, log)
	if err != nil {
		return nil, err
	}
	defer m.Runtime.Close()
	inv, err := serving.DecodeInvocation(body, ct, m)
	if err != nil {
		return nil, fmt.Errorf("--input %s: %w", f.input, err)
	}
	opts := explain.Options{
		Method: f.method, NSamples: f.nsamples, Seed: f.seed, MaxBackground: f.maxBackground,
		FeatureNames: explain.SignatureColumns(m),
	}
	if f.background != "" {
		b, bct, err := readExplainInput(f.background, f.contentType)
		if err != nil {
			return nil, err
		}
		bg, err := serving.DecodeInvocation(b, bct, m)
		if err != nil {
			return nil, fmt.Errorf("--background %s: %w", f.background, err)
		}
		opts.Background = bg.Inputs
	} else {
		opts.Background = explain.InputExample(m)
	}
	e, err := explain.New(ctx, m.Runtime, opts)
	if errors.Is(err, explain.ErrNoBackground) && f.background == "" {
		fmt.Fprintf(stderr, "kiln: no --background and no input example: explaining against a sample of the input rows\n")
		opts.Background = inv.Inputs
		e, err = explain.New(ctx, m.Runtime, opts)
	}
	if err != nil {
		return nil, err
	}
	rows := 0
	if len(inv.Inputs) > 0 && len(inv.Inputs[0].Shape) > 0 {
		rows = int(inv.Inputs[0].Shape[0])
	}
	var progress func(int)
	if e.Method() == explain.MethodKernel && rows > 1 {
		if file, ok := stderr.(*os.File); ok && isTerminal(file) {
			bar := progressbar.NewOptions(rows, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("kernel SHAP"),
				progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true))
			defer bar.Finish()
			progress = func(done int) { bar.Set(done) }
		}
	}
	ex, err := e.ExplainProgress(ctx, inv.Inputs, progress)
	if err != nil {
		return nil, err
	}
	if !e.NamedByModel() && inv.Columns != nil {
		ex.FeatureNames = inv.Columns
	}
	return ex, nil
}

func explainRemote(ctx context.Context, server string, f explainFlags, body []byte, ct string) (*explain.Response, error) {
	q := url.Values{}
	if f.method != "" {
		q.Set("method", f.method)
	}
	if f.nsamples > 0 {
		q.Set("nsamples", strconv.Itoa(f.nsamples))
	}
	if f.seed != 0 {
		q.Set("seed", strconv.FormatUint(f.seed, 10))
	}
	if f.background != "" {
		if !strings.HasPrefix(ct, "application/json") {
			return nil, errors.New("--background with --endpoint needs a JSON --input (the background travels in the body)")
		}
		b, bct, err := readExplainInput(f.background, f.contentType)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(bct, "application/json") {
			return nil, errors.New("--background with --endpoint must be an /invocations JSON body (.json)")
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("--input %s: %w", f.input, err)
		}
		doc["background"] = json.RawMessage(b)
		if body, err = json.Marshal(doc); err != nil {
			return nil, err
		}
	}
	u := strings.TrimRight(server, "/") + "/endpoints/" + url.PathEscape(f.endpoint) + "/explain"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "kiln/"+version)
	if tok := os.Getenv("KILN_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, remoteError("explain "+f.endpoint, res.StatusCode, b)
	}
	var r explain.Response
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("explain %s: bad response: %w", f.endpoint, err)
	}
	return &r, nil
}

func remoteError(what string, status int, body []byte) error {
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		msg = e.Code + ": " + e.Message
	}
	return fmt.Errorf("%s: HTTP %d: %s", what, status, ellipsis(msg, 500))
}

// responseExplanation turns a server's answer back into an Explanation.
func responseExplanation(r *explain.Response) (*explain.Explanation, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var doc struct {
		ExpectedValue json.RawMessage `json:"expected_value"`
		ShapValues    json.RawMessage `json:"shap_values"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	ex := &explain.Explanation{Method: r.Method, FeatureNames: r.FeatureNames, OutputNames: r.OutputNames}
	var per [][][]float64
	var one float64
	if json.Unmarshal(doc.ExpectedValue, &one) == nil {
		ex.Expected = []float64{one}
		var m [][]float64
		if err := json.Unmarshal(doc.ShapValues, &m); err != nil {
			return nil, fmt.Errorf("bad shap_values: %w", err)
		}
		per = [][][]float64{m}
		ex.OutputNames = []string{""}
	} else {
		if err := json.Unmarshal(doc.ExpectedValue, &ex.Expected); err != nil {
			return nil, fmt.Errorf("bad expected_value: %w", err)
		}
		if err := json.Unmarshal(doc.ShapValues, &per); err != nil {
			return nil, fmt.Errorf("bad shap_values: %w", err)
		}
	}
	k, nf := len(ex.Expected), len(ex.FeatureNames)
	if len(per) != k {
		return nil, fmt.Errorf("bad response: %d outputs of values for %d expected values", len(per), k)
	}
	ex.Rows = len(per[0])
	ex.Values = make([]float64, ex.Rows*nf*k)
	for o := range k {
		if len(per[o]) != ex.Rows {
			return nil, errors.New("bad response: outputs with different row counts")
		}
		for r, row := range per[o] {
			if len(row) != nf {
				return nil, fmt.Errorf("bad response: row %d has %d values for %d features", r, len(row), nf)
			}
			for j, v := range row {
				ex.Values[(r*nf+j)*k+o] = v
			}
		}
	}
	return ex, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printExplanation prints, per output, a table of rows × features.
func printExplanation(w io.Writer, ex *explain.Explanation) error {
	k := ex.NumOutputs()
	for o := range k {
		if k > 1 {
			if o > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "output %s\n", ex.OutputNames[o])
		}
		fmt.Fprintf(w, "method %s, expected value %s\n", ex.Method, fmtValue(ex.Expected[o]))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "ROW\t")
		for _, n := range ex.FeatureNames {
			fmt.Fprint(tw, n, "\t")
		}
		fmt.Fprintln(tw, "OUTPUT\t")
		for r := range ex.Rows {
			fmt.Fprint(tw, r, "\t")
			sum := ex.Expected[o]
			for f := range ex.NumFeatures() {
				v := ex.At(r, f, o)
				sum += v
				fmt.Fprint(tw, fmtValue(v), "\t")
			}
			fmt.Fprintln(tw, fmtValue(sum), "\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// printImportance draws the importance as a sorted bar chart.
func printImportance(w io.Writer, imp explain.Importance) error {
	fmt.Fprintf(w, "global feature importance: mean |SHAP| over %s (%s)\n", plural(imp.Rows, "row"), imp.Method)
	if len(imp.Features) == 0 {
		return nil
	}
	width := 0
	for _, f := range imp.Features {
		width = max(width, len([]rune(f.Name)))
	}
	width = min(width, 40)
	top := imp.Features[0].Value
	const barWidth = 40
	for _, f := range imp.Features {
		n := 0
		if top > 0 {
			n = int(math.Round(f.Value / top * barWidth))
		}
		bar := strings.Repeat("█", n)
		if n == 0 && f.Value > 0 {
			bar = "▏"
		}
		if _, err := fmt.Fprintf(w, "%-*s  %-*s %s\n", width, ellipsis(f.Name, width), barWidth, bar, fmtValue(f.Value)); err != nil {
			return err
		}
	}
	return nil
}

// restTagSetter sets model version tags through MLflow's REST API.
type restTagSetter struct {
	base   string
	client *http.Client
}

func (s *restTagSetter) SetModelVersionTag(ctx context.Context, name string, ver int64, key, value string) error {
	body, err := json.Marshal(map[string]string{"name": name, "version": strconv.FormatInt(ver, 10), "key": key, "value": value})
	if err != nil {
		return err
	}
	u := strings.TrimRight(s.base, "/") + "/api/2.0/mlflow/model-versions/set-tag"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kiln/"+version)
	switch {
	case os.Getenv("MLFLOW_TRACKING_USERNAME") != "":
		req.SetBasicAuth(os.Getenv("MLFLOW_TRACKING_USERNAME"), os.Getenv("MLFLOW_TRACKING_PASSWORD"))
	case os.Getenv("KILN_TOKEN") != "":
		req.Header.Set("Authorization", "Bearer "+os.Getenv("KILN_TOKEN"))
	case os.Getenv("MLFLOW_TRACKING_TOKEN") != "":
		req.Header.Set("Authorization", "Bearer "+os.Getenv("MLFLOW_TRACKING_TOKEN"))
	}
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return remoteError("set-tag", res.StatusCode, b)
	}
	return nil
}

var _ explain.TagSetter = (*restTagSetter)(nil)
