package score

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// InputKind says where a job's input is.
type InputKind string

// Kinds of job input.
const (
	InputDataset  InputKind = "dataset"  // NAME@VERSION[/path], kiln://datasets/NAME@VERSION[/path]
	InputArtifact InputKind = "artifact" // mlflow-artifacts:/key: a file or a folder of the artifact store
	InputURL      InputKind = "url"      // s3://bucket/key (gs://, azblob://): a file or a prefix
)

// InputRef is a parsed job input.
type InputRef struct {
	Kind    InputKind
	Dataset dataset.VersionRef // InputDataset
	Path    string             // InputDataset: a file or folder of the version ("" for all); InputArtifact: the key
	URL     string             // InputURL
}

// maxRefLen bounds the text of an input, output or model reference.
const maxRefLen = 4096

// ParseInput parses a job's input: a dataset version, NAME@VERSION with an
// optional /path of a file or folder in it (NAME@latest, NAME@3,
// kiln://datasets/NAME@3/part.parquet), an artifact of the server's store
// (mlflow-artifacts:/key), or an object-store URL (s3://bucket/key, gs://,
// azblob://).
func ParseInput(s string) (InputRef, error) {
	if s == "" {
		return InputRef{}, errdefs.Invalid("The job needs an input: a dataset version (NAME@VERSION[/path]), an artifact (mlflow-artifacts:/…) or an object URL (s3://…)")
	}
	if len(s) > maxRefLen || strings.ContainsRune(s, 0) {
		return InputRef{}, errdefs.Invalid("The input is longer than %d bytes or holds a NUL byte", maxRefLen)
	}
	if rest, ok := strings.CutPrefix(s, "mlflow-artifacts:"); ok {
		key, err := artifactKey(rest)
		if err != nil || key == "" {
			return InputRef{}, errdefs.Invalid("Invalid artifact input '%s': want mlflow-artifacts:/path", clip(s))
		}
		return InputRef{Kind: InputArtifact, Path: key}, nil
	}
	if rest, ok := strings.CutPrefix(s, dataset.URIScheme+"://datasets/"); ok {
		return parseDatasetInput(s, rest)
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		if scheme == "" || strings.ContainsAny(scheme, "/@") {
			return InputRef{}, errdefs.Invalid("Invalid input '%s'", clip(s))
		}
		return InputRef{Kind: InputURL, URL: s}, nil
	}
	if !strings.Contains(s, "@") {
		return InputRef{}, errdefs.Invalid("Invalid input '%s': name a dataset version as NAME@VERSION (or NAME@latest), an artifact as mlflow-artifacts:/path, or an object URL", clip(s))
	}
	return parseDatasetInput(s, s)
}

func parseDatasetInput(orig, s string) (InputRef, error) {
	ref, p, _ := strings.Cut(s, "/")
	if !strings.Contains(ref, "@") {
		ref += "@latest"
	}
	v, err := dataset.ParseVersionRef(ref)
	if err != nil {
		return InputRef{}, err
	}
	p = strings.Trim(p, "/")
	if p != "" {
		if err := dataset.ValidatePath(p); err != nil {
			return InputRef{}, err
		}
	}
	return InputRef{Kind: InputDataset, Dataset: v, Path: p}, nil
}

// artifactKey maps the part after "mlflow-artifacts:" to a bucket key, as
// the artifact proxy does (mlflow-artifacts:/p or mlflow-artifacts://host/p).
func artifactKey(rest string) (string, error) {
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[i:]
		} else {
			rest = ""
		}
	}
	return blob.CleanKey(strings.TrimLeft(rest, "/"))
}

// String renders the reference in its canonical form.
func (r InputRef) String() string {
	switch r.Kind {
	case InputDataset:
		if r.Path != "" {
			return r.Dataset.String() + "/" + r.Path
		}
		return r.Dataset.String()
	case InputArtifact:
		return "mlflow-artifacts:/" + r.Path
	}
	return r.URL
}

// localInput is a job's input copied into a temporary folder: its table
// files, in order.
type localInput struct {
	dir   string
	files []string // paths relative to dir
}

func (l *localInput) cleanup() { os.RemoveAll(l.dir) }

// fetchInput copies the table files the input names into a new folder
// under tmp.
func (j *Jobs) fetchInput(ctx context.Context, in InputRef) (*localInput, error) {
	dir, err := os.MkdirTemp(j.tempDir, "kiln-score-*")
	if err != nil {
		return nil, err
	}
	l := &localInput{dir: dir}
	if err := j.fetchInto(ctx, in, l); err != nil {
		l.cleanup()
		return nil, err
	}
	if len(l.files) == 0 {
		l.cleanup()
		return nil, errdefs.Invalid("The input %s holds no table file (CSV, Parquet or JSON Lines)", in)
	}
	return l, nil
}

func (j *Jobs) fetchInto(ctx context.Context, in InputRef, l *localInput) error {
	switch in.Kind {
	case InputDataset:
		if j.d.Datasets == nil || j.d.Content == nil {
			return errdefs.Invalid("This server has no dataset store")
		}
		v, err := j.d.Datasets.GetVersion(ctx, in.Dataset)
		if err != nil {
			return err
		}
		m, err := j.d.Content.GetManifest(ctx, v.Digest)
		if err != nil {
			return fmt.Errorf("manifest of %s: %w", v.Ref(), err)
		}
		var entries []dataset.Entry
		for _, e := range m.Files {
			if (in.Path == "" || e.Path == in.Path || strings.HasPrefix(e.Path, in.Path+"/")) && isTable(e.Path) {
				entries = append(entries, e)
			}
		}
		if len(entries) == 0 {
			if _, ok := m.Lookup(in.Path); ok {
				return errdefs.Invalid("'%s' in %s is not a table file that Kiln reads (CSV, Parquet or JSON Lines, uncompressed)", clip(in.Path), v.Ref())
			}
			if in.Path != "" {
				return errdefs.NotFound("Dataset version %s has no file or folder '%s'", v.Ref(), clip(in.Path))
			}
			return nil
		}
		sub, err := dataset.NewManifest(dataset.KindDir, entries)
		if err != nil {
			return err
		}
		if _, err := dataset.Checkout(ctx, j.d.Content, sub, l.dir, dataset.CheckoutOptions{}); err != nil {
			return err
		}
		for _, e := range entries {
			l.files = append(l.files, e.Path)
		}
		return nil
	case InputArtifact:
		src, err := dataset.NewBucketSource(ctx, j.d.Artifacts, in.Path)
		if err != nil {
			return sourceErr(in.String(), err)
		}
		defer src.Close()
		return copySource(ctx, src, l)
	case InputURL:
		scheme, _, _ := strings.Cut(in.URL, "://")
		if !slices.Contains(j.sourceSchemes, strings.ToLower(scheme)) {
			allowed := "none"
			if len(j.sourceSchemes) > 0 {
				allowed = strings.Join(j.sourceSchemes, "://, ") + "://"
			}
			return errdefs.Invalid("The server reads inputs only from %s URLs, datasets and artifacts, not '%s'", allowed, clip(in.URL))
		}
		src, err := dataset.OpenSource(ctx, in.URL, j.d.SourceOptions)
		if err != nil {
			return sourceErr(in.URL, err)
		}
		defer src.Close()
		return copySource(ctx, src, l)
	}
	return errdefs.Invalid("Unknown input kind %q", in.Kind)
}

func isTable(p string) bool {
	return dataset.IsTablePath(p) && !strings.HasSuffix(strings.ToLower(p), ".gz")
}

// copySource downloads a source's table files, in path order.
func copySource(ctx context.Context, src dataset.Source, l *localInput) error {
	var files []string
	if err := src.Walk(ctx, func(f dataset.SourceFile) error {
		if isTable(f.Path) {
			files = append(files, f.Path)
		}
		return nil
	}); err != nil {
		return sourceErr(src.URI(), err)
	}
	slices.Sort(files)
	for _, rel := range files {
		if err := dataset.ValidatePath(rel); err != nil {
			return err
		}
		name := rel
		if name == "" || name == "." {
			name = path.Base(src.URI())
		}
		dst := filepath.Join(l.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		rc, err := src.Open(ctx, rel)
		if err != nil {
			return sourceErr(src.URI(), err)
		}
		f, err := os.Create(dst)
		if err == nil {
			_, err = io.Copy(f, rc)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return sourceErr(src.URI(), err)
		}
		l.files = append(l.files, name)
	}
	return nil
}

// sourceErr explains an input the server could not read: the client's to
// fix, so reported as an invalid argument rather than a 500. Domain errors
// keep their kind.
func sourceErr(uri string, err error) error {
	var de *errdefs.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	cause := strings.Join(strings.Fields(err.Error()), " ")
	if len(cause) > 400 {
		cause = cause[:400] + "..."
	}
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf("The server cannot read '%s': %s", clip(uri), cause), Err: err}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// chain reads several table files as one table: the first fixes the
// schema, the others are read with it (CSV, JSON Lines) or must have it
// (Parquet).
type chain struct {
	dir    string
	files  []string
	i      int
	cur    table.Reader
	schema table.Schema
	total  int64 // rows, when every file knows its count; else -1

	batchRows int
}

func openChain(ctx context.Context, dir string, files []string, batchRows int) (*chain, error) {
	c := &chain{dir: dir, files: files, batchRows: batchRows}
	if err := c.open(ctx, 0); err != nil {
		return nil, err
	}
	for _, f := range files {
		n := rowCount(ctx, filepath.Join(dir, filepath.FromSlash(f)))
		if n < 0 || c.total < 0 {
			c.total = -1
		} else {
			c.total += n
		}
	}
	return c, nil
}

// rowCount is a Parquet file's row count from its footer, or -1.
func rowCount(ctx context.Context, p string) int64 {
	if ft, err := table.DetectFormat(p, nil); err != nil || ft != table.Parquet {
		return -1
	}
	f, err := os.Open(p)
	if err != nil {
		return -1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return -1
	}
	r, err := table.OpenReaderAt(ctx, f, st.Size(), p, table.Options{Format: table.Parquet})
	if err != nil {
		return -1
	}
	defer r.Close()
	if rc, ok := r.(table.RowCounter); ok {
		return rc.NumRows()
	}
	return -1
}

func (c *chain) open(ctx context.Context, i int) error {
	if c.cur != nil {
		c.cur.Close()
		c.cur = nil
	}
	opts := table.Options{BatchRows: c.batchRows}
	if i > 0 {
		s := c.schema
		opts.Schema = &s
	}
	p := filepath.Join(c.dir, filepath.FromSlash(c.files[i]))
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r, err := table.OpenReaderAt(ctx, f, st.Size(), c.files[i], opts)
	if err != nil {
		f.Close()
		return fmt.Errorf("%w (in '%s')", err, c.files[i])
	}
	c.i, c.cur = i, &fileReader{Reader: r, f: f}
	if i == 0 {
		c.schema = r.Schema()
		return nil
	}
	if !sameColumns(c.schema, r.Schema()) {
		c.Close()
		return errdefs.Invalid("Table files '%s' and '%s' have different columns or types; score one of them", c.files[0], c.files[i])
	}
	return nil
}

// fileReader closes its file with the reader.
type fileReader struct {
	table.Reader
	f *os.File
}

func (r *fileReader) Close() error { return errors.Join(r.Reader.Close(), r.f.Close()) }

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

func (c *chain) Schema() table.Schema { return c.schema }

func (c *chain) Next(ctx context.Context) (*table.Batch, error) {
	for {
		if c.cur == nil {
			return nil, io.EOF
		}
		b, err := c.cur.Next(ctx)
		if !errors.Is(err, io.EOF) {
			if err != nil {
				err = fmt.Errorf("%w (in '%s')", err, c.files[c.i])
			}
			return b, err
		}
		if c.i+1 == len(c.files) {
			c.Close()
			return nil, io.EOF
		}
		if err := c.open(ctx, c.i+1); err != nil {
			return nil, err
		}
	}
}

func (c *chain) Close() error {
	if c.cur != nil {
		err := c.cur.Close()
		c.cur = nil
		return err
	}
	return nil
}
