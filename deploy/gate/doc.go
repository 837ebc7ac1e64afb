// Package gate is Kiln's promotion gate, after TFX's Evaluator
// "blessing": a policy (kind GatePolicy) names a registered model,
// evaluation data and metrics with thresholds; an evaluation scores a
// candidate version and the baseline (the version the policy's baseline
// alias, "champion" by default, points at) on the data and checks
//
//   - value thresholds: min ≤ metric ≤ max, on the candidate;
//   - change thresholds: the candidate's change from the baseline,
//     absolute or relative, bounded per direction;
//   - slices: the metric per value of a column, with a bound on the
//     disparity (max − min) and on the ratio (min / max) across slices.
//
// Without a baseline (the alias is not set, or the policy's baseline is
// "none") the candidate is rubber-stamped: change thresholds are skipped,
// value and slice thresholds still apply.
//
// Each evaluation is stored, immutable, as a Result, and summarised on the
// model version as the tags kiln.gate.<policy> = passed|failed and
// kiln.gate.<policy>.result_id, so MLflow clients see it. A policy may
// protect aliases (moving "champion" to a version needs a passing result
// of the policy for that version, evaluated under the policy's current
// spec) and endpoints (routing a production endpoint to a version needs
// the same); Service.AllowAlias and Service.AllowRoute enforce it, with
// errors wrapping ErrGateRequired or ErrGateFailed.
package gate
