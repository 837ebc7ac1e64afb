package tracking

import (
	"context"
	"testing"

	"github.com/kiln-ml/kiln/store/storetest"
)

// TestInputsLoggedHook checks that the hook sees the inputs of a
// committed LogInputs, and nothing of a failed one or of one without
// datasets.
func TestInputsLoggedHook(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			type call struct {
				run    string
				inputs []DatasetInput
			}
			var calls []call
			s := New(open(t), Options{InputsLogged: func(ctx context.Context, runID string, inputs []DatasetInput) {
				calls = append(calls, call{runID, inputs})
			}})
			ctx := context.Background()
			run := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{}))
			in := DatasetInput{Tags: []KV{{"mlflow.data.context", "training"}}, Dataset: Dataset{Name: "iris", Digest: "0123abcd", Source: "kiln://datasets/iris@1"}}
			if err := s.LogInputs(ctx, run.Info.RunID, []DatasetInput{in}, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.LogInputs(ctx, "0123456789abcdef0123456789abcdef", []DatasetInput{in}, nil); err == nil {
				t.Fatal("inputs of an unknown run were accepted")
			}
			if err := s.LogInputs(ctx, run.Info.RunID, nil, []string{"m-1"}); err != nil {
				t.Fatal(err)
			}
			if len(calls) != 1 || calls[0].run != run.Info.RunID || len(calls[0].inputs) != 1 || calls[0].inputs[0].Dataset.Source != in.Dataset.Source {
				t.Fatalf("hook calls %+v", calls)
			}
		})
	}
}
