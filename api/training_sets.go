package api

import (
	"context"
	"net/http"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
)

// TrainingSets builds point-in-time correct training sets (a
// *feature.Service).
type TrainingSets interface {
	TrainingSet(ctx context.Context, req feature.TrainingSetRequest) (*dataset.Version, error)
}

func (h *Handler) registerTrainingSets(mux Mux) {
	h.handle(mux, "POST", "/training-sets", h.createTrainingSet)
}

// createTrainingSet answers POST /training-sets with the new version of
// the output dataset (201; an identical training set already recorded as
// the output's latest version is returned as is).
func (h *Handler) createTrainingSet(w http.ResponseWriter, r *http.Request) error {
	if h.d.TrainingSets == nil {
		return errdefs.NotImplemented("This server has no feature store (no training sets)")
	}
	var req feature.TrainingSetRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	a, err := actor(r)
	if err != nil {
		return err
	}
	req.Actor = a
	req.Entities.Path = "" // never a server path from a client
	v, err := h.d.TrainingSets.TrainingSet(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}
