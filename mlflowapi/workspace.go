package mlflowapi

import (
	"context"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
)

// Workspaces are namespaces (package access): the middleware refuses a
// resource of another workspace when a request names it in its path or
// body; these checks cover the RPCs that list resources or name them
// otherwise (several experiment ids, run ids, a logged model's id).

// checkExperiments refuses experiment ids of another workspace.
func checkExperiments(ctx context.Context, ids []string) error {
	if !access.Isolated(ctx) {
		return nil
	}
	for _, id := range ids {
		if err := access.CheckVisible(ctx, access.ResourceExperiment, id); err != nil {
			return err
		}
	}
	return nil
}

// checkRuns refuses run ids whose experiment belongs to another
// workspace (an unknown run is left to the handler).
func (h *Handler) checkRuns(ctx context.Context, ids []string) error {
	if !access.Isolated(ctx) {
		return nil
	}
	for _, id := range ids {
		run, err := h.tracking.GetRun(ctx, id)
		if err != nil {
			continue
		}
		if !access.Visible(ctx, access.ResourceExperiment, run.Info.ExperimentID) {
			return errdefs.NotFound("Run '%s' not found in workspace '%s'", id, access.RequestWorkspace(ctx))
		}
	}
	return nil
}

// checkLoggedModel refuses a logged model whose experiment belongs to
// another workspace.
func (h *Handler) checkLoggedModel(ctx context.Context, id string) error {
	if !access.Isolated(ctx) {
		return nil
	}
	m, err := h.tracking.GetLoggedModel(ctx, id)
	if err != nil {
		return err
	}
	if !access.Visible(ctx, access.ResourceExperiment, m.ExperimentID) {
		return errdefs.NotFound("Logged model '%s' not found in workspace '%s'", id, access.RequestWorkspace(ctx))
	}
	return nil
}
