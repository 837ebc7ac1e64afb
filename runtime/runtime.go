// Package runtime is the inference interface of Kiln: a Backend loads a
// model file into a Model with a typed Signature, and a Model predicts on a
// batch of named tensors. Backends (runtime/onnx, runtime/xgboost,
// runtime/lightgbm, runtime/ort, runtime/python) register themselves by name
// in their init function; callers pick one by name or by file.
//
// Embedded use, without a server:
//
//	import (
//		"github.com/kiln-ml/kiln/runtime"
//		_ "github.com/kiln-ml/kiln/runtime/onnx"
//	)
//
//	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: "model.onnx"})
//	out, err := m.Predict(ctx, []*tensor.Tensor{x})
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"github.com/kiln-ml/kiln/tensor"
)

// TensorSpec describes one input or output of a model. A dimension of -1 is
// variable (usually the batch dimension).
type TensorSpec struct {
	Name  string
	DType tensor.DType
	Shape []int64
	// Labels names the columns of the last dimension when the model defines
	// them, e.g. the class labels of a probability output that ONNX's
	// ZipMap produced as one map per row.
	Labels []string
}

// Signature is what a model takes and returns, in order.
type Signature struct {
	Inputs  []TensorSpec
	Outputs []TensorSpec
}

// Model is a loaded model. Predict must be safe for concurrent use. Inputs
// are matched to the signature by name (or by position when unnamed);
// outputs come back in signature order.
type Model interface {
	Signature() Signature
	Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error)
	Close() error
}

// Source says where a model's files are: Path is a file (or directory) in
// FS, or on the local file system when FS is nil. Options carries
// backend-specific settings (e.g. from an MLmodel flavor).
type Source struct {
	FS      fs.FS
	Path    string
	Options map[string]any
}

// ReadFile reads the file at Path when name is empty, else the file name
// inside the directory Path.
func (s Source) ReadFile(name string) ([]byte, error) {
	return readSourceFile(s, name)
}

// Backend loads models of one kind.
type Backend interface {
	// Name is the backend's registry name ("onnx", "xgboost", ...).
	Name() string
	// Load reads and compiles the model; all validation (unsupported
	// operators, bad files) happens here, not at Predict time.
	Load(ctx context.Context, src Source) (Model, error)
}

// Errors shared by backends; wrap them with %w and context (the file, the
// operator, the opset).
var (
	ErrUnsupported  = errors.New("unsupported")     // an operator, opset, objective or file feature the backend lacks
	ErrInvalidModel = errors.New("invalid model")   // a file that cannot be decoded
	ErrInvalidInput = errors.New("invalid input")   // inputs that do not fit the signature
	ErrNoBackend    = errors.New("no such runtime") // no backend registered under a name
)

var (
	mu       sync.RWMutex
	backends = map[string]Backend{}
)

// Register makes a backend available by its name. It panics on a duplicate
// name (a programming error, caught at start-up).
func Register(b Backend) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := backends[b.Name()]; dup {
		panic("runtime: backend registered twice: " + b.Name())
	}
	backends[b.Name()] = b
}

// Lookup returns the backend registered under name.
func Lookup(name string) (Backend, error) {
	mu.RLock()
	defer mu.RUnlock()
	b, ok := backends[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %v)", ErrNoBackend, name, namesLocked())
	}
	return b, nil
}

// Names lists the registered backends, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(backends))
	for n := range backends {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Load loads src with the named backend.
func Load(ctx context.Context, backend string, src Source) (Model, error) {
	b, err := Lookup(backend)
	if err != nil {
		return nil, err
	}
	return b.Load(ctx, src)
}

// MatchInputs orders inputs by the signature: by name when every input is
// named after a signature input, else by position. It checks the count and
// the element types, and returns an ErrInvalidInput naming the offending
// input otherwise. Backends use it at the top of Predict.
func MatchInputs(sig Signature, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(inputs) != len(sig.Inputs) {
		return nil, fmt.Errorf("%w: model takes %d input(s) %v, got %d", ErrInvalidInput, len(sig.Inputs), specNames(sig.Inputs), len(inputs))
	}
	out := make([]*tensor.Tensor, len(sig.Inputs))
	byName := true
	for _, in := range inputs {
		if indexOf(sig.Inputs, in.Name) < 0 {
			byName = false
			break
		}
	}
	for i, in := range inputs {
		j := i
		if byName {
			j = indexOf(sig.Inputs, in.Name)
			if out[j] != nil {
				return nil, fmt.Errorf("%w: input %q given twice", ErrInvalidInput, in.Name)
			}
		}
		spec := sig.Inputs[j]
		if err := in.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		if spec.DType != tensor.Invalid && in.DType != spec.DType {
			return nil, fmt.Errorf("%w: input %q has datatype %v, model expects %v", ErrInvalidInput, spec.Name, in.DType, spec.DType)
		}
		if err := checkShape(spec, in.Shape); err != nil {
			return nil, err
		}
		out[j] = in
	}
	return out, nil
}

func checkShape(spec TensorSpec, shape []int64) error {
	if spec.Shape == nil {
		return nil
	}
	if len(spec.Shape) != len(shape) {
		return fmt.Errorf("%w: input %q has shape %v, model expects %v", ErrInvalidInput, spec.Name, shape, spec.Shape)
	}
	for i, d := range spec.Shape {
		if d >= 0 && shape[i] != d {
			return fmt.Errorf("%w: input %q has shape %v, model expects %v", ErrInvalidInput, spec.Name, shape, spec.Shape)
		}
	}
	return nil
}

func indexOf(specs []TensorSpec, name string) int {
	for i, s := range specs {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func specNames(specs []TensorSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}
