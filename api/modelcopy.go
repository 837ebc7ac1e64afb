package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
)

// ModelRegistry is what copying a model version needs of the model
// registry (a *registry.Store).
type ModelRegistry interface {
	GetModelVersion(ctx context.Context, name string, version int64) (*registry.ModelVersion, error)
	GetRegisteredModel(ctx context.Context, name string) (*registry.RegisteredModel, error)
	CreateRegisteredModel(ctx context.Context, name, description string, tags []registry.KV) (*registry.RegisteredModel, error)
	CreateModelVersion(ctx context.Context, in registry.CreateModelVersionInput) (*registry.ModelVersion, error)
}

// CopiedFromTag is the tag of a copied model version: the workspace,
// model and version it was copied from (WORKSPACE:NAME/VERSION).
const CopiedFromTag = "kiln.copied_from"

// CopyModelVersionRequest is the body of POST
// /models/{model}/versions/{model_version}/copy: the workspace and
// registered model to copy the version to (the model is created there
// when absent; the source's name when Name is empty), and the new
// version's description (the source's when absent).
type CopyModelVersionRequest struct {
	Workspace   string  `json:"workspace"`
	Name        string  `json:"name"`
	Description *string `json:"description,omitempty"`
}

// ModelVersion is a registered model's version as /api/v1 answers it.
type ModelVersion struct {
	Name         string            `json:"name"`
	Version      int64             `json:"version"`
	Workspace    string            `json:"workspace"`
	Source       string            `json:"source"`
	RunID        string            `json:"run_id,omitempty"`
	ModelID      string            `json:"model_id,omitempty"`
	Description  string            `json:"description,omitempty"`
	Status       string            `json:"status"`
	UserID       string            `json:"user_id,omitempty"`
	CreationTime int64             `json:"creation_timestamp"`
	Tags         map[string]string `json:"tags,omitempty"`
	// CopiedFrom is the kiln.copied_from tag.
	CopiedFrom string `json:"copied_from,omitempty"`
}

func (h *Handler) registerModelCopy(mux Mux) {
	h.handle(mux, "POST", "/models/{model}/versions/{model_version}/copy", h.copyModelVersion)
}

// copyModelVersion copies a version (read in the request's workspace, the
// route's permission) to a registered model of a target workspace, which
// the principal must be allowed to write registered models in.
func (h *Handler) copyModelVersion(w http.ResponseWriter, r *http.Request) error {
	reg := h.d.Registry
	if reg == nil {
		return errdefs.NotImplemented("This server does not copy model versions")
	}
	name, version, err := storedVersion(r)
	if err != nil {
		return err
	}
	var req CopyModelVersionRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	if req.Workspace == "" {
		return errdefs.Invalid("Missing workspace: the workspace to copy the version to")
	}
	if err := access.ValidateName("workspace", req.Workspace); err != nil {
		return err
	}
	if req.Name == "" {
		// Names are per workspace: dev's churn goes to prod's churn.
		req.Name = access.ShownName(name)
	}
	if req.Description != nil {
		if err := checkText("The description", *req.Description, 64<<10); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if p := access.FromContext(ctx); p != nil && !p.Can(access.ActionWrite, req.Workspace, access.ResourceModel, req.Name) {
		msg := fmt.Sprintf("User '%s' may not write registered model '%s' in workspace '%s' (needs role editor or above there)", p.User, clip(req.Name), req.Workspace)
		if p.TokenWorkspace != "" && p.TokenWorkspace != req.Workspace {
			msg = fmt.Sprintf("Token %s may act only in workspace '%s', not '%s': copy with a credential of both workspaces", p.TokenID, p.TokenWorkspace, req.Workspace)
		}
		return &errdefs.Error{Kind: errdefs.ErrPermission, Msg: msg}
	}
	if err := h.workspaceExists(ctx, req.Workspace); err != nil {
		return err
	}
	src, err := reg.GetModelVersion(ctx, name, version)
	if err != nil {
		return err
	}
	// The target's name is the target workspace's: dev's churn/3 copied
	// to prod as churn is a version of prod's churn.
	target, err := access.StoredNameIn(ctx, access.ResourceModel, req.Workspace, req.Name)
	if err != nil {
		return err
	}
	if _, err := h.targetModel(ctx, reg, target, req.Workspace); err != nil {
		return err
	}
	from := access.RequestWorkspace(ctx)
	tags := make([]registry.KV, 0, len(src.Tags)+1)
	for _, t := range src.Tags {
		if t.Key != CopiedFromTag {
			tags = append(tags, t)
		}
	}
	tags = append(tags, registry.KV{Key: CopiedFromTag, Value: fmt.Sprintf("%s:%s/%d", from, access.ShownName(src.Name), src.Version)})
	desc := src.Description
	if req.Description != nil {
		desc = *req.Description
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	v, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{
		Name: target, Source: src.Source, RunID: src.RunID, RunLink: src.RunLink, ModelID: src.ModelID,
		Description: desc, UserID: who, Tags: tags,
	})
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "model version copied", "from", tags[len(tags)-1].Value, "to_workspace", req.Workspace, "model", req.Name, "version", v.Version, "actor", who)
	writeJSON(w, http.StatusCreated, toModelVersion(v, req.Workspace))
	return nil
}

// targetModel makes sure the registered model to copy to exists and
// belongs to ws (creating it there when absent).
func (h *Handler) targetModel(ctx context.Context, reg ModelRegistry, name, ws string) (*registry.RegisteredModel, error) {
	m, err := reg.GetRegisteredModel(ctx, name)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	claim, err := access.Claim(ctx, access.ResourceModel, name, ws, m != nil)
	if err != nil {
		return nil, err
	}
	if m != nil {
		return m, nil
	}
	m, err = reg.CreateRegisteredModel(ctx, name, "", nil)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Made meanwhile: it must still be ws's.
		if _, err := access.Claim(ctx, access.ResourceModel, name, ws, true); err != nil {
			return nil, err
		}
		return reg.GetRegisteredModel(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	if err := claim(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// workspaceExists refuses a workspace that was never created (with
// access control on; without it only the default workspace exists).
func (h *Handler) workspaceExists(ctx context.Context, ws string) error {
	if ws == access.DefaultWorkspace || h.d.Access == nil || h.d.Access.Users == nil || h.d.Access.Auth == nil {
		return nil
	}
	ok, err := h.d.Access.Users.WorkspaceExists(ctx, ws)
	if err != nil || ok {
		return err
	}
	return errdefs.NotFound("Workspace '%s' does not exist", ws)
}

func toModelVersion(v *registry.ModelVersion, ws string) *ModelVersion {
	out := &ModelVersion{Name: access.ShownName(v.Name), Version: v.Version, Workspace: ws, Source: v.Source, RunID: v.RunID, ModelID: v.ModelID,
		Description: v.Description, Status: v.Status, UserID: v.UserID, CreationTime: v.CreationTime}
	if len(v.Tags) > 0 {
		out.Tags = make(map[string]string, len(v.Tags))
		for _, t := range v.Tags {
			out.Tags[t.Key] = t.Value
			if t.Key == CopiedFromTag {
				out.CopiedFrom = t.Value
			}
		}
	}
	return out
}
