package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// Labels and annotations of the Jobs and pods (annotations hold the exact
// values, labels values cut to what a label holds).
const (
	LabelPipeline = "kiln.dev/pipeline"
	LabelRun      = "kiln.dev/run"
	LabelStep     = "kiln.dev/step"
	LabelAttempt  = "kiln.dev/attempt"
	// LabelJob is on the pods only: the name of their Job, which the
	// executor lists them by.
	LabelJob       = "kiln.dev/job"
	labelManagedBy = "app.kubernetes.io/managed-by"
)

// Names inside the pod.
const (
	// StepContainer runs the step; InitContainer copies kiln into BinDir.
	StepContainer = "step"
	InitContainer = "kiln"
	// BinDir holds the kiln binary, WorkDir the attempt's folder
	// (inputs/ and outputs/), both emptyDir volumes.
	BinDir  = "/kiln/bin"
	WorkDir = "/kiln/work"
	// TerminationLog is where `kiln step exec` writes the Outcome.
	TerminationLog = "/dev/termination-log"
	// TokenKey is the key of Options.TokenSecret that holds the API token
	// given to the step as KILN_TOKEN.
	TokenKey = "token"
)

// JobName is the Job of an attempt: "kiln-<pipeline>-<step>-<attempt>-"
// followed by ten hex digits of a hash of the pipeline, run, step and
// attempt, a DNS label of at most 63 characters. The same attempt always
// gets the same name, so creating its Job twice finds the first.
func JobName(t *pipeline.Task) string {
	sum := sha256.Sum256([]byte(t.Pipeline + "\x00" + t.RunID + "\x00" + t.Step + "\x00" + strconv.Itoa(t.Attempt)))
	suffix := "-" + strconv.Itoa(t.Attempt) + "-" + hex.EncodeToString(sum[:5])
	p, s := dnsPart(t.Pipeline), dnsPart(t.Step)
	room := 63 - len("kiln-") - len(suffix) - 1
	if room < 2 {
		return "kiln" + suffix
	}
	// Share the room, the step first being what tells attempts apart.
	if len(p)+len(s) > room {
		ps := max(room/3, room-len(s))
		p = strings.TrimRight(p[:min(len(p), ps)], "-")
		s = strings.TrimRight(s[:min(len(s), room-len(p))], "-")
	}
	name := "kiln-" + p + "-" + s + suffix
	name = strings.ReplaceAll(strings.ReplaceAll(name, "---", "-"), "--", "-")
	return name
}

// dnsPart lowers name to DNS label characters.
func dnsPart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "x"
	}
	return s
}

// labelValue cuts v to a valid label value.
func labelValue(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	s := string(b[:min(len(b), 63)])
	return strings.TrimFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// Resources turns a step's resources into requests and limits:
// "requests.<name>" is a request, "limits.<name>" a limit, and a plain
// name ("cpu", "memory", "nvidia.com/gpu") both.
func Resources(m map[string]string) (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	if len(m) == 0 {
		return rr, nil
	}
	set := func(l *corev1.ResourceList, name string, q resource.Quantity) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[corev1.ResourceName(name)] = q
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		q, err := resource.ParseQuantity(m[k])
		if err != nil {
			return rr, errdefs.Invalid("resources.%s: %q is not a quantity (e.g. 500m, 2, 4Gi)", k, m[k])
		}
		switch {
		case strings.HasPrefix(k, "requests."):
			set(&rr.Requests, strings.TrimPrefix(k, "requests."), q)
		case strings.HasPrefix(k, "limits."):
			set(&rr.Limits, strings.TrimPrefix(k, "limits."), q)
		default:
			if _, ok := m["requests."+k]; !ok {
				set(&rr.Requests, k, q)
			}
			if _, ok := m["limits."+k]; !ok {
				set(&rr.Limits, k, q)
			}
		}
	}
	return rr, nil
}

// BuildJob returns the Job that runs one attempt of t.
func (e *Executor) BuildJob(t *pipeline.Task) (*batchv1.Job, error) {
	o := e.o
	if t == nil {
		return nil, errdefs.Invalid("kubernetes executor: no task")
	}
	if len(t.Command) == 0 || t.Command[0] == "" {
		return nil, errdefs.Invalid("step %s has no command", t.Step)
	}
	image := t.Image
	if image == "" {
		image = o.DefaultImage
	}
	rr, err := Resources(t.Resources)
	if err != nil {
		return nil, errdefs.Invalid("step %s: %s", t.Step, errdefs.Message(err))
	}
	tt := *t
	tt.Env = maps.Clone(t.Env)
	if tt.Env == nil {
		tt.Env = map[string]string{}
	}
	if o.ServerURL != "" {
		tt.Env["KILN_URL"] = o.ServerURL
		tt.Env["MLFLOW_TRACKING_URI"] = o.ServerURL
		tt.Env["MLFLOW_REGISTRY_URI"] = o.ServerURL
	}
	// The step's environment travels as the container's (visible to
	// kubectl describe), not twice in KILN_TASK.
	envs := tt.Env
	tt.Env = nil
	task, err := EncodeTask(&tt)
	if err != nil {
		return nil, err
	}
	name := JobName(t)
	labels := map[string]string{
		labelManagedBy: "kiln",
		LabelPipeline:  labelValue(t.Pipeline),
		LabelRun:       labelValue(t.RunID),
		LabelStep:      labelValue(t.Step),
		LabelAttempt:   strconv.Itoa(t.Attempt),
	}
	annotations := map[string]string{
		LabelPipeline: t.Pipeline,
		LabelRun:      t.RunID,
		LabelStep:     t.Step,
		LabelAttempt:  strconv.Itoa(t.Attempt),
	}
	podLabels := maps.Clone(labels)
	podLabels[LabelJob] = name

	env := make([]corev1.EnvVar, 0, len(envs)+2)
	for _, k := range slices.Sorted(maps.Keys(envs)) {
		if k == TaskEnv || ((k == "KILN_TOKEN" || k == "MLFLOW_TRACKING_TOKEN") && o.TokenSecret != "") {
			continue
		}
		env = append(env, corev1.EnvVar{Name: k, Value: envs[k]})
	}
	if o.TokenSecret != "" {
		// The same token signs in kiln step exec (KILN_TOKEN) and an
		// MLflow client in the step's command (MLFLOW_TRACKING_TOKEN).
		for _, name := range []string{"KILN_TOKEN", "MLFLOW_TRACKING_TOKEN"} {
			env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: o.TokenSecret}, Key: TokenKey}}})
		}
	}
	env = append(env, corev1.EnvVar{Name: TaskEnv, Value: task})

	mounts := []corev1.VolumeMount{{Name: "kiln-bin", MountPath: BinDir}, {Name: "kiln-work", MountPath: WorkDir}}
	step := corev1.Container{
		Name:                     StepContainer,
		Image:                    image,
		Command:                  []string{path.Join(BinDir, "kiln"), "step", "exec", "--dir", WorkDir, "--termination-log", TerminationLog},
		Env:                      env,
		Resources:                rr,
		VolumeMounts:             mounts,
		TerminationMessagePath:   TerminationLog,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if strings.HasPrefix(t.WorkingDir, "/") {
		step.WorkingDir = t.WorkingDir
	}
	pod := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{
			Name:                     InitContainer,
			Image:                    o.KilnImage,
			Command:                  []string{o.KilnCommand, "step", "install", BinDir},
			VolumeMounts:             mounts[:1],
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
		Containers: []corev1.Container{step},
		Volumes: []corev1.Volume{
			{Name: "kiln-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "kiln-work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	if o.ServiceAccount != "" {
		pod.ServiceAccountName = o.ServiceAccount
	} else {
		pod.AutomountServiceAccountToken = ptr(false)
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: labels, Annotations: annotations},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(int32(0)),
			TTLSecondsAfterFinished: ptr(int32(min(o.TTLAfterFinished.Seconds(), math.MaxInt32))),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: maps.Clone(annotations)},
				Spec:       pod,
			},
		},
	}
	if t.Timeout > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr(int64(math.Ceil(t.Timeout.Seconds())))
	}
	return job, nil
}

// matches reports whether job is the Job of t's attempt (its annotations
// name the same pipeline, run, step and attempt).
func matches(job *batchv1.Job, t *pipeline.Task) error {
	a := job.Annotations
	want := map[string]string{LabelPipeline: t.Pipeline, LabelRun: t.RunID, LabelStep: t.Step, LabelAttempt: strconv.Itoa(t.Attempt)}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if a[k] != want[k] {
			return fmt.Errorf("the Job %s/%s is not this attempt's (its %s is %q, want %q)", job.Namespace, job.Name, k, a[k], want[k])
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
