package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// Statuses of a notification.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed"
)

// Headers of webhook requests.
const (
	HeaderSignature = "X-Kiln-Signature"
	HeaderTimestamp = "X-Kiln-Timestamp"
	HeaderDelivery  = "X-Kiln-Delivery"
)

// Sign returns the X-Kiln-Signature value of a webhook body: "sha256=" and
// the hex HMAC-SHA256, keyed by the receiver's secret, of the timestamp
// (the X-Kiln-Timestamp header, Unix seconds), a dot and the exact body.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook's signature in constant time and that its
// timestamp is within tolerance of now (0: no age check).
func Verify(secret, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errdefs.Invalid("alert: bad webhook signature")
	}
	if tolerance > 0 {
		ts, err := strconv.ParseInt(timestamp, 10, 64)
		if err != nil {
			return errdefs.Invalid("alert: bad webhook timestamp %q", timestamp)
		}
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return errdefs.Invalid("alert: webhook timestamp is %s away from now", d.Round(time.Second))
		}
	}
	return nil
}

// Attempt is the outcome of one delivery attempt.
type Attempt struct {
	N          int       `json:"attempt"`
	Time       time.Time `json:"time"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	Duration   float64   `json:"duration_seconds"`
}

// Notification is one queued message: an event for one receiver (or for
// the hook, Type "hook" and Receiver "").
type Notification struct {
	ID          string    `json:"id"`
	EventID     string    `json:"event_id"`
	Receiver    string    `json:"receiver"`
	Type        string    `json:"type"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"max_attempts"`
	Error       string    `json:"error,omitempty"`
	Time        time.Time `json:"time"`
	NextTime    time.Time `json:"next_time,omitzero"`
	LastTime    time.Time `json:"last_time,omitzero"`
	History     []Attempt `json:"history,omitempty"`
}

type queuedNotification struct {
	id, eventID, receiver, typ, payload string
	attempts, max                       int
}

func (e *Engine) deliverLoop() {
	defer e.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stop
		cancel()
	}()
	sem := make(chan struct{}, e.workers)
	timer := time.NewTimer(0) // first pass at once: re-drive what is pending
	defer timer.Stop()
	for {
		select {
		case <-e.stop:
			for range e.workers {
				sem <- struct{}{} // wait for deliveries in flight
			}
			return
		case <-e.wake:
		case <-timer.C:
		}
		for {
			free := e.workers - len(sem)
			if free == 0 {
				break
			}
			claimed, err := e.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("alert delivery: claim notifications", "err", err)
				}
				break
			}
			for _, n := range claimed {
				sem <- struct{}{}
				go func() {
					defer func() { <-sem }()
					e.deliver(ctx, n)
					e.kick() // the next of its series may be due now
				}()
			}
			if len(claimed) < free {
				break
			}
		}
		next := e.poll
		if d, ok := e.nextDue(ctx); ok && d < next {
			next = d
		}
		timer.Reset(next)
	}
}

// nextDue is the time until the earliest pending notification is due and
// unleased. One that is due already but was not claimed waits behind an
// earlier notification of its series, whose completion wakes the loop; so
// does a new evaluation: the poll interval covers the rest.
func (e *Engine) nextDue(ctx context.Context) (time.Duration, bool) {
	var t sql.NullInt64
	if err := e.db.R.QueryRowContext(ctx, e.db.Rebind(`SELECT MIN(CASE WHEN lease_expires > next_time THEN lease_expires ELSE next_time END)
		FROM alert_notifications WHERE status = ?`), NotificationPending).Scan(&t); err != nil || !t.Valid {
		return 0, false
	}
	d := time.UnixMilli(t.Int64).Sub(e.now())
	return d, d > 0
}

// leaseFor is how long a claimed notification is ours.
const leaseFor = 2 * time.Minute

// claim leases up to n due notifications: pending, due, not leased by a
// live replica, and the oldest pending one of their receiver and series
// (so that a resolved notification never overtakes its firing one).
func (e *Engine) claim(ctx context.Context, n int) ([]queuedNotification, error) {
	now := ms(e.now())
	rows, err := e.db.R.QueryContext(ctx, e.db.Rebind(`SELECT notification_id FROM alert_notifications n
		WHERE n.status = ? AND n.next_time <= ? AND n.lease_expires <= ?
		AND NOT EXISTS (SELECT 1 FROM alert_notifications o WHERE o.receiver = n.receiver AND o.series = n.series
			AND o.status = ? AND o.notification_id < n.notification_id)
		ORDER BY n.next_time, n.notification_id LIMIT ?`), NotificationPending, now, now, NotificationPending, n)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []queuedNotification
	for _, id := range ids {
		res, err := e.db.W.ExecContext(ctx, e.db.Rebind(`UPDATE alert_notifications SET lease_owner = ?, lease_expires = ?
			WHERE notification_id = ? AND status = ? AND lease_expires <= ?`), e.owner, now+leaseFor.Milliseconds(), id, NotificationPending, now)
		if err != nil {
			return out, err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			continue // another replica took it
		}
		var q queuedNotification
		q.id = id
		if err := e.db.W.QueryRowContext(ctx, e.db.Rebind(`SELECT event_id, receiver, type, payload, attempts, max_attempts FROM alert_notifications WHERE notification_id = ?`), id).
			Scan(&q.eventID, &q.receiver, &q.typ, &q.payload, &q.attempts, &q.max); err != nil {
			return out, err
		}
		out = append(out, q)
	}
	return out, nil
}

// outcome of an attempt.
type outcome struct {
	status     int
	err        error
	retry      bool
	retryAfter time.Duration
}

func (e *Engine) deliver(ctx context.Context, n queuedNotification) {
	var a Alert
	attempt := n.attempts + 1
	start := e.now()
	var o outcome
	if err := json.Unmarshal([]byte(n.payload), &a); err != nil {
		o = outcome{err: fmt.Errorf("decode queued alert: %w", err)}
	} else if n.typ == TypeHook {
		o = e.callHook(ctx, a)
	} else {
		o = e.post(ctx, n, a)
	}
	if ctx.Err() != nil && o.err != nil {
		// Stopping: leave it pending for the next start, attempt not counted.
		e.releaseLease(n.id)
		return
	}
	elapsed := e.now().Sub(start)
	status := NotificationDelivered
	metricOutcome := "success"
	errText := ""
	next := time.Time{}
	if o.err != nil {
		errText = o.err.Error()
		if o.retry && attempt < n.max {
			status, metricOutcome = NotificationPending, "retry"
			next = e.now().Add(e.backoff(attempt, o.retryAfter))
		} else {
			status, metricOutcome = NotificationFailed, "failure"
		}
	}
	receiverLabel := n.receiver
	if n.typ == TypeHook {
		receiverLabel = TypeHook
	}
	e.m.notifications.WithLabelValues(receiverLabel, n.typ, metricOutcome).Inc()
	e.m.duration.WithLabelValues(n.typ).Observe(elapsed.Seconds())
	if err := e.record(n, attempt, o, errText, status, next, start, elapsed); err != nil {
		e.log.Warn("alert delivery: record attempt", "notification", n.id, "err", err)
	}
	log := e.log.With("notification", n.id, "event", n.eventID, "receiver", n.receiver, "type", n.typ, "attempt", attempt)
	switch status {
	case NotificationDelivered:
		log.Debug("alert notification delivered")
	case NotificationPending:
		log.Warn("alert notification failed; will retry", "err", errText, "next", next)
	default:
		log.Error("alert notification failed", "err", errText)
	}
}

// backoff is RetryBase·2^(attempt-1), at most RetryMax, jittered to
// 50–100%; a Retry-After of a 429 or 503 raises it (up to RetryMax).
func (e *Engine) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := e.retryBase
	for i := 1; i < attempt && d < e.retryMax; i++ {
		d *= 2
	}
	d = min(d, e.retryMax)
	d = time.Duration(float64(d) * (0.5 + 0.5*rand.Float64()))
	if retryAfter > d {
		d = min(retryAfter, e.retryMax)
	}
	return d
}

func (e *Engine) releaseLease(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.db.W.ExecContext(ctx, e.db.Rebind(`UPDATE alert_notifications SET lease_owner = '', lease_expires = 0 WHERE notification_id = ? AND lease_owner = ?`), id, e.owner)
}

func (e *Engine) record(n queuedNotification, attempt int, o outcome, errText, status string, next, start time.Time, elapsed time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, e.db.Rebind(`INSERT INTO alert_notification_attempts (notification_id, attempt, time, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)`+
			` ON CONFLICT (notification_id, attempt) DO NOTHING`),
			n.id, attempt, ms(start), o.status, errText, float64(elapsed.Microseconds())/1000); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, e.db.Rebind(`UPDATE alert_notifications SET attempts = ?, status = ?, error = ?, next_time = ?, last_time = ?, lease_owner = '', lease_expires = 0
			WHERE notification_id = ?`), attempt, status, errText, ms(next), ms(start), n.id); err != nil {
			return err
		}
		if n.typ == TypeHook {
			return e.recordHookTx(ctx, tx, n.eventID, errText)
		}
		return nil
	})
}

// recordHookTx writes the hook's outcome into the firing event's detail
// (the only change ever made to an event row).
func (e *Engine) recordHookTx(ctx context.Context, tx *sql.Tx, eventID, errText string) error {
	var raw string
	if err := tx.QueryRowContext(ctx, e.db.Rebind(`SELECT detail FROM alert_events WHERE event_id = ?`), eventID).Scan(&raw); err != nil {
		return err
	}
	detail := map[string]any{}
	json.Unmarshal([]byte(raw), &detail)
	if errText != "" {
		detail["hook"] = map[string]any{"error": errText}
	} else {
		detail["hook"] = map[string]any{"ok": true}
	}
	b, _ := json.Marshal(detail)
	_, err := tx.ExecContext(ctx, e.db.Rebind(`UPDATE alert_events SET detail = ? WHERE event_id = ?`), string(b), eventID)
	return err
}

func (e *Engine) callHook(ctx context.Context, a Alert) (o outcome) {
	if e.hook == nil {
		return outcome{err: errors.New("no hook configured on this engine")}
	}
	ctx, cancel := context.WithTimeout(ctx, e.hookTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			o = outcome{err: fmt.Errorf("hook panicked: %v", p)}
		}
	}()
	if err := e.hook.AlertFiring(ctx, a); err != nil {
		return outcome{err: err}
	}
	return outcome{}
}

// post sends one attempt to a receiver: 2xx is delivered; 429, 5xx and
// network errors are retried; other statuses are not.
func (e *Engine) post(ctx context.Context, n queuedNotification, a Alert) outcome {
	r, err := e.GetReceiver(ctx, n.receiver)
	if errors.Is(err, errdefs.ErrNotFound) {
		return outcome{err: fmt.Errorf("receiver %q no longer exists", n.receiver)}
	}
	if err != nil {
		return outcome{err: err, retry: true}
	}
	body, err := e.Payload(r, a)
	if err != nil {
		return outcome{err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kiln-alerts")
	if r.Type == TypeWebhook {
		ts := strconv.FormatInt(e.now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderDelivery, n.id)
		if r.Secret != "" {
			req.Header.Set(HeaderSignature, Sign(r.Secret, ts, body))
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// The URL is left out: a Slack webhook URL is itself a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return outcome{err: fmt.Errorf("post to %s: %w", r.Name, err), retry: true}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return outcome{status: resp.StatusCode}
	}
	o := outcome{status: resp.StatusCode, err: fmt.Errorf("%s answered %s: %s", r.Name, resp.Status, strings.TrimSpace(string(msg)))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		o.retry = true
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			o.retryAfter = time.Duration(s) * time.Second
		}
	}
	return o
}
