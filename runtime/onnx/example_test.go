package onnx_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/tensor"
)

// Serving a scikit-learn MLPClassifier converted by skl2onnx through the
// runtime registry: the ZipMap probabilities come back as an [N, classes]
// tensor whose column labels are in the signature.
func Example() {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: "testdata/models/mlp_classifier"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	x, err := tensor.FromSlice("X", []float32{0.402, -0.592, 0.385, -0.043, 0.459, 0.610, 0.896, 0.184}, 1, 8)
	if err != nil {
		log.Fatal(err)
	}
	out, err := m.Predict(ctx, []*tensor.Tensor{x})
	if err != nil {
		log.Fatal(err)
	}
	sig := m.Signature()
	fmt.Println(sig.Outputs[0].Name, out[0].Data)
	fmt.Printf("%s %v %v %.2f\n", sig.Outputs[1].Name, sig.Outputs[1].Labels, out[1].Shape, out[1].Data)
	// Output:
	// output_label [2]
	// output_probability [0 1 2] [1 3] [0.01 0.05 0.95]
}

// Embedding a text classifier (TfidfVectorizer + LogisticRegression)
// without the registry: onnx.Load takes the bytes of the file.
func ExampleLoad() {
	data, err := os.ReadFile("testdata/models/text_tfidf_logreg/model.onnx")
	if err != nil {
		log.Fatal(err)
	}
	m, err := onnx.Load(data)
	if err != nil {
		log.Fatal(err)
	}
	text, _ := tensor.FromSlice("text", []string{"Fresh milk, GREAT taste!", "the cheese was dry and awful"}, 2, 1)
	out, err := m.Predict(context.Background(), []*tensor.Tensor{text})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out[0].Data)
	// Output:
	// [positive negative]
}
