package mlflowapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
)

// registerRegistry registers the model registry RPCs.
func (h *Handler) registerRegistry(mux Mux) {
	const rm, mv = "/mlflow/registered-models/", "/mlflow/model-versions/"
	h.rpc(mux, "POST", rm+"create", h.createRegisteredModel)
	h.rpc(mux, "POST", rm+"rename", h.renameRegisteredModel)
	h.rpc(mux, "PATCH", rm+"update", h.updateRegisteredModel)
	h.rpc(mux, "DELETE", rm+"delete", h.deleteRegisteredModel)
	h.rpc(mux, "GET", rm+"get", h.getRegisteredModel)
	h.rpc(mux, "GET", rm+"search", h.searchRegisteredModels)
	h.rpc(mux, "POST", rm+"get-latest-versions", h.getLatestVersions)
	h.rpc(mux, "GET", rm+"get-latest-versions", h.getLatestVersions)
	h.rpc(mux, "POST", rm+"set-tag", h.setRegisteredModelTag)
	h.rpc(mux, "DELETE", rm+"delete-tag", h.deleteRegisteredModelTag)
	h.rpc(mux, "POST", rm+"alias", h.setAlias)
	h.rpc(mux, "DELETE", rm+"alias", h.deleteAlias)
	h.rpc(mux, "GET", rm+"alias", h.getByAlias)
	h.rpc(mux, "POST", mv+"create", h.createModelVersion)
	h.rpc(mux, "PATCH", mv+"update", h.updateModelVersion)
	h.rpc(mux, "DELETE", mv+"delete", h.deleteModelVersion)
	h.rpc(mux, "GET", mv+"get", h.getModelVersion)
	h.rpc(mux, "GET", mv+"search", h.searchModelVersions)
	h.rpc(mux, "POST", mv+"transition-stage", h.transitionStage)
	h.rpc(mux, "GET", mv+"get-download-uri", h.getDownloadURI)
	h.rpc(mux, "POST", mv+"set-tag", h.setModelVersionTag)
	h.rpc(mux, "DELETE", mv+"delete-tag", h.deleteModelVersionTag)
}

type aliasJSON struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type modelVersionJSON struct {
	Name                 string   `json:"name"`
	Version              string   `json:"version"`
	CreationTimestamp    int64    `json:"creation_timestamp"`
	LastUpdatedTimestamp int64    `json:"last_updated_timestamp"`
	UserID               string   `json:"user_id,omitempty"`
	CurrentStage         string   `json:"current_stage"`
	Description          string   `json:"description,omitempty"`
	Source               string   `json:"source"`
	RunID                string   `json:"run_id,omitempty"`
	Status               string   `json:"status"`
	StatusMessage        string   `json:"status_message,omitempty"`
	Tags                 []kvJSON `json:"tags,omitempty"`
	RunLink              string   `json:"run_link,omitempty"`
	Aliases              []string `json:"aliases,omitempty"`
	ModelID              string   `json:"model_id,omitempty"`
}

type registeredModelJSON struct {
	Name                 string             `json:"name"`
	CreationTimestamp    int64              `json:"creation_timestamp"`
	LastUpdatedTimestamp int64              `json:"last_updated_timestamp"`
	Description          string             `json:"description,omitempty"`
	LatestVersions       []modelVersionJSON `json:"latest_versions,omitempty"`
	Tags                 []kvJSON           `json:"tags,omitempty"`
	Aliases              []aliasJSON        `json:"aliases,omitempty"`
}

func regKVs(kvs []registry.KV) []kvJSON {
	out := make([]kvJSON, len(kvs))
	for i, kv := range kvs {
		out[i] = kvJSON{kv.Key, kv.Value}
	}
	return out
}

func toModelVersionJSON(v *registry.ModelVersion) modelVersionJSON {
	return modelVersionJSON{
		Name: access.ShownName(v.Name), Version: strconv.FormatInt(v.Version, 10), CreationTimestamp: v.CreationTime, LastUpdatedTimestamp: v.LastUpdatedTime,
		UserID: v.UserID, CurrentStage: v.CurrentStage, Description: v.Description, Source: access.ShownText(v.Source), RunID: v.RunID,
		Status: v.Status, StatusMessage: v.StatusMessage, Tags: regKVs(v.Tags), RunLink: v.RunLink, Aliases: v.Aliases, ModelID: v.ModelID,
	}
}

func toRegisteredModelJSON(m *registry.RegisteredModel) registeredModelJSON {
	out := registeredModelJSON{Name: access.ShownName(m.Name), CreationTimestamp: m.CreationTime, LastUpdatedTimestamp: m.LastUpdatedTime,
		Description: m.Description, Tags: regKVs(m.Tags)}
	for _, v := range m.LatestVersions {
		out.LatestVersions = append(out.LatestVersions, toModelVersionJSON(v))
	}
	for _, a := range m.Aliases {
		out.Aliases = append(out.Aliases, aliasJSON{a.Alias, strconv.FormatInt(a.Version, 10)})
	}
	return out
}

func modelResp(m *registry.RegisteredModel, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": toRegisteredModelJSON(m)}, nil
}

func versionResp(v *registry.ModelVersion, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": toModelVersionJSON(v)}, nil
}

type nameReq struct {
	Name *string `json:"name"`
}

// name returns the registered model's stored name (qualified with the
// request's workspace: access.StoredName).
func (q nameReq) name(ctx context.Context) (string, error) {
	if q.Name == nil || *q.Name == "" {
		return "", missing("name")
	}
	return access.StoredName(ctx, access.ResourceModel, *q.Name)
}

type versionReq struct {
	nameReq
	Version *string `json:"version"`
}

func (q versionReq) nv(ctx context.Context) (string, int64, error) {
	name, err := q.name(ctx)
	if err != nil {
		return "", 0, err
	}
	if q.Version == nil || *q.Version == "" {
		return "", 0, missing("version")
	}
	v, err := registry.ParseVersion(*q.Version)
	return name, v, err
}

func (h *Handler) createRegisteredModel(r *http.Request) (any, error) {
	var req struct {
		nameReq
		Tags        []kvJSON `json:"tags"`
		Description string   `json:"description"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	tags := make([]registry.KV, len(req.Tags))
	for i, t := range req.Tags {
		tags[i] = registry.KV{Key: t.Key, Value: t.Value}
	}
	return modelResp(h.registry.CreateRegisteredModel(r.Context(), name, req.Description, tags))
}

func (h *Handler) renameRegisteredModel(r *http.Request) (any, error) {
	var req struct {
		nameReq
		NewName *string `json:"new_name"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.NewName == nil || *req.NewName == "" {
		return nil, missing("new_name")
	}
	to, err := access.StoredName(r.Context(), access.ResourceModel, *req.NewName)
	if err != nil {
		return nil, err
	}
	return modelResp(h.registry.RenameRegisteredModel(r.Context(), name, to))
}

func (h *Handler) updateRegisteredModel(r *http.Request) (any, error) {
	var req struct {
		nameReq
		Description string `json:"description"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	return modelResp(h.registry.UpdateRegisteredModel(r.Context(), name, req.Description))
}

func (h *Handler) deleteRegisteredModel(r *http.Request) (any, error) {
	var req nameReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	return nil, h.registry.DeleteRegisteredModel(r.Context(), name)
}

func (h *Handler) getRegisteredModel(r *http.Request) (any, error) {
	var req nameReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	return modelResp(h.registry.GetRegisteredModel(r.Context(), name))
}

type searchReq struct {
	Filter     string   `json:"filter"`
	MaxResults Int64    `json:"max_results"`
	OrderBy    []string `json:"order_by"`
	PageToken  string   `json:"page_token"`
}

// query returns the registry search, its filter's names qualified with the
// request's workspace (modelNameFilter).
func (q searchReq) query(ctx context.Context) (registry.SearchQuery, error) {
	f, err := modelNameFilter(ctx, q.Filter)
	if err != nil {
		return registry.SearchQuery{}, err
	}
	return registry.SearchQuery{Filter: f, MaxResults: int(q.MaxResults), OrderBy: q.OrderBy, PageToken: q.PageToken}, nil
}

// modelNameFilter rewrites a registry search filter for the request's
// workspace: the values compared with a model's name become stored names
// (in a workspace other than the default one, prefixed with it, which
// keeps LIKE patterns meaning the same). A filter that does not parse is
// left for the registry to refuse.
func modelNameFilter(ctx context.Context, f string) (string, error) {
	if f == "" || access.RequestWorkspace(ctx) == access.DefaultWorkspace && !strings.Contains(f, access.NameSeparator) {
		return f, nil
	}
	clauses, err := filter.Parse(f)
	if err != nil {
		return f, nil
	}
	ws := access.RequestWorkspace(ctx)
	qualify := func(v string) (string, error) {
		if strings.Contains(v, access.NameSeparator) {
			return "", errdefs.Invalid("Invalid name '%s' in the filter: it may not contain the control character U+001F", strings.ReplaceAll(v, access.NameSeparator, "\\x1f"))
		}
		if ws == access.DefaultWorkspace {
			return v, nil
		}
		return ws + access.NameSeparator + v, nil
	}
	parts := make([]string, len(clauses))
	for i, c := range clauses {
		if c.Entity == filter.Attribute && c.Key == "name" {
			if c.Value.List != nil {
				l := make([]string, len(c.Value.List))
				for j, v := range c.Value.List {
					if l[j], err = qualify(v); err != nil {
						return "", err
					}
				}
				c.Value.List = l
			} else if !c.Value.IsNum {
				if c.Value.Str, err = qualify(c.Value.Str); err != nil {
					return "", err
				}
			}
		}
		parts[i] = c.String()
	}
	return strings.Join(parts, " AND "), nil
}

func (h *Handler) searchRegisteredModels(r *http.Request) (any, error) {
	var req searchReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	q, err := req.query(r.Context())
	if err != nil {
		return nil, err
	}
	models, next, err := h.registry.SearchRegisteredModels(r.Context(), q)
	if err != nil {
		return nil, err
	}
	models = access.FilterVisible(r.Context(), access.ResourceModel, models, func(m *registry.RegisteredModel) string { return m.Name })
	out := struct {
		RegisteredModels []registeredModelJSON `json:"registered_models,omitempty"`
		NextPageToken    string                `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, m := range models {
		out.RegisteredModels = append(out.RegisteredModels, toRegisteredModelJSON(m))
	}
	return out, nil
}

func (h *Handler) getLatestVersions(r *http.Request) (any, error) {
	var req struct {
		nameReq
		Stages []string `json:"stages"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	vs, err := h.registry.GetLatestVersions(r.Context(), name, req.Stages)
	if err != nil {
		return nil, err
	}
	out := struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
	}{}
	for _, v := range vs {
		out.ModelVersions = append(out.ModelVersions, toModelVersionJSON(v))
	}
	return out, nil
}

func (h *Handler) setRegisteredModelTag(r *http.Request) (any, error) {
	var req struct {
		nameReq
		kvReq
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Key == nil || *req.Key == "" {
		return nil, missing("key")
	}
	return nil, h.registry.SetRegisteredModelTag(r.Context(), name, *req.Key, deref(req.Value))
}

func (h *Handler) deleteRegisteredModelTag(r *http.Request) (any, error) {
	var req struct {
		nameReq
		Key *string `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Key == nil || *req.Key == "" {
		return nil, missing("key")
	}
	return nil, h.registry.DeleteRegisteredModelTag(r.Context(), name, *req.Key)
}

type aliasReq struct {
	nameReq
	Alias   *string `json:"alias"`
	Version *string `json:"version"`
}

func (h *Handler) setAlias(r *http.Request) (any, error) {
	var req aliasReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Alias == nil || *req.Alias == "" {
		return nil, missing("alias")
	}
	if req.Version == nil || *req.Version == "" {
		return nil, missing("version")
	}
	v, err := registry.ParseVersion(*req.Version)
	if err != nil {
		return nil, err
	}
	return nil, h.registry.SetAlias(r.Context(), name, *req.Alias, v)
}

func (h *Handler) deleteAlias(r *http.Request) (any, error) {
	var req aliasReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Alias == nil || *req.Alias == "" {
		return nil, missing("alias")
	}
	return nil, h.registry.DeleteAlias(r.Context(), name, *req.Alias)
}

func (h *Handler) getByAlias(r *http.Request) (any, error) {
	var req aliasReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Alias == nil || *req.Alias == "" {
		return nil, missing("alias")
	}
	return versionResp(h.registry.GetVersionByAlias(r.Context(), name, *req.Alias))
}

func (h *Handler) createModelVersion(r *http.Request) (any, error) {
	var req struct {
		nameReq
		Source      *string  `json:"source"`
		RunID       string   `json:"run_id"`
		Tags        []kvJSON `json:"tags"`
		RunLink     string   `json:"run_link"`
		Description string   `json:"description"`
		ModelID     string   `json:"model_id"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, err := req.name(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Source == nil || *req.Source == "" {
		return nil, missing("source")
	}
	// A source naming a registered model version (MLflow's
	// copy_model_version) names one of the request's workspace.
	source, err := storedSourceURI(r.Context(), *req.Source)
	if err != nil {
		return nil, err
	}
	tags := make([]registry.KV, len(req.Tags))
	for i, t := range req.Tags {
		tags[i] = registry.KV{Key: t.Key, Value: t.Value}
	}
	return versionResp(h.registry.CreateModelVersion(r.Context(), registry.CreateModelVersionInput{
		Name: name, Source: source, RunID: req.RunID, RunLink: req.RunLink, Description: req.Description,
		ModelID: req.ModelID, Tags: tags,
	}))
}

func (h *Handler) updateModelVersion(r *http.Request) (any, error) {
	var req struct {
		versionReq
		Description string `json:"description"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	return versionResp(h.registry.UpdateModelVersion(r.Context(), name, v, req.Description))
}

func (h *Handler) deleteModelVersion(r *http.Request) (any, error) {
	var req versionReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	return nil, h.registry.DeleteModelVersion(r.Context(), name, v)
}

func (h *Handler) getModelVersion(r *http.Request) (any, error) {
	var req versionReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	return versionResp(h.registry.GetModelVersion(r.Context(), name, v))
}

func (h *Handler) searchModelVersions(r *http.Request) (any, error) {
	var req searchReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	q, err := req.query(r.Context())
	if err != nil {
		return nil, err
	}
	vs, next, err := h.registry.SearchModelVersions(r.Context(), q)
	if err != nil {
		return nil, err
	}
	vs = access.FilterVisible(r.Context(), access.ResourceModel, vs, func(v *registry.ModelVersion) string { return v.Name })
	out := struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
		NextPageToken string             `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, v := range vs {
		out.ModelVersions = append(out.ModelVersions, toModelVersionJSON(v))
	}
	return out, nil
}

func (h *Handler) transitionStage(r *http.Request) (any, error) {
	var req struct {
		versionReq
		Stage           *string `json:"stage"`
		ArchiveExisting bool    `json:"archive_existing_versions"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Stage == nil || *req.Stage == "" {
		return nil, missing("stage")
	}
	return versionResp(h.registry.TransitionStage(r.Context(), name, v, *req.Stage, req.ArchiveExisting))
}

func (h *Handler) getDownloadURI(r *http.Request) (any, error) {
	var req versionReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	uri, err := h.registry.GetDownloadURI(r.Context(), name, v)
	if err != nil {
		return nil, err
	}
	// A models:/ URI names the model as the request's workspace does.
	return map[string]string{"artifact_uri": access.ShownText(uri)}, nil
}

func (h *Handler) setModelVersionTag(r *http.Request) (any, error) {
	var req struct {
		versionReq
		kvReq
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Key == nil || *req.Key == "" {
		return nil, missing("key")
	}
	return nil, h.registry.SetModelVersionTag(r.Context(), name, v, *req.Key, deref(req.Value))
}

func (h *Handler) deleteModelVersionTag(r *http.Request) (any, error) {
	var req struct {
		versionReq
		Key *string `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name, v, err := req.nv(r.Context())
	if err != nil {
		return nil, err
	}
	if req.Key == nil || *req.Key == "" {
		return nil, missing("key")
	}
	return nil, h.registry.DeleteModelVersionTag(r.Context(), name, v, *req.Key)
}

// deref returns *p, or "" for nil (an optional string field left out).
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// storedSourceURI rewrites a models:/NAME/VERSION (or @ALIAS, /STAGE)
// source to the model's stored name in the request's workspace
// (access.StoredName). Other sources are returned as they are.
func storedSourceURI(ctx context.Context, raw string) (string, error) {
	u, err := model.ParseURI(raw)
	if err != nil || u.Kind != model.URIVersion && u.Kind != model.URIAlias && u.Kind != model.URIStage {
		return raw, nil // the registry checks the source
	}
	stored, err := access.StoredName(ctx, access.ResourceModel, u.Name)
	if err != nil || stored == u.Name {
		return raw, err
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	trimmed := strings.TrimLeft(rest, "/")
	if !ok || !strings.HasPrefix(trimmed, u.Name) {
		return raw, nil
	}
	return scheme + ":" + rest[:len(rest)-len(trimmed)] + stored + trimmed[len(u.Name):], nil
}
