package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/lineage"
)

// LineageGraph walks the lineage graph (a *lineage.Stores).
type LineageGraph interface {
	Walk(ctx context.Context, root lineage.NodeID, opts lineage.WalkOptions) (*lineage.Graph, error)
}

// GET /lineage?node=ID&direction=upstream|downstream|both&depth=N&max_nodes=N&format=json|dot:
// the graph around one node, walked both ways across dataset versions,
// runs, logged models, model versions, endpoints, monitors, alerts and
// pipeline runs.
func (h *Handler) lineageGraph(w http.ResponseWriter, r *http.Request) error {
	if h.d.Lineage == nil {
		return errdefs.NotImplemented("the lineage graph is not served by this server")
	}
	q := r.URL.Query()
	root, err := lineage.ParseNodeID(q.Get("node"))
	if err != nil {
		return err
	}
	if root.Type == lineage.ModelVersion {
		// The request's workspace's model (access.StoredName).
		if root.Name, err = access.StoredName(r.Context(), access.ResourceModel, root.Name); err != nil {
			return err
		}
	}
	dir, err := lineage.ParseDirection(q.Get("direction"))
	if err != nil {
		return err
	}
	opts := lineage.WalkOptions{Direction: dir}
	for name, dst := range map[string]*int{"depth": &opts.Depth, "max_nodes": &opts.MaxNodes} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return errdefs.Invalid("invalid %s %q: want a number from 1", name, clipParam(s))
			}
			*dst = n
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "dot" {
		return errdefs.Invalid("invalid format %q: want json or dot", clipParam(format))
	}
	g, err := h.d.Lineage.Walk(r.Context(), root, opts)
	if err != nil {
		return err
	}
	if format == "dot" {
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		_, err := w.Write([]byte(access.ShownText(g.Dot())))
		return err
	}
	writeShownJSON(w, http.StatusOK, g)
	return nil
}

func clipParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
