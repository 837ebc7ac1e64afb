// Package pipeline runs DAGs of steps: a Pipeline document (kind Pipeline,
// applied with kiln apply) names steps with a command (and optionally a
// container image), parameters, inputs and outputs; the Service turns a run
// request into a pipeline run whose steps are leased through the database
// (so that with several servers on one PostgreSQL each step starts once),
// executed by an Executor (local processes, or Kubernetes Jobs in package
// pipeline/kube), cached by a key over the step's spec and the content
// digests of its inputs, retried with backoff, and recorded in the tracking
// store as one parent run with a child run per step, so MLflow clients see
// them. Schedules and triggers live in package pipeline/trigger.
package pipeline
