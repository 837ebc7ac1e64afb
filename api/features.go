package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
)

// Features is the feature store (a *feature.Service): entity and feature
// view definitions, materialization and online lookups.
type Features interface {
	ApplyEntity(ctx context.Context, e *feature.Entity, actor string) (int64, bool, error)
	ApplyView(ctx context.Context, v *feature.FeatureView, actor string) (int64, bool, error)
	EntityVersion(ctx context.Context, name string, version int64) (*feature.EntityVersion, error)
	ViewVersion(ctx context.Context, name string, version int64) (*feature.ViewVersion, error)
	Entities(ctx context.Context) ([]*feature.EntityVersion, error)
	Views(ctx context.Context) ([]*feature.ViewVersion, error)
	ViewVersions(ctx context.Context, name string) ([]*feature.ViewVersion, error)
	DeleteEntity(ctx context.Context, name, actor string) error
	DeleteView(ctx context.Context, name, actor string) error
	Materialize(ctx context.Context, view string, start, end time.Time, incremental bool) (*feature.Materialization, error)
	Materializations(ctx context.Context, view string, limit int) ([]*feature.Materialization, error)
	Online(ctx context.Context, req feature.OnlineRequest) (*feature.OnlineResult, error)
}

// Wire types of the feature store.
type (
	// ApplyEntityResponse answers PUT /entities/{name}.
	ApplyEntityResponse struct {
		Version int64                  `json:"version"`
		Changed bool                   `json:"changed"`
		Entity  *feature.EntityVersion `json:"entity"`
	}
	// ApplyFeatureViewResponse answers PUT /feature-views/{name}.
	ApplyFeatureViewResponse struct {
		Version     int64                `json:"version"`
		Changed     bool                 `json:"changed"`
		FeatureView *feature.ViewVersion `json:"feature_view"`
	}
	// EntityList answers GET /entities.
	EntityList struct {
		Entities []*feature.EntityVersion `json:"entities"`
	}
	// FeatureViewList answers GET /feature-views.
	FeatureViewList struct {
		FeatureViews []*feature.ViewVersion `json:"feature_views"`
	}
	// FeatureViewVersions answers GET /feature-views/{name}/versions.
	FeatureViewVersions struct {
		Versions []*feature.ViewVersion `json:"versions"`
	}
	// MaterializeRequest is the body of POST
	// /feature-views/{name}/materialize: an event-time interval
	// [start, end) (RFC 3339; end empty: now; start empty: from the
	// beginning), or incremental from the end of the last successful run.
	MaterializeRequest struct {
		Start       string `json:"start,omitempty"`
		End         string `json:"end,omitempty"`
		Incremental bool   `json:"incremental,omitempty"`
	}
	// MaterializationList answers GET /feature-views/{name}/materializations.
	MaterializationList struct {
		Materializations []*feature.Materialization `json:"materializations"`
	}
	// OnlineFeaturesRequest is the body of POST /features/online.
	OnlineFeaturesRequest struct {
		Features    []string                     `json:"features"`
		Entities    map[string][]json.RawMessage `json:"entities"`
		UseDefaults bool                         `json:"use_defaults,omitempty"`
	}
	// OnlineFeaturesResponse answers an online lookup, as Feast's
	// get-online-features: metadata.feature_names names the columns (the
	// join keys, then the features as "view:feature"); results has one
	// column each, with a value, status and event time per entity row.
	OnlineFeaturesResponse struct {
		Metadata OnlineFeaturesMetadata `json:"metadata"`
		Results  []OnlineFeaturesColumn `json:"results"`
	}
	OnlineFeaturesMetadata struct {
		FeatureNames []string `json:"feature_names"`
	}
	OnlineFeaturesColumn struct {
		Values          []any       `json:"values"`
		Statuses        []string    `json:"statuses"`
		EventTimestamps []time.Time `json:"event_timestamps"`
	}
)

func (h *Handler) registerFeatures(mux Mux) {
	h.handle(mux, "GET", "/entities", h.listEntities)
	h.handle(mux, "GET", "/entities/{name}", h.getEntity)
	h.handle(mux, "PUT", "/entities/{name}", h.putEntity)
	h.handle(mux, "DELETE", "/entities/{name}", h.deleteEntity)
	h.handle(mux, "GET", "/feature-views", h.listViews)
	h.handle(mux, "GET", "/feature-views/{name}", h.getView)
	h.handle(mux, "PUT", "/feature-views/{name}", h.putView)
	h.handle(mux, "DELETE", "/feature-views/{name}", h.deleteView)
	h.handle(mux, "GET", "/feature-views/{name}/versions", h.viewVersions)
	h.handle(mux, "POST", "/feature-views/{name}/materialize", h.materialize)
	h.handle(mux, "GET", "/feature-views/{name}/materializations", h.materializations)
	h.handle(mux, "POST", "/features/online", h.postOnline)
	h.handle(mux, "GET", "/features/online", h.getOnline)
}

func (h *Handler) features() (Features, error) {
	if h.d.Features == nil {
		return nil, errdefs.NotImplemented("This server has no feature store")
	}
	return h.d.Features, nil
}

// versionParam reads the optional ?version= (0 when absent).
func versionParam(r *http.Request) (int64, error) {
	s := r.URL.Query().Get("version")
	if s == "" || s == "latest" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "v"), 10, 64)
	if err != nil || n < 1 {
		return 0, errdefs.Invalid("Invalid version '%s': want a number from 1, or 'latest'", clip(s))
	}
	return n, nil
}

func (h *Handler) listEntities(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	es, err := f.Entities(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, EntityList{Entities: es})
	return nil
}

func (h *Handler) getEntity(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	v, err := versionParam(r)
	if err != nil {
		return err
	}
	e, err := f.EntityVersion(r.Context(), r.PathValue("name"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// readDoc reads a YAML or JSON document body.
func readDoc(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, feature.MaxDocBytes))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errdefs.Invalid("The request needs a YAML or JSON document")
	}
	return data, nil
}

func (h *Handler) putEntity(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	a, err := actor(r)
	if err != nil {
		return err
	}
	data, err := readDoc(w, r)
	if err != nil {
		return err
	}
	e, err := feature.ParseEntity(data, r.PathValue("name"))
	if err != nil {
		return withFieldDetails(err)
	}
	version, changed, err := f.ApplyEntity(r.Context(), e, a)
	if err != nil {
		return withFieldDetails(err)
	}
	stored, err := f.EntityVersion(r.Context(), e.Metadata.Name, version)
	if err != nil {
		return err
	}
	writeJSON(w, applyStatus(version, changed), ApplyEntityResponse{Version: version, Changed: changed, Entity: stored})
	return nil
}

// applyStatus is 201 for a definition's first version, else 200.
func applyStatus(version int64, changed bool) int {
	if changed && version == 1 {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (h *Handler) deleteEntity(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	a, err := actor(r)
	if err != nil {
		return err
	}
	if err := f.DeleteEntity(r.Context(), r.PathValue("name"), a); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (h *Handler) listViews(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	vs, err := f.Views(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FeatureViewList{FeatureViews: vs})
	return nil
}

func (h *Handler) getView(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	v, err := versionParam(r)
	if err != nil {
		return err
	}
	vv, err := f.ViewVersion(r.Context(), r.PathValue("name"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, vv)
	return nil
}

func (h *Handler) putView(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	a, err := actor(r)
	if err != nil {
		return err
	}
	data, err := readDoc(w, r)
	if err != nil {
		return err
	}
	v, err := feature.ParseFeatureView(data, r.PathValue("name"))
	if err != nil {
		return withFieldDetails(err)
	}
	if v.Spec.Source.Path != "" && strings.Contains(v.Spec.Source.Path, "://") && !h.sourceAllowed(v.Spec.Source.Path) {
		return withFieldDetails(errdefs.InvalidFields("feature view", errdefs.FieldErrors{{Path: "spec.source.path",
			Msg: "this server does not read sources of scheme " + strings.SplitN(v.Spec.Source.Path, "://", 2)[0]}}))
	}
	version, changed, err := f.ApplyView(r.Context(), v, a)
	if err != nil {
		return withFieldDetails(err)
	}
	stored, err := f.ViewVersion(r.Context(), v.Metadata.Name, version)
	if err != nil {
		return err
	}
	writeJSON(w, applyStatus(version, changed), ApplyFeatureViewResponse{Version: version, Changed: changed, FeatureView: stored})
	return nil
}

func (h *Handler) deleteView(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	a, err := actor(r)
	if err != nil {
		return err
	}
	if err := f.DeleteView(r.Context(), r.PathValue("name"), a); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (h *Handler) viewVersions(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	vs, err := f.ViewVersions(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FeatureViewVersions{Versions: vs})
	return nil
}

func parseTimeField(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if d, derr := time.Parse(time.DateOnly, s); derr == nil {
			return d, nil
		}
		return time.Time{}, errdefs.Invalid("Invalid %s '%s': want an RFC 3339 time (2026-01-02T15:04:05Z) or a date", name, clip(s))
	}
	return t, nil
}

func (h *Handler) materialize(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	var req MaterializeRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, true); err != nil {
		return err
	}
	start, err := parseTimeField("start", req.Start)
	if err != nil {
		return err
	}
	end, err := parseTimeField("end", req.End)
	if err != nil {
		return err
	}
	if req.Incremental && !start.IsZero() {
		return errdefs.Invalid("An incremental materialization starts where the last one ended: give end only")
	}
	m, err := f.Materialize(r.Context(), r.PathValue("name"), start, end, req.Incremental)
	if err != nil {
		return withFieldDetails(err)
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (h *Handler) materializations(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	if _, err := f.ViewVersions(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	ms, err := f.Materializations(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, MaterializationList{Materializations: ms})
	return nil
}

func (h *Handler) postOnline(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	var body OnlineFeaturesRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &body, false); err != nil {
		return err
	}
	req := feature.OnlineRequest{Features: body.Features, UseDefaults: body.UseDefaults, Entities: make(map[string][]any, len(body.Entities))}
	for k, raws := range body.Entities {
		vals := make([]any, len(raws))
		for i, raw := range raws {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&vals[i]); err != nil {
				return errdefs.Invalid("Invalid value %d of join key '%s'", i, clip(k))
			}
		}
		req.Entities[k] = vals
	}
	return h.online(w, r, f, req)
}

func (h *Handler) getOnline(w http.ResponseWriter, r *http.Request) error {
	f, err := h.features()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	req := feature.OnlineRequest{Entities: map[string][]any{}}
	for k, vals := range q {
		switch k {
		case "features":
			for _, v := range vals {
				for _, ref := range strings.Split(v, ",") {
					if ref = strings.TrimSpace(ref); ref != "" {
						req.Features = append(req.Features, ref)
					}
				}
			}
		case "use_defaults":
			b, err := strconv.ParseBool(q.Get(k))
			if err != nil {
				return errdefs.Invalid("Invalid use_defaults '%s': want true or false", clip(q.Get(k)))
			}
			req.UseDefaults = b
		default:
			row := make([]any, len(vals))
			for i, v := range vals {
				row[i] = v
			}
			req.Entities[k] = row
		}
	}
	return h.online(w, r, f, req)
}

func (h *Handler) online(w http.ResponseWriter, r *http.Request, f Features, req feature.OnlineRequest) error {
	res, err := f.Online(r.Context(), req)
	if err != nil {
		return err
	}
	out := OnlineFeaturesResponse{Metadata: OnlineFeaturesMetadata{FeatureNames: res.FeatureNames}, Results: make([]OnlineFeaturesColumn, len(res.Results))}
	epoch := time.Unix(0, 0).UTC()
	for i, c := range res.Results {
		col := OnlineFeaturesColumn{Values: c.Values, Statuses: c.Statuses, EventTimestamps: c.EventTimestamps}
		for j, v := range col.Values {
			if x, ok := v.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
				col.Values[j] = nil // JSON has no NaN
			}
		}
		for j, t := range col.EventTimestamps {
			if t.IsZero() {
				col.EventTimestamps[j] = epoch
			}
		}
		out.Results[i] = col
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
