//go:build ort

// Package ort is Kiln's optional onnxruntime backend: it runs any ONNX model
// through onnxruntime's shared library (via cgo and
// github.com/yalue/onnxruntime_go), for models beyond what the pure-Go
// runtime/onnx interpreter covers. It is compiled only with the build tag
// "ort" (go build -tags ort), so the default build stays free of cgo; the
// library itself is opened at run time.
//
// The library's path comes from Source.Options["library"], else from the
// KILN_ORT_LIBRARY environment variable. The onnxruntime pip wheel ships one
// (onnxruntime/capi/libonnxruntime.so.*). All models of a process share one
// onnxruntime environment, so they must name the same library.
//
// Signatures come from the session's inputs and outputs. Tensors of every
// numeric type, BOOL and BYTES (strings) are passed both ways; FP16 inputs
// are passed, FP16 outputs only where their shape is static. A sequence of
// maps (ONNX-ML's ZipMap, one map per row) becomes an FP32 [N, K] tensor
// whose TensorSpec.Labels are the ZipMap's class labels, as runtime/onnx
// does.
package ort

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	ortlib "github.com/yalue/onnxruntime_go"

	"github.com/kiln-ml/kiln/runtime"
)

func init() { runtime.Register(Backend{}) }

// LibraryEnv is the environment variable naming onnxruntime's shared
// library when Source.Options has no "library".
const LibraryEnv = "KILN_ORT_LIBRARY"

// DefaultFile is the model file inside an MLflow onnx flavor directory.
const DefaultFile = "model.onnx"

// ErrNoLibrary reports that no onnxruntime library was named or that it
// could not be opened.
var ErrNoLibrary = errors.New("onnxruntime library unavailable")

// Backend is the "ort" runtime backend. Source.Path is an ONNX file or a
// directory holding one (an MLflow onnx flavor directory). Options:
//
//   - "library" (string): path of libonnxruntime.so (else $KILN_ORT_LIBRARY);
//   - "data" (string): the model file's name inside the directory
//     (default model.onnx);
//   - "intra_op_threads" (int): onnxruntime's intra-op thread count
//     (default: onnxruntime's own choice).
type Backend struct{}

// Name returns "ort".
func (Backend) Name() string { return "ort" }

var env struct {
	sync.Mutex
	library string // the library the environment was initialised with
}

// initLibrary opens the shared library and creates the process-wide
// onnxruntime environment, once.
func initLibrary(lib string) error {
	env.Lock()
	defer env.Unlock()
	if env.library != "" {
		if filepath.Clean(lib) != filepath.Clean(env.library) {
			return fmt.Errorf("ort: %w: onnxruntime is already loaded from %s, cannot also load %s", ErrNoLibrary, env.library, lib)
		}
		return nil
	}
	if _, err := os.Stat(lib); err != nil {
		return fmt.Errorf("ort: %w: %w", ErrNoLibrary, err)
	}
	ortlib.SetSharedLibraryPath(lib)
	if err := ortlib.InitializeEnvironment(ortlib.WithLogLevelError()); err != nil {
		return fmt.Errorf("ort: %w: %s: %w", ErrNoLibrary, lib, err)
	}
	env.library = lib
	return nil
}

// Load opens the library if needed, creates an onnxruntime session for
// the model and derives its signature.
func (Backend) Load(ctx context.Context, src runtime.Source) (runtime.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lib, err := optString(src.Options, "library")
	if err != nil {
		return nil, err
	}
	if lib == "" {
		lib = os.Getenv(LibraryEnv)
	}
	if lib == "" {
		return nil, fmt.Errorf("ort: %w: set Source.Options[\"library\"] or $%s to the path of libonnxruntime.so (the onnxruntime pip wheel ships it in onnxruntime/capi/)", ErrNoLibrary, LibraryEnv)
	}
	if err := initLibrary(lib); err != nil {
		return nil, err
	}
	data, err := optString(src.Options, "data")
	if err != nil {
		return nil, err
	}
	threads, err := optInt(src.Options, "intra_op_threads")
	if err != nil {
		return nil, err
	}

	// Read the model; keep the file path when there is one, so that
	// onnxruntime finds external data files next to it.
	name, file, err := modelFile(src, data)
	if err != nil {
		return nil, fmt.Errorf("ort: %w", err)
	}
	raw, err := src.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("ort: %w", err)
	}
	where := src.Path
	if name != "" {
		where = joinPath(src, name)
	}
	m, err := newModel(raw, file, threads)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w", where, err)
	}
	return m, nil
}

// modelFile resolves the file to read: name is relative to src.Path ("" for
// Path itself); file is a local path for onnxruntime, or "" for an fs.FS.
func modelFile(src runtime.Source, data string) (name, file string, err error) {
	var fi fs.FileInfo
	if src.FS != nil {
		fi, err = fs.Stat(src.FS, src.Path)
	} else {
		fi, err = os.Stat(src.Path)
	}
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		name = DefaultFile
		if data != "" {
			name = data
		}
	}
	if src.FS == nil {
		file = src.Path
		if name != "" {
			file = filepath.Join(src.Path, name)
		}
	}
	return name, file, nil
}

func joinPath(src runtime.Source, name string) string {
	if src.FS != nil {
		return path.Join(src.Path, name)
	}
	return filepath.Join(src.Path, name)
}

func optString(opts map[string]any, key string) (string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("ort: option %q is a %T, want a string", key, v)
	}
	return s, nil
}

func optInt(opts map[string]any, key string) (int, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return 0, nil
	}
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case float64:
		if n == float64(int(n)) {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("ort: option %q is %v, want an integer", key, v)
}

// ortError classifies an onnxruntime error: operators or types it lacks are
// ErrUnsupported, anything else about the file ErrInvalidModel.
func ortError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "NOT_IMPLEMENTED") || strings.Contains(msg, "Could not find an implementation") {
		return fmt.Errorf("%w: onnxruntime: %w", runtime.ErrUnsupported, err)
	}
	return fmt.Errorf("%w: onnxruntime: %w", runtime.ErrInvalidModel, err)
}
