package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/deploy/kube"
	"github.com/kiln-ml/kiln/deploy/oci"
	"github.com/kiln-ml/kiln/model"
)

// newDeployCmd is the parent of the deployment commands; other
// subcommands join export here.
func newDeployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy models: export endpoints to other platforms",
	}
	cmd.AddCommand(newDeployExportCmd())
	return cmd
}

type exportFlags struct {
	kubernetes                   bool
	name, namespace, image       string
	modelURI, modelName, version string
	replicas, minReplicas        int32
	maxReplicas, cpuTarget       int32
	cpuRequest, memoryRequest    string
	cpuLimit, memoryLimit        string
	labels                       []string
	output                       string
}

func newDeployExportCmd() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export --kubernetes --name NAME --image REF --model URI",
		Short: "Write Kubernetes manifests (Deployment, Service, HorizontalPodAutoscaler) for a model image",
		Long: `Write the Kubernetes manifests that run a model image built by 'kiln package':
a Deployment (kiln serve on port 8080 for HTTP and 8081 for gRPC, started,
live and ready by the Open Inference Protocol's /v2/health/live and
/v2/health/ready, as a non-root user on a read-only root filesystem), a
ClusterIP Service with ports http (8080) and grpc (8081) and, unless
--replicas fixes the size, a HorizontalPodAutoscaler (autoscaling/v2)
between --min-replicas and --max-replicas at --cpu-target percent of the
CPU request.

The output is one multi-document YAML stream for 'kubectl apply -f'. Every
object carries the app.kubernetes.io/name, instance, version and
managed-by=kiln labels and kiln.dev/endpoint and kiln.dev/model-version; the
model URI is in the kiln.dev/model-uri annotation. For models:/NAME/VERSION
URIs the model name and version come from the URI.`,
		Example: `  # Build the image, push it, and deploy it with an autoscaler
  kiln package models:/churn/3 --oci churn.tar --tag registry.example.com/churn:3
  skopeo copy oci-archive:churn.tar docker://registry.example.com/churn:3
  kiln deploy export --kubernetes --name churn --image registry.example.com/churn:3 \
      --model models:/churn/3 --namespace ml --min-replicas 2 --max-replicas 10 | kubectl apply -f -

  # A fixed size, to a file
  kiln deploy export --kubernetes --name iris --image iris:1 --model ./iris --replicas 3 -o iris.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !f.kubernetes {
				return errors.New("say what to export to: --kubernetes (the only target so far)")
			}
			fl := cmd.Flags()
			if fl.Changed("replicas") && (fl.Changed("min-replicas") || fl.Changed("max-replicas") || fl.Changed("cpu-target")) {
				return errors.New("--replicas fixes the size; --min-replicas, --max-replicas and --cpu-target configure the autoscaler: use one or the other")
			}
			opts, err := f.options(fl.Changed("replicas"))
			if err != nil {
				return err
			}
			m, err := kube.Build(opts)
			if err != nil {
				return err
			}
			if f.output == "" || f.output == "-" {
				return m.WriteYAML(cmd.OutOrStdout())
			}
			return writeManifestFile(f.output, m)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.kubernetes, "kubernetes", false, "export Kubernetes manifests")
	fl.StringVar(&f.name, "name", "", "name of the Deployment, Service and HPA (a DNS-1123 label, e.g. churn)")
	fl.StringVar(&f.namespace, "namespace", "", "namespace of the objects (default: kubectl's current one)")
	fl.StringVar(&f.image, "image", "", "image reference, as pushed: registry.example.com/churn:3")
	fl.StringVar(&f.modelURI, "model", "", "model URI the image serves (recorded in an annotation; models:/NAME/VERSION also gives the name and version labels)")
	fl.StringVar(&f.modelName, "model-name", "", "model name for the app.kubernetes.io/name label (default: from --model, else --name)")
	fl.StringVar(&f.version, "model-version", "", "model version for the version labels (default: from --model)")
	fl.Int32Var(&f.replicas, "replicas", 1, "fixed number of replicas (no autoscaler)")
	fl.Int32Var(&f.minReplicas, "min-replicas", 1, "autoscaler: fewest replicas")
	fl.Int32Var(&f.maxReplicas, "max-replicas", 3, "autoscaler: most replicas")
	fl.Int32Var(&f.cpuTarget, "cpu-target", 80, "autoscaler: target average CPU utilisation, in percent of the CPU request")
	fl.StringVar(&f.cpuRequest, "cpu-request", "250m", "container CPU request")
	fl.StringVar(&f.memoryRequest, "memory-request", "256Mi", "container memory request")
	fl.StringVar(&f.cpuLimit, "cpu-limit", "", "container CPU limit (default: none)")
	fl.StringVar(&f.memoryLimit, "memory-limit", "", "container memory limit, e.g. 1Gi (default: none)")
	fl.StringArrayVar(&f.labels, "label", nil, "extra label KEY=VALUE on every object and pod (repeatable)")
	fl.StringVarP(&f.output, "output-file", "o", "", `file to write ("-" or default: standard output)`)
	cmd.MarkFlagFilename("output-file", "yaml", "yml")
	return cmd
}

func (f *exportFlags) options(fixed bool) (kube.Options, error) {
	if err := kube.ValidateName("--name", f.name); err != nil {
		return kube.Options{}, err
	}
	if f.image == "" {
		return kube.Options{}, errors.New("--image is required: the image reference the cluster pulls (see kiln package)")
	}
	if err := oci.CheckReference(f.image); err != nil {
		return kube.Options{}, fmt.Errorf("--image: %w", err)
	}
	labels, err := parseTags(f.labels)
	if err != nil {
		return kube.Options{}, fmt.Errorf("--label: %w", err)
	}
	opts := kube.Options{
		Name: f.name, Namespace: f.namespace, Image: f.image,
		ModelURI: f.modelURI, ModelName: f.modelName, ModelVersion: f.version,
		Requests: kube.Resources{CPU: f.cpuRequest, Memory: f.memoryRequest},
		Limits:   kube.Resources{CPU: f.cpuLimit, Memory: f.memoryLimit},
		Labels:   labels,
	}
	if f.modelURI != "" {
		u, err := model.ParseURI(f.modelURI)
		if err != nil {
			return kube.Options{}, fmt.Errorf("--model: %w", err)
		}
		if opts.ModelName == "" {
			opts.ModelName = u.Name
		}
		if opts.ModelVersion == "" && u.Version > 0 {
			opts.ModelVersion = strconv.FormatInt(u.Version, 10)
		}
	}
	if fixed {
		opts.Replicas = f.replicas
	} else {
		opts.MinReplicas, opts.MaxReplicas, opts.TargetCPU = f.minReplicas, f.maxReplicas, f.cpuTarget
		if opts.MaxReplicas == 0 {
			return kube.Options{}, errors.New("--max-replicas must be at least 1 (or fix the size with --replicas)")
		}
	}
	return opts, nil
}

func writeManifestFile(path string, m *kube.Manifests) error {
	b, err := m.YAML()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
