package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/monitor/alert"
)

// Monitors serves monitors, their results, alert receivers and alerts
// (a *monitor.Service implements it).
type Monitors interface {
	Put(ctx context.Context, m *monitor.Monitor, actor string) (*monitor.StoredMonitor, bool, bool, error)
	Get(ctx context.Context, name string) (*monitor.StoredMonitor, error)
	List(ctx context.Context, endpoint string) ([]*monitor.StoredMonitor, error)
	Delete(ctx context.Context, name string) error
	RunNow(ctx context.Context, name string) (*monitor.Result, error)
	Results(ctx context.Context, name string, from, to time.Time, limit int) ([]*monitor.Result, error)
	Latest(ctx context.Context, name string) (*monitor.Result, error)
	Report(ctx context.Context, name string, w io.Writer) error

	PutReceiver(ctx context.Context, d *monitor.AlertReceiver) (*monitor.AlertReceiver, bool, bool, error)
	GetReceiver(ctx context.Context, name string) (*monitor.AlertReceiver, error)
	ListReceivers(ctx context.Context) ([]*monitor.AlertReceiver, error)
	DeleteReceiver(ctx context.Context, name string) error
	ActiveAlerts(ctx context.Context, monitor string) ([]alert.State, error)
	AlertHistory(ctx context.Context, q alert.HistoryQuery) ([]alert.Event, error)
}

// MonitorInfo is a stored monitor with its latest result and the number
// of its firing alerts (GET /monitors/{name}, an entry of GET /monitors).
type MonitorInfo struct {
	*monitor.StoredMonitor
	Latest       *monitor.Result `json:"latest"`
	FiringAlerts int             `json:"firing_alerts"`
}

// MonitorList is the answer of GET /monitors.
type MonitorList struct {
	Monitors []MonitorInfo `json:"monitors"`
}

// ApplyMonitorResponse is the answer of PUT /monitors/{name}.
type ApplyMonitorResponse struct {
	Created bool                   `json:"created"`
	Changed bool                   `json:"changed"`
	Monitor *monitor.StoredMonitor `json:"monitor"`
}

// MonitorResults is the answer of GET /monitors/{name}/results.
type MonitorResults struct {
	Results []*monitor.Result `json:"results"`
}

// ApplyReceiverResponse is the answer of PUT /alert-receivers/{name}.
type ApplyReceiverResponse struct {
	Created  bool                   `json:"created"`
	Changed  bool                   `json:"changed"`
	Receiver *monitor.AlertReceiver `json:"receiver"`
}

// ReceiverList is the answer of GET /alert-receivers.
type ReceiverList struct {
	Receivers []*monitor.AlertReceiver `json:"receivers"`
}

// AlertList is the answer of GET /alerts.
type AlertList struct {
	Alerts []alert.State `json:"alerts"`
}

// AlertHistory is the answer of GET /alerts/history.
type AlertHistory struct {
	Events []alert.Event `json:"events"`
}

func (h *Handler) registerMonitors(mux Mux) {
	h.handle(mux, "GET", "/monitors", h.listMonitors)
	h.handle(mux, "GET", "/monitors/{name}", h.getMonitor)
	h.handle(mux, "PUT", "/monitors/{name}", h.putMonitor)
	h.handle(mux, "DELETE", "/monitors/{name}", h.deleteMonitor)
	h.handle(mux, "POST", "/monitors/{name}/run", h.runMonitor)
	h.handle(mux, "GET", "/monitors/{name}/results", h.monitorResults)
	h.handle(mux, "GET", "/monitors/{name}/report", h.monitorReport)
	h.handle(mux, "GET", "/alert-receivers", h.listReceivers)
	h.handle(mux, "GET", "/alert-receivers/{name}", h.getReceiver)
	h.handle(mux, "PUT", "/alert-receivers/{name}", h.putReceiver)
	h.handle(mux, "DELETE", "/alert-receivers/{name}", h.deleteReceiver)
	h.handle(mux, "GET", "/alerts", h.listAlerts)
	h.handle(mux, "GET", "/alerts/history", h.alertHistory)
}

// monitors returns the monitor service, or a NotImplemented error for a
// server that runs none (the routes are always registered).
func (h *Handler) monitors() (Monitors, error) {
	if h.d.Monitors == nil {
		return nil, errdefs.NotImplemented("This server runs no monitors")
	}
	return h.d.Monitors, nil
}

func monitorName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if err := monitor.ValidateName(name); err != nil {
		return "", errdefs.Invalid("Invalid name: %s", errdefs.Message(err))
	}
	return name, nil
}

func (h *Handler) monitorInfo(ctx context.Context, sm *monitor.StoredMonitor, firing map[string]int) (MonitorInfo, error) {
	latest, err := h.d.Monitors.Latest(ctx, sm.Monitor.Metadata.Name)
	if err != nil {
		return MonitorInfo{}, err
	}
	return MonitorInfo{StoredMonitor: sm, Latest: latest, FiringAlerts: firing[sm.Monitor.Metadata.Name]}, nil
}

// firingAlerts counts firing alerts per monitor ("" = all); without an
// alert engine, none.
func (h *Handler) firingAlerts(ctx context.Context, name string) (map[string]int, error) {
	states, err := h.d.Monitors.ActiveAlerts(ctx, name)
	if errors.Is(err, errdefs.ErrNotImplemented) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range states {
		if s.State == alert.StateFiring {
			out[s.Monitor]++
		}
	}
	return out, nil
}

func (h *Handler) listMonitors(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	ctx := r.Context()
	ms, err := h.d.Monitors.List(ctx, r.URL.Query().Get("endpoint"))
	if err != nil {
		return err
	}
	firing, err := h.firingAlerts(ctx, "")
	if err != nil {
		return err
	}
	out := MonitorList{Monitors: make([]MonitorInfo, 0, len(ms))}
	for _, sm := range ms {
		mi, err := h.monitorInfo(ctx, sm, firing)
		if err != nil {
			return err
		}
		out.Monitors = append(out.Monitors, mi)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) getMonitor(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	sm, err := h.d.Monitors.Get(ctx, name)
	if err != nil {
		return err
	}
	firing, err := h.firingAlerts(ctx, name)
	if err != nil {
		return err
	}
	mi, err := h.monitorInfo(ctx, sm, firing)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mi)
	return nil
}

// putMonitor stores the Monitor document of the body (JSON or YAML),
// idempotently: 201 when created.
func (h *Handler) putMonitor(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	actor, err := gateActor(r, "")
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, monitor.MaxSpecBytes))
	if err != nil {
		return err
	}
	m, err := monitor.ParseMonitor(data, name)
	if err != nil {
		return withFieldDetails(err)
	}
	sm, created, changed, err := h.d.Monitors.Put(r.Context(), m, actor)
	if err != nil {
		return withFieldDetails(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, ApplyMonitorResponse{Created: created, Changed: changed, Monitor: sm})
	return nil
}

func (h *Handler) deleteMonitor(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	if err := h.d.Monitors.Delete(r.Context(), name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// runMonitor evaluates a monitor now and answers its result.
func (h *Handler) runMonitor(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	res, err := h.d.Monitors.RunNow(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// queryTime reads a time parameter: RFC 3339, or milliseconds since the
// epoch; zero when absent.
func queryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errdefs.Invalid("Invalid %s '%s': want RFC 3339 (2026-01-02T15:04:05Z) or milliseconds since the epoch", name, clip(s))
	}
	return t, nil
}

func timeRange(r *http.Request) (from, to time.Time, limit int, err error) {
	if from, err = queryTime(r, "from"); err != nil {
		return
	}
	if to, err = queryTime(r, "to"); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		err = errdefs.Invalid("'to' must be after 'from'")
		return
	}
	limit, err = queryInt(r, "limit")
	if err == nil && limit < 0 {
		err = errdefs.Invalid("'limit' must not be negative")
	}
	return
}

func (h *Handler) monitorResults(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	from, to, limit, err := timeRange(r)
	if err != nil {
		return err
	}
	rs, err := h.d.Monitors.Results(r.Context(), name, from, to, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, MonitorResults{Results: rs})
	return nil
}

// monitorReport answers the monitor's self-contained HTML report.
func (h *Handler) monitorReport(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := h.d.Monitors.Report(r.Context(), name, &b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Header().Set("Content-Disposition", `inline; filename="`+name+`-report.html"`)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b.Bytes())
	return err
}

func (h *Handler) listReceivers(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	rs, err := h.d.Monitors.ListReceivers(r.Context())
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []*monitor.AlertReceiver{}
	}
	writeJSON(w, http.StatusOK, ReceiverList{Receivers: rs})
	return nil
}

func (h *Handler) getReceiver(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	d, err := h.d.Monitors.GetReceiver(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// putReceiver stores the AlertReceiver document of the body: 201 when
// created. A secret or header value given as "***" keeps the stored one.
func (h *Handler) putReceiver(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, monitor.MaxSpecBytes))
	if err != nil {
		return err
	}
	d, err := monitor.ParseAlertReceiver(data, name)
	if err != nil {
		return withFieldDetails(err)
	}
	stored, created, changed, err := h.d.Monitors.PutReceiver(r.Context(), d)
	if err != nil {
		return withFieldDetails(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, ApplyReceiverResponse{Created: created, Changed: changed, Receiver: stored})
	return nil
}

func (h *Handler) deleteReceiver(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := monitorName(r)
	if err != nil {
		return err
	}
	if err := h.d.Monitors.DeleteReceiver(r.Context(), name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func optionalName(r *http.Request, param string) (string, error) {
	s := r.URL.Query().Get(param)
	if s == "" {
		return "", nil
	}
	if err := monitor.ValidateName(s); err != nil {
		return "", errdefs.Invalid("Invalid %s: %s", param, errdefs.Message(err))
	}
	return s, nil
}

func (h *Handler) listAlerts(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := optionalName(r, "monitor")
	if err != nil {
		return err
	}
	states, err := h.d.Monitors.ActiveAlerts(r.Context(), name)
	if err != nil {
		return err
	}
	if states == nil {
		states = []alert.State{}
	}
	writeJSON(w, http.StatusOK, AlertList{Alerts: states})
	return nil
}

func (h *Handler) alertHistory(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.monitors(); err != nil {
		return err
	}
	name, err := optionalName(r, "monitor")
	if err != nil {
		return err
	}
	from, to, limit, err := timeRange(r)
	if err != nil {
		return err
	}
	rule := r.URL.Query().Get("rule")
	if len(rule) > 128 || strings.ContainsRune(rule, 0) {
		return errdefs.Invalid("Invalid rule name")
	}
	if limit > alert.MaxHistoryLimit {
		limit = alert.MaxHistoryLimit
	}
	evs, err := h.d.Monitors.AlertHistory(r.Context(), alert.HistoryQuery{Monitor: name, Rule: rule, From: from, To: to, Limit: limit})
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []alert.Event{}
	}
	writeJSON(w, http.StatusOK, AlertHistory{Events: evs})
	return nil
}
