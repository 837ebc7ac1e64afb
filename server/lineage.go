package server

import (
	"context"
	"log/slog"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/tracking"
)

// linkInputs returns the tracking hook that links a run to the Kiln
// dataset versions its MLflow inputs name (see dataset.MatchMLflowInput
// for the rule). Linking never fails the MLflow call: the inputs are
// already recorded, and a version that cannot be linked is logged.
func linkInputs(datasets *dataset.Store, log *slog.Logger) func(ctx context.Context, runID string, inputs []tracking.DatasetInput) {
	return func(ctx context.Context, runID string, inputs []tracking.DatasetInput) {
		ins := make([]dataset.MLflowInput, len(inputs))
		for i, in := range inputs {
			ins[i] = dataset.MLflowInput{Name: in.Dataset.Name, Digest: in.Dataset.Digest, SourceType: in.Dataset.SourceType, Source: in.Dataset.Source}
			for _, t := range in.Tags {
				if t.Key == "mlflow.data.context" {
					ins[i].Context = t.Value
				}
			}
		}
		links, err := datasets.LinkMLflowInputs(context.WithoutCancel(ctx), runID, ins)
		for _, l := range links {
			log.Debug("run linked to dataset version", "run_id", runID, "version", l.Version.String(), "mlflow_dataset", l.MLflowName)
		}
		if err != nil {
			log.Warn("linking a run to the dataset versions it logged failed", "run_id", runID, "err", err)
		}
	}
}
