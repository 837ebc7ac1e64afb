package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-ml/kiln/pipeline"
)

// OpenLineage's schema URLs (spec 2-0-2) and the facets Kiln sends.
const (
	olSchemaURL       = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
	olParentFacet     = "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet"
	olErrorFacet      = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
	olJobTypeFacet    = "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
	olVersionFacet    = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
	olKilnRunFacetURL = "https://github.com/kiln-ml/kiln/blob/main/docs/lineage.md#openlineage"
	// DefaultProducer is the producer URI of Kiln's events.
	DefaultProducer = "https://github.com/kiln-ml/kiln"
	// DefaultNamespace is the job namespace of Kiln's pipelines.
	DefaultNamespace = "kiln"
	// DefaultQueue bounds the events waiting to be sent.
	DefaultQueue = 4096
)

// olNamespace is the UUIDv5 namespace of Kiln's run ids (a fixed random
// UUID), so a run's START and its end carry the same runId.
var olNamespace = uuid.UUID{0x6b, 0x69, 0x6c, 0x6e, 0x2d, 0x6f, 0x4c, 0x0a, 0x9e, 0x17, 0x3d, 0x52, 0xc1, 0x8f, 0x24, 0x7b}

// RunUUID is the OpenLineage runId (a UUIDv5) of a pipeline run (step "")
// or of one attempt of a step.
func RunUUID(runID, step string, attempt int) string {
	name := "pipeline-run:" + runID
	if step != "" {
		name += "/" + step + "/" + fmt.Sprint(attempt)
	}
	return uuid.NewSHA1(olNamespace, []byte(name)).String()
}

// OLEvent is an OpenLineage RunEvent.
type OLEvent struct {
	EventType string      `json:"eventType"`
	EventTime string      `json:"eventTime"`
	Producer  string      `json:"producer"`
	SchemaURL string      `json:"schemaURL"`
	Run       OLRun       `json:"run"`
	Job       OLJob       `json:"job"`
	Inputs    []OLDataset `json:"inputs"`
	Outputs   []OLDataset `json:"outputs"`
}

// OLRun is an event's run.
type OLRun struct {
	RunID  string         `json:"runId"`
	Facets map[string]any `json:"facets,omitempty"`
}

// OLJob is an event's job.
type OLJob struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Facets    map[string]any `json:"facets,omitempty"`
}

// OLDataset is an input or output dataset.
type OLDataset struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Facets    map[string]any `json:"facets,omitempty"`
}

// EmitterOptions say where OpenLineage events go: a JSON Lines file, an
// HTTP endpoint (Marquez: http://HOST:5000/api/v1/lineage), or both.
type EmitterOptions struct {
	File string
	URL  string
	// APIKey, if set, is sent as "Authorization: Bearer KEY".
	APIKey string
	// Namespace is the jobs' namespace (DefaultNamespace); DatasetNamespace
	// that of Kiln's datasets and models (the server's URL, e.g.
	// "kiln://host:5000").
	Namespace        string
	DatasetNamespace string
	Producer         string
	// Client sends the HTTP events (give one that checks egress); a 10 s
	// http.Client when nil.
	Client *http.Client
	Queue  int // DefaultQueue when 0
	Logger *slog.Logger
}

// Emitter turns pipeline lifecycle events into OpenLineage RunEvents and
// sends them from a goroutine of its own: Observe never blocks, and
// drops (and counts) an event when the queue is full.
type Emitter struct {
	o       EmitterOptions
	q       chan pipeline.Lifecycle
	done    chan struct{}
	file    *os.File
	log     *slog.Logger
	sent    atomic.Int64
	dropped atomic.Int64
	failed  atomic.Int64
	once    sync.Once
	mu      sync.RWMutex // held to send on q, and to close it
	closed  bool
}

// NewEmitter opens the file (appending) and starts the sender.
func NewEmitter(o EmitterOptions) (*Emitter, error) {
	if o.File == "" && o.URL == "" {
		return nil, errors.New("openlineage: neither a file nor a URL")
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("openlineage: the URL %q is not http(s)://HOST/PATH", o.URL)
		}
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.DatasetNamespace == "" {
		o.DatasetNamespace = "kiln"
	}
	if o.Producer == "" {
		o.Producer = DefaultProducer
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Emitter{o: o, q: make(chan pipeline.Lifecycle, o.Queue), done: make(chan struct{}), log: o.Logger}
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("openlineage: %w", err)
		}
		e.file = f
	}
	go e.loop()
	return e, nil
}

// Observe queues ev (pipeline.Observer).
func (e *Emitter) Observe(ev pipeline.Lifecycle) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	select {
	case e.q <- ev:
	default:
		if e.dropped.Add(1)%100 == 1 {
			e.log.Warn("openlineage: the queue is full; events dropped", "dropped", e.dropped.Load())
		}
	}
}

// Stats returns the events sent, dropped (queue full) and failed (not
// delivered after retries).
func (e *Emitter) Stats() (sent, dropped, failed int64) {
	return e.sent.Load(), e.dropped.Load(), e.failed.Load()
}

// Close sends what is queued (until ctx ends) and closes the file.
func (e *Emitter) Close(ctx context.Context) error {
	var err error
	e.once.Do(func() {
		e.mu.Lock()
		e.closed = true
		close(e.q)
		e.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if e.file != nil {
			if serr := e.file.Sync(); serr != nil && err == nil {
				err = serr
			}
			if cerr := e.file.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	})
	return err
}

func (e *Emitter) loop() {
	defer close(e.done)
	for ev := range e.q {
		data, err := json.Marshal(e.Event(ev))
		if err != nil {
			e.failed.Add(1)
			continue
		}
		ok := true
		if e.file != nil {
			if _, err := e.file.Write(append(data, '\n')); err != nil {
				ok = false
				e.log.Warn("openlineage: writing an event failed", "file", e.o.File, "err", err)
			}
		}
		if e.o.URL != "" && !e.post(data) {
			ok = false
		}
		if ok {
			e.sent.Add(1)
		} else {
			e.failed.Add(1)
		}
	}
}

// post sends one event, retrying a connection error or a 5xx/429 answer
// three times with backoff.
func (e *Emitter) post(data []byte) bool {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest(http.MethodPost, e.o.URL, bytes.NewReader(data))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		if e.o.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+e.o.APIKey)
		}
		resp, err := e.o.Client.Do(req)
		retry := err != nil
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return true
			}
			retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		if !retry || attempt == 4 {
			e.log.Warn("openlineage: an event was not delivered", "url", e.o.URL, "attempts", attempt, "err", err)
			return false
		}
		time.Sleep(delay)
		delay *= 3
	}
}

// Event builds the OpenLineage RunEvent of ev: a pipeline run is the job
// NAMESPACE/PIPELINE, a step the job PIPELINE.STEP with the pipeline run
// as its parent; a dataset input "dataset:NAME@N" is the dataset NAME in
// the dataset namespace with version N, an s3://BUCKET/KEY artifact the
// dataset KEY in s3://BUCKET, and other URIs (models:/…, runs:/…,
// mlflow-artifacts:/…) are named by the URI itself.
func (e *Emitter) Event(ev pipeline.Lifecycle) OLEvent {
	facet := func(schema string, fields map[string]any) map[string]any {
		fields["_producer"] = e.o.Producer
		fields["_schemaURL"] = schema
		return fields
	}
	out := OLEvent{
		EventType: ev.Phase, EventTime: ev.Time.UTC().Format(time.RFC3339Nano), Producer: e.o.Producer, SchemaURL: olSchemaURL,
		Run:    OLRun{RunID: RunUUID(ev.RunID, ev.Step, ev.Attempt), Facets: map[string]any{}},
		Job:    OLJob{Namespace: e.o.Namespace, Name: ev.Pipeline},
		Inputs: []OLDataset{}, Outputs: []OLDataset{},
	}
	kiln := map[string]any{"pipeline_run_id": ev.RunID, "state": ev.State}
	jobType := "PIPELINE"
	if ev.Step != "" {
		jobType = "STEP"
		out.Job.Name = ev.Pipeline + "." + ev.Step
		kiln["step"], kiln["attempt"] = ev.Step, ev.Attempt
		out.Run.Facets["parent"] = facet(olParentFacet, map[string]any{
			"run": map[string]any{"runId": RunUUID(ev.RunID, "", 0)},
			"job": map[string]any{"namespace": e.o.Namespace, "name": ev.Pipeline},
		})
	}
	if ev.TrackingRunID != "" {
		kiln["mlflow_run_id"] = ev.TrackingRunID
	}
	if len(ev.Parameters) > 0 {
		kiln["parameters"] = ev.Parameters
	}
	out.Run.Facets["kiln"] = facet(olKilnRunFacetURL, kiln)
	if ev.Error != "" && ev.Phase == pipeline.PhaseFail {
		out.Run.Facets["errorMessage"] = facet(olErrorFacet, map[string]any{"message": ev.Error, "programmingLanguage": "shell"})
	}
	out.Job.Facets = map[string]any{"jobType": facet(olJobTypeFacet, map[string]any{"processingType": "BATCH", "integration": "KILN", "jobType": jobType})}
	for _, in := range ev.Inputs {
		if d, ok := e.dataset(in.URI, facet); ok {
			out.Inputs = append(out.Inputs, d)
		}
	}
	for _, name := range sortedStrings(ev.Outputs) {
		if d, ok := e.dataset(ev.Outputs[name], facet); ok {
			out.Outputs = append(out.Outputs, d)
		}
	}
	return out
}

// dataset names a URI as an OpenLineage dataset; values that are not
// URIs (a metric, a version number) are not datasets.
func (e *Emitter) dataset(uri string, facet func(string, map[string]any) map[string]any) (OLDataset, bool) {
	if rest, ok := strings.CutPrefix(uri, "dataset:"); ok {
		if i := strings.LastIndex(rest, "@"); i > 0 {
			return OLDataset{Namespace: e.o.DatasetNamespace, Name: rest[:i],
				Facets: map[string]any{"version": facet(olVersionFacet, map[string]any{"datasetVersion": rest[i+1:]})}}, true
		}
		return OLDataset{Namespace: e.o.DatasetNamespace, Name: rest}, true
	}
	if !strings.Contains(uri, ":/") {
		return OLDataset{}, false
	}
	if u, err := url.Parse(uri); err == nil && u.Host != "" && (u.Scheme == "s3" || u.Scheme == "gs" || u.Scheme == "azblob" || u.Scheme == "file") {
		return OLDataset{Namespace: u.Scheme + "://" + u.Host, Name: strings.TrimPrefix(u.Path, "/")}, true
	}
	return OLDataset{Namespace: e.o.DatasetNamespace, Name: uri}, true
}

func sortedStrings(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
