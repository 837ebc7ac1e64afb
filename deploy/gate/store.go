package gate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Store keeps policies and results in the metadata database (the tables
// of migration 6).
type Store struct {
	db *store.DB
}

// NewStore returns a Store on db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// StoredPolicy is a policy as stored: the document, its digest, and how
// many times it changed.
type StoredPolicy struct {
	Policy *Policy `json:"policy"`
	// Digest is Policy.Digest(): results carry the digest they were
	// evaluated under.
	Digest string `json:"digest"`
	// Generation counts the changes of the spec, from 1.
	Generation     int64  `json:"generation"`
	UpdatedBy      string `json:"updated_by,omitempty"`
	CreationTime   int64  `json:"creation_time"`
	LastUpdateTime int64  `json:"last_update_time"`
}

func now() int64 { return time.Now().UnixMilli() }

func policyNotFound(name string) error {
	return errdefs.NotFound("Gate policy '%s' does not exist", clip(name))
}

// PutPolicy creates or replaces the policy named p.Metadata.Name, which
// must be valid. It reports whether the stored spec changed (false when
// the same document was put again, so that applying it is idempotent).
func (s *Store) PutPolicy(ctx context.Context, p *Policy, actor string) (*StoredPolicy, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return nil, false, fmt.Errorf("encode policy: %w", err)
	}
	digest := p.Digest()
	t := now()
	changed := false
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		var oldDoc, oldDigest string
		var gen int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT spec, digest, generation FROM gate_policies WHERE name = ?`), p.Metadata.Name).Scan(&oldDoc, &oldDigest, &gen)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			changed = true
			_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gate_policies (name, model_name, spec, digest, generation, updated_by, creation_time, last_update_time)
				VALUES (?, ?, ?, ?, 1, ?, ?, ?)`), p.Metadata.Name, p.Spec.Model, string(doc), digest, actor, t, t)
			if store.IsUniqueViolation(err) {
				return errdefs.InvalidState("Gate policy '%s' was created concurrently; retry", p.Metadata.Name)
			}
			return err
		case err != nil:
			return err
		case oldDoc == string(doc):
			return nil
		}
		changed = true
		if oldDigest != digest {
			gen++
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE gate_policies SET model_name = ?, spec = ?, digest = ?, generation = ?, updated_by = ?, last_update_time = ? WHERE name = ?`),
			p.Spec.Model, string(doc), digest, gen, actor, t, p.Metadata.Name)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("put gate policy: %w", err)
	}
	sp, err := s.GetPolicy(ctx, p.Metadata.Name)
	return sp, changed, err
}

const policyCols = `spec, digest, generation, updated_by, creation_time, last_update_time`

func scanPolicy(row interface{ Scan(...any) error }) (*StoredPolicy, error) {
	var sp StoredPolicy
	var doc string
	if err := row.Scan(&doc, &sp.Digest, &sp.Generation, &sp.UpdatedBy, &sp.CreationTime, &sp.LastUpdateTime); err != nil {
		return nil, err
	}
	var p Policy
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, fmt.Errorf("stored gate policy: %w", err)
	}
	sp.Policy = &p
	return &sp, nil
}

// GetPolicy returns the policy named name.
func (s *Store) GetPolicy(ctx context.Context, name string) (*StoredPolicy, error) {
	sp, err := scanPolicy(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+policyCols+` FROM gate_policies WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, policyNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("get gate policy: %w", err)
	}
	return sp, nil
}

// ListPolicies returns the policies, by name; with model set, only those
// of that registered model.
func (s *Store) ListPolicies(ctx context.Context, model string) ([]*StoredPolicy, error) {
	q, args := `SELECT `+policyCols+` FROM gate_policies ORDER BY name`, []any{}
	if model != "" {
		q, args = `SELECT `+policyCols+` FROM gate_policies WHERE model_name = ? ORDER BY name`, []any{model}
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list gate policies: %w", err)
	}
	defer rows.Close()
	out := []*StoredPolicy{}
	for rows.Next() {
		sp, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}

// DeletePolicy removes a policy. Its results stay (they record what was
// evaluated), but no longer protect anything.
func (s *Store) DeletePolicy(ctx context.Context, name string) error {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM gate_policies WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("delete gate policy: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return policyNotFound(name)
	}
	return nil
}

// AddResult stores a result under a new id (set on r) and returns it. The
// candidate must be a registered model version.
func (s *Store) AddResult(ctx context.Context, r *Result) error {
	if r.Candidate.Name == "" || r.Candidate.Version <= 0 {
		return errdefs.Invalid("A stored gate result needs a registered model version as its candidate")
	}
	r.ID = newID()
	if r.Time == 0 {
		r.Time = now()
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode gate result: %w", err)
	}
	var baseline sql.NullInt64
	if r.Baseline != nil && r.Baseline.Version > 0 {
		baseline = sql.NullInt64{Int64: r.Baseline.Version, Valid: true}
	}
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO gate_results (result_id, policy_name, policy_digest, model_name, model_version, passed,
		baseline_version, data_ref, data_digest, actor, creation_time, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Policy, r.PolicyDigest, r.Candidate.Name, r.Candidate.Version, r.Passed, baseline, r.Data.Ref, r.Data.Digest, r.Actor, r.Time, string(doc))
	if err != nil {
		if isForeignKeyViolation(err) {
			return errdefs.NotFound("Model Version (name=%s, version=%d) not found", r.Candidate.Name, r.Candidate.Version)
		}
		return fmt.Errorf("store gate result: %w", err)
	}
	return nil
}

func isForeignKeyViolation(err error) bool {
	s := err.Error()
	return strings.Contains(s, "FOREIGN KEY constraint failed") || strings.Contains(s, "SQLSTATE 23503")
}

func scanResult(row interface{ Scan(...any) error }) (*Result, error) {
	var doc string
	if err := row.Scan(&doc); err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return nil, fmt.Errorf("stored gate result: %w", err)
	}
	return &r, nil
}

// GetResult returns the result with the given id.
func (s *Store) GetResult(ctx context.Context, id string) (*Result, error) {
	r, err := scanResult(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT report FROM gate_results WHERE result_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Gate result '%s' does not exist", clip(id))
	}
	if err != nil {
		return nil, fmt.Errorf("get gate result: %w", err)
	}
	return r, nil
}

// MaxResults bounds the results one listing returns.
const MaxResults = 1000

// ListResults returns the results of a model version, newest first; with
// policy set, only that policy's. At most limit (MaxResults when 0).
func (s *Store) ListResults(ctx context.Context, model string, version int64, policy string, limit int) ([]*Result, error) {
	if limit <= 0 || limit > MaxResults {
		limit = MaxResults
	}
	q := `SELECT report FROM gate_results WHERE model_name = ? AND model_version = ?`
	args := []any{model, version}
	if policy != "" {
		q += ` AND policy_name = ?`
		args = append(args, policy)
	}
	q += ` ORDER BY result_id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list gate results: %w", err)
	}
	defer rows.Close()
	out := []*Result{}
	for rows.Next() {
		r, err := scanResult(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LatestResult returns the newest result of a policy for a model version
// evaluated under the policy spec with the given digest, or nil when
// there is none.
func (s *Store) LatestResult(ctx context.Context, policy, digest, model string, version int64) (*Result, error) {
	r, err := scanResult(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT report FROM gate_results
		WHERE policy_name = ? AND model_name = ? AND model_version = ? AND policy_digest = ? ORDER BY result_id DESC LIMIT 1`),
		policy, model, version, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest gate result: %w", err)
	}
	return r, nil
}

// newID returns a new result id (a ULID).
func newID() string { return store.NewID() }
