package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/approval"
	"github.com/kiln-ml/kiln/errdefs"
)

// DecisionRequest is the optional body of POST
// /approval-requests/{id}/approve and …/reject.
type DecisionRequest struct {
	Comment string `json:"comment,omitempty"`
}

func (h *Handler) registerApprovals(mux Mux) {
	h.handle(mux, "GET", "/approval-policies", h.listApprovalPolicies)
	h.handle(mux, "GET", "/approval-policies/{name}", h.getApprovalPolicy)
	h.handle(mux, "PUT", "/approval-policies/{name}", h.putApprovalPolicy)
	h.handle(mux, "DELETE", "/approval-policies/{name}", h.deleteApprovalPolicy)
	h.handle(mux, "GET", "/approval-requests", h.listApprovalRequests)
	h.handle(mux, "POST", "/approval-requests", h.createApprovalRequest)
	h.handle(mux, "GET", "/approval-requests/{id}", h.getApprovalRequest)
	h.handle(mux, "POST", "/approval-requests/{id}/approve", h.decide(approval.Approve))
	h.handle(mux, "POST", "/approval-requests/{id}/reject", h.decide(approval.Reject))
}

func (h *Handler) approvals() (*approval.Service, error) {
	if h.d.Approvals == nil {
		return nil, errdefs.NotImplemented("This server has no approvals")
	}
	return h.d.Approvals, nil
}

func (h *Handler) listApprovalPolicies(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	model := r.URL.Query().Get("model")
	if model != "" {
		if model, err = access.StoredName(r.Context(), access.ResourceModel, model); err != nil {
			return err
		}
	}
	ps, err := a.ListPolicies(r.Context(), model)
	if err != nil {
		return err
	}
	ps = access.FilterVisible(r.Context(), access.ResourceModel, ps, func(p *approval.Policy) string { return p.Model })
	writeShownJSON(w, http.StatusOK, map[string]any{"policies": ps})
	return nil
}

func (h *Handler) getApprovalPolicy(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	p, err := a.GetPolicy(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := approvalVisible(r.Context(), p); err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) putApprovalPolicy(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	var p approval.Policy
	if err := decodeJSON(w, r, maxAccessBody, &p, false); err != nil {
		return err
	}
	name := r.PathValue("name")
	if p.Name == "" {
		p.Name = name
	} else if p.Name != name {
		return errdefs.Invalid("The body names policy '%s', the URL '%s'", clip(p.Name), clip(name))
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	// The policy protects the request's workspace's model.
	if p.Model != "" {
		if p.Model, err = access.StoredName(r.Context(), access.ResourceModel, p.Model); err != nil {
			return err
		}
	}
	if cur, err := a.GetPolicy(r.Context(), name); err == nil && approvalVisible(r.Context(), cur) != nil {
		return errdefs.AlreadyExists("Approval policy '%s' protects a model of another workspace than '%s' (policy names are shared by all workspaces)", clip(name), access.RequestWorkspace(r.Context()))
	}
	out, err := a.PutPolicy(r.Context(), p, who)
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) deleteApprovalPolicy(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	if cur, err := a.GetPolicy(r.Context(), r.PathValue("name")); err == nil {
		if err := approvalVisible(r.Context(), cur); err != nil {
			return err
		}
	}
	if err := a.DeletePolicy(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listApprovalRequests(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	rq := approval.RequestQuery{Model: q.Get("model"), State: q.Get("state")}
	if rq.Model != "" {
		if rq.Model, err = access.StoredName(r.Context(), access.ResourceModel, rq.Model); err != nil {
			return err
		}
	}
	if v := q.Get("limit"); v != "" {
		if rq.Limit, err = strconv.Atoi(v); err != nil || rq.Limit < 1 {
			return errdefs.Invalid("limit=%q is not a positive integer", clip(v))
		}
	}
	rs, err := a.ListRequests(r.Context(), rq)
	if err != nil {
		return err
	}
	rs = access.FilterVisible(r.Context(), access.ResourceModel, rs, func(q *approval.Request) string { return q.Model })
	writeShownJSON(w, http.StatusOK, map[string]any{"requests": rs})
	return nil
}

func (h *Handler) createApprovalRequest(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	var nr approval.NewRequest
	if err := decodeJSON(w, r, maxAccessBody, &nr, false); err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	if nr.Model != "" {
		if nr.Model, err = access.StoredName(r.Context(), access.ResourceModel, nr.Model); err != nil {
			return err
		}
	}
	out, err := a.CreateRequest(r.Context(), nr, who)
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) getApprovalRequest(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
	}
	out, err := a.GetRequest(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !access.Visible(r.Context(), access.ResourceModel, out.Model) {
		return errdefs.NotFound("Approval request '%s' does not exist in workspace '%s'", clip(out.ID), access.RequestWorkspace(r.Context()))
	}
	writeShownJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) decide(decision string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, err := h.approvals()
		if err != nil {
			return err
		}
		var d DecisionRequest
		if err := decodeJSON(w, r, maxAccessBody, &d, true); err != nil {
			return err
		}
		who, err := actor(r)
		if err != nil {
			return err
		}
		if cur, err := a.GetRequest(r.Context(), r.PathValue("id")); err == nil && !access.Visible(r.Context(), access.ResourceModel, cur.Model) {
			return errdefs.NotFound("Approval request '%s' does not exist in workspace '%s'", clip(cur.ID), access.RequestWorkspace(r.Context()))
		}
		out, err := a.Decide(r.Context(), r.PathValue("id"), who, decision, d.Comment)
		if err != nil {
			return err
		}
		writeShownJSON(w, http.StatusOK, out)
		return nil
	}
}

// approvalVisible answers a policy on another workspace's model as not
// found: a policy protects the model of the workspace it was put in (the
// names of policies are shared by all workspaces).
func approvalVisible(ctx context.Context, p *approval.Policy) error {
	if p == nil || access.Visible(ctx, access.ResourceModel, p.Model) {
		return nil
	}
	return errdefs.NotFound("Approval policy '%s' does not exist in workspace '%s' (it protects another workspace's model)", clip(p.Name), access.RequestWorkspace(ctx))
}
