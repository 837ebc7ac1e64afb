// Package kube is the Kubernetes executor of pipeline steps: each attempt
// of a step is a batch/v1 Job whose pod runs `kiln step exec`.
//
// The Job's pod has an init container from Options.KilnImage that copies
// the kiln binary into a shared emptyDir (`kiln step install`), and a
// "step" container from the step's image (Options.DefaultImage when the
// step has none) that runs that binary: `kiln step exec` reads the task
// from the KILN_TASK environment variable (the Task as JSON, see
// EncodeTask), fetches the inputs and stores the outputs through the
// server's HTTP API (api/client.Stager), runs the command with
// pipeline/local.RunTask, and writes the Outcome to the container's
// termination message (/dev/termination-log), which Kubernetes copies into
// the pod's status. An Outcome larger than a termination message holds is
// stored next to the attempt's outputs instead, and the message points at
// it.
//
// The Executor creates the Job (a deterministic name, so creating it again
// finds the same Job: AlreadyExists attaches to it), records its handle
// (namespace/name) through pipeline.HandleSetter, polls the Job and its
// pod until the Job completes or fails, streams the pod's log into the
// attempt's log, and reads the Outcome. Cancelling deletes the Job with
// background propagation. Image pull failures, the Job's deadline
// (activeDeadlineSeconds from the step's timeout), OOM kills and
// evictions become Outcomes whose Error says so. Attach resumes waiting on
// a Job another server created, given its handle.
package kube
