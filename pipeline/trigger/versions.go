package trigger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/registry"
)

// maxVersionsPerPoll bounds the versions one evaluation fires for; the
// rest wait for the next poll.
const maxVersionsPerPoll = 100

// versionEvent is one new dataset or model version.
type versionEvent struct {
	version int64
	payload map[string]string
}

// latestVersion is the newest version of a dataset or registered model
// (0 when it has none or does not exist).
func (s *Service) latestVersion(ctx context.Context, typ, name string) (int64, error) {
	switch typ {
	case TypeDataset:
		if s.o.Datasets == nil {
			return 0, nil
		}
		vs, _, err := s.o.Datasets.ListVersions(ctx, name, dataset.ListQuery{MaxResults: 1})
		if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) || len(vs) == 0 {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("trigger: newest version of dataset %s: %w", name, err)
		}
		return vs[0].Version, nil
	case TypeModel:
		if s.o.Registry == nil {
			return 0, nil
		}
		vs, _, err := s.o.Registry.SearchModelVersions(ctx, registry.SearchQuery{Filter: modelFilter(name, 0),
			OrderBy: []string{"version_number DESC"}, MaxResults: 1})
		if err != nil {
			return 0, fmt.Errorf("trigger: newest version of model %s: %w", name, err)
		}
		if len(vs) == 0 {
			return 0, nil
		}
		return vs[0].Version, nil
	}
	return 0, nil
}

// modelFilter selects a model's versions after a version number.
func modelFilter(name string, after int64) string {
	f := filter.Clause{Entity: filter.Attribute, Key: "name", Op: filter.Eq, Value: filter.Value{Str: name}}.String()
	if after > 0 {
		f += " AND " + filter.Clause{Entity: filter.Attribute, Key: "version_number", Op: filter.Gt,
			Value: filter.Value{Num: float64(after), IsNum: true}}.String()
	}
	return f
}

// newVersions returns the versions after cursor, oldest first, at most
// maxVersionsPerPoll, and the cursor to count from (lower than cursor when
// the dataset or model was deleted and made again).
func (s *Service) newVersions(ctx context.Context, typ, name string, cursor int64) ([]versionEvent, int64, error) {
	switch typ {
	case TypeDataset:
		if s.o.Datasets == nil {
			return nil, cursor, nil
		}
		latest, err := s.latestVersion(ctx, typ, name)
		if err != nil {
			return nil, cursor, err
		}
		if latest < cursor {
			cursor = 0 // made again: its versions are all new
		}
		var out []versionEvent
		// A dataset's versions are numbered 1, 2, … without gaps.
		for v := cursor + 1; v <= latest && len(out) < maxVersionsPerPoll; v++ {
			ver, err := s.o.Datasets.GetVersion(ctx, dataset.VersionRef{Dataset: name, Version: v})
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			if err != nil {
				return out, cursor, fmt.Errorf("trigger: dataset version %s@%d: %w", name, v, err)
			}
			out = append(out, versionEvent{version: v, payload: map[string]string{
				"dataset": name, "version": strconv.FormatInt(v, 10), "ref": ver.Ref().String(), "digest": ver.Digest.String(),
			}})
		}
		return out, cursor, nil
	case TypeModel:
		if s.o.Registry == nil {
			return nil, cursor, nil
		}
		latest, err := s.latestVersion(ctx, typ, name)
		if err != nil {
			return nil, cursor, err
		}
		if latest < cursor {
			cursor = 0
		}
		vs, _, err := s.o.Registry.SearchModelVersions(ctx, registry.SearchQuery{Filter: modelFilter(name, cursor),
			OrderBy: []string{"version_number ASC"}, MaxResults: maxVersionsPerPoll})
		if err != nil {
			return nil, cursor, fmt.Errorf("trigger: versions of model %s: %w", name, err)
		}
		out := make([]versionEvent, 0, len(vs))
		for _, v := range vs {
			n := strconv.FormatInt(v.Version, 10)
			out = append(out, versionEvent{version: v.Version, payload: map[string]string{
				"model": name, "version": n, "uri": "models:/" + name + "/" + n, "run_id": v.RunID, "source": v.Source,
			}})
		}
		return out, cursor, nil
	}
	return nil, cursor, nil
}

// evalVersions fires a claimed dataset or model trigger for each version
// created since its cursor, oldest first. It reports false if it lost the
// row's lease on the way.
func (s *Service) evalVersions(ctx context.Context, r *row, t *pipeline.Trigger) (update, bool) {
	u := r.update()
	now := s.now()
	u.NextFire = now.Add(s.poll).UnixMilli()
	cursor, err := strconv.ParseInt(r.Cursor, 10, 64)
	if err != nil || cursor < 0 {
		cursor = 0
	}
	name := triggerConfig(t)
	vs, cursor, err := s.newVersions(ctx, r.Type, name, cursor)
	u.Cursor = strconv.FormatInt(cursor, 10)
	if err != nil {
		s.log.Warn("polling a trigger failed", "pipeline", r.Pipeline, "trigger", t.Name, "err", err)
		u.Error = err.Error()
	}
	for _, v := range vs {
		ev := event{typ: r.Type, pipeline: r.Pipeline, name: t.Name, concurrency: t.Concurrency, params: t.Parameters,
			payload: v.payload, dedup: r.Type + "/" + name + "/" + strconv.FormatInt(v.version, 10)}
		res := s.fire(ctx, ev, false)
		if res.outcome == outcomeFailed && !permanent(res.err) {
			break // tried again next poll
		}
		u.Cursor, u.LastFire, u.Error = strconv.FormatInt(v.version, 10), now.UnixMilli(), res.msg
		if res.run != nil {
			u.LastRunID = res.run.ID
		}
		if ok, err := s.progress(ctx, r, u); err != nil || !ok {
			if err != nil {
				s.log.Warn("saving a trigger's progress failed", "pipeline", r.Pipeline, "trigger", t.Name, "err", err)
			}
			return u, false
		}
	}
	return u, true
}
