package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/store/storetest"
)

// replicaClient bounds every request of the replica test.
var replicaClient = &http.Client{Timeout: 15 * time.Second}

// replicaStep is a step of the replica test's pipelines: its command
// appends "<run> <step> <attempt> <server> start" to the shared file,
// sleeps, then appends the same line ending in "end". A step whose
// server is killed mid-sleep never writes its end line (the local
// executor's steps die with their server).
func replicaStep(name, file string, sleep float64, deps ...string) map[string]any {
	line := `"$KILN_PIPELINE_RUN $KILN_STEP $KILN_ATTEMPT $KILN_URL`
	script := fmt.Sprintf(`echo %s start" >> %s; sleep %g; echo %s end" >> %s`, line, file, sleep, line, file)
	s := map[string]any{"name": name, "command": []string{"sh", "-c", script}}
	if len(deps) > 0 {
		s["depends_on"] = deps
	}
	return s
}

func replicaDo(t *testing.T, method, url string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := replicaClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

type replicaRun struct {
	ID    string `json:"run_id"`
	State string `json:"state"`
	Error string `json:"error"`
	Steps []struct {
		Step    string `json:"step"`
		State   string `json:"state"`
		Attempt int    `json:"attempt"`
		Owner   string `json:"owner"`
	} `json:"steps"`
}

func putReplicaPipeline(t *testing.T, url, name string, steps []map[string]any) {
	t.Helper()
	doc := map[string]any{"apiVersion": "kiln.dev/v1", "kind": "Pipeline", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"cache": false, "steps": steps}}
	replicaDo(t, "PUT", url+"/api/v1/pipelines/"+name, doc, nil)
}

func startReplicaRun(t *testing.T, url, name string) string {
	t.Helper()
	var resp struct {
		Run replicaRun `json:"run"`
	}
	replicaDo(t, "POST", url+"/api/v1/pipelines/"+name+"/runs", map[string]any{}, &resp)
	if resp.Run.ID == "" {
		t.Fatalf("start run of %s: no run id", name)
	}
	return resp.Run.ID
}

func getReplicaRun(t *testing.T, url, id string) replicaRun {
	t.Helper()
	var r replicaRun
	replicaDo(t, "GET", url+"/api/v1/pipeline-runs/"+id, nil, &r)
	return r
}

// waitReplicaRun waits (bounded) for a run to end and returns it.
func waitReplicaRun(t *testing.T, url, id string, bound time.Duration) replicaRun {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		r := getReplicaRun(t, url, id)
		switch r.State {
		case "succeeded", "failed", "cancelled":
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after %v: %+v", id, r.State, bound, r.Steps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaLine is a parsed line of the shared file.
type replicaLine struct{ run, step, attempt, server, phase string }

func readReplicaLines(t *testing.T, file string) []replicaLine {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []replicaLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("malformed line %q in %s", l, file)
		}
		out = append(out, replicaLine{f[0], f[1], f[2], f[3], f[4]})
	}
	return out
}

// TestPipelineReplicas runs three kiln server processes on one PostgreSQL
// and one artifact folder: runs started through each server run every
// step exactly once; then the server running a slow step is killed with
// SIGKILL and the run still completes, the step taken over after its
// lease lapsed, no step of the run ending twice.
func TestPipelineReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pg := os.Getenv("KILN_TEST_POSTGRES")
	if pg == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KILN_TEST_POSTGRES is not set in CI")
		}
		t.Skip("KILN_TEST_POSTGRES is not set")
	}
	db := storetest.NewPostgresURL(t, pg)
	artifacts := "file://" + t.TempDir()
	// One at a time: the first migrates the database.
	var servers []*proc
	for i := 0; i < 3; i++ {
		servers = append(servers, startKiln(t, "--db", db, "--artifacts", artifacts,
			"--pipeline-lease-ttl", "2s", "--pipeline-parallelism", "4", "--pipeline-work-dir", t.TempDir()))
	}
	byURL := map[string]int{}
	for i, s := range servers {
		byURL[s.url] = i
	}
	dir := t.TempDir()

	t.Run("fan-out runs exactly once", func(t *testing.T) {
		file := filepath.Join(dir, "fan.log")
		const width, runs = 8, 6
		steps := []map[string]any{replicaStep("root", file, 0)}
		var mids []string
		for i := 0; i < width; i++ {
			n := fmt.Sprint("f", i)
			mids = append(mids, n)
			steps = append(steps, replicaStep(n, file, 0.2, "root"))
		}
		steps = append(steps, replicaStep("join", file, 0, mids...))
		putReplicaPipeline(t, servers[0].url, "fan", steps)
		var ids []string
		for i := 0; i < runs; i++ {
			ids = append(ids, startReplicaRun(t, servers[i%3].url, "fan"))
		}
		for i, id := range ids {
			r := waitReplicaRun(t, servers[(i+1)%3].url, id, 90*time.Second)
			if r.State != "succeeded" {
				t.Fatalf("run %s %s: %s %+v", id, r.State, r.Error, r.Steps)
			}
			for _, st := range r.Steps {
				if st.State != "succeeded" || st.Attempt != 1 {
					t.Errorf("run %s step %s: %s attempt %d, want succeeded attempt 1", id, st.Step, st.State, st.Attempt)
				}
			}
		}
		count := map[string]int{}
		perServer := map[string]int{}
		for _, l := range readReplicaLines(t, file) {
			count[l.run+" "+l.step+" "+l.phase]++
			if l.phase == "end" {
				perServer[l.server]++
			}
		}
		for _, id := range ids {
			for _, s := range steps {
				for _, phase := range []string{"start", "end"} {
					if n := count[id+" "+s["name"].(string)+" "+phase]; n != 1 {
						t.Errorf("run %s step %s: %d %s lines, want 1", id, s["name"], n, phase)
					}
				}
			}
		}
		if total := len(count); total != 2*runs*len(steps) {
			t.Errorf("%d distinct (run, step, phase) lines, want %d", total, 2*runs*len(steps))
		}
		for url := range perServer {
			if _, ok := byURL[url]; !ok {
				t.Errorf("a step ran with KILN_URL %q, no server's", url)
			}
		}
		// Which server takes which step is a race; it is reported, not asserted.
		t.Logf("steps per server: %v", perServer)
	})

	t.Run("a killed server's step is taken over", func(t *testing.T) {
		file := filepath.Join(dir, "kill.log")
		steps := []map[string]any{
			replicaStep("first", file, 0),
			replicaStep("slow", file, 3, "first"),
			replicaStep("last", file, 0, "slow"),
		}
		putReplicaPipeline(t, servers[1].url, "kill", steps)
		id := startReplicaRun(t, servers[2].url, "kill")
		// Wait for the slow step's command to have started, and find its server.
		victim := -1
		for deadline := time.Now().Add(30 * time.Second); victim < 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the slow step never started: %+v", getReplicaRun(t, servers[0].url, id).Steps)
			}
			for _, l := range readReplicaLines(t, file) {
				if l.run == id && l.step == "slow" && l.phase == "start" {
					i, ok := byURL[l.server]
					if !ok {
						t.Fatalf("the slow step runs with KILN_URL %q, no server's", l.server)
					}
					victim = i
				}
			}
		}
		r := getReplicaRun(t, servers[(victim+1)%3].url, id)
		for _, st := range r.Steps {
			if st.Step == "slow" {
				pid := strconv.Itoa(servers[victim].cmd.Process.Pid)
				if st.State != "running" || !slices.Contains(strings.Split(st.Owner, "/"), pid) {
					t.Fatalf("slow step %s owned by %q; want running under server %d (pid %s)", st.State, st.Owner, victim, pid)
				}
			}
		}
		if err := servers[victim].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		servers[victim].cmd.Wait()
		t.Logf("killed server %d (%s) while it ran the slow step", victim, servers[victim].url)
		other := servers[(victim+1)%3].url
		r = waitReplicaRun(t, other, id, 60*time.Second)
		if r.State != "succeeded" {
			t.Fatalf("run %s %s: %s %+v", id, r.State, r.Error, r.Steps)
		}
		want := map[string]int{"first": 1, "slow": 2, "last": 1}
		for _, st := range r.Steps {
			if st.State != "succeeded" || st.Attempt != want[st.Step] {
				t.Errorf("step %s: %s attempt %d, want succeeded attempt %d", st.Step, st.State, st.Attempt, want[st.Step])
			}
		}
		starts, ends := map[string]int{}, map[string][]replicaLine{}
		for _, l := range readReplicaLines(t, file) {
			if l.run != id {
				continue
			}
			if l.phase == "start" {
				starts[l.step]++
			} else {
				ends[l.step] = append(ends[l.step], l)
			}
		}
		for name, n := range want {
			if starts[name] != n {
				t.Errorf("step %s started %d times, want %d", name, starts[name], n)
			}
			if len(ends[name]) != 1 {
				t.Errorf("step %s completed %d times, want once: %v", name, len(ends[name]), ends[name])
			}
		}
		if e := ends["slow"]; len(e) == 1 && (e[0].attempt != "2" || e[0].server == servers[victim].url) {
			t.Errorf("slow step completed as attempt %s on %s; want attempt 2 on a surviving server", e[0].attempt, e[0].server)
		}
	})
}
