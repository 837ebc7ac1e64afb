// Package server assembles Kiln's subsystems into one process: it opens the
// metadata store and the artifact store, mounts every wire layer (MLflow's
// REST API, Kiln's /api/v1, with runs' MLflow dataset inputs linked to
// dataset versions; deployed endpoints over the Open Inference Protocol
// under /v2 and on a gRPC address, and /endpoints/{e}/invocations) on one HTTP
// mux with common middleware (request ids, panic recovery, Prometheus
// metrics, access logs) and shuts down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/approval"
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/mlflowapi"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/monitor/feedback"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/trigger"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/score"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
	"github.com/kiln-ml/kiln/ui"
)

// Server is a running Kiln process.
type Server struct {
	cfg         config.Config
	log         *slog.Logger
	db          *store.DB
	artifacts   *blob.Bucket
	tracking    *tracking.Store
	scoreJobs   *score.Jobs
	deploy      *deploy.Manager // deployed endpoints
	inference   *serving.Server // serves the endpoints (REST and gRPC)
	predlog     *predlog.Log    // the endpoints' prediction log; nil when disabled
	alerts      *alert.Engine   // alert states and notifications
	monitors    *monitor.Service
	pipelines   *pipeline.Service // pipeline runs and their steps
	openlineage *lineage.Emitter  // OpenLineage events of pipeline runs, if configured
	triggers    *trigger.Service  // the pipelines' schedules and triggers
	features    *feature.Service  // the feature store (server/features.go)
	handler     http.Handler
	access      *accessParts
	tls         *tls.Config // nil: plain HTTP
	// mux and inferenceMux hold the routes (inference: /v2… and
	// /endpoints/{e}/invocations; mux: everything else).
	mux, inferenceMux *routeMux
}

// Routes returns every route pattern the server serves, sorted: the
// inference routes and the rest.
func (s *Server) Routes() []string {
	return slices.Sorted(slices.Values(append(s.inferenceMux.Patterns(), s.mux.Patterns()...)))
}

// New opens the stores named in cfg and builds the HTTP handler.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	db, err := store.Open(ctx, cfg.Store.URL)
	if err != nil {
		return nil, err
	}
	blobOpts := blob.Options{
		S3Endpoint:  cfg.Artifacts.S3Endpoint,
		S3Region:    cfg.Artifacts.S3Region,
		S3PathStyle: cfg.Artifacts.S3PathStyle,
	}
	bucket, err := blob.Open(ctx, cfg.Artifacts.URL, blobOpts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	s := &Server{cfg: cfg, log: log, db: db, artifacts: bucket}
	acc, err := newAccess(ctx, cfg, db, log)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.access = acc
	if s.tls, err = loadTLS(cfg.Server); err != nil {
		s.Close()
		return nil, err
	}

	datasets := dataset.NewStore(db)
	if s.features, err = newFeatures(ctx, cfg, db, datasets, dataset.NewBucketRemote(bucket), blobOpts, log); err != nil {
		s.Close()
		return nil, err
	}
	trk := tracking.New(db, tracking.Options{InputsLogged: linkInputs(datasets, log)})
	s.tracking = trk
	reg := registry.New(db, trk)
	modelCache := filepath.Join(os.TempDir(), "kiln-models")
	if d, err := model.DefaultCacheDir(); err == nil {
		modelCache = d
	}
	gates := gate.NewService(gate.ServiceOptions{
		Store: gate.NewStore(db), Registry: reg, Resolver: model.NewStoreResolver(trk, reg, bucket, modelCache),
		Datasets: datasets, Content: dataset.NewBucketRemote(bucket), Artifacts: bucket,
		SourceOptions: blobOpts, SourceSchemes: api.DefaultSourceSchemes, Logger: log,
	})
	// Protected aliases need a passing gate result and, where an approval
	// policy says so, enough approvals.
	approvals := approval.NewService(db)
	reg.SetAliasGuard(guards{gates, approvals})
	s.scoreJobs = score.NewJobs(score.JobsDeps{DB: db, Models: model.NewStoreResolver(trk, reg, bucket, modelCache), Artifacts: bucket,
		Datasets: datasets, Content: dataset.NewBucketRemote(bucket), SourceOptions: blobOpts, Logger: log}, score.JobsOptions{})

	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := newHTTPMetrics(reg2)

	// Deployed endpoints: the Manager routes, and one serving stack over
	// it answers the Open Inference Protocol and /invocations.
	endpointCache := cfg.Deploy.ModelCacheDir
	if endpointCache == "" {
		endpointCache = modelCache
	}
	// Ground truth joined to the prediction log (labels, performance,
	// the quality bound of canary analysis).
	logIndex := predlog.NewIndex(db)
	fb := feedback.NewService(feedback.NewStore(db), predlog.NewReader(logIndex, bucket))
	s.deploy, err = deploy.NewManager(db, reg, model.NewStoreResolver(trk, reg, bucket, endpointCache), deploy.ManagerOptions{
		Logger: log, Registerer: reg2, MemoryBudget: int64(cfg.Deploy.ModelMemory), CacheDir: endpointCache, Guard: guards{gates, approvals},
		Quality: fb, ModelName: acc.endpointModel(),
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.deploy.SetFeatures(s.features) // endpoints with spec.features look them up online
	// Every answered request reaches the deploy Manager (route statistics,
	// shadow mirroring) and then the prediction log.
	var observer serving.Observer = s.deploy
	var predictions api.Predictions
	bounds := &monitor.LateBounds{} // the monitors' outlier bounds, once their Service exists
	if pl := cfg.Monitor.PredictionLog; !pl.Disabled {
		dir := pl.Dir
		if dir == "" {
			dir = filepath.Join(filepath.Dir(filepath.Clean(endpointCache)), "predlog")
		}
		retention := pl.Retention
		if retention == 0 {
			retention = -1 // forever
		}
		s.predlog, err = predlog.Open(ctx, predlog.Options{
			Dir: dir, Bucket: bucket, DB: db, FsyncInterval: pl.FsyncInterval, SegmentMaxAge: pl.SegmentMaxAge,
			SegmentMaxBytes: int64(pl.SegmentMaxBytes), Retention: retention, Settings: s.deploy, Logger: log, Registerer: reg2,
			Bounds: bounds,
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open prediction log: %w", err)
		}
		observer = observers{s.deploy, s.predlog}
		predictions = predlog.NewService(s.predlog)
	}
	// Monitors: evaluated on their schedules against the log's summaries,
	// feeding the alert engine (its notifications reach webhooks).
	// A firing alert may start a pipeline run (the triggers, built below).
	hook := &lateHook{}
	s.alerts = alert.NewEngine(alert.EngineOptions{DB: db, Logger: log, Registerer: reg2, ExternalURL: externalURL(cfg.Server.Addr), Hook: hook,
		Client: acc.egress.Client(0)})
	mopts := monitor.ServiceOptions{
		DB: db, Index: monitor.SummariesOf(logIndex), Datasets: datasets, Endpoints: s.deploy,
		Feedback: monitor.PerformanceOf(fb), Alerts: s.alerts, Registerer: reg2, Logger: log,
	}
	if s.predlog != nil {
		mopts.Log = s.predlog
	}
	s.monitors, err = monitor.NewService(mopts)
	if err != nil {
		s.Close()
		return nil, err
	}
	bounds.Set(s.monitors)
	stepEnv, err := acc.pipelineToken(ctx, log)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pipeline service account: %w", err)
	}
	var observer2 pipeline.Observer
	if lc := cfg.Lineage; lc.OpenLineageURL != "" || lc.OpenLineageFile != "" {
		s.openlineage, err = lineage.NewEmitter(lineage.EmitterOptions{URL: lc.OpenLineageURL, File: lc.OpenLineageFile,
			APIKey: lc.OpenLineageAPIKey, Namespace: lc.OpenLineageNamespace, DatasetNamespace: datasetNamespace(cfg), Logger: log})
		if err != nil {
			s.Close()
			return nil, err
		}
		observer2 = s.openlineage
		log.Info("OpenLineage events on", "url", lc.OpenLineageURL, "file", lc.OpenLineageFile)
	}
	s.pipelines, s.triggers, err = newPipelines(pipelineDeps{cfg: cfg, db: db, tracking: trk, registry: reg, datasets: datasets,
		artifacts: bucket, reg: reg2, log: log, stepEnv: stepEnv, observer: observer2})
	if err != nil {
		s.Close()
		return nil, err
	}
	hook.set(s.triggers)
	s.inference, err = serving.New(s.deploy, log, reg2, serving.Options{Observer: observer, NoMetricsEndpoint: true})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.deploy.SetServer(s.inference)
	inference := newRouteMux()
	inference.Handle("/v2", s.inference.Handler())
	inference.Handle("/v2/", s.inference.Handler())
	inference.Handle("POST /endpoints/{endpoint}/invocations",
		s.inference.InvocationsHandlerFunc(func(r *http.Request) string { return r.PathValue("endpoint") }))

	mux := newRouteMux()
	mlflowapi.New(mlflowapi.Deps{Tracking: trk, Registry: reg, Artifacts: bucket, Logger: log}).Register(mux)
	api.New(api.Deps{
		Datasets: datasets, Content: dataset.NewBucketRemote(bucket), Tracking: trk,
		SourceOptions: blobOpts, Gates: gates, ScoreJobs: s.scoreJobs, Endpoints: s.deploy, Predictions: predictions, Feedback: fb, Monitors: s.monitors,
		Pipelines: s.pipelines, Triggers: s.triggers, Logger: log,
		Access: &api.Access{Users: acc.users, Auth: acc.auth, Audit: acc.audit, Secure: tlsOn(cfg), OIDC: acc.oidc}, Approvals: approvals,
		Lineage: &lineage.Stores{Datasets: datasets, Tracking: trk, Registry: reg, Endpoints: s.deploy, Monitors: s.monitors, Pipelines: s.pipelines,
			Visible: func(ctx context.Context, rt, name string) bool {
				return access.Visible(ctx, access.ResourceType(rt), name)
			}},
		ModelCards: &lineage.Cards{Registry: reg, Tracking: trk, Datasets: datasets, Gates: gates, Endpoints: s.deploy, Monitors: s.monitors, Artifacts: bucket},
		Registry:   reg,
		Features:   s.features, TrainingSets: s.features,
	}).Register(mux)
	// SHAP explanations of what an endpoint's primary route answers.
	mux.Handle("POST /endpoints/{endpoint}/explain", explain.NewHandler(s.deploy.Lookup, log))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg2, promhttp.HandlerOpts{}))
	// The web UI (embedded files; its pages call the APIs above).
	webUI, err := ui.New()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("web UI: %w", err)
	}
	mux.Handle("GET /ui", webUI)
	mux.Handle("GET /ui/{path...}", webUI)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// A browser goes to the UI; anything else gets a line of text.
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, ui.Prefix, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Kiln is running.\nPoint the MLflow client at it: MLFLOW_TRACKING_URI=http://%s\nThe web UI: http://%s/ui/\n", r.Host, r.Host)
	})
	s.mux, s.inferenceMux = mux, inference
	// Access control sees every request: inference (which has its own
	// error formats and metrics) and the rest, inside the request id.
	s.handler = securityHeaders(splitInference(acc.middleware(inference, trk, log), withMiddleware(acc.middleware(mux, trk, log), log, metrics)), tlsOn(cfg))
	return s, nil
}

// splitInference sends inference requests (/v2…, /endpoints/{e}/invocations)
// straight to the serving stack, which has its own metrics, panic
// recovery and error formats, and everything else through rest.
func splitInference(inference, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/v2" || strings.HasPrefix(p, "/v2/") ||
			(strings.HasPrefix(p, "/endpoints/") && strings.HasSuffix(p, "/invocations")) {
			inference.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured address and serves until ctx is cancelled,
// then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Server.Addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled. On cancellation it stops
// accepting connections, lets in-flight requests finish (up to the
// configured shutdown timeout) and closes the stores cleanly.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	scheme := "http://"
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
		scheme = "https://"
	}
	s.log.Info("kiln server listening", "addr", scheme+ln.Addr().String(),
		"db", redactURL(s.cfg.Store.URL), "artifacts", s.cfg.Artifacts.URL)
	var gs *grpc.Server
	var gln net.Listener
	if addr := s.cfg.Deploy.GRPCAddr; addr != "" {
		var err error
		// A busy gRPC address does not stop the server (REST serves the
		// same endpoints); it is logged as an error.
		if gln, err = net.Listen("tcp", addr); err != nil {
			s.log.Error("gRPC inference disabled: cannot listen (set --grpc-addr to another address, or \"\" to disable it)", "addr", addr, "err", err)
		} else {
			opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(s.inference.GRPCMaxMessageSize()), grpc.MaxSendMsgSize(s.inference.GRPCMaxMessageSize()),
				grpc.UnaryInterceptor(access.UnaryInterceptor(s.access.auth, s.access.owners))}
			if s.tls != nil {
				opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
			}
			gs = grpc.NewServer(opts...)
			s.inference.RegisterGRPC(gs)
			s.log.Info("endpoints listening on gRPC", "addr", gln.Addr().String())
		}
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if gs != nil {
		go func() {
			if err := gs.Serve(gln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("gRPC: %w", err)
			}
		}()
	}
	deployDone := make(chan struct{})
	go func() {
		defer close(deployDone)
		s.deploy.Run(ctx) // the rollout controller
	}()
	s.monitors.Start(ctx) // the monitors' scheduler; stopped in Close
	compactDone := make(chan struct{})
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		s.scoreJobs.Run(ctx) // on shutdown, running jobs go back to the queue
	}()
	go func() {
		defer close(compactDone)
		s.compactLoop(ctx)
	}()
	// Pipeline steps, schedules and triggers; on shutdown running steps
	// are stopped and go back to the queue.
	pipelinesDone := make(chan struct{}, 2)
	nLoops := 0
	if !s.cfg.Pipeline.Disabled {
		nLoops = 2
		go func() {
			defer func() { pipelinesDone <- struct{}{} }()
			if err := s.pipelines.Run(ctx); err != nil {
				s.log.Error("pipeline engine stopped", "err", err)
			}
		}()
		go func() {
			defer func() { pipelinesDone <- struct{}{} }()
			if err := s.triggers.Run(ctx); err != nil {
				s.log.Error("pipeline triggers stopped", "err", err)
			}
		}()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down: finishing in-flight requests", "timeout", s.cfg.Server.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Server.ShutdownTimeout)
		if gs != nil {
			done := make(chan struct{})
			go func() { gs.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-sctx.Done():
				gs.Stop()
			}
		}
		serveErr = srv.Shutdown(sctx)
		cancel()
		<-errc
	}
	if gs != nil {
		gs.Stop()
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	<-compactDone
	for range nLoops {
		<-pipelinesDone
	}
	<-jobsDone
	<-deployDone
	return errors.Join(serveErr, s.Close())
}

// compactLoop moves newly logged metric values into the metric history
// every second, and once more on shutdown.
func (s *Server) compactLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if _, err := s.tracking.CompactMetrics(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("final metric compaction failed (values stay readable)", "err", err)
			}
			return
		case <-t.C:
			if _, err := s.tracking.CompactMetrics(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("metric compaction failed (values stay readable)", "err", err)
			}
		}
	}
}

// observers calls each Observer in turn.
type observers []serving.Observer

func (o observers) Observe(ctx context.Context, c *serving.Call) {
	for _, x := range o {
		x.Observe(ctx, c)
	}
}

// Close closes the prediction log (shipping what it holds) and the
// stores; call it after the servers stopped.
func (s *Server) Close() error {
	var logErr error
	if s.monitors != nil {
		s.monitors.Stop()
	}
	if s.alerts != nil {
		s.alerts.Close()
	}
	if s.predlog != nil {
		logErr = s.predlog.Close() // segments it cannot ship stay on disk for the next start
	}
	if s.deploy != nil {
		s.deploy.Close() // the endpoints' models
	}
	if s.openlineage != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.openlineage.Close(ctx); err != nil {
			s.log.Warn("OpenLineage events not all sent on shutdown", "err", err)
		}
		cancel()
	}
	var featErr error
	if s.features != nil {
		featErr = s.features.OnlineStore.Close()
	}
	err := errors.Join(featErr, s.artifacts.Close(), s.db.Close())
	if err == nil {
		s.log.Info("stores closed cleanly")
	}
	if logErr != nil {
		s.log.Warn("prediction log not fully shipped on shutdown", "err", logErr)
	}
	return err
}

// externalURL is the server's base URL in alert notifications.
func externalURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// datasetNamespace is the OpenLineage namespace of this server's datasets
// and models: kiln://HOST:PORT of its external URL.
func datasetNamespace(cfg config.Config) string {
	u := cfg.Pipeline.ExternalURL
	if u == "" {
		u = externalURL(cfg.Server.Addr)
	}
	if _, rest, ok := strings.Cut(u, "://"); ok {
		u = rest
	}
	return "kiln://" + strings.TrimSuffix(u, "/")
}
