package client

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/monitor"
)

// Collections of the monitor API (for PutDocument, GetDocument,
// DeleteDocument).
const (
	MonitorsCollection       = "monitors"
	AlertReceiversCollection = "alert-receivers"
)

// ListMonitors returns the monitors ("" = of every endpoint), each with
// its latest result.
func (c *Client) ListMonitors(ctx context.Context, endpoint string) ([]api.MonitorInfo, error) {
	q := url.Values{}
	if endpoint != "" {
		q.Set("endpoint", endpoint)
	}
	var out api.MonitorList
	return out.Monitors, c.callAs(ctx, "GET", c.endpoint(q, MonitorsCollection), "", nil, &out)
}

// GetMonitor returns a monitor with its latest result.
func (c *Client) GetMonitor(ctx context.Context, name string) (*api.MonitorInfo, error) {
	var out api.MonitorInfo
	return &out, c.callAs(ctx, "GET", c.endpoint(nil, MonitorsCollection, name), "", nil, &out)
}

// ApplyMonitor creates or replaces a monitor.
func (c *Client) ApplyMonitor(ctx context.Context, m *monitor.Monitor, actor string) (*api.ApplyMonitorResponse, error) {
	var out api.ApplyMonitorResponse
	return &out, c.callAs(ctx, "PUT", c.endpoint(nil, MonitorsCollection, m.Metadata.Name), actor, m, &out)
}

// DeleteMonitor deletes a monitor and its results.
func (c *Client) DeleteMonitor(ctx context.Context, name string) error {
	return c.callAs(ctx, "DELETE", c.endpoint(nil, MonitorsCollection, name), "", nil, nil)
}

// RunMonitor evaluates a monitor now and returns the result.
func (c *Client) RunMonitor(ctx context.Context, name string) (*monitor.Result, error) {
	var out monitor.Result
	return &out, c.callAs(ctx, "POST", c.endpoint(nil, MonitorsCollection, name, "run"), "", nil, &out)
}

func timeQuery(from, to time.Time, limit int) url.Values {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", strconv.FormatInt(from.UnixMilli(), 10))
	}
	if !to.IsZero() {
		q.Set("to", strconv.FormatInt(to.UnixMilli(), 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// MonitorResults returns a monitor's results evaluated in [from, to)
// (zero: unbounded), oldest first, the newest limit (0: the server's
// bound).
func (c *Client) MonitorResults(ctx context.Context, name string, from, to time.Time, limit int) ([]*monitor.Result, error) {
	var out api.MonitorResults
	return out.Results, c.callAs(ctx, "GET", c.endpoint(timeQuery(from, to, limit), MonitorsCollection, name, "results"), "", nil, &out)
}

// MonitorReport writes a monitor's HTML report to w.
func (c *Client) MonitorReport(ctx context.Context, name string, w io.Writer) error {
	req, err := c.newRequest(ctx, "GET", c.endpoint(nil, MonitorsCollection, name, "report"), nil)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// ApplyAlertReceiver creates or replaces an alert receiver.
func (c *Client) ApplyAlertReceiver(ctx context.Context, r *monitor.AlertReceiver) (*api.ApplyReceiverResponse, error) {
	var out api.ApplyReceiverResponse
	return &out, c.callAs(ctx, "PUT", c.endpoint(nil, AlertReceiversCollection, r.Metadata.Name), "", r, &out)
}

// GetAlertReceiver returns a receiver's document (secrets masked).
func (c *Client) GetAlertReceiver(ctx context.Context, name string) (*monitor.AlertReceiver, error) {
	var out monitor.AlertReceiver
	return &out, c.callAs(ctx, "GET", c.endpoint(nil, AlertReceiversCollection, name), "", nil, &out)
}

// ListAlertReceivers returns the receivers (secrets masked).
func (c *Client) ListAlertReceivers(ctx context.Context) ([]*monitor.AlertReceiver, error) {
	var out api.ReceiverList
	return out.Receivers, c.callAs(ctx, "GET", c.endpoint(nil, AlertReceiversCollection), "", nil, &out)
}

// DeleteAlertReceiver deletes a receiver.
func (c *Client) DeleteAlertReceiver(ctx context.Context, name string) error {
	return c.callAs(ctx, "DELETE", c.endpoint(nil, AlertReceiversCollection, name), "", nil, nil)
}

// Alerts returns the pending and firing alerts ("" = of every monitor).
func (c *Client) Alerts(ctx context.Context, monitorName string) (*api.AlertList, error) {
	q := url.Values{}
	if monitorName != "" {
		q.Set("monitor", monitorName)
	}
	var out api.AlertList
	return &out, c.callAs(ctx, "GET", c.endpoint(q, "alerts"), "", nil, &out)
}

// AlertHistory returns alert state changes, newest first.
func (c *Client) AlertHistory(ctx context.Context, monitorName, rule string, from, to time.Time, limit int) (*api.AlertHistory, error) {
	q := timeQuery(from, to, limit)
	if monitorName != "" {
		q.Set("monitor", monitorName)
	}
	if rule != "" {
		q.Set("rule", rule)
	}
	var out api.AlertHistory
	return &out, c.callAs(ctx, "GET", c.endpoint(q, "alerts", "history"), "", nil, &out)
}
