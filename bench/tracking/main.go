// Command tracking is a load generator for MLflow-compatible tracking
// servers. It speaks only MLflow's REST API, so the same cases run against
// `kiln server` and `mlflow server`, and reports throughput and latency
// percentiles per case.
//
//	go run ./bench/tracking -url http://127.0.0.1:5000 -cases create-run,log-batch,get-run -duration 10s
//	go run ./bench/tracking -url http://127.0.0.1:5000 -seed 100000        # prints the experiment id
//	go run ./bench/tracking -url … -cases search-runs -search-experiment 3
//	go run ./bench/tracking -compare kiln.json,mlflow.json                  # markdown table with ratios
//
// Only loopback addresses are accepted, and every case is bounded in time
// and in requests.
package main

import (
	"bytes"
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one case's measurements.
type Result struct {
	Case     string  `json:"case"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
	Note     string  `json:"note,omitempty"`
}

// Report is what one run of the tool writes.
type Report struct {
	Server      string            `json:"server"`
	URL         string            `json:"url"`
	Concurrency int               `json:"concurrency"`
	Results     []Result          `json:"results"`
	Extra       map[string]string `json:"extra,omitempty"`
}

var client = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256},
}

func main() {
	var (
		base        = flag.String("url", "", "server base URL (loopback only)")
		name        = flag.String("name", "", "label for the report")
		concurrency = flag.Int("concurrency", 8, "concurrent clients")
		duration    = flag.Duration("duration", 10*time.Second, "time per case")
		maxReq      = flag.Int("max-requests", 500000, "request cap per case")
		cases       = flag.String("cases", "create-run,log-batch,get-run", "comma-separated cases: create-run, log-batch, get-run, search-runs")
		searchExp   = flag.String("search-experiment", "", "experiment id searched by search-runs")
		seed        = flag.Int("seed", 0, "create an experiment with this many runs through the API and print its id")
		out         = flag.String("json", "", "write the report as JSON to this file")
		compare     = flag.String("compare", "", "print a markdown comparison of two reports: kiln.json,anchor.json")
		timeout     = flag.Duration("timeout", 60*time.Second, "per-request timeout")
	)
	flag.Parse()
	client.Timeout = *timeout
	if *compare != "" {
		if err := printComparison(strings.Split(*compare, ",")); err != nil {
			fail(err)
		}
		return
	}
	if err := checkLoopback(*base); err != nil {
		fail(err)
	}
	api := strings.TrimSuffix(*base, "/") + "/api/2.0/mlflow/"
	if *seed > 0 {
		id, err := seedExperiment(api, *seed, *concurrency)
		if err != nil {
			fail(err)
		}
		fmt.Println(id)
		return
	}
	rep := Report{Server: *name, URL: *base, Concurrency: *concurrency}
	if rep.Server == "" {
		rep.Server = *base
	}
	exp, err := createExperiment(api, fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	if err != nil {
		fail(err)
	}
	// One run per worker for log-batch and get-run.
	runs := make([]string, *concurrency)
	for i := range runs {
		if runs[i], err = createRun(api, exp); err != nil {
			fail(err)
		}
	}
	for _, c := range strings.Split(*cases, ",") {
		var fn func(worker int, i int) error
		switch c {
		case "create-run":
			fn = func(int, int) error { _, err := createRun(api, exp); return err }
		case "log-batch":
			fn = func(w, i int) error { return logBatch(api, runs[w], i) }
		case "get-run":
			fn = func(w, i int) error { return get(api + "runs/get?run_id=" + runs[w]) }
		case "search-runs":
			if *searchExp == "" {
				fail(errors.New("search-runs needs -search-experiment"))
			}
			fn = func(w, i int) error { return searchRuns(api, *searchExp) }
		default:
			fail(fmt.Errorf("unknown case %q", c))
		}
		r := runCase(c, *concurrency, *duration, *maxReq, fn)
		if c == "log-batch" {
			r.Note = fmt.Sprintf("%.0f metrics/s", r.RPS*100)
		}
		fmt.Fprintf(os.Stderr, "%-12s %-12s %8d req %6d err %10.1f req/s  p50 %8.2f ms  p95 %8.2f ms  p99 %8.2f ms %s\n",
			rep.Server, c, r.Requests, r.Errors, r.RPS, r.P50ms, r.P95ms, r.P99ms, r.Note)
		rep.Results = append(rep.Results, r)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not a URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: only loopback addresses are benchmarked", raw)
}

func runCase(name string, workers int, d time.Duration, maxReq int, fn func(worker, i int) error) Result {
	var issued, errs atomic.Int64
	lat := make([][]time.Duration, workers)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if issued.Add(1) > int64(maxReq) {
					return
				}
				t0 := time.Now()
				if err := fn(w, i); err != nil {
					if errs.Add(1) <= 3 {
						fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
					}
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	return Result{Case: name, Requests: len(all), Errors: int(errs.Load()), Seconds: elapsed,
		RPS: float64(len(all)) / elapsed, P50ms: pct(0.50), P95ms: pct(0.95), P99ms: pct(0.99)}
}

func post(u string, body any, out any) error {
	b, _ := json.Marshal(body)
	resp, err := client.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, msg)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func get(u string) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return nil
}

func createExperiment(api, name string) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	err := post(api+"experiments/create", map[string]any{"name": name}, &out)
	return out.ID, err
}

func createRun(api, exp string) (string, error) {
	var out struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	err := post(api+"runs/create", map[string]any{"experiment_id": exp, "start_time": time.Now().UnixMilli(),
		"tags": []map[string]string{{"key": "mlflow.user", "value": "bench"}}}, &out)
	return out.Run.Info.RunID, err
}

// logBatch logs 100 metrics (m0..m99) at step i. The body is built by
// hand: the load generator shares the machine's cores with the server, so
// it must spend as little CPU per request as it can.
func logBatch(api, run string, i int) error {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	step := strconv.Itoa(i)
	b := make([]byte, 0, 8192)
	b = append(b, `{"run_id":"`...)
	b = append(b, run...)
	b = append(b, `","metrics":[`...)
	for k := 0; k < 100; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":"m`...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, `","value":`...)
		b = strconv.AppendFloat(b, rand.Float64(), 'g', -1, 64)
		b = append(b, `,"timestamp":`...)
		b = append(b, ts...)
		b = append(b, `,"step":`...)
		b = append(b, step...)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	resp, err := client.Post(api+"runs/log-batch", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("log-batch: status %d", resp.StatusCode)
	}
	return nil
}

func searchRuns(api, exp string) error {
	var out struct {
		Runs []json.RawMessage `json:"runs"`
	}
	err := post(api+"runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": "metrics.m > 0.5",
		"order_by": []string{"metrics.m DESC"}, "max_results": 100}, &out)
	if err == nil && len(out.Runs) != 100 {
		err = fmt.Errorf("search returned %d runs, want 100", len(out.Runs))
	}
	return err
}

// seedExperiment creates an experiment with n runs, each with metrics m
// (uniform in [0,1)) and loss, a param and a tag, through the API.
func seedExperiment(api string, n, workers int) (string, error) {
	exp, err := createExperiment(api, fmt.Sprintf("search-%d-%d", n, time.Now().UnixNano()))
	if err != nil {
		return "", err
	}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || firstErr.Load() != nil {
					return
				}
				run, err := createRun(api, exp)
				if err == nil {
					err = post(api+"runs/log-batch", map[string]any{"run_id": run,
						"metrics": []map[string]any{{"key": "m", "value": rand.Float64(), "timestamp": 1, "step": 0}, {"key": "loss", "value": rand.Float64(), "timestamp": 1, "step": 0}},
						"params":  []map[string]any{{"key": "alpha", "value": strconv.Itoa(int(i % 10))}}}, nil)
				}
				if err != nil {
					firstErr.Store(err)
					return
				}
				if i%10000 == 0 {
					fmt.Fprintf(os.Stderr, "seeded %d/%d runs (%.0f runs/s)\n", i, n, float64(i)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return "", err
	}
	return exp, nil
}

func printComparison(files []string) error {
	if len(files) != 2 {
		return errors.New("-compare needs two reports: kiln.json,anchor.json")
	}
	var reps [2]Report
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &reps[i]); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	anchor := map[string]Result{}
	for _, r := range reps[1].Results {
		anchor[r.Case] = r
	}
	k, a := reps[0].Server, reps[1].Server
	fmt.Printf("| case | %s req/s | %s req/s | throughput ratio | %s p50 ms | %s p50 ms | %s p99 ms | %s p99 ms |\n", k, a, k, a, k, a)
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range reps[0].Results {
		m, ok := anchor[r.Case]
		if !ok {
			continue
		}
		ratio := "n/a"
		if m.RPS > 0 {
			ratio = fmt.Sprintf("**%.1f×**", r.RPS/m.RPS)
		}
		fmt.Printf("| %s | %.0f | %.0f | %s | %.2f | %.2f | %.2f | %.2f |\n", r.Case, r.RPS, m.RPS, ratio, r.P50ms, m.P50ms, r.P99ms, m.P99ms)
	}
	for i, rep := range reps {
		for key, v := range rep.Extra {
			fmt.Printf("\n%s %s: %s", reps[i].Server, key, v)
		}
	}
	fmt.Println()
	return nil
}
