package kube

import (
	"context"
	"io"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// clientset is API over a generated clientset: the tests' fake one, whose
// object tracker and reactors play the cluster.
type clientset struct{ cs kubernetes.Interface }

func (c clientset) CreateJob(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	return c.cs.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
}

func (c clientset) GetJob(ctx context.Context, namespace, name string) (*batchv1.Job, error) {
	return c.cs.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (c clientset) DeleteJob(ctx context.Context, namespace, name string) error {
	bg := metav1.DeletePropagationBackground
	return c.cs.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
}

func (c clientset) ListPods(ctx context.Context, namespace, labelSelector string) (*corev1.PodList, error) {
	return c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labelSelector})
}

func (c clientset) PodLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.cs.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
}
