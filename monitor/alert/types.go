package alert

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"time"
)

// States of an alert (one per monitor, rule and label set).
const (
	// StateInactive: the condition was pending and no longer holds.
	StateInactive = "inactive"
	// StatePending: the condition holds, for less than the rule's For.
	StatePending = "pending"
	// StateFiring: the condition has held for at least For.
	StateFiring = "firing"
	// StateResolved: the alert was firing and its condition no longer
	// holds (or its series disappeared, or its rule was removed).
	StateResolved = "resolved"
)

// Labels that Kiln sets on every alert.
const (
	LabelAlertName = "alertname"
	LabelMonitor   = "monitor"
	LabelSeverity  = "severity"
)

// Alert is what receivers and the Hook are told: one alert at a transition
// to firing or resolved.
type Alert struct {
	EventID     string            `json:"event_id"`
	Monitor     string            `json:"monitor"`
	Rule        string            `json:"rule"`
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"` // firing or resolved
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// Value is the value of the series when the alert changed state.
	Value float64 `json:"value"`
	Expr  string  `json:"expr"`
	// ActiveSince is when the condition started to hold (pending).
	ActiveSince time.Time `json:"active_since"`
	// StartsAt is when the alert fired; EndsAt when it resolved (zero
	// while firing).
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at,omitzero"`
	GeneratorURL string    `json:"generator_url,omitempty"`
	// Trigger is the rule's pipeline trigger, nil when it has none.
	Trigger *Trigger `json:"trigger,omitempty"`
}

// Hook is told of every transition to firing, once (the pipelines'
// trigger: Alert.Trigger names the pipeline and its parameters, Labels and
// Value are the alert's). It runs asynchronously after the evaluation's
// commit; an error is logged and recorded in the event's detail and in
// the hook's notification, and is not retried.
type Hook interface {
	AlertFiring(ctx context.Context, a Alert) error
}

// HookFunc adapts a function to Hook.
type HookFunc func(ctx context.Context, a Alert) error

// AlertFiring calls f.
func (f HookFunc) AlertFiring(ctx context.Context, a Alert) error { return f(ctx, a) }

// State is the current state of one alert.
type State struct {
	Monitor     string            `json:"monitor"`
	Rule        string            `json:"rule"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Severity    string            `json:"severity"`
	State       string            `json:"state"`
	Value       float64           `json:"value"`
	ActiveSince time.Time         `json:"active_since,omitzero"`
	FiredAt     time.Time         `json:"fired_at,omitzero"`
	ResolvedAt  time.Time         `json:"resolved_at,omitzero"`
	LastEval    time.Time         `json:"last_eval"`
}

// Transition is one change of an alert's state made by Evaluate.
type Transition struct {
	EventID     string            `json:"event_id"`
	Monitor     string            `json:"monitor"`
	Rule        string            `json:"rule"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	From        string            `json:"from"`
	To          string            `json:"to"`
	Value       float64           `json:"value"`
	At          time.Time         `json:"at"`
}

// Event is one entry of the alert history (alert_events, append-only).
type Event struct {
	ID          string            `json:"id"`
	Monitor     string            `json:"monitor"`
	Rule        string            `json:"rule"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	From        string            `json:"from"`
	State       string            `json:"state"`
	Value       float64           `json:"value"`
	Time        time.Time         `json:"time"`
	// Detail holds annotations, the reason ("condition", "missing",
	// "rule removed"), render errors, receivers that were not found and,
	// once the hook ran, its outcome ("hook": {"ok": true} or {"error": …}).
	Detail map[string]any `json:"detail,omitempty"`
}

// Fingerprint identifies a label set: 16 hex digits of FNV-1a over the
// sorted label pairs (the same set always gives the same fingerprint).
func Fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	s := strconv.FormatUint(h.Sum64(), 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

// jsonFloat writes non-finite values as "Infinity", "-Infinity" and "NaN"
// (the protobuf JSON convention, as stattest does), which encoding/json
// refuses as numbers, and reads them back.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`, "null":
		*f = jsonFloat(math.NaN())
		return nil
	case `"Infinity"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Infinity"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// MarshalJSON writes a non-finite Value as a string.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(a), jsonFloat(a.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Alert) UnmarshalJSON(b []byte) error {
	type plain Alert
	var v struct {
		*plain
		Value jsonFloat `json:"value"`
	}
	v.plain = (*plain)(a)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	a.Value = float64(v.Value)
	return nil
}

// MarshalJSON writes a non-finite Value as a string.
func (s State) MarshalJSON() ([]byte, error) {
	type plain State
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(s), jsonFloat(s.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *State) UnmarshalJSON(b []byte) error {
	type plain State
	var v struct {
		*plain
		Value jsonFloat `json:"value"`
	}
	v.plain = (*plain)(s)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.Value = float64(v.Value)
	return nil
}

// MarshalJSON writes a non-finite Value as a string.
func (t Transition) MarshalJSON() ([]byte, error) {
	type plain Transition
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(t), jsonFloat(t.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Transition) UnmarshalJSON(b []byte) error {
	type plain Transition
	var v struct {
		*plain
		Value jsonFloat `json:"value"`
	}
	v.plain = (*plain)(t)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	t.Value = float64(v.Value)
	return nil
}

// MarshalJSON writes a non-finite Value as a string.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(e), jsonFloat(e.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var v struct {
		*plain
		Value jsonFloat `json:"value"`
	}
	v.plain = (*plain)(e)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	e.Value = float64(v.Value)
	return nil
}
