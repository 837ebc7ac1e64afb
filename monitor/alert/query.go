package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Active returns the pending and firing alerts of a monitor ("" = all
// monitors), by monitor, rule and fingerprint.
func (e *Engine) Active(ctx context.Context, monitor string) ([]State, error) {
	q := `SELECT ` + stateColumns + ` FROM alert_states WHERE state IN (?, ?)`
	args := []any{StatePending, StateFiring}
	if monitor != "" {
		q += ` AND monitor = ?`
		args = append(args, monitor)
	}
	q += ` ORDER BY monitor, rule, fingerprint`
	rows, err := e.db.R.QueryContext(ctx, e.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("alert: active alerts: %w", err)
	}
	defer rows.Close()
	out := []State{}
	for rows.Next() {
		s, err := scanState(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// HistoryQuery selects events: of a monitor and rule ("" = any), in
// [From, To) (zero = unbounded), newest first, at most Limit (default 100,
// at most 10000).
type HistoryQuery struct {
	Monitor string    `json:"monitor,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Limit   int       `json:"limit,omitempty"`
}

// Limits of HistoryQuery.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 10000
)

// History returns alert events, newest first.
func (e *Engine) History(ctx context.Context, hq HistoryQuery) ([]Event, error) {
	var where []string
	var args []any
	if hq.Monitor != "" {
		where, args = append(where, "monitor = ?"), append(args, hq.Monitor)
	}
	if hq.Rule != "" {
		where, args = append(where, "rule = ?"), append(args, hq.Rule)
	}
	if !hq.From.IsZero() {
		where, args = append(where, "time >= ?"), append(args, hq.From.UnixMilli())
	}
	if !hq.To.IsZero() {
		where, args = append(where, "time < ?"), append(args, hq.To.UnixMilli())
	}
	limit := hq.Limit
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)
	q := `SELECT event_id, monitor, rule, fingerprint, labels, from_state, state, value, time, detail FROM alert_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY time DESC, event_id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := e.db.R.QueryContext(ctx, e.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("alert: history: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var ev Event
		var labels, detail string
		var v sql.NullFloat64
		var t int64
		if err := rows.Scan(&ev.ID, &ev.Monitor, &ev.Rule, &ev.Fingerprint, &labels, &ev.From, &ev.State, &v, &t, &detail); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(labels), &ev.Labels); err != nil {
			return nil, fmt.Errorf("alert: decode event labels: %w", err)
		}
		if err := json.Unmarshal([]byte(detail), &ev.Detail); err != nil {
			return nil, fmt.Errorf("alert: decode event detail: %w", err)
		}
		ev.Value, ev.Time = fromDB(v), unms(t)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Notifications returns the notifications of an event with the history of
// their attempts, oldest first.
func (e *Engine) Notifications(ctx context.Context, eventID string) ([]Notification, error) {
	rows, err := e.db.R.QueryContext(ctx, e.db.Rebind(`SELECT notification_id, event_id, receiver, type, status, attempts, max_attempts, error, time, next_time, last_time
		FROM alert_notifications WHERE event_id = ? ORDER BY notification_id`), eventID)
	if err != nil {
		return nil, fmt.Errorf("alert: notifications: %w", err)
	}
	out := []Notification{}
	for rows.Next() {
		var n Notification
		var t, nt, lt int64
		if err := rows.Scan(&n.ID, &n.EventID, &n.Receiver, &n.Type, &n.Status, &n.Attempts, &n.MaxAttempts, &n.Error, &t, &nt, &lt); err != nil {
			rows.Close()
			return nil, err
		}
		n.Time, n.LastTime = unms(t), unms(lt)
		if n.Status == NotificationPending {
			n.NextTime = unms(nt)
		}
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		h, err := e.attempts(ctx, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].History = h
	}
	return out, nil
}

func (e *Engine) attempts(ctx context.Context, id string) ([]Attempt, error) {
	rows, err := e.db.R.QueryContext(ctx, e.db.Rebind(`SELECT attempt, time, status_code, error, duration_ms FROM alert_notification_attempts WHERE notification_id = ? ORDER BY attempt`), id)
	if err != nil {
		return nil, fmt.Errorf("alert: notification attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var t int64
		var d float64
		if err := rows.Scan(&a.N, &t, &a.StatusCode, &a.Error, &d); err != nil {
			return nil, err
		}
		a.Time, a.Duration = unms(t), d/1000
		out = append(out, a)
	}
	return out, rows.Err()
}
