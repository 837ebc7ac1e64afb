package lineage

// Model cards: what Kiln stores about a registered model version, laid
// out in the Model Card Toolkit's sections (model details, model
// parameters, quantitative analysis, considerations), plus the text people
// write (an overview, a license, the considerations), which is kept as
// tags of the model version (CardTagPrefix).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/tracking"
)

// CardSchemaVersion names the layout of ModelCard's JSON form.
const CardSchemaVersion = "kiln.dev/model-card/v1"

// CardTagPrefix starts the model version tags that hold a card's edited
// text: kiln.card.overview, kiln.card.license, kiln.card.users,
// kiln.card.use_cases, kiln.card.limitations, kiln.card.tradeoffs,
// kiln.card.ethical_considerations (lists as JSON arrays of strings), and
// kiln.card.updated_by / kiln.card.updated_at (who edited last, when).
const CardTagPrefix = "kiln.card."

// MaxCardText bounds one edited field as stored (a tag value: MLflow's
// limit of 5000 characters; a list counts as its JSON encoding).
const MaxCardText = 5000

// SliceMetricInfix marks a run metric computed on a slice:
// "accuracy/slice/region:eu" is accuracy on the slice region=eu (MLflow's
// metric names allow no "=", so the column and value are split at the
// first ":").
const SliceMetricInfix = "/slice/"

// maxMLmodelBytes bounds the MLmodel file read for the signature.
const maxMLmodelBytes = 1 << 20

// ModelCard is a model version's card. Its JSON form follows the Model
// Card Toolkit's field names where they exist.
type ModelCard struct {
	SchemaVersion        string               `json:"schema_version"`
	ModelDetails         ModelDetails         `json:"model_details"`
	ModelParameters      ModelParameters      `json:"model_parameters"`
	QuantitativeAnalysis QuantitativeAnalysis `json:"quantitative_analysis"`
	Considerations       Considerations       `json:"considerations"`
	// GeneratedAt is when the card was assembled (RFC 3339, UTC).
	GeneratedAt string `json:"generated_at"`
	// Notes say what could not be read (a missing MLmodel file, a store
	// that failed); the card is still served without it.
	Notes []string `json:"notes,omitempty"`
}

// ModelDetails identifies the version.
type ModelDetails struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	// Overview is edited text; Description is the model version's
	// description (else the registered model's), as MLflow stores it.
	Overview    string  `json:"overview,omitempty"`
	Description string  `json:"description,omitempty"`
	Owners      []Owner `json:"owners,omitempty"`
	// VersionDate is when the version was registered (RFC 3339, UTC).
	VersionDate string            `json:"version_date,omitempty"`
	References  []Reference       `json:"references,omitempty"`
	Licenses    []License         `json:"licenses,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Aliases     []string          `json:"aliases,omitempty"`
	Stage       string            `json:"stage,omitempty"`
	Status      string            `json:"status,omitempty"`
	RunID       string            `json:"run_id,omitempty"`
	ModelID     string            `json:"model_id,omitempty"`
	// Endpoints are the endpoints whose live routes send the version
	// traffic (a weight above 0) or whose shadow mirrors to it.
	Endpoints []string `json:"endpoints,omitempty"`
	// TextUpdatedBy and TextUpdatedAt say who edited the card's text last
	// and when.
	TextUpdatedBy string `json:"text_updated_by,omitempty"`
	TextUpdatedAt string `json:"text_updated_at,omitempty"`
}

// Owner is someone the stores name for the version: who registered it,
// who ran its training run.
type Owner struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
}

// Reference is a URI the version can be found at.
type Reference struct {
	Reference string `json:"reference"`
	Kind      string `json:"kind,omitempty"`
}

// License is the version's license, as edited.
type License struct {
	Identifier string `json:"identifier,omitempty"`
	CustomText string `json:"custom_text,omitempty"`
}

// ModelParameters describe the model and the data it was trained on.
type ModelParameters struct {
	// ModelArchitecture is the run's estimator_class tag (set by MLflow's
	// autologging), else the logged model's model_type, else the flavors.
	ModelArchitecture string   `json:"model_architecture,omitempty"`
	Flavors           []string `json:"flavors,omitempty"`
	// Params are the training run's parameters.
	Params []Param `json:"params,omitempty"`
	// Input and Output are the MLmodel signature's columns or tensors.
	Input  []SignatureField `json:"input_format,omitempty"`
	Output []SignatureField `json:"output_format,omitempty"`
	// Data are the training datasets: dataset versions linked to the
	// version or its run, and MLflow dataset inputs of the run.
	Data []CardDataset `json:"data,omitempty"`
}

// Param is one parameter.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SignatureField is one column or tensor of a signature.
type SignatureField struct {
	Name string `json:"name,omitempty"`
	Type string `json:"type"`
}

// CardDataset is one dataset the version was trained with.
type CardDataset struct {
	// Name is the Kiln dataset version (NAME@N) or the MLflow dataset's
	// name.
	Name string `json:"name"`
	// Via is link (linked to the model version), run (used by its run),
	// or mlflow (an MLflow input of the run that is no Kiln version).
	Via     string `json:"via"`
	RunID   string `json:"run_id,omitempty"`
	Context string `json:"context,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Source  string `json:"source,omitempty"`
}

// QuantitativeAnalysis holds the measured performance.
type QuantitativeAnalysis struct {
	PerformanceMetrics []PerformanceMetric `json:"performance_metrics"`
}

// PerformanceMetric is one measured value.
type PerformanceMetric struct {
	Type  string  `json:"type"`
	Value float64 `json:"value"`
	// Slice is empty for the whole data, else "column=value" (a run
	// metric's slice is what its name has after SliceMetricInfix).
	Slice string `json:"slice,omitempty"`
	// Source is where the value is from: logged-model:ID, run:ID,
	// gate:POLICY or monitor:NAME.
	Source string `json:"source"`
	// Dataset is the data it was computed on, where known; Window the
	// monitor window (RFC 3339 start/end).
	Dataset string `json:"dataset,omitempty"`
	Window  string `json:"window,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Considerations are edited text.
type Considerations struct {
	Users                 []string `json:"users,omitempty"`
	UseCases              []string `json:"use_cases,omitempty"`
	Limitations           []string `json:"limitations,omitempty"`
	Tradeoffs             []string `json:"tradeoffs,omitempty"`
	EthicalConsiderations []string `json:"ethical_considerations,omitempty"`
}

// CardEdit changes a card's text: a nil field is left as it is, an empty
// one is cleared.
type CardEdit struct {
	Overview       *string             `json:"overview,omitempty" yaml:"overview,omitempty"`
	License        *string             `json:"license,omitempty" yaml:"license,omitempty"`
	Considerations *ConsiderationsEdit `json:"considerations,omitempty" yaml:"considerations,omitempty"`
}

// ConsiderationsEdit changes the considerations, field by field.
type ConsiderationsEdit struct {
	Users                 *[]string `json:"users,omitempty" yaml:"users,omitempty"`
	UseCases              *[]string `json:"use_cases,omitempty" yaml:"use_cases,omitempty"`
	Limitations           *[]string `json:"limitations,omitempty" yaml:"limitations,omitempty"`
	Tradeoffs             *[]string `json:"tradeoffs,omitempty" yaml:"tradeoffs,omitempty"`
	EthicalConsiderations *[]string `json:"ethical_considerations,omitempty" yaml:"ethical_considerations,omitempty"`
}

// The stores a card is built from, as small as the builder needs them.
type (
	// CardRegistry is a *registry.Store.
	CardRegistry interface {
		GetRegisteredModel(ctx context.Context, name string) (*registry.RegisteredModel, error)
		GetModelVersion(ctx context.Context, name string, version int64) (*registry.ModelVersion, error)
		SetModelVersionTag(ctx context.Context, name string, version int64, key, value string) error
		DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error
	}
	// CardTracking is a *tracking.Store.
	CardTracking interface {
		GetRun(ctx context.Context, id string) (*tracking.Run, error)
		GetLoggedModel(ctx context.Context, id string) (*tracking.LoggedModel, error)
	}
	// CardDatasets is a *dataset.Store.
	CardDatasets interface {
		VersionsOfModel(ctx context.Context, modelName string, modelVersion int64) ([]dataset.VersionUse, error)
		VersionsOfRun(ctx context.Context, runID string) ([]dataset.RunLink, error)
	}
	// CardGates is a *gate.Service.
	CardGates interface {
		Results(ctx context.Context, model string, version int64, policy string) ([]*gate.Result, error)
	}
	// CardEndpoints is a *deploy.Manager.
	CardEndpoints interface {
		List(ctx context.Context) ([]*deploy.State, error)
	}
	// CardMonitors is the monitoring service.
	CardMonitors interface {
		List(ctx context.Context, endpoint string) ([]*monitor.StoredMonitor, error)
		Latest(ctx context.Context, name string) (*monitor.Result, error)
	}
	// CardArtifacts is the artifact store (a *blob.Bucket), where the
	// version's MLmodel file is read from.
	CardArtifacts interface {
		Get(ctx context.Context, key string) (*blob.Object, error)
	}
)

// Cards builds model cards. Registry is needed; every other store is
// optional (a nil one leaves its part of the card empty).
type Cards struct {
	Registry  CardRegistry
	Tracking  CardTracking
	Datasets  CardDatasets
	Gates     CardGates
	Endpoints CardEndpoints
	Monitors  CardMonitors
	Artifacts CardArtifacts
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Card tag keys.
const (
	tagOverview    = CardTagPrefix + "overview"
	tagLicense     = CardTagPrefix + "license"
	tagUsers       = CardTagPrefix + "users"
	tagUseCases    = CardTagPrefix + "use_cases"
	tagLimitations = CardTagPrefix + "limitations"
	tagTradeoffs   = CardTagPrefix + "tradeoffs"
	tagEthical     = CardTagPrefix + "ethical_considerations"
	tagUpdatedBy   = CardTagPrefix + "updated_by"
	tagUpdatedAt   = CardTagPrefix + "updated_at"
)

func (c *Cards) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Card assembles the card of a model version from the stores.
func (c *Cards) Card(ctx context.Context, name string, version int64) (*ModelCard, error) {
	if c.Registry == nil {
		return nil, errdefs.NotImplemented("This server has no model registry")
	}
	mv, err := c.Registry.GetModelVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	b := &cardBuild{c: c, mv: mv, card: &ModelCard{SchemaVersion: CardSchemaVersion, GeneratedAt: c.now().UTC().Format(time.RFC3339)}}
	if err := b.details(ctx); err != nil {
		return nil, err
	}
	if err := b.run(ctx); err != nil {
		return nil, err
	}
	b.mlmodel(ctx)
	if err := b.datasets(ctx); err != nil {
		return nil, err
	}
	if err := b.gates(ctx); err != nil {
		return nil, err
	}
	if err := b.monitors(ctx); err != nil {
		return nil, err
	}
	b.card.ModelParameters.Flavors = dedupe(b.card.ModelParameters.Flavors)
	if b.card.ModelParameters.ModelArchitecture == "" && len(b.card.ModelParameters.Flavors) > 0 {
		b.card.ModelParameters.ModelArchitecture = strings.Join(b.card.ModelParameters.Flavors, ", ")
	}
	if b.card.QuantitativeAnalysis.PerformanceMetrics == nil {
		b.card.QuantitativeAnalysis.PerformanceMetrics = []PerformanceMetric{}
	}
	return b.card, nil
}

// EditCard changes the edited text of a version's card (each field one
// model version tag, set or deleted), records who did it and returns the
// card. Every field is checked before any is written.
func (c *Cards) EditCard(ctx context.Context, name string, version int64, edit CardEdit, actor string) (*ModelCard, error) {
	if c.Registry == nil {
		return nil, errdefs.NotImplemented("This server has no model registry")
	}
	type change struct{ key, value string }
	var changes []change
	text := func(key, field string, v *string) error {
		if v == nil {
			return nil
		}
		s := strings.TrimSpace(*v)
		if err := checkCardText(field, s); err != nil {
			return err
		}
		changes = append(changes, change{key, s})
		return nil
	}
	list := func(key, field string, v *[]string) error {
		if v == nil {
			return nil
		}
		var items []string
		for i, s := range *v {
			s = strings.TrimSpace(s)
			if err := checkCardText(fmt.Sprintf("%s[%d]", field, i), s); err != nil {
				return err
			}
			if s != "" {
				items = append(items, s)
			}
		}
		value := ""
		if len(items) > 0 {
			data, err := json.Marshal(items)
			if err != nil {
				return err
			}
			value = string(data)
		}
		if len(value) > MaxCardText {
			return errdefs.Invalid("Model card field '%s' is %d characters as stored; at most %d", field, len(value), MaxCardText)
		}
		changes = append(changes, change{key, value})
		return nil
	}
	errs := []error{text(tagOverview, "overview", edit.Overview), text(tagLicense, "license", edit.License)}
	if ce := edit.Considerations; ce != nil {
		errs = append(errs, list(tagUsers, "considerations.users", ce.Users), list(tagUseCases, "considerations.use_cases", ce.UseCases),
			list(tagLimitations, "considerations.limitations", ce.Limitations), list(tagTradeoffs, "considerations.tradeoffs", ce.Tradeoffs),
			list(tagEthical, "considerations.ethical_considerations", ce.EthicalConsiderations))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return nil, errdefs.Invalid("A model card edit needs at least one of overview, license or considerations")
	}
	if _, err := c.Registry.GetModelVersion(ctx, name, version); err != nil {
		return nil, err
	}
	if len(actor) > MaxCardText {
		actor = actor[:MaxCardText]
	}
	changes = append(changes, change{tagUpdatedBy, actor}, change{tagUpdatedAt, c.now().UTC().Format(time.RFC3339)})
	for _, ch := range changes {
		var err error
		if ch.value == "" {
			err = c.Registry.DeleteModelVersionTag(ctx, name, version, ch.key)
			if errors.Is(err, errdefs.ErrNotFound) {
				err = nil // a tag that was never set
			}
		} else {
			err = c.Registry.SetModelVersionTag(ctx, name, version, ch.key, ch.value)
		}
		if err != nil {
			return nil, fmt.Errorf("model card %s/%d: write %s: %w", name, version, ch.key, err)
		}
	}
	return c.Card(ctx, name, version)
}

func checkCardText(field, s string) error {
	switch {
	case !utf8.ValidString(s):
		return errdefs.Invalid("Model card field '%s' is not valid UTF-8", field)
	case strings.ContainsRune(s, 0):
		return errdefs.Invalid("Model card field '%s' holds a NUL character", field)
	case len(s) > MaxCardText:
		return errdefs.Invalid("Model card field '%s' is %d bytes; at most %d", field, len(s), MaxCardText)
	}
	return nil
}

// cardBuild is one card being assembled.
type cardBuild struct {
	c        *Cards
	mv       *registry.ModelVersion
	trainRun *tracking.Run
	card     *ModelCard
}

func (b *cardBuild) note(format string, args ...any) {
	b.card.Notes = append(b.card.Notes, fmt.Sprintf(format, args...))
}

func ms3339(t int64) string {
	if t <= 0 {
		return ""
	}
	return time.UnixMilli(t).UTC().Format(time.RFC3339)
}

func (b *cardBuild) details(ctx context.Context) error {
	mv, d := b.mv, &b.card.ModelDetails
	d.Name, d.Version, d.Description = mv.Name, mv.Version, mv.Description
	d.VersionDate, d.Stage, d.Status, d.RunID, d.ModelID = ms3339(mv.CreationTime), mv.CurrentStage, mv.Status, mv.RunID, mv.ModelID
	d.Aliases = slices.Clone(mv.Aliases)
	slices.Sort(d.Aliases)
	if d.Description == "" {
		rm, err := b.c.Registry.GetRegisteredModel(ctx, mv.Name)
		if err != nil {
			return err
		}
		d.Description = rm.Description
	}
	if mv.UserID != "" {
		d.Owners = append(d.Owners, Owner{Name: mv.UserID, Role: "registered the version"})
	}
	d.References = append(d.References, Reference{Reference: "models:/" + mv.Name + "/" + strconv.FormatInt(mv.Version, 10), Kind: "model_uri"})
	if mv.Source != "" {
		d.References = append(d.References, Reference{Reference: mv.Source, Kind: "source"})
	}
	if mv.StorageLocation != "" && mv.StorageLocation != mv.Source {
		d.References = append(d.References, Reference{Reference: mv.StorageLocation, Kind: "storage_location"})
	}
	if mv.RunLink != "" {
		d.References = append(d.References, Reference{Reference: mv.RunLink, Kind: "run_link"})
	}
	cons := &b.card.Considerations
	for _, t := range mv.Tags {
		switch t.Key {
		case tagOverview:
			d.Overview = t.Value
		case tagLicense:
			d.Licenses = []License{license(t.Value)}
		case tagUsers:
			cons.Users = b.list(t)
		case tagUseCases:
			cons.UseCases = b.list(t)
		case tagLimitations:
			cons.Limitations = b.list(t)
		case tagTradeoffs:
			cons.Tradeoffs = b.list(t)
		case tagEthical:
			cons.EthicalConsiderations = b.list(t)
		case tagUpdatedBy:
			d.TextUpdatedBy = t.Value
		case tagUpdatedAt:
			d.TextUpdatedAt = t.Value
		default:
			if !strings.HasPrefix(t.Key, CardTagPrefix) {
				if d.Tags == nil {
					d.Tags = map[string]string{}
				}
				d.Tags[t.Key] = t.Value
			}
		}
	}
	return nil
}

// license is an SPDX-like identifier (one word) or a custom text.
func license(s string) License {
	if !strings.ContainsAny(s, " \t\n") && len(s) <= 64 {
		return License{Identifier: s}
	}
	return License{CustomText: s}
}

// list decodes a list tag: a JSON array of strings, or (set by hand
// through MLflow) plain text, one item.
func (b *cardBuild) list(t registry.KV) []string {
	var items []string
	if err := json.Unmarshal([]byte(t.Value), &items); err == nil {
		return items
	}
	if s := strings.TrimSpace(t.Value); s != "" {
		return []string{s}
	}
	return nil
}

// runID is the version's training run: its run, else its logged model's
// source run.
func (b *cardBuild) runID(ctx context.Context) (string, *tracking.LoggedModel, error) {
	var lm *tracking.LoggedModel
	if b.mv.ModelID != "" && b.c.Tracking != nil {
		m, err := b.c.Tracking.GetLoggedModel(ctx, b.mv.ModelID)
		switch {
		case err == nil:
			lm = m
		case errors.Is(err, errdefs.ErrNotFound):
			b.note("logged model %s not found", b.mv.ModelID)
		default:
			return "", nil, err
		}
	}
	if b.mv.RunID != "" {
		return b.mv.RunID, lm, nil
	}
	if lm != nil {
		return lm.SourceRunID, lm, nil
	}
	return "", nil, nil
}

func (b *cardBuild) run(ctx context.Context) error {
	if b.c.Tracking == nil {
		return nil
	}
	id, lm, err := b.runID(ctx)
	if err != nil {
		return err
	}
	p := &b.card.ModelParameters
	modelKeys := map[string]bool{}
	if lm != nil {
		if lm.ModelType != "" {
			p.ModelArchitecture = lm.ModelType
		}
		for _, kv := range lm.Params {
			p.Params = append(p.Params, Param{Name: kv.Key, Value: kv.Value})
		}
		// Metrics logged with the model's id are the model's own.
		for _, m := range sortedMetrics(lm.Metrics) {
			modelKeys[m.Key] = true
			b.addLoggedMetric("logged-model:"+lm.ID, m)
		}
	}
	if id == "" {
		return nil
	}
	r, err := b.c.Tracking.GetRun(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		b.note("training run %s not found", id)
		return nil
	}
	if err != nil {
		return err
	}
	b.trainRun = r
	d := &b.card.ModelDetails
	if d.RunID == "" {
		d.RunID = id
	}
	if u := r.Info.UserID; u != "" && !slices.ContainsFunc(d.Owners, func(o Owner) bool { return o.Name == u }) {
		d.Owners = append(d.Owners, Owner{Name: u, Role: "ran the training run"})
	}
	d.References = append(d.References, Reference{Reference: "runs:/" + id, Kind: "training_run"})
	seen := map[string]bool{}
	for _, kv := range p.Params {
		seen[kv.Name] = true
	}
	for _, kv := range r.Params {
		if !seen[kv.Key] {
			p.Params = append(p.Params, Param{Name: kv.Key, Value: kv.Value})
		}
	}
	sort.SliceStable(p.Params, func(i, j int) bool { return p.Params[i].Name < p.Params[j].Name })
	for _, t := range r.Tags {
		if t.Key == "estimator_class" && t.Value != "" {
			p.ModelArchitecture = t.Value
		}
	}
	for _, m := range sortedMetrics(r.Metrics) {
		if modelKeys[m.Key] {
			continue // the logged model's own value is above
		}
		b.addLoggedMetric("run:"+id, m)
	}
	return nil
}

// sortedMetrics returns the last value of each key (the list is in
// logging order), sorted by key.
func sortedMetrics(ms []tracking.Metric) []tracking.Metric {
	last := map[string]tracking.Metric{}
	for _, m := range ms {
		last[m.Key] = m
	}
	out := make([]tracking.Metric, 0, len(last))
	for _, k := range sortedKeysOf(last) {
		out = append(out, last[k])
	}
	return out
}

// addLoggedMetric adds a metric of a run or a logged model; a name
// with SliceMetricInfix is a slice's.
func (b *cardBuild) addLoggedMetric(source string, m tracking.Metric) {
	typ, slice := m.Key, ""
	if k, s, ok := strings.Cut(m.Key, SliceMetricInfix); ok && k != "" && s != "" {
		if col, val, ok := strings.Cut(s, ":"); ok {
			s = col + "=" + val
		}
		typ, slice = k, s
	}
	b.addMetric(PerformanceMetric{Type: typ, Value: m.Value, Slice: slice, Source: source, Dataset: m.DatasetName})
}

// addMetric adds a metric whose value is a number JSON can hold.
func (b *cardBuild) addMetric(m PerformanceMetric) {
	if isFinite(m.Value) {
		b.card.QuantitativeAnalysis.PerformanceMetrics = append(b.card.QuantitativeAnalysis.PerformanceMetrics, m)
	}
}

func isFinite(f float64) bool { return f == f && f-f == 0 }

// mlmodel reads the version's MLmodel file for its flavors and signature.
func (b *cardBuild) mlmodel(ctx context.Context) {
	if b.c.Artifacts == nil {
		return
	}
	loc := b.mv.StorageLocation
	if loc == "" {
		loc = b.mv.Source
	}
	u, err := model.ParseURI(loc)
	if err != nil || u.Kind != model.URIArtifact {
		b.note("the signature is not read: the model's location %q is not in Kiln's artifact store", clip(loc))
		return
	}
	key := strings.TrimSuffix(u.Path, "/") + "/MLmodel"
	obj, err := b.c.Artifacts.Get(ctx, key)
	if err != nil {
		b.note("no MLmodel file at %s: %v", clip(loc), err)
		return
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxMLmodelBytes+1))
	if err != nil || len(data) > maxMLmodelBytes {
		b.note("the MLmodel file at %s could not be read (or is over %d bytes)", clip(loc), maxMLmodelBytes)
		return
	}
	m, err := model.ParseMLmodel(key, data)
	if err != nil {
		b.note("the MLmodel file at %s is invalid: %v", clip(loc), err)
		return
	}
	p := &b.card.ModelParameters
	p.Flavors = append(p.Flavors, m.Flavors.Names()...)
	if m.Signature != nil {
		p.Input, p.Output = fields(m.Signature.Inputs), fields(m.Signature.Outputs)
	}
}

func fields(s *model.Schema) []SignatureField {
	if s == nil {
		return nil
	}
	var out []SignatureField
	for _, c := range s.Columns {
		t := c.Type
		if !c.Required {
			t += " (optional)"
		}
		out = append(out, SignatureField{Name: c.Name, Type: t})
	}
	for _, t := range s.Tensors {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = strconv.FormatInt(d, 10)
		}
		typ := t.NumpyType
		if typ == "" {
			typ = string(t.DType)
		}
		out = append(out, SignatureField{Name: t.Name, Type: "tensor " + typ + " [" + strings.Join(dims, ", ") + "]"})
	}
	return out
}

func (b *cardBuild) datasets(ctx context.Context) error {
	p := &b.card.ModelParameters
	seen := map[string]bool{}
	contexts := map[string]string{} // dataset version → the run's context for it
	if b.c.Datasets != nil {
		if b.trainRun != nil {
			links, err := b.c.Datasets.VersionsOfRun(ctx, b.trainRun.Info.RunID)
			if err != nil {
				return err
			}
			for _, l := range links {
				contexts[l.Version.String()] = l.Context
				seen["mlflow:"+l.MLflowName+"@"+l.MLflowDigest] = true
			}
		}
		uses, err := b.c.Datasets.VersionsOfModel(ctx, b.mv.Name, b.mv.Version)
		if err != nil {
			return err
		}
		for _, u := range uses {
			ref := u.Version.String()
			if seen[ref] {
				continue
			}
			seen[ref] = true
			p.Data = append(p.Data, CardDataset{Name: ref, Via: u.Via, RunID: u.RunID, Context: contexts[ref]})
		}
	}
	if b.trainRun != nil {
		for _, in := range b.trainRun.DatasetInputs {
			if seen["mlflow:"+in.Dataset.Name+"@"+in.Dataset.Digest] {
				continue // the same input, resolved to a Kiln version above
			}
			ctxTag := ""
			for _, t := range in.Tags {
				if t.Key == "mlflow.data.context" {
					ctxTag = t.Value
				}
			}
			p.Data = append(p.Data, CardDataset{Name: in.Dataset.Name, Via: "mlflow", RunID: b.trainRun.Info.RunID, Context: ctxTag,
				Digest: in.Dataset.Digest, Source: in.Dataset.Source})
		}
	}
	return nil
}

// gates adds the latest result of each gate policy evaluated on the
// version: its metrics, and its metrics per slice.
func (b *cardBuild) gates(ctx context.Context) error {
	if b.c.Gates == nil {
		return nil
	}
	rs, err := b.c.Gates.Results(ctx, b.mv.Name, b.mv.Version, "")
	if err != nil {
		return err
	}
	latest := map[string]*gate.Result{}
	for _, r := range rs {
		if l := latest[r.Policy]; l == nil || r.Time > l.Time {
			latest[r.Policy] = r
		}
	}
	for _, pol := range sortedKeysOf(latest) {
		r := latest[pol]
		src, data := "gate:"+pol, r.Data.Ref
		verdict := "failed"
		if r.Passed {
			verdict = "passed"
		}
		note := "gate " + verdict + " at " + ms3339(r.Time)
		for _, m := range r.Metrics {
			if m.Candidate != nil {
				b.addMetric(PerformanceMetric{Type: m.Name, Value: *m.Candidate, Source: src, Dataset: data, Note: note})
			}
		}
		for _, sr := range r.Slices {
			for _, sv := range sr.Slices {
				for _, k := range sortedKeysOf(sv.Values) {
					if v := sv.Values[k]; v != nil {
						n := note
						if sv.Excluded {
							n += "; slice excluded from the checks (too few rows)"
						}
						b.addMetric(PerformanceMetric{Type: k, Value: *v, Slice: sr.Column + "=" + sv.Key, Source: src, Dataset: data, Note: n})
					}
				}
			}
		}
	}
	return nil
}

// monitors adds the performance that the monitors of the endpoints serving
// the version measured in their latest evaluation. Figures are this
// version's only: a monitor's slice by model_version (or model) for it, or
// the whole window when the version had all the endpoint's traffic for all
// of the window (it is the only version with weight, and the endpoint has
// not changed since the window began). Other windows are left out, with a
// note.
func (b *cardBuild) monitors(ctx context.Context) error {
	if b.c.Endpoints == nil {
		return nil
	}
	eps, err := b.c.Endpoints.List(ctx)
	if err != nil {
		return fmt.Errorf("list endpoints: %w", err)
	}
	for _, st := range eps {
		live, shadow := b.reach(st)
		if !live && !shadow {
			continue
		}
		ep := st.Endpoint.Metadata.Name
		b.card.ModelDetails.Endpoints = append(b.card.ModelDetails.Endpoints, ep)
		if b.c.Monitors == nil {
			continue
		}
		ms, err := b.c.Monitors.List(ctx, ep)
		if err != nil {
			return fmt.Errorf("list the monitors of endpoint %s: %w", ep, err)
		}
		sole := live && b.soleVersion(st)
		for _, sm := range ms {
			name := sm.Monitor.Metadata.Name
			res, err := b.c.Monitors.Latest(ctx, name)
			if err != nil {
				return fmt.Errorf("latest result of monitor %s: %w", name, err)
			}
			if res == nil || res.Performance == nil || (len(res.Performance.Metrics) == 0 && len(res.Performance.Slices) == 0) {
				continue
			}
			b.monitorResult(ep, name, res, sole && res.WindowStart.UnixMilli() >= st.Status.UpdatedAt)
		}
	}
	slices.Sort(b.card.ModelDetails.Endpoints)
	return nil
}

// versionColumns are the prediction-log columns that name the model
// version a prediction came from: serving.Model.Version, and
// "NAME/VERSION".
var versionColumns = []string{"model_version", "model"}

func (b *cardBuild) monitorResult(ep, name string, res *monitor.Result, whole bool) {
	perf := res.Performance
	src, data := "monitor:"+name, "endpoint:"+ep
	window := res.WindowStart.UTC().Format(time.RFC3339) + "/" + res.WindowEnd.UTC().Format(time.RFC3339)
	found := false
	for i, col := range versionColumns {
		val := strconv.FormatInt(b.mv.Version, 10)
		if i == 1 {
			val = b.mv.Name + "/" + val
		}
		vm, ok := perf.Slices[col][val]
		if !ok || found {
			continue
		}
		found = true
		for _, k := range sortedKeysOf(vm) {
			b.addMetric(PerformanceMetric{Type: k, Value: vm[k], Source: src, Dataset: data, Window: window,
				Note: "this version's predictions (the monitor's slice " + col + "=" + val + ")"})
		}
	}
	if !whole {
		if !found {
			b.note("monitor %s of endpoint %s: its latest window (%s) is left out: the version did not have all the endpoint's traffic for all of it (slice the monitor's performance by model_version to have this version's figures)",
				name, ep, window)
		}
		return
	}
	if !found {
		for _, k := range sortedKeysOf(perf.Metrics) {
			b.addMetric(PerformanceMetric{Type: k, Value: perf.Metrics[k], Source: src, Dataset: data, Window: window})
		}
	}
	for _, col := range sortedKeysOf(perf.Slices) {
		if slices.Contains(versionColumns, col) {
			continue
		}
		for _, val := range sortedKeysOf(perf.Slices[col]) {
			for _, k := range sortedKeysOf(perf.Slices[col][val]) {
				b.addMetric(PerformanceMetric{Type: k, Value: perf.Slices[col][val][k], Slice: col + "=" + val, Source: src, Dataset: data, Window: window})
			}
		}
	}
}

// reach says whether an endpoint's live routes send the version traffic
// (a weight above 0), and whether its shadow mirrors traffic to it.
func (b *cardBuild) reach(st *deploy.State) (live, shadow bool) {
	for _, r := range st.Status.Routes {
		if r.Model == b.mv.Name && r.Version == b.mv.Version && r.Weight > 0 {
			live = true
		}
	}
	if sh := st.Status.Shadow; sh != nil && sh.Model == b.mv.Name && sh.Version == b.mv.Version {
		shadow = true
	}
	return live, shadow
}

// soleVersion says whether every live route with weight is the version.
func (b *cardBuild) soleVersion(st *deploy.State) bool {
	for _, r := range st.Status.Routes {
		if r.Weight > 0 && (r.Model != b.mv.Name || r.Version != b.mv.Version) {
			return false
		}
	}
	return true
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
