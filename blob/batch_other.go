//go:build !linux

package blob

func syncData(_ string, pending []pendingFile) error  { return fsyncFiles(pending) }
func syncNames(_ string, pending []pendingFile) error { return fsyncDirs(pending) }
