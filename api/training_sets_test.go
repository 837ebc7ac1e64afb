package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
)

// fakeTrainingSets records the request it gets.
type fakeTrainingSets struct{ got feature.TrainingSetRequest }

func (f *fakeTrainingSets) TrainingSet(_ context.Context, req feature.TrainingSetRequest) (*dataset.Version, error) {
	f.got = req
	if req.Output.Dataset == "missing" {
		return nil, errdefs.NotFound("Feature view 'v' not found")
	}
	return &dataset.Version{Dataset: req.Output.Dataset, Version: 3, Parent: &dataset.VersionRef{Dataset: "ents", Version: 2}}, nil
}

func TestTrainingSetsRoute(t *testing.T) {
	fake := &fakeTrainingSets{}
	mux := http.NewServeMux()
	api.New(api.Deps{TrainingSets: fake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := feature.TrainingSetRequest{Entities: feature.EntitiesSource{Dataset: "ents@2", Path: "/etc/passwd"},
		Features: []string{"v:f"}, FullFeatureNames: true, Output: feature.TrainingSetOutput{Dataset: "out"}}
	v, err := c.TrainingSet(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Dataset != "out" || v.Version != 3 || v.Parent == nil || v.Parent.Version != 2 {
		t.Errorf("version %+v", v)
	}
	g := fake.got
	if g.Entities.Dataset != "ents@2" || g.Entities.Path != "" || !g.FullFeatureNames || len(g.Features) != 1 || g.Actor == "" {
		t.Errorf("the service got %+v (a client path must never reach it)", g)
	}
	req.Output.Dataset = "missing"
	if _, err := c.TrainingSet(ctx, req); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("not found: %v", err)
	}

	// Without a feature store the route answers 501.
	mux = http.NewServeMux()
	api.New(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv2 := httptest.NewServer(mux)
	defer srv2.Close()
	c2, _ := client.New(srv2.URL, nil)
	if _, err := c2.TrainingSet(ctx, req); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("no feature store: %v", err)
	}
}
