// Package model reads MLflow model bundles: the MLmodel file (flavors,
// signature, input example), the model's files from a local directory or
// from a run, a registered model version, an alias or a logged model, and
// the choice of the runtime that serves it.
//
// Three steps, each usable alone:
//
//   - ParseURI / a Resolver: a model URI (a path, runs:/, models:/name/1,
//     models:/name@alias, models:/name/Production, models:/<model_id>,
//     m-<id>, mlflow-artifacts:/) becomes a local directory.
//     NewStoreResolver reads Kiln's stores in process; NewRemoteResolver
//     asks a Kiln or MLflow server over HTTP and caches downloads under
//     DefaultCacheDir, keyed by server and artifact URI, so a second start
//     of the same version downloads nothing.
//   - ReadMLmodel / ReadBundle: the directory's MLmodel file, signature and
//     input example, and the runtime backend its flavors call for
//     (SelectBackend: onnx, xgboost, lightgbm, else python).
//   - Open: both, then runtime.Load; the result is a runtime.Model with
//     its Bundle.
//
// For `kiln serve`:
//
//	r, err := model.NewRemoteResolver(trackingURL, model.RemoteOptions{})
//	m, err := model.Open(ctx, "models:/churn@champion", model.OpenOptions{Resolver: r})
//	defer m.Close()
//	sig := m.Signature()          // runtime signature (names, dtypes, shapes)
//	ex := m.Bundle.InputExample  // {"dataframe_split": …} or {"inputs": …}, or nil
package model
