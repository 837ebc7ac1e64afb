// Command serving is the load generator of the serving benchmark. It posts
// one fixed request body to an inference endpoint, first in a closed loop
// (N clients, each sending its next request when the last one returns) to
// find the peak throughput, then in an open loop at a fixed arrival rate
// of half that peak, and reports throughput and latency percentiles. The
// same binary also serves the ceiling (a trivial HTTP handler), times the
// in-process load of an ONNX model, and renders the results table.
//
//	serving -url http://127.0.0.1:8080/invocations -body body.json -server kiln -model lr -rows 1 -protocol invocations -json out.json
//	serving -ceiling 127.0.0.1:9000                 # the trivial handler, until stopped
//	serving -load-model rf-onnx/model.onnx           # runtime.Load timings, JSON on stdout
//	serving -report results.json -md results.md      # markdown table with ratios
//
// Only loopback addresses are benchmarked, and every phase is bounded in
// time and in requests.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kiln-ml/kiln/runtime"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/tensor"
)

// Phase is one loop's measurements.
type Phase struct {
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	Dropped   int     `json:"dropped,omitempty"` // open loop: arrivals not sent because too many were outstanding
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"rps"`
	TargetRPS float64 `json:"target_rps,omitempty"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// ServerCores and GeneratorCores are the CPU the server (with its
	// child processes) and the load generator used, in cores busy on
	// average; ServerCPUus is the server's CPU time per request.
	ServerCores    float64 `json:"server_cores,omitempty"`
	ServerCPUus    float64 `json:"server_cpu_us_per_request,omitempty"`
	GeneratorCores float64 `json:"generator_cores,omitempty"`
	// Open loop: Backlogged counts arrivals that waited over 100µs for a
	// free connection (charged to the server); LateP99ms is how late the
	// pacer released arrivals (p99; not charged).
	Backlogged int     `json:"backlogged,omitempty"`
	LateP99ms  float64 `json:"generator_late_p99_ms,omitempty"`
	// OtherCores is the CPU that other processes on the machine used
	// during the phase (all busy time, from /proc/stat, less the server's
	// and the generator's).
	OtherCores float64 `json:"other_cores"`
}

// Result is one case: one server, model, request size and protocol.
type Result struct {
	Server      string `json:"server"`
	Model       string `json:"model"`
	Rows        int    `json:"rows"`
	Protocol    string `json:"protocol"`
	URL         string `json:"url"`
	BodyBytes   int    `json:"body_bytes"`
	Concurrency int    `json:"concurrency"`
	Attempts    int    `json:"attempts"` // runs of the case (more when other processes disturbed one)
	Peak        Phase  `json:"peak"`     // closed loop
	HalfPeak    *Phase `json:"halfpeak"` // open loop at half of Peak.RPS
	Error       string `json:"error,omitempty"`
}

// LoadTiming is a model load time: what -load-model prints, and the
// other load figures run.sh adds to the report.
type LoadTiming struct {
	What     string  `json:"what"`
	Path     string  `json:"path,omitempty"`
	Bytes    int64   `json:"bytes"`
	Repeats  int     `json:"repeats"`
	MinMs    float64 `json:"min_ms"`
	MedianMs float64 `json:"median_ms"`
	MaxMs    float64 `json:"max_ms"`
	// PredictUs is Predict alone, microseconds per call, by batch size.
	PredictUs map[string]float64 `json:"predict_us,omitempty"`
}

func main() {
	var (
		target      = flag.String("url", "", "endpoint to POST the body to (loopback only)")
		bodyFile    = flag.String("body", "", "file with the request body")
		ctype       = flag.String("content-type", "application/json", "Content-Type of the requests")
		server      = flag.String("server", "", "label: the server under test")
		modelName   = flag.String("model", "", "label: the model")
		rows        = flag.Int("rows", 0, "label: rows per request")
		protocol    = flag.String("protocol", "", "label: the protocol")
		concurrency = flag.Int("concurrency", 8, "clients of the closed loop")
		duration    = flag.Duration("duration", 8*time.Second, "length of each loop")
		warmup      = flag.Duration("warmup", time.Second, "closed-loop warm-up before measuring")
		maxReq      = flag.Int("max-requests", 2_000_000, "request cap per loop")
		maxOut      = flag.Int("open-workers", 32, "open loop: workers (connections), the most requests in flight")
		half        = flag.Bool("half-peak", true, "after the closed loop, run the open loop at half its throughput")
		rate        = flag.Float64("rate", 0, "run only the open loop, at this many requests per second")
		pid         = flag.Int("pid", 0, "the server's process id: report the CPU it and its child processes use")
		attempts    = flag.Int("attempts", 3, "runs of a case at most, while other processes disturb it")
		maxOther    = flag.Float64("max-other", 0.2, "cores of other processes' CPU that count as a disturbed run")
		out         = flag.String("json", "", "append the result to this JSON array file")
		ceiling     = flag.String("ceiling", "", "serve the trivial handler on this loopback address")
		lifetime    = flag.Duration("lifetime", 30*time.Minute, "with -ceiling: exit after this long")
		loadModel   = flag.String("load-model", "", "time runtime.Load of this ONNX file and print JSON")
		repeats     = flag.Int("repeats", 20, "with -load-model: loads to time")
		report      = flag.String("report", "", "render this results JSON file as markdown")
		md          = flag.String("md", "", "with -report: write the markdown here too")
		timeout     = flag.Duration("timeout", 30*time.Second, "per-request timeout")
		waitReady   = flag.String("wait-ready", "", "poll this URL every millisecond until it answers 200 and print the milliseconds since -since")
		since       = flag.Int64("since", 0, "with -wait-ready: the start time, in Unix nanoseconds (date +%s%N)")
	)
	flag.Parse()
	var err error
	switch {
	case *ceiling != "":
		err = serveCeiling(*ceiling, *lifetime)
	case *loadModel != "":
		err = timeLoad(*loadModel, *repeats)
	case *report != "":
		err = renderReport(*report, *md)
	case *waitReady != "":
		err = waitUntilReady(*waitReady, *since, *timeout)
	default:
		err = runCase(caseConfig{
			url: *target, bodyFile: *bodyFile, ctype: *ctype, concurrency: *concurrency,
			duration: *duration, warmup: *warmup, maxReq: *maxReq, maxOut: *maxOut,
			half: *half, rate: *rate, pid: *pid, attempts: *attempts, maxOther: *maxOther, timeout: *timeout, out: *out,
			res: Result{Server: *server, Model: *modelName, Rows: *rows, Protocol: *protocol},
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/serving:", err)
		os.Exit(1)
	}
}

func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not a URL", raw)
	}
	return loopbackHost(u.Hostname())
}

func loopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q: only loopback addresses are benchmarked", host)
}

// ceilingBody is the trivial handler's fixed answer.
var ceilingBody = []byte(`{"predictions":[0]}`)

// serveCeiling answers every request by reading its body and writing a
// fixed small JSON: the most a Go HTTP server can do on this machine.
func serveCeiling(addr string, lifetime time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-ceiling %q: %w", addr, err)
	}
	if err := loopbackHost(host); err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(ceilingBody)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	time.AfterFunc(lifetime, func() { srv.Close() })
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// timeLoad loads an ONNX model with the pure-Go runtime repeatedly and
// reports the times (file read, decode and compile; no HTTP).
func timeLoad(path string, repeats int) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var times []time.Duration
	for range max(repeats, 1) {
		t0 := time.Now()
		m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: path})
		if err != nil {
			return err
		}
		times = append(times, time.Since(t0))
		m.Close()
	}
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	lt := LoadTiming{What: "runtime.Load (read, decode, compile) in process", Path: path, Bytes: fi.Size(), Repeats: len(times),
		MinMs: ms(times[0]), MedianMs: ms(times[len(times)/2]), MaxMs: ms(times[len(times)-1])}
	if lt.PredictUs, err = timePredict(ctx, path); err != nil {
		return err
	}
	b, _ := json.Marshal(lt)
	fmt.Println(string(b))
	return nil
}

// timePredict measures Predict alone (no HTTP, no parsing) on 1 and 64
// rows of normal random features, in microseconds per call: the model's
// share of a request's time.
func timePredict(ctx context.Context, path string) (map[string]float64, error) {
	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: path})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	sig := m.Signature()
	if len(sig.Inputs) != 1 || len(sig.Inputs[0].Shape) != 2 || sig.Inputs[0].DType != tensor.Float32 {
		return nil, nil // not a single float matrix input: nothing to time
	}
	width := int(sig.Inputs[0].Shape[1])
	r := rand.New(rand.NewPCG(1, 2))
	out := map[string]float64{}
	for _, rows := range []int{1, 64} {
		x := make([]float32, rows*width)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		in := []*tensor.Tensor{{Name: sig.Inputs[0].Name, DType: tensor.Float32, Shape: []int64{int64(rows), int64(width)}, Data: x}}
		n := 0
		t0 := time.Now()
		for time.Since(t0) < 500*time.Millisecond {
			if _, err := m.Predict(ctx, in); err != nil {
				return nil, err
			}
			n++
		}
		out[fmt.Sprintf("%d rows", rows)] = float64(time.Since(t0).Microseconds()) / float64(n)
	}
	return out, nil
}

// waitUntilReady polls u until it answers 200 and prints the time since
// the start (Unix nanoseconds) in milliseconds: how long a server took
// from its launch to being ready.
func waitUntilReady(u string, since int64, timeout time.Duration) error {
	if err := checkLoopback(u); err != nil {
		return err
	}
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(u); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if since > 0 {
					fmt.Printf("%.1f\n", float64(time.Now().UnixNano()-since)/1e6)
				}
				return nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v", u, timeout)
}

type caseConfig struct {
	url, bodyFile, ctype string
	concurrency          int
	duration, warmup     time.Duration
	maxReq, maxOut       int
	half                 bool
	rate                 float64
	pid                  int
	attempts             int
	maxOther             float64
	timeout              time.Duration
	out                  string
	res                  Result
}

// sender posts the body and reports whether the answer was a 200.
type sender struct {
	client *http.Client
	url    string
	ctype  string
	body   []byte
}

func (s *sender) send() error {
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(s.body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = []string{s.ctype}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("status %d: %s", resp.StatusCode, msg)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func runCase(c caseConfig) error {
	if err := checkLoopback(c.url); err != nil {
		return err
	}
	body, err := os.ReadFile(c.bodyFile)
	if err != nil {
		return err
	}
	s := &sender{
		client: &http.Client{Timeout: c.timeout, Transport: &http.Transport{
			MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, DisableCompression: true,
			IdleConnTimeout: time.Minute,
		}},
		url: c.url, ctype: c.ctype, body: body,
	}
	// A request that fails here fails the case before anything is timed.
	if err := s.send(); err != nil {
		return fmt.Errorf("%s %s: first request: %w", c.res.Server, c.url, err)
	}
	res := c.res
	res.URL, res.BodyBytes, res.Concurrency = c.url, len(body), c.concurrency
	// measured runs a phase and adds the CPU the server, this process and
	// everything else on the machine used.
	measured := func(run func() Phase) Phase {
		s0, g0, m0 := processTreeCPU(c.pid), selfCPU(), machineCPU()
		p := run()
		if p.Seconds <= 0 {
			return p
		}
		server := processTreeCPU(c.pid) - s0
		gen := selfCPU() - g0
		if c.pid > 0 {
			p.ServerCores = server.Seconds() / p.Seconds
			if p.Requests > 0 {
				p.ServerCPUus = float64(server.Microseconds()) / float64(p.Requests)
			}
		}
		p.GeneratorCores = gen.Seconds() / p.Seconds
		if m := machineCPU() - m0; m > 0 && c.pid > 0 {
			p.OtherCores = max(0, (m-server-gen).Seconds()/p.Seconds)
		}
		return p
	}
	if c.rate > 0 {
		if c.warmup > 0 {
			closedLoop(s, c.concurrency, c.warmup, c.maxReq)
		}
		p := measured(func() Phase { return openLoop(s, c.rate, c.duration, c.maxReq, c.maxOut) })
		res.HalfPeak = &p
		printPhase(res, "open", p)
		if c.out != "" {
			return appendResult(c.out, res)
		}
		return nil
	}
	// Other processes on the machine (a shared one) disturb a run: a case
	// whose phases saw more than maxOther cores of other work is run
	// again, up to attempts times, and the least disturbed run is kept.
	var best *Result
	for attempt := 1; attempt <= max(1, c.attempts); attempt++ {
		r := res
		r.Attempts = attempt
		if c.warmup > 0 {
			closedLoop(s, c.concurrency, c.warmup, c.maxReq)
		}
		r.Peak = measured(func() Phase { return closedLoop(s, c.concurrency, c.duration, c.maxReq) })
		printPhase(r, "closed", r.Peak)
		other := r.Peak.OtherCores
		if c.half && r.Peak.RPS > 0 {
			time.Sleep(500 * time.Millisecond) // let the closed loop's backlog drain
			p := measured(func() Phase { return openLoop(s, r.Peak.RPS/2, c.duration, c.maxReq, c.maxOut) })
			r.HalfPeak = &p
			printPhase(r, "open", p)
			other = max(other, p.OtherCores)
		}
		if best == nil || other < best.disturbance() {
			best = &r
		}
		if other <= c.maxOther {
			break
		}
		fmt.Fprintf(os.Stderr, "other processes used %.2f cores during the run: running the case again\n", other)
	}
	if c.out != "" {
		return appendResult(c.out, *best)
	}
	return nil
}

// disturbance is the most CPU other processes used during r's phases.
func (r *Result) disturbance() float64 {
	d := r.Peak.OtherCores
	if r.HalfPeak != nil {
		d = max(d, r.HalfPeak.OtherCores)
	}
	return d
}

func printPhase(r Result, loop string, p Phase) {
	fmt.Fprintf(os.Stderr, "%-7s %-3s %3d rows %-12s %-6s %8d req %5d err %5d drop %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms  cpu server %.2f gen %.2f other %.2f (%.0f µs/req) backlog %d late p99 %.3f ms\n",
		r.Server, r.Model, r.Rows, r.Protocol, loop, p.Requests, p.Errors, p.Dropped, p.RPS, p.P50ms, p.P99ms,
		p.ServerCores, p.GeneratorCores, p.OtherCores, p.ServerCPUus, p.Backlogged, p.LateP99ms)
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ).
const clockTick = 10 * time.Millisecond

// processTreeCPU is the user+system CPU time of pid and all its
// descendants (mlflow's uvicorn workers), read from /proc; 0 when pid is
// 0 or /proc cannot be read.
func processTreeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	type stat struct {
		ppid int
		cpu  time.Duration
	}
	procs := map[int]stat{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[p] = stat{ppid, time.Duration(ut+st) * clockTick}
	}
	var total time.Duration
	for p, st := range procs {
		for q := p; q > 1; q = procs[q].ppid {
			if q == pid {
				total += st.cpu
				break
			}
			if _, ok := procs[q]; !ok {
				break
			}
		}
	}
	return total
}

// machineCPU is the busy time of all cores (user, nice, system, irq,
// softirq, steal), from /proc/stat; 0 when it cannot be read.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, _ := strconv.ParseInt(f[i], 10, 64)
		busy += v
	}
	return time.Duration(busy) * clockTick
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// closedLoop runs n clients for d.
func closedLoop(s *sender, n int, d time.Duration, maxReq int) Phase {
	var issued, errs atomic.Int64
	lat := make([][]time.Duration, n)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) && issued.Add(1) <= int64(maxReq) {
				t0 := time.Now()
				if err := s.send(); err != nil {
					reportErr(&errs, err)
				}
				l = append(l, time.Since(t0))
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return summarize(all, int(errs.Load()), 0, elapsed)
}

// openLoop sends requests at a fixed rate for d: arrival i is due at
// start + i/rate whether or not earlier ones have returned. A pacer
// releases the arrivals as they fall due (Go's timers wake it about once a
// millisecond, so it releases them in small bursts) to a pool of workers,
// each with its own kept-alive connection. An arrival's latency runs from
// its release: the time it waits for a free connection (every worker busy
// with a server that fell behind) counts, so there is no coordinated
// omission, while the pacer's own lateness (release after due) is left out
// and reported as LateP99ms. Arrivals not sent within the grace period
// after d are dropped and counted.
func openLoop(s *sender, rate float64, d time.Duration, maxReq, workers int) Phase {
	interval := time.Duration(float64(time.Second) / rate)
	total := max(1, min(int(d/interval), maxReq))
	type arrival struct{ due, released time.Time }
	queue := make(chan arrival, total)
	lat := make([]time.Duration, 0, total)
	var mu sync.Mutex
	var errs, dropped, waited atomic.Int64
	var ready, wg sync.WaitGroup
	begin := make(chan struct{})
	var deadline time.Time
	for range workers {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.send() // opens this worker's connection before the clock starts
			ready.Done()
			<-begin
			l := make([]time.Duration, 0, total/workers+16)
			for a := range queue {
				now := time.Now()
				if now.After(deadline) {
					dropped.Add(1)
					continue
				}
				if now.Sub(a.released) > 100*time.Microsecond {
					waited.Add(1)
				}
				if err := s.send(); err != nil {
					reportErr(&errs, err)
				}
				l = append(l, time.Since(a.released))
			}
			mu.Lock()
			lat = append(lat, l...)
			mu.Unlock()
		}()
	}
	ready.Wait()
	start := time.Now()
	deadline = start.Add(d + 10*time.Second)
	close(begin)
	late := make([]time.Duration, 0, total)
	for i := 0; i < total; {
		now := time.Now()
		for ; i < total; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				time.Sleep(due.Sub(now))
				break
			}
			queue <- arrival{due, now}
			late = append(late, now.Sub(due))
		}
	}
	close(queue)
	wg.Wait()
	p := summarize(lat, int(errs.Load()), int(dropped.Load()), time.Since(start))
	p.TargetRPS = rate
	p.Backlogged = int(waited.Load())
	slices.Sort(late)
	p.LateP99ms = float64(late[min(len(late)-1, len(late)*99/100)].Nanoseconds()) / 1e6
	return p
}

var errMu sync.Mutex

func reportErr(n *atomic.Int64, err error) {
	if n.Add(1) <= 3 {
		errMu.Lock()
		fmt.Fprintln(os.Stderr, "request failed:", err)
		errMu.Unlock()
	}
}

func summarize(all []time.Duration, errs, dropped int, elapsed time.Duration) Phase {
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) / 1e6
	}
	return Phase{Requests: len(all), Errors: errs, Dropped: dropped, Seconds: elapsed.Seconds(),
		RPS: float64(len(all)) / elapsed.Seconds(), P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), MaxMs: pct(1)}
}

func appendResult(path string, r Result) error {
	var all []Result
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	all = append(all, r)
	b, _ := json.MarshalIndent(all, "", "  ")
	return os.WriteFile(path, b, 0o644)
}

// Report is the file run.sh assembles: the case results, the load
// timings and a description of the machine and the run.
type Report struct {
	Machine map[string]string `json:"machine"`
	Results []Result          `json:"results"`
	Load    []LoadTiming      `json:"load,omitempty"`
}

func renderReport(path, mdPath string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var w strings.Builder
	keys := make([]string, 0, len(rep.Machine))
	for k := range rep.Machine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&w, "- %s: %s\n", k, rep.Machine[k])
	}
	find := func(server, model string, rows int, protocol string) *Result {
		for i := range rep.Results {
			r := &rep.Results[i]
			if r.Server == server && (r.Model == model || r.Model == "any") && r.Rows == rows &&
				(r.Protocol == protocol || (protocol == "" && !strings.HasPrefix(r.Protocol, "at-kiln-"))) {
				return r
			}
		}
		return nil
	}
	fmt.Fprintf(&w, "\n| model | rows | server / protocol | peak req/s | p50 ms | p99 ms | server CPU µs/req | generator cores | half-peak req/s | p50 ms | p99 ms | ceiling p99 ms, same rate | other cores | vs mlflow | vs ceiling |\n")
	fmt.Fprintf(&w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, model := range []string{"lr", "rf"} {
		for _, rows := range []int{1, 64} {
			ml := find("mlflow", model, rows, "")
			ceil := find("ceiling", model, rows, "")
			for _, sp := range [][2]string{{"kiln", "invocations"}, {"kiln", "v2"}, {"mlflow", "invocations"}, {"ceiling", "invocations"}} {
				r := find(sp[0], model, rows, sp[1])
				if r == nil {
					continue
				}
				ratio := func(o *Result) string {
					if o == nil || o == r || o.Peak.RPS == 0 || sp[0] != "kiln" {
						return ""
					}
					if o == ceil {
						return fmt.Sprintf("%.0f%%", 100*r.Peak.RPS/o.Peak.RPS)
					}
					return fmt.Sprintf("**%.1f×**", r.Peak.RPS/o.Peak.RPS)
				}
				hp := &Phase{}
				if r.HalfPeak != nil {
					hp = r.HalfPeak
				}
				floor := ""
				if f := find("ceiling", model, rows, "at-kiln-"+sp[1]); sp[0] == "kiln" && f != nil && f.HalfPeak != nil {
					floor = fmt.Sprintf("%.3f", f.HalfPeak.P99ms)
				}
				fmt.Fprintf(&w, "| %s | %d | %s %s | %.0f | %.3f | %.3f | %.0f | %.2f | %.0f | %.3f | %.3f | %s | %.2f | %s | %s |\n",
					modelTitle(model), rows, sp[0], sp[1], r.Peak.RPS, r.Peak.P50ms, r.Peak.P99ms, r.Peak.ServerCPUus, r.Peak.GeneratorCores,
					hp.RPS, hp.P50ms, hp.P99ms, floor, r.disturbance(), ratio(ml), ratio(ceil))
			}
		}
	}
	bad := 0
	for _, r := range rep.Results {
		bad += r.Peak.Errors
		if r.HalfPeak != nil {
			bad += r.HalfPeak.Errors + r.HalfPeak.Dropped
		}
	}
	fmt.Fprintf(&w, "\nFailed or dropped requests over all cases: %d. \"other cores\": the most CPU other processes on the machine used during the case's two phases (a case is run up to 3 times while that is above 0.2).\n", bad)
	if len(rep.Load) > 0 {
		fmt.Fprintf(&w, "\n| load of the 100-tree forest | bytes | times | min ms | median ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
		for _, t := range rep.Load {
			bytes := ""
			if t.Bytes > 0 {
				bytes = fmt.Sprint(t.Bytes)
			}
			fmt.Fprintf(&w, "| %s | %s | %d | %.1f | %.1f | %.1f |\n", t.What, bytes, t.Repeats, t.MinMs, t.MedianMs, t.MaxMs)
		}
		for _, t := range rep.Load {
			if len(t.PredictUs) > 0 {
				fmt.Fprintf(&w, "\nPredict alone, in process (%s): %.1f µs for 1 row, %.1f µs for 64 rows.\n", t.Path, t.PredictUs["1 rows"], t.PredictUs["64 rows"])
			}
		}
	}
	writeTargets(&w, &rep, find)
	fmt.Print(w.String())
	if mdPath != "" {
		return os.WriteFile(mdPath, []byte(w.String()), 0o644)
	}
	return nil
}

func modelTitle(m string) string {
	switch m {
	case "lr":
		return "LogisticRegression"
	case "rf":
		return "RandomForest (100 trees)"
	}
	return m
}

// writeTargets checks the targets against the figures: kiln's
// throughput at least 20× mlflow's, p99 at most 2 ms at half of peak,
// kiln at least half the ceiling for the logistic model, and the forest
// loaded in under 100 ms (runtime.Load, median).
func writeTargets(w *strings.Builder, rep *Report, find func(server, model string, rows int, protocol string) *Result) {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(w, "\n| target | case | figure | |\n|---|---|---:|---|\n")
	for _, model := range []string{"lr", "rf"} {
		for _, rows := range []int{1, 64} {
			ml := find("mlflow", model, rows, "")
			ceil := find("ceiling", model, rows, "")
			for _, proto := range []string{"invocations", "v2"} {
				k := find("kiln", model, rows, proto)
				if k == nil {
					continue
				}
				c := fmt.Sprintf("%s, %d-row, kiln %s", model, rows, proto)
				if ml != nil && ml.Peak.RPS > 0 {
					x := k.Peak.RPS / ml.Peak.RPS
					fmt.Fprintf(w, "| ≥ 20× mlflow models serve throughput | %s | %.1f× | %s |\n", c, x, met(x >= 20))
				}
				if k.HalfPeak != nil {
					floor := ""
					if f := find("ceiling", model, rows, "at-kiln-"+proto); f != nil && f.HalfPeak != nil {
						floor = fmt.Sprintf(" (trivial handler at the same rate: %.2f ms)", f.HalfPeak.P99ms)
					}
					fmt.Fprintf(w, "| p99 ≤ 2 ms at half of peak | %s | %.2f ms%s | %s |\n", c, k.HalfPeak.P99ms, floor, met(k.HalfPeak.P99ms <= 2))
				}
				if model == "lr" && ceil != nil && ceil.Peak.RPS > 0 {
					x := k.Peak.RPS / ceil.Peak.RPS
					fmt.Fprintf(w, "| ≥ 50%% of the trivial handler (logistic model) | %s | %.0f%% | %s |\n", c, 100*x, met(x >= 0.5))
				}
			}
		}
	}
	for _, t := range rep.Load {
		if strings.HasPrefix(t.What, "runtime.Load") {
			fmt.Fprintf(w, "| 100-tree forest loads in < 100 ms | %s | %.1f ms (median) | %s |\n", t.What, t.MedianMs, met(t.MedianMs < 100))
		}
	}
	if ceil := find("ceiling", "any", 1, ""); ceil != nil && ceil.HalfPeak != nil {
		fmt.Fprintf(w, "\nThe machine's own floor: the trivial handler's p99 at half of its peak is %.2f ms (1-row body).\n", ceil.HalfPeak.P99ms)
	}
}
