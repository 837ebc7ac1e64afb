package feature

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// Statuses of an online value, as Feast's get-online-features.
const (
	// StatusPresent: the entity has a row within the view's TTL.
	StatusPresent = "PRESENT"
	// StatusNotFound: the online store has no row of the entity.
	StatusNotFound = "NOT_FOUND"
	// StatusOutsideMaxAge: the entity's row is older than the view's TTL
	// (relative to now); its value is null.
	StatusOutsideMaxAge = "OUTSIDE_MAX_AGE"
	// StatusNullValue: the entity's row holds a null for the feature.
	StatusNullValue = "NULL_VALUE"
	// StatusDefault: there was no usable value (one of the three above)
	// and the request asked for defaults: the feature's default is served.
	StatusDefault = "DEFAULT"
)

// OnlineRequest asks for features of entities. Entities maps each join
// key of the requested views to one value per entity row (all of the
// same length).
type OnlineRequest struct {
	Features    []string         // "view:feature"
	Entities    map[string][]any // join key -> values
	UseDefaults bool
}

// OnlineResult has one column per join key (the request's values, in
// the order of the views' join keys), then one per requested feature,
// named in FeatureNames ("view:feature" for features).
type OnlineResult struct {
	FeatureNames []string
	Results      []OnlineColumn
}

// OnlineColumn is one column of an OnlineResult: a value, status and
// event time per entity row (the zero time where there is no row, and
// for join keys).
type OnlineColumn struct {
	Values          []any
	Statuses        []string
	EventTimestamps []time.Time
}

// Online looks up the latest values of features for entity rows in the
// online store (Feast's get-online-features): a value older than the
// view's TTL, relative to now, is null with OUTSIDE_MAX_AGE; an entity
// without a row is NOT_FOUND; with UseDefaults a feature that has a
// default serves it instead (DEFAULT). Views with online: false are
// refused; join keys that no requested view uses are an error. View
// definitions are reused for up to a second (viewCacheTTL).
func (s *Service) Online(ctx context.Context, req OnlineRequest) (*OnlineResult, error) {
	if s.OnlineStore == nil {
		return nil, errdefs.NotImplemented("This server has no online store")
	}
	if len(req.Features) == 0 {
		return nil, errdefs.Invalid("Name at least one feature (view:feature)")
	}
	type viewReq struct {
		view  *FeatureView
		keys  []string
		feats []int // index into view features, per requested column
		cols  []int // result column of each requested feature
	}
	var order []string
	views := map[string]*viewReq{}
	for i, f := range req.Features {
		ref, err := ParseRef(f)
		if err != nil {
			return nil, err
		}
		vr := views[ref.View]
		if vr == nil {
			v, keys, err := s.onlineView(ctx, ref.View)
			if err != nil {
				return nil, err
			}
			if !v.Spec.IsOnline() {
				return nil, errdefs.InvalidState("Feature view '%s' is not online (online: false)", ref.View)
			}
			vr = &viewReq{view: v, keys: keys}
			views[ref.View] = vr
			order = append(order, ref.View)
		}
		fi := slices.IndexFunc(vr.view.Spec.Features, func(x Feature) bool { return x.Name == ref.Feature })
		if fi < 0 {
			return nil, errdefs.NotFound("Feature view '%s' has no feature '%s'", ref.View, ref.Feature)
		}
		vr.feats = append(vr.feats, fi)
		vr.cols = append(vr.cols, i)
	}
	// The join keys, in order of first use.
	var joinKeys []string
	for _, name := range order {
		for _, k := range views[name].keys {
			if !slices.Contains(joinKeys, k) {
				joinKeys = append(joinKeys, k)
			}
		}
	}
	n := -1
	for _, k := range joinKeys {
		vals, ok := req.Entities[k]
		if !ok {
			return nil, errdefs.Invalid("The request has no values of join key '%s' (of the requested views)", k)
		}
		if n >= 0 && len(vals) != n {
			return nil, errdefs.Invalid("Join key '%s' has %d values, others %d: give one value per entity row to each", k, len(vals), n)
		}
		n = len(vals)
	}
	extra := make([]string, 0)
	for k := range req.Entities {
		if !slices.Contains(joinKeys, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, errdefs.Invalid("'%s' is not a join key of the requested feature views (they use %v)", extra[0], joinKeys)
	}
	// Key texts per join key and row.
	texts := make(map[string][]string, len(joinKeys))
	for _, k := range joinKeys {
		t := make([]string, n)
		for i, v := range req.Entities[k] {
			s, err := KeyText(v)
			if err != nil {
				return nil, errdefs.Invalid("Join key '%s', row %d: %v", k, i, err)
			}
			t[i] = s
		}
		texts[k] = t
	}
	res := &OnlineResult{FeatureNames: make([]string, 0, len(joinKeys)+len(req.Features))}
	res.FeatureNames = append(res.FeatureNames, joinKeys...)
	res.FeatureNames = append(res.FeatureNames, req.Features...)
	res.Results = make([]OnlineColumn, len(joinKeys)+len(req.Features))
	for i, k := range joinKeys {
		c := &res.Results[i]
		c.Values = req.Entities[k]
		c.Statuses = make([]string, n)
		c.EventTimestamps = make([]time.Time, n)
		for r := range c.Statuses {
			c.Statuses[r] = StatusPresent
		}
	}
	for i := range req.Features {
		c := &res.Results[len(joinKeys)+i]
		c.Values = make([]any, n)
		c.Statuses = make([]string, n)
		c.EventTimestamps = make([]time.Time, n)
	}
	now := micros(s.clock())
	for _, name := range order {
		vr := views[name]
		keys := make([]string, n)
		parts := make([]string, len(vr.keys))
		for r := 0; r < n; r++ {
			for j, k := range vr.keys {
				parts[j] = texts[k][r]
			}
			keys[r] = EntityKey(parts)
		}
		recs, err := s.OnlineStore.Get(ctx, name, keys)
		if err != nil {
			return nil, fmt.Errorf("feature: read the %s online store: %w", s.OnlineStore.Name(), err)
		}
		if len(recs) != n {
			return nil, fmt.Errorf("feature: the %s online store returned %d rows for %d keys", s.OnlineStore.Name(), len(recs), n)
		}
		ttl := vr.view.Spec.TTL.D().Microseconds()
		for r, rec := range recs {
			var vals []any
			status := StatusPresent
			var evt time.Time
			switch {
			case rec == nil:
				status = StatusNotFound
			case ttl > 0 && now-rec.EventTime > ttl:
				status, evt = StatusOutsideMaxAge, fromMicros(rec.EventTime)
			default:
				evt = fromMicros(rec.EventTime)
				vals, err = DecodeValues(vr.view, rec.Value)
				if err != nil {
					return nil, fmt.Errorf("feature: %s, key %q: %w", name, keys[r], err)
				}
			}
			for j, fi := range vr.feats {
				c := &res.Results[len(joinKeys)+vr.cols[j]]
				st := status
				var val any
				if vals != nil {
					val = vals[fi]
					if val == nil {
						st = StatusNullValue
					}
				}
				if st != StatusPresent && req.UseDefaults {
					if d := vr.view.Spec.Features[fi].Default; d != nil {
						if dv, err := CoerceValue(vr.view.Spec.Features[fi].Type, d); err == nil {
							val, st = dv, StatusDefault
						}
					}
				}
				c.Values[r], c.Statuses[r], c.EventTimestamps[r] = val, st, evt
			}
		}
	}
	return res, nil
}
