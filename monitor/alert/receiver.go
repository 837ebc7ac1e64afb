package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Receiver types.
const (
	TypeWebhook      = "webhook"
	TypeSlack        = "slack"
	TypeAlertmanager = "alertmanager"
	// TypeHook marks the notifications that call the engine's Hook.
	TypeHook = "hook"
)

// Defaults of a Receiver.
const (
	DefaultMaxAttempts = 5
	DefaultTimeout     = 10 * time.Second
	maxMaxAttempts     = 20
)

// Receiver is where notifications go. Receivers are configured by
// operators: Kiln posts to any URL they name, including private addresses
// (see docs/alerts.md, "Security"); it does not follow redirects.
type Receiver struct {
	Name string `json:"name" yaml:"name"`
	// Type is webhook (Kiln's signed JSON), slack (incoming webhook) or
	// alertmanager (Alertmanager's webhook payload, version 4).
	Type string `json:"type" yaml:"type"`
	URL  string `json:"url" yaml:"url"`
	// Secret signs webhook bodies (X-Kiln-Signature); it is optional.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// Headers are added to every request (e.g. Authorization).
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	// SendResolved: resolved notifications are sent unless it is false.
	SendResolved *bool `json:"send_resolved,omitempty" yaml:"send_resolved,omitempty"`
	// Timeout of one attempt (default 10s).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// MaxAttempts per notification (default 5, at most 20).
	MaxAttempts int `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`

	// Set by the store.
	Generation     int64     `json:"generation,omitempty" yaml:"generation,omitempty"`
	CreationTime   time.Time `json:"creation_time,omitzero" yaml:"creation_time,omitempty"`
	LastUpdateTime time.Time `json:"last_update_time,omitzero" yaml:"last_update_time,omitempty"`
}

// Redacted returns r with its secret and header values replaced by
// "<redacted>" (for display through the API).
func (r Receiver) Redacted() Receiver {
	if r.Secret != "" {
		r.Secret = "<redacted>"
	}
	if len(r.Headers) > 0 {
		h := make(map[string]string, len(r.Headers))
		for k := range r.Headers {
			h[k] = "<redacted>"
		}
		r.Headers = h
	}
	return r
}

func (r *Receiver) sendResolved() bool { return r.SendResolved == nil || *r.SendResolved }

func (r *Receiver) maxAttempts() int {
	if r.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return r.MaxAttempts
}

func (r *Receiver) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultTimeout
	}
	return r.Timeout.D()
}

var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true,
	"X-Kiln-Signature": true, "X-Kiln-Timestamp": true, "X-Kiln-Delivery": true,
}

// Validate checks the receiver.
func (r *Receiver) Validate() error {
	if !ruleNameRE.MatchString(r.Name) {
		return errdefs.Invalid("alert receiver %q: name must start with a letter or _ and hold only letters, digits, _ . - (at most 128)", r.Name)
	}
	switch r.Type {
	case TypeWebhook, TypeSlack, TypeAlertmanager:
	default:
		return errdefs.Invalid("alert receiver %q: type must be webhook, slack or alertmanager (got %q)", r.Name, r.Type)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errdefs.Invalid("alert receiver %q: url must be an absolute http or https URL (got %q)", r.Name, r.URL)
	}
	if r.Timeout < 0 {
		return errdefs.Invalid("alert receiver %q: timeout must be ≥ 0", r.Name)
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > maxMaxAttempts {
		return errdefs.Invalid("alert receiver %q: max_attempts must be between 1 and %d (0 = %d)", r.Name, maxMaxAttempts, DefaultMaxAttempts)
	}
	for k, v := range r.Headers {
		ck := http.CanonicalHeaderKey(k)
		if reservedHeaders[ck] {
			return errdefs.Invalid("alert receiver %q: header %s is set by Kiln", r.Name, ck)
		}
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return errdefs.Invalid("alert receiver %q: bad header %q", r.Name, k)
		}
	}
	return nil
}

// PutReceiver creates or replaces a receiver and returns it as stored
// (generation incremented on each change).
func (e *Engine) PutReceiver(ctx context.Context, r Receiver) (Receiver, error) {
	if err := r.Validate(); err != nil {
		return Receiver{}, err
	}
	r.Generation, r.CreationTime, r.LastUpdateTime = 0, time.Time{}, time.Time{}
	spec, err := json.Marshal(r)
	if err != nil {
		return Receiver{}, fmt.Errorf("alert: encode receiver: %w", err)
	}
	now := e.now().UnixMilli()
	db := e.db
	q := db.Rebind(`INSERT INTO alert_receivers (name, spec, generation, creation_time, last_update_time) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, generation = alert_receivers.generation + 1, last_update_time = excluded.last_update_time`)
	if _, err := db.W.ExecContext(ctx, q, r.Name, string(spec), now, now); err != nil {
		return Receiver{}, fmt.Errorf("alert: put receiver %s: %w", r.Name, err)
	}
	return e.GetReceiver(ctx, r.Name)
}

func scanReceiver(row interface{ Scan(...any) error }) (Receiver, error) {
	var r Receiver
	var spec string
	var ct, ut int64
	if err := row.Scan(&spec, &r.Generation, &ct, &ut); err != nil {
		return Receiver{}, err
	}
	gen := r.Generation
	if err := json.Unmarshal([]byte(spec), &r); err != nil {
		return Receiver{}, fmt.Errorf("alert: decode receiver: %w", err)
	}
	r.Generation = gen
	r.CreationTime, r.LastUpdateTime = time.UnixMilli(ct).UTC(), time.UnixMilli(ut).UTC()
	return r, nil
}

// GetReceiver returns a receiver, secret included (use Redacted for
// display); errdefs.ErrNotFound when there is none.
func (e *Engine) GetReceiver(ctx context.Context, name string) (Receiver, error) {
	row := e.db.R.QueryRowContext(ctx, e.db.Rebind(`SELECT spec, generation, creation_time, last_update_time FROM alert_receivers WHERE name = ?`), name)
	r, err := scanReceiver(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Receiver{}, errdefs.NotFound("alert receiver %q not found", name)
	}
	if err != nil {
		return Receiver{}, fmt.Errorf("alert: get receiver %s: %w", name, err)
	}
	return r, nil
}

// ListReceivers returns all receivers by name.
func (e *Engine) ListReceivers(ctx context.Context) ([]Receiver, error) {
	rows, err := e.db.R.QueryContext(ctx, `SELECT spec, generation, creation_time, last_update_time FROM alert_receivers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("alert: list receivers: %w", err)
	}
	defer rows.Close()
	var out []Receiver
	for rows.Next() {
		r, err := scanReceiver(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteReceiver deletes a receiver; errdefs.ErrNotFound when there is
// none. Pending notifications to it fail at their next attempt.
func (e *Engine) DeleteReceiver(ctx context.Context, name string) error {
	res, err := e.db.W.ExecContext(ctx, e.db.Rebind(`DELETE FROM alert_receivers WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("alert: delete receiver %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("alert receiver %q not found", name)
	}
	return nil
}

// receiversTx loads the named receivers in tx.
func receiversTx(ctx context.Context, db *store.DB, tx store.Tx, names map[string]bool) (map[string]Receiver, error) {
	out := map[string]Receiver{}
	for name := range names {
		r, err := scanReceiver(tx.QueryRowContext(ctx, db.Rebind(`SELECT spec, generation, creation_time, last_update_time FROM alert_receivers WHERE name = ?`), name))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("alert: load receiver %s: %w", name, err)
		}
		out[name] = r
	}
	return out, nil
}
