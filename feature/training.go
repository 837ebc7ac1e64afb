package feature

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature/pit"
)

// TrainingSetRequest asks for a point-in-time correct training set.
type TrainingSetRequest struct {
	// Entities is the entity table: join-key columns, a timestamp column
	// and any other columns (labels), passed through in order.
	Entities EntitiesSource `json:"entities"`
	// TimestampField is the entities' time column ("event_timestamp" when
	// empty).
	TimestampField string `json:"timestamp_field,omitempty"`
	// Features are "view:feature" references; the features of one view
	// are joined together, views in order of first mention.
	Features []string `json:"features"`
	// FullFeatureNames names the output columns "view__feature".
	FullFeatureNames bool `json:"full_feature_names,omitempty"`
	// Output names the dataset the training set becomes a version of.
	Output TrainingSetOutput `json:"output"`
	// Actor is recorded as the version's creator.
	Actor string `json:"-"`
}

// EntitiesSource is a dataset version ("name@N", "name@latest" or
// "name") or, for callers inside the server only, a local file.
type EntitiesSource struct {
	Dataset string `json:"dataset,omitempty"`
	// Path is a file or folder the server reads (an uploaded file). The
	// HTTP API does not accept it.
	Path string `json:"-"`
	// Format forces csv, parquet or jsonl.
	Format string `json:"format,omitempty"`
}

// TrainingSetOutput is where the training set goes.
type TrainingSetOutput struct {
	Dataset     string `json:"dataset"`
	Description string `json:"description,omitempty"`
}

// Tags recorded on a training-set version (lineage: the entities' version
// is also the version's parent, and the training-set spec lists every
// input).
const (
	TagTrainingEntities = "kiln.training_set.entities" // "name@N" or the path
	TagTrainingFeatures = "kiln.training_set.features" // "view:feature,…"
	TagViewPrefix       = "kiln.training_set.view."    // + view name: its version
	TagSourcePrefix     = "kiln.training_set.source."  // + view name: "name@N" or the path
	TagTrainingRows     = "kiln.training_set.rows"     // entity rows
	TagMatchedPrefix    = "kiln.training_set.matched." // + view name: rows that got features
	trainingSetKind     = "kiln.dev/v1/TrainingSet"    // the spec's kind
	defaultTimestamp    = pit.DefaultTimestampField    //
	maxTrainingFeatures = 10000                        //
)

// TrainingSetSpec is recorded with the version (as its split spec, the
// field where a derived version says how it was made): the inputs of the
// join, each pinned to a version.
type TrainingSetSpec struct {
	Kind             string             `json:"kind"`
	Entities         string             `json:"entities"`
	TimestampField   string             `json:"timestamp_field"`
	Features         []string           `json:"features"`
	FullFeatureNames bool               `json:"full_feature_names,omitempty"`
	Views            []TrainingSetInput `json:"views"`
}

// TrainingSetInput is one feature view a training set read.
type TrainingSetInput struct {
	View     string   `json:"view"`
	Version  int64    `json:"version"`
	Source   string   `json:"source"`
	JoinKeys []string `json:"join_keys"`
	TTL      string   `json:"ttl,omitempty"`
	Features []string `json:"features"`
	Matched  int64    `json:"matched"`
}

func (r *TrainingSetRequest) check() error {
	var errs errdefs.FieldErrors
	fail := func(path, format string, args ...any) {
		errs = append(errs, errdefs.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if (r.Entities.Dataset == "") == (r.Entities.Path == "") {
		fail("entities.dataset", "name the entity table's dataset version (name@N)")
	}
	if r.Entities.Dataset != "" {
		if _, err := dataset.ParseVersionRef(r.Entities.Dataset); err != nil {
			fail("entities.dataset", "%s", errdefs.Message(err))
		}
	}
	switch table.Format(r.Entities.Format) {
	case "", table.CSV, table.Parquet, table.JSONL:
	default:
		fail("entities.format", "format %q is not csv, parquet or jsonl", clip(r.Entities.Format))
	}
	if len(r.Features) == 0 {
		fail("features", "name at least one feature (view:feature)")
	}
	if len(r.Features) > maxTrainingFeatures {
		fail("features", "%d features, more than the limit of %d", len(r.Features), maxTrainingFeatures)
	}
	seen := map[string]bool{}
	for i, f := range r.Features {
		if _, err := ParseRef(f); err != nil {
			fail(fmt.Sprintf("features[%d]", i), "%s", errdefs.Message(err))
		} else if seen[f] {
			fail(fmt.Sprintf("features[%d]", i), "%s is listed twice", f)
		}
		seen[f] = true
	}
	if err := dataset.ValidateName(r.Output.Dataset); err != nil {
		fail("output.dataset", "%s", errdefs.Message(err))
	}
	if len(errs) > 0 {
		return errdefs.InvalidFields("training set", errs)
	}
	return nil
}

// TrainingSet builds a point-in-time correct training set (package
// feature/pit: for each entity row the latest feature row of each view at
// or before the row's time and within the view's TTL, ties broken by
// created time) and records it as a new version of req.Output.Dataset: one
// Parquet file, the entity columns followed by the features. Dataset
// sources are pinned to their current version before they are read; the
// version's parent is the entities' dataset version, its tags name every
// view's version and source, and its spec (TrainingSetSpec) lists them.
func (s *Service) TrainingSet(ctx context.Context, req TrainingSetRequest) (*dataset.Version, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	if s.Datasets == nil || s.Content == nil {
		return nil, errdefs.NotImplemented("This server does not store datasets, so it cannot record training sets")
	}
	start := time.Now()
	tsField := req.TimestampField
	if tsField == "" {
		tsField = defaultTimestamp
	}

	// Group the features by view, in order of first mention.
	type group struct {
		name     string
		features []string
	}
	var groups []*group
	byName := map[string]*group{}
	for _, f := range req.Features {
		ref, _ := ParseRef(f)
		g := byName[ref.View]
		if g == nil {
			g = &group{name: ref.View}
			byName[ref.View] = g
			groups = append(groups, g)
		}
		g.features = append(g.features, ref.Feature)
	}

	// The entity table, pinned to a version.
	var (
		parent      *dataset.VersionRef
		entitiesRef string
		entSrc      = Source{Path: req.Entities.Path, Format: req.Entities.Format}
	)
	if req.Entities.Dataset != "" {
		ref, _ := dataset.ParseVersionRef(req.Entities.Dataset)
		ev, err := s.Datasets.GetVersion(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("entities: %w", err)
		}
		p := ev.Ref()
		parent = &p
		entitiesRef = p.String()
		entSrc = Source{Dataset: entitiesRef, Format: req.Entities.Format}
	} else {
		entitiesRef = req.Entities.Path
	}
	entReader, entDone, err := s.OpenSource(ctx, &FeatureView{Spec: FeatureViewSpec{Source: entSrc}})
	if err != nil {
		return nil, fmt.Errorf("entities: %w", err)
	}
	defer entDone()

	spec := TrainingSetSpec{Kind: trainingSetKind, Entities: entitiesRef, TimestampField: tsField, Features: req.Features, FullFeatureNames: req.FullFeatureNames}
	tags := map[string]string{TagTrainingEntities: entitiesRef, TagTrainingFeatures: strings.Join(req.Features, ",")}
	views := make([]pit.View, 0, len(groups))
	var viewNames []string
	for _, g := range groups {
		v, version, err := s.View(ctx, g.name, 0)
		if err != nil {
			return nil, fmt.Errorf("feature view %q: %w", g.name, err)
		}
		in := TrainingSetInput{View: g.name, Version: version, Source: v.Spec.Source.Path, Features: g.features}
		if v.Spec.TTL > 0 {
			in.TTL = v.Spec.TTL.D().String()
		}
		pinned := *v
		if v.Spec.Source.Dataset != "" {
			sv, err := s.SourceVersion(ctx, v)
			if err != nil {
				return nil, fmt.Errorf("feature view %q: source %s: %w", g.name, v.Spec.Source.Dataset, err)
			}
			in.Source = sv.Ref().String()
			pinned.Spec.Source.Dataset = in.Source
		}
		keys, err := s.JoinKeys(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("feature view %q: %w", g.name, err)
		}
		in.JoinKeys = keys
		pv := pit.View{Name: g.name, JoinKeys: keys, TimestampField: v.Spec.TimestampField,
			CreatedField: v.Spec.CreatedTimestampField, TTL: v.Spec.TTL.D()}
		for _, f := range g.features {
			i := slices.IndexFunc(v.Spec.Features, func(x Feature) bool { return x.Name == f })
			if i < 0 {
				return nil, errdefs.Invalid("Feature view %q has no feature %q", g.name, f)
			}
			pv.Features = append(pv.Features, pit.Feature{Name: f, Type: tableType(v.Spec.Features[i].Type)})
		}
		r, done, err := s.OpenSource(ctx, &pinned)
		if err != nil {
			return nil, fmt.Errorf("feature view %q: source %s: %w", g.name, SourceName(&pinned), err)
		}
		defer done()
		pv.Source = r
		views = append(views, pv)
		spec.Views = append(spec.Views, in)
		viewNames = append(viewNames, g.name+"@"+strconv.FormatInt(version, 10))
		tags[TagViewPrefix+g.name] = strconv.FormatInt(version, 10)
		tags[TagSourcePrefix+g.name] = in.Source
	}

	opts := pit.Options{TimestampField: tsField, FullFeatureNames: req.FullFeatureNames}
	sch, err := pit.Schema(entReader.Schema(), views, opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.TempDir, "kiln-training-*")
	if err != nil {
		return nil, fmt.Errorf("feature: training set: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, req.Output.Dataset+".parquet")
	st, err := writeTrainingSet(ctx, path, entReader, views, opts, sch)
	if err != nil {
		return nil, err
	}
	tags[TagTrainingRows] = strconv.FormatInt(st.EntityRows, 10)
	for i := range spec.Views {
		spec.Views[i].Matched = st.Matched[i]
		tags[TagMatchedPrefix+spec.Views[i].View] = strconv.FormatInt(st.Matched[i], 10)
	}

	// Store the file and record the version.
	src, err := dataset.OpenSource(ctx, path, blob.Options{})
	if err != nil {
		return nil, fmt.Errorf("feature: training set: %w", err)
	}
	defer src.Close()
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		return nil, fmt.Errorf("feature: training set: %w", err)
	}
	if _, err := dataset.Push(ctx, src, m, s.Content, dataset.TransferOptions{}); err != nil {
		return nil, fmt.Errorf("feature: training set: store: %w", err)
	}
	if _, err := s.Content.PutManifest(ctx, m); err != nil {
		return nil, fmt.Errorf("feature: training set: store the manifest: %w", err)
	}
	desc := req.Output.Description
	if desc == "" {
		desc = fmt.Sprintf("Training set: %d rows of %s with %d features of %s", st.EntityRows, entitiesRef, len(req.Features), strings.Join(viewNames, ", "))
	}
	ver, _, err := s.Datasets.CreateVersion(ctx, dataset.NewVersion{
		Dataset:     req.Output.Dataset,
		Manifest:    m,
		Description: desc,
		Tags:        tags,
		Source:      "training-set:" + entitiesRef,
		CreatedBy:   req.Actor,
		Parent:      parent,
		SplitSpec:   spec,
	})
	if err != nil {
		return nil, err
	}
	s.log().Info("training set", "dataset", ver.Ref().String(), "entities", entitiesRef, "views", strings.Join(viewNames, ","),
		"rows", st.EntityRows, "source_rows", st.SourceRows, "matched", st.Matched, "duration", time.Since(start))
	return ver, nil
}

func writeTrainingSet(ctx context.Context, path string, ent table.Reader, views []pit.View, opts pit.Options, sch table.Schema) (*pit.Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("feature: training set: %w", err)
	}
	defer f.Close()
	w, err := table.NewParquetWriter(f, sch, table.ParquetWriterOptions{})
	if err != nil {
		return nil, err
	}
	st, err := pit.Join(ctx, ent, views, opts, w)
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("feature: training set: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("feature: training set: %w", err)
	}
	return st, nil
}

// tableType is the column type of a feature type.
func tableType(t string) table.Type {
	switch t {
	case TypeInt64:
		return table.Int64
	case TypeFloat64:
		return table.Float64
	case TypeString:
		return table.String
	case TypeBool:
		return table.Bool
	}
	return table.Invalid
}
