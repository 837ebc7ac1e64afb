// Package deploy turns registered model versions into endpoints served by
// `kiln server`: routes with weights, shadow mirroring, sticky A/B
// experiments, canary and blue-green rollouts with automatic rollback,
// capacity limits with load shedding, and a shared, memory-bounded cache of
// loaded models.
//
// An Endpoint document (spec.go) is the desired state; the Manager stores
// it, resolves its model references through the registry, loads the models
// and answers the serving stack as a serving.Repository (which route a
// request reaches), serving.Admitter (concurrency, queueing, shedding) and
// serving.Observer (per-route statistics, shadow copies). The rollout
// controller moves live traffic toward the desired state step by step and
// records every change as an event with who, when and why.
package deploy
