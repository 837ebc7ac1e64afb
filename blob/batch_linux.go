package blob

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncData flushes the batch's files with one syncfs(2) of the file
// system holding dir, which costs about one fsync however many files there
// are.
func syncData(dir string, pending []pendingFile) error {
	if err := syncfs(dir); err != nil {
		return fsyncFiles(pending)
	}
	return nil
}

// syncNames flushes the renames the same way.
func syncNames(dir string, pending []pendingFile) error {
	if err := syncfs(dir); err != nil {
		return fsyncDirs(pending)
	}
	return nil
}

func syncfs(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
