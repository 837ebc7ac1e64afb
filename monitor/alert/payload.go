package alert

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WebhookPayload is the body of a "webhook" receiver's request (version 1).
type WebhookPayload struct {
	Version     string  `json:"version"`
	Status      string  `json:"status"`
	Receiver    string  `json:"receiver"`
	Monitor     string  `json:"monitor"`
	Rule        string  `json:"rule"`
	ExternalURL string  `json:"external_url,omitempty"`
	Alerts      []Alert `json:"alerts"`
}

// AlertmanagerPayload is Alertmanager's webhook body (version 4), as its
// webhook receiver posts it (prometheus/alertmanager notify/webhook).
type AlertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   uint64              `json:"truncatedAlerts"`
	Receiver          string              `json:"receiver"`
	Status            string              `json:"status"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
}

// AlertmanagerAlert is one alert of an AlertmanagerPayload.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// SlackPayload is a Slack incoming-webhook body.
type SlackPayload struct {
	Text        string            `json:"text"`
	Blocks      []SlackBlock      `json:"blocks"`
	Attachments []SlackAttachment `json:"attachments"`
}

// SlackBlock is a section block with mrkdwn text.
type SlackBlock struct {
	Type string    `json:"type"`
	Text SlackText `json:"text"`
}

// SlackText is a text object of a block.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// SlackAttachment is a legacy attachment, used for its color bar.
type SlackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"`
	Fields   []SlackField `json:"fields,omitempty"`
}

// SlackField is a short field of an attachment.
type SlackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Payload returns the body that receiver r is sent for alert a.
func (e *Engine) Payload(r Receiver, a Alert) ([]byte, error) {
	var v any
	switch r.Type {
	case TypeWebhook:
		v = WebhookPayload{Version: "1", Status: a.Status, Receiver: r.Name, Monitor: a.Monitor, Rule: a.Rule,
			ExternalURL: e.externalURL, Alerts: []Alert{a}}
	case TypeAlertmanager:
		v = alertmanagerPayload(r.Name, e.externalURL, a)
	case TypeSlack:
		v = slackPayload(a)
	default:
		return nil, fmt.Errorf("alert: receiver %s has unknown type %q", r.Name, r.Type)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("alert: encode %s payload: %w", r.Type, err)
	}
	return b, nil
}

func alertmanagerPayload(receiver, externalURL string, a Alert) AlertmanagerPayload {
	group := map[string]string{LabelAlertName: a.Rule, LabelMonitor: a.Monitor}
	ann := a.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	return AlertmanagerPayload{
		Version:         "4",
		GroupKey:        "{}:" + groupKeyLabels(group),
		TruncatedAlerts: 0,
		Receiver:        receiver,
		Status:          a.Status,
		Alerts: []AlertmanagerAlert{{
			Status: a.Status, Labels: a.Labels, Annotations: ann,
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, // zero (0001-01-01T00:00:00Z) while firing, as Alertmanager writes it
			GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
		}},
		GroupLabels:       group,
		CommonLabels:      maps.Clone(a.Labels),
		CommonAnnotations: maps.Clone(ann),
		ExternalURL:       externalURL,
	}
}

// groupKeyLabels writes labels as Alertmanager writes a group key:
// {a="1", b="2"}, sorted by name.
func groupKeyLabels(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// slackColor: green when resolved, else by severity.
func slackColor(a Alert) string {
	if a.Status == StateResolved {
		return "good"
	}
	switch a.Severity {
	case SeverityCritical:
		return "danger"
	case SeverityInfo:
		return "#439FE0"
	}
	return "warning"
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func slackPayload(a Alert) SlackPayload {
	status := strings.ToUpper(a.Status)
	title := fmt.Sprintf("[%s] %s on monitor %s (%s)", status, a.Rule, a.Monitor, a.Severity)
	var b strings.Builder
	fmt.Fprintf(&b, "*[%s] %s* on monitor `%s`", status, slackEscape(a.Rule), slackEscape(a.Monitor))
	if s := a.Annotations["summary"]; s != "" {
		b.WriteString("\n" + slackEscape(s))
	}
	if s := a.Annotations["description"]; s != "" {
		b.WriteString("\n" + slackEscape(s))
	}
	fmt.Fprintf(&b, "\n*Value:* %s", formatValue(a.Value))
	var extra []string
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		if k == LabelAlertName || k == LabelMonitor || k == LabelSeverity {
			continue
		}
		extra = append(extra, "`"+slackEscape(k+"="+a.Labels[k])+"`")
	}
	if len(extra) > 0 {
		b.WriteString("\n*Labels:* " + strings.Join(extra, " "))
	}
	if a.GeneratorURL != "" {
		fmt.Fprintf(&b, "\n<%s|Open in Kiln>", a.GeneratorURL)
	}
	fields := []SlackField{{Title: "Severity", Value: a.Severity, Short: true}, {Title: "Value", Value: formatValue(a.Value), Short: true}}
	if a.Status == StateResolved {
		fields = append(fields, SlackField{Title: "Resolved", Value: a.EndsAt.Format(time.RFC3339), Short: true})
	} else {
		fields = append(fields, SlackField{Title: "Firing since", Value: a.StartsAt.Format(time.RFC3339), Short: true})
	}
	return SlackPayload{
		Text:        title,
		Blocks:      []SlackBlock{{Type: "section", Text: SlackText{Type: "mrkdwn", Text: b.String()}}},
		Attachments: []SlackAttachment{{Color: slackColor(a), Fallback: title, Fields: fields}},
	}
}
