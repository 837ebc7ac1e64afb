package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/local"
	"github.com/kiln-ml/kiln/pipeline/trigger"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

// pipelineDeps are what the pipeline engine and its triggers are built
// from.
type pipelineDeps struct {
	cfg       config.Config
	db        *store.DB
	tracking  *tracking.Store
	registry  *registry.Store
	datasets  *dataset.Store
	artifacts *blob.Bucket
	reg       prometheus.Registerer
	log       *slog.Logger
}

// newPipelines builds the pipeline Service with its executors (local
// processes; Kubernetes Jobs when configured) and the schedules and
// triggers that start runs.
func newPipelines(d pipelineDeps) (*pipeline.Service, *trigger.Service, error) {
	pc := d.cfg.Pipeline
	url := pc.ExternalURL
	if url == "" {
		url = externalURL(d.cfg.Server.Addr)
	}
	stager := pipeline.NewBucketStager(d.artifacts, d.tracking, d.registry, d.datasets)
	execs := map[string]pipeline.Executor{
		"local": local.New(local.Options{Parallelism: pc.Parallelism, WorkDir: pc.WorkDir, Stager: stager, Logger: d.log}),
	}
	if pc.Kubernetes.Enabled {
		// The Kubernetes executor (package pipeline/kube) has not landed:
		// refuse the setting rather than fail every such step later.
		return nil, nil, fmt.Errorf("kubernetes executor: not available in this build (set pipeline.kubernetes.enabled to false)")
	}
	ps, err := pipeline.NewService(pipeline.ServiceOptions{
		DB: d.db, Tracking: d.tracking, Artifacts: d.artifacts, Datasets: d.datasets, Stager: stager,
		Executors: execs, ExternalURL: url, LeaseTTL: pc.LeaseTTL, Logger: d.log, Registerer: d.reg,
	})
	if err != nil {
		return nil, nil, err
	}
	ts, err := trigger.NewService(trigger.Options{DB: d.db, Runner: ps, Datasets: d.datasets, Registry: d.registry,
		LeaseTTL: pc.LeaseTTL, Logger: d.log, Registerer: d.reg})
	if err != nil {
		return nil, nil, err
	}
	return ps, ts, nil
}

// lateHook is the alert engine's Hook, bound to the triggers once they
// exist (the engine is built first: the monitors need it).
type lateHook struct {
	mu   sync.Mutex
	hook alert.Hook
}

func (h *lateHook) set(x alert.Hook) {
	h.mu.Lock()
	h.hook = x
	h.mu.Unlock()
}

// AlertFiring passes the alert on to the triggers (also on a server that
// runs no steps: the run it starts is stored, and other servers run it).
func (h *lateHook) AlertFiring(ctx context.Context, a alert.Alert) error {
	h.mu.Lock()
	x := h.hook
	h.mu.Unlock()
	if x == nil {
		return nil
	}
	return x.AlertFiring(ctx, a)
}
