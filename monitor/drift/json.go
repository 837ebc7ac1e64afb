package drift

import (
	"encoding/json"

	"github.com/kiln-ml/kiln/stattest"
)

// jsonFloat writes non-finite values as "Infinity", "-Infinity" and "NaN"
// (stattest.Float, as stattest.Result does).
type jsonFloat = stattest.Float

// featureJSON is FeatureResult with JSON-safe floats; the field order is
// FeatureResult's.
type featureJSON struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind,omitempty"`
	Method    string     `json:"method,omitempty"`
	Score     jsonFloat  `json:"score"`
	Statistic jsonFloat  `json:"statistic"`
	Threshold jsonFloat  `json:"threshold"`
	PValue    bool       `json:"p_value"`
	Drift     bool       `json:"drift"`
	RefCount  int64      `json:"ref_count"`
	CurCount  int64      `json:"cur_count"`
	Error     string     `json:"error,omitempty"`
	Histogram *Histogram `json:"histogram,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (f FeatureResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(featureJSON{f.Name, f.Kind, string(f.Method), jsonFloat(f.Score), jsonFloat(f.Statistic),
		jsonFloat(f.Threshold), f.PValue, f.Drift, f.RefCount, f.CurCount, f.Error, f.Histogram})
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FeatureResult) UnmarshalJSON(b []byte) error {
	var j featureJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = FeatureResult{Name: j.Name, Kind: j.Kind, Method: stattest.Method(j.Method), Score: float64(j.Score),
		Statistic: float64(j.Statistic), Threshold: float64(j.Threshold), PValue: j.PValue, Drift: j.Drift,
		RefCount: j.RefCount, CurCount: j.CurCount, Error: j.Error, Histogram: j.Histogram}
	return nil
}
