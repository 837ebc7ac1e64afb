// Package local runs pipeline steps as processes on the server's own
// machine: the "local" pipeline.Executor.
//
// Each attempt gets a folder of its own (Options.WorkDir/<step>-<attempt>-…)
// with inputs/ and outputs/ inside. Dataset and artifact inputs are fetched
// through the pipeline.Stager to inputs/<name>; the command runs in its own
// process group with the executor's environment, the task's Env, and
// KILN_INPUTS, KILN_OUTPUTS, KILN_INPUT_<NAME> and, for a dataset input,
// KILN_INPUT_<NAME>_REF (the pinned name@N) on top, and the folder of the
// kiln binary first on PATH (Options.KilnDir); its stdout and
// stderr are merged and streamed to the attempt's log line by line as they
// come. Cancellation and timeouts stop the whole process tree: SIGTERM to
// the group, SIGKILL after a grace period; processes the step leaves behind
// when it exits are stopped the same way. After a zero exit the declared
// outputs are collected: scalar ones (metric, parameter, model) are read
// from $KILN_OUTPUTS/<name> (or the output's path) into Outcome.Outputs,
// artifacts are uploaded to Task.OutputPrefix/<name>.
//
// RunTask is the attempt itself, without the executor's parallelism bound
// and folder management: `kiln step exec` calls it inside a Kubernetes pod
// with a Stager that talks to the server's HTTP API.
package local
