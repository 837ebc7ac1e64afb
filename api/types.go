package api

import (
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/dataset/validate"
)

// Request and response bodies. Field names are the JSON names that
// openapi.yaml documents.

// CreateDatasetRequest is the body of POST /datasets.
type CreateDatasetRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// UpdateRequest is the body of PATCH on a dataset or a version: a new
// description (when set), tags to set and tag keys to delete.
type UpdateRequest struct {
	Description *string           `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	DeleteTags  []string          `json:"delete_tags,omitempty"`
}

// DatasetResponse wraps one dataset.
type DatasetResponse struct {
	Dataset *dataset.Dataset `json:"dataset"`
}

// DatasetList is a page of datasets.
type DatasetList struct {
	Datasets      []*dataset.Dataset `json:"datasets"`
	NextPageToken string             `json:"next_page_token,omitempty"`
}

// CreateVersionRequest is the body of POST /datasets/{name}/versions:
// either Manifest, the digest of a manifest already stored in the content
// store (the client pushed the objects and the manifest first), or
// SourceURL, a bucket URL (s3://bucket/prefix) that the server reads,
// hashes and copies into the content store itself.
type CreateVersionRequest struct {
	Manifest    string            `json:"manifest,omitempty"`
	SourceURL   string            `json:"source_url,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Source records where the content came from (a client's path); for
	// SourceURL it is the URL.
	Source    string `json:"source,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// CreateVersionResponse is the answer of POST /datasets/{name}/versions.
// Created is false when the content equals the latest version's, which is
// then returned.
type CreateVersionResponse struct {
	Version *dataset.Version `json:"version"`
	Created bool             `json:"created"`
	// Transfer says what a server-read source copied (SourceURL only).
	Transfer *TransferSummary `json:"transfer,omitempty"`
}

// TransferSummary says what the server did for a server-read source.
type TransferSummary struct {
	Files       int   `json:"files"`
	Bytes       int64 `json:"bytes"`
	SentObjects int   `json:"sent_objects"`
	SentBytes   int64 `json:"sent_bytes"`
}

// VersionResponse wraps one version.
type VersionResponse struct {
	Version *dataset.Version `json:"version"`
}

// VersionList is a page of versions, newest first.
type VersionList struct {
	Versions      []*dataset.Version `json:"versions"`
	NextPageToken string             `json:"next_page_token,omitempty"`
}

// VersionDetail is the answer of GET /datasets/{name}/versions/{version}:
// the version (with its schema and profile), a summary of its manifest,
// its validation results and its lineage.
type VersionDetail struct {
	Version *dataset.Version `json:"version"`
	// URI is the version's kiln:// URI, which names it as the source of
	// an MLflow dataset input (see dataset.ParseSourceRef).
	URI         string                      `json:"uri"`
	Manifest    *ManifestSummary            `json:"manifest"`
	Validations []*dataset.ValidationResult `json:"validations"`
	Lineage     *Lineage                    `json:"lineage"`
}

// ManifestSummary describes a version's files without listing them all.
type ManifestSummary struct {
	Kind      dataset.Kind `json:"kind"`
	FileCount int          `json:"file_count"`
	TotalSize int64        `json:"total_size"`
	// Tables are the table files (CSV, Parquet, JSON Lines), at most
	// MaxSummaryTables of them.
	Tables          []dataset.Entry `json:"tables"`
	TablesTruncated bool            `json:"tables_truncated,omitempty"`
}

// MaxSummaryTables bounds ManifestSummary.Tables.
const MaxSummaryTables = 100

// MissingRequest is the body of POST /content/objects/missing.
type MissingRequest struct {
	Digests []dataset.Digest `json:"digests"`
}

// BatchResponse answers a batch upload of objects.
type BatchResponse struct {
	Stored int `json:"stored"`
}

// MissingResponse lists the digests of a MissingRequest that the content
// store lacks, in the order asked.
type MissingResponse struct {
	Missing []dataset.Digest `json:"missing"`
}

// DiffResponse is the answer of GET …/versions/{version}/diff. From is
// nil when the version was compared with nothing (a first version).
type DiffResponse struct {
	From   *dataset.VersionRef `json:"from"`
	To     dataset.VersionRef  `json:"to"`
	Files  *dataset.Diff       `json:"files"`
	Tables []TableDiff         `json:"tables"`
	// TablesTruncated says more than MaxDiffTables table files changed;
	// only the first were read.
	TablesTruncated bool `json:"tables_truncated,omitempty"`
}

// TableDiff compares a changed (or added) table file: row counts and
// schema changes. Error says why a table could not be read.
type TableDiff struct {
	Path          string         `json:"path"`
	Status        string         `json:"status"` // "changed" or "added"
	OldRows       *int64         `json:"old_rows,omitempty"`
	NewRows       *int64         `json:"new_rows,omitempty"`
	SchemaChanges []table.Change `json:"schema_changes"`
	Error         string         `json:"error,omitempty"`
}

// ProfileRequest is the (optional) body of POST …/profile.
type ProfileRequest struct {
	// Path picks one table file; by default every table file of the
	// version is profiled and the profiles merged (they must share a
	// schema).
	Path string `json:"path,omitempty"`
}

// ProfileResponse carries a version's profile. Stored says it was saved
// on the version (it covers all of the version's tables); Files are the
// table files profiled.
type ProfileResponse struct {
	Version dataset.VersionRef `json:"version"`
	Files   []string           `json:"files"`
	Stored  bool               `json:"stored"`
	Schema  *table.Schema      `json:"schema"`
	Profile *profile.Profile   `json:"profile"`
}

// ValidateRequest is the JSON body of POST …/validations (a YAML body,
// Content-Type application/yaml, is the suite itself).
type ValidateRequest struct {
	Suite string `json:"suite"` // the suite, as YAML
	// Path picks one table file (needed when the version holds several).
	Path string `json:"path,omitempty"`
	// DryRun validates without storing the result.
	DryRun bool `json:"dry_run,omitempty"`
}

// ValidateResponse is a suite's report; ValidationID is the stored
// result's id (0 for a dry run).
type ValidateResponse struct {
	Version      dataset.VersionRef `json:"version"`
	ValidationID int64              `json:"validation_id"`
	Report       *validate.Report   `json:"report"`
}

// ValidationList lists a version's validation results, oldest first.
type ValidationList struct {
	Validations []*dataset.ValidationResult `json:"validations"`
}

// SplitRequest is the body of POST …/splits.
type SplitRequest struct {
	Spec dataset.SplitSpec `json:"spec"`
	// Names maps parts to dataset names (default "<dataset>-<part>").
	Names     map[string]string `json:"names,omitempty"`
	CreatedBy string            `json:"created_by,omitempty"`
}

// SplitResponse lists the versions a split recorded.
type SplitResponse struct {
	Source  dataset.VersionRef    `json:"source"`
	Outputs []dataset.SplitOutput `json:"outputs"`
	Stats   *dataset.SplitStats   `json:"stats"`
}

// Lineage is what a version came from and what used it.
type Lineage struct {
	Version       dataset.VersionRef   `json:"version"`
	Parent        *dataset.VersionRef  `json:"parent,omitempty"`
	Children      []dataset.VersionRef `json:"children"`
	Runs          []dataset.RunLink    `json:"runs"`
	ModelVersions []dataset.ModelUse   `json:"model_versions"`
}

// LinkRunRequest is the body of POST …/lineage/runs.
type LinkRunRequest struct {
	RunID   string `json:"run_id"`
	Context string `json:"context,omitempty"`
}

// LinkModelRequest is the body of POST …/lineage/model-versions.
type LinkModelRequest struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// RunDatasets lists the dataset versions a run used.
type RunDatasets struct {
	RunID    string            `json:"run_id"`
	Datasets []dataset.RunLink `json:"datasets"`
}

// ModelDatasets lists the dataset versions a model version used.
type ModelDatasets struct {
	Name     string               `json:"name"`
	Version  int64                `json:"version"`
	Datasets []dataset.VersionUse `json:"datasets"`
}
