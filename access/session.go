package access

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// SessionTTL is how long a UI session lasts.
const SessionTTL = 12 * time.Hour

// CSRFHeader carries a session's CSRF token on every request that
// changes something (the UI reads it from the login answer).
const CSRFHeader = "X-CSRF-Token"

func randomText(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("access: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CreateSession starts a UI session for user and returns the cookie's
// value and the session's CSRF token.
func (s *Store) CreateSession(ctx context.Context, user string) (cookie, csrf string, expires time.Time, err error) {
	if cookie, err = randomText(32); err != nil {
		return
	}
	if csrf, err = randomText(32); err != nil {
		return
	}
	now := s.now()
	expires = now.Add(SessionTTL)
	_, err = s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO sessions (session_hash, user_name, csrf_token, creation_time, expires) VALUES (?, ?, ?, ?, ?)`),
		hashSecret(cookie), user, csrf, now.UnixMilli(), expires.UnixMilli())
	if err != nil {
		err = fmt.Errorf("access: create session: %w", err)
	}
	// Sweep sessions that have ended.
	s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE expires < ?`), now.UnixMilli())
	return
}

// DeleteSession ends a session (logout).
func (s *Store) DeleteSession(ctx context.Context, cookie string) error {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE session_hash = ?`), hashSecret(cookie))
	if err != nil {
		return fmt.Errorf("access: delete session: %w", err)
	}
	return nil
}

// session returns the principal of a session cookie. Sessions are not
// cached: each request reads its row, so logout takes effect at once.
func (a *Authenticator) session(ctx context.Context, cookie string) (*Principal, error) {
	var user, csrf string
	var expires int64
	err := a.st.db.R.QueryRowContext(ctx, a.st.db.Rebind(`SELECT user_name, csrf_token, expires FROM sessions WHERE session_hash = ?`), hashSecret(cookie)).
		Scan(&user, &csrf, &expires)
	if errors.Is(err, sql.ErrNoRows) || err == nil && a.now().UnixMilli() >= expires {
		return nil, unauthenticated("The session has ended: sign in again")
	}
	if err != nil {
		return nil, fmt.Errorf("access: session: %w", err)
	}
	u, err := a.st.GetUser(ctx, user)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, unauthenticated("User '%s' is disabled", u.Name)
	}
	p, err := a.principal(ctx, u, "session")
	if err != nil {
		return nil, err
	}
	p.csrf = csrf
	return p, nil
}
