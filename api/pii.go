package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/pii"
)

// PIIReport is the answer of GET .../versions/{version}/pii: per table
// file, the findings by column and kind. It never holds the values.
type PIIReport struct {
	Version dataset.VersionRef `json:"version"`
	Kinds   []pii.Kind         `json:"kinds"`
	Files   []PIIFile          `json:"files"`
}

// PIIFile is the report of one table file.
type PIIFile struct {
	Path string `json:"path"`
	*pii.ColumnReport
}

// scanPII scans the string columns of a version's table files for
// personal data (?path= one file, ?kinds=email,card …).
func (h *Handler) scanPII(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var cfg pii.Config
	if k := r.URL.Query().Get("kinds"); k != "" {
		for _, s := range strings.Split(k, ",") {
			cfg.Kinds = append(cfg.Kinds, pii.Kind(strings.TrimSpace(s)))
		}
	}
	sc, err := pii.New(cfg)
	if err != nil {
		return err
	}
	ctx := r.Context()
	v, err := h.d.Datasets.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	m, err := h.d.Content.GetManifest(ctx, v.Digest)
	if err != nil {
		return err
	}
	files, err := tableFiles(m, r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	dir, cleanup, err := h.checkout(ctx, files)
	if err != nil {
		return err
	}
	defer cleanup()
	resp := PIIReport{Version: v.Ref(), Kinds: cfg.Kinds, Files: []PIIFile{}}
	if len(resp.Kinds) == 0 {
		resp.Kinds = pii.Kinds
	}
	for _, e := range files {
		rd, done, err := openTable(ctx, filepath.Join(dir, filepath.FromSlash(e.Path)), table.Options{})
		if err != nil {
			return fmt.Errorf("%w (in '%s')", err, e.Path)
		}
		rep := pii.NewColumnReport(sc)
		s := rd.Schema()
		for {
			b, err := rd.Next(ctx)
			if err != nil {
				done()
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("%w (in '%s')", err, e.Path)
			}
			rep.Rows += int64(b.Len)
			for ci, f := range s.Fields {
				if f.Type != table.String {
					continue
				}
				c := &b.Columns[ci]
				for i := 0; i < b.Len; i++ {
					if !c.Null(i) {
						rep.Cell(f.Name, c.Str(i))
					}
				}
			}
		}
		resp.Files = append(resp.Files, PIIFile{Path: e.Path, ColumnReport: rep})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
