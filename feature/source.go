package feature

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// OpenSource opens every row of v's source as one table: the table files
// of a Kiln dataset version ("name@N", "name@latest", "name": the latest
// at the time of the call), or of a path (a local file or folder, or an
// s3://, gs://, azblob:// or file:// URL of an object or prefix). Table
// files are CSV, Parquet or JSON Lines (uncompressed), read in path order;
// the first fixes the schema and the others must have its columns. The
// files are copied into a temporary folder first (Parquet needs random
// access; dataset objects are verified); done closes the reader and
// removes it.
func (s *Service) OpenSource(ctx context.Context, v *FeatureView) (r table.Reader, done func(), err error) {
	return s.openSource(ctx, v, false)
}

// SourceName names v's source for messages and lineage: "dataset
// name@N" or the path.
func SourceName(v *FeatureView) string {
	if v.Spec.Source.Dataset != "" {
		return "dataset " + v.Spec.Source.Dataset
	}
	return v.Spec.Source.Path
}

// SourceVersion resolves a dataset source to its current version ("name@3");
// nil for a path source.
func (s *Service) SourceVersion(ctx context.Context, v *FeatureView) (*dataset.Version, error) {
	if v.Spec.Source.Dataset == "" {
		return nil, nil
	}
	if s.Datasets == nil || s.Content == nil {
		return nil, errdefs.NotImplemented("This server does not read dataset sources")
	}
	ref, err := dataset.ParseVersionRef(v.Spec.Source.Dataset)
	if err != nil {
		return nil, err
	}
	return s.Datasets.GetVersion(ctx, ref)
}

// srcFile is one table file of a source: its name (for messages and the
// order) and how to get a local copy.
type srcFile struct {
	name  string
	local string // already local: read in place
}

func (s *Service) openSource(ctx context.Context, v *FeatureView, firstOnly bool) (table.Reader, func(), error) {
	dir, err := os.MkdirTemp(s.TempDir, "kiln-feature-*")
	if err != nil {
		return nil, nil, fmt.Errorf("feature: temporary folder: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	files, err := s.fetchSource(ctx, v, dir, firstOnly)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	opts := table.Options{Format: table.Format(v.Spec.Source.Format)}
	c := &chainReader{files: files, opts: opts}
	if err := c.open(ctx, 0); err != nil {
		cleanup()
		return nil, nil, err
	}
	return c, func() { c.Close(); cleanup() }, nil
}

// isTable says whether a file is one the table readers read (or, with a
// forced format, any file but hidden ones).
func isTable(p, format string) bool {
	base := filepath.Base(p)
	if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
		return false
	}
	if format != "" {
		return !strings.HasSuffix(strings.ToLower(p), ".gz")
	}
	return dataset.IsTablePath(p) && !strings.HasSuffix(strings.ToLower(p), ".gz")
}

// fetchSource lists the table files of v's source and makes them local
// under dir (a dataset version's are checked out; a local path's are read
// in place).
func (s *Service) fetchSource(ctx context.Context, v *FeatureView, dir string, firstOnly bool) ([]srcFile, error) {
	src := v.Spec.Source
	if src.Dataset != "" {
		ver, err := s.SourceVersion(ctx, v)
		if err != nil {
			return nil, err
		}
		m, err := s.Content.GetManifest(ctx, ver.Digest)
		if err != nil {
			return nil, fmt.Errorf("feature: manifest of %s@%d: %w", ver.Dataset, ver.Version, err)
		}
		var entries []dataset.Entry
		for _, e := range m.Files {
			if isTable(e.Path, src.Format) {
				entries = append(entries, e)
			}
		}
		if len(entries) == 0 {
			return nil, errdefs.Invalid("Dataset %s@%d holds no table file (CSV, Parquet or JSON Lines, uncompressed)", ver.Dataset, ver.Version)
		}
		slices.SortFunc(entries, func(a, b dataset.Entry) int { return strings.Compare(a.Path, b.Path) })
		if firstOnly {
			entries = entries[:1]
		}
		sub, err := dataset.NewManifest(dataset.KindDir, entries)
		if err != nil {
			return nil, err
		}
		if _, err := dataset.Checkout(ctx, s.Content, sub, dir, dataset.CheckoutOptions{}); err != nil {
			return nil, fmt.Errorf("feature: check out %s@%d: %w", ver.Dataset, ver.Version, err)
		}
		out := make([]srcFile, len(entries))
		for i, e := range entries {
			out[i] = srcFile{name: e.Path, local: filepath.Join(dir, filepath.FromSlash(e.Path))}
		}
		return out, nil
	}
	ds, err := dataset.OpenSource(ctx, src.Path, s.SourceOptions)
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	var names []string
	err = ds.Walk(ctx, func(f dataset.SourceFile) error {
		if ds.Kind() == dataset.KindFile || isTable(f.Path, src.Format) {
			names = append(names, f.Path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errdefs.Invalid("Source '%s' holds no table file (CSV, Parquet or JSON Lines, uncompressed)", clip(src.Path))
	}
	slices.Sort(names)
	if firstOnly {
		names = names[:1]
	}
	out := make([]srcFile, len(names))
	local, isLocal := ds.(*dataset.LocalSource)
	for i, n := range names {
		out[i].name = n
		if isLocal {
			p := local.Root()
			if ds.Kind() == dataset.KindDir {
				p = filepath.Join(p, filepath.FromSlash(n))
			}
			out[i].local = p
			continue
		}
		dst := filepath.Join(dir, fmt.Sprintf("%06d-%s", i, filepath.Base(n)))
		if err := copyFile(ctx, ds, n, dst); err != nil {
			return nil, err
		}
		out[i].local = dst
	}
	return out, nil
}

func copyFile(ctx context.Context, ds dataset.Source, name, dst string) error {
	rc, err := ds.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("feature: open %s: %w", name, err)
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("feature: %w", err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("feature: copy %s: %w", name, err)
	}
	return f.Close()
}

// chainReader reads several table files as one table.
type chainReader struct {
	files  []srcFile
	opts   table.Options
	i      int
	cur    table.Reader
	schema table.Schema
}

func (c *chainReader) open(ctx context.Context, i int) error {
	c.closeCur()
	opts := c.opts
	if i > 0 {
		sch := c.schema
		opts.Schema = &sch
	}
	r, err := table.Open(ctx, c.files[i].local, opts)
	if err != nil {
		return fmt.Errorf("%w (in '%s')", err, c.files[i].name)
	}
	c.i, c.cur = i, r
	if i == 0 {
		c.schema = r.Schema()
		return nil
	}
	if !sameColumns(c.schema, r.Schema()) {
		c.closeCur()
		return errdefs.Invalid("Table files '%s' and '%s' of the source have different columns or types", c.files[0].name, c.files[i].name)
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

func (c *chainReader) closeCur() {
	if c.cur != nil {
		c.cur.Close()
		c.cur = nil
	}
}

func (c *chainReader) Schema() table.Schema { return c.schema }

func (c *chainReader) Close() error { c.closeCur(); return nil }

func (c *chainReader) Next(ctx context.Context) (*table.Batch, error) {
	for {
		if c.cur == nil {
			return nil, io.EOF
		}
		b, err := c.cur.Next(ctx)
		if !errors.Is(err, io.EOF) {
			if err != nil {
				err = fmt.Errorf("%w (in '%s')", err, c.files[c.i].name)
			}
			return b, err
		}
		if c.i+1 == len(c.files) {
			c.closeCur()
			return nil, io.EOF
		}
		if err := c.open(ctx, c.i+1); err != nil {
			return nil, err
		}
	}
}

// checkSource checks that v's source has the timestamp column, the join
// keys and the features with compatible types. A path source that cannot
// be opened (not reachable from the server yet) is not checked; a dataset
// source must exist.
func (s *Service) checkSource(ctx context.Context, v *FeatureView, keys []string) error {
	if v.Spec.Source.Dataset != "" && (s.Datasets == nil || s.Content == nil) {
		return nil
	}
	r, done, err := s.openSource(ctx, v, true)
	if err != nil {
		var fe errdefs.FieldErrors
		switch {
		case v.Spec.Source.Dataset != "" && errors.Is(err, errdefs.ErrNotFound):
			return errdefs.InvalidFields("feature view", errdefs.FieldErrors{{Path: "spec.source.dataset", Msg: errdefs.Message(err)}})
		case errors.Is(err, errdefs.ErrInvalidArgument) && !errors.As(err, &fe):
			return errdefs.InvalidFields("feature view", errdefs.FieldErrors{{Path: "spec.source", Msg: errdefs.Message(err)}})
		}
		s.log().Warn("feature view source not checked: cannot open it", "view", v.Metadata.Name, "source", SourceName(v), "err", err)
		return nil
	}
	defer done()
	return CheckSchema(v, keys, r.Schema())
}

// CheckSchema checks that sch has v's timestamp columns (timestamp or
// date), its join keys (int64, string or bool) and its features, each
// of a type that converts to the feature's: int64 from int64, float64
// from float64 or int64, string from string, bool from bool.
func CheckSchema(v *FeatureView, keys []string, sch table.Schema) error {
	var errs errdefs.FieldErrors
	fail := func(path, format string, args ...any) {
		errs = append(errs, errdefs.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	col := func(path, name string, ok func(table.Type) bool, want string) {
		i := sch.Index(name)
		if i < 0 {
			fail(path, "the source has no column %q (it has %s)", name, columnList(sch))
			return
		}
		if t := sch.Fields[i].Type; !ok(t) {
			fail(path, "column %q of the source is %s, not %s", name, t, want)
		}
	}
	isTime := func(t table.Type) bool { return t == table.Timestamp || t == table.Date }
	col("spec.timestamp_field", v.Spec.TimestampField, isTime, "a timestamp or date")
	if v.Spec.CreatedTimestampField != "" {
		col("spec.created_timestamp_field", v.Spec.CreatedTimestampField, isTime, "a timestamp or date")
	}
	for i, k := range keys {
		col(fmt.Sprintf("spec.entities (join key %d)", i), k, func(t table.Type) bool {
			return t == table.Int64 || t == table.String || t == table.Bool
		}, "int64, string or bool")
	}
	for i, f := range v.Spec.Features {
		col(fmt.Sprintf("spec.features[%d].type", i), f.Name, func(t table.Type) bool { return compatible(f.Type, t) }, "compatible with "+f.Type)
	}
	if len(errs) > 0 {
		return errdefs.InvalidFields("feature view", errs)
	}
	return nil
}

// compatible says whether a source column of type t converts to a
// feature of type typ.
func compatible(typ string, t table.Type) bool {
	switch typ {
	case TypeInt64:
		return t == table.Int64
	case TypeFloat64:
		return t == table.Float64 || t == table.Int64
	case TypeString:
		return t == table.String
	case TypeBool:
		return t == table.Bool
	}
	return false
}

func columnList(sch table.Schema) string {
	names := sch.Names()
	if len(names) > 12 {
		names = append(names[:12:12], "…")
	}
	return strings.Join(names, ", ")
}
