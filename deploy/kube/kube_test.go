package kube

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kiln-ml/kiln/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var cases = []struct {
	name string
	opts Options
}{
	{"autoscaled", Options{
		Name: "churn", Namespace: "ml", Image: "registry.example.com/ml/churn:3",
		ModelURI: "models:/Churn Model/3", ModelName: "Churn Model", ModelVersion: "3",
		MinReplicas: 2, MaxReplicas: 10, TargetCPU: 70,
		Requests: Resources{CPU: "250m", Memory: "256Mi"}, Limits: Resources{CPU: "2", Memory: "1Gi"},
		Labels: map[string]string{"team": "risk", "app.kubernetes.io/part-of": "scoring", "kiln.dev/endpoint": "overridden"},
	}},
	{"fixed", Options{Name: "iris", Image: "iris:latest", ModelURI: "./iris", Replicas: 3}},
	{"defaults", Options{Name: "m", Image: "m@sha256:" + strings.Repeat("a", 64), MaxReplicas: 4, Requests: Resources{CPU: "1"}}},
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, autoscalingv2.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestRoundTrip writes each case's YAML, checks it against its golden
// file, and decodes it with apimachinery's universal deserializer: the
// same objects come back, with their kinds.
func TestRoundTrip(t *testing.T) {
	dec := serializer.NewCodecFactory(scheme(t)).UniversalDeserializer()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Build(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("YAML differs from %s (run go test -update):\n%s", golden, out)
			}

			objs := m.Objects()
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
			var n int
			for ; ; n++ {
				doc, err := r.Read()
				if err != nil {
					break
				}
				if n >= len(objs) {
					t.Fatalf("more documents than objects: %s", doc)
				}
				got, gvk, err := dec.Decode(doc, nil, nil)
				if err != nil {
					t.Fatalf("document %d: %v\n%s", n, err, doc)
				}
				wantGVK := objs[n].GetObjectKind().GroupVersionKind()
				if *gvk != wantGVK || wantGVK.Kind == "" {
					t.Errorf("document %d: kind %v, want %v", n, gvk, wantGVK)
				}
				if !equality.Semantic.DeepEqual(got, objs[n]) {
					t.Errorf("document %d (%s) does not decode to the built object:\n got %#v\nwant %#v", n, gvk.Kind, got, objs[n])
				}
			}
			if n != len(objs) {
				t.Errorf("%d documents, want %d", n, len(objs))
			}
		})
	}
}

func TestManifests(t *testing.T) {
	m, err := Build(cases[0].opts)
	if err != nil {
		t.Fatal(err)
	}
	d, s, h := m.Deployment, m.Service, m.HPA
	if d.Spec.Replicas != nil {
		t.Errorf("autoscaled deployment sets replicas %d", *d.Spec.Replicas)
	}
	pod := d.Spec.Template
	for k, v := range map[string]string{
		LabelName: "Churn-Model", LabelInstance: "churn", LabelVersion: "3", LabelManagedBy: "kiln",
		LabelEndpoint: "churn", LabelModelVersion: "3", "team": "risk",
	} {
		for what, labels := range map[string]map[string]string{"deployment": d.Labels, "pod": pod.Labels, "service": s.Labels, "hpa": h.Labels} {
			if labels[k] != v {
				t.Errorf("%s label %s = %q, want %q", what, k, labels[k], v)
			}
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v || s.Spec.Selector[k] != v {
			t.Errorf("selector %s=%s does not match the pods or the service", k, v)
		}
	}
	if d.Annotations[AnnotationModelURI] != "models:/Churn Model/3" || d.Namespace != "ml" {
		t.Errorf("annotations %v, namespace %q", d.Annotations, d.Namespace)
	}
	c := pod.Spec.Containers[0]
	if c.Image != "registry.example.com/ml/churn:3" || c.Ports[0].ContainerPort != 8080 || c.Ports[1].ContainerPort != 8081 {
		t.Errorf("container %s ports %v", c.Image, c.Ports)
	}
	if c.LivenessProbe.HTTPGet.Path != "/v2/health/live" || c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" {
		t.Errorf("probes %v %v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	if q := c.Resources.Requests[corev1.ResourceCPU]; q.String() != "250m" {
		t.Errorf("cpu request %s", q.String())
	}
	if q := c.Resources.Limits[corev1.ResourceMemory]; q.String() != "1Gi" {
		t.Errorf("memory limit %s", q.String())
	}
	if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 || h.Spec.ScaleTargetRef.Name != "churn" {
		t.Errorf("hpa %+v", h.Spec)
	}

	fixed, _ := Build(cases[1].opts)
	if fixed.HPA != nil || *fixed.Deployment.Spec.Replicas != 3 || len(fixed.Objects()) != 2 {
		t.Errorf("fixed size: hpa %v, replicas %v", fixed.HPA, fixed.Deployment.Spec.Replicas)
	}
	def, _ := Build(cases[2].opts)
	if *def.HPA.Spec.MinReplicas != 1 || *def.HPA.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 {
		t.Errorf("defaults: %+v", def.HPA.Spec)
	}
	one, _ := Build(Options{Name: "x", Image: "x"})
	if *one.Deployment.Spec.Replicas != 1 {
		t.Errorf("default replicas %d", *one.Deployment.Spec.Replicas)
	}
}

func TestBuildRejects(t *testing.T) {
	ok := Options{Name: "churn", Image: "churn:3", MaxReplicas: 3, Requests: Resources{CPU: "100m"}}
	with := func(f func(*Options)) Options { o := ok; f(&o); return o }
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no name", with(func(o *Options) { o.Name = "" }), "name is required"},
		{"upper case", with(func(o *Options) { o.Name = "Churn" }), `name "Churn" is not a valid DNS-1123 label`},
		{"underscore", with(func(o *Options) { o.Name = "churn_model" }), "DNS-1123"},
		{"dot", with(func(o *Options) { o.Name = "churn.v2" }), "DNS-1123"},
		{"leading dash", with(func(o *Options) { o.Name = "-churn" }), "DNS-1123"},
		{"too long", with(func(o *Options) { o.Name = strings.Repeat("a", 64) }), "no more than 63"},
		{"namespace", with(func(o *Options) { o.Namespace = "ML" }), `namespace "ML"`},
		{"no image", with(func(o *Options) { o.Image = "" }), "image"},
		{"image with space", with(func(o *Options) { o.Image = "a b" }), "image"},
		{"bad cpu", with(func(o *Options) { o.Requests.CPU = "lots" }), `cpu request "lots"`},
		{"zero memory", with(func(o *Options) { o.Limits.Memory = "0" }), "memory limit"},
		{"request above limit", with(func(o *Options) { o.Limits.CPU = "50m" }), "cpu request 100m is above its limit 50m"},
		{"min above max", with(func(o *Options) { o.MinReplicas = 5 }), "min replicas 5 is above max replicas 3"},
		{"replicas and max", with(func(o *Options) { o.Replicas = 2 }), "pick one"},
		{"min without max", Options{Name: "a", Image: "a", MinReplicas: 2}, "need max replicas"},
		{"negative", with(func(o *Options) { o.MaxReplicas = -1 }), "negative"},
		{"cpu target", with(func(o *Options) { o.TargetCPU = 2000 }), "CPU target 2000%"},
		{"hpa without cpu request", with(func(o *Options) { o.Requests.CPU = "" }), "needs a CPU request"},
		{"bad label key", with(func(o *Options) { o.Labels = map[string]string{"a b": "x"} }), `label key "a b"`},
		{"bad label value", with(func(o *Options) { o.Labels = map[string]string{"team": "a b"} }), `label team="a b"`},
		{"bad version", with(func(o *Options) { o.ModelVersion = "v 1" }), `model version "v 1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.opts)
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v, want an invalid-argument error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Build(ok); err != nil {
		t.Errorf("the valid options were refused: %v", err)
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"churn": "churn", "Churn Model": "Churn-Model", "a/b@c": "a-b-c", "-x-": "x", "__": "",
		strings.Repeat("ab", 40): strings.Repeat("ab", 31) + "a",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}
