package lineage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/tracking"
)

// The stores a Stores source reads, as small as it needs them.
type (
	// Datasets is a *dataset.Store.
	Datasets interface {
		GetVersion(ctx context.Context, ref dataset.VersionRef) (*dataset.Version, error)
		Children(ctx context.Context, ref dataset.VersionRef) ([]*dataset.Version, error)
		RunsOfVersion(ctx context.Context, ref dataset.VersionRef) ([]dataset.RunLink, error)
		ModelsOfVersion(ctx context.Context, ref dataset.VersionRef) ([]dataset.ModelUse, error)
		VersionsOfRun(ctx context.Context, runID string) ([]dataset.RunLink, error)
		VersionsOfModel(ctx context.Context, modelName string, modelVersion int64) ([]dataset.VersionUse, error)
	}
	// Tracking is a *tracking.Store.
	Tracking interface {
		GetRun(ctx context.Context, id string) (*tracking.Run, error)
		GetLoggedModel(ctx context.Context, id string) (*tracking.LoggedModel, error)
	}
	// Registry is a *registry.Store.
	Registry interface {
		GetModelVersion(ctx context.Context, name string, version int64) (*registry.ModelVersion, error)
		SearchModelVersions(ctx context.Context, q registry.SearchQuery) ([]*registry.ModelVersion, string, error)
	}
	// Endpoints is a *deploy.Manager.
	Endpoints interface {
		Get(ctx context.Context, name string) (*deploy.State, error)
		List(ctx context.Context) ([]*deploy.State, error)
	}
	// Monitors is the monitoring service.
	Monitors interface {
		Get(ctx context.Context, name string) (*monitor.StoredMonitor, error)
		List(ctx context.Context, endpoint string) ([]*monitor.StoredMonitor, error)
		ActiveAlerts(ctx context.Context, monitor string) ([]alert.State, error)
		AlertHistory(ctx context.Context, q alert.HistoryQuery) ([]alert.Event, error)
	}
	// Pipelines is the pipeline service.
	Pipelines interface {
		GetRun(ctx context.Context, id string) (*pipeline.Run, error)
		ListRuns(ctx context.Context, q pipeline.RunQuery) ([]*pipeline.Run, string, error)
	}
)

// Stores is the Source over Kiln's stores. A nil store's nodes have no
// edges (and Describe says they are not found).
type Stores struct {
	Datasets  Datasets
	Tracking  Tracking
	Registry  Registry
	Endpoints Endpoints
	Monitors  Monitors
	Pipelines Pipelines
	// MaxScan bounds the pipeline runs and endpoints read to find the
	// runs an event triggered (DefaultMaxScan when 0).
	MaxScan int
	// Visible, if set, says whether the request of ctx may see a resource
	// of a workspace ("experiment" by id, "registered_model" or
	// "endpoint" by name; access.Visible): runs and logged models by
	// their experiment, model versions by their model, endpoints,
	// monitors and alerts by their endpoint. A node it hides is not
	// found, so a walk leaves it out.
	Visible func(ctx context.Context, resourceType, name string) bool
}

// The resource types of Visible.
const (
	visExperiment = "experiment"
	visModel      = "registered_model"
	visEndpoint   = "endpoint"
)

func (s *Stores) visible(ctx context.Context, rt, name string) bool {
	return s.Visible == nil || name == "" || s.Visible(ctx, rt, name)
}

// CopiedFromTag is the model-version tag naming the version a copy was
// made from ("WORKSPACE:NAME/VERSION").
const CopiedFromTag = "kiln.copied_from"

// RelCopied: model version → a copy of it (in another workspace).
const RelCopied = "copied"

// copiedFrom parses a CopiedFromTag value.
func copiedFrom(v string) (NodeID, bool) {
	_, ref, ok := strings.Cut(v, ":")
	if !ok {
		return NodeID{}, false
	}
	n, err := ParseNodeID("model:" + ref)
	return n, err == nil
}

// DefaultMaxScan is how many recent pipeline runs a walk reads to find
// those that an alert, a dataset version or a model version triggered.
const DefaultMaxScan = 2000

// PipelineRunTag is the tracking-run tag naming the pipeline run a run
// belongs to.
const PipelineRunTag = "kiln.pipeline.run"

// Walk walks the graph from root over the stores; the endpoints and the
// recent pipeline runs are read at most once per walk.
func (s *Stores) Walk(ctx context.Context, root NodeID, opts WalkOptions) (*Graph, error) {
	return Walk(ctx, &session{Stores: s}, root, opts)
}

// session is one walk's Source: it caches the lists that reverse edges are
// found in.
type session struct {
	*Stores
	endpoints []*deploy.State
	epLoaded  bool
	pruns     []*pipeline.Run
	prLoaded  bool
	// Each node is read by Describe and again for its edges: once is
	// enough in one walk.
	runs     map[string]*tracking.Run
	versions map[NodeID]*registry.ModelVersion
	// copies: 0 not asked yet, 1 some version is a copy, -1 none is.
	copies int
}

func (s *session) getRun(ctx context.Context, id string) (*tracking.Run, error) {
	if r, ok := s.runs[id]; ok {
		return r, nil
	}
	r, err := s.Tracking.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.runs == nil {
		s.runs = map[string]*tracking.Run{}
	}
	s.runs[id] = r
	return r, nil
}

func (s *session) getVersion(ctx context.Context, id NodeID) (*registry.ModelVersion, error) {
	if v, ok := s.versions[id]; ok {
		return v, nil
	}
	v, err := s.Registry.GetModelVersion(ctx, id.Name, id.Version)
	if err != nil {
		return nil, err
	}
	if s.versions == nil {
		s.versions = map[NodeID]*registry.ModelVersion{}
	}
	s.versions[id] = v
	return v, nil
}

// anyCopies says whether some model version is a copy (one query a walk).
func (s *session) anyCopies(ctx context.Context) (bool, error) {
	if s.copies == 0 {
		vs, _, err := s.Registry.SearchModelVersions(ctx, registry.SearchQuery{Filter: "tags.`" + CopiedFromTag + "` LIKE '%'", MaxResults: 1})
		if err != nil {
			return false, fmt.Errorf("search model versions: %w", err)
		}
		s.copies = -1
		if len(vs) > 0 {
			s.copies = 1
		}
	}
	return s.copies > 0, nil
}

var errNoStore = errors.New("not served by this server")

func notFound(id NodeID) error { return errdefs.NotFound("lineage node %s not found", id) }

func ms(t int64) string {
	if t <= 0 {
		return ""
	}
	return time.UnixMilli(t).UTC().Format(time.RFC3339)
}

func attrs(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func (s *session) Describe(ctx context.Context, id NodeID) (Node, error) {
	n := Node{ID: id.String(), Type: id.Type, Label: id.String()}
	var err error
	switch id.Type {
	case DatasetVersion:
		if s.Datasets == nil {
			return n, notFound(id)
		}
		var v *dataset.Version
		if v, err = s.Datasets.GetVersion(ctx, dataset.VersionRef{Dataset: id.Name, Version: id.Version}); err == nil {
			n.Label = v.Ref().String()
			n.Attrs = attrs("digest", v.Digest.String(), "kind", string(v.Kind), "created", ms(v.CreationTime), "created_by", v.CreatedBy,
				"files", strconv.FormatInt(v.FileCount, 10), "description", v.Description)
		}
	case Run:
		if s.Tracking == nil {
			return n, notFound(id)
		}
		var r *tracking.Run
		if r, err = s.getRun(ctx, id.Name); err == nil {
			n.Label = r.Info.RunName
			if n.Label == "" {
				n.Label = r.Info.RunID
			}
			n.Attrs = attrs("status", r.Info.Status, "experiment_id", r.Info.ExperimentID, "started", ms(r.Info.StartTime),
				"ended", msp(r.Info.EndTime), "user", r.Info.UserID)
			if !s.visible(ctx, visExperiment, r.Info.ExperimentID) {
				return n, notFound(id)
			}
		}
	case LoggedModel:
		if s.Tracking == nil {
			return n, notFound(id)
		}
		var m *tracking.LoggedModel
		if m, err = s.Tracking.GetLoggedModel(ctx, id.Name); err == nil {
			n.Label = m.Name
			n.Attrs = attrs("status", m.Status, "experiment_id", m.ExperimentID, "source_run_id", m.SourceRunID,
				"created", ms(m.CreationTime), "model_type", m.ModelType)
			if !s.visible(ctx, visExperiment, m.ExperimentID) {
				return n, notFound(id)
			}
		}
	case ModelVersion:
		if s.Registry == nil || !s.visible(ctx, visModel, id.Name) {
			return n, notFound(id)
		}
		var v *registry.ModelVersion
		if v, err = s.getVersion(ctx, id); err == nil {
			n.Label = v.Name + " v" + strconv.FormatInt(v.Version, 10)
			al := ""
			for i, a := range v.Aliases {
				if i > 0 {
					al += ","
				}
				al += a
			}
			n.Attrs = attrs("stage", v.CurrentStage, "aliases", al, "status", v.Status, "created", ms(v.CreationTime), "source", v.Source)
		}
	case Endpoint:
		if s.Endpoints == nil || !s.visible(ctx, visEndpoint, id.Name) {
			return n, notFound(id)
		}
		var st *deploy.State
		if st, err = s.Endpoints.Get(ctx, id.Name); err == nil {
			n.Label = id.Name
			routes := ""
			for i, r := range st.Status.Routes {
				if i > 0 {
					routes += ", "
				}
				routes += fmt.Sprintf("%s=%s/%d@%g", r.Name, r.Model, r.Version, r.Weight)
			}
			n.Attrs = attrs("routes", routes, "updated", ms(st.Status.UpdatedAt))
		}
	case Monitor:
		if s.Monitors == nil {
			return n, notFound(id)
		}
		var m *monitor.StoredMonitor
		if m, err = s.Monitors.Get(ctx, id.Name); err == nil {
			n.Label = id.Name
			n.Attrs = attrs("endpoint", m.Monitor.Spec.Endpoint, "generation", strconv.FormatInt(m.Generation, 10))
			if !s.visible(ctx, visEndpoint, m.Monitor.Spec.Endpoint) {
				return n, notFound(id)
			}
		}
	case Alert:
		if s.Monitors == nil {
			return n, notFound(id)
		}
		n.Label = id.Name + "/" + id.Rule
		if s.Visible != nil {
			m, err := s.Monitors.Get(ctx, id.Name)
			if err != nil {
				return n, err
			}
			if !s.visible(ctx, visEndpoint, m.Monitor.Spec.Endpoint) {
				return n, notFound(id)
			}
		}
		var found bool
		active, err2 := s.Monitors.ActiveAlerts(ctx, id.Name)
		if err2 != nil && !errors.Is(err2, errdefs.ErrNotFound) {
			return n, err2
		}
		for _, a := range active {
			if a.Rule == id.Rule {
				found = true
				n.Attrs = attrs("state", a.State, "severity", a.Severity, "fired", a.FiredAt.UTC().Format(time.RFC3339))
				break
			}
		}
		if !found {
			hist, err2 := s.Monitors.AlertHistory(ctx, alert.HistoryQuery{Monitor: id.Name, Rule: id.Rule, Limit: 1})
			if err2 != nil && !errors.Is(err2, errdefs.ErrNotFound) {
				return n, err2
			}
			if len(hist) == 0 {
				return n, notFound(id)
			}
			n.Attrs = attrs("state", hist[0].State, "last_event", hist[0].Time.UTC().Format(time.RFC3339))
		}
	case PipelineRun:
		if s.Pipelines == nil {
			return n, notFound(id)
		}
		var r *pipeline.Run
		if r, err = s.Pipelines.GetRun(ctx, id.Name); err == nil {
			n.Label = r.Pipeline + " " + r.ID
			cause := ""
			if r.Cause != nil {
				cause = r.Cause.Type
				if r.Cause.Name != "" {
					cause += "/" + r.Cause.Name
				}
			}
			n.Attrs = attrs("pipeline", r.Pipeline, "state", r.State, "cause", cause, "created", ms(r.CreationTime), "ended", ms(r.EndTime))
		}
	default:
		return n, notFound(id)
	}
	if err != nil {
		return n, err
	}
	return n, nil
}

// trainingSourceTag prefixes the tags of a training-set version naming
// the source version of each feature view (feature.TagSourcePrefix).
const trainingSourceTag = "kiln.training_set.source."

func (s *session) Upstream(ctx context.Context, id NodeID) ([]Link, error) {
	var out []Link
	add := func(n NodeID, rel string) { out = append(out, Link{Node: n, Relation: rel}) }
	switch id.Type {
	case DatasetVersion:
		if s.Datasets == nil {
			return nil, nil
		}
		v, err := s.Datasets.GetVersion(ctx, dataset.VersionRef{Dataset: id.Name, Version: id.Version})
		if err != nil {
			return nil, err
		}
		if v.Parent != nil {
			add(NodeID{Type: DatasetVersion, Name: v.Parent.Dataset, Version: v.Parent.Version}, RelDerived)
		}
		// A training set (feature.TrainingSet) also derives from the
		// source version of each feature view it read, named by its tags.
		for _, k := range slices.Sorted(maps.Keys(v.Tags)) {
			if !strings.HasPrefix(k, trainingSourceTag) {
				continue
			}
			if ref, err := dataset.ParseVersionRef(v.Tags[k]); err == nil && ref.Version > 0 {
				add(NodeID{Type: DatasetVersion, Name: ref.Dataset, Version: ref.Version}, RelDerived)
			}
		}
	case Run:
		if s.Datasets != nil {
			links, err := s.Datasets.VersionsOfRun(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			for _, l := range links {
				add(NodeID{Type: DatasetVersion, Name: l.Version.Dataset, Version: l.Version.Version}, RelInput)
			}
		}
		if s.Tracking != nil {
			r, err := s.getRun(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			for _, m := range r.ModelInputs {
				add(NodeID{Type: LoggedModel, Name: m}, RelInput)
			}
			for _, t := range r.Tags {
				if t.Key == PipelineRunTag && t.Value != "" {
					add(NodeID{Type: PipelineRun, Name: t.Value}, RelRan)
				}
			}
		}
	case LoggedModel:
		if s.Tracking != nil {
			m, err := s.Tracking.GetLoggedModel(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			if m.SourceRunID != "" {
				add(NodeID{Type: Run, Name: m.SourceRunID}, RelOutput)
			}
		}
	case ModelVersion:
		if s.Registry != nil {
			v, err := s.getVersion(ctx, id)
			if err != nil {
				return nil, err
			}
			switch {
			case v.ModelID != "":
				add(NodeID{Type: LoggedModel, Name: v.ModelID}, RelRegistered)
			case v.RunID != "":
				add(NodeID{Type: Run, Name: v.RunID}, RelRegistered)
			}
			for _, t := range v.Tags {
				if t.Key == CopiedFromTag {
					if src, ok := copiedFrom(t.Value); ok {
						add(src, RelCopied)
					}
				}
			}
		}
		if s.Datasets != nil {
			uses, err := s.Datasets.VersionsOfModel(ctx, id.Name, id.Version)
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return nil, err
			}
			for _, u := range uses {
				if u.Via == "link" {
					add(NodeID{Type: DatasetVersion, Name: u.Version.Dataset, Version: u.Version.Version}, RelTrained)
				}
			}
		}
	case Endpoint:
		if s.Endpoints != nil {
			st, err := s.Endpoints.Get(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			for _, mv := range servedBy(st) {
				add(mv, RelServes)
			}
		}
	case Monitor:
		if s.Monitors != nil {
			m, err := s.Monitors.Get(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			if m.Monitor.Spec.Endpoint != "" {
				add(NodeID{Type: Endpoint, Name: m.Monitor.Spec.Endpoint}, RelWatches)
			}
		}
	case Alert:
		add(NodeID{Type: Monitor, Name: id.Name}, RelFired)
	case PipelineRun:
		if s.Pipelines != nil {
			r, err := s.Pipelines.GetRun(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			if c := causeNode(r); c != nil {
				add(*c, RelTriggered)
			}
			if r.ResumedFrom != "" {
				add(NodeID{Type: PipelineRun, Name: r.ResumedFrom}, RelResumed)
			}
		}
	}
	return out, nil
}

func (s *session) Downstream(ctx context.Context, id NodeID) ([]Link, error) {
	var out []Link
	add := func(n NodeID, rel string) { out = append(out, Link{Node: n, Relation: rel}) }
	switch id.Type {
	case DatasetVersion:
		if s.Datasets != nil {
			ref := dataset.VersionRef{Dataset: id.Name, Version: id.Version}
			kids, err := s.Datasets.Children(ctx, ref)
			if err != nil {
				return nil, err
			}
			for _, k := range kids {
				add(NodeID{Type: DatasetVersion, Name: k.Dataset, Version: k.Version}, RelDerived)
			}
			runs, err := s.Datasets.RunsOfVersion(ctx, ref)
			if err != nil {
				return nil, err
			}
			for _, r := range runs {
				add(NodeID{Type: Run, Name: r.RunID}, RelInput)
			}
			models, err := s.Datasets.ModelsOfVersion(ctx, ref)
			if err != nil {
				return nil, err
			}
			for _, m := range models {
				if m.Via == "link" {
					add(NodeID{Type: ModelVersion, Name: m.ModelName, Version: m.ModelVersion}, RelTrained)
				}
			}
		}
		if err := s.triggered(ctx, id, add); err != nil {
			return nil, err
		}
	case Run:
		if s.Tracking != nil {
			r, err := s.getRun(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			for _, o := range r.ModelOutputs {
				add(NodeID{Type: LoggedModel, Name: o.ModelID}, RelOutput)
			}
		}
		if s.Registry != nil {
			vs, err := s.searchVersions(ctx, "run_id = '"+quote(id.Name)+"'")
			if err != nil {
				return nil, err
			}
			for _, v := range vs {
				if v.ModelID == "" {
					add(NodeID{Type: ModelVersion, Name: v.Name, Version: v.Version}, RelRegistered)
				}
			}
		}
	case LoggedModel:
		if s.Registry != nil {
			vs, err := s.searchVersions(ctx, "model_id = '"+quote(id.Name)+"'")
			if err != nil {
				return nil, err
			}
			for _, v := range vs {
				add(NodeID{Type: ModelVersion, Name: v.Name, Version: v.Version}, RelRegistered)
			}
		}
	case ModelVersion:
		copies := false
		if s.Registry != nil && !strings.ContainsAny(id.Name, `'\`) { // LIKE's % and _ also match themselves; the tag is compared exactly below
			var err error
			if copies, err = s.anyCopies(ctx); err != nil {
				return nil, err
			}
		}
		if copies {
			ref := id.Name + "/" + strconv.FormatInt(id.Version, 10)
			vs, err := s.searchVersions(ctx, "tags.`"+CopiedFromTag+"` LIKE '%:"+ref+"'")
			if err != nil {
				return nil, err
			}
			for _, v := range vs {
				for _, t := range v.Tags {
					if src, ok := copiedFrom(t.Value); t.Key == CopiedFromTag && ok && src == id {
						add(NodeID{Type: ModelVersion, Name: v.Name, Version: v.Version}, RelCopied)
					}
				}
			}
		}
		eps, err := s.allEndpoints(ctx)
		if err != nil {
			return nil, err
		}
		for _, st := range eps {
			for _, mv := range servedBy(st) {
				if mv == id {
					add(NodeID{Type: Endpoint, Name: st.Endpoint.Metadata.Name}, RelServes)
					break
				}
			}
		}
		if err := s.triggered(ctx, id, add); err != nil {
			return nil, err
		}
	case Endpoint:
		if s.Monitors != nil {
			ms, err := s.Monitors.List(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				add(NodeID{Type: Monitor, Name: m.Monitor.Metadata.Name}, RelWatches)
			}
		}
	case Monitor:
		if s.Monitors != nil {
			rules := map[string]bool{}
			active, err := s.Monitors.ActiveAlerts(ctx, id.Name)
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return nil, err
			}
			for _, a := range active {
				rules[a.Rule] = true
			}
			hist, err := s.Monitors.AlertHistory(ctx, alert.HistoryQuery{Monitor: id.Name, Limit: 1000})
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return nil, err
			}
			for _, e := range hist {
				rules[e.Rule] = true
			}
			for _, r := range sortedKeys(rules) {
				add(NodeID{Type: Alert, Name: id.Name, Rule: r}, RelFired)
			}
		}
	case Alert:
		if err := s.triggered(ctx, id, add); err != nil {
			return nil, err
		}
	case PipelineRun:
		if s.Pipelines != nil {
			r, err := s.Pipelines.GetRun(ctx, id.Name)
			if err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			for _, tr := range append([]string{r.TrackingRunID}, stepRuns(r)...) {
				if tr != "" && !seen[tr] {
					seen[tr] = true
					add(NodeID{Type: Run, Name: tr}, RelRan)
				}
			}
			runs, err := s.pipelineRuns(ctx)
			if err != nil {
				return nil, err
			}
			for _, pr := range runs {
				if pr.ResumedFrom == id.Name {
					add(NodeID{Type: PipelineRun, Name: pr.ID}, RelResumed)
				}
			}
		}
	}
	return out, nil
}

// servedBy lists the model versions an endpoint's live routes and shadow
// reach.
func servedBy(st *deploy.State) []NodeID {
	var out []NodeID
	seen := map[NodeID]bool{}
	addMV := func(model string, version int64) {
		n := NodeID{Type: ModelVersion, Name: model, Version: version}
		if model != "" && version > 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, r := range st.Status.Routes {
		addMV(r.Model, r.Version)
	}
	if sh := st.Status.Shadow; sh != nil {
		addMV(sh.Model, sh.Version)
	}
	return out
}

func stepRuns(r *pipeline.Run) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.TrackingRunID)
	}
	return out
}

// causeNode is the node whose event started a pipeline run (an alert, a
// dataset version or a model version), or nil.
func causeNode(r *pipeline.Run) *NodeID {
	c := r.Cause
	if c == nil || c.Type != "trigger" || c.Event == nil {
		return nil
	}
	ev := c.Event
	switch {
	case ev["monitor"] != "" && ev["rule"] != "":
		return &NodeID{Type: Alert, Name: ev["monitor"], Rule: ev["rule"]}
	case ev["dataset"] != "":
		if v, err := strconv.ParseInt(ev["version"], 10, 64); err == nil && v > 0 {
			return &NodeID{Type: DatasetVersion, Name: ev["dataset"], Version: v}
		}
	case ev["model"] != "":
		if v, err := strconv.ParseInt(ev["version"], 10, 64); err == nil && v > 0 {
			return &NodeID{Type: ModelVersion, Name: ev["model"], Version: v}
		}
	}
	return nil
}

// triggered adds the pipeline runs whose cause is id.
func (s *session) triggered(ctx context.Context, id NodeID, add func(NodeID, string)) error {
	runs, err := s.pipelineRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if c := causeNode(r); c != nil && *c == id {
			add(NodeID{Type: PipelineRun, Name: r.ID}, RelTriggered)
		}
	}
	return nil
}

func (s *session) maxScan() int {
	if s.MaxScan > 0 {
		return s.MaxScan
	}
	return DefaultMaxScan
}

// pipelineRuns reads the most recent pipeline runs (at most MaxScan), once
// per walk.
func (s *session) pipelineRuns(ctx context.Context) ([]*pipeline.Run, error) {
	if s.prLoaded || s.Pipelines == nil {
		return s.pruns, nil
	}
	q := pipeline.RunQuery{Limit: min(1000, s.maxScan())}
	for len(s.pruns) < s.maxScan() {
		runs, next, err := s.Pipelines.ListRuns(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list pipeline runs: %w", err)
		}
		s.pruns = append(s.pruns, runs...)
		if next == "" {
			break
		}
		q.PageToken = next
	}
	s.prLoaded = true
	return s.pruns, nil
}

func (s *session) allEndpoints(ctx context.Context) ([]*deploy.State, error) {
	if s.epLoaded || s.Endpoints == nil {
		return s.endpoints, nil
	}
	eps, err := s.Endpoints.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	s.endpoints, s.epLoaded = eps, true
	return eps, nil
}

// searchVersions pages through the model versions matching filter.
func (s *session) searchVersions(ctx context.Context, filter string) ([]*registry.ModelVersion, error) {
	var out []*registry.ModelVersion
	q := registry.SearchQuery{Filter: filter, MaxResults: 1000}
	for len(out) < s.maxScan() {
		vs, next, err := s.Registry.SearchModelVersions(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("search model versions: %w", err)
		}
		out = append(out, vs...)
		if next == "" {
			break
		}
		q.PageToken = next
	}
	return out, nil
}

// quote makes a value safe in a single-quoted filter string: run and
// logged-model ids never hold quotes, so one that does matches nothing.
func quote(s string) string {
	if strings.ContainsAny(s, "'\\") {
		return "\x00"
	}
	return s
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func msp(t *int64) string {
	if t == nil {
		return ""
	}
	return ms(*t)
}
