package gate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// LocalTable is a table file on this machine (a path or file:// URI),
// with its BLAKE3 digest.
func LocalTable(uri string) (*Table, error) {
	path := strings.TrimPrefix(uri, "file://")
	if path == uri {
		path = strings.TrimPrefix(uri, "file:")
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errdefs.NotFound("Evaluation data '%s' does not exist", clip(uri))
		}
		return nil, fmt.Errorf("evaluation data: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, errdefs.Invalid("Evaluation data '%s' is a folder; name a table file", clip(uri))
	}
	d, _, err := dataset.HashReader(f)
	if err != nil {
		return nil, fmt.Errorf("evaluation data: %w", err)
	}
	return &Table{Ref: uri, Digest: d.String(), Open: func(ctx context.Context) (table.Reader, error) {
		return table.Open(ctx, path, table.Options{})
	}}, nil
}

// filesTable reads table files in a local folder (paths relative to it)
// one after the other.
func filesTable(ref, digest, dir string, paths []string) *Table {
	return &Table{Ref: ref, Digest: digest, Open: func(ctx context.Context) (table.Reader, error) {
		opens := make([]func(context.Context) (table.Reader, error), len(paths))
		for i, p := range paths {
			full := filepath.Join(dir, filepath.FromSlash(p))
			opens[i] = func(ctx context.Context) (table.Reader, error) { return table.Open(ctx, full, table.Options{}) }
		}
		return ConcatTables(ctx, paths, opens)
	}}
}
