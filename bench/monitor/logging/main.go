// Command logging benchmarks the prediction log (monitor/predlog):
//
//   - sustained: W goroutines call (*predlog.Log).Observe at a fixed total
//     rate of predicted rows for a bounded time while segments roll and
//     ship concurrently; then Flush, and the rows read back from the
//     shipped Parquet must equal the rows observed (nothing lost). Reports
//     the achieved rate and Observe latency percentiles.
//
//   - serving: the same ONNX model served over the Open Inference
//     Protocol on loopback by the serving stack, once without an observer
//     and once with the prediction log as observer (full logging: inputs
//     and outputs), driven by a closed-loop load generator for a bounded
//     time per phase, phases alternating off/on; reports requests/s both
//     ways and the loss.
//
//     logging -sustained -rate 100000 -rows 10 -duration 10s
//     logging -serving -model runtime/onnx/testdata/models/skl_rf100_clf/model.onnx -duration 5s
//     logging -sustained -serving -json results.json -md results.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/runtime"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tensor"
)

// Sustained is the result of the sustained-logging run.
type Sustained struct {
	Workers         int     `json:"workers"`
	RowsPerRequest  int     `json:"rows_per_request"`
	Features        int     `json:"features"`
	TargetRowsPerS  float64 `json:"target_rows_per_s"`
	Seconds         float64 `json:"seconds"`
	Requests        int64   `json:"requests"`
	Rows            int64   `json:"rows_observed"`
	RowsPerS        float64 `json:"rows_per_s"`
	ObserveP50us    float64 `json:"observe_p50_us"`
	ObserveP99us    float64 `json:"observe_p99_us"`
	ObserveMaxus    float64 `json:"observe_max_us"`
	FlushSeconds    float64 `json:"flush_seconds"`
	Segments        int     `json:"segments"`
	RowsRead        int64   `json:"rows_read_back"`
	RequestsIndexed int64   `json:"requests_indexed"`
	Lost            int64   `json:"lost_rows"`
	ParquetBytes    int64   `json:"parquet_bytes"`
}

// ServingPhase is one load phase.
type ServingPhase struct {
	Logging  bool    `json:"logging"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P99ms    float64 `json:"p99_ms"`
	// CPUus is the process's CPU time (server, load generator and, when
	// on, the log's shipping) per request: steadier than RPS on a shared
	// machine.
	CPUus float64 `json:"cpu_us_per_request"`
}

// Serving compares throughput with logging off and on.
type Serving struct {
	Model       string         `json:"model"`
	Rows        int            `json:"rows_per_request"`
	Concurrency int            `json:"concurrency"`
	Phases      []ServingPhase `json:"phases"`
	OffRPS      float64        `json:"off_rps"` // median of the off phases
	OnRPS       float64        `json:"on_rps"`
	LossPct     float64        `json:"loss_pct"`
	// OffCPUus and OnCPUus are the medians of CPUus; CPULossPct is the
	// throughput loss they imply for a CPU-bound server, 1 − off/on.
	OffCPUus   float64 `json:"off_cpu_us_per_request"`
	OnCPUus    float64 `json:"on_cpu_us_per_request"`
	CPULossPct float64 `json:"cpu_loss_pct"`
	Logged     int64   `json:"requests_logged"`
}

var onlyPhases string

// Results is the whole run.
type Results struct {
	Date      string     `json:"date"`
	Cores     int        `json:"cores"`
	LoadAvg   string     `json:"load_avg_before"`
	Sustained *Sustained `json:"sustained,omitempty"`
	Serving   []Serving  `json:"serving,omitempty"`
}

func main() {
	var (
		doSustained = flag.Bool("sustained", false, "run the sustained-logging benchmark")
		doServing   = flag.Bool("serving", false, "run the serving benchmark (logging off vs on)")
		duration    = flag.Duration("duration", 10*time.Second, "sustained run")
		servDur     = flag.Duration("serving-duration", 5*time.Second, "each serving phase")
		rate        = flag.Float64("rate", 100000, "sustained: target predicted rows per second")
		rows        = flag.Int("rows", 10, "sustained: rows per request")
		features    = flag.Int("features", 10, "sustained: input features")
		workers     = flag.Int("workers", 8, "sustained: observing goroutines")
		modelPath   = flag.String("model", "runtime/onnx/testdata/models/skl_rf100_clf/model.onnx", "serving: ONNX model")
		servRows    = flag.String("serving-rows", "1,64", "serving: rows per request, comma-separated cases")
		conc        = flag.Int("concurrency", 8, "serving: closed-loop clients")
		phases      = flag.Int("phases", 2, "serving: off/on pairs per case")
		jsonOut     = flag.String("json", "", "write results JSON here")
		mdOut       = flag.String("md", "", "write a markdown table here")
		cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
		only        = flag.String("only", "", `serving: run only the "off" or "on" phases, or "noop": off phases with an observer that does nothing (profiling)`)
	)
	flag.Parse()
	onlyPhases = *only
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	res := Results{Date: time.Now().UTC().Format(time.RFC3339), Cores: numCPU(), LoadAvg: loadAvg()}
	ctx := context.Background()
	if *doSustained {
		s, err := sustained(ctx, *duration, *rate, *rows, *features, *workers)
		if err != nil {
			fail(err)
		}
		res.Sustained = s
		fmt.Fprintf(os.Stderr, "sustained: %.0f rows/s (target %.0f), p99 Observe %.1f µs, lost %d of %d\n", s.RowsPerS, s.TargetRowsPerS, s.ObserveP99us, s.Lost, s.Rows)
	}
	if *doServing {
		for _, r := range strings.Split(*servRows, ",") {
			var n int
			fmt.Sscan(r, &n)
			s, err := servingBench(ctx, *modelPath, n, *conc, *servDur, *phases)
			if err != nil {
				fail(err)
			}
			res.Serving = append(res.Serving, *s)
			fmt.Fprintf(os.Stderr, "serving %d rows: off %.0f req/s, on %.0f req/s, loss %.1f%%; CPU/request off %.0f µs, on %.0f µs, loss %.1f%%\n",
				n, s.OffRPS, s.OnRPS, s.LossPct, s.OffCPUus, s.OnCPUus, s.CPULossPct)
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fail(err)
		}
	}
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(markdown(res)), 0o644); err != nil {
			fail(err)
		}
	}
	if res.Sustained != nil && res.Sustained.Lost != 0 {
		pprof.StopCPUProfile()
		fail(fmt.Errorf("%d rows lost", res.Sustained.Lost))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "logging:", err)
	os.Exit(1)
}

type logEnv struct {
	dir    string
	db     *store.DB
	bucket *blob.Bucket
}

func newLogEnv(ctx context.Context) (*logEnv, error) {
	dir, err := os.MkdirTemp("", "kiln-predlog-bench-")
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "kiln.db"))
	if err != nil {
		return nil, err
	}
	b, err := blob.Open(ctx, "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		return nil, err
	}
	return &logEnv{dir: dir, db: db, bucket: b}, nil
}

func (e *logEnv) close() {
	e.bucket.Close()
	e.db.Close()
	os.RemoveAll(e.dir)
}

func (e *logEnv) open(ctx context.Context, segAge time.Duration) (*predlog.Log, error) {
	return predlog.Open(ctx, predlog.Options{Dir: filepath.Join(e.dir, "segments"), Bucket: e.bucket, DB: e.db,
		SegmentMaxAge: segAge, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

func sustained(ctx context.Context, d time.Duration, rate float64, rows, features, workers int) (*Sustained, error) {
	e, err := newLogEnv(ctx)
	if err != nil {
		return nil, err
	}
	defer e.close()
	// Segments roll every 2 s, so conversion and shipping run during the
	// measurement, as they do in a server.
	l, err := e.open(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	model := &serving.Model{Name: "bench", Version: "1", Route: "main", Source: "bench/1"}
	perWorker := rate / float64(rows) / float64(workers) // requests per second per worker
	interval := time.Duration(float64(time.Second) / perWorker)
	var wg sync.WaitGroup
	var requests atomic.Int64
	lats := make([][]float64, workers)
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			x := make([]float32, rows*features)
			for i := range x {
				x[i] = float32(i%97) / 7
			}
			in := &tensor.Tensor{Name: "input", DType: tensor.Float32, Shape: []int64{int64(rows), int64(features)}, Data: x}
			lab := &tensor.Tensor{Name: "label", DType: tensor.Int64, Shape: []int64{int64(rows)}, Data: make([]int64, rows)}
			prob := &tensor.Tensor{Name: "probabilities", DType: tensor.Float32, Shape: []int64{int64(rows), 2}, Data: make([]float32, 2*rows)}
			c := &serving.Call{Model: model, Protocol: "v2-rest", Inputs: []*tensor.Tensor{in}, Outputs: []*tensor.Tensor{lab, prob}, Status: 200, Duration: 300 * time.Microsecond}
			next := time.Now()
			local := make([]float64, 0, int(perWorker*d.Seconds())+16)
			for i := 0; ; i++ {
				now := time.Now()
				if now.After(end) {
					break
				}
				if wait := next.Sub(now); wait > 0 {
					time.Sleep(wait)
				}
				next = next.Add(interval)
				c.ID = fmt.Sprintf("w%d-%d", w, i)
				c.Start = time.Now()
				t0 := time.Now()
				l.Observe(ctx, c)
				local = append(local, float64(time.Since(t0).Nanoseconds())/1e3)
				requests.Add(1)
			}
			lats[w] = local
		}(w)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	t0 := time.Now()
	if err := l.Flush(ctx, "bench"); err != nil {
		return nil, err
	}
	flushSecs := time.Since(t0).Seconds()
	var all []float64
	for _, ls := range lats {
		all = append(all, ls...)
	}
	slices.Sort(all)
	s := &Sustained{Workers: workers, RowsPerRequest: rows, Features: features, TargetRowsPerS: rate, Seconds: secs,
		Requests: requests.Load(), Rows: requests.Load() * int64(rows), FlushSeconds: flushSecs,
		ObserveP50us: pct(all, 0.5), ObserveP99us: pct(all, 0.99), ObserveMaxus: pct(all, 1)}
	s.RowsPerS = float64(s.Rows) / secs
	segs, err := l.Index().Segments(ctx, "bench", time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	s.Segments = len(segs)
	for _, sg := range segs {
		s.RequestsIndexed += sg.Requests
		s.ParquetBytes += sg.SizeBytes
	}
	// Read every row back from the bucket, and count distinct ids.
	ids := map[string]bool{}
	err = predlog.NewReader(l.Index(), e.bucket).Scan(ctx, "bench", time.Time{}, time.Time{}, func(sc table.Schema, b *table.Batch) error {
		s.RowsRead += int64(b.Len)
		col := &b.Columns[sc.Index(predlog.ColRequestID)]
		for i := 0; i < b.Len; i++ {
			ids[string(col.Bytes(i))] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Lost = s.Rows - s.RowsRead
	if int64(len(ids)) != s.Requests {
		s.Lost += (s.Requests - int64(len(ids))) * int64(rows)
	}
	return s, nil
}

func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// noopObserver observes nothing: what an observer costs the serving
// stack by itself (request ids, the Call).
type noopObserver struct{}

func (noopObserver) Observe(context.Context, *serving.Call) {}

// countingObserver wraps the log to count what it saw.
type countingObserver struct {
	l *predlog.Log
	n atomic.Int64
}

func (c *countingObserver) Observe(ctx context.Context, call *serving.Call) {
	c.l.Observe(ctx, call)
	c.n.Add(1)
}

func servingBench(ctx context.Context, modelPath string, rows, conc int, d time.Duration, pairs int) (*Serving, error) {
	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: modelPath})
	if err != nil {
		return nil, err
	}
	sig := m.Signature()
	if len(sig.Inputs) != 1 || len(sig.Inputs[0].Shape) != 2 {
		return nil, fmt.Errorf("model %s: want one [N, F] input", modelPath)
	}
	in := sig.Inputs[0]
	width := int(in.Shape[1])
	data := make([]float32, rows*width)
	for i := range data {
		data[i] = float32(i%13)/3 - 2
	}
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": in.Name, "datatype": "FP32", "shape": []int{rows, width}, "data": data}}})
	e, err := newLogEnv(ctx)
	if err != nil {
		return nil, err
	}
	defer e.close()
	l, err := e.open(ctx, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	obs := &countingObserver{l: l}
	newServer := func(o serving.Observer) (string, func(), error) {
		repo, err := serving.NewStatic(&serving.Model{Name: "m", Version: "1", Source: "m/1", Runtime: m})
		if err != nil {
			return "", nil, err
		}
		srv, err := serving.New(repo, nil, nil, serving.Options{Observer: o, NoMetricsEndpoint: true})
		if err != nil {
			return "", nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		hs := &http.Server{Handler: srv.Handler()}
		go hs.Serve(ln)
		return "http://" + ln.Addr().String() + "/v2/models/m/infer", func() { hs.Close() }, nil
	}
	res := &Serving{Model: filepath.Base(filepath.Dir(modelPath)), Rows: rows, Concurrency: conc}
	var offs, ons, offCPU, onCPU []float64
	for p := 0; p < 2*pairs; p++ {
		logging := p%2 == 1
		if (onlyPhases == "on" && !logging) || ((onlyPhases == "off" || onlyPhases == "noop") && logging) {
			continue
		}
		var o serving.Observer
		if logging {
			o = obs
		}
		if onlyPhases == "noop" {
			o, logging = noopObserver{}, false
		}
		url, stop, err := newServer(o)
		if err != nil {
			return nil, err
		}
		if logging {
			// Ship what earlier phases left, outside the measurement.
			if err := l.Flush(ctx, ""); err != nil {
				return nil, err
			}
		}
		ph := load(url, body, conc, d, func() {
			if logging {
				// The shipping of this phase's records counts too.
				l.Flush(ctx, "")
			}
		})
		stop()
		ph.Logging = logging
		res.Phases = append(res.Phases, ph)
		if logging {
			ons, onCPU = append(ons, ph.RPS), append(onCPU, ph.CPUus)
		} else {
			offs, offCPU = append(offs, ph.RPS), append(offCPU, ph.CPUus)
		}
	}
	if onlyPhases != "" {
		return res, nil
	}
	res.OffRPS, res.OnRPS = median(offs), median(ons)
	res.LossPct = 100 * (1 - res.OnRPS/res.OffRPS)
	res.OffCPUus, res.OnCPUus = median(offCPU), median(onCPU)
	res.CPULossPct = 100 * (1 - res.OffCPUus/res.OnCPUus)
	if err := l.Flush(ctx, "m"); err != nil {
		return nil, err
	}
	segs, err := l.Index().Segments(ctx, "m", time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	for _, s := range segs {
		res.Logged += s.Requests
	}
	if res.Logged != obs.n.Load() {
		return nil, fmt.Errorf("serving: %d requests observed, %d logged", obs.n.Load(), res.Logged)
	}
	return res, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// load runs a closed loop of conc clients posting body to url for d.
func load(url string, body []byte, conc int, d time.Duration, after func()) ServingPhase {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	// Warm up.
	for i := 0; i < 50; i++ {
		if resp, err := hc.Post(url, "application/json", bytes.NewReader(body)); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	var wg sync.WaitGroup
	var n, errs atomic.Int64
	lats := make([][]float64, conc)
	cpu0 := cpuTime()
	start := time.Now()
	end := start.Add(d)
	for c := 0; c < conc; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				lats[c] = append(lats[c], float64(time.Since(t0).Microseconds())/1e3)
				n.Add(1)
			}
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	after()
	cpu := cpuTime() - cpu0
	var all []float64
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	return ServingPhase{Requests: n.Load(), Errors: errs.Load(), Seconds: secs, RPS: float64(n.Load()) / secs, P99ms: pct(all, 0.99),
		CPUus: cpu.Seconds() * 1e6 / float64(max(n.Load(), 1))}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func markdown(r Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Prediction-log benchmark\n\n%s, %d cores, load average before the run: %s.\n\n", r.Date, r.Cores, r.LoadAvg)
	if s := r.Sustained; s != nil {
		fmt.Fprintf(&b, "## Sustained logging\n\n%d goroutines call Observe at a target of %.0f predicted rows/s (%d rows × %d FP32 features a request, plus label and 2 probabilities), for %.1f s, while segments roll every 2 s and ship as Parquet.\n\n",
			s.Workers, s.TargetRowsPerS, s.RowsPerRequest, s.Features, s.Seconds)
		b.WriteString("| rows/s achieved | requests | rows observed | rows read back | lost | Observe p50 | p99 | max | flush after | segments | Parquet |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %.0f | %d | %d | %d | %d | %.1f µs | %.1f µs | %.0f µs | %.2f s | %d | %.1f MiB |\n\n",
			s.RowsPerS, s.Requests, s.Rows, s.RowsRead, s.Lost, s.ObserveP50us, s.ObserveP99us, s.ObserveMaxus, s.FlushSeconds, s.Segments, float64(s.ParquetBytes)/(1<<20))
	}
	if len(r.Serving) > 0 {
		b.WriteString("## Serving throughput, full logging off vs on\n\nThe serving stack (Open Inference Protocol REST, `/v2/models/m/infer`) over one ONNX model on loopback, a closed-loop load generator in the same process; phases alternate off/on, medians shown.\n\n")
		b.WriteString("CPU per request is the whole process's (server, load generator, and with logging on the log's conversion and shipping of that phase's records, flushed before the phase's CPU is read); its loss, 1 − off/on, is what a CPU-bound server loses, and is steadier than req/s on a shared machine.\n\n")
		b.WriteString("| model | rows/request | clients | off req/s | on req/s | loss (req/s) | off CPU/request | on CPU/request | loss (CPU) | off p99 | on p99 | requests logged |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.Serving {
			var offP, onP []float64
			for _, p := range s.Phases {
				if p.Logging {
					onP = append(onP, p.P99ms)
				} else {
					offP = append(offP, p.P99ms)
				}
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.0f | %.1f%% | %.0f µs | %.0f µs | %.1f%% | %.2f ms | %.2f ms | %d |\n",
				s.Model, s.Rows, s.Concurrency, s.OffRPS, s.OnRPS, s.LossPct, s.OffCPUus, s.OnCPUus, s.CPULossPct, median(offP), median(onP), s.Logged)
		}
	}
	return b.String()
}
