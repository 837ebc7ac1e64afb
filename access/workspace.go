package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Owners records which workspace owns each experiment (by id), registered
// model and endpoint (by stored name): workspaces are namespaces. A
// resource without a row belongs to DefaultWorkspace, so a server that
// uses only that workspace has no rows, and its requests pay nothing:
// Active stays false and no lookup is made. A registered model's stored
// name is qualified with its workspace outside the default one (see
// StoredName; experiments' names likewise, ExperimentName), so two
// workspaces may both have a model "churn"; endpoint names are still
// shared by all workspaces.
//
// Lookups are cached for a short TTL (as checked credentials are); this
// server's own writes update the cache at once, another server's are seen
// within the TTL.
type Owners struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time

	// active is true once any row exists (it never goes back: a row once
	// written makes ownership matter); while false it is read again from
	// the database at most once per TTL.
	active atomic.Bool
	// recheck is when to read active again (Unix nanoseconds), so that
	// a request of a server without rows takes no lock.
	recheck atomic.Int64
	mu      sync.Mutex
	cache   map[ownerKey]ownerEntry
}

type ownerKey struct {
	rt   ResourceType
	name string
}

type ownerEntry struct {
	ws       string // "" when there is no row (DefaultWorkspace)
	expires  time.Time
	explicit bool
}

// maxOwnersCached bounds the owner cache.
const maxOwnersCached = 50000

// NewOwners returns the ownership records of db, cached for ttl
// (DefaultCacheTTL when 0).
func NewOwners(db *store.DB, ttl time.Duration) *Owners {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return &Owners{db: db, ttl: ttl, now: time.Now, cache: map[ownerKey]ownerEntry{}}
}

// Active reports whether any resource belongs to a workspace other than
// DefaultWorkspace (isolation matters only then for requests in it).
func (o *Owners) Active(ctx context.Context) bool {
	if o.active.Load() {
		return true
	}
	now := o.now().UnixNano()
	if now < o.recheck.Load() {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.active.Load() || now < o.recheck.Load() {
		return o.active.Load()
	}
	var one int
	err := o.db.R.QueryRowContext(ctx, `SELECT 1 FROM workspace_resources LIMIT 1`).Scan(&one)
	switch {
	case err == nil:
		o.active.Store(true)
	case errors.Is(err, sql.ErrNoRows):
		o.recheck.Store(now + int64(o.ttl))
	default:
		// Unknown: read again next time; meanwhile nothing is isolated.
	}
	return o.active.Load()
}

// Owner returns the workspace that owns a resource, and whether a row says
// so (false: it belongs to DefaultWorkspace because no row names it).
func (o *Owners) Owner(ctx context.Context, rt ResourceType, name string) (string, bool, error) {
	// A qualified name says its workspace even without a row (one that
	// was not recorded); explicit still says whether a row exists.
	intrinsic, _, isQualified := SplitStoredName(name)
	isQualified = isQualified && qualified(rt)
	owner := func(e ownerEntry) string {
		if !e.explicit && isQualified {
			return intrinsic
		}
		return e.owner()
	}
	if !o.Active(ctx) && !isQualified {
		return DefaultWorkspace, false, nil
	}
	k := ownerKey{rt, name}
	o.mu.Lock()
	e, ok := o.cache[k]
	o.mu.Unlock()
	if ok && o.now().Before(e.expires) {
		return owner(e), e.explicit, nil
	}
	var ws string
	err := o.db.R.QueryRowContext(ctx, o.db.Rebind(`SELECT workspace FROM workspace_resources WHERE resource_type = ? AND name = ?`), string(rt), name).Scan(&ws)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("access: owner of %s %s: %w", rt, clip(name), err)
	}
	e = ownerEntry{ws: ws, explicit: err == nil, expires: o.now().Add(o.ttl)}
	o.remember(k, e)
	return owner(e), e.explicit, nil
}

func (e ownerEntry) owner() string {
	if !e.explicit {
		return DefaultWorkspace
	}
	return e.ws
}

func (o *Owners) remember(k ownerKey, e ownerEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.cache) >= maxOwnersCached {
		clear(o.cache)
	}
	o.cache[k] = e
}

// prefetch loads the owners of names not in the cache with one query.
func (o *Owners) prefetch(ctx context.Context, rt ResourceType, names []string) error {
	now := o.now()
	var missing []string
	o.mu.Lock()
	for _, n := range names {
		if e, ok := o.cache[ownerKey{rt, n}]; !ok || !now.Before(e.expires) {
			missing = append(missing, n)
		}
	}
	o.mu.Unlock()
	for len(missing) > 0 {
		batch := missing[:min(len(missing), 500)]
		missing = missing[len(batch):]
		args := []any{string(rt)}
		for _, n := range batch {
			args = append(args, n)
		}
		q := `SELECT name, workspace FROM workspace_resources WHERE resource_type = ? AND name IN (?` + strings.Repeat(", ?", len(batch)-1) + `)`
		rows, err := o.db.R.QueryContext(ctx, o.db.Rebind(q), args...)
		if err != nil {
			return fmt.Errorf("access: owners of %s: %w", rt, err)
		}
		found := map[string]string{}
		for rows.Next() {
			var n, ws string
			if err := rows.Scan(&n, &ws); err != nil {
				rows.Close()
				return fmt.Errorf("access: owners of %s: %w", rt, err)
			}
			found[n] = ws
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("access: owners of %s: %w", rt, err)
		}
		exp := o.now().Add(o.ttl)
		for _, n := range batch {
			ws, ok := found[n]
			o.remember(ownerKey{rt, n}, ownerEntry{ws: ws, explicit: ok, expires: exp})
		}
	}
	return nil
}

// Set records that ws owns a resource (DefaultWorkspace: the row is
// removed, as no row means the same).
func (o *Owners) Set(ctx context.Context, rt ResourceType, name, ws string) error {
	if ws == DefaultWorkspace {
		return o.Remove(ctx, rt, name)
	}
	_, err := o.db.W.ExecContext(ctx, o.db.Rebind(`INSERT INTO workspace_resources (resource_type, name, workspace, created_at) VALUES (?, ?, ?, ?)`+
		store.Upsert([]string{"resource_type", "name"}, "workspace", "created_at")), string(rt), name, ws, o.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("access: record that workspace %s owns %s %s: %w", ws, rt, clip(name), err)
	}
	o.active.Store(true)
	o.remember(ownerKey{rt, name}, ownerEntry{ws: ws, explicit: true, expires: o.now().Add(o.ttl)})
	return nil
}

// Remove forgets a resource's owner (it belongs to DefaultWorkspace again,
// or is gone).
func (o *Owners) Remove(ctx context.Context, rt ResourceType, name string) error {
	if !o.Active(ctx) {
		return nil
	}
	if _, err := o.db.W.ExecContext(ctx, o.db.Rebind(`DELETE FROM workspace_resources WHERE resource_type = ? AND name = ?`), string(rt), name); err != nil {
		return fmt.Errorf("access: forget the owner of %s %s: %w", rt, clip(name), err)
	}
	o.remember(ownerKey{rt, name}, ownerEntry{expires: o.now().Add(o.ttl)})
	return nil
}

// Rename moves a resource's row to its new name (a renamed registered
// model stays in its workspace).
func (o *Owners) Rename(ctx context.Context, rt ResourceType, from, to string) error {
	ws, explicit, err := o.Owner(ctx, rt, from)
	if err != nil || !explicit {
		return err
	}
	if err := o.Set(ctx, rt, to, ws); err != nil {
		return err
	}
	return o.Remove(ctx, rt, from)
}

// Workspace scope of a request: the middleware puts it in the context.

type scopeKey struct{}

// scope is the workspace a request acts in, with the ownership records.
type scope struct {
	owners *Owners
	ws     string
}

// withScope returns ctx carrying the request's workspace and owners.
func withScope(ctx context.Context, o *Owners, ws string) context.Context {
	return context.WithValue(ctx, scopeKey{}, &scope{owners: o, ws: ws})
}

// RequestWorkspace returns the workspace a request acts in
// (DefaultWorkspace when access control did not see it).
func RequestWorkspace(ctx context.Context) string {
	if s, ok := ctx.Value(scopeKey{}).(*scope); ok {
		return s.ws
	}
	return DefaultWorkspace
}

// isolated reports whether ownership matters to the request of ctx: it
// acts in a workspace other than the default one, or some resource
// belongs to another workspace.
func (s *scope) isolated(ctx context.Context) bool {
	return s != nil && s.owners != nil && (s.ws != DefaultWorkspace || s.owners.Active(ctx))
}

// Visible reports whether the request of ctx may see a resource: whether
// it belongs to the request's workspace. Without a workspace scope (no
// access control) everything is visible. A lookup that fails counts as
// not visible.
func Visible(ctx context.Context, rt ResourceType, name string) bool {
	s, _ := ctx.Value(scopeKey{}).(*scope)
	if !s.isolated(ctx) {
		return true
	}
	owner, _, err := s.owners.Owner(ctx, rt, name)
	return err == nil && owner == s.ws
}

// FilterVisible returns the items of a listing that the request of ctx
// may see (Visible), looking their owners up with one query.
func FilterVisible[T any](ctx context.Context, rt ResourceType, items []T, name func(T) string) []T {
	s, _ := ctx.Value(scopeKey{}).(*scope)
	if !s.isolated(ctx) || len(items) == 0 {
		return items
	}
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = name(it)
	}
	if s.owners.Active(ctx) {
		if err := s.owners.prefetch(ctx, rt, names); err != nil {
			return items[:0]
		}
	}
	out := items[:0:0]
	for i, it := range items {
		if Visible(ctx, rt, names[i]) {
			out = append(out, it)
		}
	}
	return out
}

// NotInWorkspace is the error of a resource that belongs to another
// workspace than the request's: not found, as if it did not exist.
func NotInWorkspace(rt ResourceType, name, ws string) error {
	return errdefs.NotFound("%s '%s' does not exist in workspace '%s'", resourceTitle(rt), clip(name), ws)
}

// OwnedElsewhere is the error of creating a resource whose name another
// workspace owns.
func OwnedElsewhere(rt ResourceType, name, ws string) error {
	return errdefs.AlreadyExists("%s '%s' already exists in another workspace than '%s' (endpoint names, and the names of models made before names were per workspace, are shared by all workspaces)", resourceTitle(rt), clip(name), ws)
}

func resourceTitle(rt ResourceType) string {
	switch rt {
	case ResourceExperiment:
		return "Experiment"
	case ResourceModel:
		return "Registered model"
	case ResourceEndpoint:
		return "Endpoint"
	}
	return string(rt)
}

// Claim is for a handler that creates a resource in another workspace
// than the request's (a model version copied to a registered model of the
// target workspace): exists says whether the resource exists already.
// It returns OwnedElsewhere when the name belongs to another workspace
// than ws (an existing resource without a row belongs to
// DefaultWorkspace), and otherwise a function that records ws as the
// owner once the resource is made. It needs the workspace scope of access
// control; without it only DefaultWorkspace can be named.
func Claim(ctx context.Context, rt ResourceType, name, ws string, exists bool) (func(context.Context) error, error) {
	s, _ := ctx.Value(scopeKey{}).(*scope)
	if s == nil || s.owners == nil {
		if ws != DefaultWorkspace {
			return nil, errdefs.InvalidState("Workspace '%s' cannot own resources with access control off: only the default workspace exists then", ws)
		}
		return func(context.Context) error { return nil }, nil
	}
	owner, explicit, err := s.owners.Owner(ctx, rt, name)
	if err != nil {
		return nil, err
	}
	if (explicit || exists) && owner != ws {
		return nil, OwnedElsewhere(rt, name, ws)
	}
	if explicit || ws == DefaultWorkspace {
		return func(context.Context) error { return nil }, nil
	}
	return func(ctx context.Context) error { return s.owners.Set(ctx, rt, name, ws) }, nil
}

// Isolated reports whether the request of ctx must check what it lists or
// names against its workspace (Visible can answer false): a handler can
// skip the lookups that a check needs when it is false.
func Isolated(ctx context.Context) bool {
	s, _ := ctx.Value(scopeKey{}).(*scope)
	return s.isolated(ctx)
}

// CheckVisible returns NotInWorkspace when the request of ctx may not see
// a resource (Visible is false), else nil.
func CheckVisible(ctx context.Context, rt ResourceType, name string) error {
	if Visible(ctx, rt, name) {
		return nil
	}
	return NotInWorkspace(rt, name, RequestWorkspace(ctx))
}
