// Package oci builds OCI container images of a model for `kiln package`,
// with no Docker daemon and no registry: the kiln binary at
// /usr/local/bin/kiln and an MLflow model directory at /model, on top of
// a minimal root filesystem (FROM scratch plus /etc/passwd, /etc/group
// and a world-writable /tmp) or a base image read from a local OCI
// layout, OCI archive or `docker save` tarball.
//
// The image's entrypoint is `kiln serve /model` listening on 0.0.0.0:8080
// (HTTP) and 0.0.0.0:8081 (gRPC) as user 65532:65532. Builds are
// reproducible: every file has the same owner (0:0), a fixed mode and the
// same modification time (Options.Created, e.g. from SOURCE_DATE_EPOCH,
// else the Unix epoch), entries are sorted, and layers are gzip-compressed
// with no timestamps, so the same binary and model give the same digest.
//
//	img, err := oci.Build(ctx, oci.Options{
//		ModelDir: dir, Binary: "./kiln-linux-arm64",
//		Platform: oci.Platform{OS: "linux", Architecture: "arm64"},
//		Model:    oci.ModelInfo{URI: "models:/churn/3", Name: "churn", Version: "3"},
//	})
//	defer img.Close()
//	err = img.WriteOCIArchive(w, "churn:3") // readable as oci-archive:out.tar
//
// Layers are compressed once, into temporary files, while they are
// hashed; each output then copies them. Progress reports bytes read and
// written, for large models.
package oci
