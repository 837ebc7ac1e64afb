package lightgbm

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/runtime"
)

// Output transforms, LightGBM's ObjectiveFunction::ConvertOutput.
const (
	linkIdentity   uint8 = iota
	linkSigmoid          // binary: 1 / (1 + exp(-sigmoid·x))
	linkSoftmax          // multiclass
	linkOVASigmoid       // multiclassova: the binary sigmoid per class
	linkExp              // poisson, gamma, tweedie
	linkLogistic         // cross_entropy: 1 / (1 + exp(-x))
	linkSoftplus         // cross_entropy_lambda: log(1 + exp(x))
	linkSignSquare       // regression with the sqrt option: sign(x)·x²
)

type objective struct {
	name     string // canonical LightGBM name, "" when the model has none
	link     uint8
	sigmoid  float64
	numClass int // from the objective's own num_class parameter, 0 if none
}

// parseObjective reads an "objective=" header value such as "binary
// sigmoid:1" or "multiclass num_class:3" the way LightGBM's
// CreateObjectiveFunction does.
func parseObjective(s string) (objective, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return objective{}, nil
	}
	name := objectiveAlias(fields[0])
	ob := objective{name: name, sigmoid: -1}
	sqrt := false
	for _, f := range fields[1:] {
		if f == "sqrt" {
			sqrt = true
			continue
		}
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		switch k {
		case "sigmoid":
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return ob, fmt.Errorf("%w: objective %q: sigmoid %q is not a number", runtime.ErrInvalidModel, s, v)
			}
			ob.sigmoid = x
		case "num_class":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return ob, fmt.Errorf("%w: objective %q: bad num_class %q", runtime.ErrInvalidModel, s, v)
			}
			ob.numClass = n
		}
	}
	switch name {
	case "regression", "regression_l1", "quantile", "fair", "mape":
		if sqrt {
			ob.link = linkSignSquare
		}
	case "huber", "lambdarank", "rank_xendcg", "custom":
		// identity (huber disables the sqrt option)
	case "poisson", "gamma", "tweedie":
		ob.link = linkExp
	case "binary":
		ob.link = linkSigmoid
	case "multiclass":
		ob.link = linkSoftmax
	case "multiclassova":
		ob.link = linkOVASigmoid
	case "cross_entropy":
		ob.link = linkLogistic
	case "cross_entropy_lambda":
		ob.link = linkSoftplus
	default:
		return ob, fmt.Errorf("%w: LightGBM objective %q", runtime.ErrUnsupported, fields[0])
	}
	if (name == "binary" || name == "multiclassova") && !(ob.sigmoid > 0) {
		return ob, fmt.Errorf("%w: objective %q needs a positive sigmoid parameter", runtime.ErrInvalidModel, s)
	}
	if (name == "multiclass" || name == "multiclassova") && ob.numClass == 0 {
		return ob, fmt.Errorf("%w: objective %q lacks num_class", runtime.ErrInvalidModel, s)
	}
	return ob, nil
}

// objectiveAlias maps LightGBM's objective aliases to canonical names
// (ParseObjectiveAlias in LightGBM's config.h).
func objectiveAlias(s string) string {
	switch s {
	case "regression_l2", "mean_squared_error", "mse", "l2", "l2_root", "root_mean_squared_error", "rmse":
		return "regression"
	case "mean_absolute_error", "l1", "mae":
		return "regression_l1"
	case "softmax":
		return "multiclass"
	case "multiclass_ova", "ova", "ovr":
		return "multiclassova"
	case "xentropy":
		return "cross_entropy"
	case "xentlambda":
		return "cross_entropy_lambda"
	case "mean_absolute_percentage_error":
		return "mape"
	case "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart":
		return "rank_xendcg"
	case "none", "null", "na":
		return "custom"
	}
	return s
}

// transform converts raw scores in place.
func (o *objective) transform(s []float64) {
	switch o.link {
	case linkSigmoid, linkOVASigmoid:
		for i, x := range s {
			s[i] = 1 / (1 + math.Exp(-o.sigmoid*x))
		}
	case linkSoftmax:
		m := s[0]
		for _, x := range s[1:] {
			m = math.Max(m, x)
		}
		sum := 0.0
		for i, x := range s {
			s[i] = math.Exp(x - m)
			sum += s[i]
		}
		for i := range s {
			s[i] /= sum
		}
	case linkExp:
		for i, x := range s {
			s[i] = math.Exp(x)
		}
	case linkLogistic:
		for i, x := range s {
			s[i] = 1 / (1 + math.Exp(-x))
		}
	case linkSoftplus:
		for i, x := range s {
			s[i] = math.Log1p(math.Exp(x))
		}
	case linkSignSquare:
		for i, x := range s {
			if x < 0 {
				s[i] = -x * x
			} else if x > 0 {
				s[i] = x * x
			} else {
				s[i] = 0
			}
		}
	}
}
