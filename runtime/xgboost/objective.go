package xgboost

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/runtime"
)

// transform is what an objective does to the raw margin at prediction
// time (XGBoost's PredTransform).
type transform uint8

const (
	identity     transform = iota
	sigmoid                // logistic function
	exponent               // exp
	hinge                  // 1 if margin > 0 else 0
	softprob               // softmax over the output groups
	softmaxIndex           // index of the largest margin
	// sortedQuantiles sorts each row's quantiles ascending, so they do not
	// cross: reg:quantileerror as XGBoost 3.4 and later predict it.
	sortedQuantiles
)

// objective is the inference side of an XGBoost objective: how base_score
// becomes a margin (XGBoost's ProbToMargin) and how margins become
// predictions.
type objective struct {
	name      string
	link      link
	transform transform
	// classifier says whether the objective's predictions are class
	// probabilities (or labels), which makes the model a classifier when
	// nothing else says what it is.
	classifier bool
}

// link converts base_score, stored in the output space, into a margin.
type link uint8

const (
	linkIdentity link = iota
	linkLogit
	linkLog
)

// rtEps is XGBoost's kRtEps, the bound of a logistic base_score away from 0
// and 1.
const rtEps = float32(1e-6)

func (l link) apply(v float32) float32 {
	switch l {
	case linkLogit:
		v = min(max(v, rtEps), 1-rtEps)
		return -float32(math.Log(float64(float32(1)/v - 1)))
	case linkLog:
		return float32(math.Log(float64(v)))
	}
	return v
}

// objectives are the objectives XGBoost 3.x registers, by name.
var objectives = func() map[string]objective {
	m := map[string]objective{}
	for _, o := range []objective{
		{name: "reg:squarederror"},
		{name: "reg:linear"}, // the old name of reg:squarederror
		{name: "reg:squaredlogerror"},
		{name: "reg:pseudohubererror"},
		{name: "reg:absoluteerror"},
		{name: "reg:quantileerror"}, // sortedQuantiles from XGBoost 3.4, see parseLearner
		{name: "reg:logistic", link: linkLogit, transform: sigmoid},
		{name: "binary:logistic", link: linkLogit, transform: sigmoid, classifier: true},
		{name: "binary:logitraw"},
		{name: "binary:hinge", transform: hinge, classifier: true},
		{name: "count:poisson", link: linkLog, transform: exponent},
		{name: "reg:gamma", link: linkLog, transform: exponent},
		{name: "reg:tweedie", link: linkLog, transform: exponent},
		{name: "survival:cox", link: linkLog, transform: exponent},
		{name: "survival:aft", link: linkLog, transform: exponent},
		// Multi-class objectives keep base_score as margins.
		{name: "multi:softprob", transform: softprob, classifier: true},
		{name: "multi:softmax", transform: softmaxIndex, classifier: true},
		{name: "rank:pairwise"},
		{name: "rank:ndcg"},
		{name: "rank:map"},
	} {
		m[o.name] = o
	}
	return m
}()

func lookupObjective(name string) (objective, error) {
	o, ok := objectives[name]
	if !ok {
		return objective{}, fmt.Errorf("%w: objective %q", runtime.ErrUnsupported, name)
	}
	return o, nil
}

// sigmoid32 is XGBoost's single-precision logistic function.
func sigmoid32(x float32) float32 {
	x = min(-x, 88.7)
	return 1 / (float32(math.Exp(float64(x))) + 1)
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

// apply transforms one margin for the element-wise transforms.
func (t transform) apply(x float32) float32 {
	switch t {
	case sigmoid:
		return sigmoid32(x)
	case exponent:
		return exp32(x)
	case hinge:
		if x > 0 {
			return 1
		}
		return 0
	}
	return x
}

// softmax32 replaces row by its softmax, as XGBoost computes it (single
// precision exponentials, a double precision sum).
func softmax32(row []float32) {
	if len(row) == 0 {
		return
	}
	m := row[0]
	for _, v := range row[1:] {
		m = max(m, v)
	}
	var sum float64
	for i, v := range row {
		e := exp32(v - m)
		row[i] = e
		sum += float64(e)
	}
	s := float32(sum)
	for i := range row {
		row[i] /= s
	}
}

// insertionSort sorts a row of quantiles as XGBoost does (ascending; its
// comparison leaves NaN where it is).
func insertionSort(row []float32) {
	for i := 1; i < len(row); i++ {
		v := row[i]
		j := i
		for j > 0 && row[j-1] > v {
			row[j] = row[j-1]
			j--
		}
		row[j] = v
	}
}

// argmax is the index of the first largest element.
func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}
