package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/server"
)

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Kiln server (tracking, registry, artifacts, deployed endpoints)",
		Long: `Run the Kiln server: MLflow-compatible tracking and model registry under
/api/2.0/mlflow, the mlflow-artifacts proxy, /health, /version and Prometheus
/metrics, all on one address.

It also serves the endpoints deployed with 'kiln apply -f endpoint.yaml':
the Open Inference Protocol at /v2/models/ENDPOINT/infer (and
/v2/models/ENDPOINT/versions/V/infer for one live version), MLflow scoring at
/endpoints/ENDPOINT/invocations, and GRPCInferenceService on --grpc-addr.
Endpoint models load once and are shared; least recently used ones are
evicted beyond --model-memory and reload from --model-cache.

Configuration comes from defaults < kiln.yaml (or --config) < KILN_* environment
variables < flags. With no configuration it stores metadata in
./kiln-data/kiln.db (SQLite) and artifacts in ./kiln-data/artifacts, and
listens on 127.0.0.1:5000.`,
		Example: `  kiln server
  kiln server --grpc-addr 127.0.0.1:5001 --model-memory 4GiB
  kiln server --addr 127.0.0.1:8080 --db postgres://kiln:secret@db:5432/kiln \
      --artifacts s3://ml-artifacts/kiln --s3-endpoint http://127.0.0.1:7070 --s3-path-style`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			srv, err := server.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	config.RegisterFlags(cmd.Flags())
	cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
