package lightgbm

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/runtime"
)

// Limits that keep a hostile file from asking for absurd allocations. Real
// models are far below them.
const (
	maxClasses  = 1 << 16
	maxFeatures = 1 << 24
)

// Parse reads a LightGBM text model, as Booster.save_model and
// model_to_string write it, and compiles it for evaluation. Errors wrap
// runtime.ErrInvalidModel (a file that cannot be decoded) or
// runtime.ErrUnsupported (an objective this runtime lacks).
func Parse(data []byte) (*Booster, error) {
	p := &parser{s: string(data)}
	b, err := p.parse()
	if err != nil {
		return nil, err
	}
	return b, nil
}

type parser struct {
	s    string // unread text
	line int    // number of the line last returned by next
}

// next returns the next line without its line ending.
func (p *parser) next() (string, bool) {
	if p.s == "" {
		return "", false
	}
	p.line++
	i := strings.IndexByte(p.s, '\n')
	var l string
	if i < 0 {
		l, p.s = p.s, ""
	} else {
		l, p.s = p.s[:i], p.s[i+1:]
	}
	return strings.TrimSuffix(l, "\r"), true
}

// peek returns the next line without consuming it.
func (p *parser) peek() string {
	i := strings.IndexByte(p.s, '\n')
	if i < 0 {
		return strings.TrimSuffix(p.s, "\r")
	}
	return strings.TrimSuffix(p.s[:i], "\r")
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: lightgbm text model, line %d: %s", runtime.ErrInvalidModel, p.line, fmt.Sprintf(format, args...))
}

func (p *parser) parse() (*Booster, error) {
	// Header: key=value lines up to the first Tree= line.
	header := map[string]string{}
	first := true
	for {
		if strings.HasPrefix(p.peek(), "Tree=") || p.s == "" {
			break
		}
		l, _ := p.next()
		if l == "" {
			continue
		}
		if first {
			if l != "tree" {
				return nil, p.errorf("not a LightGBM text model: first line %q, want \"tree\"", truncate(l))
			}
			first = false
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		header[k] = v
	}
	if first {
		return nil, fmt.Errorf("%w: lightgbm text model: empty file", runtime.ErrInvalidModel)
	}
	b := &Booster{}
	var err error
	if b.numClass, err = headerInt(header, "num_class", 1, maxClasses); err != nil {
		return nil, err
	}
	b.treesPerIter = b.numClass
	if _, ok := header["num_tree_per_iteration"]; ok {
		if b.treesPerIter, err = headerInt(header, "num_tree_per_iteration", 1, maxClasses); err != nil {
			return nil, err
		}
	}
	maxIdx, err := headerInt(header, "max_feature_idx", 0, maxFeatures-1)
	if err != nil {
		return nil, err
	}
	b.numFeatures = maxIdx + 1
	names, ok := header["feature_names"]
	if !ok {
		return nil, fmt.Errorf("%w: lightgbm text model: no feature_names line", runtime.ErrInvalidModel)
	}
	b.featureNames = strings.Fields(names)
	if len(b.featureNames) != b.numFeatures {
		return nil, fmt.Errorf("%w: lightgbm text model: %d feature_names for max_feature_idx %d", runtime.ErrInvalidModel, len(b.featureNames), maxIdx)
	}
	_, b.averageOut = header["average_output"]
	if s, ok := header["objective"]; ok {
		if b.objective, err = parseObjective(s); err != nil {
			return nil, err
		}
	}
	if err := b.checkObjective(); err != nil {
		return nil, err
	}

	// Trees.
	var tp treeParser
	for {
		l := p.peek()
		if !strings.HasPrefix(l, "Tree=") {
			break
		}
		p.next()
		idx, err := strconv.Atoi(strings.TrimPrefix(l, "Tree="))
		if err != nil || idx != len(b.trees) {
			return nil, p.errorf("tree header %q, want Tree=%d", truncate(l), len(b.trees))
		}
		if err := tp.read(p); err != nil {
			return nil, err
		}
		if err := b.addTree(&tp); err != nil {
			return nil, fmt.Errorf("tree %d: %w", idx, err)
		}
		for p.s != "" && p.peek() == "" {
			p.next()
		}
	}
	l, more := p.next()
	if more && l != "end of trees" {
		return nil, p.errorf("expected a tree or \"end of trees\", got %q", truncate(l))
	}
	// LightGBM 3+ lists every tree's size, and every version ends the
	// trees with a marker: a file without them was cut short.
	if sizes, ok := header["tree_sizes"]; ok {
		if n := len(strings.Fields(sizes)); n != len(b.trees) {
			return nil, fmt.Errorf("%w: lightgbm text model has %d trees, its tree_sizes line lists %d (truncated?)", runtime.ErrInvalidModel, len(b.trees), n)
		}
	}
	if !more {
		return nil, fmt.Errorf("%w: lightgbm text model is truncated: no \"end of trees\" line", runtime.ErrInvalidModel)
	}
	if len(b.trees)%b.treesPerIter != 0 {
		return nil, fmt.Errorf("%w: lightgbm text model: %d trees is not a multiple of num_tree_per_iteration %d", runtime.ErrInvalidModel, len(b.trees), b.treesPerIter)
	}
	b.numIter = len(b.trees) / b.treesPerIter
	return b, nil
}

func (b *Booster) checkObjective() error {
	o := b.objective
	switch o.name {
	case "multiclass", "multiclassova":
		if o.numClass != b.numClass || b.treesPerIter != b.numClass {
			return fmt.Errorf("%w: lightgbm text model: objective num_class %d, header num_class %d, num_tree_per_iteration %d", runtime.ErrInvalidModel, o.numClass, b.numClass, b.treesPerIter)
		}
	case "":
	default:
		if b.treesPerIter != 1 {
			return fmt.Errorf("%w: lightgbm text model: objective %q with num_tree_per_iteration %d", runtime.ErrInvalidModel, o.name, b.treesPerIter)
		}
	}
	return nil
}

func headerInt(h map[string]string, key string, lo, hi int) (int, error) {
	s, ok := h[key]
	if !ok {
		return 0, fmt.Errorf("%w: lightgbm text model: no %s line", runtime.ErrInvalidModel, key)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: lightgbm text model: %s=%q, want an integer in [%d, %d]", runtime.ErrInvalidModel, key, truncate(s), lo, hi)
	}
	return n, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Fields of a Tree= block that prediction needs.
const (
	fNumLeaves = iota
	fNumCat
	fSplitFeature
	fThreshold
	fDecisionType
	fLeftChild
	fRightChild
	fLeafValue
	fCatBoundaries
	fCatThreshold
	fIsLinear
	fLeafConst
	fNumFeatures
	fLeafFeatures
	fLeafCoeff
	fInternalCount // the covers explanations use (forest.go)
	fLeafCount
	numTreeFields
)

var treeFieldNames = [numTreeFields]string{
	"num_leaves", "num_cat", "split_feature", "threshold", "decision_type",
	"left_child", "right_child", "leaf_value", "cat_boundaries", "cat_threshold",
	"is_linear", "leaf_const", "num_features", "leaf_features", "leaf_coeff",
	"internal_count", "leaf_count",
}

// treeParser holds one Tree= block's raw fields and reusable scratch space.
type treeParser struct {
	val  [numTreeFields]string
	seen [numTreeFields]bool

	ints    []int64
	floats  []float64
	visited []bool
	stack   []int32
}

// read consumes the key=value lines of one tree block, up to a blank line.
func (t *treeParser) read(p *parser) error {
	t.seen = [numTreeFields]bool{}
	for p.s != "" {
		l := p.peek()
		if l == "" || strings.HasPrefix(l, "Tree=") || l == "end of trees" {
			break
		}
		p.next()
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return p.errorf("expected key=value in a tree, got %q", truncate(l))
		}
		for i, name := range treeFieldNames {
			if k == name {
				t.val[i], t.seen[i] = v, true
				break
			}
		}
	}
	return nil
}

func (t *treeParser) has(f int) bool { return t.seen[f] }

// intsOf parses exactly n integers in [lo, hi] from field f.
func (t *treeParser) intsOf(f, n int, lo, hi int64) ([]int64, error) {
	t.ints = t.ints[:0]
	s := t.val[f]
	for {
		tok, rest := nextField(s)
		if tok == "" {
			break
		}
		s = rest
		if len(t.ints) == n {
			return nil, fieldErr(f, "has more than %d values", n)
		}
		v, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || v < lo || v > hi {
			return nil, fieldErr(f, "value %q is not an integer in [%d, %d]", truncate(tok), lo, hi)
		}
		t.ints = append(t.ints, v)
	}
	if len(t.ints) != n {
		return nil, fieldErr(f, "has %d values, want %d", len(t.ints), n)
	}
	return t.ints, nil
}

// floatsOf parses exactly n numbers from field f.
func (t *treeParser) floatsOf(f, n int) ([]float64, error) {
	t.floats = t.floats[:0]
	s := t.val[f]
	for {
		tok, rest := nextField(s)
		if tok == "" {
			break
		}
		s = rest
		if len(t.floats) == n {
			return nil, fieldErr(f, "has more than %d values", n)
		}
		v, err := strconv.ParseFloat(tok, 64)
		if err != nil && !isRangeErr(err) {
			return nil, fieldErr(f, "value %q is not a number", truncate(tok))
		}
		t.floats = append(t.floats, v)
	}
	if len(t.floats) != n {
		return nil, fieldErr(f, "has %d values, want %d", len(t.floats), n)
	}
	return t.floats, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func fieldErr(f int, format string, args ...any) error {
	return fmt.Errorf("%w: lightgbm text model: %s %s", runtime.ErrInvalidModel, treeFieldNames[f], fmt.Sprintf(format, args...))
}

// nextField splits off the first space-separated token of s.
func nextField(s string) (tok, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	return s[i:j], s[j:]
}

func (t *treeParser) scalar(f int, lo, hi int64, def int64) (int64, error) {
	if !t.has(f) {
		return def, nil
	}
	v, err := t.intsOf(f, 1, lo, hi)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// addTree validates one parsed tree block and appends it to b's arrays.
func (b *Booster) addTree(t *treeParser) error {
	for _, f := range []int{fNumLeaves, fNumCat, fLeafValue} {
		if !t.has(f) {
			return fmt.Errorf("%w: lightgbm text model: tree lacks %s", runtime.ErrInvalidModel, treeFieldNames[f])
		}
	}
	// Leaves and nodes are counted in int32 node indices.
	numLeaves64, err := t.scalar(fNumLeaves, 1, math.MaxInt32/2, 0)
	if err != nil {
		return err
	}
	numLeaves := int(numLeaves64)
	internal := numLeaves - 1
	if len(b.leaves)+numLeaves > math.MaxInt32/2 || len(t.val[fLeafValue]) < numLeaves {
		return fieldErr(fLeafValue, "is shorter than num_leaves=%d", numLeaves)
	}
	numCat64, err := t.scalar(fNumCat, 0, int64(internal), 0)
	if err != nil {
		return err
	}
	numCat := int(numCat64)
	linear, err := t.scalar(fIsLinear, 0, 1, 0)
	if err != nil {
		return err
	}
	leafBase := int32(len(b.leaves))
	nodeBase := int32(len(b.nodes))
	vals, err := t.floatsOf(fLeafValue, numLeaves)
	if err != nil {
		return err
	}
	b.leaves = append(b.leaves, vals...)
	b.addCounts(t, numLeaves)
	tr := tree{root: ^leafBase, linear: linear == 1, leafBase: leafBase, linBase: int32(len(b.linLeaf))}
	if tr.linear {
		if err := b.addLinear(t, numLeaves); err != nil {
			return err
		}
	}
	if internal == 0 {
		b.trees = append(b.trees, tr)
		return nil
	}
	for _, f := range []int{fSplitFeature, fThreshold, fLeftChild, fRightChild} {
		if !t.has(f) {
			return fmt.Errorf("%w: lightgbm text model: tree lacks %s", runtime.ErrInvalidModel, treeFieldNames[f])
		}
	}
	if len(t.val[fSplitFeature]) < internal {
		return fieldErr(fSplitFeature, "is shorter than num_leaves-1=%d", internal)
	}

	// Categorical bitsets.
	var bounds []int64
	catWordBase := int64(len(b.catWords))
	if numCat > 0 {
		for _, f := range []int{fCatBoundaries, fCatThreshold} {
			if !t.has(f) {
				return fmt.Errorf("%w: lightgbm text model: tree with num_cat=%d lacks %s", runtime.ErrInvalidModel, numCat, treeFieldNames[f])
			}
		}
		nb, err := t.intsOf(fCatBoundaries, numCat+1, 0, int64(len(t.val[fCatThreshold])))
		if err != nil {
			return err
		}
		bounds = append([]int64(nil), nb...)
		for i := 1; i < len(bounds); i++ {
			if bounds[i] < bounds[i-1] {
				return fieldErr(fCatBoundaries, "is not ascending")
			}
		}
		if bounds[0] != 0 {
			return fieldErr(fCatBoundaries, "does not start at 0")
		}
		words, err := t.intsOf(fCatThreshold, int(bounds[numCat]), 0, math.MaxUint32)
		if err != nil {
			return err
		}
		for _, w := range words {
			b.catWords = append(b.catWords, uint32(w))
		}
	}

	feats, err := t.intsOf(fSplitFeature, internal, 0, int64(b.numFeatures-1))
	if err != nil {
		return err
	}
	for _, f := range feats {
		b.nodes = append(b.nodes, node{feature: int32(f)})
	}
	nodes := b.nodes[nodeBase:]

	var kinds []int64
	if t.has(fDecisionType) {
		if kinds, err = t.intsOf(fDecisionType, internal, -128, 255); err != nil {
			return err
		}
	}
	for i := range nodes {
		var dt int64
		if kinds != nil {
			dt = kinds[i]
		}
		defaultLeft := dt&2 != 0
		switch {
		case dt&1 != 0 && numCat > 0:
			nodes[i].kind = catSplit
		case (dt>>2)&3 == 0:
			nodes[i].kind = numNone
		case (dt>>2)&3 == 1 && defaultLeft:
			nodes[i].kind = numZeroL
		case (dt>>2)&3 == 1:
			nodes[i].kind = numZeroR
		case (dt>>2)&3 == 2 && defaultLeft:
			nodes[i].kind = numNaNL
		case (dt>>2)&3 == 2:
			nodes[i].kind = numNaNR
		default:
			return fieldErr(fDecisionType, "value %d has missing type 3", dt)
		}
	}

	thr, err := t.floatsOf(fThreshold, internal)
	if err != nil {
		return err
	}
	for len(b.cats) < len(b.nodes) {
		b.cats = append(b.cats, catRange{})
	}
	for i := range nodes {
		nodes[i].threshold = thr[i]
		if nodes[i].kind != catSplit {
			continue
		}
		c := thr[i]
		if !(c >= 0 && c < float64(numCat)) || c != math.Trunc(c) {
			return fieldErr(fThreshold, "of categorical node %d is %v, want a category index in [0, %d)", i, c, numCat)
		}
		lo, hi := bounds[int(c)], bounds[int(c)+1]
		b.cats[int(nodeBase)+i] = catRange{start: int32(catWordBase + lo), n: int32(hi - lo)}
		b.hasCat = true
	}

	for _, side := range []int{fLeftChild, fRightChild} {
		ch, err := t.intsOf(side, internal, int64(-numLeaves), int64(internal-1))
		if err != nil {
			return err
		}
		for i, c := range ch {
			var g int32
			if c >= 0 {
				g = nodeBase + int32(c)
			} else {
				g = ^(leafBase + int32(^c))
			}
			if side == fLeftChild {
				nodes[i].left = g
			} else {
				nodes[i].right = g
			}
		}
	}
	if err := t.checkShape(nodes, nodeBase, leafBase, numLeaves); err != nil {
		return err
	}
	tr.root = nodeBase
	b.trees = append(b.trees, tr)
	return nil
}

// checkShape verifies that the nodes form one binary tree rooted at node 0
// that reaches every node and leaf exactly once, so evaluation terminates.
func (t *treeParser) checkShape(nodes []node, nodeBase, leafBase int32, numLeaves int) error {
	n := len(nodes)
	if cap(t.visited) < n+numLeaves {
		t.visited = make([]bool, n+numLeaves)
	}
	visited := t.visited[:n+numLeaves]
	clear(visited)
	t.stack = append(t.stack[:0], 0)
	count := 0
	for len(t.stack) > 0 {
		i := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		count++
		for _, c := range [2]int32{nodes[i].left, nodes[i].right} {
			var slot int
			if c >= 0 {
				slot = int(c - nodeBase)
			} else {
				slot = n + int(^c-leafBase)
			}
			if visited[slot] || slot == 0 {
				return fmt.Errorf("%w: lightgbm text model: node %d is reached twice (left_child/right_child do not form a tree)", runtime.ErrInvalidModel, slot)
			}
			visited[slot] = true
			if c >= 0 {
				t.stack = append(t.stack, c-nodeBase)
			} else {
				count++
			}
		}
	}
	if count != n+numLeaves {
		return fmt.Errorf("%w: lightgbm text model: left_child/right_child leave %d of %d nodes and leaves unreachable", runtime.ErrInvalidModel, n+numLeaves-count, n+numLeaves)
	}
	return nil
}

// addLinear reads a linear tree's leaf models.
func (b *Booster) addLinear(t *treeParser, numLeaves int) error {
	consts := make([]float64, numLeaves)
	if t.has(fLeafConst) {
		c, err := t.floatsOf(fLeafConst, numLeaves)
		if err != nil {
			return err
		}
		copy(consts, c)
	}
	counts := make([]int64, numLeaves)
	total := 0
	if t.has(fNumFeatures) {
		c, err := t.intsOf(fNumFeatures, numLeaves, 0, int64(b.numFeatures))
		if err != nil {
			return err
		}
		copy(counts, c)
		for _, n := range counts {
			total += int(n)
		}
	}
	start := int32(len(b.linFeat))
	if total > 0 {
		if !t.has(fLeafFeatures) || !t.has(fLeafCoeff) {
			return fmt.Errorf("%w: lightgbm text model: linear tree lacks leaf_features or leaf_coeff", runtime.ErrInvalidModel)
		}
		if len(t.val[fLeafFeatures]) < total || len(b.linFeat)+total > math.MaxInt32/2 {
			return fieldErr(fLeafFeatures, "is shorter than its %d values", total)
		}
		feats, err := t.intsOf(fLeafFeatures, total, 0, int64(b.numFeatures-1))
		if err != nil {
			return err
		}
		for _, f := range feats {
			b.linFeat = append(b.linFeat, int32(f))
		}
		coeffs, err := t.floatsOf(fLeafCoeff, total)
		if err != nil {
			return err
		}
		b.linCoeff = append(b.linCoeff, coeffs...)
	}
	for i, n := range counts {
		b.linLeaf = append(b.linLeaf, linearLeaf{constant: consts[i], start: start, end: start + int32(n)})
		start += int32(n)
	}
	return nil
}
