package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/kube"
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
	// observer hears of pipeline runs and steps starting and ending (the
	// OpenLineage emitter), if set.
	observer pipeline.Observer
	// stepEnv is added to the environment of local steps (the pipeline
	// service account's token when access control is on).
	stepEnv []string
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
		"local": local.New(local.Options{Parallelism: pc.Parallelism, WorkDir: pc.WorkDir, Stager: stager, Logger: d.log, BaseEnv: baseEnv(d.stepEnv)}),
	}
	if pc.Kubernetes.Enabled {
		kx, err := newKubeExecutor(pc.Kubernetes, url, stager, d.log)
		if err != nil {
			return nil, nil, err
		}
		execs[pipeline.ExecutorKubernetes] = kx
	}
	ps, err := pipeline.NewService(pipeline.ServiceOptions{
		DB: d.db, Tracking: d.tracking, Artifacts: d.artifacts, Datasets: d.datasets, Stager: stager,
		Executors: execs, ExternalURL: url, LeaseTTL: pc.LeaseTTL, Logger: d.log, Registerer: d.reg, Observer: d.observer,
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

// newKubeExecutor builds the Kubernetes executor: the cluster from the
// kubeconfig file named in the configuration, else the in-cluster
// configuration (the server runs in a pod), else $KUBECONFIG or
// ~/.kube/config. Nothing is asked of the cluster until a step runs.
func newKubeExecutor(kc config.Kubernetes, externalURL string, stager pipeline.Stager, log *slog.Logger) (*kube.Executor, error) {
	rc, where, err := kubeRESTConfig(kc.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes executor: %w", err)
	}
	cs, err := kube.NewAPI(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes executor: a client of %s: %w", where, err)
	}
	if kc.ServerURL == "" && isLoopbackURL(externalURL) {
		log.Warn("Kubernetes step pods call the server back at a loopback URL, which they cannot reach: set pipeline.kubernetes.server_url (--kubernetes-server-url) or pipeline.external_url",
			"url", externalURL)
	}
	x, err := kube.New(kube.Options{Client: cs, Namespace: kc.Namespace, KilnImage: kc.KilnImage, DefaultImage: kc.DefaultImage,
		ServerURL: kc.ServerURL, ServiceAccount: kc.ServiceAccount, TokenSecret: kc.TokenSecret, Stager: stager, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("Kubernetes executor on", "cluster", where, "host", rc.Host, "namespace", kc.Namespace, "kiln_image", kc.KilnImage)
	return x, nil
}

// kubeRESTConfig finds the cluster: path, else in-cluster, else the
// default kubeconfig loading rules ($KUBECONFIG, ~/.kube/config).
func kubeRESTConfig(path string) (*rest.Config, string, error) {
	if path != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return rc, "kubeconfig " + path, nil
	}
	rc, err := rest.InClusterConfig()
	if err == nil {
		return rc, "in-cluster", nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, "", fmt.Errorf("in-cluster configuration: %w", err)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rc, kerr := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if kerr != nil {
		return nil, "", fmt.Errorf("not in a cluster and no usable kubeconfig (set pipeline.kubernetes.kubeconfig or $KUBECONFIG): %w", kerr)
	}
	return rc, "the default kubeconfig", nil
}

func isLoopbackURL(u string) bool {
	p, err := neturl.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
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

// baseEnv is this process's environment with extra on top (nil when
// there is nothing extra: the executor's default).
func baseEnv(extra []string) []string {
	if len(extra) == 0 {
		return nil
	}
	return append(os.Environ(), extra...)
}
