// Command routinggen is the load generator of bench/deploy/routing.sh:
// it registers a model in a kiln server and applies the benchmark
// endpoint (-setup), waits for a server to be ready (-wait), and drives a
// closed loop of concurrent clients POSTing one request body on loopback,
// reporting throughput and latency percentiles as a JSON line (-url).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		target      = flag.String("url", "", "endpoint to POST the body to (loopback only)")
		bodyFile    = flag.String("body", "", "file with the request body")
		label       = flag.String("label", "", "label of the case in the report")
		concurrency = flag.Int("concurrency", 8, "clients of the closed loop")
		duration    = flag.Duration("duration", 10*time.Second, "length of the measured loop")
		warmup      = flag.Duration("warmup", time.Second, "loop before measuring")
		maxReq      = flag.Int64("max-requests", 5_000_000, "request cap of the measured loop")
		out         = flag.String("json", "", "append the report (one JSON line) to this file")
		wait        = flag.String("wait", "", "poll this URL until it answers 200, then exit")
		setup       = flag.String("setup", "", "kiln server base URL: register -model-dir as model -model and apply -endpoint-doc")
		modelDir    = flag.String("model-dir", "", "with -setup: MLflow model directory to register")
		modelName   = flag.String("model", "bench", "with -setup: registered model name")
		endpointDoc = flag.String("endpoint-doc", "", "with -setup: file with the Endpoint document (JSON) to apply")
		reportFile  = flag.String("report", "", "render this file of JSON report lines (labels \"CASE serve\" and \"CASE endpoint\") as markdown")
		md          = flag.String("md", "", "with -report: write the markdown here")
		header      = flag.String("header", "", "with -report: text put above the table")
	)
	flag.Parse()
	var err error
	switch {
	case *wait != "":
		err = waitReady(*wait, 60*time.Second)
	case *setup != "":
		err = setupServer(*setup, *modelDir, *modelName, *endpointDoc)
	case *reportFile != "":
		err = renderReport(*reportFile, *md, *header)
	case *target != "":
		err = run(*target, *bodyFile, *label, *concurrency, *duration, *warmup, *maxReq, *out)
	default:
		err = errors.New("give -url, -wait or -setup")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "routinggen:", err)
		os.Exit(1)
	}
}

func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", raw)
	}
	return nil
}

func waitReady(u string, timeout time.Duration) error {
	if err := loopbackOnly(u); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v", u, timeout)
}

// setupServer registers the model through the MLflow REST API and the
// artifact proxy, and applies the endpoint through /api/v1.
func setupServer(base, dir, name, docFile string) error {
	if err := loopbackOnly(base); err != nil {
		return err
	}
	call := func(method, path string, body []byte, out any) error {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := call("POST", "/api/2.0/mlflow/runs/create", js(map[string]any{"experiment_id": "0"}), &run); err != nil {
		return err
	}
	id := run.Run.Info.RunID
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := call("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/"+id+"/artifacts/model/"+e.Name(), b, nil); err != nil {
			return err
		}
	}
	if err := call("POST", "/api/2.0/mlflow/registered-models/create", js(map[string]any{"name": name}), nil); err != nil {
		return err
	}
	if err := call("POST", "/api/2.0/mlflow/model-versions/create", js(map[string]any{"name": name, "source": "runs:/" + id + "/model", "run_id": id}), nil); err != nil {
		return err
	}
	doc, err := os.ReadFile(docFile)
	if err != nil {
		return err
	}
	var meta struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(doc, &meta); err != nil {
		return fmt.Errorf("%s: %w", docFile, err)
	}
	return call("PUT", "/api/v1/endpoints/"+meta.Metadata.Name, doc, nil)
}

type report struct {
	Label       string  `json:"label"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Failures    int64   `json:"failures"`
	RPS         float64 `json:"rps"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
}

func run(target, bodyFile, label string, conc int, dur, warm time.Duration, maxReq int64, out string) error {
	if err := loopbackOnly(target); err != nil {
		return err
	}
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}}
	var measuring atomic.Bool
	var stop atomic.Bool
	var count, failures atomic.Int64
	lat := make([][]time.Duration, conc)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < conc; c++ {
		lat[c] = make([]time.Duration, 0, 1<<16)
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if !ok {
					failures.Add(1)
					if err == nil {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[c] = append(lat[c], d)
				if count.Add(1) >= maxReq {
					stop.Store(true)
				}
			}
		}(c)
	}
	time.Sleep(warm)
	measuring.Store(true)
	t0 := time.Now()
	deadline := time.NewTimer(dur)
	for !stop.Load() {
		select {
		case <-deadline.C:
			stop.Store(true)
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(t0)
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p*float64(len(all))+0.5) - 1
		i = min(max(i, 0), len(all)-1)
		return float64(all[i]) / 1e6
	}
	r := report{Label: label, Concurrency: conc, Seconds: elapsed.Seconds(), Requests: int64(len(all)), Failures: failures.Load(),
		RPS: float64(len(all)) / elapsed.Seconds(), P50Ms: q(0.50), P90Ms: q(0.90), P99Ms: q(0.99), MaxMs: q(1)}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	if r.Failures > 0 {
		return fmt.Errorf("%d failed requests (first: %v)", r.Failures, firstErr.Load())
	}
	return nil
}

// renderReport writes the median of each case's rounds, kiln serve
// against the endpoint, as a markdown table.
func renderReport(file, mdPath, header string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	byLabel := map[string][]report{}
	var cases []string
	known := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		c, _, _ := strings.Cut(r.Label, " ")
		if !known[c] {
			known[c] = true
			cases = append(cases, c)
		}
		byLabel[r.Label] = append(byLabel[r.Label], r)
	}
	median := func(rs []report, f func(report) float64) float64 {
		if len(rs) == 0 {
			return 0
		}
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	var w strings.Builder
	if header != "" {
		w.WriteString(header + "\n\n")
	}
	w.WriteString("| model | rounds | kiln serve req/s | endpoint req/s | throughput ratio | serve p50 ms | endpoint p50 ms | serve p99 ms | endpoint p99 ms | p99 added ms | targets (≤10% loss, p99 +≤0.5 ms) |\n")
	w.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range cases {
		s, e := byLabel[c+" serve"], byLabel[c+" endpoint"]
		rps := func(r report) float64 { return r.RPS }
		p50 := func(r report) float64 { return r.P50Ms }
		p99 := func(r report) float64 { return r.P99Ms }
		sr, er := median(s, rps), median(e, rps)
		ratio := 0.0
		if sr > 0 {
			ratio = er / sr
		}
		dp99 := median(e, p99) - median(s, p99)
		met := "met"
		if ratio < 0.9 || dp99 > 0.5 {
			met = "**not met**"
		}
		fmt.Fprintf(&w, "| %s | %d | %.0f | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f | %+.3f | %s |\n", c, min(len(s), len(e)), sr, er, ratio,
			median(s, p50), median(e, p50), median(s, p99), median(e, p99), dp99, met)
	}
	fmt.Print(w.String())
	if mdPath != "" {
		return os.WriteFile(mdPath, []byte(w.String()), 0o644)
	}
	return nil
}
