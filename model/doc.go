// Package model reads MLflow model bundles: the MLmodel file (flavors,
// signature, input example), the model's files from a local directory or
// from a run, a registered model version, an alias or a logged model, and
// the choice of the runtime that serves it.
package model
