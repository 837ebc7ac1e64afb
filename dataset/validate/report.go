package validate

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kiln-ml/kiln/stattest"
)

// Status is the outcome of one rule.
type Status string

// Statuses. A rule with status error could not be evaluated (unknown
// column, wrong column type, unreadable reference); it counts as failed.
const (
	StatusPassed Status = "passed"
	StatusFailed Status = "failed"
	StatusError  Status = "error"
)

// Report is the outcome of a suite on a table, or of a skew comparison.
// It serialises to JSON as stored on a dataset version.
type Report struct {
	Suite  string `json:"suite"`
	Passed bool   `json:"passed"`
	// Rows is the number of rows read (for skew: the training profile's).
	Rows int64 `json:"rows"`
	// Counts of rules by outcome. Warnings are failed (or errored) rules of
	// severity warning; they do not fail the suite and are not counted in
	// Failed or Errors.
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Errors    int `json:"errors"`
	Warnings  int `json:"warnings"`
	// Drift summarises distribution results (skew reports and suites with
	// distribution rules): how many columns drifted and whether that is
	// dataset drift by Evidently's rule (share ≥ DriftShare).
	Drift      *DriftSummary `json:"drift,omitempty"`
	StartedAt  time.Time     `json:"started_at"`
	DurationMS int64         `json:"duration_ms"`
	Results    []Result      `json:"results"`
}

// DefaultDriftShare is Evidently's dataset-drift share: the dataset drifts
// when at least half of its compared columns do.
const DefaultDriftShare = 0.5

// DriftSummary counts drifted columns.
type DriftSummary struct {
	Columns      int     `json:"columns"`
	Drifted      int     `json:"drifted"`
	Share        float64 `json:"share"`
	DriftShare   float64 `json:"drift_share"`
	DatasetDrift bool    `json:"dataset_drift"`
}

// Result is the outcome of one rule.
type Result struct {
	Rule     string   `json:"rule"`
	Check    Check    `json:"check"`
	Columns  []string `json:"columns,omitempty"`
	Severity Severity `json:"severity"`
	Status   Status   `json:"status"`
	// Observed and Expected describe what was found and what the rule
	// asks, for people.
	Observed string `json:"observed,omitempty"`
	Expected string `json:"expected,omitempty"`
	// Elements is the number of values checked (non-null values for most
	// checks; rows for not_null and unique), Unexpected how many failed.
	Elements           int64   `json:"elements"`
	Unexpected         int64   `json:"unexpected"`
	UnexpectedFraction float64 `json:"unexpected_fraction"`
	// Examples are the first failing values with their row numbers
	// (0-based index of the data row).
	Examples []Example `json:"examples,omitempty"`
	// Drift is the test outcome of a distribution rule.
	Drift *Drift `json:"drift,omitempty"`
	// Error says why a rule with status error could not be evaluated.
	Error string `json:"error,omitempty"`
}

// Example is one failing value.
type Example struct {
	Row   int64  `json:"row"`
	Value string `json:"value"`
}

// Drift is a distribution test's outcome and what it was computed from.
type Drift struct {
	Test      stattest.Result `json:"test"`
	Reference string          `json:"reference,omitempty"`
	Kind      string          `json:"kind"`
	// Values compared per side (after sampling) and values the columns had.
	ReferenceValues float64 `json:"reference_values"`
	CurrentValues   float64 `json:"current_values"`
	ReferenceRows   float64 `json:"reference_rows"`
	CurrentRows     float64 `json:"current_rows"`
	// Sampled says a side was a uniform subsample (or a sketch) rather than
	// every value, which makes the score an estimate.
	ReferenceSampled bool `json:"reference_sampled"`
	CurrentSampled   bool `json:"current_sampled"`
}

func (r *Report) summarise() {
	r.Total = len(r.Results)
	r.Succeeded, r.Failed, r.Errors, r.Warnings = 0, 0, 0, 0
	var drift DriftSummary
	for _, res := range r.Results {
		switch {
		case res.Status == StatusPassed:
			r.Succeeded++
		case res.Severity == SeverityWarning:
			r.Warnings++
		case res.Status == StatusError:
			r.Errors++
		default:
			r.Failed++
		}
		if res.Drift != nil {
			drift.Columns++
			if res.Drift.Test.Drift {
				drift.Drifted++
			}
		}
	}
	r.Passed = r.Failed == 0 && r.Errors == 0
	if drift.Columns > 0 {
		drift.DriftShare = DefaultDriftShare
		drift.Share = float64(drift.Drifted) / float64(drift.Columns)
		drift.DatasetDrift = drift.Share >= drift.DriftShare
		r.Drift = &drift
	}
}

// Exit codes of ExitCode, for CI.
const (
	ExitPassed = 0 // every rule passed (warnings allowed)
	ExitFailed = 1 // a rule of severity error failed or could not be evaluated
	ExitError  = 2 // the validation could not run (err != nil)
)

// ExitCode returns the process exit status for a run's outcome: ExitError
// when err is set or there is no report, ExitFailed when the report failed,
// ExitPassed otherwise.
func ExitCode(r *Report, err error) int {
	switch {
	case err != nil || r == nil:
		return ExitError
	case !r.Passed:
		return ExitFailed
	}
	return ExitPassed
}

// WriteText renders the report as a table for a terminal: a header line
// with the verdict, one line per rule, and the failing examples indented
// under their rule.
func (r *Report) WriteText(w io.Writer) error {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	name := r.Suite
	if name == "" {
		name = "validation"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s — %d rules: %d passed, %d failed, %d errors, %d warnings; %s rows\n",
		name, verdict, r.Total, r.Succeeded, r.Failed, r.Errors, r.Warnings, groupDigits(r.Rows))
	if r.Drift != nil {
		fmt.Fprintf(&b, "drift: %d of %d columns (share %.2f; dataset drift at %.2f: %s)\n",
			r.Drift.Drifted, r.Drift.Columns, r.Drift.Share, r.Drift.DriftShare, yesNo(r.Drift.DatasetDrift))
	}
	b.WriteByte('\n')
	// The table proper goes through tabwriter; example lines are added
	// after it, under their rule, so that they do not widen the columns.
	var tb strings.Builder
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tRULE\tOBSERVED\tEXPECTED\tUNEXPECTED")
	examples := make([]string, len(r.Results))
	for k, res := range r.Results {
		status := strings.ToUpper(string(res.Status))
		switch {
		case res.Status == StatusPassed:
			status = "PASS"
		case res.Severity == SeverityWarning:
			status = "WARN"
		case res.Status == StatusFailed:
			status = "FAIL"
		}
		observed := res.Observed
		if res.Error != "" {
			observed = res.Error
		}
		unexpected := ""
		if res.Unexpected > 0 {
			unexpected = fmt.Sprintf("%s (%s)", groupDigits(res.Unexpected), percent(res.UnexpectedFraction))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", status, cell(res.Rule), cell(observed), cell(res.Expected), unexpected)
		if len(res.Examples) > 0 && res.Status != StatusPassed {
			parts := make([]string, len(res.Examples))
			for i, e := range res.Examples {
				parts[i] = fmt.Sprintf("row %d: %s", e.Row, strconv.Quote(truncate(e.Value, 40)))
			}
			examples[k] = "        e.g. " + strings.Join(parts, ", ")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(tb.String(), "\n"), "\n")
	for i, line := range lines {
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
		if i > 0 && i-1 < len(examples) && examples[i-1] != "" {
			b.WriteString(examples[i-1])
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a table cell on one line.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\t", " ")
	return truncate(s, 80)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func percent(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.0001:
		return "<0.01%"
	}
	return strconv.FormatFloat(f*100, 'f', 2, 64) + "%"
}

// groupDigits writes n with thousands separators.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
