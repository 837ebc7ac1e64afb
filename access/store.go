package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// User is a person or a service account.
type User struct {
	Name string `json:"name"`
	// Kind is "user" or "service" (a service account: no password, tokens
	// only).
	Kind           string `json:"kind"`
	DisplayName    string `json:"display_name,omitempty"`
	Email          string `json:"email,omitempty"`
	Admin          bool   `json:"admin,omitempty"`
	Disabled       bool   `json:"disabled,omitempty"`
	HasPassword    bool   `json:"has_password"`
	CreatedBy      string `json:"created_by,omitempty"`
	CreationTime   int64  `json:"creation_time"`
	LastUpdateTime int64  `json:"last_update_time"`

	passwordHash string
}

// Kinds of users.
const (
	KindUser    = "user"
	KindService = "service"
)

// Token is an API token as listed: never its secret.
type Token struct {
	ID           string `json:"token_id"`
	User         string `json:"user"`
	Name         string `json:"name,omitempty"`
	Scope        Scope  `json:"scope"`
	Workspace    string `json:"workspace,omitempty"`
	CreatedBy    string `json:"created_by,omitempty"`
	CreationTime int64  `json:"creation_time"`
	Expires      int64  `json:"expires,omitempty"`
	LastUsed     int64  `json:"last_used,omitempty"`
	Revoked      int64  `json:"revoked,omitempty"`
}

// Grant gives a user a role in a workspace, on all of it (ResourceType
// "") or on one resource.
type Grant struct {
	User         string       `json:"user"`
	Workspace    string       `json:"workspace"`
	ResourceType ResourceType `json:"resource_type,omitempty"`
	Resource     string       `json:"resource,omitempty"`
	Role         Role         `json:"role"`
	CreatedBy    string       `json:"created_by,omitempty"`
	CreationTime int64        `json:"creation_time"`
}

// Workspace is a namespace that grants are given in.
type Workspace struct {
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	CreatedBy    string `json:"created_by,omitempty"`
	CreationTime int64  `json:"creation_time"`
}

// DefaultWorkspace is the workspace of requests that name none.
const DefaultWorkspace = "default"

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,127}$`)

// ValidateName checks a user, service account or workspace name.
func ValidateName(what, name string) error {
	if !nameRE.MatchString(name) {
		return errdefs.Invalid("%q is not a valid %s name: 1 to 128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", clip(name), what)
	}
	return nil
}

// Store holds users, tokens, workspaces and grants.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore returns a Store on db.
func NewStore(db *store.DB) *Store { return &Store{db: db, now: time.Now} }

const userCols = `name, kind, display_name, email, password_hash, admin, disabled, created_by, creation_time, last_update_time`

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	if err := sc.Scan(&u.Name, &u.Kind, &u.DisplayName, &u.Email, &u.passwordHash, &u.Admin, &u.Disabled, &u.CreatedBy, &u.CreationTime, &u.LastUpdateTime); err != nil {
		return nil, err
	}
	u.HasPassword = u.passwordHash != ""
	return &u, nil
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Name        string `json:"name"`
	Kind        string `json:"kind,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
	Password    string `json:"password,omitempty"`
	Admin       bool   `json:"admin,omitempty"`
}

// CreateUser adds a user or service account.
func (s *Store) CreateUser(ctx context.Context, nu NewUser, actor string) (*User, error) {
	if err := ValidateName("user", nu.Name); err != nil {
		return nil, err
	}
	switch nu.Kind {
	case "":
		nu.Kind = KindUser
	case KindUser, KindService:
	default:
		return nil, errdefs.Invalid("kind must be user or service, not %q", clip(nu.Kind))
	}
	if len(nu.DisplayName) > 256 || len(nu.Email) > 256 {
		return nil, errdefs.Invalid("display_name and email have at most 256 bytes")
	}
	hash := ""
	if nu.Password != "" {
		if nu.Kind == KindService {
			return nil, errdefs.Invalid("A service account has no password: it signs in with tokens")
		}
		h, err := HashPassword(nu.Password)
		if err != nil {
			return nil, err
		}
		hash = h
	}
	now := s.now().UnixMilli()
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		nu.Name, nu.Kind, nu.DisplayName, nu.Email, hash, nu.Admin, false, actor, now, now)
	if store.IsUniqueViolation(err) {
		return nil, errdefs.AlreadyExists("User '%s' already exists", nu.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("access: create user: %w", err)
	}
	return s.GetUser(ctx, nu.Name)
}

// GetUser returns a user; errdefs.NotFound if there is none.
func (s *Store) GetUser(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+userCols+` FROM users WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("User '%s' does not exist", clip(name))
	}
	if err != nil {
		return nil, fmt.Errorf("access: get user: %w", err)
	}
	return u, nil
}

// ListUsers returns every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("access: list users: %w", err)
	}
	defer rows.Close()
	out := []*User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("access: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserUpdate changes a user; nil fields stay.
type UserUpdate struct {
	DisplayName *string `json:"display_name,omitempty"`
	Email       *string `json:"email,omitempty"`
	Password    *string `json:"password,omitempty"`
	Admin       *bool   `json:"admin,omitempty"`
	Disabled    *bool   `json:"disabled,omitempty"`
}

// UpdateUser applies u to a user.
func (s *Store) UpdateUser(ctx context.Context, name string, u UserUpdate) (*User, error) {
	cur, err := s.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	hash := cur.passwordHash
	if u.Password != nil {
		if cur.Kind == KindService {
			return nil, errdefs.Invalid("A service account has no password: it signs in with tokens")
		}
		if hash, err = HashPassword(*u.Password); err != nil {
			return nil, err
		}
	}
	set := func(p *string, v string) string {
		if p != nil {
			return *p
		}
		return v
	}
	admin, disabled := cur.Admin, cur.Disabled
	if u.Admin != nil {
		admin = *u.Admin
	}
	if u.Disabled != nil {
		disabled = *u.Disabled
	}
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE users SET display_name = ?, email = ?, password_hash = ?, admin = ?, disabled = ?, last_update_time = ? WHERE name = ?`),
		set(u.DisplayName, cur.DisplayName), set(u.Email, cur.Email), hash, admin, disabled, s.now().UnixMilli(), name)
	if err != nil {
		return nil, fmt.Errorf("access: update user: %w", err)
	}
	return s.GetUser(ctx, name)
}

// DeleteUser removes a user with its tokens, grants and sessions.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM users WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("access: delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("User '%s' does not exist", clip(name))
	}
	return nil
}

// CountAdmins returns how many enabled server administrators there are.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM users WHERE admin = ? AND disabled = ?`), true, false).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("access: count admins: %w", err)
	}
	return n, nil
}

// NewToken is what CreateToken needs.
type NewToken struct {
	User      string `json:"user,omitempty"`
	Name      string `json:"name,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Workspace string `json:"workspace,omitempty"`
	// TTL is how long the token lasts (0: until revoked).
	TTL time.Duration `json:"-"`
}

// MaxTokenTTL bounds a token's life.
const MaxTokenTTL = 5 * 365 * 24 * time.Hour

// CreateToken makes a token for a user and returns it with the token
// itself, which is never shown again.
func (s *Store) CreateToken(ctx context.Context, nt NewToken, actor string) (*Token, string, error) {
	u, err := s.GetUser(ctx, nt.User)
	if err != nil {
		return nil, "", err
	}
	scope, err := ParseScope(nt.Scope)
	if err != nil {
		return nil, "", err
	}
	if len(nt.Name) > 128 {
		return nil, "", errdefs.Invalid("A token name has at most 128 bytes")
	}
	if nt.Workspace != "" {
		if err := ValidateName("workspace", nt.Workspace); err != nil {
			return nil, "", err
		}
	}
	if nt.TTL < 0 || nt.TTL > MaxTokenTTL {
		return nil, "", errdefs.Invalid("A token's lifetime is between 0 (until revoked) and %s", MaxTokenTTL)
	}
	tok, id, hash, err := newToken()
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	expires := int64(0)
	if nt.TTL > 0 {
		expires = now.Add(nt.TTL).UnixMilli()
	}
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO api_tokens (token_id, user_name, name, secret_hash, scope, workspace, created_by, creation_time, expires)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, u.Name, nt.Name, hash, string(scope), nt.Workspace, actor, now.UnixMilli(), expires)
	if err != nil {
		return nil, "", fmt.Errorf("access: create token: %w", err)
	}
	t := &Token{ID: id, User: u.Name, Name: nt.Name, Scope: scope, Workspace: nt.Workspace, CreatedBy: actor, CreationTime: now.UnixMilli(), Expires: expires}
	return t, tok, nil
}

const tokenCols = `token_id, user_name, name, scope, workspace, created_by, creation_time, expires, last_used, revoked`

func scanToken(sc interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var scope string
	if err := sc.Scan(&t.ID, &t.User, &t.Name, &scope, &t.Workspace, &t.CreatedBy, &t.CreationTime, &t.Expires, &t.LastUsed, &t.Revoked); err != nil {
		return nil, err
	}
	t.Scope = Scope(scope)
	return &t, nil
}

// ListTokens returns a user's tokens ("" every user's), newest first.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*Token, error) {
	q, args := `SELECT `+tokenCols+` FROM api_tokens ORDER BY creation_time DESC, token_id`, []any{}
	if user != "" {
		q, args = `SELECT `+tokenCols+` FROM api_tokens WHERE user_name = ? ORDER BY creation_time DESC, token_id`, []any{user}
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("access: list tokens: %w", err)
	}
	defer rows.Close()
	out := []*Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("access: list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetToken returns a token by id.
func (s *Store) GetToken(ctx context.Context, id string) (*Token, error) {
	t, err := scanToken(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+tokenCols+` FROM api_tokens WHERE token_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Token '%s' does not exist", clip(id))
	}
	if err != nil {
		return nil, fmt.Errorf("access: get token: %w", err)
	}
	return t, nil
}

// RevokeToken revokes a token; revoking it again changes nothing.
func (s *Store) RevokeToken(ctx context.Context, id string) (*Token, error) {
	if _, err := s.GetToken(ctx, id); err != nil {
		return nil, err
	}
	if _, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET revoked = ? WHERE token_id = ? AND revoked = 0`), s.now().UnixMilli(), id); err != nil {
		return nil, fmt.Errorf("access: revoke token: %w", err)
	}
	return s.GetToken(ctx, id)
}

// tokenSecret returns what checking a token needs.
func (s *Store) tokenSecret(ctx context.Context, id string) (*Token, string, error) {
	var hash string
	var t Token
	var scope string
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+tokenCols+`, secret_hash FROM api_tokens WHERE token_id = ?`), id).
		Scan(&t.ID, &t.User, &t.Name, &scope, &t.Workspace, &t.CreatedBy, &t.CreationTime, &t.Expires, &t.LastUsed, &t.Revoked, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("access: token: %w", err)
	}
	t.Scope = Scope(scope)
	return &t, hash, nil
}

// touchToken records a token's use (at most once a minute per token).
func (s *Store) touchToken(ctx context.Context, id string, at time.Time) {
	s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET last_used = ? WHERE token_id = ? AND last_used < ?`),
		at.UnixMilli(), id, at.Add(-time.Minute).UnixMilli())
}

// CreateWorkspace adds a workspace.
func (s *Store) CreateWorkspace(ctx context.Context, w Workspace, actor string) (*Workspace, error) {
	if err := ValidateName("workspace", w.Name); err != nil {
		return nil, err
	}
	if len(w.Description) > 1024 {
		return nil, errdefs.Invalid("A description has at most 1024 bytes")
	}
	w.CreatedBy, w.CreationTime = actor, s.now().UnixMilli()
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO workspaces (name, description, created_by, creation_time) VALUES (?, ?, ?, ?)`),
		w.Name, w.Description, w.CreatedBy, w.CreationTime)
	if store.IsUniqueViolation(err) {
		return nil, errdefs.AlreadyExists("Workspace '%s' already exists", w.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("access: create workspace: %w", err)
	}
	return &w, nil
}

// WorkspaceExists reports whether a workspace was created (the default
// one always exists).
func (s *Store) WorkspaceExists(ctx context.Context, name string) (bool, error) {
	if name == DefaultWorkspace {
		return true, nil
	}
	var n int
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM workspaces WHERE name = ?`), name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("access: workspace %s: %w", clip(name), err)
	}
	return n > 0, nil
}

// ListWorkspaces returns the workspaces by name.
func (s *Store) ListWorkspaces(ctx context.Context) ([]*Workspace, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT name, description, created_by, creation_time FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("access: list workspaces: %w", err)
	}
	defer rows.Close()
	out := []*Workspace{}
	for rows.Next() {
		var w Workspace
		if err := rows.Scan(&w.Name, &w.Description, &w.CreatedBy, &w.CreationTime); err != nil {
			return nil, fmt.Errorf("access: list workspaces: %w", err)
		}
		out = append(out, &w)
	}
	return out, rows.Err()
}

// DeleteWorkspace removes a workspace and its grants (not "default", nor
// one that owns experiments, registered models or endpoints).
func (s *Store) DeleteWorkspace(ctx context.Context, name string) error {
	if name == DefaultWorkspace {
		return errdefs.InvalidState("The default workspace cannot be deleted")
	}
	var owned int
	if err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM workspace_resources WHERE workspace = ?`), name).Scan(&owned); err != nil {
		return fmt.Errorf("access: delete workspace: %w", err)
	}
	if owned > 0 {
		return errdefs.InvalidState("Workspace '%s' owns %d experiments, registered models or endpoints: delete them first", clip(name), owned)
	}
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM workspaces WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("access: delete workspace: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("Workspace '%s' does not exist", clip(name))
	}
	return nil
}

// PutGrant gives (or changes) a user's role in a workspace or on a
// resource of it.
func (s *Store) PutGrant(ctx context.Context, g Grant, actor string) (*Grant, error) {
	if _, err := s.GetUser(ctx, g.User); err != nil {
		return nil, err
	}
	if _, err := ParseRole(string(g.Role)); err != nil {
		return nil, err
	}
	if _, err := ParseResourceType(string(g.ResourceType)); err != nil {
		return nil, err
	}
	if (g.ResourceType == ResourceWorkspace) != (g.Resource == "") {
		return nil, errdefs.Invalid("resource_type and resource go together: both set (one resource) or neither (the whole workspace)")
	}
	if len(g.Resource) > 512 {
		return nil, errdefs.Invalid("A resource name has at most 512 bytes")
	}
	var ws string
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT name FROM workspaces WHERE name = ?`), g.Workspace).Scan(&ws)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Workspace '%s' does not exist", clip(g.Workspace))
	}
	if err != nil {
		return nil, fmt.Errorf("access: grant: %w", err)
	}
	g.CreatedBy, g.CreationTime = actor, s.now().UnixMilli()
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO role_grants (user_name, workspace, resource_type, resource, role, created_by, creation_time)
		VALUES (?, ?, ?, ?, ?, ?, ?) `+store.Upsert([]string{"user_name", "workspace", "resource_type", "resource"}, "role", "created_by", "creation_time")),
		g.User, g.Workspace, string(g.ResourceType), g.Resource, string(g.Role), g.CreatedBy, g.CreationTime)
	if err != nil {
		return nil, fmt.Errorf("access: grant: %w", err)
	}
	return &g, nil
}

// DeleteGrant removes a grant.
func (s *Store) DeleteGrant(ctx context.Context, g Grant) error {
	res, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM role_grants WHERE user_name = ? AND workspace = ? AND resource_type = ? AND resource = ?`),
		g.User, g.Workspace, string(g.ResourceType), g.Resource)
	if err != nil {
		return fmt.Errorf("access: delete grant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("User '%s' has no such grant in workspace '%s'", clip(g.User), clip(g.Workspace))
	}
	return nil
}

// ListGrants returns the grants of a workspace ("" all) and user ("" all).
func (s *Store) ListGrants(ctx context.Context, workspace, user string) ([]*Grant, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT user_name, workspace, resource_type, resource, role, created_by, creation_time FROM role_grants
		WHERE (? = '' OR workspace = ?) AND (? = '' OR user_name = ?) ORDER BY workspace, user_name, resource_type, resource`), workspace, workspace, user, user)
	if err != nil {
		return nil, fmt.Errorf("access: list grants: %w", err)
	}
	defer rows.Close()
	out := []*Grant{}
	for rows.Next() {
		var g Grant
		var rt, role string
		if err := rows.Scan(&g.User, &g.Workspace, &rt, &g.Resource, &role, &g.CreatedBy, &g.CreationTime); err != nil {
			return nil, fmt.Errorf("access: list grants: %w", err)
		}
		g.ResourceType, g.Role = ResourceType(rt), Role(role)
		out = append(out, &g)
	}
	return out, rows.Err()
}
