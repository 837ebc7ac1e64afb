package onnx

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/tensor"
)

// The text operators of a TF-IDF pipeline as skl2onnx writes it:
// StringNormalizer (ai.onnx) -> Tokenizer (com.microsoft) ->
// TfIdfVectorizer (ai.onnx). Semantics follow onnxruntime's kernels,
// which produced the reference outputs. Regular expressions are RE2, as
// in onnxruntime, and run with leftmost-longest matching.

func init() {
	register("", "StringNormalizer", stringNormalizerFactory)
	register("com.microsoft", "Tokenizer", tokenizerFactory)
	register("", "TfIdfVectorizer", tfidfFactory)
}

type caseAction uint8

const (
	caseNone caseAction = iota
	caseLower
	caseUpper
)

func changeCase(s string, a caseAction) string {
	switch a {
	case caseLower:
		return strings.Map(unicode.ToLower, s)
	case caseUpper:
		return strings.Map(unicode.ToUpper, s)
	}
	return s
}

func stringNormalizerFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	actionName, err := n.String("case_change_action", "NONE")
	if err != nil {
		return nil, err
	}
	var action caseAction
	switch actionName {
	case "NONE":
	case "LOWER":
		action = caseLower
	case "UPPER":
		action = caseUpper
	default:
		return nil, fmt.Errorf("case_change_action %q is not NONE, LOWER or UPPER", actionName)
	}
	sensitive, err := n.Int("is_case_sensitive", 0)
	if err != nil {
		return nil, err
	}
	words, err := n.Strings("stopwords")
	if err != nil {
		return nil, err
	}
	// Stop words compare in the case the output will have (upper for
	// UPPER, lower otherwise) unless matching is case-sensitive.
	compare := caseNone
	if sensitive == 0 {
		compare = caseLower
		if action == caseUpper {
			compare = caseUpper
		}
	}
	stop := make(map[string]bool, len(words))
	for _, w := range words {
		if w == "" {
			return nil, fmt.Errorf("empty stop word")
		}
		if !utf8.ValidString(w) {
			return nil, fmt.Errorf("stop word %q is not valid UTF-8", w)
		}
		k := changeCase(w, compare)
		if stop[k] {
			return nil, fmt.Errorf("duplicate stop word %q", w)
		}
		stop[k] = true
	}
	name := outName(n, 0)
	return kernel1(func(in []Value) (*tensor.Tensor, error) {
		x, err := inTensor(in, 0)
		if err != nil {
			return nil, err
		}
		src, ok := x.Data.([]string)
		if !ok {
			return nil, fmt.Errorf("StringNormalizer takes strings, got %v", x.DType)
		}
		twoD := false
		switch {
		case len(x.Shape) == 1 && x.Shape[0] > 0:
		case len(x.Shape) == 2 && x.Shape[0] == 1 && x.Shape[1] > 0:
			twoD = true
		default:
			return nil, fmt.Errorf("StringNormalizer takes a [C] or [1, C] tensor with C > 0, got shape %v", x.Shape)
		}
		out := make([]string, 0, len(src))
		for _, s := range src {
			if (action != caseNone || (len(stop) > 0 && compare != caseNone)) && !utf8.ValidString(s) {
				return nil, fmt.Errorf("input is not valid UTF-8")
			}
			if len(stop) > 0 && stop[changeCase(s, compare)] {
				continue
			}
			out = append(out, changeCase(s, action))
		}
		c := int64(len(out))
		if c == 0 {
			out, c = []string{""}, 1
		}
		shape := []int64{c}
		if twoD {
			shape = []int64{1, c}
		}
		return newTensor(name, tensor.String, shape, out), nil
	}), nil
}

// tokenizer is com.microsoft.Tokenizer.
type tokenizer struct {
	name       string
	mark       bool
	pad        string
	minChars   int
	charMode   bool
	separators []*regexp.Regexp
	tokenExp   *regexp.Regexp
}

func compileRE2(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	re.Longest()
	return re, nil
}

func tokenizerFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	for _, req := range []string{"mark", "pad_value", "mincharnum"} {
		if n.Attr(req) == nil {
			return nil, fmt.Errorf("attribute %s is required", req)
		}
	}
	mark, err := n.Int("mark", 0)
	if err != nil {
		return nil, err
	}
	pad, err := n.String("pad_value", "")
	if err != nil {
		return nil, err
	}
	minChars, err := n.Int("mincharnum", 0)
	if err != nil {
		return nil, err
	}
	if minChars <= 0 {
		return nil, fmt.Errorf("mincharnum must be positive, is %d", minChars)
	}
	k := &tokenizer{name: outName(n, 0), mark: mark != 0, pad: pad, minChars: int(minChars)}
	seps, err := n.Strings("separators")
	if err != nil {
		return nil, err
	}
	if n.Attr("separators") != nil {
		if len(seps) == 0 {
			return nil, fmt.Errorf("separators must not be empty")
		}
		k.charMode = len(seps) == 1 && seps[0] == ""
		if !k.charMode {
			for _, s := range seps {
				re, err := compileRE2(s)
				if err != nil {
					return nil, unsupportedError("separator %q: %v", s, err)
				}
				k.separators = append(k.separators, re)
			}
		}
	} else {
		exp, err := n.String("tokenexp", "")
		if err != nil {
			return nil, err
		}
		if exp == "" {
			return nil, fmt.Errorf("one of the attributes separators and tokenexp is required")
		}
		k.charMode = exp == "."
		if !k.charMode {
			if k.tokenExp, err = compileRE2(exp); err != nil {
				return nil, unsupportedError("tokenexp %q: %v", exp, err)
			}
		}
	}
	if k.charMode && k.minChars > 1 {
		return nil, fmt.Errorf("mincharnum %d is too big for character tokenization", k.minChars)
	}
	return kernel1(k.run), nil
}

func (k *tokenizer) run(in []Value) (*tensor.Tensor, error) {
	x, err := inTensor(in, 0)
	if err != nil {
		return nil, err
	}
	src, ok := x.Data.([]string)
	if !ok {
		return nil, fmt.Errorf("Tokenizer takes strings, got %v", x.DType)
	}
	if len(x.Shape) != 1 && len(x.Shape) != 2 {
		return nil, fmt.Errorf("Tokenizer takes a [C] or [N, C] tensor, got shape %v", x.Shape)
	}
	if len(src) == 0 {
		shape := []int64{0}
		if len(x.Shape) == 2 {
			shape = []int64{x.Shape[0], 0}
		}
		return newTensor(k.name, tensor.String, shape, []string{}), nil
	}
	rows := make([][]string, len(src))
	maxTokens := 0
	for i, s := range src {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("input string is not valid UTF-8")
		}
		var toks []string
		switch {
		case k.charMode:
			toks = make([]string, 0, utf8.RuneCountInString(s))
			for j, r := range s {
				toks = append(toks, s[j:j+utf8.RuneLen(r)])
			}
		case k.tokenExp != nil:
			toks = k.matchTokens(s)
		default:
			toks = k.splitTokens(s)
		}
		rows[i] = toks
		maxTokens = max(maxTokens, len(toks))
	}
	shape := append(append([]int64(nil), x.Shape...), 0)
	if maxTokens == 0 {
		return newTensor(k.name, tensor.String, shape, []string{}), nil
	}
	width := maxTokens
	if k.mark {
		width += 2
	}
	shape[len(shape)-1] = int64(width)
	out := make([]string, 0, len(src)*width)
	for _, toks := range rows {
		if k.mark {
			out = append(out, "\x02")
		}
		out = append(out, toks...)
		if k.mark {
			out = append(out, "\x03")
		}
		for p := len(toks); p < maxTokens; p++ {
			out = append(out, k.pad)
		}
	}
	return newTensor(k.name, tensor.String, shape, out), nil
}

// matchTokens finds the tokens of s matching tokenexp: a match shorter than
// mincharnum characters is dropped and the search resumes one character
// after its start.
func (k *tokenizer) matchTokens(s string) []string {
	if utf8.RuneCountInString(s) < k.minChars {
		return nil
	}
	var toks []string
	if k.minChars == 1 {
		// Every non-empty match is a token and the search resumes after
		// it: the regexp package's successive matches, which keep the
		// text before each search as context for \b and ^.
		for _, m := range k.tokenExp.FindAllStringIndex(s, -1) {
			if m[1] > m[0] {
				toks = append(toks, s[m[0]:m[1]])
			}
		}
		return toks
	}
	start := 0
	for start <= len(s) {
		loc := k.tokenExp.FindStringIndex(s[start:])
		if loc == nil {
			break
		}
		a, b := start+loc[0], start+loc[1]
		if utf8.RuneCountInString(s[a:b]) >= k.minChars {
			toks = append(toks, s[a:b])
			start = b
			continue
		}
		if a >= len(s) {
			break
		}
		_, w := utf8.DecodeRuneInString(s[a:])
		start = a + w
	}
	return toks
}

// splitTokens splits s by each separator in turn; pieces shorter than
// mincharnum characters are dropped. When a separator leaves no token,
// the string has none.
func (k *tokenizer) splitTokens(s string) []string {
	row := []string{s}
	for _, sep := range k.separators {
		var toks []string
		for _, text := range row {
			start := 0
			for start <= len(text) {
				loc := sep.FindStringIndex(text[start:])
				if loc == nil {
					break
				}
				a, b := start+loc[0], start+loc[1]
				if tok := text[start:a]; utf8.RuneCountInString(tok) >= k.minChars {
					toks = append(toks, tok)
				}
				if b > a {
					start = b
				} else {
					// An empty match: skip the character at it.
					if a >= len(text) {
						start = len(text) + 1
						break
					}
					_, w := utf8.DecodeRuneInString(text[a:])
					start = a + w
				}
			}
			if start <= len(text) {
				if tok := text[start:]; utf8.RuneCountInString(tok) >= k.minChars {
					toks = append(toks, tok)
				}
			}
		}
		if len(toks) == 0 {
			return nil
		}
		row = toks
	}
	return row
}

// ngramNode is a node of the n-gram trie: id is the 1-based position of
// the n-gram ending here in the pool (0 when only a prefix ends here).
type ngramNode[K comparable] struct {
	id   int
	next map[K]*ngramNode[K]
}

func (t *ngramNode[K]) insert(gram []K, id int) error {
	node := t
	for _, g := range gram {
		if node.next == nil {
			node.next = map[K]*ngramNode[K]{}
		}
		child := node.next[g]
		if child == nil {
			child = &ngramNode[K]{}
			node.next[g] = child
		}
		node = child
	}
	if node.id != 0 {
		return fmt.Errorf("duplicate %d-gram in the pool", len(gram))
	}
	node.id = id
	return nil
}

type tfidfMode uint8

const (
	modeTF tfidfMode = iota
	modeIDF
	modeTFIDF
)

type tfidf struct {
	name         string
	mode         tfidfMode
	minN, maxN   int
	maxSkip      int
	indexes      []int64
	weights      []float32
	size         int
	strings      *ngramNode[string]
	ints         *ngramNode[int64]
	stringPool   bool
	poolNonEmpty bool
}

func tfidfFactory(n *Node, opset int64) (Kernel, error) {
	if err := needInputs(n, 1, 1); err != nil {
		return nil, err
	}
	modeName, err := n.String("mode", "")
	if err != nil {
		return nil, err
	}
	k := &tfidf{name: outName(n, 0)}
	switch modeName {
	case "TF":
		k.mode = modeTF
	case "IDF":
		k.mode = modeIDF
	case "TFIDF":
		k.mode = modeTFIDF
	default:
		return nil, fmt.Errorf("mode %q is not TF, IDF or TFIDF", modeName)
	}
	minN, err := n.Int("min_gram_length", 0)
	if err != nil {
		return nil, err
	}
	maxN, err := n.Int("max_gram_length", 0)
	if err != nil {
		return nil, err
	}
	skip, err := n.Int("max_skip_count", 0)
	if err != nil {
		return nil, err
	}
	counts, err := n.Ints("ngram_counts")
	if err != nil {
		return nil, err
	}
	if k.indexes, err = n.Ints("ngram_indexes"); err != nil {
		return nil, err
	}
	if k.weights, err = n.Floats("weights"); err != nil {
		return nil, err
	}
	poolS, err := n.Strings("pool_strings")
	if err != nil {
		return nil, err
	}
	poolI, err := n.Ints("pool_int64s")
	if err != nil {
		return nil, err
	}
	switch {
	case minN <= 0:
		return nil, fmt.Errorf("min_gram_length must be positive, is %d", minN)
	case maxN < minN:
		return nil, fmt.Errorf("max_gram_length %d is below min_gram_length %d", maxN, minN)
	case skip < 0:
		return nil, fmt.Errorf("max_skip_count must not be negative, is %d", skip)
	case len(counts) == 0:
		return nil, fmt.Errorf("ngram_counts is required")
	case int(maxN) > len(counts):
		return nil, fmt.Errorf("max_gram_length %d exceeds the %d ngram_counts", maxN, len(counts))
	case len(k.indexes) == 0:
		return nil, fmt.Errorf("ngram_indexes is required")
	case k.weights != nil && len(k.weights) != len(k.indexes):
		return nil, fmt.Errorf("%d weights for %d ngram_indexes", len(k.weights), len(k.indexes))
	}
	k.minN, k.maxN, k.maxSkip = int(minN), int(maxN), int(skip)
	for _, ix := range k.indexes {
		if ix < 0 {
			return nil, fmt.Errorf("negative ngram index %d", ix)
		}
		if ix >= maxElements {
			return nil, fmt.Errorf("ngram index %d is too large", ix)
		}
		k.size = max(k.size, int(ix)+1)
	}
	total := len(poolI)
	k.stringPool = n.Attr("pool_strings") != nil
	if k.stringPool {
		total = len(poolS)
		k.strings = &ngramNode[string]{}
	} else {
		if n.Attr("pool_int64s") == nil {
			return nil, fmt.Errorf("one of pool_strings and pool_int64s is required")
		}
		k.ints = &ngramNode[int64]{}
	}
	if total == 0 {
		return nil, fmt.Errorf("the pool is empty")
	}
	id := 1
	for i, start := range counts {
		size := i + 1
		end := int64(total)
		if i+1 < len(counts) {
			end = counts[i+1]
		}
		if start < 0 || end < start || end > int64(total) {
			return nil, fmt.Errorf("ngram_counts %v are out of bounds for a pool of %d", counts, total)
		}
		items := int(end - start)
		if items%size != 0 {
			return nil, fmt.Errorf("%d pool items do not make whole %d-grams", items, size)
		}
		grams := items / size
		if size < k.minN || size > k.maxN {
			id += grams
			continue
		}
		for g := 0; g < grams; g++ {
			lo := int(start) + g*size
			if id > len(k.indexes) {
				return nil, fmt.Errorf("the pool has more n-grams than ngram_indexes (%d)", len(k.indexes))
			}
			if k.stringPool {
				err = k.strings.insert(poolS[lo:lo+size], id)
			} else {
				err = k.ints.insert(poolI[lo:lo+size], id)
			}
			if err != nil {
				return nil, err
			}
			k.poolNonEmpty = true
			id++
		}
	}
	return kernel1(k.run), nil
}

func (k *tfidf) run(in []Value) (*tensor.Tensor, error) {
	x, err := inTensor(in, 0)
	if err != nil {
		return nil, err
	}
	var rows, c int
	var shape []int64
	switch len(x.Shape) {
	case 0:
		rows, c, shape = 1, 1, []int64{int64(k.size)}
	case 1:
		rows, c, shape = 1, int(x.Shape[0]), []int64{int64(k.size)}
	case 2:
		if x.Shape[0] < 1 {
			return nil, fmt.Errorf("TfIdfVectorizer takes [C] or [B, C] with B > 0, got shape %v", x.Shape)
		}
		rows, c, shape = int(x.Shape[0]), int(x.Shape[1]), []int64{x.Shape[0], int64(k.size)}
	default:
		return nil, fmt.Errorf("TfIdfVectorizer takes [C] or [B, C], got shape %v", x.Shape)
	}
	out := make([]float32, rows*k.size)
	t := newTensor(k.name, tensor.Float32, shape, out)
	if x.Len() == 0 || !k.poolNonEmpty {
		return t, nil
	}
	switch d := x.Data.(type) {
	case []string:
		if !k.stringPool {
			return t, nil
		}
		for r := 0; r < rows; r++ {
			countGrams(k, d[r*c:(r+1)*c], k.strings, out[r*k.size:(r+1)*k.size])
		}
	case []int64:
		if k.stringPool {
			return t, nil
		}
		for r := 0; r < rows; r++ {
			countGrams(k, d[r*c:(r+1)*c], k.ints, out[r*k.size:(r+1)*k.size])
		}
	case []int32:
		if k.stringPool {
			return t, nil
		}
		row := make([]int64, c)
		for r := 0; r < rows; r++ {
			for j := range row {
				row[j] = int64(d[r*c+j])
			}
			countGrams(k, row, k.ints, out[r*k.size:(r+1)*k.size])
		}
	default:
		return nil, fmt.Errorf("TfIdfVectorizer takes strings, INT32 or INT64, got %v", x.DType)
	}
	return t, nil
}

// countGrams adds the n-grams of one row to out. For every skip distance
// it walks each start position down the trie; unigrams count only in the
// first round, as they do not depend on the skip.
func countGrams[K comparable](k *tfidf, row []K, root *ngramNode[K], out []float32) {
	startN := k.minN
	for dist := 1; dist <= k.maxSkip+1; dist++ {
		for s := 0; s < len(row); s++ {
			if s+dist*(startN-1) >= len(row) {
				break
			}
			node := root
			for size, i := 1, s; size <= k.maxN && i < len(row) && node.next != nil; size, i = size+1, i+dist {
				next := node.next[row[i]]
				if next == nil {
					break
				}
				if size >= startN && next.id != 0 {
					k.hit(next.id-1, out)
				}
				node = next
			}
		}
		if startN == 1 {
			startN++
			if startN > k.maxN {
				break
			}
		}
	}
}

// hit counts the pool's n-gram g (0-based): its output column is
// ngram_indexes[g] and its weight weights[g].
func (k *tfidf) hit(g int, out []float32) {
	i := int(k.indexes[g])
	switch k.mode {
	case modeTF:
		out[i]++
	case modeIDF:
		if k.weights != nil {
			out[i] = k.weights[g]
		} else {
			out[i] = 1
		}
	case modeTFIDF:
		if k.weights != nil {
			out[i] += k.weights[g]
		} else {
			out[i]++
		}
	}
}
