package evaluate

import "math"

// Regressor accumulates the errors of a regression model in constant
// memory. It is not safe for concurrent use; accumulate in several and
// Merge them.
type Regressor struct {
	n      int64
	absSum float64 // Σ|y − ŷ|
	sqSum  float64 // Σ(y − ŷ)²
	apeSum float64 // Σ|y − ŷ| / max(|y|, eps)
	meanY  float64 // running mean of y (Welford)
	m2Y    float64 // Σ(y − ȳ)², running
}

// NewRegressor returns an empty Regressor.
func NewRegressor() *Regressor { return &Regressor{} }

// Count returns the number of rows added.
func (r *Regressor) Count() int64 { return r.n }

// Add records one row: the true value y and the prediction yhat.
func (r *Regressor) Add(y, yhat float64) error {
	if !finite(y) {
		return invalidf(ErrInvalidInput, "row %d: true value is %v", r.n, y)
	}
	if !finite(yhat) {
		return invalidf(ErrInvalidInput, "row %d: prediction is %v", r.n, yhat)
	}
	e := math.Abs(y - yhat)
	r.absSum += e
	r.sqSum += e * e
	r.apeSum += e / max(math.Abs(y), eps)
	r.n++
	d := y - r.meanY
	r.meanY += d / float64(r.n)
	r.m2Y += d * (y - r.meanY)
	return nil
}

// Merge adds the rows of o.
func (r *Regressor) Merge(o *Regressor) {
	if o.n == 0 {
		return
	}
	n := r.n + o.n
	d := o.meanY - r.meanY
	r.m2Y += o.m2Y + d*d*float64(r.n)*float64(o.n)/float64(n)
	r.meanY += d * float64(o.n) / float64(n)
	r.n = n
	r.absSum += o.absSum
	r.sqSum += o.sqSum
	r.apeSum += o.apeSum
}

// Value returns the metric named name: mae, mse, rmse, mape or r2.
func (r *Regressor) Value(name string) (float64, error) {
	info, ok := Lookup(name)
	if !ok || info.Task != Regression {
		return 0, unknownMetric(name, Regression)
	}
	if r.n == 0 {
		return 0, invalidf(ErrUndefined, "%s: no rows", name)
	}
	n := float64(r.n)
	switch name {
	case "mae":
		return r.absSum / n, nil
	case "mse":
		return r.sqSum / n, nil
	case "rmse":
		return math.Sqrt(r.sqSum / n), nil
	case "mape":
		return r.apeSum / n, nil
	}
	// r2, as sklearn with force_finite=True.
	if r.n < 2 {
		return 0, invalidf(ErrUndefined, "r2 is not well-defined with less than two rows")
	}
	if r.m2Y == 0 {
		if r.sqSum == 0 {
			return 1, nil
		}
		return 0, nil
	}
	return 1 - r.sqSum/r.m2Y, nil
}
