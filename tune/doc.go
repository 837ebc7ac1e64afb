// Package tune is Kiln's hyperparameter search: search spaces (uniform and
// log-uniform floats, ints with a step or on a log scale, categoricals,
// parameters conditional on others), samplers (grid, random, and TPE with
// Optuna's defaults), pruners (median stopping and asynchronous
// successive halving, with Optuna's rules), and an Optimizer that runs
// trials in parallel and keeps the best.
//
// An objective is either a Go function (ObjectiveFunc: tests, benchmarks,
// embedding) or a command (CommandObjective): each trial then runs as a
// child run of the study's parent run in an MLflow-compatible tracking
// server, with its parameters logged and in its environment; the trial
// reports intermediate values by logging the objective metric with a step,
// which the study reads back while the trial runs, and a pruned trial's
// process group is killed and its run marked KILLED.
//
// Study documents (kind: Study) describe command studies for
// `kiln tune -f study.yaml`; see ParseStudy and docs/tuning.md.
package tune
