package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// An OIDC user is known by the provider's subject (the ID token's sub):
// user names at a provider can change hands or be renamed, subjects do
// not. Table oidc_subjects links (issuer, subject) to a Kiln user, one
// subject per user and issuer.

// UserBySubject returns the user linked to subject of issuer;
// errdefs.NotFound if none is.
func (s *Store) UserBySubject(ctx context.Context, issuer, subject string) (*User, error) {
	var name string
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT user_name FROM oidc_subjects WHERE issuer = ? AND subject = ?`), issuer, subject).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("No user signs in as subject '%s' of %s", clip(subject), clip(issuer))
	}
	if err != nil {
		return nil, fmt.Errorf("access: user by subject: %w", err)
	}
	return s.GetUser(ctx, name)
}

// SubjectOf returns the subject of issuer linked to user, "" if none is.
func (s *Store) SubjectOf(ctx context.Context, issuer, user string) (string, error) {
	var sub string
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT subject FROM oidc_subjects WHERE issuer = ? AND user_name = ?`), issuer, user).Scan(&sub)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("access: subject of a user: %w", err)
	}
	return sub, nil
}

// LinkSubject links subject of issuer to user. Linking the same pair
// again is a no-op; errdefs.AlreadyExists when the subject or the user is
// linked to another.
func (s *Store) LinkSubject(ctx context.Context, issuer, subject, user string) error {
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`INSERT INTO oidc_subjects (issuer, subject, user_name, creation_time) VALUES (?, ?, ?, ?)`),
		issuer, subject, user, s.now().UnixMilli())
	if store.IsUniqueViolation(err) {
		if got, gerr := s.SubjectOf(ctx, issuer, user); gerr == nil && got == subject {
			return nil
		}
		return errdefs.AlreadyExists("Subject '%s' of %s or user '%s' is linked to another", clip(subject), clip(issuer), clip(user))
	}
	if err != nil {
		return fmt.Errorf("access: link subject: %w", err)
	}
	return nil
}
