//go:build ort

package main

// Built with -tags ort, kiln also offers the onnxruntime backend
// (`kiln serve --backend ort`); it loads onnxruntime's shared library from
// $KILN_ORT_LIBRARY at run time.
import _ "github.com/kiln-ml/kiln/runtime/ort"
