package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/serving"
)

// Feature serving: an endpoint with spec.features completes each
// request with features looked up online by the entity keys the request
// carries (serving.FeatureSet), so the model is trained and served on the
// same feature definitions.

// FeatureLookup is the feature store as endpoints use it;
// *feature.Service implements it.
type FeatureLookup interface {
	// Online looks features up by entity key (Feast's
	// get-online-features): one column per join key, then one per
	// requested feature.
	Online(ctx context.Context, req feature.OnlineRequest) (*feature.OnlineResult, error)
	// View returns a feature view (version 0: the latest).
	View(ctx context.Context, name string, version int64) (*feature.FeatureView, int64, error)
	// JoinKeys returns the join keys of a view's entities, in order.
	JoinKeys(ctx context.Context, v *feature.FeatureView) ([]string, error)
}

// SetFeatures hands the Manager the feature store its endpoints' features
// are looked up in. Without one, an endpoint with spec.features is
// refused.
func (m *Manager) SetFeatures(l FeatureLookup) {
	m.features.Store(&l)
}

func (m *Manager) featureLookup() FeatureLookup {
	if p := m.features.Load(); p != nil {
		return *p
	}
	return nil
}

// featureKeysTTL is how long a feature set trusts the join keys it
// resolved (a view may change its entities in a new version).
const featureKeysTTL = 30 * time.Second

// featureSet is an endpoint's spec.features as the serving stack uses it
// (serving.FeatureSet).
type featureSet struct {
	m           *Manager
	endpoint    string
	spec        EndpointFeatures
	refs        []feature.Ref
	names       []string // the feature names: the columns filled in
	useDefaults bool

	mu       sync.Mutex
	keys     []string
	keysAt   time.Time
	resolved bool
}

func newFeatureSet(m *Manager, endpoint string, spec *EndpointFeatures) *featureSet {
	fs := &featureSet{m: m, endpoint: endpoint, spec: *spec, useDefaults: spec.OnMissing == OnMissingDefault}
	fs.spec.Refs = slices.Clone(spec.Refs)
	for _, r := range spec.Refs {
		ref, _ := feature.ParseRef(r) // validated
		fs.refs = append(fs.refs, ref)
		fs.names = append(fs.names, ref.Feature)
	}
	return fs
}

// same reports whether fs serves spec.
func (fs *featureSet) same(spec *EndpointFeatures) bool {
	return spec != nil && slices.Equal(fs.spec.Refs, spec.Refs) && fs.spec.OnMissing == spec.OnMissing
}

// resolveFeatureKeys returns the join keys of refs' views, in the order
// Online returns them (the views' keys in order of first use). The
// errors of a ref (unknown view or feature, a view not online) are
// FieldErrors at path[i]; other errors (the store) are returned as such.
func resolveFeatureKeys(ctx context.Context, l FeatureLookup, refs []string, path string) ([]string, error) {
	var keys []string
	var errs FieldErrors
	seen := map[string]*feature.FeatureView{}
	for i, r := range refs {
		p := fmt.Sprintf("%s[%d]", path, i)
		ref, err := feature.ParseRef(r)
		if err != nil {
			errs = append(errs, &FieldError{Path: p, Msg: errdefs.Message(err)})
			continue
		}
		v, ok := seen[ref.View]
		if !ok {
			v, _, err = l.View(ctx, ref.View, 0)
			switch {
			case errors.Is(err, errdefs.ErrNotFound):
				errs = append(errs, &FieldError{Path: p, Msg: errdefs.Message(err)})
				continue
			case err != nil:
				return nil, fmt.Errorf("feature view %q: %w", ref.View, err)
			}
			seen[ref.View] = v
			if !v.Spec.IsOnline() {
				errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf("feature view %q is not online (online: false): an endpoint cannot look it up", ref.View)})
				continue
			}
			vk, err := l.JoinKeys(ctx, v)
			if err != nil {
				return nil, fmt.Errorf("feature view %q: %w", ref.View, err)
			}
			for _, k := range vk {
				if !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
		if !slices.ContainsFunc(v.Spec.Features, func(f feature.Feature) bool { return f.Name == ref.Feature }) {
			errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf("feature view %q has no feature %q", ref.View, ref.Feature)})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return keys, nil
}

// checkFeatures checks an endpoint document's features against the
// feature store (Apply).
func (m *Manager) checkFeatures(ctx context.Context, doc *Endpoint) error {
	f := doc.Spec.Features
	if f == nil {
		return nil
	}
	l := m.featureLookup()
	if l == nil {
		return FieldErrors{{Path: "spec.features", Msg: "this server has no feature store"}}
	}
	_, err := resolveFeatureKeys(ctx, l, f.Refs, "spec.features.refs")
	return err
}

// Plan implements serving.FeatureSet: the join keys (resolved through the
// feature store, and again after featureKeysTTL) and the feature names.
func (fs *featureSet) Plan(ctx context.Context) ([]string, []string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.resolved && time.Since(fs.keysAt) < featureKeysTTL {
		return fs.keys, fs.names, nil
	}
	l := fs.m.featureLookup()
	if l == nil {
		return nil, nil, errors.New("this server has no feature store")
	}
	keys, err := resolveFeatureKeys(ctx, l, fs.spec.Refs, "spec.features.refs")
	if err != nil {
		if fs.resolved { // keep serving with the keys we know
			fs.m.log.Warn("endpoint features: resolving the join keys failed; keeping the previous ones", "endpoint", fs.endpoint, "err", err)
			fs.keysAt = time.Now()
			return fs.keys, fs.names, nil
		}
		var fe FieldErrors
		if errors.As(err, &fe) {
			// The document's views changed under it: not the client's fault.
			return nil, nil, errors.New(fe.Error())
		}
		return nil, nil, err
	}
	fs.keys, fs.keysAt, fs.resolved = keys, time.Now(), true
	return keys, fs.names, nil
}

// usable reports whether a status carries a value to serve: a present
// value (a null one too: the training set has the same null), or a
// default that was asked for.
func usable(status string) bool {
	return status == feature.StatusPresent || status == feature.StatusNullValue || status == feature.StatusDefault
}

// maxMissingNamed bounds the entities a missing-feature error names.
const maxMissingNamed = 5

// Fill implements serving.FeatureSet: one online lookup of the features
// some row lacks, for every row.
func (fs *featureSet) Fill(ctx context.Context, rows *serving.FeatureRows) error {
	l := fs.m.featureLookup()
	if l == nil {
		return errors.New("this server has no feature store")
	}
	var need []int // features some row lacks
	for j := range rows.Names {
		if slices.Contains(rows.Values[j], nil) {
			need = append(need, j)
		}
	}
	if len(need) == 0 || rows.N == 0 {
		return nil
	}
	req := feature.OnlineRequest{Entities: make(map[string][]any, len(rows.KeyNames)), UseDefaults: fs.useDefaults}
	for _, j := range need {
		req.Features = append(req.Features, fs.refs[j].String())
	}
	for i, k := range rows.KeyNames {
		req.Entities[k] = rows.Keys[i]
	}
	res, err := l.Online(ctx, req)
	if err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) { // a key of the wrong kind
			return err
		}
		return fmt.Errorf("online lookup: %w", err)
	}
	base := len(res.Results) - len(need) // the join key columns come first
	if base < 0 {
		return fmt.Errorf("online lookup: %d columns for %d features", len(res.Results), len(need))
	}
	var missing []string
	count := 0
	for n, j := range need {
		col := res.Results[base+n]
		if len(col.Values) != rows.N || len(col.Statuses) != rows.N {
			return fmt.Errorf("online lookup: %d values for %d rows", len(col.Values), rows.N)
		}
		vals := rows.Values[j]
		for r := range rows.N {
			if vals[r] != nil {
				continue // the request's own value wins
			}
			if st := col.Statuses[r]; !usable(st) {
				count++
				if len(missing) < maxMissingNamed {
					missing = append(missing, fmt.Sprintf("%s for %s (%s)", fs.refs[j], entityText(rows, r), st))
				}
				continue
			}
			vals[r] = col.Values[r]
		}
	}
	if count == 0 {
		return nil
	}
	msg := "no value of feature " + strings.Join(missing, "; ")
	if count > len(missing) {
		msg += fmt.Sprintf("; … %d missing values in all", count)
	}
	if fs.useDefaults {
		msg += " — the feature declares no default (spec.features.on_missing: default)"
	} else {
		msg += " — send the value in the request, or set spec.features.on_missing: default to serve the features' declared defaults"
	}
	return errdefs.Invalid("endpoint %q: %s", fs.endpoint, msg)
}

// entityText renders row r's join keys: customer_id=42, region="eu".
func entityText(rows *serving.FeatureRows, r int) string {
	var b strings.Builder
	for i, k := range rows.KeyNames {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch v := rows.Keys[i][r].(type) {
		case string:
			b.WriteString(strconv.Quote(v))
		default:
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

// FeatureSet implements serving.FeatureFiller for the endpoint's models:
// its current spec.features, or nil.
func (ep *endpoint) FeatureSet() serving.FeatureSet {
	if fs := ep.table.Load().features; fs != nil {
		return fs
	}
	return nil
}
