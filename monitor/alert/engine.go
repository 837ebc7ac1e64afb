package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Defaults of EngineOptions.
const (
	DefaultRetryBase   = time.Second
	DefaultRetryMax    = 5 * time.Minute
	DefaultPoll        = 5 * time.Second
	DefaultWorkers     = 4
	DefaultHookTimeout = 30 * time.Second
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	DB *store.DB
	// Hook is called once per transition to firing (nil: none).
	Hook       Hook
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Client posts notifications; the default follows no redirects.
	Client *http.Client
	// Now is the clock of the delivery queue and of receiver times
	// (default time.Now); evaluations use their own "at".
	Now func() time.Time
	// ExternalURL is Kiln's public URL, for externalURL and generatorURL
	// in payloads ("" leaves them empty).
	ExternalURL string
	// Owner names this replica in delivery leases (host and pid when empty).
	Owner string
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts (defaults 1s and 5m); each delay is jittered to 50–100%.
	RetryBase, RetryMax time.Duration
	// Poll is how often the queue is checked for due deliveries, besides
	// the wake-up after each evaluation (default 5s).
	Poll time.Duration
	// Workers is the number of concurrent deliveries (default 4).
	Workers int
	// HookTimeout bounds one Hook call (default 30s).
	HookTimeout time.Duration
	// NoDelivery leaves the queue alone (for tools that only evaluate or
	// query); notifications stay pending for another engine to send.
	NoDelivery bool
}

// Engine evaluates rules, keeps alert states and history, and delivers
// notifications. NewEngine starts its delivery loop, which first re-drives
// the notifications that a previous process left pending; Close stops it.
type Engine struct {
	db          *store.DB
	hook        Hook
	log         *slog.Logger
	client      *http.Client
	now         func() time.Time
	externalURL string
	owner       string
	retryBase   time.Duration
	retryMax    time.Duration
	poll        time.Duration
	workers     int
	hookTimeout time.Duration
	m           *metrics

	wake    chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
	closing sync.Once
}

// NewEngine returns an engine and starts its delivery loop.
func NewEngine(opts EngineOptions) *Engine {
	e := &Engine{
		db: opts.DB, hook: opts.Hook, log: opts.Logger, client: opts.Client, now: opts.Now,
		externalURL: strings.TrimRight(opts.ExternalURL, "/"), owner: opts.Owner,
		retryBase: opts.RetryBase, retryMax: opts.RetryMax, poll: opts.Poll, workers: opts.Workers,
		hookTimeout: opts.HookTimeout,
		wake:        make(chan struct{}, 1), stop: make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("component", "alert")
	if e.client == nil {
		e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.owner == "" {
		host, _ := os.Hostname()
		e.owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + store.NewID()[20:]
	}
	if e.retryBase <= 0 {
		e.retryBase = DefaultRetryBase
	}
	if e.retryMax <= 0 {
		e.retryMax = DefaultRetryMax
	}
	if e.poll <= 0 {
		e.poll = DefaultPoll
	}
	if e.workers <= 0 {
		e.workers = DefaultWorkers
	}
	if e.hookTimeout <= 0 {
		e.hookTimeout = DefaultHookTimeout
	}
	e.m = newMetrics(e, opts.Registerer)
	if !opts.NoDelivery {
		e.done.Add(1)
		go e.deliverLoop()
	}
	return e
}

// Close stops the delivery loop and waits for deliveries in flight.
// Notifications not yet delivered stay pending in the database.
func (e *Engine) Close() {
	e.closing.Do(func() { close(e.stop) })
	e.done.Wait()
}

func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// ms and unms convert times to the integer milliseconds stored.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func unms(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func dbValue(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

func fromDB(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}

type stateRow struct {
	State
	dirty bool
}

type compiledRule struct {
	rule  *Rule
	expr  *Expr
	tmpls map[string]*template.Template
}

// templateData is what annotation templates see.
type templateData struct {
	Value    float64
	Labels   map[string]string
	Rule     string
	Monitor  string
	Severity string
	Expr     string
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=zero").Parse(text)
}

// render renders annotations; a template that fails keeps its source text
// and the error is returned in errs (the alert is not lost).
func (c *compiledRule) render(monitor string, labels map[string]string, v float64) (map[string]string, map[string]string) {
	out := make(map[string]string, len(c.tmpls))
	var errs map[string]string
	data := templateData{Value: v, Labels: labels, Rule: c.rule.Name, Monitor: monitor, Severity: c.rule.severity(), Expr: c.rule.Expr}
	for k, t := range c.tmpls {
		var b strings.Builder
		if err := t.Execute(&limitedWriter{w: &b, n: 16 << 10}, data); err != nil {
			if errs == nil {
				errs = map[string]string{}
			}
			errs[k] = err.Error()
			out[k] = c.rule.Annotations[k]
			continue
		}
		out[k] = b.String()
	}
	return out, errs
}

type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("annotation longer than 16 KiB")
	}
	l.n -= len(p)
	return l.w.WriteString(string(p))
}

// alertLabels is the label set of an alert: the series' labels, then the
// rule's labels (which win, as in Prometheus), then alertname, monitor and
// severity.
func alertLabels(monitor string, r *Rule, series map[string]string) map[string]string {
	out := make(map[string]string, len(series)+len(r.Labels)+3)
	maps.Copy(out, series)
	maps.Copy(out, r.Labels)
	out[LabelAlertName] = r.Name
	out[LabelMonitor] = monitor
	out[LabelSeverity] = r.severity()
	return out
}

type pendingEvent struct {
	tr       Transition
	severity string
	detail   map[string]any
	st       *State
	rule     *compiledRule // nil when the rule was removed
}

// Evaluate runs the monitor's rules over one evaluation's samples at time
// at (zero: now) and returns the state changes it made. For each rule and each series
// the expression selects: a true condition makes the alert pending
// (active since at), then firing once it has held for the rule's For (at
// once when For is 0); a false condition resolves a firing alert and makes
// a pending one inactive. An alert whose series is missing from samples is
// treated as false at the first evaluation that misses it; so are the
// alerts of a rule no longer in rules. Every change is appended to the
// history and queues the rule's notifications in the same transaction.
//
// Evaluate is idempotent for the same at (an alert already evaluated at
// or after at is left alone), and evaluations of one monitor by several
// replicas are serialised by the database.
func (e *Engine) Evaluate(ctx context.Context, monitor string, rules []Rule, samples []Sample, at time.Time) ([]Transition, error) {
	if monitor == "" {
		return nil, errdefs.Invalid("alert: evaluate needs a monitor name")
	}
	if err := ValidateRules(rules); err != nil {
		return nil, err
	}
	if at.IsZero() {
		at = e.now()
	}
	at = at.UTC().Truncate(time.Millisecond)
	compiled := make(map[string]*compiledRule, len(rules))
	type seriesResult struct {
		rule   *compiledRule
		labels map[string]string
		fp     string
		res    Result
	}
	var results []seriesResult
	receiverNames := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		x, _ := ParseExpr(r.Expr) // validated above
		c := &compiledRule{rule: r, expr: x, tmpls: map[string]*template.Template{}}
		for k, v := range r.Annotations {
			c.tmpls[k], _ = parseTemplate(k, v)
		}
		compiled[r.Name] = c
		for _, n := range r.Receivers {
			receiverNames[n] = true
		}
		for _, res := range x.Eval(samples) {
			l := alertLabels(monitor, r, res.Labels)
			results = append(results, seriesResult{rule: c, labels: l, fp: Fingerprint(l), res: res})
		}
	}

	var events []pendingEvent
	err := e.db.Tx(ctx, func(tx store.Tx) error {
		events = events[:0]
		if e.db.Dialect == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "kiln.alert/"+monitor); err != nil {
				return fmt.Errorf("alert: lock monitor %s: %w", monitor, err)
			}
		}
		states, err := loadStatesTx(ctx, e.db, tx, monitor)
		if err != nil {
			return err
		}
		receivers, err := receiversTx(ctx, e.db, tx, receiverNames)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, sr := range results {
			key := sr.rule.rule.Name + "\x00" + sr.fp
			if seen[key] {
				continue
			}
			seen[key] = true
			row := states[key]
			if row != nil && !row.LastEval.Before(at) {
				continue // already evaluated at this time or later
			}
			if row == nil {
				if !sr.res.True {
					continue // an alert that never held: no row
				}
				row = &stateRow{State: State{Monitor: monitor, Rule: sr.rule.rule.Name, Fingerprint: sr.fp, State: StateInactive}}
				states[key] = row
			}
			row.dirty = true
			row.Labels = sr.labels
			row.Severity = sr.rule.rule.severity()
			row.Value = sr.res.Value
			row.LastEval = at
			from := row.State.State
			var renderErrs map[string]string
			if sr.res.True || from == StatePending || from == StateFiring {
				row.Annotations, renderErrs = sr.rule.render(monitor, sr.labels, sr.res.Value)
			}
			to := from
			switch {
			case sr.res.True && (from == StateInactive || from == StateResolved):
				row.ActiveSince, row.FiredAt, row.ResolvedAt = at, time.Time{}, time.Time{}
				to = StatePending
				if sr.rule.rule.For <= 0 {
					to = StateFiring
					row.FiredAt = at
				}
			case sr.res.True && from == StatePending:
				if at.Sub(row.ActiveSince) >= sr.rule.rule.For.D() {
					to = StateFiring
					row.FiredAt = at
				}
			case !sr.res.True && from == StatePending:
				to = StateInactive
			case !sr.res.True && from == StateFiring:
				to = StateResolved
				row.ResolvedAt = at
			}
			if to != from {
				row.State.State = to
				detail := map[string]any{"reason": "condition"}
				if len(renderErrs) > 0 {
					detail["render_errors"] = renderErrs
				}
				events = append(events, e.newEvent(monitor, &row.State, from, sr.rule, detail))
			}
		}
		// Alerts whose series (or rule) is gone.
		keys := make([]string, 0, len(states))
		for k := range states {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			row := states[key]
			if seen[key] || !row.LastEval.Before(at) {
				continue
			}
			c := compiled[row.Rule]
			reason := "missing"
			if c == nil {
				reason = "rule removed"
			}
			from := row.State.State
			to := from
			switch from {
			case StatePending:
				to = StateInactive
			case StateFiring:
				to = StateResolved
				row.ResolvedAt = at
			default:
				continue // inactive and resolved alerts stay as they are
			}
			row.dirty = true
			row.LastEval = at
			row.State.State = to
			events = append(events, e.newEvent(monitor, &row.State, from, c, map[string]any{"reason": reason}))
		}
		for _, row := range states {
			if row.dirty {
				if err := saveStateTx(ctx, e.db, tx, &row.State); err != nil {
					return err
				}
			}
		}
		for i := range events {
			if err := e.insertEventTx(ctx, tx, &events[i], receivers); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Transition, len(events))
	notify := false
	for i, ev := range events {
		out[i] = ev.tr
		e.m.transitions.WithLabelValues(ev.tr.To).Inc()
		if ev.tr.To == StateFiring || ev.tr.To == StateResolved {
			notify = true
		}
		e.log.Info("alert "+ev.tr.To, "monitor", monitor, "rule", ev.tr.Rule, "fingerprint", ev.tr.Fingerprint, "from", ev.tr.From, "value", ev.tr.Value)
	}
	if notify {
		e.kick()
	}
	return out, nil
}

func (e *Engine) newEvent(monitor string, st *State, from string, c *compiledRule, detail map[string]any) pendingEvent {
	if len(st.Annotations) > 0 {
		detail["annotations"] = st.Annotations
	}
	cp := *st
	return pendingEvent{
		tr: Transition{EventID: store.NewID(), Monitor: monitor, Rule: st.Rule, Fingerprint: st.Fingerprint,
			Labels: st.Labels, From: from, To: st.State, Value: st.Value, At: st.LastEval},
		severity: st.Severity, detail: detail, st: &cp, rule: c,
	}
}

func (e *Engine) generatorURL(monitor string) string {
	if e.externalURL == "" {
		return ""
	}
	return e.externalURL + "/api/v1/monitors/" + url.PathEscape(monitor)
}

// insertEventTx appends the event and queues its notifications: the
// rule's receivers on firing and (unless send_resolved is false) on
// resolved, and the hook on firing.
func (e *Engine) insertEventTx(ctx context.Context, tx store.Tx, ev *pendingEvent, receivers map[string]Receiver) error {
	type queued struct {
		receiver, typ string
		max           int
	}
	var queue []queued
	if ev.rule != nil && (ev.tr.To == StateFiring || ev.tr.To == StateResolved) {
		var missing []string
		for _, name := range ev.rule.rule.Receivers {
			r, ok := receivers[name]
			if !ok {
				missing = append(missing, name)
				continue
			}
			if ev.tr.To == StateResolved && !r.sendResolved() {
				continue
			}
			queue = append(queue, queued{name, r.Type, r.maxAttempts()})
		}
		if len(missing) > 0 {
			ev.detail["missing_receivers"] = missing
			e.log.Warn("alert rule names receivers that do not exist", "monitor", ev.tr.Monitor, "rule", ev.tr.Rule, "receivers", missing)
		}
		if ev.tr.To == StateFiring && e.hook != nil {
			queue = append(queue, queued{"", TypeHook, 1})
			ev.detail["hook"] = map[string]any{"pending": true}
		}
	}
	labels, _ := json.Marshal(ev.tr.Labels)
	detail, err := json.Marshal(ev.detail)
	if err != nil {
		return fmt.Errorf("alert: encode event detail: %w", err)
	}
	if _, err := tx.ExecContext(ctx, e.db.Rebind(`INSERT INTO alert_events (event_id, monitor, rule, fingerprint, labels, from_state, state, value, time, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		ev.tr.EventID, ev.tr.Monitor, ev.tr.Rule, ev.tr.Fingerprint, string(labels), ev.tr.From, ev.tr.To, dbValue(ev.tr.Value), ms(ev.tr.At), string(detail)); err != nil {
		return fmt.Errorf("alert: append event: %w", err)
	}
	if len(queue) == 0 {
		return nil
	}
	a := Alert{
		EventID: ev.tr.EventID, Monitor: ev.tr.Monitor, Rule: ev.tr.Rule, Fingerprint: ev.tr.Fingerprint,
		Status: ev.tr.To, Severity: ev.severity, Labels: ev.tr.Labels, Annotations: ev.st.Annotations,
		Value: ev.tr.Value, Expr: ev.rule.rule.Expr, ActiveSince: ev.st.ActiveSince, StartsAt: ev.st.FiredAt,
		EndsAt: ev.st.ResolvedAt, GeneratorURL: e.generatorURL(ev.tr.Monitor), Trigger: ev.rule.rule.Trigger,
	}
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("alert: encode alert: %w", err)
	}
	now := ms(e.now())
	series := strconv.Itoa(len(ev.tr.Monitor)) + ":" + ev.tr.Monitor + "/" + ev.tr.Rule + "/" + ev.tr.Fingerprint
	for _, q := range queue {
		if _, err := tx.ExecContext(ctx, e.db.Rebind(`INSERT INTO alert_notifications (notification_id, event_id, receiver, type, series, payload, attempts, max_attempts, status, time, next_time)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`),
			store.NewID(), ev.tr.EventID, q.receiver, q.typ, series, string(payload), q.max, NotificationPending, now, now); err != nil {
			return fmt.Errorf("alert: queue notification: %w", err)
		}
	}
	return nil
}

const stateColumns = `monitor, rule, fingerprint, labels, annotations, severity, state, value, active_since, fired_time, resolved_time, last_eval_time`

func scanState(row interface{ Scan(...any) error }) (State, error) {
	var s State
	var labels, ann string
	var v sql.NullFloat64
	var as, ft, rt, le int64
	if err := row.Scan(&s.Monitor, &s.Rule, &s.Fingerprint, &labels, &ann, &s.Severity, &s.State, &v, &as, &ft, &rt, &le); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(labels), &s.Labels); err != nil {
		return s, fmt.Errorf("alert: decode labels: %w", err)
	}
	if err := json.Unmarshal([]byte(ann), &s.Annotations); err != nil {
		return s, fmt.Errorf("alert: decode annotations: %w", err)
	}
	s.Value = fromDB(v)
	s.ActiveSince, s.FiredAt, s.ResolvedAt, s.LastEval = unms(as), unms(ft), unms(rt), unms(le)
	return s, nil
}

func loadStatesTx(ctx context.Context, db *store.DB, tx store.Tx, monitor string) (map[string]*stateRow, error) {
	q := `SELECT ` + stateColumns + ` FROM alert_states WHERE monitor = ?`
	if db.Dialect == store.Postgres {
		q += ` FOR UPDATE`
	}
	rows, err := tx.QueryContext(ctx, db.Rebind(q), monitor)
	if err != nil {
		return nil, fmt.Errorf("alert: load states of %s: %w", monitor, err)
	}
	defer rows.Close()
	out := map[string]*stateRow{}
	for rows.Next() {
		s, err := scanState(rows)
		if err != nil {
			return nil, err
		}
		out[s.Rule+"\x00"+s.Fingerprint] = &stateRow{State: s}
	}
	return out, rows.Err()
}

func saveStateTx(ctx context.Context, db *store.DB, tx store.Tx, s *State) error {
	labels, _ := json.Marshal(s.Labels)
	ann := []byte("{}")
	if len(s.Annotations) > 0 {
		ann, _ = json.Marshal(s.Annotations)
	}
	q := db.Rebind(`INSERT INTO alert_states (` + stateColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)` +
		store.Upsert([]string{"monitor", "rule", "fingerprint"}, "labels", "annotations", "severity", "state", "value", "active_since", "fired_time", "resolved_time", "last_eval_time"))
	if _, err := tx.ExecContext(ctx, q, s.Monitor, s.Rule, s.Fingerprint, string(labels), string(ann), s.Severity, s.State,
		dbValue(s.Value), ms(s.ActiveSince), ms(s.FiredAt), ms(s.ResolvedAt), ms(s.LastEval)); err != nil {
		return fmt.Errorf("alert: save state: %w", err)
	}
	return nil
}
