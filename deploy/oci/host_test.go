package oci

import "runtime"

func hostArch() string { return runtime.GOARCH }
