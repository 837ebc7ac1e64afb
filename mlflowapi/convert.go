package mlflowapi

import (
	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/tracking"
)

// JSON shapes of MLflow's protos (snake_case, int64 as numbers, enums as names).

type kvJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func kvsJSON(kvs []tracking.KV) []kvJSON {
	out := make([]kvJSON, len(kvs))
	for i, kv := range kvs {
		out[i] = kvJSON{kv.Key, kv.Value}
	}
	return out
}

func kvsFromJSON(in []kvJSON) []tracking.KV {
	out := make([]tracking.KV, len(in))
	for i, kv := range in {
		out[i] = tracking.KV{Key: kv.Key, Value: kv.Value}
	}
	return out
}

type experimentJSON struct {
	ExperimentID     string   `json:"experiment_id"`
	Name             string   `json:"name"`
	ArtifactLocation string   `json:"artifact_location"`
	LifecycleStage   string   `json:"lifecycle_stage"`
	LastUpdateTime   int64    `json:"last_update_time"`
	CreationTime     int64    `json:"creation_time"`
	Tags             []kvJSON `json:"tags,omitempty"`
}

func toExperimentJSON(e *tracking.Experiment) experimentJSON {
	return experimentJSON{
		ExperimentID: e.ID, Name: access.ShownName(e.Name), ArtifactLocation: e.ArtifactLocation, LifecycleStage: e.LifecycleStage,
		LastUpdateTime: e.LastUpdateTime, CreationTime: e.CreationTime, Tags: kvsJSON(e.Tags),
	}
}

type runInfoJSON struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	RunName        string `json:"run_name"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        *int64 `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

func toRunInfoJSON(i *tracking.RunInfo) runInfoJSON {
	return runInfoJSON{
		RunID: i.RunID, RunUUID: i.RunID, RunName: i.RunName, ExperimentID: i.ExperimentID, UserID: i.UserID,
		Status: i.Status, StartTime: i.StartTime, EndTime: i.EndTime, ArtifactURI: i.ArtifactURI, LifecycleStage: i.LifecycleStage,
	}
}

type metricJSON struct {
	Key           string  `json:"key"`
	Value         Float64 `json:"value"`
	Timestamp     int64   `json:"timestamp"`
	Step          int64   `json:"step"`
	RunID         string  `json:"run_id,omitempty"`
	ModelID       string  `json:"model_id,omitempty"`
	DatasetName   string  `json:"dataset_name,omitempty"`
	DatasetDigest string  `json:"dataset_digest,omitempty"`
}

func toMetricJSON(m tracking.Metric) metricJSON {
	return metricJSON{Key: m.Key, Value: Float64(m.Value), Timestamp: m.Timestamp, Step: m.Step, RunID: m.RunID,
		ModelID: m.ModelID, DatasetName: m.DatasetName, DatasetDigest: m.DatasetDigest}
}

func metricsJSON(ms []tracking.Metric) []metricJSON {
	out := make([]metricJSON, len(ms))
	for i, m := range ms {
		out[i] = toMetricJSON(m)
	}
	return out
}

type datasetJSON struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

type datasetInputJSON struct {
	Tags    []kvJSON    `json:"tags,omitempty"`
	Dataset datasetJSON `json:"dataset"`
}

type modelInputJSON struct {
	ModelID string `json:"model_id"`
}

type modelOutputJSON struct {
	ModelID string `json:"model_id"`
	Step    Int64  `json:"step"`
}

type runJSON struct {
	Info runInfoJSON `json:"info"`
	Data struct {
		Metrics []metricJSON `json:"metrics,omitempty"`
		Params  []kvJSON     `json:"params,omitempty"`
		Tags    []kvJSON     `json:"tags,omitempty"`
	} `json:"data"`
	Inputs struct {
		DatasetInputs []datasetInputJSON `json:"dataset_inputs,omitempty"`
		ModelInputs   []modelInputJSON   `json:"model_inputs,omitempty"`
	} `json:"inputs"`
	Outputs struct {
		ModelOutputs []modelOutputJSON `json:"model_outputs,omitempty"`
	} `json:"outputs"`
}

func toRunJSON(r *tracking.Run) runJSON {
	var out runJSON
	out.Info = toRunInfoJSON(&r.Info)
	out.Data.Metrics = metricsJSON(r.Metrics)
	out.Data.Params = kvsJSON(r.Params)
	out.Data.Tags = kvsJSON(r.Tags)
	for _, d := range r.DatasetInputs {
		out.Inputs.DatasetInputs = append(out.Inputs.DatasetInputs, datasetInputJSON{Tags: kvsJSON(d.Tags), Dataset: datasetJSON{
			Name: d.Dataset.Name, Digest: d.Dataset.Digest, SourceType: d.Dataset.SourceType, Source: d.Dataset.Source,
			Schema: d.Dataset.Schema, Profile: d.Dataset.Profile,
		}})
	}
	for _, m := range r.ModelInputs {
		out.Inputs.ModelInputs = append(out.Inputs.ModelInputs, modelInputJSON{m})
	}
	for _, m := range r.ModelOutputs {
		out.Outputs.ModelOutputs = append(out.Outputs.ModelOutputs, modelOutputJSON{m.ModelID, Int64(m.Step)})
	}
	return out
}

type loggedModelJSON struct {
	Info struct {
		ModelID                string   `json:"model_id"`
		ExperimentID           string   `json:"experiment_id"`
		Name                   string   `json:"name"`
		CreationTimestampMS    int64    `json:"creation_timestamp_ms"`
		LastUpdatedTimestampMS int64    `json:"last_updated_timestamp_ms"`
		ArtifactURI            string   `json:"artifact_uri"`
		Status                 string   `json:"status"`
		ModelType              string   `json:"model_type,omitempty"`
		SourceRunID            string   `json:"source_run_id,omitempty"`
		StatusMessage          string   `json:"status_message,omitempty"`
		Tags                   []kvJSON `json:"tags,omitempty"`
	} `json:"info"`
	Data struct {
		Params  []kvJSON     `json:"params,omitempty"`
		Metrics []metricJSON `json:"metrics,omitempty"`
	} `json:"data"`
}

func toLoggedModelJSON(m *tracking.LoggedModel) loggedModelJSON {
	var out loggedModelJSON
	i := &out.Info
	i.ModelID, i.ExperimentID, i.Name = m.ID, m.ExperimentID, m.Name
	i.CreationTimestampMS, i.LastUpdatedTimestampMS = m.CreationTime, m.LastUpdatedTime
	i.ArtifactURI, i.Status, i.ModelType, i.SourceRunID, i.StatusMessage = m.ArtifactLocation, m.Status, m.ModelType, m.SourceRunID, m.StatusMessage
	i.Tags = kvsJSON(m.Tags)
	out.Data.Params = kvsJSON(m.Params)
	out.Data.Metrics = metricsJSON(m.Metrics)
	return out
}
