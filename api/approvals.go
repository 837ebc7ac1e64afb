package api

import (
	"net/http"
	"strconv"

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
	ps, err := a.ListPolicies(r.Context(), r.URL.Query().Get("model"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": ps})
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
	writeJSON(w, http.StatusOK, p)
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
	out, err := a.PutPolicy(r.Context(), p, who)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) deleteApprovalPolicy(w http.ResponseWriter, r *http.Request) error {
	a, err := h.approvals()
	if err != nil {
		return err
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
	if v := q.Get("limit"); v != "" {
		if rq.Limit, err = strconv.Atoi(v); err != nil || rq.Limit < 1 {
			return errdefs.Invalid("limit=%q is not a positive integer", clip(v))
		}
	}
	rs, err := a.ListRequests(r.Context(), rq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": rs})
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
	out, err := a.CreateRequest(r.Context(), nr, who)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
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
	writeJSON(w, http.StatusOK, out)
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
		out, err := a.Decide(r.Context(), r.PathValue("id"), who, decision, d.Comment)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}
