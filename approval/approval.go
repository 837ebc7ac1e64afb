// Package approval holds promotions back until people agree: an approval
// policy names a registered model's protected aliases and the endpoints
// that may route to it, and how many approvals a move needs. Moving a
// protected alias to a version, or routing a protected endpoint to it,
// needs an approved request for exactly that version and target; a request
// is approved when enough distinct people other than its requester
// approve it, and closed by any rejection. The Service is a
// registry.AliasGuard and a deploy.RouteGuard.
package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Policy says what needs approval.
type Policy struct {
	Name string `json:"name"`
	// Model is the registered model the policy protects.
	Model string `json:"model"`
	// Aliases are the protected aliases (e.g. champion).
	Aliases []string `json:"aliases,omitempty"`
	// Endpoints are the protected endpoints: routing one of them to a
	// version of Model needs approval.
	Endpoints []string `json:"endpoints,omitempty"`
	// Required is how many approvals a request needs (1 to 10).
	Required int `json:"required"`

	Generation     int64  `json:"generation,omitempty"`
	UpdatedBy      string `json:"updated_by,omitempty"`
	CreationTime   int64  `json:"creation_time,omitempty"`
	LastUpdateTime int64  `json:"last_update_time,omitempty"`
}

// Target types of a request.
const (
	TargetAlias    = "alias"
	TargetEndpoint = "endpoint"
)

// States of a request.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateRejected = "rejected"
)

// Decisions of a vote.
const (
	Approve = "approve"
	Reject  = "reject"
)

// Request asks for one model version to take one alias, or to serve on
// one endpoint.
type Request struct {
	ID           string `json:"request_id"`
	Policy       string `json:"policy"`
	Model        string `json:"model"`
	Version      int64  `json:"version"`
	TargetType   string `json:"target_type"`
	Target       string `json:"target"`
	RequestedBy  string `json:"requested_by"`
	Reason       string `json:"reason,omitempty"`
	State        string `json:"state"`
	Required     int    `json:"required"`
	Approvals    int    `json:"approvals"`
	CreationTime int64  `json:"creation_time"`
	DecidedTime  int64  `json:"decided_time,omitempty"`
	Votes        []Vote `json:"votes"`
}

// Vote is one person's decision on a request.
type Vote struct {
	Voter    string `json:"voter"`
	Decision string `json:"decision"`
	Comment  string `json:"comment,omitempty"`
	Time     int64  `json:"time"`
}

// ErrNotApproved is wrapped by a guard's refusal.
var ErrNotApproved = errors.New("approval: not approved")

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$`)

// MaxRequired bounds Policy.Required.
const MaxRequired = 10

// Validate checks a policy.
func (p *Policy) Validate() error {
	var es errdefs.FieldErrors
	if !nameRE.MatchString(p.Name) {
		es = append(es, errdefs.FieldError{Path: "name", Msg: fmt.Sprintf("%q is not a policy name: lower-case letters, digits, '.', '_' and '-'", clip(p.Name))})
	}
	if p.Model == "" || len(p.Model) > 256 {
		es = append(es, errdefs.FieldError{Path: "model", Msg: "is required (a registered model's name)"})
	}
	if len(p.Aliases) == 0 && len(p.Endpoints) == 0 {
		es = append(es, errdefs.FieldError{Path: "aliases", Msg: "name at least one alias or endpoint to protect"})
	}
	for i, a := range p.Aliases {
		if a == "" || len(a) > 256 || slices.Contains(p.Aliases[:i], a) {
			es = append(es, errdefs.FieldError{Path: fmt.Sprintf("aliases[%d]", i), Msg: "empty, too long or repeated"})
		}
	}
	for i, e := range p.Endpoints {
		if e == "" || len(e) > 63 || slices.Contains(p.Endpoints[:i], e) {
			es = append(es, errdefs.FieldError{Path: fmt.Sprintf("endpoints[%d]", i), Msg: "empty, too long or repeated"})
		}
	}
	if p.Required < 1 || p.Required > MaxRequired {
		es = append(es, errdefs.FieldError{Path: "required", Msg: fmt.Sprintf("must be between 1 and %d", MaxRequired)})
	}
	if len(es) > 0 {
		return errdefs.InvalidFields("approval policy", es)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Service stores policies and requests and guards promotions.
type Service struct {
	db  *store.DB
	now func() time.Time
}

// NewService returns a Service on db.
func NewService(db *store.DB) *Service { return &Service{db: db, now: time.Now} }

// PutPolicy creates or replaces a policy.
func (s *Service) PutPolicy(ctx context.Context, p Policy, actor string) (*Policy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	spec, _ := json.Marshal(Policy{Name: p.Name, Model: p.Model, Aliases: p.Aliases, Endpoints: p.Endpoints, Required: p.Required})
	now := s.now().UnixMilli()
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE approval_policies SET model_name = ?, spec = ?, generation = generation + 1, updated_by = ?, last_update_time = ? WHERE name = ?`),
			p.Model, string(spec), actor, now, p.Name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO approval_policies (name, model_name, spec, generation, updated_by, creation_time, last_update_time) VALUES (?, ?, ?, 1, ?, ?, ?)`),
			p.Name, p.Model, string(spec), actor, now, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("approval: put policy: %w", err)
	}
	return s.GetPolicy(ctx, p.Name)
}

const policyCols = `name, spec, generation, updated_by, creation_time, last_update_time`

func scanPolicy(sc interface{ Scan(...any) error }) (*Policy, error) {
	var p Policy
	var name, spec string
	var gen, ct, ut int64
	var by string
	if err := sc.Scan(&name, &spec, &gen, &by, &ct, &ut); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return nil, fmt.Errorf("approval: stored policy %s: %w", name, err)
	}
	p.Name, p.Generation, p.UpdatedBy, p.CreationTime, p.LastUpdateTime = name, gen, by, ct, ut
	return &p, nil
}

// GetPolicy returns a policy.
func (s *Service) GetPolicy(ctx context.Context, name string) (*Policy, error) {
	p, err := scanPolicy(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+policyCols+` FROM approval_policies WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Approval policy '%s' does not exist", clip(name))
	}
	if err != nil {
		return nil, fmt.Errorf("approval: get policy: %w", err)
	}
	return p, nil
}

// ListPolicies returns the policies (of model, when set), by name.
func (s *Service) ListPolicies(ctx context.Context, model string) ([]*Policy, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+policyCols+` FROM approval_policies WHERE (? = '' OR model_name = ?) ORDER BY name`), model, model)
	if err != nil {
		return nil, fmt.Errorf("approval: list policies: %w", err)
	}
	defer rows.Close()
	out := []*Policy{}
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePolicy removes a policy (its requests stay, as history).
func (s *Service) DeletePolicy(ctx context.Context, name string) error {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM approval_policies WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("approval: delete policy: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("Approval policy '%s' does not exist", clip(name))
	}
	return nil
}

// covering returns the policies that protect a target of model.
func (s *Service) covering(ctx context.Context, model, targetType, target string) ([]*Policy, error) {
	var ps []*Policy
	var err error
	if targetType == TargetAlias {
		ps, err = s.ListPolicies(ctx, model)
	} else {
		ps, err = s.ListPolicies(ctx, "")
	}
	if err != nil {
		return nil, err
	}
	var out []*Policy
	for _, p := range ps {
		if targetType == TargetAlias && slices.Contains(p.Aliases, target) ||
			targetType == TargetEndpoint && p.Model == model && slices.Contains(p.Endpoints, target) {
			out = append(out, p)
		}
	}
	return out, nil
}

// NewRequest is what CreateRequest needs.
type NewRequest struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// Alias or Endpoint: what the version is to take.
	Alias    string `json:"alias,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// CreateRequest asks for approval of one move. A pending request for the
// same move is returned instead of a second one.
func (s *Service) CreateRequest(ctx context.Context, nr NewRequest, actor string) (*Request, error) {
	typ, target := TargetAlias, nr.Alias
	switch {
	case nr.Alias != "" && nr.Endpoint != "", nr.Alias == "" && nr.Endpoint == "":
		return nil, errdefs.Invalid("Name exactly one of alias or endpoint")
	case nr.Endpoint != "":
		typ, target = TargetEndpoint, nr.Endpoint
	}
	if nr.Model == "" || nr.Version < 1 {
		return nil, errdefs.Invalid("model and version (1, 2, …) are required")
	}
	if len(nr.Reason) > 4096 {
		return nil, errdefs.Invalid("A reason has at most 4096 bytes")
	}
	ps, err := s.covering(ctx, nr.Model, typ, target)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errdefs.InvalidState("No approval policy protects %s '%s' of model '%s': nothing to approve", typ, clip(target), clip(nr.Model))
	}
	p := ps[0]
	for _, q := range ps[1:] { // the strictest policy decides
		if q.Required > p.Required {
			p = q
		}
	}
	if open, err := s.find(ctx, nr.Model, nr.Version, typ, target, StatePending); err != nil {
		return nil, err
	} else if open != nil {
		return open, nil
	}
	r := &Request{ID: strings.ToLower(store.NewID()), Policy: p.Name, Model: nr.Model, Version: nr.Version, TargetType: typ, Target: target,
		RequestedBy: actor, Reason: nr.Reason, State: StatePending, Required: p.Required, CreationTime: s.now().UnixMilli(), Votes: []Vote{}}
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO approval_requests (request_id, policy_name, model_name, model_version, target_type, target, requested_by, reason, state, required, creation_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, r.Policy, r.Model, r.Version, r.TargetType, r.Target, r.RequestedBy, r.Reason, r.State, r.Required, r.CreationTime)
	if err != nil {
		return nil, fmt.Errorf("approval: create request: %w", err)
	}
	return r, nil
}

const requestCols = `request_id, policy_name, model_name, model_version, target_type, target, requested_by, reason, state, required, creation_time, decided_time`

func scanRequest(sc interface{ Scan(...any) error }) (*Request, error) {
	var r Request
	if err := sc.Scan(&r.ID, &r.Policy, &r.Model, &r.Version, &r.TargetType, &r.Target, &r.RequestedBy, &r.Reason, &r.State, &r.Required, &r.CreationTime, &r.DecidedTime); err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Service) votes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, r *Request) error {
	rows, err := q.QueryContext(ctx, s.db.Rebind(`SELECT voter, decision, comment, time FROM approval_votes WHERE request_id = ? ORDER BY time, voter`), r.ID)
	if err != nil {
		return fmt.Errorf("approval: votes: %w", err)
	}
	defer rows.Close()
	r.Votes, r.Approvals = []Vote{}, 0
	for rows.Next() {
		var v Vote
		if err := rows.Scan(&v.Voter, &v.Decision, &v.Comment, &v.Time); err != nil {
			return fmt.Errorf("approval: votes: %w", err)
		}
		if v.Decision == Approve {
			r.Approvals++
		}
		r.Votes = append(r.Votes, v)
	}
	return rows.Err()
}

// GetRequest returns a request with its votes.
func (s *Service) GetRequest(ctx context.Context, id string) (*Request, error) {
	r, err := scanRequest(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+requestCols+` FROM approval_requests WHERE request_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Approval request '%s' does not exist", clip(id))
	}
	if err != nil {
		return nil, fmt.Errorf("approval: get request: %w", err)
	}
	return r, s.votes(ctx, s.db.R, r)
}

// find returns the newest request for a move in a state (nil if none).
func (s *Service) find(ctx context.Context, model string, version int64, typ, target, state string) (*Request, error) {
	r, err := scanRequest(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+requestCols+` FROM approval_requests
		WHERE model_name = ? AND model_version = ? AND target_type = ? AND target = ? AND state = ? ORDER BY creation_time DESC, request_id DESC LIMIT 1`),
		model, version, typ, target, state))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approval: find request: %w", err)
	}
	return r, s.votes(ctx, s.db.R, r)
}

// RequestQuery selects requests.
type RequestQuery struct {
	Model string
	State string
	Limit int
}

// ListRequests returns requests, newest first.
func (s *Service) ListRequests(ctx context.Context, q RequestQuery) ([]*Request, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+requestCols+` FROM approval_requests
		WHERE (? = '' OR model_name = ?) AND (? = '' OR state = ?) ORDER BY creation_time DESC, request_id DESC LIMIT ?`),
		q.Model, q.Model, q.State, q.State, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("approval: list requests: %w", err)
	}
	var out []*Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := s.votes(ctx, s.db.R, r); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []*Request{}
	}
	return out, nil
}

// Decide records voter's decision on a pending request: enough approvals
// approve it, a rejection rejects it. The requester cannot decide their
// own request, and nobody votes twice.
func (s *Service) Decide(ctx context.Context, id, voter, decision, comment string) (*Request, error) {
	if decision != Approve && decision != Reject {
		return nil, errdefs.Invalid("A decision is approve or reject, not %q", clip(decision))
	}
	if len(comment) > 4096 {
		return nil, errdefs.Invalid("A comment has at most 4096 bytes")
	}
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		r, err := scanRequest(tx.QueryRowContext(ctx, s.db.Rebind(`SELECT `+requestCols+` FROM approval_requests WHERE request_id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound("Approval request '%s' does not exist", clip(id))
		}
		if err != nil {
			return err
		}
		if r.State != StatePending {
			return errdefs.InvalidState("Approval request %s is %s already", r.ID, r.State)
		}
		if voter == r.RequestedBy {
			return &errdefs.Error{Kind: errdefs.ErrPermission, Msg: fmt.Sprintf("'%s' asked for this approval and cannot decide it", voter)}
		}
		now := s.now().UnixMilli()
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO approval_votes (request_id, voter, decision, comment, time) VALUES (?, ?, ?, ?, ?)`), id, voter, decision, comment, now)
		if store.IsUniqueViolation(err) {
			return errdefs.InvalidState("'%s' has decided on request %s already", voter, r.ID)
		}
		if err != nil {
			return err
		}
		if err := s.votes(ctx, tx, r); err != nil {
			return err
		}
		state := StatePending
		switch {
		case decision == Reject:
			state = StateRejected
		case r.Approvals >= r.Required:
			state = StateApproved
		}
		if state != StatePending {
			_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE approval_requests SET state = ?, decided_time = ? WHERE request_id = ?`), state, now, id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetRequest(ctx, id)
}

// allow is the guards' check: every policy covering the move needs an
// approved request for exactly this version and target.
func (s *Service) allow(ctx context.Context, model string, version int64, typ, target string) error {
	ps, err := s.covering(ctx, model, typ, target)
	if err != nil || len(ps) == 0 {
		return err
	}
	r, err := s.find(ctx, model, version, typ, target, StateApproved)
	if err != nil {
		return err
	}
	need := 0
	for _, p := range ps {
		need = max(need, p.Required)
	}
	if r != nil && r.Approvals >= need {
		return nil
	}
	how := "--alias " + target
	if typ == TargetEndpoint {
		how = "--endpoint " + target
	}
	have := "no approved request"
	if pending, _ := s.find(ctx, model, version, typ, target, StatePending); pending != nil {
		have = fmt.Sprintf("request %s has %d of %d approvals", pending.ID, pending.Approvals, pending.Required)
	}
	// An invalid state at the wire edges (MLflow's INVALID_STATE, 400),
	// still ErrNotApproved to errors.Is.
	return &errdefs.Error{Kind: errdefs.ErrInvalidState, Err: ErrNotApproved,
		Msg: fmt.Sprintf("%s '%s' of model '%s' is protected by approval policy '%s': version %d needs %d approval(s) (%s; ask with: kiln approvals request %s/%d %s)",
			typ, target, model, ps[0].Name, version, need, have, model, version, how)}
}

// AllowAlias is the registry's alias guard.
func (s *Service) AllowAlias(ctx context.Context, model, alias string, version int64) error {
	return s.allow(ctx, model, version, TargetAlias, alias)
}

// AllowRoute is the deploy manager's route guard.
func (s *Service) AllowRoute(ctx context.Context, endpoint, model string, version int64) error {
	return s.allow(ctx, model, version, TargetEndpoint, endpoint)
}
