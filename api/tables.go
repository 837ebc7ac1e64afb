package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/errdefs"
)

// Operations that read a version's table files: diff, profile, validate,
// split. The files are checked out (verified) into a temporary folder
// first; Parquet needs random access.
func (h *Handler) registerTables(mux Mux) {
	h.handle(mux, "GET", "/datasets/{name}/versions/{version}/diff", h.diff)
	h.handle(mux, "GET", "/datasets/{name}/versions/{version}/profile", h.getProfile)
	h.handle(mux, "GET", "/datasets/{name}/versions/{version}/pii", h.scanPII)
	h.handle(mux, "POST", "/datasets/{name}/versions/{version}/profile", h.computeProfile)
	h.handle(mux, "GET", "/datasets/{name}/versions/{version}/validations", h.listValidations)
	h.handle(mux, "POST", "/datasets/{name}/versions/{version}/validations", h.validateVersion)
	h.handle(mux, "POST", "/datasets/{name}/versions/{version}/splits", h.split)
}

// isReadableTable says whether the table readers read a file: a table
// file by its extension, not compressed.
func isReadableTable(p string) bool {
	return dataset.IsTablePath(p) && !strings.HasSuffix(strings.ToLower(p), ".gz")
}

// tableFiles picks the table files of m: the one at path, or all of them.
func tableFiles(m *dataset.Manifest, path string) ([]dataset.Entry, error) {
	if path != "" {
		if err := dataset.ValidatePath(path); err != nil {
			return nil, err
		}
		e, ok := m.Lookup(path)
		if !ok {
			return nil, errdefs.NotFound("The version has no file '%s'", clip(path))
		}
		if !isReadableTable(e.Path) {
			return nil, errdefs.Invalid("'%s' is not a table file that Kiln reads (CSV, Parquet or JSON Lines, uncompressed)", clip(path))
		}
		return []dataset.Entry{e}, nil
	}
	var out []dataset.Entry
	for _, e := range m.Files {
		if isReadableTable(e.Path) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, errdefs.Invalid("The version holds no table file (CSV, Parquet or JSON Lines)")
	}
	return out, nil
}

// checkout writes entries (paths relative to the returned folder) into a
// new temporary folder, verifying every object; cleanup removes it.
func (h *Handler) checkout(ctx context.Context, entries []dataset.Entry) (dir string, cleanup func(), err error) {
	m, err := dataset.NewManifest(dataset.KindDir, entries)
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp(h.d.TempDir, "kiln-api-*")
	if err != nil {
		return "", nil, fmt.Errorf("temporary folder: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	if _, err := dataset.Checkout(ctx, h.d.Content, m, dir, dataset.CheckoutOptions{}); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// openTable opens a table file. The reader is not wrapped, so a Parquet
// reader's row count (table.RowCounter) stays visible.
func openTable(ctx context.Context, path string, opts table.Options) (table.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open table: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r, err := table.OpenReaderAt(ctx, f, st.Size(), filepath.Base(path), opts)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return r, func() { r.Close(); f.Close() }, nil
}

// countRows returns a table's schema and row count.
func countRows(ctx context.Context, path string) (table.Schema, int64, error) {
	r, done, err := openTable(ctx, path, table.Options{})
	if err != nil {
		return table.Schema{}, 0, err
	}
	defer done()
	s := r.Schema()
	if rc, ok := r.(table.RowCounter); ok {
		return s, rc.NumRows(), nil
	}
	var n int64
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return s, n, nil
		}
		if err != nil {
			return s, n, err
		}
		n += int64(b.Len)
	}
}

// refIn parses a version named relative to a dataset: "3", "v3",
// "latest", or a full reference "name@3" / "name".
func refIn(current, s string) (dataset.VersionRef, error) {
	if n := strings.TrimPrefix(s, "v"); s == "latest" || n != "" && strings.Trim(n, "0123456789") == "" {
		return dataset.ParseVersionRef(current + "@" + s)
	}
	return dataset.ParseVersionRef(s)
}

func (h *Handler) diff(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	st := h.d.Datasets
	to, err := st.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	var from *dataset.Version
	if f := r.URL.Query().Get("from"); f != "" {
		fref, err := refIn(ref.Dataset, f)
		if err != nil {
			return err
		}
		if from, err = st.GetVersion(ctx, fref); err != nil {
			return err
		}
	} else if to.Version > 1 {
		if from, err = st.GetVersion(ctx, dataset.VersionRef{Dataset: to.Dataset, Version: to.Version - 1}); err != nil {
			return err
		}
	}
	withTables := true
	if t := r.URL.Query().Get("tables"); t != "" {
		if withTables, err = strconv.ParseBool(t); err != nil {
			return errdefs.Invalid("Invalid tables '%s': want true or false", clip(t))
		}
	}
	mTo, err := h.d.Content.GetManifest(ctx, to.Digest)
	if err != nil {
		return err
	}
	mFrom := &dataset.Manifest{Kind: dataset.KindDir, Files: []dataset.Entry{}}
	resp := DiffResponse{To: to.Ref(), Tables: []TableDiff{}}
	if from != nil {
		if mFrom, err = h.d.Content.GetManifest(ctx, from.Digest); err != nil {
			return err
		}
		fr := from.Ref()
		resp.From = &fr
	}
	resp.Files = dataset.DiffManifests(mFrom, mTo)
	if withTables {
		if resp.Tables, resp.TablesTruncated, err = h.diffTables(ctx, mFrom, resp.Files); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// diffTables reads the changed and added table files of a diff: row
// counts and schema changes. A table that cannot be read gets an error
// message, not a failed request.
func (h *Handler) diffTables(ctx context.Context, mFrom *dataset.Manifest, d *dataset.Diff) ([]TableDiff, bool, error) {
	changed, added := d.ChangedTables()
	type side struct {
		e    dataset.Entry // Path is the checkout path: "a/…" (old) or "b/…" (new)
		used bool
	}
	type item struct {
		td       TableDiff
		old, new side
	}
	var items []item
	for _, c := range changed {
		oldPath := c.Path
		if _, ok := mFrom.Lookup(oldPath); !ok && mFrom.Kind == dataset.KindFile {
			oldPath = mFrom.Files[0].Path // two single-file versions whose files are named differently
		}
		items = append(items, item{
			td:  TableDiff{Path: c.Path, Status: "changed", SchemaChanges: []table.Change{}},
			old: side{dataset.Entry{Path: "a/" + oldPath, Size: c.OldSize, Digest: c.OldDigest}, true},
			new: side{dataset.Entry{Path: "b/" + c.Path, Size: c.NewSize, Digest: c.NewDigest}, true},
		})
	}
	for _, e := range added {
		items = append(items, item{
			td:  TableDiff{Path: e.Path, Status: "added", SchemaChanges: []table.Change{}},
			new: side{dataset.Entry{Path: "b/" + e.Path, Size: e.Size, Digest: e.Digest}, true},
		})
	}
	truncated := len(items) > MaxDiffTables
	if truncated {
		items = items[:MaxDiffTables]
	}
	out := make([]TableDiff, len(items))
	var fetch []dataset.Entry
	var todo []int
	for i, it := range items {
		out[i] = it.td
		if !isReadableTable(it.new.e.Path) || it.old.used && !isReadableTable(it.old.e.Path) {
			out[i].Error = "compressed table files are not read"
			continue
		}
		todo = append(todo, i)
		fetch = append(fetch, it.new.e)
		if it.old.used {
			fetch = append(fetch, it.old.e)
		}
	}
	if len(todo) == 0 {
		return out, truncated, nil
	}
	dir, cleanup, err := h.checkout(ctx, fetch)
	if err != nil {
		return nil, false, err
	}
	defer cleanup()
	local := func(e dataset.Entry) string { return filepath.Join(dir, filepath.FromSlash(e.Path)) }
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, i := range todo {
		it := items[i]
		td := &out[i]
		g.Go(func() error {
			newSchema, newRows, err := countRows(gctx, local(it.new.e))
			if err != nil {
				td.Error = errdefs.Message(err)
				return gctx.Err()
			}
			td.NewRows = &newRows
			if !it.old.used {
				return nil
			}
			oldSchema, oldRows, err := countRows(gctx, local(it.old.e))
			if err != nil {
				td.Error = "old version: " + errdefs.Message(err)
				return gctx.Err()
			}
			td.OldRows = &oldRows
			if ch := table.Diff(oldSchema, newSchema); ch != nil {
				td.SchemaChanges = ch
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	return out, truncated, nil
}

func (h *Handler) getProfile(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	v, err := h.d.Datasets.GetVersion(r.Context(), ref)
	if err != nil {
		return err
	}
	if len(v.Profile) == 0 {
		return errdefs.NotFound("Version %s has no profile yet: compute one with POST .../profile (kiln data profile)", v.Ref())
	}
	var p profile.Profile
	if err := json.Unmarshal(v.Profile, &p); err != nil {
		return fmt.Errorf("stored profile of %s: %w", v.Ref(), err)
	}
	resp := ProfileResponse{Version: v.Ref(), Stored: true, Profile: &p, Files: []string{}}
	if len(v.Schema) > 0 {
		var s table.Schema
		if err := json.Unmarshal(v.Schema, &s); err != nil {
			return fmt.Errorf("stored schema of %s: %w", v.Ref(), err)
		}
		resp.Schema = &s
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// computeProfile profiles a version's table files, merging their
// profiles, and stores the profile and schema on the version when they
// cover all of its tables.
func (h *Handler) computeProfile(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var req ProfileRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, true); err != nil {
		return err
	}
	ctx := r.Context()
	v, err := h.d.Datasets.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	ref = v.Ref()
	m, err := h.d.Content.GetManifest(ctx, v.Digest)
	if err != nil {
		return err
	}
	files, err := tableFiles(m, req.Path)
	if err != nil {
		return err
	}
	all, _ := tableFiles(m, "")
	dir, cleanup, err := h.checkout(ctx, files)
	if err != nil {
		return err
	}
	defer cleanup()
	var merged *profile.Profile
	names := make([]string, len(files))
	for i, e := range files {
		names[i] = e.Path
		rd, done, err := openTable(ctx, filepath.Join(dir, filepath.FromSlash(e.Path)), table.Options{})
		if err != nil {
			return fmt.Errorf("%w (in '%s')", err, e.Path)
		}
		p, err := profile.Compute(ctx, rd, profile.Options{})
		done()
		if err != nil {
			return fmt.Errorf("%w (in '%s')", err, e.Path)
		}
		if merged == nil {
			merged = p
			continue
		}
		if err := merged.MergeFrom(p); err != nil {
			if errors.Is(err, profile.ErrIncompatible) {
				return errdefs.Invalid("The version's table files have different schemas ('%s' and '%s': %s); profile one of them with path", files[0].Path, e.Path, errdefs.Message(err))
			}
			return err
		}
	}
	merged.Refresh()
	schema := merged.Schema()
	stored := len(files) == len(all)
	if stored {
		if err := h.d.Datasets.SetVersionSchema(ctx, ref, schema); err != nil {
			return err
		}
		if err := h.d.Datasets.SetVersionProfile(ctx, ref, merged); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, ProfileResponse{Version: ref, Files: names, Stored: stored, Schema: &schema, Profile: merged})
	return nil
}

func (h *Handler) listValidations(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	vals, err := h.d.Datasets.ListValidationResults(r.Context(), ref)
	if err != nil {
		return err
	}
	if vals == nil {
		vals = []*dataset.ValidationResult{}
	}
	writeJSON(w, http.StatusOK, ValidationList{Validations: vals})
	return nil
}

// isYAML says whether a request body is a YAML document.
func isYAML(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		return true
	}
	return false
}

func (h *Handler) validateVersion(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var req ValidateRequest
	if isYAML(r) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxSuiteBytes))
		if err != nil {
			return err
		}
		q := r.URL.Query()
		req.Suite, req.Path = string(data), q.Get("path")
		if d := q.Get("dry_run"); d != "" {
			if req.DryRun, err = strconv.ParseBool(d); err != nil {
				return errdefs.Invalid("Invalid dry_run '%s': want true or false", clip(d))
			}
		}
	} else if err := decodeJSON(w, r, DefaultMaxSuiteBytes, &req, false); err != nil {
		return err
	}
	suite, err := validate.ParseSuite([]byte(req.Suite))
	if err != nil {
		return err
	}
	ctx := r.Context()
	v, err := h.d.Datasets.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	ref = v.Ref()
	src, done, err := h.openVersionTables(ctx, v, req.Path)
	if err != nil {
		return err
	}
	defer done()
	opts := validate.Options{References: h.referenceProfiles(ref.Dataset), Logger: h.log}
	if ref.Version > 1 {
		opts.DefaultReference = dataset.VersionRef{Dataset: ref.Dataset, Version: ref.Version - 1}.String()
	}
	rep, err := validate.Run(ctx, suite, src, opts)
	if err != nil {
		return err
	}
	resp := ValidateResponse{Version: ref, Report: rep}
	if !req.DryRun {
		name := suite.Name
		if name == "" {
			name = "unnamed"
		}
		res, err := h.d.Datasets.AddValidationResult(ctx, ref, name, rep.Passed, rep)
		if err != nil {
			return err
		}
		resp.ValidationID = res.ID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// referenceProfiles resolves a distribution rule's reference — "name@3",
// "name", or a version of the validated dataset ("3", "latest") — by
// sampling that version's tables.
func (h *Handler) referenceProfiles(current string) validate.ReferenceFunc {
	return func(ctx context.Context, name string) (validate.Profile, error) {
		ref, err := refIn(current, name)
		if err != nil {
			return nil, err
		}
		v, err := h.d.Datasets.GetVersion(ctx, ref)
		if err != nil {
			return nil, err
		}
		src, done, err := h.openVersionTables(ctx, v, "")
		if err != nil {
			return nil, err
		}
		defer done()
		return validate.ProfileTable(ctx, src, validate.ProfileOptions{})
	}
}

// openVersionTables checks out a version's table files (or the one at
// path) and reads them as one table: the first file fixes the schema,
// the others are read with it (CSV, JSON Lines) or must have it (Parquet).
func (h *Handler) openVersionTables(ctx context.Context, v *dataset.Version, path string) (*chainReader, func(), error) {
	m, err := h.d.Content.GetManifest(ctx, v.Digest)
	if err != nil {
		return nil, nil, err
	}
	files, err := tableFiles(m, path)
	if err != nil {
		return nil, nil, err
	}
	dir, cleanup, err := h.checkout(ctx, files)
	if err != nil {
		return nil, nil, err
	}
	c := &chainReader{dir: dir, files: files}
	if err := c.open(ctx, 0); err != nil {
		cleanup()
		return nil, nil, err
	}
	return c, func() { c.close(); cleanup() }, nil
}

// chainReader reads several table files as one table.
type chainReader struct {
	dir    string
	files  []dataset.Entry
	i      int
	cur    table.Reader
	done   func()
	schema table.Schema
}

func (c *chainReader) open(ctx context.Context, i int) error {
	c.close()
	e := c.files[i]
	opts := table.Options{}
	if i > 0 {
		s := c.schema
		opts.Schema = &s
	}
	r, done, err := openTable(ctx, filepath.Join(c.dir, filepath.FromSlash(e.Path)), opts)
	if err != nil {
		return fmt.Errorf("%w (in '%s')", err, e.Path)
	}
	c.i, c.cur, c.done = i, r, done
	if i == 0 {
		c.schema = r.Schema()
		return nil
	}
	if !sameColumns(c.schema, r.Schema()) {
		c.close()
		return errdefs.Invalid("Table files '%s' and '%s' have different columns or types; validate one of them with path", c.files[0].Path, e.Path)
	}
	return nil
}

func sameColumns(a, b table.Schema) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || a.Fields[i].Type != b.Fields[i].Type {
			return false
		}
	}
	return true
}

func (c *chainReader) close() {
	if c.done != nil {
		c.done()
		c.cur, c.done = nil, nil
	}
}

func (c *chainReader) Schema() table.Schema { return c.schema }

func (c *chainReader) Next(ctx context.Context) (*table.Batch, error) {
	for {
		if c.cur == nil {
			return nil, io.EOF
		}
		b, err := c.cur.Next(ctx)
		if !errors.Is(err, io.EOF) {
			if err != nil {
				err = fmt.Errorf("%w (in '%s')", err, c.files[c.i].Path)
			}
			return b, err
		}
		if c.i+1 == len(c.files) {
			c.close()
			return nil, io.EOF
		}
		if err := c.open(ctx, c.i+1); err != nil {
			return nil, err
		}
	}
}

func (h *Handler) split(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var req SplitRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	ctx := r.Context()
	v, err := h.d.Datasets.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	outs, stats, err := dataset.Split(ctx, h.d.Datasets, h.d.Content, dataset.SplitRequest{
		Source: v.Ref(), Spec: req.Spec, Names: req.Names, CreatedBy: req.CreatedBy, TempDir: h.d.TempDir,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SplitResponse{Source: v.Ref(), Outputs: outs, Stats: stats})
	return nil
}
