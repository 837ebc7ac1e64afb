package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/feature"
)

type cliTrainingSets struct{ got feature.TrainingSetRequest }

func (f *cliTrainingSets) TrainingSet(_ context.Context, req feature.TrainingSetRequest) (*dataset.Version, error) {
	f.got = req
	return &dataset.Version{Dataset: req.Output.Dataset, Version: 1, Parent: &dataset.VersionRef{Dataset: "ents", Version: 4},
		Tags: map[string]string{feature.TagTrainingRows: "10", feature.TagViewPrefix + "stats": "2",
			feature.TagSourcePrefix + "stats": "stats@7", feature.TagMatchedPrefix + "stats": "6"}}, nil
}

func TestFeatureTrainingSetCmd(t *testing.T) {
	fake := &cliTrainingSets{}
	mux := http.NewServeMux()
	api.New(api.Deps{TrainingSets: fake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	run := func(args ...string) (string, error) {
		var cf clientFlags
		parent := &cobra.Command{Use: "feature"}
		cf.register(parent)
		parent.AddCommand(newFeatureTrainingSetCmd(&cf))
		var out bytes.Buffer
		parent.SetOut(&out)
		parent.SetErr(io.Discard)
		parent.SetArgs(append([]string{"training-set", "--server", srv.URL}, args...))
		err := parent.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("--entities", "ents@4", "--features", "stats:a,stats:b", "--features", "other:c", "--output", "train", "--full-feature-names")
	if err != nil {
		t.Fatal(err)
	}
	g := fake.got
	if g.Entities.Dataset != "ents@4" || strings.Join(g.Features, " ") != "stats:a stats:b other:c" || g.Output.Dataset != "train" || !g.FullFeatureNames {
		t.Errorf("request %+v", g)
	}
	for _, want := range []string{"train@1", "ents@4", "stats@2", "source stats@7", "matched 6 rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = run("--entities", "ents@4", "--features", "stats:a", "--output", "train", "--format", "json")
	var v dataset.Version
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Dataset != "train" {
		t.Errorf("json: %v %q", err, out)
	}
	if _, err := run("--features", "stats:a", "--output", "train"); err == nil || !strings.Contains(err.Error(), "--entities") {
		t.Errorf("missing --entities: %v", err)
	}
}
