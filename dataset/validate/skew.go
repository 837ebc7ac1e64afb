package validate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// CheckSkew is the check of a skew report's results.
const CheckSkew Check = "skew"

// SkewOptions choose what Skew compares and how.
type SkewOptions struct {
	// Features are the columns to compare; empty compares every column of
	// the training profile that the serving profile also has.
	Features []string
	// Test and Threshold apply to every feature (Evidently's default test
	// and threshold per feature when empty/0); PerFeature overrides them.
	Test       stattest.Method
	Threshold  float64
	PerFeature map[string]FeatureTest
	// Severity of a drifted feature (SeverityError when empty).
	Severity Severity
	// DriftShare is the share of drifted features that makes dataset drift
	// (DefaultDriftShare when 0).
	DriftShare float64
	// Name labels the report (its Suite field).
	Name string
}

// FeatureTest is the test for one feature.
type FeatureTest struct {
	Test      stattest.Method
	Threshold float64
	Kind      stattest.Kind // 0: the training column's own kind
}

// Skew compares the training profile (a dataset version's) with the
// serving profile (live traffic) feature by feature with the drift tests
// of package stattest, and returns a report of the same shape as Run's: one
// result per feature (check "skew"), failed when the feature drifted.
// A feature that the serving profile lacks, or that cannot be tested, gets
// status error. The report passes when no feature of severity error failed.
func Skew(ctx context.Context, training, serving Profile, opts SkewOptions) (*Report, error) {
	if training == nil || serving == nil {
		return nil, errors.New("validate: skew needs two profiles")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	features := opts.Features
	if len(features) == 0 {
		have := serving.Columns()
		for _, c := range training.Columns() {
			if slices.Contains(have, c) {
				features = append(features, c)
			}
		}
		if len(features) == 0 {
			return nil, errdefs.Invalid("validate: the training and serving profiles have no column in common")
		}
	}
	sev := opts.Severity
	if sev == "" {
		sev = SeverityError
	}
	rep := &Report{Suite: opts.Name, StartedAt: start.UTC()}
	if tp, ok := training.(interface{ Rows() int64 }); ok {
		rep.Rows = tp.Rows()
	}
	for _, f := range features {
		ft := FeatureTest{Test: opts.Test, Threshold: opts.Threshold}
		if o, ok := opts.PerFeature[f]; ok {
			ft = o
		}
		res := Result{Rule: "skew(" + f + ")", Check: CheckSkew, Columns: []string{f}, Severity: sev}
		d, err := skewFeature(training, serving, f, ft)
		if err != nil {
			res.Status, res.Error = StatusError, err.Error()
		} else {
			fillDrift(&res, d)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.summarise()
	if rep.Drift != nil && opts.DriftShare > 0 {
		rep.Drift.DriftShare = opts.DriftShare
		rep.Drift.DatasetDrift = rep.Drift.Share >= opts.DriftShare
	}
	rep.DurationMS = time.Since(start).Milliseconds()
	return rep, nil
}

func skewFeature(training, serving Profile, f string, ft FeatureTest) (*Drift, error) {
	ref, err := training.Distribution(f, ft.Kind)
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	cur, err := serving.Distribution(f, ref.Kind)
	if err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}
	return compare(ref, cur, ft.Test, ft.Threshold)
}
