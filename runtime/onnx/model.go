// Package onnx is Kiln's pure-Go ONNX runtime: a decoder for .onnx files,
// a graph executor and the operators of the ai.onnx, ai.onnx.ml and
// com.microsoft domains that scikit-learn (skl2onnx), onnxmltools and small
// PyTorch MLPs emit. It needs no cgo, so it cross-compiles to arm64 and
// WebAssembly.
//
// The package registers the runtime backend "onnx"; it can also be used on
// its own:
//
//	m, err := onnx.Load(data) // the bytes of a .onnx file
//	out, err := m.Predict(ctx, []*tensor.Tensor{x})
//
// Loading does all the checking (unsupported operators are listed with
// their domain and opset) and all the precomputation (constant folding,
// transposed weights, value slots); Predict only runs kernels.
package onnx

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

func init() { runtime.Register(Backend{}) }

// Backend is the "onnx" runtime backend. Source.Path is an .onnx file or
// a directory holding the MLflow onnx flavor's model file: "model.onnx",
// or the name in Source.Options["data"].
type Backend struct{}

// Name returns "onnx".
func (Backend) Name() string { return "onnx" }

// Load reads and compiles the model at src.
func (Backend) Load(ctx context.Context, src runtime.Source) (runtime.Model, error) {
	if src.Path == "" {
		return nil, fmt.Errorf("onnx: %w: no model path", runtime.ErrInvalidModel)
	}
	var info fs.FileInfo
	var err error
	if src.FS != nil {
		info, err = fs.Stat(src.FS, src.Path)
	} else {
		info, err = os.Stat(src.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	file, display := "", src.Path
	if info.IsDir() {
		file = "model.onnx"
		if v, ok := src.Options["data"]; ok {
			s, ok := v.(string)
			if !ok || s == "" || !fs.ValidPath(s) || strings.Contains(s, "\\") {
				return nil, fmt.Errorf("onnx: %w: flavor option data=%v is not a file name inside the model directory", runtime.ErrInvalidModel, v)
			}
			file = s
		}
		display = path.Join(src.Path, file)
	}
	data, err := src.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	m, err := load(ctx, data, display)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Load decodes and compiles the bytes of an .onnx file.
func Load(data []byte) (*Model, error) {
	return load(context.Background(), data, "model")
}

// LoadFile reads and compiles the .onnx file at path.
func LoadFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return load(context.Background(), data, path)
}

// Newest versions whose semantics the kernels follow, per domain. Models
// importing a newer opset are refused rather than run with guessed
// semantics.
var maxOpset = map[string]int64{
	"":              22, // opset 22 only widened type constraints (bfloat16) of the operators it changed
	"ai.onnx.ml":    5,
	"com.microsoft": 1,
}

const (
	minIRVersion = 3
	maxIRVersion = 14
)

// Info is the metadata of a loaded model.
type Info struct {
	IRVersion       int64
	Opsets          map[string]int64 // "" is ai.onnx
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Metadata        map[string]string
}

// Model is a compiled ONNX graph; it implements runtime.Model and is safe
// for concurrent use.
type Model struct {
	file     string
	info     Info
	sig      runtime.Signature
	nodes    []execNode
	inSlots  []int32   // slot of each signature input
	outputs  []outSpec // graph outputs in order
	template []Value   // per-call slots with the static values filled in
	maxIn    int
	maxOut   int
	pool     sync.Pool
}

type execNode struct {
	node   *Node
	kernel Kernel
	into   runner // kernel's allocation-free form, when it has one
	in     []int32
	out    []int32
	free   []int32 // slots whose last reader this node is
	zipmap *zipMapBypass
	reuse  reuser // set when the output may be written into last call's buffer
}

// reuser is implemented by single-output kernels that can write their
// result into a tensor from an earlier call (prev, possibly nil) when it
// has the right type and size, returning it, or a new tensor otherwise.
// The executor only offers this for values that never reach the caller.
type reuser interface {
	runReuse(in []Value, prev *tensor.Tensor) (*tensor.Tensor, error)
}

// zipMapBypass replaces a ZipMap node whose result is only a graph
// output: its probability tensor is the output, with the class labels in
// the signature, and no per-row maps are built.
type zipMapBypass struct{ classes int }

type outSpec struct {
	name   string
	slot   int32
	static bool
	dtype  tensor.DType
}

// runner is an optional form of Kernel that writes its outputs into out
// (one per node output) instead of allocating a result slice.
type runner interface {
	RunInto(ctx context.Context, in, out []Value) error
}

type execState struct {
	slots []Value
	args  []Value
	outs  []Value
	bufs  []*tensor.Tensor // per slot, the buffer a reuser kernel wrote last time
}

// Signature returns the model's inputs (graph inputs that are not
// initializers) and outputs.
func (m *Model) Signature() runtime.Signature { return m.sig }

// Info returns the model's metadata.
func (m *Model) Info() Info { return m.info }

// Close releases nothing; it exists for runtime.Model.
func (m *Model) Close() error { return nil }

func load(ctx context.Context, data []byte, file string) (*Model, error) {
	p, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", file, err)
	}
	m, err := compile(ctx, p, file)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", file, err)
	}
	return m, nil
}

func domainName(d string) string {
	if d == "" {
		return "ai.onnx"
	}
	return d
}

func compile(ctx context.Context, p *ModelProto, file string) (*Model, error) {
	if p.IRVersion < minIRVersion || p.IRVersion > maxIRVersion {
		return nil, unsupportedError("IR version %d (Kiln reads %d to %d)", p.IRVersion, minIRVersion, maxIRVersion)
	}
	for dom, v := range p.Opsets {
		if max, ok := maxOpset[dom]; ok && v > max {
			return nil, unsupportedError("opset %d of domain %s (Kiln supports up to %d)", v, domainName(dom), max)
		}
	}
	g := p.Graph
	m := &Model{file: file, info: Info{
		IRVersion: p.IRVersion, Opsets: p.Opsets, ProducerName: p.ProducerName,
		ProducerVersion: p.ProducerVersion, Domain: p.Domain, ModelVersion: p.ModelVersion,
		DocString: p.DocString, Metadata: p.Metadata,
	}}

	// Every operator must be known; report all that are not at once.
	var missing []string
	seen := map[string]bool{}
	funcs := map[string]bool{}
	for _, f := range p.Functions {
		funcs[f] = true
	}
	for _, n := range g.Nodes {
		v, ok := p.Opsets[n.Domain]
		if !ok {
			return nil, decodeError("node %q (%s) uses domain %s, which the model does not import", n.Name, n.OpType, domainName(n.Domain))
		}
		if _, ok := lookupOp(n.Domain, n.OpType); ok {
			continue
		}
		key := domainName(n.Domain) + "." + n.OpType
		if seen[key] {
			continue
		}
		seen[key] = true
		desc := fmt.Sprintf("%s (opset %d)", key, v)
		if funcs[n.Domain+"."+n.OpType] {
			desc += " (a model-local function)"
		}
		missing = append(missing, desc)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, unsupportedError("operators not implemented by Kiln's onnx runtime: %s", strings.Join(missing, ", "))
	}

	// Value slots: graph inputs, initializers, node outputs.
	slots := map[string]int32{}
	slotOf := func(name string) int32 {
		if s, ok := slots[name]; ok {
			return s
		}
		s := int32(len(slots))
		slots[name] = s
		return s
	}
	var template []Value
	setStatic := func(s int32, v Value) {
		for int(s) >= len(template) {
			template = append(template, nil)
		}
		template[s] = v
	}
	available := map[string]bool{}
	for name, t := range g.Initializers {
		setStatic(slotOf(name), t)
		available[name] = true
	}
	for _, in := range g.Inputs {
		if _, isInit := g.Initializers[in.Name]; isInit {
			continue // an input with a default is a constant here
		}
		if available[in.Name] {
			return nil, decodeError("graph input %q listed twice", in.Name)
		}
		spec, err := inputSpec(in)
		if err != nil {
			return nil, err
		}
		m.sig.Inputs = append(m.sig.Inputs, spec)
		m.inSlots = append(m.inSlots, slotOf(in.Name))
		available[in.Name] = true
	}

	order, err := topoSort(g.Nodes, available)
	if err != nil {
		return nil, err
	}

	// Compile in order, folding nodes whose inputs are all static.
	consumers := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				consumers[in]++
			}
		}
	}
	graphOut := map[string]bool{}
	for _, o := range g.Outputs {
		graphOut[o.Name] = true
	}
	staticAt := func(s int32) Value {
		if int(s) < len(template) {
			return template[s]
		}
		return nil
	}
	for _, n := range order {
		opset := p.Opsets[n.Domain]
		f, _ := lookupOp(n.Domain, n.OpType)
		n.Static = make([]Value, len(n.Inputs))
		allStatic := true
		en := execNode{node: n, in: make([]int32, len(n.Inputs)), out: make([]int32, len(n.Outputs))}
		for i, in := range n.Inputs {
			if in == "" {
				en.in[i] = -1
				continue
			}
			s := slots[in]
			en.in[i] = s
			n.Static[i] = staticAt(s)
			if n.Static[i] == nil {
				allStatic = false
			}
		}
		for i, o := range n.Outputs {
			if o == "" {
				en.out[i] = -1
				continue
			}
			en.out[i] = slotOf(o)
		}
		n.opsets = p.Opsets
		k, err := f(n, opset)
		if err != nil {
			return nil, loadError(n, err)
		}
		if k == nil {
			return nil, loadError(n, errors.New("operator factory returned no kernel"))
		}
		en.kernel = k
		en.into, _ = k.(runner)
		if allStatic {
			args := make([]Value, len(n.Inputs))
			copy(args, n.Static)
			outs, err := k.Run(ctx, args)
			if err != nil {
				return nil, loadError(n, fmt.Errorf("evaluating on constant inputs: %w", err))
			}
			if len(outs) < len(n.Outputs) {
				return nil, loadError(n, fmt.Errorf("kernel returned %d outputs for %d", len(outs), len(n.Outputs)))
			}
			for i, s := range en.out {
				if s >= 0 && outs[i] != nil {
					setStatic(s, outs[i])
				}
			}
			continue
		}
		if n.Domain == "ai.onnx.ml" && n.OpType == "ZipMap" && len(n.Outputs) == 1 &&
			graphOut[n.Outputs[0]] && consumers[n.Outputs[0]] == 0 {
			labels, _ := zipMapLabels(n)
			en.zipmap = &zipMapBypass{classes: len(labels)}
		}
		m.nodes = append(m.nodes, en)
		if len(en.in) > m.maxIn {
			m.maxIn = len(en.in)
		}
		if len(en.out) > m.maxOut {
			m.maxOut = len(en.out)
		}
	}

	// Graph outputs.
	producer := map[string]*Node{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	for _, o := range g.Outputs {
		s, ok := slots[o.Name]
		if !ok {
			return nil, decodeError("graph output %q is produced by no node", o.Name)
		}
		spec, err := outputSpec(o, producer[o.Name])
		if err != nil {
			return nil, err
		}
		m.sig.Outputs = append(m.sig.Outputs, spec)
		m.outputs = append(m.outputs, outSpec{name: o.Name, slot: s, static: staticAt(s) != nil, dtype: spec.DType})
	}

	// Identity nodes cost nothing: their readers read the input instead.
	alias := map[int32]int32{}
	kept := m.nodes[:0]
	for _, en := range m.nodes {
		for k, s := range en.in {
			if a, ok := alias[s]; ok {
				en.in[k] = a
			}
		}
		if en.node.OpType == "Identity" && en.node.Domain == "" && len(en.in) == 1 && len(en.out) == 1 && en.in[0] >= 0 && en.out[0] >= 0 {
			alias[en.out[0]] = en.in[0]
			continue
		}
		kept = append(kept, en)
	}
	m.nodes = kept
	for i, o := range m.outputs {
		if a, ok := alias[o.slot]; ok {
			m.outputs[i].slot, m.outputs[i].static = a, staticAt(a) != nil
		}
	}

	outSlots := map[int32]bool{}
	for _, o := range m.outputs {
		outSlots[o.slot] = true
	}
	m.nodes = fuseDense(m.nodes, outSlots)

	markReuse(m.nodes, outSlots)

	// Free intermediates after their last reader.
	last := map[int32]int{}
	for i, en := range m.nodes {
		for _, s := range en.in {
			if s >= 0 && staticAt(s) == nil {
				last[s] = i
			}
		}
	}
	keep := map[int32]bool{}
	for _, o := range m.outputs {
		keep[o.slot] = true
	}
	for s, i := range last {
		if !keep[s] {
			m.nodes[i].free = append(m.nodes[i].free, s)
		}
	}
	for i := range m.nodes {
		sort.Slice(m.nodes[i].free, func(a, b int) bool { return m.nodes[i].free[a] < m.nodes[i].free[b] })
	}

	for len(template) < len(slots) {
		template = append(template, nil)
	}
	m.template = template
	m.pool.New = func() any {
		st := &execState{slots: make([]Value, len(m.template)), args: make([]Value, m.maxIn), outs: make([]Value, m.maxOut),
			bufs: make([]*tensor.Tensor, len(m.template))}
		copy(st.slots, m.template)
		return st
	}
	return m, nil
}

// Operators whose outputs never share memory with their inputs, and
// those whose first output may be a view of their first input.
var (
	copyingOps = map[string]bool{
		"MatMul": true, "Gemm": true, "Add": true, "Sub": true, "Mul": true, "Div": true,
		"Relu": true, "Sigmoid": true, "Tanh": true, "Softmax": true, "LogSoftmax": true,
		"ArgMax": true, "ArgMin": true, "Exp": true, "Log": true, "Sqrt": true, "Abs": true,
		"Neg": true, "Erf": true, "LeakyRelu": true, "Concat": true, "Where": true,
		"Less": true, "Greater": true, "Equal": true, "LessOrEqual": true, "GreaterOrEqual": true,
	}
	viewOps = map[string]bool{
		"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Identity": true,
		"Dropout": true, "Cast": true, "CastLike": true, "Transpose": true,
	}
)

// markReuse lets a kernel that can reuse its output buffer across calls
// do so when the value cannot reach the caller: it is no graph output and
// every reader copies it, or is a view whose own output cannot reach the
// caller either.
func markReuse(nodes []execNode, isOut map[int32]bool) {
	readers := map[int32][]int{}
	for i, en := range nodes {
		for _, s := range en.in {
			if s >= 0 {
				readers[s] = append(readers[s], i)
			}
		}
	}
	memo := map[int32]bool{}
	var private func(s int32, depth int) bool
	private = func(s int32, depth int) bool {
		if v, ok := memo[s]; ok {
			return v
		}
		ok := !isOut[s] && depth < 64
		for _, r := range readers[s] {
			if !ok {
				break
			}
			n := nodes[r].node
			switch {
			case nodes[r].zipmap != nil || n.Domain != "":
				ok = false
			case copyingOps[n.OpType]:
			case viewOps[n.OpType]:
				for _, o := range nodes[r].out {
					if o >= 0 && !private(o, depth+1) {
						ok = false
					}
				}
			default:
				ok = false
			}
		}
		memo[s] = ok
		return ok
	}
	for i := range nodes {
		en := &nodes[i]
		r, ok := en.kernel.(reuser)
		if ok && len(en.out) == 1 && en.out[0] >= 0 && private(en.out[0], 0) {
			en.reuse = r
		}
	}
}

// fuseDense merges into each dense kernel (a float32 MatMul or Gemm with
// constant weights) the nodes that only post-process its result: an Add
// of a constant bias row and then a Relu, Sigmoid or Tanh. The
// intermediate values must have that node as their only reader and must
// not be graph outputs.
func fuseDense(nodes []execNode, isOut map[int32]bool) []execNode {
	readers := map[int32][]int{}
	for i, en := range nodes {
		for _, s := range en.in {
			if s >= 0 {
				readers[s] = append(readers[s], i)
			}
		}
	}
	gone := make([]bool, len(nodes))
	for i := range nodes {
		d, ok := nodes[i].kernel.(*dense)
		if !ok || gone[i] || len(nodes[i].out) != 1 {
			continue
		}
		for {
			s := nodes[i].out[0]
			r := readers[s]
			if s < 0 || isOut[s] || len(r) != 1 {
				break
			}
			j := r[0]
			nj := nodes[j].node
			if nj.Domain != "" || len(nodes[j].out) != 1 {
				break
			}
			absorbed := false
			switch nj.OpType {
			case "Add":
				if d.bias != nil || d.act != actNone || len(nj.Inputs) != 2 {
					break
				}
				other := 1
				if nodes[j].in[1] == s {
					other = 0
				}
				if nodes[j].in[other] == s {
					break // Add(x, x)
				}
				bt := staticTensor(nj, other)
				if row, ok := biasRow(bt, d.w.n); ok {
					d.bias, d.biasShape, absorbed = row, bt.Shape, true
				}
			case "Relu", "Sigmoid", "Tanh":
				if d.act != actNone {
					break
				}
				d.act = map[string]activation{"Relu": actRelu, "Sigmoid": actSigmoid, "Tanh": actTanh}[nj.OpType]
				absorbed = true
			}
			if !absorbed {
				break
			}
			d.name = nj.Outputs[0]
			nodes[i].out = nodes[j].out
			gone[j] = true
		}
	}
	kept := nodes[:0]
	for i, en := range nodes {
		if !gone[i] {
			kept = append(kept, en)
		}
	}
	return kept
}

func loadError(n *Node, err error) error {
	if errors.Is(err, runtime.ErrUnsupported) || errors.Is(err, runtime.ErrInvalidModel) {
		return fmt.Errorf("node %q (%s.%s): %w", n.Name, domainName(n.Domain), n.OpType, err)
	}
	return fmt.Errorf("%w: node %q (%s.%s): %w", runtime.ErrInvalidModel, n.Name, domainName(n.Domain), n.OpType, err)
}

func inputSpec(in ValueInfo) (runtime.TensorSpec, error) {
	if in.Kind != KindTensor {
		return runtime.TensorSpec{}, unsupportedError("graph input %q is not a tensor (Kiln takes tensor inputs only)", in.Name)
	}
	if in.Elem == tensor.Invalid && in.ElemType != 0 {
		return runtime.TensorSpec{}, unsupportedError("graph input %q has element type %s", in.Name, onnxTypeName(in.ElemType))
	}
	return runtime.TensorSpec{Name: in.Name, DType: in.Elem, Shape: in.Shape}, nil
}

func outputSpec(o ValueInfo, producer *Node) (runtime.TensorSpec, error) {
	spec := runtime.TensorSpec{Name: o.Name, DType: o.Elem, Shape: o.Shape}
	switch o.Kind {
	case KindTensor:
		if o.Elem == tensor.Invalid && o.ElemType != 0 {
			return spec, unsupportedError("graph output %q has element type %s", o.Name, onnxTypeName(o.ElemType))
		}
		return spec, nil
	case KindSequence:
		if o.Key == tensor.Invalid {
			return spec, unsupportedError("graph output %q is a sequence of tensors", o.Name)
		}
		// seq(map(K, V)), as ZipMap makes: served as an [N, classes]
		// tensor of V whose columns are labelled with the keys.
		spec.Shape = []int64{-1, -1}
		if producer != nil && producer.OpType == "ZipMap" && producer.Domain == "ai.onnx.ml" {
			if labels, ok := zipMapLabels(producer); ok {
				spec.Labels = labels
				spec.Shape[1] = int64(len(labels))
			}
		}
		return spec, nil
	}
	return spec, unsupportedError("graph output %q is not a tensor or a sequence of maps", o.Name)
}

func zipMapLabels(n *Node) ([]string, bool) {
	if a := n.Attr("classlabels_strings"); a != nil && a.Type == AttrStrings {
		return append([]string(nil), a.Strings...), true
	}
	if a := n.Attr("classlabels_int64s"); a != nil && a.Type == AttrInts {
		out := make([]string, len(a.Ints))
		for i, v := range a.Ints {
			out[i] = strconv.FormatInt(v, 10)
		}
		return out, true
	}
	return nil, false
}

// topoSort orders nodes so that every node follows the producers of its
// inputs, keeping the file order where it is free to.
func topoSort(nodes []*Node, available map[string]bool) ([]*Node, error) {
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if available[o] {
				return nil, decodeError("node %q (%s) output %q redefines a graph input or initializer", n.Name, n.OpType, o)
			}
			if _, dup := producer[o]; dup {
				return nil, decodeError("value %q is produced by two nodes", o)
			}
			producer[o] = i
		}
	}
	pending := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, n := range nodes {
		deps := map[int]bool{}
		for _, in := range n.Inputs {
			if in == "" || available[in] {
				continue
			}
			p, ok := producer[in]
			if !ok {
				return nil, decodeError("node %q (%s) reads %q, which is neither a graph input, an initializer nor a node output", n.Name, n.OpType, in)
			}
			if !deps[p] {
				deps[p] = true
				users[p] = append(users[p], i)
			}
		}
		pending[i] = len(deps)
	}
	ready := &intHeap{}
	for i := range nodes {
		if pending[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]*Node, 0, len(nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, nodes[i])
		for _, u := range users[i] {
			pending[u]--
			if pending[u] == 0 {
				heap.Push(ready, u)
			}
		}
	}
	if len(order) != len(nodes) {
		return nil, decodeError("the graph has a cycle")
	}
	return order, nil
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Predict runs the graph on inputs (matched to the signature by name, or
// by position) and returns the graph outputs in order. A seq(map) output
// comes back as an [N, classes] tensor (see Signature's Labels).
// Outputs may share memory with the inputs (e.g. through Identity or
// Reshape); callers must not modify the inputs while using the outputs.
func (m *Model) Predict(ctx context.Context, inputs []*tensor.Tensor) (out []*tensor.Tensor, err error) {
	in, err := runtime.MatchInputs(m.sig, inputs)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	st := m.pool.Get().(*execState)
	cur := -1
	defer func() {
		if r := recover(); r != nil {
			where := "collecting outputs"
			if cur >= 0 {
				n := m.nodes[cur].node
				where = fmt.Sprintf("node %q (%s.%s)", n.Name, domainName(n.Domain), n.OpType)
			}
			out, err = nil, fmt.Errorf("onnx: %s: internal error in %s: %v", m.file, where, r)
		}
		copy(st.slots, m.template)
		clear(st.args)
		clear(st.outs)
		m.pool.Put(st)
	}()
	slots := st.slots
	for i, t := range in {
		slots[m.inSlots[i]] = t
	}
	done := ctx.Done()
	for i := range m.nodes {
		en := &m.nodes[i]
		cur = i
		if done != nil {
			select {
			case <-done:
				return nil, fmt.Errorf("onnx: %w", ctx.Err())
			default:
			}
		}
		args := st.args[:len(en.in)]
		for j, s := range en.in {
			if s >= 0 {
				args[j] = slots[s]
			} else {
				args[j] = nil
			}
		}
		if en.zipmap != nil {
			if err := m.bypassZipMap(en, args, slots); err != nil {
				return nil, err
			}
			continue
		}
		if en.reuse != nil {
			s := en.out[0]
			t, err := en.reuse.runReuse(args, st.bufs[s])
			if err != nil {
				return nil, m.runError(en.node, err)
			}
			st.bufs[s] = t
			slots[s] = t
		} else if en.into != nil {
			outs := st.outs[:len(en.out)]
			clear(outs)
			if err := en.into.RunInto(ctx, args, outs); err != nil {
				return nil, m.runError(en.node, err)
			}
			for j, s := range en.out {
				if s >= 0 {
					slots[s] = outs[j]
				}
			}
		} else {
			outs, err := en.kernel.Run(ctx, args)
			if err != nil {
				return nil, m.runError(en.node, err)
			}
			if len(outs) < len(en.out) {
				return nil, fmt.Errorf("onnx: %s: node %q (%s) returned %d outputs for %d", m.file, en.node.Name, en.node.OpType, len(outs), len(en.out))
			}
			for j, s := range en.out {
				if s >= 0 {
					slots[s] = outs[j]
				}
			}
		}
		for _, s := range en.free {
			slots[s] = nil
		}
	}
	cur = -1
	out = make([]*tensor.Tensor, len(m.outputs))
	for i, o := range m.outputs {
		t, err := m.outputTensor(o, slots[o.slot])
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func (m *Model) bypassZipMap(en *execNode, args, slots []Value) error {
	t, ok := args[0].(*tensor.Tensor)
	if ok && len(t.Shape) == 1 { // one row of classes
		t = newTensor(t.Name, t.DType, []int64{1, t.Shape[0]}, t.Data)
	}
	if !ok || len(t.Shape) != 2 || (en.zipmap.classes > 0 && t.Shape[1] != int64(en.zipmap.classes)) {
		return m.runError(en.node, fmt.Errorf("ZipMap takes an [N, %d] tensor, got %v", en.zipmap.classes, describeValue(args[0])))
	}
	if t.DType != tensor.Float32 {
		return m.runError(en.node, fmt.Errorf("ZipMap takes float probabilities, got %v", t.DType))
	}
	slots[en.out[0]] = t
	return nil
}

func (m *Model) runError(n *Node, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, runtime.ErrInvalidInput) || errors.Is(err, runtime.ErrUnsupported) {
		return fmt.Errorf("onnx: node %q (%s): %w", n.Name, n.OpType, err)
	}
	return fmt.Errorf("onnx: %w: node %q (%s): %w", runtime.ErrInvalidInput, n.Name, n.OpType, err)
}

func describeValue(v Value) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case *tensor.Tensor:
		return fmt.Sprintf("%v tensor of shape %v", x.DType, x.Shape)
	case Sequence:
		return fmt.Sprintf("sequence of %d", len(x))
	case *Map:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// outputTensor turns a graph output value into the tensor returned.
func (m *Model) outputTensor(o outSpec, v Value) (*tensor.Tensor, error) {
	switch x := v.(type) {
	case *tensor.Tensor:
		if o.static {
			c := x.Clone()
			c.Name = o.name
			return c, nil
		}
		if x.Name == o.name {
			return x, nil
		}
		c := *x
		c.Name = o.name
		return &c, nil
	case Sequence:
		return sequenceOfMaps(o.name, x)
	case nil:
		return nil, fmt.Errorf("onnx: %s: graph output %q was not computed", m.file, o.name)
	}
	return nil, fmt.Errorf("onnx: %s: %w: graph output %q is a %s", m.file, runtime.ErrUnsupported, o.name, describeValue(v))
}

// sequenceOfMaps flattens ZipMap's one-map-per-row output into an
// [N, classes] tensor of the map values.
func sequenceOfMaps(name string, seq Sequence) (*tensor.Tensor, error) {
	if len(seq) == 0 {
		return &tensor.Tensor{Name: name, DType: tensor.Float32, Shape: []int64{0, 0}, Data: []float32{}}, nil
	}
	first, ok := seq[0].(*Map)
	if !ok || first.Values == nil {
		return nil, fmt.Errorf("onnx: graph output %q: sequence of %T, want maps", name, seq[0])
	}
	k := first.Values.Len()
	dt := first.Values.DType
	out, err := tensor.New(name, dt, int64(len(seq)), int64(k))
	if err != nil {
		return nil, err
	}
	for i, v := range seq {
		mp, ok := v.(*Map)
		if !ok || mp.Values == nil || mp.Values.Len() != k || mp.Values.DType != dt {
			return nil, fmt.Errorf("onnx: graph output %q: row %d is not a map like row 0", name, i)
		}
		if err := copyInto(out, i*k, mp.Values); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyInto copies src's elements into dst starting at element off.
func copyInto(dst *tensor.Tensor, off int, src *tensor.Tensor) error {
	switch d := dst.Data.(type) {
	case []float32:
		copy(d[off:], src.Data.([]float32))
	case []float64:
		copy(d[off:], src.Data.([]float64))
	case []int64:
		copy(d[off:], src.Data.([]int64))
	case []string:
		copy(d[off:], src.Data.([]string))
	default:
		return fmt.Errorf("onnx: map values of type %v", dst.DType)
	}
	return nil
}
