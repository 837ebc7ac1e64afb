package xgboost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/runtime"
)

// format is the encoding of a model file.
type format uint8

const (
	formatJSON format = iota + 1
	formatUBJ
)

func (f format) String() string {
	if f == formatUBJ {
		return "UBJSON"
	}
	return "JSON"
}

// detect tells the format of a model file by its content: XGBoost's JSON
// and UBJSON both open with '{'; JSON continues with a quoted key, UBJSON
// with the key's length marker. The legacy binary format (XGBoost < 1.0
// and the deprecated format of later versions) is recognised to say what
// to do about it.
func detect(data []byte) (format, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	trimmed = bytes.TrimPrefix(trimmed, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if len(data) > 1 && data[0] == '{' {
			switch data[1] {
			case 'i', 'U', 'I', 'l', 'L', '#', '$', 'N':
				return formatUBJ, nil
			}
		}
		return formatJSON, nil
	}
	if legacyBinary(data) {
		return 0, fmt.Errorf("%w: the legacy binary XGBoost model format; load it with XGBoost and re-save it as JSON or UBJSON (booster.save_model(\"model.json\") or \"model.ubj\")", runtime.ErrUnsupported)
	}
	return 0, fmt.Errorf("%w: not an XGBoost JSON or UBJSON model (it does not start with '{')", runtime.ErrInvalidModel)
}

// legacyBinary recognises XGBoost's old binary model: an optional "binf"
// (or base64 "bs64") header, a 136-byte parameter block, then the
// objective's name as a length-prefixed string ("binary:logistic").
func legacyBinary(data []byte) bool {
	if bytes.HasPrefix(data, []byte("binf")) || bytes.HasPrefix(data, []byte("bs64")) {
		return true
	}
	const paramSize = 136
	if len(data) < paramSize+8+3 {
		return false
	}
	n := uint64(0)
	for i := 7; i >= 0; i-- {
		n = n<<8 | uint64(data[paramSize+i])
	}
	if n < 3 || n > 64 || uint64(len(data)) < paramSize+8+n {
		return false
	}
	name := data[paramSize+8 : paramSize+8+n]
	colon := false
	for _, c := range name {
		switch {
		case c == ':':
			colon = true
		case c < 0x20 || c > 0x7e:
			return false
		}
	}
	return colon
}

// decode decodes a JSON or UBJSON model document.
func decode(data []byte) (value, error) {
	f, err := detect(data)
	if err != nil {
		return value{}, err
	}
	var v value
	if f == formatUBJ {
		v, err = decodeUBJ(data)
	} else {
		v, err = decodeJSON(data)
	}
	if err != nil {
		return value{}, fmt.Errorf("%w: %w", runtime.ErrInvalidModel, err)
	}
	return v, nil
}

// outputs is how a model presents its predictions.
type outputs uint8

const (
	// outPredictions is one "predictions" tensor, what Booster.predict and
	// XGBRegressor.predict return.
	outPredictions outputs = iota
	// outBinary is a binary classifier: "label" [N] and "probabilities"
	// [N, 2].
	outBinary
	// outMultiClass is a multi-class classifier: "label" [N] and
	// "probabilities" [N, classes].
	outMultiClass
	// outMultiLabel is a multi-label classifier (binary objective, several
	// targets): "label" and "probabilities", both [N, targets].
	outMultiLabel
	// outMargins is "predictions" holding the raw margins, what
	// Booster.predict(output_margin=True) returns.
	outMargins
)

// linear is a gblinear booster: weight[f*groups+g] is feature f's weight in
// group g, the last groups weights are the biases.
type linear struct {
	weights []float32
}

// learner is a decoded model, before it is wrapped as a runtime.Model.
type learner struct {
	numFeature int
	numGroup   int       // output groups: classes or targets
	base       []float32 // the base margin of each group
	obj        objective
	forest     *forest // gbtree or dart
	linear     *linear // gblinear
	ntrees     int     // trees used to predict
	booster    string

	featureNames []string
	featureTypes []string
	categories   [][]string // per feature, the training categories in code order
	attributes   map[string]string
	version      [3]int // of the XGBoost that wrote the model; zero when unknown
}

// atLeast reports whether the model was written by XGBoost major.minor or
// later.
func (l *learner) atLeast(major, minor int) bool {
	return l.version[0] > major || (l.version[0] == major && l.version[1] >= minor)
}

// Limits on what a model may declare.
const (
	maxFeatures = 1 << 24
	maxGroups   = 1 << 16
)

// parseLearner reads the model document.
func parseLearner(doc *value) (*learner, error) {
	root := loc("")
	lv, err := member(doc, root, "learner")
	if err != nil {
		return nil, err
	}
	p := root.at("learner")
	if err := lv.asObject(p); err != nil {
		return nil, err
	}
	l := &learner{}
	if v, ok := doc.get("version"); ok {
		if nums, err := v.ints(root.at("version"), 0, math.MaxInt32); err == nil {
			for i := range min(len(nums), 3) {
				l.version[i] = int(nums[i])
			}
		}
	}

	// learner_model_param: counts are strings in XGBoost's JSON.
	mp, err := member(lv, p, "learner_model_param")
	if err != nil {
		return nil, err
	}
	pp := p.at("learner_model_param")
	count := func(key string, def, lo, hi int64) (int64, error) {
		v, ok := mp.get(key)
		if !ok {
			if def >= 0 {
				return def, nil
			}
			return 0, fieldError(pp.at(key), "missing")
		}
		return v.asInt(pp.at(key), lo, hi)
	}
	nf, err := count("num_feature", -1, 1, maxFeatures)
	if err != nil {
		return nil, err
	}
	nc, err := count("num_class", 0, 0, maxGroups)
	if err != nil {
		return nil, err
	}
	nt, err := count("num_target", 1, 1, maxGroups)
	if err != nil {
		return nil, err
	}
	if nc > 1 && nt > 1 {
		return nil, fieldError(pp, "both num_class (%d) and num_target (%d) are set", nc, nt)
	}
	l.numFeature = int(nf)
	l.numGroup = int(max(nc, nt, 1))

	ov, err := member(lv, p, "objective")
	if err != nil {
		return nil, err
	}
	nv, err := member(ov, p.at("objective"), "name")
	if err != nil {
		return nil, err
	}
	name, err := nv.asString(p.at("objective/name"))
	if err != nil {
		return nil, err
	}
	if l.obj, err = lookupObjective(name); err != nil {
		return nil, err
	}
	if name == "reg:quantileerror" && l.atLeast(3, 4) {
		// XGBoost 3.4 sorts the quantiles of each row. Models are predicted
		// as the version that wrote them does.
		l.obj.transform = sortedQuantiles
	}

	bv, err := member(mp, pp, "base_score")
	if err != nil {
		return nil, err
	}
	if l.base, err = baseMargin(bv, pp.at("base_score"), l.obj, l.numGroup); err != nil {
		return nil, err
	}

	if l.featureNames, err = optionalStrings(lv, p, "feature_names"); err != nil {
		return nil, err
	}
	if l.featureTypes, err = optionalStrings(lv, p, "feature_types"); err != nil {
		return nil, err
	}
	if av, ok := lv.get("attributes"); ok && av.kind == kindObject {
		o := av.ref.(*object)
		l.attributes = make(map[string]string, len(o.keys))
		for i, k := range o.keys {
			if o.items[i].kind == kindString {
				l.attributes[k] = o.items[i].str()
			}
		}
	}

	gv, err := member(lv, p, "gradient_booster")
	if err != nil {
		return nil, err
	}
	if err := l.parseBooster(gv, p.at("gradient_booster")); err != nil {
		return nil, err
	}
	return l, nil
}

func optionalStrings(v *value, p loc, key string) ([]string, error) {
	m, ok := v.get(key)
	if !ok {
		return nil, nil
	}
	return m.strings(p.at(key))
}

// baseMargin parses base_score, a string holding a number ("5E-1", before
// XGBoost 3.1) or an array of one number per output group ("[5E-1]"), and
// converts it to margins with the objective's link, as XGBoost does on
// load.
func baseMargin(v *value, p loc, obj objective, groups int) ([]float32, error) {
	var vals []float64
	switch v.kind {
	case kindNumber:
		vals = []float64{v.num}
	case kindString:
		s := strings.TrimSpace(v.str())
		if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
			s = "[" + s[1:len(s)-1] + "]"
		}
		if strings.HasPrefix(s, "[") {
			if err := json.Unmarshal([]byte(s), &vals); err != nil {
				return nil, fieldError(p, "%q is not a list of numbers", v.str())
			}
		} else {
			var f float64
			if err := json.Unmarshal([]byte(s), &f); err != nil {
				return nil, fieldError(p, "%q is not a number", v.str())
			}
			vals = []float64{f}
		}
	default:
		nums, err := v.numbers(p)
		if err != nil {
			return nil, err
		}
		vals = nums
	}
	switch len(vals) {
	case 1:
		for len(vals) < groups {
			vals = append(vals, vals[0])
		}
	case groups:
	default:
		return nil, fieldError(p, "has %d values, the model has %d output groups", len(vals), groups)
	}
	out := make([]float32, groups)
	for i, f := range vals {
		m := obj.link.apply(float32(f))
		if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
			return nil, fieldError(p, "%v is not a valid base_score for %s", f, obj.name)
		}
		out[i] = m
	}
	return out, nil
}

func (l *learner) parseBooster(gv *value, p loc) error {
	nv, err := member(gv, p, "name")
	if err != nil {
		return err
	}
	name, err := nv.asString(p.at("name"))
	if err != nil {
		return err
	}
	l.booster = name
	switch name {
	case "gbtree":
		mv, err := member(gv, p, "model")
		if err != nil {
			return err
		}
		l.forest, err = l.parseTrees(mv, p.at("model"))
		return err
	case "dart":
		tv, err := member(gv, p, "gbtree")
		if err != nil {
			return err
		}
		mv, err := member(tv, p.at("gbtree"), "model")
		if err != nil {
			return err
		}
		if l.forest, err = l.parseTrees(mv, p.at("gbtree/model")); err != nil {
			return err
		}
		wv, err := member(gv, p, "weight_drop")
		if err != nil {
			return err
		}
		if l.forest.weights, err = wv.float32s(p.at("weight_drop")); err != nil {
			return err
		}
		if len(l.forest.weights) != len(l.forest.roots) {
			return fieldError(p.at("weight_drop"), "has %d weights for %d trees", len(l.forest.weights), len(l.forest.roots))
		}
		return nil
	case "gblinear":
		mv, err := member(gv, p, "model")
		if err != nil {
			return err
		}
		wv, err := member(mv, p.at("model"), "weights")
		if err != nil {
			return err
		}
		w, err := wv.float32s(p.at("model/weights"))
		if err != nil {
			return err
		}
		if want := (l.numFeature + 1) * l.numGroup; len(w) != want {
			return fieldError(p.at("model/weights"), "has %d weights, want %d ((num_feature+1) * groups)", len(w), want)
		}
		l.linear = &linear{weights: w}
		return nil
	}
	return fmt.Errorf("%w: booster %q", runtime.ErrUnsupported, name)
}

// parseTrees reads a gbtree model: its trees (placed by their id),
// tree_info and iteration_indptr.
func (l *learner) parseTrees(mv *value, p loc) (*forest, error) {
	pv, err := member(mv, p, "gbtree_model_param")
	if err != nil {
		return nil, err
	}
	ntv, err := member(pv, p.at("gbtree_model_param"), "num_trees")
	if err != nil {
		return nil, err
	}
	ntrees64, err := ntv.asInt(p.at("gbtree_model_param/num_trees"), 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	parallel := int64(1)
	if v, ok := pv.get("num_parallel_tree"); ok {
		if parallel, err = v.asInt(p.at("gbtree_model_param/num_parallel_tree"), 1, math.MaxInt32); err != nil {
			return nil, err
		}
	}
	tv, err := member(mv, p, "trees")
	if err != nil {
		return nil, err
	}
	var trees []value
	switch tv.kind {
	case kindArray:
		trees = tv.array()
	case kindNumbers:
		if tv.length() != 0 {
			return nil, fieldError(p.at("trees"), "is an array of numbers, want tree objects")
		}
	default:
		return nil, fieldError(p.at("trees"), "is a %v, want an array", tv.kind)
	}
	n := int(ntrees64)
	if len(trees) != n {
		return nil, fieldError(p.at("trees"), "has %d trees, num_trees says %d", len(trees), n)
	}
	iv, err := member(mv, p, "tree_info")
	if err != nil {
		return nil, err
	}
	groups, err := iv.ints(p.at("tree_info"), 0, int64(l.numGroup-1))
	if err != nil {
		return nil, err
	}
	if len(groups) != n {
		return nil, fieldError(p.at("tree_info"), "has %d entries for %d trees", len(groups), n)
	}

	// Trees are placed by id, as XGBoost does.
	byID := make([]*value, n)
	for i := range trees {
		tp := p.at(fmt.Sprintf("trees/%d", i))
		id := int64(i)
		if v, ok := trees[i].get("id"); ok {
			if id, err = v.asInt(tp.at("id"), 0, int64(n-1)); err != nil {
				return nil, err
			}
		}
		if byID[id] != nil {
			return nil, fieldError(tp.at("id"), "tree id %d is used twice", id)
		}
		byID[id] = &trees[i]
	}
	f := &forest{groups: groups}
	for id, t := range byID {
		if err := f.addTree(t, p.at(fmt.Sprintf("trees/%d", id)), l.numFeature); err != nil {
			return nil, err
		}
	}

	if v, ok := mv.get("cats"); ok {
		l.categories = parseCategories(v, l.numFeature)
	}

	if v, ok := mv.get("iteration_indptr"); ok {
		ptr, err := v.ints(p.at("iteration_indptr"), 0, int64(n))
		if err != nil {
			return nil, err
		}
		if len(ptr) == 0 || ptr[0] != 0 || ptr[len(ptr)-1] != int32(n) {
			return nil, fieldError(p.at("iteration_indptr"), "does not run from 0 to the %d trees", n)
		}
		f.indptr = make([]int, len(ptr))
		for i, x := range ptr {
			if i > 0 && x < ptr[i-1] {
				return nil, fieldError(p.at("iteration_indptr"), "decreases at %d", i)
			}
			f.indptr[i] = int(x)
		}
	} else {
		// Models before XGBoost 1.7: every iteration adds one tree per
		// group and parallel tree.
		per := int(parallel) * l.numGroup
		f.indptr = []int{0}
		for k := per; k <= n; k += per {
			f.indptr = append(f.indptr, k)
		}
		if f.indptr[len(f.indptr)-1] != n {
			f.indptr = append(f.indptr, n)
		}
	}
	return f, nil
}

// parseCategories reads the category container of XGBoost 3.1 and later
// ("cats"): for each feature trained on a pandas category column, its
// categories in code order, as strings (numbers in their shortest form;
// string columns only when ASCII, see below).
// It is informational (prediction uses the codes), so a container it does
// not understand is ignored rather than failing the model.
func parseCategories(v *value, numFeature int) [][]string {
	ev, ok := v.get("enc")
	if !ok || ev.kind != kindArray || len(ev.array()) != numFeature {
		return nil
	}
	out := make([][]string, numFeature)
	found := false
	for f, col := range ev.array() {
		vals, ok := col.get("values")
		if !ok {
			return nil
		}
		nums, err := vals.numbers("")
		if err != nil {
			return nil
		}
		if offv, ok := col.get("offsets"); ok {
			// Strings: UTF-8 bytes in values, split at offsets.
			offs, err := offv.ints("", 0, int64(len(nums)))
			if err != nil {
				return nil
			}
			// XGBoost 3.2 counts offsets in characters but stores
			// bytes, so a column with non-ASCII categories comes back
			// truncated: it is left out rather than reported wrong.
			b := make([]byte, len(nums))
			ascii := true
			for i, n := range nums {
				if n < 0 || n > 0x7f {
					ascii = false
					break
				}
				b[i] = byte(n)
			}
			if !ascii {
				continue
			}
			for i := 1; i < len(offs); i++ {
				if offs[i] < offs[i-1] {
					return nil
				}
				out[f] = append(out[f], string(b[offs[i-1]:offs[i]]))
			}
		} else {
			for _, n := range nums {
				out[f] = append(out[f], strconv.FormatFloat(n, 'f', -1, 64))
			}
		}
		found = found || len(out[f]) > 0
	}
	if !found {
		return nil
	}
	return out
}
