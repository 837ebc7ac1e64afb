package access

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/kiln-ml/kiln/errdefs"
)

// How the middleware makes workspaces namespaces (with
// MiddlewareOptions.Owners): a route whose Permission names a resource
// (From path:, param: or run:) answers not found when the resource
// belongs to another workspace than the request's, for everyone, server
// administrators too — a namespace is not a permission. Creating a
// resource in a workspace other than the default records its owner once
// the handler succeeds; creating a name another workspace owns is
// refused as already existing. Listings and routes that name no resource
// in the path or body filter with Visible in their handlers.

// resourceOf finds (once) the name of the resource a request names.
type resourceOf struct {
	m    *middleware
	perm Permission
	mt   *match
	r    *http.Request

	done     bool
	resolved string
	err      error
}

func (rn *resourceOf) name(ctx context.Context) (string, error) {
	if !rn.done {
		rn.done = true
		rn.resolved, rn.err = rn.m.resourceName(ctx, rn.perm, rn.mt.req, rn.r)
	}
	return rn.resolved, rn.err
}

// lifecycle is what a route does to a resource's ownership.
type lifecycle int

const (
	lcNone lifecycle = iota
	// lcCreate creates the resource the route names (its owner is
	// recorded on success: 2xx; for PUT /endpoints/{name}, 201).
	lcCreate
	// lcCreateID creates an experiment whose id is in the answer.
	lcCreateID
	// lcRename renames it to the body's new_name.
	lcRename
	// lcDelete deletes it for good: its row goes too, freeing the name.
	lcDelete
)

// lifecycles maps the routes that create, rename or delete a resource.
var lifecycles = func() map[string]lifecycle {
	m := map[string]lifecycle{
		"PUT /api/v1/endpoints/{name}":    lcCreate,
		"DELETE /api/v1/endpoints/{name}": lcDelete,
	}
	for route, lc := range map[string]lifecycle{
		"POST %s/mlflow/experiments/create":         lcCreateID,
		"POST %s/mlflow/registered-models/create":   lcCreate,
		"POST %s/mlflow/registered-models/rename":   lcRename,
		"DELETE %s/mlflow/registered-models/delete": lcDelete,
	} {
		for _, prefix := range []string{"/api/2.0", "/ajax-api/2.0"} {
			m[strings.Replace(route, "%s", prefix, 1)] = lc
		}
	}
	return m
}()

// isolate checks the resource a request names against its workspace and
// returns what to do once the handler has answered (nil: nothing). It is
// called only when ownership matters (scope.isolated): not on a server
// that uses the default workspace alone.
func (m *middleware) isolate(ctx context.Context, ws, pattern string, rn *resourceOf) (func(*lifecycleWriter), error) {
	perm := rn.perm
	lc := lifecycles[pattern]
	if (lc == lcCreate || lc == lcCreateID) && ws != DefaultWorkspace && m.o.Auth != nil {
		// A server administrator may act in any workspace: one never
		// created (a typo) would own what is made in it.
		if ok, err := m.o.Auth.st.WorkspaceExists(ctx, ws); err != nil {
			return nil, err
		} else if !ok {
			return nil, errdefs.NotFound("Workspace '%s' does not exist", clip(ws))
		}
	}
	if lc == lcCreateID {
		if ws == DefaultWorkspace {
			return nil, nil
		}
		return func(lw *lifecycleWriter) {
			var out struct {
				ID string `json:"experiment_id"`
			}
			if lw.ok() && json.Unmarshal(lw.body, &out) == nil && out.ID != "" {
				m.record(ctx, m.o.Owners.Set(context.WithoutCancel(ctx), ResourceExperiment, out.ID, ws))
			}
		}, nil
	}
	if perm.Resource == "" || strings.HasPrefix(perm.From, "workspace:") {
		return nil, nil
	}
	name, err := rn.name(ctx)
	if err != nil || name == "" {
		return nil, nil // the handler answers an unknown run, a missing name
	}
	// A registered model's name is the request's workspace's: look up
	// the name it is stored under (the handler translates the same way).
	if name, err = StoredNameIn(ctx, perm.Resource, ws, name); err != nil {
		return nil, err
	}
	owner, explicit, err := m.o.Owners.Owner(ctx, perm.Resource, name)
	if err != nil {
		return nil, err
	}
	switch lc {
	case lcCreate:
		// A name without a row may still exist in the default workspace:
		// the handler refuses it (MLflow's create) or asks Visible (PUT
		// /endpoints/{name}).
		if explicit && owner != ws {
			return nil, OwnedElsewhere(perm.Resource, name, ws)
		}
		if ws == DefaultWorkspace || explicit {
			return nil, nil
		}
		return func(lw *lifecycleWriter) {
			if lw.ok() && (lw.status == http.StatusCreated || rn.r.Method != http.MethodPut) {
				m.record(ctx, m.o.Owners.Set(context.WithoutCancel(ctx), perm.Resource, name, ws))
			}
		}, nil
	}
	if owner != ws {
		return nil, NotInWorkspace(perm.Resource, name, ws)
	}
	switch lc {
	case lcRename:
		to, err := param(rn.r, "new_name")
		if err != nil || to == "" {
			return nil, nil
		}
		if to, err = StoredNameIn(ctx, perm.Resource, ws, to); err != nil {
			return nil, err
		}
		if o2, ex2, err := m.o.Owners.Owner(ctx, perm.Resource, to); err != nil {
			return nil, err
		} else if ex2 && o2 != ws {
			return nil, OwnedElsewhere(perm.Resource, to, ws)
		}
		if !explicit {
			return nil, nil
		}
		return func(lw *lifecycleWriter) {
			if lw.ok() {
				m.record(ctx, m.o.Owners.Rename(context.WithoutCancel(ctx), perm.Resource, name, to))
			}
		}, nil
	case lcDelete:
		if !explicit {
			return nil, nil
		}
		return func(lw *lifecycleWriter) {
			if lw.ok() {
				m.record(ctx, m.o.Owners.Remove(context.WithoutCancel(ctx), perm.Resource, name))
			}
		}, nil
	}
	return nil, nil
}

// record logs an ownership write that failed (the resource exists, but
// belongs to the default workspace until fixed).
func (m *middleware) record(ctx context.Context, err error) {
	if err != nil {
		m.log.ErrorContext(ctx, "workspace ownership not recorded", "err", err)
	}
}

// hidden answers a resource of another workspace (not found), or a name
// another workspace owns (already exists), and records it in the audit
// log like a refusal.
func (m *middleware) hidden(w http.ResponseWriter, r *http.Request, ev *Event, err error) {
	ev.Status = statusOf(err)
	ev.Detail = clip1k(err.Error())
	if m.o.Audit != nil {
		m.append(r.Context(), ev)
	}
	m.o.WriteError(w, r, err)
}

func statusOf(err error) int {
	if errorsIsNotFound(err) {
		return http.StatusNotFound
	}
	if isAlreadyExists(err) {
		return http.StatusConflict
	}
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return http.StatusBadRequest // a name with NameSeparator
	}
	return http.StatusInternalServerError
}

func clip1k(s string) string {
	if len(s) > 1024 {
		return s[:1024] + "…"
	}
	return s
}

// lifecycleWriter keeps the status and the start of the answer of a route
// that creates, renames or deletes a resource.
type lifecycleWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   []byte
}

// maxLifecycleBody bounds the answer kept (an experiment id's).
const maxLifecycleBody = 4096

func (w *lifecycleWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *lifecycleWriter) Write(b []byte) (int, error) {
	w.wrote = true
	if n := min(len(b), maxLifecycleBody-len(w.body)); n > 0 {
		w.body = append(w.body, b[:n]...)
	}
	return w.ResponseWriter.Write(b)
}

func (w *lifecycleWriter) ok() bool { return w.status >= 200 && w.status < 300 }

func (w *lifecycleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *lifecycleWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// runExperiments caches the experiment of each run (it never changes).
type runExperiments struct {
	mu sync.Mutex
	m  map[string]string
}

// maxRunsCached bounds the cache of runs' experiments.
const maxRunsCached = 100000

func (c *runExperiments) get(run string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[run]
	return e, ok
}

func (c *runExperiments) put(run, exp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxRunsCached {
		c.m = map[string]string{}
	}
	c.m[run] = exp
}

func isAlreadyExists(err error) bool { return errors.Is(err, errdefs.ErrAlreadyExists) }

// auditedReads are routes that need only read access where they are
// called but change something elsewhere: the audit log records them.
var auditedReads = map[string]bool{
	"POST /api/v1/models/{model}/versions/{model_version}/copy": true,
}
