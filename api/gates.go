package api

import (
	"context"
	"errors"
	"github.com/kiln-ml/kiln/access"
	"io"
	"net/http"
	"strconv"

	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
)

// Gates is what the promotion gate routes need (a *gate.Service
// implements it).
type Gates interface {
	PutPolicy(ctx context.Context, p *gate.Policy, actor string) (*gate.StoredPolicy, bool, error)
	GetPolicy(ctx context.Context, name string) (*gate.StoredPolicy, error)
	ListPolicies(ctx context.Context, model string) ([]*gate.StoredPolicy, error)
	DeletePolicy(ctx context.Context, name, actor string) error
	Evaluate(ctx context.Context, policy string, version int64, actor string) (*gate.Result, error)
	Results(ctx context.Context, model string, version int64, policy string) ([]*gate.Result, error)
}

// ApplyGatePolicyResponse is the answer of PUT /gate-policies/{name}.
// Changed is false when the stored document was already the same.
type ApplyGatePolicyResponse struct {
	Created bool               `json:"created"`
	Changed bool               `json:"changed"`
	Policy  *gate.StoredPolicy `json:"policy"`
}

// GatePolicyList is the answer of GET /gate-policies.
type GatePolicyList struct {
	Policies []*gate.StoredPolicy `json:"policies"`
}

// EvaluateGateRequest is the body of POST /gate-policies/{name}/evaluate.
type EvaluateGateRequest struct {
	Version int64 `json:"version"`
	// Actor is who asks (recorded in the result); the X-Kiln-Actor
	// header, else "anonymous", when empty.
	Actor string `json:"actor,omitempty"`
}

// GateResultList is the answer of GET /models/{model}/versions/{model_version}/gate-results.
type GateResultList struct {
	Results []*gate.Result `json:"results"`
}

func (h *Handler) registerGates(mux Mux) {
	h.handle(mux, "GET", "/gate-policies", h.listGatePolicies)
	h.handle(mux, "GET", "/gate-policies/{name}", h.getGatePolicy)
	h.handle(mux, "PUT", "/gate-policies/{name}", h.putGatePolicy)
	h.handle(mux, "DELETE", "/gate-policies/{name}", h.deleteGatePolicy)
	h.handle(mux, "POST", "/gate-policies/{name}/evaluate", h.evaluateGate)
	h.handle(mux, "GET", "/models/{model}/versions/{model_version}/gate-results", h.gateResults)
}

func (h *Handler) gates() (Gates, error) {
	if h.d.Gates == nil {
		return nil, errdefs.NotImplemented("This server does not run promotion gates")
	}
	return h.d.Gates, nil
}

// policyName reads and checks the {name} path value.
func policyName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if err := gate.ValidateName(name); err != nil {
		return "", errdefs.Invalid("Invalid gate policy name: %s", errdefs.Message(err))
	}
	return name, nil
}

// gateActor is who makes a change: the signed-in user when access
// control saw the request (a body's actor is then ignored: it cannot
// speak for someone else), else the body's actor, the X-Kiln-Actor
// header, or DefaultActor.
func gateActor(r *http.Request, fromBody string) (string, error) {
	if p := access.FromContext(r.Context()); p != nil && p != access.Anonymous {
		return p.User, nil
	}
	a := fromBody
	if a == "" {
		a = r.Header.Get(ActorHeader)
	}
	if a == "" {
		a = DefaultActor
	}
	return a, checkText("The actor", a, maxActorLen)
}

func (h *Handler) listGatePolicies(w http.ResponseWriter, r *http.Request) error {
	g, err := h.gates()
	if err != nil {
		return err
	}
	model := r.URL.Query().Get("model")
	if model != "" {
		if model, err = access.StoredName(r.Context(), access.ResourceModel, model); err != nil {
			return err
		}
	}
	ps, err := g.ListPolicies(r.Context(), model)
	if err != nil {
		return err
	}
	ps = access.FilterVisible(r.Context(), access.ResourceModel, ps, func(p *gate.StoredPolicy) string { return p.Policy.Spec.Model })
	if ps == nil {
		ps = []*gate.StoredPolicy{}
	}
	writeShownJSON(w, http.StatusOK, GatePolicyList{Policies: ps})
	return nil
}

func (h *Handler) getGatePolicy(w http.ResponseWriter, r *http.Request) error {
	g, err := h.gates()
	if err != nil {
		return err
	}
	name, err := policyName(r)
	if err != nil {
		return err
	}
	sp, err := g.GetPolicy(r.Context(), name)
	if err != nil {
		return err
	}
	if err := gateVisible(r.Context(), sp); err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, sp)
	return nil
}

// gateVisible answers a policy on another workspace's model as not found:
// a policy gates the model of the workspace it was put in (the names of
// policies are shared by all workspaces).
func gateVisible(ctx context.Context, sp *gate.StoredPolicy) error {
	if sp == nil || sp.Policy == nil || access.Visible(ctx, access.ResourceModel, sp.Policy.Spec.Model) {
		return nil
	}
	return errdefs.NotFound("Gate policy '%s' does not exist in workspace '%s' (it gates another workspace's model)", sp.Policy.Metadata.Name, access.RequestWorkspace(ctx))
}

// putGatePolicy stores the policy document of the body (JSON or YAML):
// idempotently, 201 when created.
func (h *Handler) putGatePolicy(w http.ResponseWriter, r *http.Request) error {
	g, err := h.gates()
	if err != nil {
		return err
	}
	name, err := policyName(r)
	if err != nil {
		return err
	}
	actor, err := gateActor(r, "")
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, gate.MaxSpecBytes))
	if err != nil {
		return err
	}
	p, err := gate.ParsePolicyNamed(data, name)
	if err != nil {
		return withFieldDetails(err)
	}
	// The policy gates the request's workspace's model.
	if p.Spec.Model, err = access.StoredName(r.Context(), access.ResourceModel, p.Spec.Model); err != nil {
		return err
	}
	cur, getErr := g.GetPolicy(r.Context(), name)
	created := errors.Is(getErr, errdefs.ErrNotFound)
	if getErr == nil && gateVisible(r.Context(), cur) != nil {
		return errdefs.AlreadyExists("Gate policy '%s' gates a model of another workspace than '%s' (policy names are shared by all workspaces)", name, access.RequestWorkspace(r.Context()))
	}
	sp, changed, err := g.PutPolicy(r.Context(), p, actor)
	if err != nil {
		return withFieldDetails(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeShownJSON(w, status, ApplyGatePolicyResponse{Created: created, Changed: changed, Policy: sp})
	return nil
}

func (h *Handler) deleteGatePolicy(w http.ResponseWriter, r *http.Request) error {
	g, err := h.gates()
	if err != nil {
		return err
	}
	name, err := policyName(r)
	if err != nil {
		return err
	}
	actor, err := gateActor(r, "")
	if err != nil {
		return err
	}
	if sp, err := g.GetPolicy(r.Context(), name); err == nil {
		if err := gateVisible(r.Context(), sp); err != nil {
			return err
		}
	}
	if err := g.DeletePolicy(r.Context(), name, actor); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// evaluateGate evaluates a version under the policy, synchronously (the
// gate service bounds the time and the rows), and answers the result:
// 200 whether the gate passed or failed.
func (h *Handler) evaluateGate(w http.ResponseWriter, r *http.Request) error {
	g, err := h.gates()
	if err != nil {
		return err
	}
	name, err := policyName(r)
	if err != nil {
		return err
	}
	var req EvaluateGateRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	if req.Version <= 0 {
		return errdefs.Invalid("The request needs the model version to evaluate: {\"version\": N} with N from 1")
	}
	actor, err := gateActor(r, req.Actor)
	if err != nil {
		return err
	}
	if sp, err := g.GetPolicy(r.Context(), name); err == nil {
		if err := gateVisible(r.Context(), sp); err != nil {
			return err
		}
	}
	res, err := g.Evaluate(r.Context(), name, req.Version, actor)
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, res)
	return nil
}

func (h *Handler) gateResults(w http.ResponseWriter, r *http.Request) error {
	g, err := h.gates()
	if err != nil {
		return err
	}
	model := r.PathValue("model")
	v, err := strconv.ParseInt(r.PathValue("model_version"), 10, 64)
	if err != nil || v <= 0 {
		return errdefs.Invalid("Invalid model version '%s': want a number from 1", clip(r.PathValue("model_version")))
	}
	model, err = access.StoredName(r.Context(), access.ResourceModel, model)
	if err != nil {
		return err
	}
	policy := r.URL.Query().Get("policy")
	if policy != "" {
		if err := gate.ValidateName(policy); err != nil {
			return errdefs.Invalid("Invalid gate policy name: %s", errdefs.Message(err))
		}
	}
	rs, err := g.Results(r.Context(), model, v, policy)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []*gate.Result{}
	}
	writeShownJSON(w, http.StatusOK, GateResultList{Results: rs})
	return nil
}
