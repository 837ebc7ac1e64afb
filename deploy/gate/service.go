package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
)

// Sentinel errors of enforcement. They come wrapped in an errdefs.Error
// of kind errdefs.ErrInvalidState whose message names the policy and the
// failed checks.
var (
	// ErrGateRequired: a protected alias or endpoint may not point at a
	// version that has no result of the policy (under its current spec).
	ErrGateRequired = errors.New("gate result required")
	// ErrGateFailed: the version's latest result of the policy failed.
	ErrGateFailed = errors.New("gate failed")
)

// TagPrefix starts the model version tags that summarise results:
// kiln.gate.<policy> = passed|failed, kiln.gate.<policy>.result_id = the
// result's id.
const TagPrefix = "kiln.gate."

// Registry is what the service needs of the model registry;
// *registry.Store implements it.
type Registry interface {
	GetModelVersion(ctx context.Context, name string, version int64) (*registry.ModelVersion, error)
	GetVersionByAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error)
	SetModelVersionTag(ctx context.Context, name string, version int64, key, value string) error
}

// Datasets finds dataset versions; *dataset.Store implements it.
type Datasets interface {
	GetVersion(ctx context.Context, ref dataset.VersionRef) (*dataset.Version, error)
}

// Artifacts reads the artifact store; *blob.Bucket implements it.
type Artifacts interface {
	Get(ctx context.Context, key string) (*blob.Object, error)
}

// Defaults of ServiceOptions.
const (
	DefaultTimeout       = 10 * time.Minute
	DefaultMaxConcurrent = 2
)

// ServiceOptions are what a Service works with.
type ServiceOptions struct {
	Store    *Store
	Registry Registry
	// Resolver finds model versions' files (model.NewStoreResolver in the
	// server).
	Resolver model.Resolver
	// Datasets and Content resolve dataset version references; nil
	// refuses them.
	Datasets Datasets
	Content  dataset.Remote
	// Artifacts reads mlflow-artifacts:/ data URIs; nil refuses them.
	Artifacts Artifacts
	// SourceOptions open s3://, gs:// and azblob:// data URIs, when
	// SourceSchemes allows their scheme.
	SourceOptions blob.Options
	SourceSchemes []string
	// AllowLocalData lets policies read local paths and file:// URIs on
	// this machine (never in a server).
	AllowLocalData bool
	// TempDir holds data and model files during an evaluation.
	TempDir string
	// MaxRows bounds an evaluation's rows when its policy does not
	// (DefaultMaxRows when 0).
	MaxRows int64
	// Timeout bounds one evaluation (DefaultTimeout when 0).
	Timeout time.Duration
	// MaxConcurrent bounds the evaluations running at once
	// (DefaultMaxConcurrent when 0); more wait.
	MaxConcurrent int
	// Workers predict in parallel in one evaluation (GOMAXPROCS when 0).
	Workers int
	Logger  *slog.Logger
}

// Service evaluates policies against registered model versions, stores
// the results and enforces protected aliases and endpoints.
type Service struct {
	o   ServiceOptions
	sem chan struct{}
}

// NewService returns a Service.
func NewService(o ServiceOptions) *Service {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	return &Service{o: o, sem: make(chan struct{}, o.MaxConcurrent)}
}

// Store returns the service's store.
func (s *Service) Store() *Store { return s.o.Store }

// PutPolicy validates and stores a policy; see Store.PutPolicy.
func (s *Service) PutPolicy(ctx context.Context, p *Policy, actor string) (*StoredPolicy, bool, error) {
	sp, changed, err := s.o.Store.PutPolicy(ctx, p, actor)
	if err == nil && changed {
		s.o.Logger.InfoContext(ctx, "gate policy stored", "policy", p.Metadata.Name, "model", p.Spec.Model,
			"generation", sp.Generation, "digest", sp.Digest, "actor", actor)
	}
	return sp, changed, err
}

// GetPolicy returns a stored policy.
func (s *Service) GetPolicy(ctx context.Context, name string) (*StoredPolicy, error) {
	return s.o.Store.GetPolicy(ctx, name)
}

// ListPolicies lists the stored policies (of one model when model is set).
func (s *Service) ListPolicies(ctx context.Context, model string) ([]*StoredPolicy, error) {
	return s.o.Store.ListPolicies(ctx, model)
}

// DeletePolicy deletes a policy; its results stay.
func (s *Service) DeletePolicy(ctx context.Context, name, actor string) error {
	if err := s.o.Store.DeletePolicy(ctx, name); err != nil {
		return err
	}
	s.o.Logger.InfoContext(ctx, "gate policy deleted", "policy", name, "actor", actor)
	return nil
}

// Evaluate evaluates a version of the policy's model under the policy,
// stores the result and tags the version with it. A failed gate is a
// result with Passed false, not an error.
func (s *Service) Evaluate(ctx context.Context, policyName string, version int64, actor string) (*Result, error) {
	sp, err := s.o.Store.GetPolicy(ctx, policyName)
	if err != nil {
		return nil, err
	}
	p := sp.Policy.Normalized()
	spec := &p.Spec
	if version <= 0 {
		return nil, errdefs.Invalid("A version to evaluate is required (a number from 1)")
	}
	if _, err := s.o.Registry.GetModelVersion(ctx, spec.Model, version); err != nil {
		return nil, err
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()

	var baseVersion int64
	if spec.Baseline != NoBaseline {
		bv, err := s.o.Registry.GetVersionByAlias(ctx, spec.Model, spec.Baseline)
		switch {
		case err == nil:
			baseVersion = bv.Version
		case !errors.Is(err, errdefs.ErrNotFound):
			return nil, err
		}
	}
	data, cleanup, err := s.OpenData(ctx, spec.Data)
	if err != nil {
		return nil, fmt.Errorf("spec.data %s: %w", spec.Data, err)
	}
	defer cleanup()
	cand, err := s.load(ctx, spec.Model, version)
	if err != nil {
		return nil, err
	}
	defer cand.Model.Close()
	e := Evaluation{Policy: sp.Policy, PolicyGeneration: sp.Generation, Candidate: cand, Data: *data, Actor: actor,
		MaxRows: s.o.MaxRows, Workers: s.o.Workers}
	if baseVersion > 0 {
		base, err := s.load(ctx, spec.Model, baseVersion)
		if err != nil {
			return nil, fmt.Errorf("baseline %s@%s: %w", spec.Model, spec.Baseline, err)
		}
		defer base.Model.Close()
		e.Baseline, e.BaselineAlias = &base, spec.Baseline
	}
	r, err := Run(ctx, e)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, errdefs.InvalidState("The evaluation took longer than %s", s.o.Timeout)
		}
		return nil, err
	}
	if err := s.o.Store.AddResult(context.WithoutCancel(ctx), r); err != nil {
		return nil, err
	}
	status := "failed"
	if r.Passed {
		status = "passed"
	}
	tagCtx := context.WithoutCancel(ctx)
	if err := s.o.Registry.SetModelVersionTag(tagCtx, spec.Model, version, TagPrefix+p.Metadata.Name, status); err != nil {
		return r, fmt.Errorf("result %s stored; tagging the version: %w", r.ID, err)
	}
	if err := s.o.Registry.SetModelVersionTag(tagCtx, spec.Model, version, TagPrefix+p.Metadata.Name+".result_id", r.ID); err != nil {
		return r, fmt.Errorf("result %s stored; tagging the version: %w", r.ID, err)
	}
	s.o.Logger.InfoContext(ctx, "gate evaluated", "policy", p.Metadata.Name, "model", spec.Model, "version", version,
		"baseline_version", baseVersion, "passed", r.Passed, "result_id", r.ID, "actor", actor, "took_ms", r.Took)
	return r, nil
}

func (s *Service) load(ctx context.Context, name string, version int64) (Scorer, error) {
	uri := "models:/" + name + "/" + strconv.FormatInt(version, 10)
	m, err := model.Open(ctx, uri, model.OpenOptions{Resolver: s.o.Resolver})
	if err != nil {
		return Scorer{}, err
	}
	ref := ModelRef{URI: uri, Name: name, Version: version}
	if m.Bundle.Resolved != nil {
		ref.Source = m.Bundle.Resolved.Source
	}
	return Scorer{Ref: ref, Model: m, Signature: m.Bundle.Signature}, nil
}

// OpenData makes a policy's spec.data readable: dataset versions are
// checked out and artifact files downloaded into a temporary folder,
// removed by cleanup.
func (s *Service) OpenData(ctx context.Context, raw string) (*Table, func(), error) {
	ref, err := ParseDataRef(raw)
	if err != nil {
		return nil, nil, err
	}
	nothing := func() {}
	if ref.IsLocal() {
		if !s.o.AllowLocalData {
			return nil, nil, errdefs.Invalid("the server does not read its own files: name a dataset version (name@version/path) or an artifact (mlflow-artifacts:/…)")
		}
		t, err := LocalTable(ref.URI)
		return t, nothing, err
	}
	dir, err := os.MkdirTemp(s.o.TempDir, "kiln-gate-*")
	if err != nil {
		return nil, nil, fmt.Errorf("temporary folder: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	t, err := s.fetchData(ctx, ref, dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return t, cleanup, nil
}

func (s *Service) fetchData(ctx context.Context, ref DataRef, dir string) (*Table, error) {
	if ref.Dataset != nil {
		if s.o.Datasets == nil || s.o.Content == nil {
			return nil, errdefs.Invalid("dataset versions are not available here")
		}
		v, err := s.o.Datasets.GetVersion(ctx, *ref.Dataset)
		if err != nil {
			return nil, err
		}
		m, err := s.o.Content.GetManifest(ctx, v.Digest)
		if err != nil {
			return nil, err
		}
		var entries []dataset.Entry
		digest := v.Digest.String()
		name := v.Ref().String()
		if ref.Path != "" {
			e, ok := m.Lookup(ref.Path)
			if !ok {
				return nil, errdefs.NotFound("Dataset version %s has no file '%s'", name, clip(ref.Path))
			}
			entries, digest, name = []dataset.Entry{e}, e.Digest.String(), name+"/"+ref.Path
		} else {
			for _, e := range m.Files {
				if isTable(e.Path) {
					entries = append(entries, e)
				}
			}
		}
		if len(entries) == 0 {
			return nil, errdefs.Invalid("dataset version %s holds no table file (CSV, Parquet or JSON Lines)", name)
		}
		for _, e := range entries {
			if !isTable(e.Path) {
				return nil, errdefs.Invalid("'%s' is not a table file that Kiln reads (CSV, Parquet or JSON Lines, uncompressed)", clip(e.Path))
			}
		}
		sub, err := dataset.NewManifest(dataset.KindDir, entries)
		if err != nil {
			return nil, err
		}
		if _, err := dataset.Checkout(ctx, s.o.Content, sub, dir, dataset.CheckoutOptions{}); err != nil {
			return nil, err
		}
		paths := make([]string, len(entries))
		for i, e := range entries {
			paths[i] = e.Path
		}
		return filesTable(name, digest, dir, paths), nil
	}
	var rc io.ReadCloser
	base := path.Base(ref.URI)
	if u, err := model.ParseURI(ref.URI); err == nil && u.Kind == model.URIArtifact {
		if s.o.Artifacts == nil {
			return nil, errdefs.Invalid("artifact URIs are not available here")
		}
		obj, err := s.o.Artifacts.Get(ctx, u.Path)
		if err != nil {
			return nil, err
		}
		rc = obj
	} else {
		scheme, _, _ := strings.Cut(ref.URI, "://")
		if !slices.Contains(s.o.SourceSchemes, strings.ToLower(scheme)) {
			return nil, errdefs.Invalid("data URIs with scheme %q are not read here (allowed: mlflow-artifacts:/, dataset versions%s)", clip(scheme), schemesNote(s.o.SourceSchemes))
		}
		src, err := dataset.OpenSource(ctx, ref.URI, s.o.SourceOptions)
		if err != nil {
			return nil, err
		}
		defer src.Close()
		if src.Kind() != dataset.KindFile {
			return nil, errdefs.Invalid("'%s' names several objects; name one table file", clip(ref.URI))
		}
		var name string
		if err := src.Walk(ctx, func(f dataset.SourceFile) error { name = f.Path; return nil }); err != nil {
			return nil, err
		}
		if rc, err = src.Open(ctx, name); err != nil {
			return nil, err
		}
	}
	defer rc.Close()
	if !isTable(base) {
		return nil, errdefs.Invalid("'%s' is not a table file that Kiln reads (.csv, .parquet, .jsonl)", clip(ref.URI))
	}
	local := dir + "/" + safeBase(base)
	f, err := os.Create(local)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", ref.URI, err)
	}
	t, err := LocalTable(local)
	if err != nil {
		return nil, err
	}
	t.Ref = ref.URI
	return t, nil
}

func schemesNote(schemes []string) string {
	if len(schemes) == 0 {
		return ""
	}
	return ", " + strings.Join(schemes, "://, ") + "://"
}

func isTable(p string) bool {
	return dataset.IsTablePath(p) && !strings.HasSuffix(strings.ToLower(p), ".gz")
}

func safeBase(b string) string {
	if b == "" || b == "." || b == ".." || strings.ContainsAny(b, "/\\\x00") {
		return "data"
	}
	return b
}

// Results lists a model version's results, newest first (policy "" for
// every policy).
func (s *Service) Results(ctx context.Context, model string, version int64, policy string) ([]*Result, error) {
	if _, err := s.o.Registry.GetModelVersion(ctx, model, version); err != nil {
		return nil, err
	}
	return s.o.Store.ListResults(ctx, model, version, policy, 0)
}

// AllowAlias reports whether alias of model may point at version: nil
// unless a policy of model protects alias and the version has no passing
// result of it under its current spec. It implements the registry's
// alias guard.
func (s *Service) AllowAlias(ctx context.Context, modelName, alias string, version int64) error {
	ps, err := s.o.Store.ListPolicies(ctx, modelName)
	if err != nil {
		return err
	}
	var errs []error
	for _, sp := range ps {
		if sp.Policy.Spec.Model == modelName && slices.Contains(sp.Policy.Spec.ProtectAliases, alias) {
			if err := s.require(ctx, sp, modelName, version, "alias '"+alias+"'"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return joinRefusals(errs)
}

// AllowRoute reports whether endpoint may route traffic to version of
// model: nil unless policies protect the endpoint and the version lacks a
// passing result of one of them (the endpoint's policies of model; when
// the endpoint is protected only by policies of other models, the route
// is refused).
func (s *Service) AllowRoute(ctx context.Context, endpoint, modelName string, version int64) error {
	ps, err := s.o.Store.ListPolicies(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	var others []string
	covered := false
	for _, sp := range ps {
		if !slices.Contains(sp.Policy.Spec.ProtectEndpoints, endpoint) {
			continue
		}
		if sp.Policy.Spec.Model != modelName {
			others = append(others, sp.Policy.Metadata.Name+" (model "+sp.Policy.Spec.Model+")")
			continue
		}
		covered = true
		if err := s.require(ctx, sp, modelName, version, "endpoint '"+endpoint+"'"); err != nil {
			errs = append(errs, err)
		}
	}
	if !covered && len(others) > 0 {
		return &errdefs.Error{Kind: errdefs.ErrInvalidState, Err: ErrGateRequired, Msg: fmt.Sprintf(
			"Endpoint '%s' is protected by gate policies %s; none of them gates model '%s', so version %d cannot be routed there",
			endpoint, strings.Join(others, ", "), modelName, version)}
	}
	return joinRefusals(errs)
}

// require checks that version has a passing result of sp.
func (s *Service) require(ctx context.Context, sp *StoredPolicy, modelName string, version int64, what string) error {
	name := sp.Policy.Metadata.Name
	r, err := s.o.Store.LatestResult(ctx, name, sp.Digest, modelName, version)
	if err != nil {
		return err
	}
	if r == nil {
		return &errdefs.Error{Kind: errdefs.ErrInvalidState, Err: ErrGateRequired, Msg: fmt.Sprintf(
			"Gate policy '%s' protects %s of model '%s': version %d has no result of the policy's current spec; run `kiln gate check --policy %s --version %d`",
			name, what, modelName, version, name, version)}
	}
	if !r.Passed {
		return &errdefs.Error{Kind: errdefs.ErrInvalidState, Err: ErrGateFailed, Msg: fmt.Sprintf(
			"Gate policy '%s' protects %s of model '%s': version %d failed (result %s): %s",
			name, what, modelName, version, r.ID, strings.Join(clipList(r.Failed, 5), "; "))}
	}
	return nil
}

func clipList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), fmt.Sprintf("and %d more", len(s)-n))
}

// joinRefusals returns the one refusal, or several joined under one
// message that keeps every sentinel matchable.
func joinRefusals(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = errdefs.Message(e)
	}
	return &errdefs.Error{Kind: errdefs.ErrInvalidState, Msg: strings.Join(msgs, " "), Err: errors.Join(errs...)}
}
