package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/serving"

	// The runtime backends `kiln serve` can load.
	_ "github.com/kiln-ml/kiln/runtime/lightgbm"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	_ "github.com/kiln-ml/kiln/runtime/python"
	_ "github.com/kiln-ml/kiln/runtime/xgboost"
)

type serveFlags struct {
	addr, grpcAddr  string
	name            string
	backend         string
	trackingURI     string
	maxBatchSize    int
	maxBatchDelay   time.Duration
	maxBodySize     byteSize
	shutdownTimeout time.Duration
	python          string
	pythonWorkers   int
	logLevel        string
	logFormat       string
}

func newServeCmd() *cobra.Command {
	f := serveFlags{maxBodySize: serving.DefaultMaxBodySize}
	cmd := &cobra.Command{
		Use:   "serve MODEL_URI",
		Short: "Serve one model over the Open Inference Protocol (REST and gRPC) and MLflow's /invocations",
		Long: `Serve one model, like 'mlflow models serve', natively in Go.

MODEL_URI is a model file (model.onnx; an XGBoost .json/.ubj; a LightGBM
.txt), an MLflow model directory (with an MLmodel file), or, through the
tracking server at --tracking-uri, runs:/RUN_ID/PATH, models:/NAME/VERSION,
models:/NAME@ALIAS, models:/NAME/STAGE or models:/m-ID.

Endpoints on --addr:
  Open Inference Protocol v2:  GET /v2, /v2/health/live, /v2/health/ready,
      /v2/models/NAME[/versions/V][/ready], POST /v2/models/NAME[/versions/V]/infer
      (with the binary tensor data extension), POST /v2/repository/index
  MLflow scoring:  POST /invocations, GET /ping, /health, /version
  Prometheus:      GET /metrics
and GRPCInferenceService (tritonclient.grpc) on --grpc-addr.`,
		Example: `  kiln serve ./iris.onnx
  kiln serve ./mlruns/1/models/m-4f.../artifacts --name iris
  MLFLOW_TRACKING_URI=http://127.0.0.1:5000 kiln serve models:/churn@champion \
      --max-batch-size 64 --max-batch-delay 2ms`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.trackingURI == "" {
				f.trackingURI = os.Getenv("KILN_URL")
			}
			if f.trackingURI == "" {
				f.trackingURI = os.Getenv("MLFLOW_TRACKING_URI")
			}
			log := newLogger(config.Log{Level: f.logLevel, Format: f.logFormat})
			return runServe(cmd.Context(), args[0], f, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "HTTP address (Open Inference Protocol REST, /invocations, /metrics)")
	fl.StringVar(&f.grpcAddr, "grpc-addr", "127.0.0.1:8081", `gRPC address (GRPCInferenceService); "" disables gRPC`)
	fl.StringVar(&f.name, "name", "", "model name clients use (default: the registered model's name, else the file or directory name)")
	fl.StringVar(&f.backend, "backend", "", "runtime backend to load the model with, instead of the one its flavor or file picks (onnx, xgboost, lightgbm, python, ...)")
	fl.StringVar(&f.trackingURI, "tracking-uri", "", "tracking server for runs:/ and models:/ URIs (default $KILN_URL, else $MLFLOW_TRACKING_URI)")
	fl.IntVar(&f.maxBatchSize, "max-batch-size", 0, "adaptive batching: the most rows joined into one prediction (0 or 1: off)")
	fl.DurationVar(&f.maxBatchDelay, "max-batch-delay", time.Millisecond, "adaptive batching: the longest a request waits for others (only with --max-batch-size > 1)")
	fl.Var(&f.maxBodySize, "max-body-size", "request body limit, in bytes or with a unit (64MiB, 512KiB); also the gRPC message limit")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on shutdown")
	fl.StringVar(&f.python, "python", "", "Python interpreter for pyfunc models (default: python3 on PATH)")
	fl.IntVar(&f.pythonWorkers, "python-workers", 0, "worker processes for pyfunc models (default 1)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func runServe(ctx context.Context, uri string, f serveFlags, log *slog.Logger) error {
	if f.maxBatchSize < 0 || f.maxBatchDelay < 0 {
		return errors.New("--max-batch-size and --max-batch-delay must not be negative")
	}
	start := time.Now()
	m, err := loadServeModel(ctx, uri, f, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := m.Runtime.Close(); err != nil {
			log.Warn("closing the model", "err", err)
		}
	}()
	sig := m.Runtime.Signature()
	log.Info("model loaded", "name", m.Name, "version", m.Version, "platform", m.Platform,
		"inputs", specNames(sig.Inputs), "outputs", specNames(sig.Outputs), "took", time.Since(start).Round(time.Microsecond))

	repo, err := serving.NewStatic(m)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := serving.Options{
		MaxBodySize:   int64(f.maxBodySize),
		ServerVersion: version,
	}
	if f.maxBatchSize > 1 {
		opts.MaxBatchSize, opts.MaxBatchDelay = f.maxBatchSize, f.maxBatchDelay
	}
	srv, err := serving.New(repo, log, reg, opts)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("serving", "model", m.Name, "http", "http://"+ln.Addr().String(), "batching", opts.MaxBatchSize > 1)

	var gs *grpc.Server
	if f.grpcAddr != "" {
		gln, err := net.Listen("tcp", f.grpcAddr)
		if err != nil {
			hs.Close()
			return fmt.Errorf("listen (gRPC): %w", err)
		}
		gs = grpc.NewServer(grpc.MaxRecvMsgSize(srv.GRPCMaxMessageSize()), grpc.MaxSendMsgSize(srv.GRPCMaxMessageSize()))
		srv.RegisterGRPC(gs)
		go func() { errc <- gs.Serve(gln) }()
		log.Info("serving gRPC", "addr", gln.Addr().String())
	}

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests", "timeout", f.shutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
	defer cancel()
	if gs != nil {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-sctx.Done():
			gs.Stop()
		}
	}
	if err := hs.Shutdown(sctx); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	if errors.Is(serveErr, http.ErrServerClosed) || errors.Is(serveErr, grpc.ErrServerStopped) {
		serveErr = nil
	}
	return serveErr
}

// loadServeModel loads uri: a bare model file by its extension, anything
// else (MLflow model directories, runs:/, models:/) through model.Open.
func loadServeModel(ctx context.Context, uri string, f serveFlags, log *slog.Logger) (*serving.Model, error) {
	if st, err := os.Stat(uri); err == nil && st.Mode().IsRegular() && filepath.Base(uri) != model.MLmodelFile {
		backend := f.backend
		if backend == "" {
			if backend = backendForFile(uri); backend == "" {
				return nil, fmt.Errorf("%s: cannot tell the model format from the extension %q (want .onnx, .json, .ubj, .txt; or pass --backend)", uri, filepath.Ext(uri))
			}
		}
		rm, err := runtime.Load(ctx, backend, runtime.Source{Path: uri})
		if err != nil {
			return nil, fmt.Errorf("load %s with runtime %q: %w", uri, backend, err)
		}
		name := f.name
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(uri), filepath.Ext(uri))
		}
		return &serving.Model{Name: name, Platform: platform(backend, uri), Runtime: rm}, nil
	}

	opts := model.OpenOptions{Backend: f.backend}
	if f.python != "" || f.pythonWorkers > 0 {
		opts.Options = map[string]any{}
		if f.python != "" {
			py := f.python
			if strings.ContainsRune(py, filepath.Separator) {
				// The workers run in the model directory.
				if abs, err := filepath.Abs(py); err == nil {
					py = abs
				}
			}
			opts.Options["python"] = py
		}
		if f.pythonWorkers > 0 {
			opts.Options["workers"] = f.pythonWorkers
		}
	}
	if f.trackingURI != "" {
		r, err := model.NewRemoteResolver(f.trackingURI, model.RemoteOptions{
			Username: os.Getenv("MLFLOW_TRACKING_USERNAME"),
			Password: os.Getenv("MLFLOW_TRACKING_PASSWORD"),
			Token:    os.Getenv("MLFLOW_TRACKING_TOKEN"),
		})
		if err != nil {
			return nil, err
		}
		opts.Resolver = r
	}
	loaded, err := model.Open(ctx, uri, opts)
	if err != nil {
		if f.trackingURI == "" && (strings.HasPrefix(uri, "runs:") || strings.HasPrefix(uri, "models:")) {
			return nil, fmt.Errorf("%w (set --tracking-uri, $KILN_URL or $MLFLOW_TRACKING_URI to resolve %s)", err, uri)
		}
		return nil, err
	}
	b := loaded.Bundle
	m := &serving.Model{
		Name:         f.name,
		Platform:     platform(b.Backend, b.Source.Path),
		Runtime:      loaded.Model,
		Signature:    b.Signature,
		InputExample: b.InputExample,
	}
	if res := b.Resolved; res != nil && res.Name != "" {
		if m.Name == "" {
			m.Name = res.Name
		}
		if res.Version > 0 {
			m.Version = strconv.FormatInt(res.Version, 10)
		}
	}
	if m.Name == "" {
		m.Name = defaultModelName(uri, b.Dir)
	}
	log.Debug("model bundle", "dir", b.Dir, "backend", b.Backend, "signature", b.Signature != nil)
	return m, nil
}

// backendForFile picks the runtime backend of a bare model file.
func backendForFile(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".onnx":
		return model.BackendONNX
	case ".json", ".ubj", ".xgb":
		return model.BackendXGBoost
	case ".txt", ".lgb":
		return model.BackendLightGBM
	}
	return ""
}

// platform is the Open Inference Protocol platform string of a backend.
func platform(backend, path string) string {
	switch backend {
	case model.BackendONNX, model.BackendORT:
		return "onnx_onnxv1"
	case model.BackendXGBoost:
		if strings.EqualFold(filepath.Ext(path), ".ubj") {
			return "xgboost_ubj"
		}
		return "xgboost_json"
	case model.BackendLightGBM:
		return "lightgbm_text"
	case model.BackendPython:
		return "mlflow_pyfunc"
	}
	return backend
}

// defaultModelName names a model after its URI: the last meaningful path
// segment (a run's artifact path, a directory name), never "artifacts".
func defaultModelName(uri, dir string) string {
	for _, p := range []string{strings.TrimRight(uri, "/"), dir} {
		p = strings.TrimPrefix(strings.TrimPrefix(p, "runs:/"), "file://")
		segs := strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator })
		for i := len(segs) - 1; i >= 0; i-- {
			if s := segs[i]; s != "artifacts" && s != "." && s != ".." && s != "" {
				return s
			}
		}
	}
	return "model"
}

func specNames(specs []runtime.TensorSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = fmt.Sprintf("%s %v %v", s.Name, s.DType, s.Shape)
	}
	return out
}

// byteSize is a flag value of bytes, with an optional unit.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q (want a positive number of bytes, e.g. 67108864 or 64MiB)", s)
	}
	*b = byteSize(n * mult)
	return nil
}
