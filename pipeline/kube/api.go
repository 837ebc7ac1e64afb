package kube

import (
	"context"
	"fmt"
	"io"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// API is what the executor asks of the Kubernetes API server: Jobs, and
// the pods of a Job with their logs. Errors are the API server's (test
// them with k8s.io/apimachinery/pkg/api/errors).
//
// NewAPI implements it over client-go's REST client with a scheme of only
// batch/v1 and core/v1. The generated clientset (k8s.io/client-go/kubernetes)
// would do too, but it registers every API group of Kubernetes at start-up,
// which the server pays for in memory whether or not a step ever runs.
type API interface {
	CreateJob(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error)
	GetJob(ctx context.Context, namespace, name string) (*batchv1.Job, error)
	// DeleteJob deletes a Job and, in the background, its pods.
	DeleteJob(ctx context.Context, namespace, name string) error
	ListPods(ctx context.Context, namespace, labelSelector string) (*corev1.PodList, error)
	// PodLogs streams a container's log.
	PodLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// restAPI is API over two REST clients, one per API group.
type restAPI struct {
	batch, core *rest.RESTClient
	params      runtime.ParameterCodec
}

// NewAPI returns an API talking to the cluster of config.
func NewAPI(config *rest.Config) (API, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{batchv1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	// Status (the body of API errors) and the list/delete options.
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	codecs := serializer.NewCodecFactory(scheme)
	client := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(config)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientFor(c)
	}
	batch, err := client(batchv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, fmt.Errorf("a batch/v1 client: %w", err)
	}
	core, err := client(corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, fmt.Errorf("a core/v1 client: %w", err)
	}
	return &restAPI{batch: batch, core: core, params: runtime.NewParameterCodec(scheme)}, nil
}

func (a *restAPI) CreateJob(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	out := &batchv1.Job{}
	err := a.batch.Post().Namespace(job.Namespace).Resource("jobs").Body(job).Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) GetJob(ctx context.Context, namespace, name string) (*batchv1.Job, error) {
	out := &batchv1.Job{}
	err := a.batch.Get().Namespace(namespace).Resource("jobs").Name(name).Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) DeleteJob(ctx context.Context, namespace, name string) error {
	bg := metav1.DeletePropagationBackground
	return a.batch.Delete().Namespace(namespace).Resource("jobs").Name(name).
		Body(&metav1.DeleteOptions{PropagationPolicy: &bg}).Do(ctx).Error()
}

func (a *restAPI) ListPods(ctx context.Context, namespace, labelSelector string) (*corev1.PodList, error) {
	out := &corev1.PodList{}
	err := a.core.Get().Namespace(namespace).Resource("pods").
		VersionedParams(&metav1.ListOptions{LabelSelector: labelSelector}, a.params).Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) PodLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return a.core.Get().Namespace(namespace).Resource("pods").Name(pod).SubResource("log").
		VersionedParams(opts, a.params).Stream(ctx)
}
