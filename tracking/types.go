package tracking

// KV is a key and a value: a param or a tag.
type KV struct {
	Key   string
	Value string
}

// ViewType selects active, deleted or all entities in a search.
type ViewType int

const (
	ActiveOnly ViewType = iota
	DeletedOnly
	All
)

// ParseViewType accepts MLflow's names (and "" for the default).
func ParseViewType(s string) (ViewType, bool) {
	switch s {
	case "", "ACTIVE_ONLY", "1":
		return ActiveOnly, true
	case "DELETED_ONLY", "2":
		return DeletedOnly, true
	case "ALL", "3":
		return All, true
	}
	return 0, false
}

func (v ViewType) stages() []any {
	switch v {
	case DeletedOnly:
		return []any{"deleted"}
	case All:
		return []any{"active", "deleted"}
	}
	return []any{"active"}
}

// Lifecycle stages.
const (
	StageActive  = "active"
	StageDeleted = "deleted"
)

// Experiment is an MLflow experiment.
type Experiment struct {
	ID               string
	Name             string
	ArtifactLocation string
	LifecycleStage   string
	CreationTime     int64
	LastUpdateTime   int64
	Tags             []KV
}

// RunInfo is a run's metadata.
type RunInfo struct {
	RunID          string
	ExperimentID   string
	RunName        string
	UserID         string
	Status         string
	StartTime      int64
	EndTime        *int64
	ArtifactURI    string
	LifecycleStage string
}

// Metric is one logged value of a metric.
type Metric struct {
	Key           string
	Value         float64
	Timestamp     int64
	Step          int64
	RunID         string // set where results span runs
	ModelID       string
	DatasetName   string
	DatasetDigest string
}

// Dataset is a dataset logged as a run input.
type Dataset struct {
	Name       string
	Digest     string
	SourceType string
	Source     string
	Schema     string
	Profile    string
}

// DatasetInput is a dataset used by a run, with input tags such as
// mlflow.data.context.
type DatasetInput struct {
	Tags    []KV
	Dataset Dataset
}

// ModelOutput links a logged model to the run that produced it.
type ModelOutput struct {
	ModelID string
	Step    int64
}

// Run is a run with its data, inputs and outputs.
type Run struct {
	Info          RunInfo
	Metrics       []Metric // latest value per key
	Params        []KV
	Tags          []KV
	DatasetInputs []DatasetInput
	ModelInputs   []string
	ModelOutputs  []ModelOutput
}

// Run statuses.
var runStatuses = map[string]bool{"RUNNING": true, "SCHEDULED": true, "FINISHED": true, "FAILED": true, "KILLED": true}

// Logged model statuses.
const (
	ModelPending      = "LOGGED_MODEL_PENDING"
	ModelReady        = "LOGGED_MODEL_READY"
	ModelUploadFailed = "LOGGED_MODEL_UPLOAD_FAILED"
)

// LoggedModel is an MLflow 3 logged model.
type LoggedModel struct {
	ID               string
	ExperimentID     string
	Name             string
	ArtifactLocation string
	CreationTime     int64
	LastUpdatedTime  int64
	Status           string
	StatusMessage    string
	ModelType        string
	SourceRunID      string
	Tags             []KV
	Params           []KV
	Metrics          []Metric
}
