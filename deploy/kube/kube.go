// Package kube builds the Kubernetes manifests of a model endpoint for
// `kiln deploy export --kubernetes`: a Deployment of the image `kiln
// package` built (kiln serve on port 8080 for HTTP and 8081 for gRPC,
// probed on the Open Inference Protocol's health routes), a Service in
// front of it and, when autoscaled, a HorizontalPodAutoscaler
// (autoscaling/v2) on CPU utilisation. The objects are k8s.io/api types;
// WriteYAML serializes them as one multi-document YAML stream for
// `kubectl apply -f`.
//
//	m, err := kube.Build(kube.Options{Name: "churn", Image: "registry.example.com/churn:3",
//		ModelURI: "models:/churn/3", ModelName: "churn", ModelVersion: "3",
//		MinReplicas: 2, MaxReplicas: 10, TargetCPU: 70,
//		Requests: kube.Resources{CPU: "250m", Memory: "256Mi"}})
//	err = m.WriteYAML(os.Stdout)
package kube

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/kiln-ml/kiln/errdefs"
)

// Ports, probes and the user of the image `kiln package` builds.
const (
	HTTPPort       = 8080
	GRPCPort       = 8081
	LivenessPath   = "/v2/health/live"
	ReadinessPath  = "/v2/health/ready"
	runAsUser      = 65532
	containerName  = "kiln"
	defaultCPUGoal = 80
)

// Label and annotation keys.
const (
	LabelName         = "app.kubernetes.io/name"
	LabelInstance     = "app.kubernetes.io/instance"
	LabelVersion      = "app.kubernetes.io/version"
	LabelComponent    = "app.kubernetes.io/component"
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	LabelEndpoint     = "kiln.dev/endpoint"
	LabelModelVersion = "kiln.dev/model-version"

	AnnotationModelURI  = "kiln.dev/model-uri"
	AnnotationModelName = "kiln.dev/model-name"
)

// Resources are a container's CPU and memory, as Kubernetes quantities
// ("250m", "1", "512Mi"); empty means unset.
type Resources struct {
	CPU    string
	Memory string
}

// Options describe an endpoint's manifests.
type Options struct {
	// Name names the Deployment, Service and HPA: a DNS-1123 label
	// (lower case letters, digits and '-', at most 63 characters).
	Name string
	// Namespace is where they go; "" leaves it to kubectl's context.
	Namespace string
	// Image is the image reference, e.g. registry.example.com/churn:3.
	Image string

	ModelURI     string // recorded in an annotation
	ModelName    string // the app.kubernetes.io/name label (made label-safe); default Name
	ModelVersion string // the app.kubernetes.io/version and kiln.dev/model-version labels

	// Replicas is the fixed size of the Deployment when it is not
	// autoscaled (MaxReplicas == 0); 0 means 1.
	Replicas int32
	// MaxReplicas > 0 adds a HorizontalPodAutoscaler between MinReplicas
	// (0 means 1) and MaxReplicas, aiming at TargetCPU percent of the CPU
	// request (0 means 80). The Deployment then leaves its replica count
	// to the autoscaler.
	MinReplicas, MaxReplicas int32
	TargetCPU                int32

	Requests, Limits Resources

	// Labels are added to every object and pod (Kiln's own win).
	Labels map[string]string
}

// Manifests are the objects of one endpoint. HPA is nil when the
// Deployment has a fixed size.
type Manifests struct {
	Deployment *appsv1.Deployment
	Service    *corev1.Service
	HPA        *autoscalingv2.HorizontalPodAutoscaler
}

// Objects lists the manifests in apply order.
func (m *Manifests) Objects() []runtime.Object {
	objs := []runtime.Object{m.Deployment, m.Service}
	if m.HPA != nil {
		objs = append(objs, m.HPA)
	}
	return objs
}

// YAML is the manifests as a multi-document YAML stream, each document
// with its apiVersion and kind, without the empty status the cluster
// fills in.
func (m *Manifests) YAML() ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range m.Objects() {
		j, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if err := json.Unmarshal(j, &doc); err != nil {
			return nil, err
		}
		delete(doc, "status")
		b, err := yaml.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// WriteYAML writes YAML to w.
func (m *Manifests) WriteYAML(w io.Writer) error {
	b, err := m.YAML()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ValidateName checks a Kubernetes object name of the kind that must be a
// DNS-1123 label (Service names, and so endpoint names).
func ValidateName(what, name string) error {
	if name == "" {
		return errdefs.Invalid("%s is required (a DNS-1123 label: lower case letters, digits and '-', e.g. churn-model)", what)
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return errdefs.Invalid("%s %q is not a valid DNS-1123 label: %s", what, name, strings.Join(errs, "; "))
	}
	return nil
}

// Build checks opts and builds the manifests. Errors are
// errdefs.ErrInvalidArgument and name the offending field.
func Build(opts Options) (*Manifests, error) {
	if err := ValidateName("name", opts.Name); err != nil {
		return nil, err
	}
	if opts.Namespace != "" {
		if err := ValidateName("namespace", opts.Namespace); err != nil {
			return nil, err
		}
	}
	if opts.Image == "" || strings.ContainsAny(opts.Image, " \t\r\n") {
		return nil, errdefs.Invalid("image %q: want an image reference such as registry.example.com/churn:3", opts.Image)
	}
	req, err := resourceList("request", opts.Requests)
	if err != nil {
		return nil, err
	}
	lim, err := resourceList("limit", opts.Limits)
	if err != nil {
		return nil, err
	}
	for name, l := range lim {
		if r, ok := req[name]; ok && r.Cmp(l) > 0 {
			return nil, errdefs.Invalid("%s request %s is above its limit %s", name, r.String(), l.String())
		}
	}
	autoscale := opts.MaxReplicas > 0
	minR, maxR, target := opts.MinReplicas, opts.MaxReplicas, opts.TargetCPU
	switch {
	case opts.Replicas < 0 || opts.MinReplicas < 0 || opts.MaxReplicas < 0:
		return nil, errdefs.Invalid("replica counts must not be negative")
	case opts.TargetCPU < 0 || opts.TargetCPU > 1000:
		return nil, errdefs.Invalid("CPU target %d%%: want 1 to 1000 percent of the CPU request", opts.TargetCPU)
	case !autoscale && (opts.MinReplicas > 0 || opts.TargetCPU > 0):
		return nil, errdefs.Invalid("min replicas and CPU target need max replicas (the autoscaler's upper bound)")
	case autoscale && opts.Replicas > 0:
		return nil, errdefs.Invalid("replicas %d and max replicas %d: pick one; with an autoscaler it sets the replica count", opts.Replicas, opts.MaxReplicas)
	}
	if autoscale {
		if minR == 0 {
			minR = 1
		}
		if target == 0 {
			target = defaultCPUGoal
		}
		if minR > maxR {
			return nil, errdefs.Invalid("min replicas %d is above max replicas %d", minR, maxR)
		}
		if _, ok := req[corev1.ResourceCPU]; !ok {
			return nil, errdefs.Invalid("a CPU target needs a CPU request (the autoscaler measures utilisation against it)")
		}
	}

	labels, err := objectLabels(opts)
	if err != nil {
		return nil, err
	}
	selector := map[string]string{LabelInstance: opts.Name, LabelEndpoint: opts.Name}
	annotations := map[string]string{}
	if opts.ModelURI != "" {
		annotations[AnnotationModelURI] = opts.ModelURI
	}
	if opts.ModelName != "" {
		annotations[AnnotationModelName] = opts.ModelName
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: opts.Name, Namespace: opts.Namespace, Labels: maps.Clone(labels), Annotations: maps.Clone(annotations)}
	}

	podAnnotations := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(HTTPPort),
		"prometheus.io/path":   "/metrics",
	}
	maps.Copy(podAnnotations, annotations)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: failures,
		}
	}
	var replicas *int32
	if !autoscale {
		n := opts.Replicas
		if n == 0 {
			n = 1
		}
		replicas = &n
	}
	maxUnavailable, maxSurge := intstr.FromInt32(0), intstr.FromInt32(1)
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(),
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels), Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					// kiln serve finishes in-flight requests for up to 30s on SIGTERM.
					TerminationGracePeriodSeconds: ptr(int64(45)),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						RunAsUser:      ptr(int64(runAsUser)),
						RunAsGroup:     ptr(int64(runAsUser)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            containerName,
						Image:           opts.Image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
							{Name: "grpc", ContainerPort: GRPCPort, Protocol: corev1.ProtocolTCP},
						},
						Resources: corev1.ResourceRequirements{Requests: req, Limits: lim},
						// Loading a large model can take a while: the startup
						// probe gives it two minutes before liveness counts.
						StartupProbe:   probe(LivenessPath, 2, 60),
						LivenessProbe:  probe(LivenessPath, 10, 3),
						ReadinessProbe: probe(ReadinessPath, 5, 2),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					// The image's XDG_CACHE_HOME; the root filesystem is read-only.
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: maps.Clone(selector),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: HTTPPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP, AppProtocol: ptr("http")},
				{Name: "grpc", Port: GRPCPort, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP, AppProtocol: ptr("grpc")},
			},
		},
	}
	m := &Manifests{Deployment: dep, Service: svc}
	if autoscale {
		m.HPA = &autoscalingv2.HorizontalPodAutoscaler{
			TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
			ObjectMeta: meta(),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: opts.Name},
				MinReplicas:    &minR,
				MaxReplicas:    maxR,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
					},
				}},
			},
		}
	}
	return m, nil
}

func ptr[T any](v T) *T { return &v }

// resourceList parses a container's CPU and memory quantities.
func resourceList(what string, r Resources) (corev1.ResourceList, error) {
	list := corev1.ResourceList{}
	for _, q := range []struct {
		name corev1.ResourceName
		val  string
	}{{corev1.ResourceCPU, r.CPU}, {corev1.ResourceMemory, r.Memory}} {
		if q.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.val)
		if err != nil || v.Sign() <= 0 {
			return nil, errdefs.Invalid("%s %s %q: want a positive Kubernetes quantity such as 250m or 1 (CPU), 512Mi or 2Gi (memory)", q.name, what, q.val)
		}
		list[q.name] = v
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// objectLabels are the labels of every object and pod: the recommended
// app.kubernetes.io set and Kiln's, over opts.Labels.
func objectLabels(opts Options) (map[string]string, error) {
	labels := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(opts.Labels)) {
		v := opts.Labels[k]
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, errdefs.Invalid("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, errdefs.Invalid("label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
		labels[k] = v
	}
	name := labelValue(opts.ModelName)
	if name == "" {
		name = opts.Name
	}
	labels[LabelName] = name
	labels[LabelInstance] = opts.Name
	labels[LabelComponent] = "inference-server"
	labels[LabelManagedBy] = "kiln"
	labels[LabelEndpoint] = opts.Name
	if opts.ModelVersion != "" {
		if errs := validation.IsValidLabelValue(opts.ModelVersion); len(errs) > 0 {
			return nil, errdefs.Invalid("model version %q is not a valid label value: %s", opts.ModelVersion, strings.Join(errs, "; "))
		}
		labels[LabelVersion] = opts.ModelVersion
		labels[LabelModelVersion] = opts.ModelVersion
	}
	return labels, nil
}

var notLabelChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// labelValue makes a registered model name ("Churn model/v2") a label
// value ("Churn-model-v2"): other characters become '-', at most 63,
// starting and ending with a letter or digit.
func labelValue(s string) string {
	s = notLabelChars.ReplaceAllString(s, "-")
	if len(s) > validation.LabelValueMaxLength {
		s = s[:validation.LabelValueMaxLength]
	}
	return strings.TrimFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') })
}
