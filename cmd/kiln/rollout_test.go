package main

import (
	"testing"

	"github.com/kiln-ml/kiln/deploy"
)

func TestRolloutEnded(t *testing.T) {
	ro := func(phase string) *deploy.RolloutStatus { return &deploy.RolloutStatus{Phase: phase} }
	for _, tc := range []struct {
		name      string
		status    deploy.Status
		ended, ok bool
	}{
		{"no rollout", deploy.Status{}, true, true},
		{"progressing", deploy.Status{Rollout: ro(deploy.PhaseProgressing)}, false, false},
		{"paused", deploy.Status{Rollout: ro(deploy.PhasePaused)}, false, false},
		{"succeeded", deploy.Status{Rollout: ro(deploy.PhaseSucceeded)}, true, true},
		{"rolled back", deploy.Status{Rollout: ro(deploy.PhaseRolledBack)}, true, false},
		{"failed", deploy.Status{Rollout: ro(deploy.PhaseFailed)}, true, false},
		// An alias moved and the controller has not acted yet: the last
		// rollout (or none) is not the end of the one about to start.
		{"pending, no rollout yet", deploy.Status{Pending: "alias churn@champion moved to version 2"}, false, false},
		{"pending after a succeeded one", deploy.Status{Pending: "alias churn@champion moved to version 3", Rollout: ro(deploy.PhaseSucceeded)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended, ok := rolloutEnded(&deploy.State{Status: tc.status})
			if ended != tc.ended || ok != tc.ok {
				t.Errorf("rolloutEnded = %v, %v; want %v, %v", ended, ok, tc.ended, tc.ok)
			}
		})
	}
}
