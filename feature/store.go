package feature

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Status is what the store records about one version of a definition.
type Status struct {
	Version int64 `json:"version"`
	// Digest is the SHA-256 of the document's canonical JSON; a document
	// applied again with the same digest makes no new version.
	Digest string `json:"digest,omitempty"`
	// CreatedAt is when the version was written (Unix milliseconds, as
	// the rest of the API).
	CreatedAt int64  `json:"created_at"`
	CreatedBy string `json:"created_by,omitempty"`
	// Deleted marks a tombstone: the definition was deleted at this
	// version.
	Deleted bool `json:"deleted,omitempty"`
}

// EntityVersion is one stored version of an entity (nil Entity for a
// tombstone).
type EntityVersion struct {
	*Entity
	Status Status `json:"status"`
}

// ViewVersion is one stored version of a feature view (nil FeatureView
// for a tombstone).
type ViewVersion struct {
	*FeatureView
	Status Status `json:"status"`
}

// Canonical fills in what a document leaves to defaults, so that the same
// definition written two ways has one digest: defaults converted to the
// feature's type, online: true written as absent.
func (v *FeatureView) Canonical() {
	v.Normalize()
	for i := range v.Spec.Features {
		f := &v.Spec.Features[i]
		if f.Default != nil {
			if d, err := CoerceValue(f.Type, f.Default); err == nil {
				f.Default = d
			}
		}
	}
	if v.Spec.Online != nil && *v.Spec.Online {
		v.Spec.Online = nil
	}
}

// digestOf returns the canonical JSON of doc and its SHA-256. Go's
// encoding/json writes struct fields in declaration order and map keys
// sorted, so equal documents give equal bytes.
func digestOf(doc any) ([]byte, string, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, "", fmt.Errorf("feature: encode document: %w", err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// row is one row of feature_definitions.
type row struct {
	version   int64
	spec      []byte
	digest    string
	deleted   bool
	createdAt int64
	createdBy string
}

func (r *row) status() Status {
	return Status{Version: r.version, Digest: r.digest, CreatedAt: r.createdAt / 1000, CreatedBy: r.createdBy, Deleted: r.deleted}
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const rowCols = `version, spec, digest, deleted, created_at, created_by`

func scanRow(sc interface{ Scan(...any) error }) (*row, error) {
	var r row
	var spec string
	if err := sc.Scan(&r.version, &spec, &r.digest, &r.deleted, &r.createdAt, &r.createdBy); err != nil {
		return nil, err
	}
	r.spec = []byte(spec)
	return &r, nil
}

// latest returns the newest row of (kind, name), tombstone or not; nil
// when there is none.
func (s *Service) latest(ctx context.Context, q querier, kind, name string) (*row, error) {
	r, err := scanRow(q.QueryRowContext(ctx, s.DB.Rebind(`SELECT `+rowCols+` FROM feature_definitions
		WHERE kind = ? AND name = ? ORDER BY version DESC LIMIT 1`), kind, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("feature: read %s %s: %w", kind, name, err)
	}
	return r, nil
}

// version returns row version of (kind, name); nil when there is none.
func (s *Service) version(ctx context.Context, kind, name string, version int64) (*row, error) {
	r, err := scanRow(s.DB.R.QueryRowContext(ctx, s.DB.Rebind(`SELECT `+rowCols+` FROM feature_definitions
		WHERE kind = ? AND name = ? AND version = ?`), kind, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("feature: read %s %s: %w", kind, name, err)
	}
	return r, nil
}

// put writes a new version of (kind, name) unless the latest live
// version has digest; it returns the version and whether it is new.
// check, when set, runs inside the transaction first with the previous
// row (nil when none or a tombstone).
func (s *Service) put(ctx context.Context, kind, name string, spec []byte, digest string, deleted bool, actor string, check func(tx store.Tx, prev *row) error) (int64, bool, error) {
	var version int64
	var changed bool
	defer s.forgetViews()
	err := s.DB.Tx(ctx, func(tx store.Tx) error {
		prev, err := s.latest(ctx, tx, kind, name)
		if err != nil {
			return err
		}
		live := prev
		if prev != nil && prev.deleted {
			live = nil
		}
		if check != nil {
			if err := check(tx, live); err != nil {
				return err
			}
		}
		if deleted && live == nil {
			return errdefs.NotFound("%s '%s' not found", kindWord(kind), name)
		}
		if !deleted && live != nil && live.digest == digest {
			version = live.version
			return nil
		}
		version, changed = 1, true
		if prev != nil {
			version = prev.version + 1
		}
		_, err = tx.ExecContext(ctx, s.DB.Rebind(`INSERT INTO feature_definitions
			(kind, name, version, spec, digest, deleted, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			kind, name, version, string(spec), digest, deleted, micros(s.clock()), actor)
		if store.IsUniqueViolation(err) {
			return errdefs.InvalidState("%s '%s' was changed at the same time; apply it again", kindWord(kind), name)
		}
		if err != nil {
			return fmt.Errorf("feature: write %s %s: %w", kind, name, err)
		}
		return nil
	})
	return version, changed, err
}

func kindWord(kind string) string {
	if kind == KindFeatureView {
		return "Feature view"
	}
	return "Entity"
}

// ApplyEntity validates e and stores it as a new version when it differs
// from the latest one. Changing the join keys of an entity that a live
// feature view uses is refused (the view's stored rows are keyed by them).
func (s *Service) ApplyEntity(ctx context.Context, e *Entity, actor string) (version int64, changed bool, err error) {
	e.Normalize()
	if err := e.Validate(); err != nil {
		return 0, false, err
	}
	spec, digest, err := digestOf(e)
	if err != nil {
		return 0, false, err
	}
	return s.put(ctx, KindEntity, e.Metadata.Name, spec, digest, false, actor, func(tx store.Tx, prev *row) error {
		if prev == nil || prev.digest == digest {
			return nil
		}
		var old Entity
		if err := json.Unmarshal(prev.spec, &old); err != nil {
			return fmt.Errorf("feature: stored entity %s: %w", e.Metadata.Name, err)
		}
		if slices.Equal(old.Spec.JoinKeys, e.Spec.JoinKeys) {
			return nil
		}
		users, err := s.viewsUsing(ctx, tx, e.Metadata.Name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return errdefs.InvalidFields("entity", errdefs.FieldErrors{{Path: "spec.join_keys",
				Msg: fmt.Sprintf("cannot change the join keys of entity %q: feature view %q uses it (delete or change the view first)", e.Metadata.Name, users[0])}})
		}
		return nil
	})
}

// ApplyView validates v — its entities must exist, and its source, when
// it can be read, must have the timestamp, join-key and feature columns
// with compatible types — and stores it as a new version when it differs
// from the latest one. A new version of a view whose entities or
// features (names, types, order) changed clears its online rows: they
// were keyed and encoded for the old ones.
func (s *Service) ApplyView(ctx context.Context, v *FeatureView, actor string) (int64, bool, error) {
	v.Canonical()
	if err := v.Validate(); err != nil {
		return 0, false, err
	}
	keys, err := s.JoinKeys(ctx, v)
	if err != nil {
		return 0, false, err
	}
	var errs errdefs.FieldErrors
	for i, f := range v.Spec.Features {
		if slices.Contains(keys, f.Name) {
			errs = append(errs, errdefs.FieldError{Path: fmt.Sprintf("spec.features[%d].name", i), Msg: fmt.Sprintf("%q is a join key of the view's entities, not a feature", f.Name)})
		}
	}
	if len(errs) > 0 {
		return 0, false, errdefs.InvalidFields("feature view", errs)
	}
	if err := s.checkSource(ctx, v, keys); err != nil {
		return 0, false, err
	}
	spec, digest, err := digestOf(v)
	if err != nil {
		return 0, false, err
	}
	var prevSpec *FeatureViewSpec
	version, changed, err := s.put(ctx, KindFeatureView, v.Metadata.Name, spec, digest, false, actor, func(tx store.Tx, prev *row) error {
		if prev == nil {
			return nil
		}
		var old FeatureView
		if err := json.Unmarshal(prev.spec, &old); err == nil {
			prevSpec = &old.Spec
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	if changed && prevSpec != nil && s.OnlineStore != nil {
		if layout(prevSpec) != layout(&v.Spec) {
			if err := s.OnlineStore.DeleteView(ctx, v.Metadata.Name); err != nil {
				return version, changed, fmt.Errorf("feature: clear the online rows of %s: %w", v.Metadata.Name, err)
			}
		}
	}
	return version, changed, nil
}

// layout is what the online rows of a view depend on: its entities (the
// keys) and its features' names and types, in order (the encoding).
func layout(s *FeatureViewSpec) string {
	var b strings.Builder
	b.WriteString(strings.Join(s.Entities, ","))
	for _, f := range s.Features {
		b.WriteString("|" + f.Name + ":" + f.Type)
	}
	return b.String()
}

// viewsUsing returns the live views that list entity.
func (s *Service) viewsUsing(ctx context.Context, q querier, entity string) ([]string, error) {
	views, err := s.listLatest(ctx, q, KindFeatureView)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range views {
		var v FeatureView
		if err := json.Unmarshal(r.spec, &v); err != nil {
			return nil, fmt.Errorf("feature: stored view: %w", err)
		}
		if slices.Contains(v.Spec.Entities, entity) {
			out = append(out, v.Metadata.Name)
		}
	}
	return out, nil
}

// listLatest returns the latest live row of every name of kind, by name.
func (s *Service) listLatest(ctx context.Context, q querier, kind string) ([]*row, error) {
	rows, err := q.QueryContext(ctx, s.DB.Rebind(`SELECT d.version, d.spec, d.digest, d.deleted, d.created_at, d.created_by
		FROM feature_definitions d
		WHERE d.kind = ? AND d.version = (SELECT MAX(version) FROM feature_definitions m WHERE m.kind = d.kind AND m.name = d.name)
		ORDER BY d.name`), kind)
	if err != nil {
		return nil, fmt.Errorf("feature: list %s: %w", kind, err)
	}
	defer rows.Close()
	var out []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("feature: list %s: %w", kind, err)
		}
		if !r.deleted {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// Entity returns the latest version of an entity.
func (s *Service) Entity(ctx context.Context, name string) (*Entity, int64, error) {
	ev, err := s.EntityVersion(ctx, name, 0)
	if err != nil {
		return nil, 0, err
	}
	return ev.Entity, ev.Status.Version, nil
}

// EntityVersion returns version of an entity (0: the latest).
func (s *Service) EntityVersion(ctx context.Context, name string, version int64) (*EntityVersion, error) {
	r, err := s.get(ctx, KindEntity, name, version)
	if err != nil {
		return nil, err
	}
	var e Entity
	if err := json.Unmarshal(r.spec, &e); err != nil {
		return nil, fmt.Errorf("feature: stored entity %s: %w", name, err)
	}
	return &EntityVersion{Entity: &e, Status: r.status()}, nil
}

// View returns version of a feature view (0: the latest) and its version.
func (s *Service) View(ctx context.Context, name string, version int64) (*FeatureView, int64, error) {
	vv, err := s.ViewVersion(ctx, name, version)
	if err != nil {
		return nil, 0, err
	}
	return vv.FeatureView, vv.Status.Version, nil
}

// ViewVersion returns version of a feature view (0: the latest) with its
// status.
func (s *Service) ViewVersion(ctx context.Context, name string, version int64) (*ViewVersion, error) {
	r, err := s.get(ctx, KindFeatureView, name, version)
	if err != nil {
		return nil, err
	}
	var v FeatureView
	if err := json.Unmarshal(r.spec, &v); err != nil {
		return nil, fmt.Errorf("feature: stored view %s: %w", name, err)
	}
	return &ViewVersion{FeatureView: &v, Status: r.status()}, nil
}

// get returns a live row: the latest (version 0) unless it is a
// tombstone, or the given version unless that is a tombstone.
func (s *Service) get(ctx context.Context, kind, name string, version int64) (*row, error) {
	var r *row
	var err error
	if version == 0 {
		r, err = s.latest(ctx, s.DB.R, kind, name)
	} else {
		r, err = s.version(ctx, kind, name, version)
	}
	if err != nil {
		return nil, err
	}
	if r == nil || r.deleted {
		if version != 0 {
			return nil, errdefs.NotFound("%s '%s' has no version %d", kindWord(kind), name, version)
		}
		return nil, errdefs.NotFound("%s '%s' not found", kindWord(kind), name)
	}
	return r, nil
}

// Entities returns the latest version of every live entity, by name.
func (s *Service) Entities(ctx context.Context) ([]*EntityVersion, error) {
	rows, err := s.listLatest(ctx, s.DB.R, KindEntity)
	if err != nil {
		return nil, err
	}
	out := make([]*EntityVersion, 0, len(rows))
	for _, r := range rows {
		var e Entity
		if err := json.Unmarshal(r.spec, &e); err != nil {
			return nil, fmt.Errorf("feature: stored entity: %w", err)
		}
		out = append(out, &EntityVersion{Entity: &e, Status: r.status()})
	}
	return out, nil
}

// Views returns the latest version of every live feature view, by name.
func (s *Service) Views(ctx context.Context) ([]*ViewVersion, error) {
	rows, err := s.listLatest(ctx, s.DB.R, KindFeatureView)
	if err != nil {
		return nil, err
	}
	out := make([]*ViewVersion, 0, len(rows))
	for _, r := range rows {
		var v FeatureView
		if err := json.Unmarshal(r.spec, &v); err != nil {
			return nil, fmt.Errorf("feature: stored view: %w", err)
		}
		out = append(out, &ViewVersion{FeatureView: &v, Status: r.status()})
	}
	return out, nil
}

// ViewVersions returns every version of a view, newest first, tombstones
// included (with a nil FeatureView).
func (s *Service) ViewVersions(ctx context.Context, name string) ([]*ViewVersion, error) {
	rows, err := s.DB.R.QueryContext(ctx, s.DB.Rebind(`SELECT `+rowCols+` FROM feature_definitions
		WHERE kind = ? AND name = ? ORDER BY version DESC`), KindFeatureView, name)
	if err != nil {
		return nil, fmt.Errorf("feature: versions of %s: %w", name, err)
	}
	defer rows.Close()
	var out []*ViewVersion
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("feature: versions of %s: %w", name, err)
		}
		vv := &ViewVersion{Status: r.status()}
		if !r.deleted {
			vv.FeatureView = new(FeatureView)
			if err := json.Unmarshal(r.spec, vv.FeatureView); err != nil {
				return nil, fmt.Errorf("feature: stored view %s: %w", name, err)
			}
		}
		out = append(out, vv)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errdefs.NotFound("Feature view '%s' not found", name)
	}
	return out, nil
}

// DeleteEntity writes a tombstone version of an entity. An entity that a
// live feature view uses is not deleted.
func (s *Service) DeleteEntity(ctx context.Context, name, actor string) error {
	_, _, err := s.put(ctx, KindEntity, name, []byte("{}"), "", true, actor, func(tx store.Tx, prev *row) error {
		if prev == nil {
			return nil
		}
		users, err := s.viewsUsing(ctx, tx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return errdefs.InvalidState("Entity '%s' is used by feature view '%s'; delete the view first", name, users[0])
		}
		return nil
	})
	return err
}

// DeleteView writes a tombstone version of a feature view and removes its
// rows from the online store. Its earlier versions stay readable by
// number (training sets name them).
func (s *Service) DeleteView(ctx context.Context, name, actor string) error {
	if _, _, err := s.put(ctx, KindFeatureView, name, []byte("{}"), "", true, actor, nil); err != nil {
		return err
	}
	if s.OnlineStore != nil {
		if err := s.OnlineStore.DeleteView(ctx, name); err != nil {
			return fmt.Errorf("feature: clear the online rows of %s: %w", name, err)
		}
	}
	return nil
}

// JoinKeys returns the join keys of v's entities, in order.
func (s *Service) JoinKeys(ctx context.Context, v *FeatureView) ([]string, error) {
	var keys []string
	var errs errdefs.FieldErrors
	for i, name := range v.Spec.Entities {
		e, _, err := s.Entity(ctx, name)
		if errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, errdefs.FieldError{Path: fmt.Sprintf("spec.entities[%d]", i), Msg: fmt.Sprintf("entity %q does not exist (apply it first)", name)})
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, k := range e.Spec.JoinKeys {
			if slices.Contains(keys, k) {
				errs = append(errs, errdefs.FieldError{Path: fmt.Sprintf("spec.entities[%d]", i), Msg: fmt.Sprintf("join key %q of entity %q is another entity's too", k, name)})
				continue
			}
			keys = append(keys, k)
		}
	}
	if len(errs) > 0 {
		return nil, errdefs.InvalidFields("feature view", errs)
	}
	return keys, nil
}
