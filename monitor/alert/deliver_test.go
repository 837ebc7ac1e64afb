package alert

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

type request struct {
	header http.Header
	body   []byte
}

// sink is an httptest receiver that answers with the given statuses in
// turn (200 once they run out) and records every request.
type sink struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	reqs     []request
}

func newSink(t *testing.T, statuses ...int) *sink {
	s := &sink{statuses: statuses}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, request{r.Header.Clone(), b})
		code := http.StatusOK
		if len(s.statuses) > 0 {
			code, s.statuses = s.statuses[0], s.statuses[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// settled waits (up to 20s) until no notification of the event is pending.
func settled(t *testing.T, e *Engine, eventID string) []Notification {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ns, err := e.Notifications(context.Background(), eventID)
		if err != nil {
			t.Fatal(err)
		}
		done := len(ns) > 0
		for _, n := range ns {
			if n.Status == NotificationPending {
				done = false
			}
		}
		if done {
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications of %s still pending: %+v", eventID, ns)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func firingThenResolved(t *testing.T, e *Engine, rule Rule) (fired, resolved Transition) {
	t.Helper()
	ctx := context.Background()
	trs, err := e.Evaluate(ctx, "m", []Rule{rule}, []Sample{sample("error_rate", 0.5)}, t0)
	if err != nil || len(trs) != 1 || trs[0].To != StateFiring {
		t.Fatalf("fire: %v %v", trs, err)
	}
	fired = trs[0]
	trs, err = e.Evaluate(ctx, "m", []Rule{rule}, []Sample{sample("error_rate", 0.01)}, t0.Add(time.Minute))
	if err != nil || len(trs) != 1 || trs[0].To != StateResolved {
		t.Fatalf("resolve: %v %v", trs, err)
	}
	return fired, trs[0]
}

func TestWebhookDelivery(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			e := newEngine(t, db, EngineOptions{ExternalURL: "https://kiln.example.com/"})
			ctx := context.Background()
			s := newSink(t)
			if _, err := e.PutReceiver(ctx, Receiver{Name: "ops", Type: TypeWebhook, URL: s.srv.URL, Secret: "s3cret", Headers: map[string]string{"Authorization": "Bearer x"}}); err != nil {
				t.Fatal(err)
			}
			rule := Rule{Name: "errors", Expr: "error_rate > 0.1", Severity: "critical", Receivers: []string{"ops"},
				Annotations: map[string]string{"summary": "error rate {{ .Value }}"}}
			fired, resolved := firingThenResolved(t, e, rule)
			nf := settled(t, e, fired.EventID)
			nr := settled(t, e, resolved.EventID)
			if len(nf) != 1 || nf[0].Status != NotificationDelivered || nf[0].Attempts != 1 || len(nf[0].History) != 1 || nf[0].History[0].StatusCode != 200 {
				t.Fatalf("firing notification %+v", nf)
			}
			if len(nr) != 1 || nr[0].Status != NotificationDelivered {
				t.Fatalf("resolved notification %+v", nr)
			}
			reqs := s.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			for i, r := range reqs {
				sig, ts := r.header.Get(HeaderSignature), r.header.Get(HeaderTimestamp)
				if err := Verify("s3cret", sig, ts, r.body, time.Now(), 5*time.Minute); err != nil {
					t.Fatalf("request %d: %v (signature %q)", i, err, sig)
				}
				if err := Verify("other", sig, ts, r.body, time.Now(), 0); err == nil {
					t.Fatal("a wrong secret verified")
				}
				if err := Verify("s3cret", sig, ts, append(r.body, ' '), time.Now(), 0); err == nil {
					t.Fatal("a changed body verified")
				}
				if r.header.Get("Authorization") != "Bearer x" || r.header.Get("Content-Type") != "application/json" || r.header.Get(HeaderDelivery) == "" {
					t.Fatalf("headers %v", r.header)
				}
			}
			// Firing first, then resolved (a series' notifications keep their order).
			var p [2]WebhookPayload
			for i := range p {
				if err := json.Unmarshal(reqs[i].body, &p[i]); err != nil {
					t.Fatal(err)
				}
			}
			if p[0].Version != "1" || p[0].Status != StateFiring || p[1].Status != StateResolved || p[0].Receiver != "ops" || p[0].Monitor != "m" || p[0].Rule != "errors" {
				t.Fatalf("payloads %+v", p)
			}
			a := p[0].Alerts[0]
			if len(p[0].Alerts) != 1 || a.Value != 0.5 || a.Labels["endpoint"] != "e" || a.Labels[LabelSeverity] != "critical" || a.Annotations["summary"] != "error rate 0.5" ||
				!a.StartsAt.Equal(t0) || !a.EndsAt.IsZero() || a.Fingerprint != fired.Fingerprint || a.GeneratorURL != "https://kiln.example.com/api/v1/monitors/m" || a.EventID != fired.EventID {
				t.Fatalf("firing alert %+v", a)
			}
			if r := p[1].Alerts[0]; !r.EndsAt.Equal(t0.Add(time.Minute)) || r.Value != 0.01 {
				t.Fatalf("resolved alert %+v", r)
			}
		})
	}
}

func TestPayloadShapes(t *testing.T) {
	e := &Engine{externalURL: "https://kiln.example.com"}
	a := Alert{EventID: "E1", Monitor: "fraud", Rule: "drift", Fingerprint: "0123456789abcdef", Status: StateFiring, Severity: SeverityCritical,
		Labels: l("alertname", "drift", "monitor", "fraud", "severity", "critical", "feature", "age<1>"), Annotations: map[string]string{"summary": "age drifted"},
		Value: 0.42, StartsAt: t0, GeneratorURL: "https://kiln.example.com/api/v1/monitors/fraud"}

	b, err := e.Payload(Receiver{Name: "am", Type: TypeAlertmanager}, a)
	if err != nil {
		t.Fatal(err)
	}
	var am map[string]any
	json.Unmarshal(b, &am)
	for _, k := range []string{"version", "groupKey", "truncatedAlerts", "receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL"} {
		if _, ok := am[k]; !ok {
			t.Errorf("alertmanager payload has no %s: %s", k, b)
		}
	}
	if am["version"] != "4" || am["groupKey"] != `{}:{alertname="drift", monitor="fraud"}` || am["status"] != "firing" || am["receiver"] != "am" || am["externalURL"] != "https://kiln.example.com" {
		t.Fatalf("alertmanager payload %s", b)
	}
	al := am["alerts"].([]any)[0].(map[string]any)
	for _, k := range []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"} {
		if _, ok := al[k]; !ok {
			t.Errorf("alertmanager alert has no %s", k)
		}
	}
	if al["startsAt"] != "2026-03-01T12:00:00Z" || al["endsAt"] != "0001-01-01T00:00:00Z" || al["fingerprint"] != "0123456789abcdef" {
		t.Fatalf("alertmanager alert %v", al)
	}

	b, err = e.Payload(Receiver{Name: "slack", Type: TypeSlack}, a)
	if err != nil {
		t.Fatal(err)
	}
	var sl SlackPayload
	json.Unmarshal(b, &sl)
	if sl.Text != "[FIRING] drift on monitor fraud (critical)" || len(sl.Blocks) != 1 || sl.Blocks[0].Type != "section" || sl.Blocks[0].Text.Type != "mrkdwn" ||
		!strings.Contains(sl.Blocks[0].Text.Text, "age drifted") || !strings.Contains(sl.Blocks[0].Text.Text, "`feature=age&lt;1&gt;`") ||
		len(sl.Attachments) != 1 || sl.Attachments[0].Color != "danger" {
		t.Fatalf("slack payload %s", b)
	}
	for _, c := range []struct {
		status, severity, color string
	}{{StateFiring, SeverityWarning, "warning"}, {StateFiring, SeverityInfo, "#439FE0"}, {StateResolved, SeverityCritical, "good"}} {
		a.Status, a.Severity = c.status, c.severity
		if got := slackPayload(a).Attachments[0].Color; got != c.color {
			t.Errorf("color of %s %s = %s, want %s", c.status, c.severity, got, c.color)
		}
	}
	// A non-finite value is still a valid JSON payload.
	a.Value = nanValue()
	for _, typ := range []string{TypeWebhook, TypeSlack, TypeAlertmanager} {
		b, err := e.Payload(Receiver{Name: "x", Type: typ}, a)
		if err != nil || !json.Valid(b) {
			t.Fatalf("%s payload of NaN: %v %s", typ, err, b)
		}
	}
}

func TestSlackAndAlertmanagerDelivery(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	e := newEngine(t, db, EngineOptions{})
	ctx := context.Background()
	slack, am := newSink(t), newSink(t)
	f := false
	e.PutReceiver(ctx, Receiver{Name: "slack", Type: TypeSlack, URL: slack.srv.URL, SendResolved: &f})
	e.PutReceiver(ctx, Receiver{Name: "am", Type: TypeAlertmanager, URL: am.srv.URL})
	fired, resolved := firingThenResolved(t, e, Rule{Name: "errors", Expr: "error_rate > 0.1", Receivers: []string{"slack", "am", "nobody"}})
	if ns := settled(t, e, fired.EventID); len(ns) != 2 {
		t.Fatalf("firing notifications %+v", ns)
	}
	if ns := settled(t, e, resolved.EventID); len(ns) != 1 || ns[0].Receiver != "am" {
		t.Fatalf("resolved notifications (slack has send_resolved: false) %+v", ns)
	}
	if len(slack.requests()) != 1 || len(am.requests()) != 2 {
		t.Fatalf("slack got %d, alertmanager %d requests", len(slack.requests()), len(am.requests()))
	}
	if r := slack.requests()[0]; r.header.Get(HeaderSignature) != "" || !json.Valid(r.body) {
		t.Fatalf("slack request %v %s", r.header, r.body)
	}
	var p AlertmanagerPayload
	json.Unmarshal(am.requests()[1].body, &p)
	if p.Status != StateResolved || p.Alerts[0].Status != StateResolved || !p.Alerts[0].EndsAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("alertmanager resolved payload %+v", p)
	}
	evs, _ := e.History(ctx, HistoryQuery{Limit: 1})
	if m, _ := evs[0].Detail["missing_receivers"].([]any); len(m) != 1 || m[0] != "nobody" {
		t.Fatalf("missing receivers not recorded: %+v", evs[0].Detail)
	}
}

func TestRetries(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			reg := prometheus.NewRegistry()
			e := newEngine(t, db, EngineOptions{Registerer: reg})
			ctx := context.Background()
			flaky, bad, down := newSink(t, 503, 429), newSink(t, 400), newSink(t, 500, 500, 500, 500)
			e.PutReceiver(ctx, Receiver{Name: "flaky", Type: TypeWebhook, URL: flaky.srv.URL})
			e.PutReceiver(ctx, Receiver{Name: "bad", Type: TypeWebhook, URL: bad.srv.URL})
			e.PutReceiver(ctx, Receiver{Name: "down", Type: TypeWebhook, URL: down.srv.URL, MaxAttempts: 3})
			trs, err := e.Evaluate(ctx, "m", []Rule{{Name: "r", Expr: "error_rate > 0.1", Receivers: []string{"flaky", "bad", "down"}}}, []Sample{sample("error_rate", 1)}, t0)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]Notification{}
			for _, n := range settled(t, e, trs[0].EventID) {
				byName[n.Receiver] = n
			}
			codes := func(n Notification) (out []int) {
				for _, a := range n.History {
					out = append(out, a.StatusCode)
				}
				return out
			}
			if n := byName["flaky"]; n.Status != NotificationDelivered || n.Attempts != 3 || len(n.History) != 3 || codes(n)[0] != 503 || codes(n)[1] != 429 || codes(n)[2] != 200 || n.Error != "" {
				t.Fatalf("flaky: %+v", n)
			}
			if len(flaky.requests()) != 3 {
				t.Fatalf("flaky got %d requests", len(flaky.requests()))
			}
			// The same delivery id on every attempt (receivers can dedupe).
			if ids := flaky.requests(); ids[0].header.Get(HeaderDelivery) != ids[2].header.Get(HeaderDelivery) {
				t.Fatal("delivery id changed between attempts")
			}
			if n := byName["bad"]; n.Status != NotificationFailed || n.Attempts != 1 || !strings.Contains(n.Error, "400") || len(bad.requests()) != 1 {
				t.Fatalf("bad (400 is not retried): %+v, %d requests", n, len(bad.requests()))
			}
			if n := byName["down"]; n.Status != NotificationFailed || n.Attempts != 3 || len(down.requests()) != 3 {
				t.Fatalf("down (max 3 attempts): %+v, %d requests", n, len(down.requests()))
			}
			for _, c := range []struct {
				receiver, outcome string
				want              float64
			}{{"flaky", "retry", 2}, {"flaky", "success", 1}, {"bad", "failure", 1}, {"down", "retry", 2}, {"down", "failure", 1}} {
				if got := testutil.ToFloat64(e.m.notifications.WithLabelValues(c.receiver, TypeWebhook, c.outcome)); got != c.want {
					t.Errorf("kiln_alert_notifications_total{receiver=%s,outcome=%s} = %v, want %v", c.receiver, c.outcome, got, c.want)
				}
			}
			if n, err := testutil.GatherAndCount(reg, "kiln_alert_notification_duration_seconds"); err != nil || n != 1 {
				t.Fatalf("duration histogram: %d %v", n, err)
			}
		})
	}
}

// TestNetworkErrorRetried: a receiver that cannot be reached is retried.
func TestNetworkErrorRetried(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	e := newEngine(t, db, EngineOptions{})
	ctx := context.Background()
	gone := httptest.NewServer(http.NotFoundHandler())
	url := gone.URL
	gone.Close()
	e.PutReceiver(ctx, Receiver{Name: "gone", Type: TypeWebhook, URL: url, MaxAttempts: 2})
	trs, _ := e.Evaluate(ctx, "m", []Rule{{Name: "r", Expr: "error_rate > 0.1", Receivers: []string{"gone"}}}, []Sample{sample("error_rate", 1)}, t0)
	ns := settled(t, e, trs[0].EventID)
	if ns[0].Status != NotificationFailed || ns[0].Attempts != 2 || ns[0].History[0].StatusCode != 0 || ns[0].History[0].Error == "" || strings.Contains(ns[0].Error, url) {
		t.Fatalf("unreachable receiver: %+v", ns[0])
	}
}

// TestRestartRedrives: a notification queued by an engine that stopped
// before sending it is sent by the next one.
func TestRestartRedrives(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			s := newSink(t)
			first := NewEngine(EngineOptions{DB: db, NoDelivery: true, Logger: slog.New(slog.DiscardHandler)})
			first.PutReceiver(ctx, Receiver{Name: "ops", Type: TypeWebhook, URL: s.srv.URL, Secret: "k"})
			trs, err := first.Evaluate(ctx, "m", []Rule{{Name: "r", Expr: "error_rate > 0.1", Receivers: []string{"ops"}}}, []Sample{sample("error_rate", 1)}, t0)
			if err != nil {
				t.Fatal(err)
			}
			first.Close()
			ns, _ := first.Notifications(ctx, trs[0].EventID)
			if len(ns) != 1 || ns[0].Status != NotificationPending || len(s.requests()) != 0 {
				t.Fatalf("before restart: %+v", ns)
			}
			// A lease held by a replica that died expires; then it is re-driven.
			db.W.Exec(db.Rebind(`UPDATE alert_notifications SET lease_owner = 'dead', lease_expires = ?`), time.Now().Add(-time.Second).UnixMilli())
			second := newEngine(t, db, EngineOptions{})
			ns = settled(t, second, trs[0].EventID)
			if ns[0].Status != NotificationDelivered || len(s.requests()) != 1 {
				t.Fatalf("after restart: %+v, %d requests", ns, len(s.requests()))
			}
			r := s.requests()[0]
			if err := Verify("k", r.header.Get(HeaderSignature), r.header.Get(HeaderTimestamp), r.body, time.Now(), time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHook(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			var mu sync.Mutex
			var calls []Alert
			fail := true
			hook := HookFunc(func(ctx context.Context, a Alert) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, a)
				if fail {
					return errors.New("pipeline not found")
				}
				return nil
			})
			e := newEngine(t, db, EngineOptions{Hook: hook})
			rule := Rule{Name: "drift", Expr: "drift_share > 0.5", For: Duration(time.Minute),
				Trigger: &Trigger{Pipeline: "retrain", Parameters: map[string]string{"reason": "drift"}}}
			var firing []Transition
			for i, v := range []float64{0.6, 0.7, 0.8, 0.9, 0.1, 0.6, 0.6} {
				trs, err := e.Evaluate(ctx, "m", []Rule{rule}, []Sample{sample("drift_share", v)}, t0.Add(time.Duration(i)*time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				for _, tr := range trs {
					if tr.To == StateFiring {
						firing = append(firing, tr)
					}
				}
				if i == 4 {
					settled(t, e, firing[0].EventID)
					mu.Lock()
					fail = false
					mu.Unlock()
				}
			}
			if len(firing) != 2 {
				t.Fatalf("%d firing transitions, want 2", len(firing))
			}
			settled(t, e, firing[1].EventID)
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 2 {
				t.Fatalf("hook called %d times, want once per firing (2)", len(calls))
			}
			c := calls[0]
			if c.Trigger == nil || c.Trigger.Pipeline != "retrain" || c.Trigger.Parameters["reason"] != "drift" || c.Value != 0.7 || c.Labels["endpoint"] != "e" || c.Status != StateFiring || c.EventID != firing[0].EventID {
				t.Fatalf("hook got %+v", c)
			}
			evs, _ := e.History(ctx, HistoryQuery{Monitor: "m", Limit: 100})
			details := map[string]any{}
			for _, ev := range evs {
				if ev.State == StateFiring {
					details[ev.ID] = ev.Detail["hook"]
				}
			}
			if h, _ := details[firing[0].EventID].(map[string]any); h["error"] != "pipeline not found" {
				t.Fatalf("hook error not recorded: %v", details[firing[0].EventID])
			}
			if h, _ := details[firing[1].EventID].(map[string]any); h["ok"] != true {
				t.Fatalf("hook success not recorded: %v", details[firing[1].EventID])
			}
			ns, _ := e.Notifications(ctx, firing[0].EventID)
			if len(ns) != 1 || ns[0].Type != TypeHook || ns[0].Status != NotificationFailed || ns[0].Attempts != 1 {
				t.Fatalf("hook notification %+v", ns)
			}
		})
	}
}

func TestReceivers(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			e := newEngine(t, db, EngineOptions{NoDelivery: true})
			ctx := context.Background()
			r, err := e.PutReceiver(ctx, Receiver{Name: "ops", Type: TypeSlack, URL: "https://hooks.slack.com/services/T/B/x", Timeout: Duration(3 * time.Second)})
			if err != nil || r.Generation != 1 || r.CreationTime.IsZero() {
				t.Fatalf("put: %+v %v", r, err)
			}
			r.URL = "https://hooks.slack.com/services/T/B/y"
			r2, err := e.PutReceiver(ctx, r)
			if err != nil || r2.Generation != 2 || r2.URL != r.URL || !r2.CreationTime.Equal(r.CreationTime) || r2.Timeout.D() != 3*time.Second {
				t.Fatalf("update: %+v %v", r2, err)
			}
			e.PutReceiver(ctx, Receiver{Name: "a", Type: TypeWebhook, URL: "http://10.0.0.1/hook", Secret: "s", Headers: map[string]string{"X-Token": "t"}})
			list, err := e.ListReceivers(ctx)
			if err != nil || len(list) != 2 || list[0].Name != "a" || list[0].Secret != "s" {
				t.Fatalf("list: %+v %v", list, err)
			}
			if red := list[0].Redacted(); red.Secret != "<redacted>" || red.Headers["X-Token"] != "<redacted>" || list[0].Secret != "s" {
				t.Fatalf("redacted: %+v", red)
			}
			if err := e.DeleteReceiver(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.GetReceiver(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("get deleted: %v", err)
			}
			if err := e.DeleteReceiver(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("delete twice: %v", err)
			}
			for _, bad := range []Receiver{
				{Name: "", Type: TypeWebhook, URL: "http://x"},
				{Name: "x", Type: "email", URL: "http://x"},
				{Name: "x", Type: TypeWebhook, URL: "ftp://x"},
				{Name: "x", Type: TypeWebhook, URL: "/relative"},
				{Name: "x", Type: TypeWebhook, URL: "http://x", MaxAttempts: 21},
				{Name: "x", Type: TypeWebhook, URL: "http://x", Timeout: -1},
				{Name: "x", Type: TypeWebhook, URL: "http://x", Headers: map[string]string{"x-kiln-signature": "forged"}},
				{Name: "x", Type: TypeWebhook, URL: "http://x", Headers: map[string]string{"X-A": "a\r\nb"}},
			} {
				if _, err := e.PutReceiver(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("receiver %+v accepted: %v", bad, err)
				}
			}
		})
	}
}

func TestDurationAndJSON(t *testing.T) {
	var r Rule
	if err := json.Unmarshal([]byte(`{"name":"x","expr":"a > 1","for":"10m","severity":"info"}`), &r); err != nil || r.For.D() != 10*time.Minute {
		t.Fatalf("for as a string: %+v %v", r, err)
	}
	if err := json.Unmarshal([]byte(`{"for":90}`), &r); err != nil || r.For.D() != 90*time.Second {
		t.Fatalf("for as seconds: %+v %v", r, err)
	}
	if err := json.Unmarshal([]byte(`{"for":"ten"}`), &r); err == nil {
		t.Fatal("a bad duration was accepted")
	}
	b, _ := json.Marshal(Rule{Name: "x", Expr: "a > 1", For: Duration(90 * time.Second)})
	if !strings.Contains(string(b), `"for":"1m30s"`) {
		t.Fatalf("marshal: %s", b)
	}
	st := State{Value: nanValue(), Labels: l("a", "b")}
	b, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(b), `"value":"NaN"`) {
		t.Fatalf("NaN state: %s %v", b, err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil || back.Value == back.Value || back.Labels["a"] != "b" {
		t.Fatalf("NaN state back: %+v %v", back, err)
	}
	ev := Event{ID: "1", Value: 2.5}
	b, _ = json.Marshal(ev)
	var evBack Event
	if err := json.Unmarshal(b, &evBack); err != nil || evBack.Value != 2.5 || evBack.ID != "1" {
		t.Fatalf("event round trip: %s %+v", b, evBack)
	}
}

var _ = store.NewID

// TestSignKnownVector: the signature matches Python's
// hmac.new(b"s3cret", b"1772366400" + b"." + body, hashlib.sha256).hexdigest()
// (the verification recipe of docs/alerts.md).
func TestSignKnownVector(t *testing.T) {
	const want = "sha256=00429be4a6f046d79cecd9aafbd47a1b4bfbb5b0df2a4b68e1ca5c746969d5cd"
	if got := Sign("s3cret", "1772366400", []byte(`{"version":"1"}`)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if err := Verify("s3cret", want, "1772366400", []byte(`{"version":"1"}`), time.Unix(1772366400+600, 0), 5*time.Minute); err == nil {
		t.Fatal("a 10-minute-old timestamp passed a 5-minute tolerance")
	}
}
