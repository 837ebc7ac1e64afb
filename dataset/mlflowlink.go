package dataset

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// How an MLflow run's dataset input (mlflow.log_input) names a Kiln
// dataset version. The rule, in order:
//
//  1. The input's source names the version: the source URI (MLflow stores
//     a JSON object such as {"url": …} or {"uri": …}; a bare string is
//     read too) is either kiln://datasets/NAME@VERSION, or the API URL of
//     the version, http(s)://HOST[/PREFIX]/api/v1/datasets/NAME/versions/VERSION.
//     VERSION is a number or "latest" (resolved when the input is logged).
//  2. Otherwise the input's digest is 8 to 64 lowercase hexadecimal digits
//     that begin the digest of a version. A digest shorter than 16 digits
//     must also come with the dataset's name as the input's name: MLflow
//     computes 8-digit digests of its own (for pandas and numpy datasets),
//     and one of them could begin some version's digest by chance. Among
//     several matches, a version of the dataset named like the input wins,
//     then the newest.
//
// An input that meets neither rule is not linked.
const (
	// URIScheme is the scheme of Kiln dataset URIs: kiln://datasets/NAME@VERSION.
	URIScheme = "kiln"
	// minUnnamedDigest is the shortest digest prefix that links an input
	// without a matching name.
	minUnnamedDigest = 16
)

// URI returns the version's Kiln URI, kiln://datasets/NAME@VERSION (or
// NAME@latest for version 0): what an MLflow dataset input's source may
// name to link a run to the version.
func (r VersionRef) URI() string { return URIScheme + "://datasets/" + r.String() }

// ParseSourceRef finds a version reference in an MLflow dataset source:
// a kiln:// URI or a Kiln API URL of a version, bare or inside MLflow's
// JSON source object (keys "uri", "url" or "path"). It reports false when
// the source names no version.
func ParseSourceRef(source string) (VersionRef, bool) {
	source = strings.TrimSpace(source)
	if len(source) > MaxTextLength {
		return VersionRef{}, false
	}
	if strings.HasPrefix(source, "{") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(source), &obj); err != nil {
			return VersionRef{}, false
		}
		for _, k := range []string{"uri", "url", "path"} {
			if s, ok := obj[k].(string); ok {
				if ref, ok := ParseSourceRef(s); ok {
					return ref, true
				}
			}
		}
		return VersionRef{}, false
	}
	u, err := url.Parse(source)
	if err != nil {
		return VersionRef{}, false
	}
	var spec string
	switch strings.ToLower(u.Scheme) {
	case URIScheme:
		if u.Host != "datasets" || u.RawQuery != "" || u.Fragment != "" {
			return VersionRef{}, false
		}
		spec = strings.TrimPrefix(u.Path, "/")
	case "http", "https":
		i := strings.LastIndex(u.Path, "/api/v1/datasets/")
		if i < 0 {
			return VersionRef{}, false
		}
		name, ver, ok := strings.Cut(strings.TrimSuffix(u.Path[i+len("/api/v1/datasets/"):], "/"), "/versions/")
		if !ok || strings.Contains(ver, "/") {
			return VersionRef{}, false
		}
		spec = name + "@" + ver
	default:
		return VersionRef{}, false
	}
	ref, err := ParseVersionRef(spec)
	if err != nil {
		return VersionRef{}, false
	}
	return ref, true
}

// MLflowInput is a dataset input logged on an MLflow run: MLflow's dataset
// name, digest, source type and source, and the input's context tag
// (mlflow.data.context, e.g. "training").
type MLflowInput struct {
	Name       string
	Digest     string
	SourceType string
	Source     string
	Context    string
}

// MatchMLflowInput returns the version that an MLflow input names by the
// rule above, or an error matching errdefs.ErrNotFound when it names none
// (or names a version that does not exist).
func (s *Store) MatchMLflowInput(ctx context.Context, in MLflowInput) (*Version, error) {
	if ref, ok := ParseSourceRef(in.Source); ok {
		return s.GetVersion(ctx, ref)
	}
	d := in.Digest
	if len(d) < 8 || len(d) > 64 || strings.Trim(d, "0123456789abcdef") != "" {
		return nil, errdefs.NotFound("MLflow dataset '%s' names no Kiln dataset version", clip(in.Name))
	}
	vs, err := s.FindVersions(ctx, d)
	if err != nil {
		return nil, err
	}
	var pick *Version
	for _, v := range vs {
		if v.Dataset == in.Name {
			pick = v
			break
		}
	}
	if pick == nil && len(d) >= minUnnamedDigest && len(vs) > 0 {
		pick = vs[0]
	}
	if pick == nil {
		return nil, errdefs.NotFound("MLflow dataset '%s' (digest %s) names no Kiln dataset version", clip(in.Name), d)
	}
	return pick, nil
}

// LinkMLflowInputs links a run to the versions that its MLflow inputs
// name, and returns the links made. Inputs that name no version are
// skipped; the first other error stops and is returned with the links
// made before it.
func (s *Store) LinkMLflowInputs(ctx context.Context, runID string, ins []MLflowInput) ([]RunLink, error) {
	var out []RunLink
	for _, in := range ins {
		v, err := s.MatchMLflowInput(ctx, in)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		l := RunLink{Version: v.Ref(), RunID: runID, MLflowName: in.Name, MLflowDigest: in.Digest, MLflowSource: in.Source, Context: in.Context}
		if err := s.LinkRun(ctx, l); err != nil {
			return out, fmt.Errorf("dataset: link run %s to %s: %w", runID, v.Ref(), err)
		}
		out = append(out, l)
	}
	return out, nil
}

// ModelUse is a registered model version that used a dataset version:
// linked to it explicitly (Via "link", LinkModelVersion), or created from
// a run that used it (Via "run": the model version's run, or the source
// run of its logged model, is RunID).
type ModelUse struct {
	ModelName    string `json:"model_name"`
	ModelVersion int64  `json:"model_version"`
	Via          string `json:"via"`
	RunID        string `json:"run_id,omitempty"`
}

// VersionUse is a dataset version that a registered model version used,
// as ModelUse says.
type VersionUse struct {
	Version VersionRef `json:"version"`
	Via     string     `json:"via"`
	RunID   string     `json:"run_id,omitempty"`
}

// How a model version is joined to the runs that used a dataset version:
// its run, or the source run of its logged model.
const modelRunJoin = `(mv.run_id = l.run_uuid OR (mv.run_id = '' AND mv.model_id <> '' AND
	mv.model_id IN (SELECT lm.model_id FROM logged_models lm WHERE lm.source_run_id = l.run_uuid)))`

// ModelsOfVersion returns the model versions that used a version: the
// explicit links, then those created from runs linked to it (a query-time
// join, so a model version registered after the run was linked counts
// too). Deleted model versions are left out.
func (s *Store) ModelsOfVersion(ctx context.Context, ref VersionRef) ([]ModelUse, error) {
	id, number, err := s.resolve(ctx, s.db.R, ref)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`
		SELECT mv.name, mv.version, 'link', '' FROM data_model_links dl JOIN model_versions mv ON mv.name = dl.model_name AND mv.version = dl.model_version
		WHERE dl.dataset_id = ? AND dl.version = ? AND mv.deleted = ?
		UNION
		SELECT mv.name, mv.version, 'run', l.run_uuid FROM data_run_links l JOIN model_versions mv ON `+modelRunJoin+`
		WHERE l.dataset_id = ? AND l.version = ? AND mv.deleted = ?
		ORDER BY 1, 2, 3, 4`), id, number, false, id, number, false)
	if err != nil {
		return nil, fmt.Errorf("dataset: models of version: %w", err)
	}
	defer rows.Close()
	var out []ModelUse
	for rows.Next() {
		var u ModelUse
		if err := rows.Scan(&u.ModelName, &u.ModelVersion, &u.Via, &u.RunID); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// VersionsOfModel returns the dataset versions that a registered model
// version used: explicit links, then the versions of its run (or of its
// logged model's source run).
func (s *Store) VersionsOfModel(ctx context.Context, modelName string, modelVersion int64) ([]VersionUse, error) {
	var one int
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT 1 FROM model_versions WHERE name = ? AND version = ? AND deleted = ?`), modelName, modelVersion, false).Scan(&one)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errdefs.NotFound("Model Version (name=%s, version=%d) not found", modelName, modelVersion)
		}
		return nil, fmt.Errorf("dataset: versions of model: %w", err)
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`
		SELECT d.name, dl.version, 'link', '' FROM data_model_links dl JOIN data_datasets d ON d.dataset_id = dl.dataset_id
		WHERE dl.model_name = ? AND dl.model_version = ?
		UNION
		SELECT d.name, l.version, 'run', l.run_uuid FROM model_versions mv JOIN data_run_links l ON `+modelRunJoin+`
		JOIN data_datasets d ON d.dataset_id = l.dataset_id
		WHERE mv.name = ? AND mv.version = ?
		ORDER BY 1, 2, 3, 4`), modelName, modelVersion, modelName, modelVersion)
	if err != nil {
		return nil, fmt.Errorf("dataset: versions of model: %w", err)
	}
	defer rows.Close()
	var out []VersionUse
	for rows.Next() {
		var u VersionUse
		if err := rows.Scan(&u.Version.Dataset, &u.Version.Version, &u.Via, &u.RunID); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
