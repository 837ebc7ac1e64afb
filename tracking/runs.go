package tracking

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// Reserved tag keys.
const (
	TagRunName = "mlflow.runName"
	TagUser    = "mlflow.user"
)

// CreateRunInput describes a new run.
type CreateRunInput struct {
	ExperimentID string
	UserID       string
	RunName      string
	StartTime    int64
	Tags         []KV
}

func newRunID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40 // a version-4 UUID, as MLflow's uuid4().hex
	b[8] = (b[8] & 0x3f) | 0x80
	return hex.EncodeToString(b[:])
}

var (
	nameAdjectives = []string{"amazing", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fearless",
		"gentle", "glowing", "honest", "humble", "jolly", "keen", "lively", "loud", "merry", "nimble", "polite", "quiet",
		"rare", "sassy", "shy", "silent", "smooth", "sturdy", "swift", "tasty", "unique", "vaunted", "wise", "zealous"}
	nameNouns = []string{"ant", "bass", "bear", "bird", "cat", "colt", "crane", "deer", "doe", "eel", "finch", "fox", "goat",
		"hawk", "hen", "jay", "koi", "lark", "lynx", "mole", "moth", "newt", "owl", "ox", "perch", "ram", "seal", "shark",
		"sloth", "snail", "stag", "toad", "trout", "whale", "wolf", "wren", "yak"}
)

func pick(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

// generateRunName returns a name like MLflow's "<adjective>-<noun>-<number>".
func generateRunName() string {
	return fmt.Sprintf("%s-%s-%d", nameAdjectives[pick(len(nameAdjectives))], nameNouns[pick(len(nameNouns))], pick(1000))
}

// CreateRun creates a run in an active experiment.
func (s *Store) CreateRun(ctx context.Context, in CreateRunInput) (*Run, error) {
	if in.ExperimentID == "" {
		in.ExperimentID = "0"
	}
	exp, err := s.GetExperiment(ctx, in.ExperimentID)
	if err != nil {
		return nil, err
	}
	if exp.LifecycleStage != StageActive {
		return nil, errdefs.Invalid("The experiment %s must be in the 'active' state. Current state is %s.", exp.ID, exp.LifecycleStage)
	}
	tags := dedupLastWins(in.Tags)
	for _, t := range tags {
		if err := validateKey("tag", t.Key); err != nil {
			return nil, err
		}
		if err := validateValueLength("tag", t.Key, t.Value, MaxTagValueLength); err != nil {
			return nil, err
		}
	}
	tagName := tagValue(tags, TagRunName)
	switch {
	case in.RunName == "" && tagName != "":
		in.RunName = tagName
	case in.RunName == "":
		in.RunName = generateRunName()
	case tagName != "" && tagName != in.RunName:
		return nil, errdefs.Invalid("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='%s', mlflow.runName='%s').", in.RunName, tagName)
	}
	if tagName == "" {
		tags = append(tags, KV{TagRunName, in.RunName})
	}
	if in.UserID == "" {
		in.UserID = tagValue(tags, TagUser)
	}
	if in.StartTime == 0 {
		in.StartTime = now()
	}
	id := newRunID()
	info := RunInfo{
		RunID: id, ExperimentID: exp.ID, RunName: in.RunName, UserID: in.UserID, Status: "RUNNING",
		StartTime: in.StartTime, ArtifactURI: strings.TrimSuffix(exp.ArtifactLocation, "/") + "/" + id + "/artifacts",
		LifecycleStage: StageActive,
	}
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri)
			VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`), id, exp.ID, info.RunName, info.UserID, info.Status, info.StartTime, info.ArtifactURI)
		if err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		return s.upsertTags(ctx, tx, id, tags)
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return &Run{Info: info, Tags: tags}, nil
}

func tagValue(tags []KV, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// dedupLastWins keeps the last value of each key, in first-seen order.
func dedupLastWins(kvs []KV) []KV {
	if len(kvs) < 2 {
		return kvs
	}
	idx := make(map[string]int, len(kvs))
	out := make([]KV, 0, len(kvs))
	for _, kv := range kvs {
		if i, ok := idx[kv.Key]; ok {
			out[i].Value = kv.Value
			continue
		}
		idx[kv.Key] = len(out)
		out = append(out, kv)
	}
	return out
}

func (s *Store) upsertTags(ctx context.Context, tx store.Tx, runID string, tags []KV) error {
	if len(tags) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(tags))
	for _, t := range tags {
		args = append(args, runID, t.Key, t.Value)
	}
	q := `INSERT INTO tags (run_uuid, key, value) VALUES ` + rowsOf(3, len(tags)) + store.Upsert([]string{"run_uuid", "key"}, "value")
	if _, err := tx.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
		return fmt.Errorf("set tags: %w", err)
	}
	return nil
}

// rowsOf returns "(?, ?), (?, ?)" for n rows of cols columns.
func rowsOf(cols, n int) string {
	row := "(" + placeholders(cols) + ")"
	var b strings.Builder
	b.Grow(n * (len(row) + 2))
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

const runCols = `run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage`

func scanRunInfo(row interface{ Scan(...any) error }) (*RunInfo, error) {
	var r RunInfo
	var exp int64
	var end sql.NullInt64
	if err := row.Scan(&r.RunID, &exp, &r.RunName, &r.UserID, &r.Status, &r.StartTime, &end, &r.ArtifactURI, &r.LifecycleStage); err != nil {
		return nil, err
	}
	r.ExperimentID = strconv.FormatInt(exp, 10)
	if end.Valid {
		v := end.Int64
		r.EndTime = &v
	}
	return &r, nil
}

func (s *Store) getRunInfo(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (*RunInfo, error) {
	if err := validateRunID(id); err != nil {
		return nil, notFoundRun(id)
	}
	info, err := scanRunInfo(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+runCols+` FROM runs WHERE run_uuid = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFoundRun(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	return info, nil
}

// GetRun returns a run with the latest value of each metric, its params,
// tags, inputs and outputs.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	info, err := s.getRunInfo(ctx, s.db.R, id)
	if err != nil {
		return nil, err
	}
	runs := []*Run{{Info: *info}}
	return runs[0], s.loadRunData(ctx, runs)
}

// RunArtifactURI returns a run's artifact root URI.
func (s *Store) RunArtifactURI(ctx context.Context, runID string) (string, error) {
	info, err := s.getRunInfo(ctx, s.db.R, runID)
	if err != nil {
		return "", err
	}
	return info.ArtifactURI, nil
}

// loadRunData fills metrics, params, tags, inputs and outputs of runs with
// one query per kind for the whole page.
func (s *Store) loadRunData(ctx context.Context, runs []*Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := make(map[string]*Run, len(runs))
	args := make([]any, len(runs))
	for i, r := range runs {
		byID[r.Info.RunID] = r
		args[i] = r.Info.RunID
	}
	in := "(" + placeholders(len(args)) + ")"
	// Metrics.
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN `+in+` ORDER BY key`), args...)
	if err != nil {
		return fmt.Errorf("load metrics: %w", err)
	}
	for rows.Next() {
		var id string
		var m Metric
		var isNaN bool
		if err := rows.Scan(&id, &m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
			rows.Close()
			return err
		}
		if isNaN {
			m.Value = math.NaN()
		}
		byID[id].Metrics = append(byID[id].Metrics, m)
	}
	rows.Close()
	if err := s.loadKVs(ctx, "params", "run_uuid", args, func(id string, kv KV) { byID[id].Params = append(byID[id].Params, kv) }); err != nil {
		return err
	}
	if err := s.loadKVs(ctx, "tags", "run_uuid", args, func(id string, kv KV) { byID[id].Tags = append(byID[id].Tags, kv) }); err != nil {
		return err
	}
	// Dataset inputs.
	rows, err = s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT ri.run_uuid, ri.input_uuid, d.name, d.digest, d.source_type, d.source, COALESCE(d.schema, ''), COALESCE(d.profile, '')
		FROM run_inputs ri JOIN datasets d ON d.dataset_uuid = ri.dataset_uuid WHERE ri.run_uuid IN `+in+` ORDER BY d.name, d.digest`), args...)
	if err != nil {
		return fmt.Errorf("load inputs: %w", err)
	}
	type inputRef struct {
		run *Run
		idx int
	}
	inputs := map[string]inputRef{}
	var inputIDs []any
	for rows.Next() {
		var id, inputID string
		var d Dataset
		if err := rows.Scan(&id, &inputID, &d.Name, &d.Digest, &d.SourceType, &d.Source, &d.Schema, &d.Profile); err != nil {
			rows.Close()
			return err
		}
		r := byID[id]
		r.DatasetInputs = append(r.DatasetInputs, DatasetInput{Dataset: d})
		inputs[inputID] = inputRef{r, len(r.DatasetInputs) - 1}
		inputIDs = append(inputIDs, inputID)
	}
	rows.Close()
	if len(inputIDs) > 0 {
		rows, err = s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN (`+placeholders(len(inputIDs))+`) ORDER BY name`), inputIDs...)
		if err != nil {
			return fmt.Errorf("load input tags: %w", err)
		}
		for rows.Next() {
			var inputID string
			var kv KV
			if err := rows.Scan(&inputID, &kv.Key, &kv.Value); err != nil {
				rows.Close()
				return err
			}
			ref := inputs[inputID]
			ref.run.DatasetInputs[ref.idx].Tags = append(ref.run.DatasetInputs[ref.idx].Tags, kv)
		}
		rows.Close()
	}
	// Model inputs and outputs.
	rows, err = s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT run_uuid, model_id, direction, step FROM run_model_links WHERE run_uuid IN `+in+` ORDER BY step, model_id`), args...)
	if err != nil {
		return fmt.Errorf("load model links: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, modelID, dir string
		var step int64
		if err := rows.Scan(&id, &modelID, &dir, &step); err != nil {
			return err
		}
		r := byID[id]
		if dir == "input" {
			r.ModelInputs = append(r.ModelInputs, modelID)
		} else {
			r.ModelOutputs = append(r.ModelOutputs, ModelOutput{ModelID: modelID, Step: step})
		}
	}
	return rows.Err()
}

// loadKVs reads the key/value rows of table (params or tags of runs or
// logged models) whose idCol is one of ids, in key order, handing each to add.
func (s *Store) loadKVs(ctx context.Context, table, idCol string, ids []any, add func(id string, kv KV)) error {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+idCol+`, key, value FROM `+table+` WHERE `+idCol+` IN (`+placeholders(len(ids))+`) ORDER BY key`), ids...)
	if err != nil {
		return fmt.Errorf("load %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var kv KV
		if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
			return err
		}
		add(id, kv)
	}
	return rows.Err()
}

// UpdateRunInput changes a run's status, end time or name.
type UpdateRunInput struct {
	RunID   string
	Status  string // "" keeps it
	EndTime *int64
	RunName string // "" keeps it
}

// UpdateRun updates a run and returns its new info.
func (s *Store) UpdateRun(ctx context.Context, in UpdateRunInput) (*RunInfo, error) {
	if in.Status != "" && !runStatuses[in.Status] {
		return nil, errdefs.Invalid("Invalid value '%s' for parameter 'status' supplied.", in.Status)
	}
	var info *RunInfo
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		var err error
		if info, err = s.activeRun(ctx, tx, in.RunID); err != nil {
			return err
		}
		if in.Status != "" {
			info.Status = in.Status
		}
		if in.EndTime != nil {
			info.EndTime = in.EndTime
		}
		if in.RunName != "" {
			info.RunName = in.RunName
			if err := s.upsertTags(ctx, tx, in.RunID, []KV{{TagRunName, in.RunName}}); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE runs SET status = ?, end_time = ?, name = ? WHERE run_uuid = ?`),
			info.Status, info.EndTime, info.RunName, in.RunID)
		return err
	})
	return info, err
}

// activeRun returns a run's info inside tx, or an error if it is missing or
// not active.
func (s *Store) activeRun(ctx context.Context, tx store.Tx, id string) (*RunInfo, error) {
	info, err := s.getRunInfo(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if info.LifecycleStage != StageActive {
		return nil, notActiveRun(id, info.LifecycleStage)
	}
	return info, nil
}

// DeleteRun marks a run deleted.
func (s *Store) DeleteRun(ctx context.Context, id string) error {
	return s.setRunStage(ctx, id, StageDeleted)
}

// RestoreRun restores a deleted run.
func (s *Store) RestoreRun(ctx context.Context, id string) error {
	return s.setRunStage(ctx, id, StageActive)
}

func (s *Store) setRunStage(ctx context.Context, id, stage string) error {
	if _, err := s.getRunInfo(ctx, s.db.R, id); err != nil {
		return err
	}
	var deleted any
	if stage == StageDeleted {
		deleted = now()
	}
	_, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?`), stage, deleted, id)
	return err
}

// LogBatch logs metrics, params and tags to an active run in one
// transaction: metrics are appended (and the latest value per key updated),
// params are write-once (re-logging the same value is a no-op), tags are
// last-wins. On any error nothing is written.
func (s *Store) LogBatch(ctx context.Context, runID string, metrics []Metric, params, tags []KV) error {
	if err := validateBatchLimits(len(metrics), len(params), len(tags)); err != nil {
		return err
	}
	for i := range metrics {
		if err := validateKey("metric", metrics[i].Key); err != nil {
			return err
		}
	}
	for _, p := range params {
		if err := validateKey("param", p.Key); err != nil {
			return err
		}
		if err := validateValueLength("param", p.Key, p.Value, MaxParamValueLength); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if err := validateKey("tag", t.Key); err != nil {
			return err
		}
		if err := validateValueLength("tag", t.Key, t.Value, MaxTagValueLength); err != nil {
			return err
		}
	}
	// Duplicate param keys in one batch must agree.
	seen := make(map[string]string, len(params))
	uniqParams := params[:0:0]
	for _, p := range params {
		if v, ok := seen[p.Key]; ok {
			if v != p.Value {
				return errdefs.Invalid("Duplicate parameter keys have been submitted: ['%s']. Please ensure the request contains only one param value per param key.", p.Key)
			}
			continue
		}
		seen[p.Key] = p.Value
		uniqParams = append(uniqParams, p)
	}
	tags = dedupLastWins(tags)
	mw, err := s.prepareMetrics(ctx, runID, metrics)
	if err != nil {
		return err
	}
	return s.db.GroupTx(ctx, func(tx store.Tx) error {
		if _, err := s.activeRun(ctx, tx, runID); err != nil {
			return err
		}
		if err := s.insertParams(ctx, tx, runID, uniqParams); err != nil {
			return err
		}
		if err := mw.exec(ctx, s, tx); err != nil {
			return err
		}
		if err := s.upsertTags(ctx, tx, runID, tags); err != nil {
			return err
		}
		for _, t := range tags {
			if t.Key == TagRunName {
				if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE runs SET name = ? WHERE run_uuid = ?`), t.Value, runID); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (s *Store) insertParams(ctx context.Context, tx store.Tx, runID string, params []KV) error {
	if len(params) == 0 {
		return nil
	}
	args := []any{runID}
	for _, p := range params {
		args = append(args, p.Key)
	}
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT key, value FROM params WHERE run_uuid = ? AND key IN (`+placeholders(len(params))+`)`), args...)
	if err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	existing := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		existing[k] = v
	}
	rows.Close()
	ins := make([]any, 0, 3*len(params))
	n := 0
	for _, p := range params {
		if old, ok := existing[p.Key]; ok {
			if old != p.Value {
				return errdefs.Invalid("Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.", p.Key, old, runID, p.Value)
			}
			continue
		}
		ins = append(ins, runID, p.Key, p.Value)
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO params (run_uuid, key, value) VALUES `+rowsOf(3, n)), ins...); err != nil {
		return fmt.Errorf("insert params: %w", err)
	}
	return nil
}

// metricValue returns the stored value and NaN flag (NaN is stored as 0
// with is_nan set, as MLflow does, since SQLite has no NaN).
func metricValue(v float64) (float64, bool) {
	if math.IsNaN(v) {
		return 0, true
	}
	return v, false
}

// newer reports whether metric a supersedes b as the latest value: larger
// step, then larger timestamp, then larger value.
func newer(a, b Metric) bool {
	if a.Step != b.Step {
		return a.Step > b.Step
	}
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	av, _ := metricValue(a.Value)
	bv, _ := metricValue(b.Value)
	return av > bv
}

// metricWrite is a batch of metric values ready to be written: its
// statements are prepared before the transaction starts.
type metricWrite struct {
	runID               string
	ins, latest         store.Stmt
	insArgs, latestArgs []any
	withModel           []Metric
}

// prepareMetrics builds the writes of a batch of metrics: one packed row
// appended to metrics_recent and an upsert of the latest value per key.
func (s *Store) prepareMetrics(ctx context.Context, runID string, metrics []Metric) (*metricWrite, error) {
	if len(metrics) == 0 {
		return nil, nil
	}
	w := &metricWrite{runID: runID, insArgs: []any{runID, packMetrics(metrics)}}
	latest := make(map[string]Metric, len(metrics))
	var order []string
	for _, m := range metrics {
		if old, ok := latest[m.Key]; !ok {
			latest[m.Key] = m
			order = append(order, m.Key)
		} else if newer(m, old) {
			latest[m.Key] = m
		}
		if m.ModelID != "" {
			w.withModel = append(w.withModel, m)
		}
	}
	w.latestArgs = make([]any, 0, 6*len(order))
	for _, k := range order {
		m := latest[k]
		v, isNaN := metricValue(m.Value)
		w.latestArgs = append(w.latestArgs, runID, k, v, isNaN, m.Timestamp, m.Step)
	}
	var err error
	w.ins, err = s.db.Prepare(ctx, s.db.Rebind(`INSERT INTO metrics_recent (run_uuid, payload) VALUES (?, ?)`))
	if err != nil {
		return nil, fmt.Errorf("prepare metrics insert: %w", err)
	}
	w.latest, err = s.db.Prepare(ctx, s.db.Rebind(`INSERT INTO latest_metrics AS lm (run_uuid, key, value, is_nan, timestamp, step) VALUES `+rowsOf(6, len(order))+
		` ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
		  WHERE excluded.step > lm.step OR (excluded.step = lm.step AND (excluded.timestamp > lm.timestamp OR (excluded.timestamp = lm.timestamp AND excluded.value > lm.value)))`))
	if err != nil {
		return nil, fmt.Errorf("prepare latest metrics upsert: %w", err)
	}
	return w, nil
}

// exec writes the batch in tx.
func (w *metricWrite) exec(ctx context.Context, s *Store, tx store.Tx) error {
	if w == nil {
		return nil
	}
	if _, err := w.ins.Exec(ctx, tx, w.insArgs...); err != nil {
		return fmt.Errorf("insert metrics: %w", err)
	}
	if _, err := w.latest.Exec(ctx, tx, w.latestArgs...); err != nil {
		return fmt.Errorf("update latest metrics: %w", err)
	}
	if len(w.withModel) > 0 {
		return s.insertModelMetrics(ctx, tx, w.runID, w.withModel)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// DeleteTag removes a tag from an active run.
func (s *Store) DeleteTag(ctx context.Context, runID, key string) error {
	return s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.activeRun(ctx, tx, runID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM tags WHERE run_uuid = ? AND key = ?`), runID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound("No tag with name: %s in run with id %s", key, runID)
		}
		return nil
	})
}

// LogInputs records datasets (deduplicated per experiment by name and
// digest) and model inputs of a run.
func (s *Store) LogInputs(ctx context.Context, runID string, datasets []DatasetInput, modelIDs []string) error {
	for _, d := range datasets {
		switch {
		case d.Dataset.Name == "" || d.Dataset.Digest == "":
			return errdefs.Invalid("Dataset name and digest are required")
		case len(d.Dataset.Name) > MaxDatasetNameLength:
			return errdefs.Invalid("Dataset name '%s' exceeds the maximum length of %d", d.Dataset.Name[:64], MaxDatasetNameLength)
		case len(d.Dataset.Digest) > MaxDatasetDigestLength:
			return errdefs.Invalid("Dataset digest '%s' exceeds the maximum length of %d", d.Dataset.Digest, MaxDatasetDigestLength)
		}
		for _, t := range d.Tags {
			if len(t.Key) > MaxInputTagKeyLength || len(t.Value) > MaxInputTagValueLength {
				return errdefs.Invalid("Input tag '%s' exceeds the key length limit %d or value length limit %d", t.Key, MaxInputTagKeyLength, MaxInputTagValueLength)
			}
		}
	}
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		info, err := s.activeRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		for _, d := range datasets {
			dsID := newRunID()
			err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?`),
				info.ExperimentID, d.Dataset.Name, d.Dataset.Digest).Scan(&dsID)
			if errors.Is(err, sql.ErrNoRows) {
				_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
					dsID, info.ExperimentID, d.Dataset.Name, d.Dataset.Digest, d.Dataset.SourceType, d.Dataset.Source, nullable(d.Dataset.Schema), nullable(d.Dataset.Profile))
			}
			if err != nil {
				return fmt.Errorf("record dataset: %w", err)
			}
			inputID := newRunID()
			err = tx.QueryRowContext(ctx, s.db.Rebind(`SELECT input_uuid FROM run_inputs WHERE run_uuid = ? AND dataset_uuid = ?`), runID, dsID).Scan(&inputID)
			if errors.Is(err, sql.ErrNoRows) {
				_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO run_inputs (input_uuid, run_uuid, dataset_uuid) VALUES (?, ?, ?)`), inputID, runID, dsID)
			}
			if err != nil {
				return fmt.Errorf("record input: %w", err)
			}
			for _, t := range d.Tags {
				if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)`+
					store.Upsert([]string{"input_uuid", "name"}, "value")), inputID, t.Key, t.Value); err != nil {
					return fmt.Errorf("record input tag: %w", err)
				}
			}
		}
		for _, m := range modelIDs {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO run_model_links (run_uuid, model_id, direction, step) VALUES (?, ?, 'input', 0) ON CONFLICT DO NOTHING`), runID, m); err != nil {
				return fmt.Errorf("record model input: %w", err)
			}
		}
		return nil
	})
	if err == nil && len(datasets) > 0 && s.opts.InputsLogged != nil {
		s.opts.InputsLogged(ctx, runID, datasets)
	}
	return err
}

// LogOutputs links logged models to a run as its outputs.
func (s *Store) LogOutputs(ctx context.Context, runID string, outputs []ModelOutput) error {
	return s.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := s.activeRun(ctx, tx, runID); err != nil {
			return err
		}
		for _, o := range outputs {
			if o.ModelID == "" {
				return errdefs.Invalid("Missing value for required parameter 'models.model_id'")
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO run_model_links (run_uuid, model_id, direction, step) VALUES (?, ?, 'output', ?)`+
				store.Upsert([]string{"run_uuid", "model_id", "direction"}, "step")), runID, o.ModelID, o.Step); err != nil {
				return fmt.Errorf("record model output: %w", err)
			}
		}
		return nil
	})
}
