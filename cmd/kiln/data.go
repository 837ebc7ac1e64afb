package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/errdefs"
)

// dataFlags are the flags shared by the kiln data commands.
type dataFlags struct {
	clientFlags
	cacheDir string
}

func newDataCmd() *cobra.Command {
	f := &dataFlags{}
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Version, push, pull, diff, profile, validate and split datasets",
		Long: `Version data the way DVC does, without its slowness: a file or folder
(local, or s3://…) becomes an immutable, numbered version of a named dataset.
Files are content-addressed (BLAKE3) and stored once in the server's artifact
store, however many versions share them; metadata (versions, tags, profiles,
validation results, lineage to MLflow runs and models) lives in the server's
database.

The commands talk to the server at --server, else $KILN_URL, else an
http(s) $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000. Versions are named
NAME@3 (or NAME@v3); NAME alone is the latest version.

Local state lives under --cache-dir ($KILN_CACHE_DIR, else the user's cache
folder, e.g. ~/.cache/kiln): the stat cache, which remembers the digests of
unchanged files so that they are not read again, and the object cache that
pull and checkout write folders from.`,
		Example: `  kiln data add sales ./data/sales -m "January load" --tag source=erp
  kiln data add clicks s3://logs/clicks/2026-01
  kiln data versions sales
  kiln data pull sales@2 ./work/sales
  kiln data diff sales@1 sales@2
  kiln data profile sales@2
  kiln data validate sales@2 -f checks.yaml     # exits 1 when a rule fails
  kiln data split sales@2 --method stratified --column label --fractions 0.8,0.1,0.1 --seed 42
  kiln data lineage sales@2`,
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&f.cacheDir, "cache-dir", "", "local cache folder (default $KILN_CACHE_DIR, else <user cache dir>/kiln)")
	cmd.AddCommand(f.addCmd(), f.pushCmd(), f.pullCmd(), f.checkoutCmd(), f.listCmd(), f.versionsCmd(), f.showCmd(),
		f.diffCmd(), f.tagCmd(), f.profileCmd(), f.piiCmd(), f.validateCmd(), f.splitCmd(), f.lineageCmd())
	return cmd
}

func (f *dataFlags) cacheRoot() (string, error) {
	if f.cacheDir != "" {
		return f.cacheDir, nil
	}
	if d := os.Getenv("KILN_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (set --cache-dir or $KILN_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "kiln"), nil
}

// statCache opens the stat cache; a cache that cannot be opened costs only
// re-hashing, so it is reported and replaced by none.
func (f *dataFlags) statCache(stderr io.Writer) *dataset.StatCache {
	root, err := f.cacheRoot()
	if err == nil {
		if err = os.MkdirAll(root, 0o755); err == nil {
			var sc *dataset.StatCache
			if sc, err = dataset.OpenStatCache(filepath.Join(root, "statcache")); err == nil {
				return sc
			}
		}
	}
	fmt.Fprintf(stderr, "warning: no stat cache (%v): every file is hashed\n", err)
	return nil
}

func saveStatCache(sc *dataset.StatCache, stderr io.Writer) {
	if sc == nil {
		return
	}
	if err := sc.Save(); err != nil {
		fmt.Fprintf(stderr, "warning: stat cache not saved: %v\n", err)
	}
}

func (f *dataFlags) objectCache() (*dataset.Cache, error) {
	root, err := f.cacheRoot()
	if err != nil {
		return nil, err
	}
	return dataset.OpenCache(filepath.Join(root, "content"))
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// completeDatasets completes the first argument with dataset names.
func (f *dataFlags) completeDatasets(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 || strings.Contains(toComplete, "@") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := f.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := withTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	page, err := c.ListDatasets(ctx, client.ListOptions{Prefix: toComplete, MaxResults: 200})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, len(page.Datasets))
	for i, d := range page.Datasets {
		names[i] = d.Name
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeThenFiles completes a dataset name, then paths.
func (f *dataFlags) completeThenFiles(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return f.completeDatasets(cmd, args, toComplete)
	}
	return nil, cobra.ShellCompDirectiveDefault
}

// parseTags parses KEY=VALUE pairs.
func parseTags(kvs []string) (map[string]string, error) {
	tags := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid tag %q: want KEY=VALUE", kv)
		}
		tags[k] = v
	}
	return tags, nil
}

// isServerURL says whether a source is a bucket URL for the server to read
// (anything with a scheme but file://).
func isServerURL(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	return ok && len(scheme) > 1 && !strings.EqualFold(scheme, "file")
}

func localPath(s string) string {
	if rest, ok := strings.CutPrefix(s, "file://"); ok {
		return rest
	}
	return s
}

// addResult is what add and push print with --output json|yaml.
type addResult struct {
	Version  *dataset.Version       `json:"version"`
	Created  bool                   `json:"created"`
	Hash     *dataset.HashStats     `json:"hash,omitempty"`
	Transfer *dataset.TransferStats `json:"transfer,omitempty"`
	Server   *api.TransferSummary   `json:"server_transfer,omitempty"`
}

func (f *dataFlags) addCmd() *cobra.Command {
	var description, message string
	var tagArgs []string
	var jobs, transfers int
	cmd := &cobra.Command{
		Use:   "add NAME PATH|URL",
		Short: "Record a file or folder as a new version of a dataset",
		Long: `Record a file or folder as a new version of dataset NAME (created if needed).

A local PATH is hashed here (BLAKE3, in parallel; files unchanged since they
were last hashed are recognised by the stat cache and not read again), the
objects the server lacks are uploaded, several at once, and the version is
created. When the content equals the latest version's, nothing is created.

A URL (s3://bucket/prefix, gs://…, azblob://…) is read by the server itself,
with the server's credentials, and copied into its artifact store.`,
		Example: `  kiln data add sales ./data/sales.csv
  kiln data add images ./images -m "re-labelled cats" --tag labeller=ana
  kiln data add clicks s3://logs/clicks/2026-01 --description "click stream"`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.completeThenFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			name, srcArg := args[0], args[1]
			if err := dataset.ValidateName(name); err != nil {
				return err
			}
			tags, err := parseTags(tagArgs)
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			res := addResult{}
			req := api.CreateVersionRequest{Description: message, Tags: tags, CreatedBy: currentUser()}
			if isServerURL(srcArg) {
				req.SourceURL = srcArg
				fmt.Fprintf(stderr, "asking %s to read %s\n", c.URL(), srcArg)
			} else {
				// Fail before hashing gigabytes if the server is not there.
				if err := c.Ping(ctx); err != nil {
					return err
				}
				src, err := dataset.NewLocalSource(localPath(srcArg))
				if err != nil {
					return err
				}
				prog := newProgress(cmd.ErrOrStderr())
				sc := f.statCache(stderr)
				m, hs, err := dataset.Hash(ctx, src, dataset.HashOptions{Workers: jobs, StatCache: sc, Progress: prog})
				saveStatCache(sc, stderr)
				if err != nil {
					return err
				}
				res.Hash = &hs
				ts, err := dataset.Push(ctx, src, m, c.Remote(), dataset.TransferOptions{Parallel: transfers, Progress: prog})
				if err != nil {
					return err
				}
				res.Transfer = &ts
				req.Manifest, req.Source = m.Digest().String(), src.URI()
			}
			resp, err := c.CreateVersion(ctx, name, req)
			if err != nil {
				return err
			}
			res.Version, res.Created, res.Server = resp.Version, resp.Created, resp.Transfer
			if cmd.Flags().Changed("description") {
				if _, err := c.UpdateDataset(ctx, name, api.UpdateRequest{Description: &description}); err != nil {
					return err
				}
			}
			return f.print(stdout, res, func(w io.Writer) error {
				v := res.Version
				if res.Created {
					fmt.Fprintf(w, "created %s: %d files, %s, digest %s\n", v.Ref(), v.FileCount, humanBytes(v.TotalSize), v.Digest)
				} else {
					fmt.Fprintf(w, "unchanged: %s already has this content (digest %s)\n", v.Ref(), v.Digest)
				}
				if res.Hash != nil {
					fmt.Fprintf(w, "hashed %d files (%s), %d known to the stat cache; uploaded %d of %d objects (%s)\n",
						res.Hash.HashedFiles, humanBytes(res.Hash.HashedBytes), res.Hash.CachedFiles, res.Transfer.Sent, res.Transfer.Objects, humanBytes(res.Transfer.SentBytes))
				}
				if res.Server != nil {
					fmt.Fprintf(w, "the server read %d files (%s) and stored %d new objects (%s)\n", res.Server.Files, humanBytes(res.Server.Bytes), res.Server.SentObjects, humanBytes(res.Server.SentBytes))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "set the dataset's description")
	cmd.Flags().StringVarP(&message, "message", "m", "", "the new version's description")
	cmd.Flags().StringArrayVar(&tagArgs, "tag", nil, "tag of the new version, KEY=VALUE (repeatable)")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "files hashed at once (default: the number of CPUs)")
	cmd.Flags().IntVar(&transfers, "transfers", 0, "objects uploaded at once (default 64)")
	return cmd
}

// resolve asks the server for a version.
func resolveVersion(ctx context.Context, c *client.Client, arg string) (*api.VersionDetail, error) {
	ref, err := dataset.ParseVersionRef(arg)
	if err != nil {
		return nil, err
	}
	return c.GetVersion(ctx, ref)
}

// version is the common start of the commands that act on one version:
// check --output, connect, and look up NAME[@VERSION].
func (f *dataFlags) version(ctx context.Context, arg string) (*client.Client, *api.VersionDetail, error) {
	if err := f.checkOutput(); err != nil {
		return nil, nil, err
	}
	c, err := f.client()
	if err != nil {
		return nil, nil, err
	}
	det, err := resolveVersion(ctx, c, arg)
	if err != nil {
		return nil, nil, err
	}
	return c, det, nil
}

func (f *dataFlags) pushCmd() *cobra.Command {
	var transfers int
	cmd := &cobra.Command{
		Use:   "push NAME[@VERSION] [PATH]",
		Short: "Upload a version's objects again, from a local folder or the local cache",
		Long: `Upload to the server the objects of a version that it lacks: from PATH,
which must hold exactly the version's content (it is hashed, with the stat
cache, and compared), or, without PATH, from the local object cache (filled by
pull). Use it to repair a server whose artifact store lost objects, or to seed
another server that already knows the version.`,
		Example: `  kiln data push sales@3 ./data/sales
  kiln data push sales@3                 # from the local cache`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: f.completeThenFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			c, det, err := f.version(ctx, args[0])
			if err != nil {
				return err
			}
			v := det.Version
			prog := newProgress(cmd.ErrOrStderr())
			res := addResult{Version: v}
			var ts dataset.TransferStats
			if len(args) == 2 {
				src, err := dataset.NewLocalSource(localPath(args[1]))
				if err != nil {
					return err
				}
				sc := f.statCache(stderr)
				m, hs, err := dataset.Hash(ctx, src, dataset.HashOptions{StatCache: sc, Progress: prog})
				saveStatCache(sc, stderr)
				if err != nil {
					return err
				}
				if d := m.Digest(); d != v.Digest {
					return fmt.Errorf("%s does not hold %s: its content has digest %s, the version %s (kiln data add records a new version)", args[1], v.Ref(), d, v.Digest)
				}
				res.Hash = &hs
				if ts, err = dataset.Push(ctx, src, m, c.Remote(), dataset.TransferOptions{Parallel: transfers, Progress: prog}); err != nil {
					return err
				}
			} else {
				cache, err := f.objectCache()
				if err != nil {
					return err
				}
				m, err := cache.GetManifest(ctx, v.Digest)
				if errors.Is(err, errdefs.ErrNotFound) {
					return fmt.Errorf("%s is not in the local cache %s: give the folder that holds it", v.Ref(), cache.Dir())
				}
				if err != nil {
					return err
				}
				if ts, err = dataset.Fetch(ctx, cache, m, c.Remote(), dataset.TransferOptions{Parallel: transfers, Progress: prog}); err != nil {
					if errors.Is(err, errdefs.ErrNotFound) {
						return fmt.Errorf("the local cache lacks objects of %s (%w): give the folder that holds it", v.Ref(), err)
					}
					return err
				}
			}
			res.Transfer = &ts
			return f.print(cmd.OutOrStdout(), res, func(w io.Writer) error {
				fmt.Fprintf(w, "pushed %s: uploaded %d of %d objects (%s); %d were already there\n", v.Ref(), ts.Sent, ts.Objects, humanBytes(ts.SentBytes), ts.Present)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&transfers, "transfers", 0, "objects uploaded at once (default 64)")
	return cmd
}

// checkoutResult is what pull and checkout print with --output json|yaml.
type checkoutResult struct {
	Version *dataset.Version      `json:"version"`
	Dir     string                `json:"dir"`
	Stats   dataset.CheckoutStats `json:"stats"`
}

func printCheckout(f *dataFlags, w io.Writer, res checkoutResult) error {
	return f.print(w, res, func(w io.Writer) error {
		s := res.Stats
		fmt.Fprintf(w, "%s is in %s: %d files written (%s), %d unchanged, %d removed\n", res.Version.Ref(), res.Dir, s.Written, humanBytes(s.WrittenBytes), s.Unchanged, s.Removed)
		return nil
	})
}

func (f *dataFlags) pullCmd() *cobra.Command {
	var clean, noCache bool
	var transfers, parallel int
	cmd := &cobra.Command{
		Use:   "pull NAME[@VERSION] DIR",
		Short: "Download a version into a folder (through the local cache)",
		Long: `Download a version into DIR: the objects the local cache lacks are fetched
(several at once, each verified), then DIR is made to hold the version's
files. Files already in place with the right content are not rewritten;
files the version does not list are left alone unless --clean.`,
		Example: `  kiln data pull sales ./work/sales
  kiln data pull sales@2 ./work/sales --clean`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.completeThenFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, det, err := f.version(ctx, args[0])
			if err != nil {
				return err
			}
			var cache *dataset.Cache
			if !noCache {
				if cache, err = f.objectCache(); err != nil {
					return err
				}
			}
			prog := newProgress(cmd.ErrOrStderr())
			sc := f.statCache(cmd.ErrOrStderr())
			st, err := dataset.Pull(ctx, c.Remote(), cache, det.Version.Digest, args[1],
				dataset.TransferOptions{Parallel: transfers, Progress: prog},
				dataset.CheckoutOptions{Clean: clean, Parallel: parallel, StatCache: sc, Progress: prog})
			saveStatCache(sc, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return printCheckout(f, cmd.OutOrStdout(), checkoutResult{Version: det.Version, Dir: args[1], Stats: st})
		},
	}
	cmd.Flags().BoolVar(&clean, "clean", false, "remove files and folders in DIR that the version does not list")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "download straight into DIR, not through the local cache")
	cmd.Flags().IntVar(&transfers, "transfers", 0, "objects downloaded at once (default 64)")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "files written at once (default 16)")
	return cmd
}

func (f *dataFlags) checkoutCmd() *cobra.Command {
	var clean bool
	cmd := &cobra.Command{
		Use:   "checkout NAME[@VERSION] DIR",
		Short: "Write a version into a folder from the local cache",
		Long: `Make DIR hold a version's files, from the local object cache only (the server
is asked only which content the version has). Run kiln data pull first to fill
the cache. Only missing or changed files are written; with --clean, files the
version does not list are removed.`,
		Example:           `  kiln data checkout sales@1 ./work/sales --clean`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.completeThenFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, det, err := f.version(ctx, args[0])
			if err != nil {
				return err
			}
			cache, err := f.objectCache()
			if err != nil {
				return err
			}
			m, err := cache.GetManifest(ctx, det.Version.Digest)
			if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, dataset.ErrDigestMismatch) {
				if m, err = c.Remote().GetManifest(ctx, det.Version.Digest); err == nil {
					_, err = cache.PutManifest(ctx, m)
				}
			}
			if err != nil {
				return err
			}
			sc := f.statCache(cmd.ErrOrStderr())
			st, err := dataset.Checkout(ctx, cache, m, args[1], dataset.CheckoutOptions{Clean: clean, StatCache: sc, Progress: newProgress(cmd.ErrOrStderr())})
			saveStatCache(sc, cmd.ErrOrStderr())
			if errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("%w: the local cache lacks objects of %s; run kiln data pull %s %s", err, det.Version.Ref(), det.Version.Ref(), args[1])
			}
			if err != nil {
				return err
			}
			return printCheckout(f, cmd.OutOrStdout(), checkoutResult{Version: det.Version, Dir: args[1], Stats: st})
		},
	}
	cmd.Flags().BoolVar(&clean, "clean", false, "remove files and folders in DIR that the version does not list")
	return cmd
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

func (f *dataFlags) listCmd() *cobra.Command {
	var prefix, contains string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List datasets",
		Example: `  kiln data list
  kiln data list --prefix sales -o json
  kiln data list --contains churn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ds, err := c.AllDatasets(cmd.Context(), client.ListOptions{Prefix: prefix, Contains: contains})
			if err != nil {
				return err
			}
			if ds == nil {
				ds = []*dataset.Dataset{}
			}
			return f.print(cmd.OutOrStdout(), ds, func(w io.Writer) error {
				fmt.Fprintln(w, "NAME\tLATEST\tUPDATED\tTAGS\tDESCRIPTION")
				for _, d := range ds {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", d.Name, d.LatestVersion, formatTime(d.LastUpdateTime), ellipsis(formatTags(d.Tags), 40), ellipsis(d.Description, 50))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "only datasets whose name starts with this")
	cmd.Flags().StringVar(&contains, "contains", "", "only datasets whose name or description contains this (ASCII case ignored)")
	return cmd
}

func (f *dataFlags) versionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "versions NAME",
		Short:             "List a dataset's versions, newest first",
		Example:           `  kiln data versions sales -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if err := dataset.ValidateName(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			vs, err := c.AllVersions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), vs, func(w io.Writer) error {
				fmt.Fprintln(w, "VERSION\tDIGEST\tFILES\tSIZE\tROWS\tVALIDATION\tCREATED\tBY\tTAGS\tDESCRIPTION")
				for _, v := range vs {
					desc := v.Description
					if desc == "" {
						desc = v.Source
					}
					rows, val := "-", "-"
					if v.Rows != nil {
						rows = strconv.FormatInt(*v.Rows, 10)
					}
					if lv := v.LatestValidation; lv != nil {
						val = map[bool]string{true: "passed", false: "FAILED"}[lv.Passed] + " (" + ellipsis(lv.Suite, 20) + ")"
					}
					fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, shortDigest(v.Digest), v.FileCount, humanBytes(v.TotalSize),
						rows, val, formatTime(v.CreationTime), v.CreatedBy, ellipsis(formatTags(v.Tags), 30), ellipsis(desc, 50))
				}
				return nil
			})
		},
	}
}

func (f *dataFlags) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME[@VERSION]",
		Short: "Show a version: content, schema, profile, validations and lineage",
		Example: `  kiln data show sales
  kiln data show sales@2 -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			det, err := resolveVersion(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), det, func(w io.Writer) error { return writeVersionDetail(w, det) })
		},
	}
}

func writeVersionDetail(w io.Writer, det *api.VersionDetail) error {
	v, m := det.Version, det.Manifest
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%s:\t"+format+"\n", append([]any{k}, args...)...) }
	row("version", "%s", v.Ref())
	row("digest", "%s", v.Digest)
	row("uri", "%s", det.URI)
	row("content", "%s, %d files, %s", v.Kind, v.FileCount, humanBytes(v.TotalSize))
	row("created", "%s by %s", formatTime(v.CreationTime), orDash(v.CreatedBy))
	row("source", "%s", orDash(v.Source))
	if v.Description != "" {
		row("description", "%s", ellipsis(v.Description, 100))
	}
	if len(v.Tags) > 0 {
		row("tags", "%s", formatTags(v.Tags))
	}
	if v.Parent != nil {
		row("split from", "%s", v.Parent)
	}
	for i, t := range m.Tables {
		fmt.Fprintf(w, "%s\t%s (%s)\n", label(i, "tables"), t.Path, humanBytes(t.Size))
	}
	if m.TablesTruncated {
		fmt.Fprintf(w, "\t… and more\n")
	}
	if len(v.Schema) > 0 {
		var s table.Schema
		if err := s.UnmarshalJSON(v.Schema); err == nil {
			cols := make([]string, len(s.Fields))
			for i, fl := range s.Fields {
				cols[i] = fl.Name + " " + fl.Type.String()
			}
			row("schema", "%s", ellipsis(strings.Join(cols, ", "), 120))
		}
	}
	if len(v.Profile) > 0 {
		row("profile", "stored (kiln data profile %s)", v.Ref())
	} else {
		row("profile", "none (compute one with kiln data profile %s)", v.Ref())
	}
	for i, r := range det.Validations {
		verdict := "failed"
		if r.Passed {
			verdict = "passed"
		}
		fmt.Fprintf(w, "%s\t#%d %s %s (%s)\n", label(i, "validations"), r.ID, r.Suite, verdict, formatTime(r.CreationTime))
	}
	writeLineageRows(w, det.Lineage)
	return nil
}

func writeLineageRows(w io.Writer, l *api.Lineage) {
	if l == nil {
		return
	}
	for i, k := range l.Children {
		fmt.Fprintf(w, "%s\t%s\n", label(i, "splits"), k)
	}
	for i, r := range l.Runs {
		fmt.Fprintf(w, "%s\t%s %s\n", label(i, "runs"), r.RunID, parenthesise(r.Context))
	}
	for i, mv := range l.ModelVersions {
		via := "linked"
		if mv.Via == "run" {
			via = "via run " + mv.RunID
		}
		fmt.Fprintf(w, "%s\tmodels:/%s/%d (%s)\n", label(i, "models"), mv.ModelName, mv.ModelVersion, via)
	}
}

// label names the first row of a multi-row field; the others get none.
func label(i int, name string) string {
	if i == 0 {
		return name + ":"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parenthesise(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func (f *dataFlags) diffCmd() *cobra.Command {
	var noTables bool
	cmd := &cobra.Command{
		Use:   "diff [NAME@A] NAME@B",
		Short: "Compare two versions: files, and rows and schemas of tables",
		Long: `List the files added, removed and changed from version A to version B and,
for changed table files (CSV, Parquet, JSON Lines), their row counts and schema
changes. With one argument, B is compared with the version before it. A and B
may be versions of different datasets.`,
		Example: `  kiln data diff sales@1 sales@2
  kiln data diff sales                   # the latest version against the one before
  kiln data diff sales@3 sales-clean@1`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			to, from := args[len(args)-1], ""
			if len(args) == 2 {
				a, err := dataset.ParseVersionRef(args[0])
				if err != nil {
					return err
				}
				from = a.String()
			}
			ref, err := dataset.ParseVersionRef(to)
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			d, err := c.Diff(cmd.Context(), ref, from, !noTables)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), d, func(w io.Writer) error { return writeDiff(w, d) })
		},
	}
	cmd.Flags().BoolVar(&noTables, "no-tables", false, "compare files only (do not read table files)")
	return cmd
}

func writeDiff(w io.Writer, d *api.DiffResponse) error {
	fd := d.Files
	from := "nothing"
	if d.From != nil {
		from = d.From.String()
	}
	sign := "+"
	if fd.SizeDelta < 0 {
		sign = "-"
	}
	fmt.Fprintf(w, "%s → %s: %d added, %d removed, %d changed, %d unchanged (%s%s)\n", from, d.To, len(fd.Added), len(fd.Removed), len(fd.Changed), fd.Unchanged, sign, humanBytes(abs(fd.SizeDelta)))
	for _, e := range fd.Added {
		fmt.Fprintf(w, "  +\t%s\t%s\n", e.Path, humanBytes(e.Size))
	}
	for _, e := range fd.Removed {
		fmt.Fprintf(w, "  -\t%s\t%s\n", e.Path, humanBytes(e.Size))
	}
	for _, c := range fd.Changed {
		fmt.Fprintf(w, "  M\t%s\t%s → %s\n", c.Path, humanBytes(c.OldSize), humanBytes(c.NewSize))
	}
	if len(d.Tables) > 0 {
		fmt.Fprintln(w, "tables:")
	}
	for _, t := range d.Tables {
		if t.Error != "" {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", t.Path, t.Status, t.Error)
			continue
		}
		rows := "-"
		switch {
		case t.OldRows != nil && t.NewRows != nil:
			rows = fmt.Sprintf("rows %d → %d", *t.OldRows, *t.NewRows)
		case t.NewRows != nil:
			rows = fmt.Sprintf("rows %d", *t.NewRows)
		}
		changes := make([]string, len(t.SchemaChanges))
		for i, ch := range t.SchemaChanges {
			changes[i] = ch.String()
		}
		schema := "schema unchanged"
		if t.Status == "added" {
			schema = ""
		} else if len(changes) > 0 {
			schema = "schema: " + strings.Join(changes, "; ")
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", t.Path, t.Status, rows, schema)
	}
	if d.TablesTruncated {
		fmt.Fprintf(w, "  … more changed tables than the %d compared\n", api.MaxDiffTables)
	}
	return nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func (f *dataFlags) tagCmd() *cobra.Command {
	var del []string
	cmd := &cobra.Command{
		Use:   "tag NAME[@VERSION] [KEY=VALUE...]",
		Short: "Set or delete tags of a dataset (NAME) or of a version (NAME@VERSION)",
		Example: `  kiln data tag sales owner=ana team=risk
  kiln data tag sales@3 approved=true --delete draft`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			tags, err := parseTags(args[1:])
			if err != nil {
				return err
			}
			if len(tags) == 0 && len(del) == 0 {
				return errors.New("nothing to do: give KEY=VALUE tags or --delete KEY")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			req := api.UpdateRequest{Tags: tags, DeleteTags: del}
			if !strings.Contains(args[0], "@") {
				if err := dataset.ValidateName(args[0]); err != nil {
					return err
				}
				d, err := c.UpdateDataset(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), d, func(w io.Writer) error {
					fmt.Fprintf(w, "%s tags: %s\n", d.Name, orDash(formatTags(d.Tags)))
					return nil
				})
			}
			ref, err := dataset.ParseVersionRef(args[0])
			if err != nil {
				return err
			}
			v, err := c.UpdateVersion(cmd.Context(), ref, req)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintf(w, "%s tags: %s\n", v.Ref(), orDash(formatTags(v.Tags)))
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&del, "delete", nil, "tag key to delete (repeatable)")
	return cmd
}

func (f *dataFlags) profileCmd() *cobra.Command {
	var path string
	var recompute bool
	cmd := &cobra.Command{
		Use:   "profile NAME[@VERSION]",
		Short: "Print a version's profile (computed on the server and stored if it has none)",
		Long: `Print the profile of a version's table files: per column the count, missing
values, distinct count (HyperLogLog), min, mean, standard deviation, max,
quantiles (KLL sketch) and most frequent values. The profile is computed on
the server the first time (or with --recompute) and stored on the version,
where drift checks use it as the reference. A version with several table files
of one schema is profiled as one table; --path picks one file.`,
		Example: `  kiln data profile sales@2
  kiln data profile sales@2 --path data/train.parquet -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, c, err := f.versionClient(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var p *api.ProfileResponse
			if !recompute && path == "" {
				p, err = c.Profile(ctx, ref)
			}
			if p == nil || errors.Is(err, errdefs.ErrNotFound) {
				fmt.Fprintf(cmd.ErrOrStderr(), "profiling %s on the server\n", ref)
				p, err = c.ComputeProfile(ctx, ref, path)
			}
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), p, func(w io.Writer) error { return writeProfile(w, p) })
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "profile only this table file of the version (not stored)")
	cmd.Flags().BoolVar(&recompute, "recompute", false, "compute the profile again")
	return cmd
}

// versionClient checks --output, parses a NAME[@VERSION] argument and
// makes the server's client: the opening of the commands on one version.
func (f *dataFlags) versionClient(arg string) (dataset.VersionRef, *client.Client, error) {
	if err := f.checkOutput(); err != nil {
		return dataset.VersionRef{}, nil, err
	}
	ref, err := dataset.ParseVersionRef(arg)
	if err != nil {
		return dataset.VersionRef{}, nil, err
	}
	c, err := f.client()
	return ref, c, err
}

func (f *dataFlags) piiCmd() *cobra.Command {
	var path, kinds string
	var fail bool
	cmd := &cobra.Command{
		Use:   "pii NAME[@VERSION]",
		Short: "Count personal data (emails, phones, cards, national ids, IPs) in a version's tables",
		Long: `Scan the string columns of a version's table files on the server for
personal data: email addresses, phone numbers, payment card numbers (Luhn
checked), US SSNs, UK National Insurance numbers and IPv4/IPv6 addresses
(see docs/data-protection.md). The report counts findings per file, column
and kind; it never shows the values. With --fail the exit status is 1 when
anything was found, so it can gate CI.`,
		Example: `  kiln data pii tickets@3
  kiln data pii tickets --kinds email,phone --fail
  kiln data pii tickets@3 --path train.parquet -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, c, err := f.versionClient(args[0])
			if err != nil {
				return err
			}
			rep, err := c.PII(cmd.Context(), ref, path, kinds)
			if err != nil {
				return err
			}
			found := 0
			err = f.print(cmd.OutOrStdout(), rep, func(w io.Writer) error {
				fmt.Fprintln(w, "FILE\tCOLUMN\tROWS\tCELLS WITH PII\tFINDINGS")
				for _, fr := range rep.Files {
					for _, col := range slices.Sorted(maps.Keys(fr.Columns)) {
						var parts []string
						for _, k := range rep.Kinds {
							if n := fr.Columns[col][k]; n > 0 {
								parts = append(parts, fmt.Sprintf("%s=%d", k, n))
							}
						}
						fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", fr.Path, col, fr.Rows, fr.Values[col], strings.Join(parts, " "))
					}
				}
				return nil
			})
			for _, fr := range rep.Files {
				for _, n := range fr.Values {
					found += int(n)
				}
			}
			if err == nil && f.output == "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d cells with personal data in %d files\n", rep.Version, found, len(rep.Files))
			}
			if err == nil && fail && found > 0 {
				return exitError{code: 1}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "scan only this table file of the version")
	cmd.Flags().StringVar(&kinds, "kinds", "", "comma-separated kinds to look for: email, card, ssn, nino, ipv4, ipv6, phone (default all)")
	cmd.Flags().BoolVar(&fail, "fail", false, "exit 1 when personal data is found")
	return cmd
}

func fmtNum(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'g', 6, 64)
}

func quantile(c *profile.Column, q float64) *float64 {
	for _, x := range c.Quantiles {
		if x.Q == q {
			v := x.Value
			return &v
		}
	}
	return nil
}

func writeProfile(w io.Writer, p *api.ProfileResponse) error {
	pr := p.Profile
	fmt.Fprintf(w, "%s: %d rows, %d columns\n", p.Version, pr.Rows, len(pr.Columns))
	fmt.Fprintln(w, "COLUMN\tTYPE\tCOUNT\tMISSING\tDISTINCT\tMIN\tP50\tMEAN\tSTD\tMAX\tTOP")
	for _, c := range pr.Columns {
		lo, hi := fmtNum(c.Min), fmtNum(c.Max)
		if c.MinTime != "" {
			lo, hi = c.MinTime, c.MaxTime
		}
		top := make([]string, 0, 3)
		for i, it := range c.Top {
			if i == 3 {
				break
			}
			top = append(top, fmt.Sprintf("%s (%d)", ellipsis(it.Value, 20), it.Count))
		}
		distinct := strconv.FormatInt(c.Distinct, 10)
		if !c.DistinctExact {
			distinct = "~" + distinct
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Field.Name, c.Field.Type, c.Count, c.Missing, distinct,
			lo, fmtNum(quantile(c, 0.5)), fmtNum(c.Mean), fmtNum(c.Std), hi, strings.Join(top, ", "))
	}
	return nil
}

func (f *dataFlags) validateCmd() *cobra.Command {
	var suiteFile, path, local string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "validate NAME[@VERSION] -f SUITE.yaml | --local FILE -f SUITE.yaml",
		Short: "Check a version (or a local table file) against a validation suite; exit 1 on failure",
		Long: `Run a validation suite (YAML rules: types, not-null with mostly, ranges,
allowed values, regular expressions, uniqueness, row count, freshness,
distribution distance to a reference version; see docs/data-validation.md) on a
version's table files. The server runs it and stores the result on the version
(unless --dry-run). The report is printed, and the exit status is 0 when every
rule passed (warnings allowed), 1 when a rule failed, 2 when the validation
could not run, so it can gate CI.

With --local FILE the suite runs here on a local CSV, Parquet or JSON Lines
file, with no server; references of distribution rules are then paths of
local table files.`,
		Example: `  kiln data validate sales@3 -f checks.yaml
  kiln data validate --local ./new/sales.csv -f checks.yaml
  kiln data validate sales -f checks.yaml -o json > report.json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if suiteFile == "" {
				return errors.New("give the suite with -f SUITE.yaml")
			}
			if (local == "") == (len(args) == 0) {
				return errors.New("give either a version (NAME[@VERSION]) or --local FILE")
			}
			data, err := readSuiteFile(suiteFile, cmd.InOrStdin())
			if err != nil {
				return exitError{code: validate.ExitError, err: err}
			}
			var rep *validate.Report
			if local != "" {
				rep, err = validateLocal(cmd.Context(), data, local)
			} else {
				var ref dataset.VersionRef
				if ref, err = dataset.ParseVersionRef(args[0]); err != nil {
					return exitError{code: validate.ExitError, err: err}
				}
				var c *client.Client
				if c, err = f.client(); err != nil {
					return exitError{code: validate.ExitError, err: err}
				}
				var resp *api.ValidateResponse
				if resp, err = c.Validate(cmd.Context(), ref, api.ValidateRequest{Suite: string(data), Path: path, DryRun: dryRun}); err == nil {
					rep = resp.Report
				}
			}
			if err != nil {
				return exitError{code: validate.ExitError, err: err}
			}
			if err := f.print(cmd.OutOrStdout(), rep, func(w io.Writer) error { return rep.WriteText(w) }); err != nil {
				return err
			}
			if code := validate.ExitCode(rep, nil); code != validate.ExitPassed {
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&suiteFile, "file", "f", "", "the validation suite (YAML; - reads standard input)")
	cmd.Flags().StringVar(&path, "path", "", "the table file of the version to validate (needed when it holds several of different schemas)")
	cmd.Flags().StringVar(&local, "local", "", "validate this local table file, without a server")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "do not store the result on the version")
	cmd.MarkFlagFilename("file", "yaml", "yml")
	cmd.MarkFlagFilename("local", "csv", "parquet", "pq", "jsonl", "ndjson")
	return cmd
}

func readSuiteFile(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, validate.MaxSuiteBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > validate.MaxSuiteBytes {
		return nil, fmt.Errorf("suite %s: more than %d bytes", name, validate.MaxSuiteBytes)
	}
	return data, nil
}

// validateLocal runs a suite on a local table file; references are local
// table files too.
func validateLocal(ctx context.Context, suiteYAML []byte, path string) (*validate.Report, error) {
	suite, err := validate.ParseSuite(suiteYAML)
	if err != nil {
		return nil, err
	}
	r, err := table.Open(ctx, path, table.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	open := func(ctx context.Context, name string) (validate.Source, error) {
		if _, err := os.Stat(name); err != nil {
			return nil, errdefs.NotFound("Reference '%s' is not a local table file (with --local, references are paths)", name)
		}
		return table.Open(ctx, name, table.Options{})
	}
	return validate.Run(ctx, suite, r, validate.Options{References: validate.ReferenceFromTables(open, validate.ProfileOptions{})})
}

func (f *dataFlags) splitCmd() *cobra.Command {
	var method, fractions, parts, column, key, path, createdBy string
	var cuts, names []string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "split NAME[@VERSION]",
		Short: "Cut a table version into seeded train/validation/test parts, each a version of its own",
		Long: `Cut a tabular version into parts, deterministically: the same seed and
content give the same parts, and repeating a split creates nothing new. Each
part is recorded as a version of its own dataset (NAME-train, NAME-validation,
NAME-test by default) with the source version as its parent, so a test set
stays untouched.

Methods:
  random      rows by a seeded hash of the row (or of its --key column)
  stratified  each class of --column in the parts' proportions
  time        rows ordered by the timestamp --column, cut at the fractions' quantiles (or --cuts)
  group       whole groups (rows sharing --column) by a seeded hash of the group`,
		Example: `  kiln data split sales@3 --method random --fractions 0.8,0.1,0.1 --seed 42
  kiln data split sales@3 --method stratified --column label --seed 7
  kiln data split events --method time --column ts --parts train,test --cuts 2026-01-01
  kiln data split clicks --method group --column user_id --fractions 0.9,0.1 --parts train,test`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			ref, err := dataset.ParseVersionRef(args[0])
			if err != nil {
				return err
			}
			spec := dataset.SplitSpec{Method: dataset.SplitMethod(method), Seed: seed, Column: column, Key: key, Cuts: cuts, Path: path}
			if spec.Parts, err = splitParts(parts, fractions, len(cuts)); err != nil {
				return err
			}
			nameMap, err := parseTags(names)
			if err != nil {
				return fmt.Errorf("--name: %w", err)
			}
			if createdBy == "" {
				createdBy = currentUser()
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			resp, err := c.Split(cmd.Context(), ref, api.SplitRequest{Spec: spec, Names: nameMap, CreatedBy: createdBy})
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
				fmt.Fprintf(w, "split %s (%s, seed %d)\n", resp.Source, method, seed)
				fmt.Fprintln(w, "PART\tVERSION\tROWS\tDIGEST\tNEW")
				for _, o := range resp.Outputs {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%v\n", o.Part, o.Version.Ref(), o.Rows, shortDigest(o.Version.Digest), o.Created)
				}
				if len(resp.Stats.Cuts) > 0 {
					fmt.Fprintf(w, "cuts: %s\n", strings.Join(resp.Stats.Cuts, ", "))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&method, "method", "random", "random, stratified, time or group")
	cmd.Flags().StringVar(&fractions, "fractions", "", "fractions of the parts, summing to 1 (default 0.8,0.1,0.1)")
	cmd.Flags().StringVar(&parts, "parts", "", "names of the parts (default train,validation,test; train,test for two fractions)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed of the assignment")
	cmd.Flags().StringVar(&column, "column", "", "label (stratified), timestamp (time) or group (group) column")
	cmd.Flags().StringVar(&key, "key", "", "row key column of a random split (default: the row's position)")
	cmd.Flags().StringSliceVar(&cuts, "cuts", nil, "boundaries of a time split (one fewer than the parts)")
	cmd.Flags().StringVar(&path, "path", "", "the table file of a folder version")
	cmd.Flags().StringArrayVar(&names, "name", nil, "dataset of a part, PART=DATASET (repeatable; default NAME-PART)")
	cmd.Flags().StringVar(&createdBy, "created-by", "", "recorded as the parts' creator (default the current user)")
	cmd.RegisterFlagCompletionFunc("method", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"random", "stratified", "time", "group"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// splitParts builds the parts of a split from --parts and --fractions.
// A time split with cuts needs names only.
func splitParts(names, fractions string, cuts int) ([]dataset.SplitPart, error) {
	var fr []float64
	if fractions != "" {
		for _, s := range strings.Split(fractions, ",") {
			x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, fmt.Errorf("invalid --fractions %q: %q is not a number", fractions, s)
			}
			fr = append(fr, x)
		}
	}
	var ns []string
	if names != "" {
		for _, s := range strings.Split(names, ",") {
			ns = append(ns, strings.TrimSpace(s))
		}
	}
	n := max(len(fr), len(ns))
	if cuts > 0 {
		n = max(n, cuts+1)
	}
	if n == 0 {
		return nil, nil // the server's default: train 0.8, validation 0.1, test 0.1
	}
	if ns == nil {
		switch n {
		case 2:
			ns = []string{"train", "test"}
		case 3:
			ns = []string{"train", "validation", "test"}
		default:
			return nil, fmt.Errorf("name the %d parts with --parts", n)
		}
	}
	if fr != nil && len(fr) != len(ns) {
		return nil, fmt.Errorf("%d fractions for %d parts", len(fr), len(ns))
	}
	if fr == nil && cuts == 0 {
		return nil, errors.New("give the parts' --fractions")
	}
	out := make([]dataset.SplitPart, len(ns))
	for i, name := range ns {
		out[i].Name = name
		if fr != nil {
			out[i].Fraction = fr[i]
		}
	}
	return out, nil
}

func (f *dataFlags) lineageCmd() *cobra.Command {
	var run, model string
	cmd := &cobra.Command{
		Use:   "lineage NAME[@VERSION] | --run RUN_ID | --model NAME/VERSION",
		Short: "Show what a version came from and which runs and models used it, or the versions a run or model used",
		Long: `Show a version's lineage: the version it was split from, its splits, the
MLflow runs that logged it as an input, and the registered model versions
trained on it (created from one of those runs, or linked explicitly). With
--run or --model, list the dataset versions that a run or a registered model
version used.

A run is linked to a version when it logs an MLflow dataset input whose source
is kiln://datasets/NAME@VERSION or the version's API URL
(http://SERVER/api/v1/datasets/NAME/versions/VERSION), or whose digest is a
prefix of the version's digest (at least 8 hexadecimal digits with the
dataset's name as the input's name, or at least 16 without).`,
		Example: `  kiln data lineage sales@3
  kiln data lineage --run 0f1e2d3c4b5a69788796a5b4c3d2e1f0
  kiln data lineage --model models:/churn/4`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: f.completeDatasets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			set := 0
			for _, b := range []bool{len(args) == 1, run != "", model != ""} {
				if b {
					set++
				}
			}
			if set != 1 {
				return errors.New("give one of NAME[@VERSION], --run RUN_ID and --model NAME/VERSION")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			switch {
			case run != "":
				rd, err := c.RunDatasets(ctx, run)
				if err != nil {
					return err
				}
				return f.print(w, rd, func(w io.Writer) error {
					fmt.Fprintln(w, "VERSION\tCONTEXT\tMLFLOW NAME\tMLFLOW DIGEST")
					for _, l := range rd.Datasets {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Version, orDash(l.Context), orDash(l.MLflowName), orDash(l.MLflowDigest))
					}
					return nil
				})
			case model != "":
				name, ver, err := parseModelVersion(model)
				if err != nil {
					return err
				}
				md, err := c.ModelDatasets(ctx, name, ver)
				if err != nil {
					return err
				}
				return f.print(w, md, func(w io.Writer) error {
					fmt.Fprintln(w, "VERSION\tVIA\tRUN")
					for _, u := range md.Datasets {
						fmt.Fprintf(w, "%s\t%s\t%s\n", u.Version, u.Via, orDash(u.RunID))
					}
					return nil
				})
			}
			ref, err := dataset.ParseVersionRef(args[0])
			if err != nil {
				return err
			}
			l, err := c.Lineage(ctx, ref)
			if err != nil {
				return err
			}
			return f.print(w, l, func(w io.Writer) error {
				fmt.Fprintf(w, "version:\t%s\n", l.Version)
				if l.Parent != nil {
					fmt.Fprintf(w, "split from:\t%s\n", l.Parent)
				}
				writeLineageRows(w, l)
				if len(l.Runs) == 0 && len(l.ModelVersions) == 0 {
					fmt.Fprintf(w, "used by:\tno runs yet (log it in MLflow with source %s)\n", l.Version.URI())
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&run, "run", "", "list the dataset versions of this MLflow run")
	cmd.Flags().StringVar(&model, "model", "", "list the dataset versions of this registered model version (NAME/VERSION or models:/NAME/VERSION)")
	return cmd
}

func parseModelVersion(s string) (string, int64, error) {
	s = strings.TrimPrefix(s, "models:/")
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "", 0, fmt.Errorf("invalid --model %q: want NAME/VERSION", s)
	}
	v, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || v < 1 {
		return "", 0, fmt.Errorf("invalid --model %q: the version is a number from 1", s)
	}
	return s[:i], v, nil
}
