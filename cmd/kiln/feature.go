package main

// kiln feature: the feature store's entities and views, materialization
// into the online store and online lookups.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/feature"
)

func newFeatureCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "feature", Short: "The feature store: entities, feature views, materialization, online lookups, training sets",
		Long: `Entities and feature views are defined with kiln apply -f (kinds Entity and
FeatureView). A view's latest row per entity is loaded into the online store
by kiln feature materialize and read back by kiln feature online (and by
endpoints that declare features); kiln feature training-set joins views to an
entity table point in time. See docs/features.md.`}
	f := &clientFlags{}
	f.register(cmd)
	cmd.AddCommand(newFeatureEntitiesCmd(f), newFeatureViewsCmd(f), newFeatureGetCmd(f), newFeatureMaterializeCmd(f),
		newFeatureOnlineCmd(f), newFeatureTrainingSetCmd(f))
	return cmd
}

func newFeatureEntitiesCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "entities",
		Short:   "List the entities and their join keys",
		Example: "  kiln feature entities\n  kiln feature entities -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			es, err := c.Entities(cmd.Context())
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), es, func(w io.Writer) error {
				fmt.Fprintln(w, "ENTITY\tVERSION\tJOIN KEYS\tDESCRIPTION")
				for _, e := range es {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", e.Metadata.Name, e.Status.Version, strings.Join(e.Spec.JoinKeys, ","), e.Metadata.Description)
				}
				return nil
			})
		},
	}
}

func newFeatureViewsCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "views",
		Short:   "List the feature views",
		Example: "  kiln feature views\n  kiln feature views -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			vs, err := c.FeatureViews(cmd.Context())
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), vs, func(w io.Writer) error {
				fmt.Fprintln(w, "VIEW\tVERSION\tENTITIES\tFEATURES\tTTL\tONLINE\tSOURCE")
				for _, v := range vs {
					fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%v\t%s\n", v.Metadata.Name, v.Status.Version, strings.Join(v.Spec.Entities, ","),
						len(v.Spec.Features), ttlText(v.Spec.TTL), v.Spec.IsOnline(), feature.SourceName(v.FeatureView))
				}
				return nil
			})
		},
	}
}

func ttlText(d feature.Duration) string {
	if d == 0 {
		return "-"
	}
	if d.D()%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d.D()/(24*time.Hour)), 10) + "d"
	}
	return d.D().String()
}

func newFeatureGetCmd(f *clientFlags) *cobra.Command {
	var version int64
	var versions bool
	cmd := &cobra.Command{
		Use:   "get VIEW",
		Short: "Show a feature view (its latest version, --version N, or --versions: all)",
		Example: `  kiln feature get customer_stats
  kiln feature get customer_stats --version 1 -o yaml
  kiln feature get customer_stats --versions`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if versions {
				vs, err := c.FeatureViewVersions(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), vs, func(w io.Writer) error {
					fmt.Fprintln(w, "VERSION\tCREATED\tBY\tDIGEST")
					for _, v := range vs {
						d := v.Status.Digest
						if v.Status.Deleted {
							d = "(deleted)"
						} else if len(d) > 12 {
							d = d[:12]
						}
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Status.Version, time.UnixMilli(v.Status.CreatedAt).UTC().Format(time.RFC3339), v.Status.CreatedBy, d)
					}
					return nil
				})
			}
			v, err := c.FeatureView(cmd.Context(), args[0], version)
			if err != nil {
				return err
			}
			ms, err := c.Materializations(cmd.Context(), args[0], 1)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				s := &v.Spec
				fmt.Fprintf(w, "VIEW\t%s (version %d)\n", v.Metadata.Name, v.Status.Version)
				if v.Metadata.Description != "" {
					fmt.Fprintf(w, "DESCRIPTION\t%s\n", v.Metadata.Description)
				}
				fmt.Fprintf(w, "ENTITIES\t%s\n", strings.Join(s.Entities, ", "))
				fmt.Fprintf(w, "SOURCE\t%s\n", feature.SourceName(v.FeatureView))
				ts := s.TimestampField
				if s.CreatedTimestampField != "" {
					ts += " (created: " + s.CreatedTimestampField + ")"
				}
				fmt.Fprintf(w, "TIMESTAMP\t%s\n", ts)
				fmt.Fprintf(w, "TTL\t%s\n", ttlText(s.TTL))
				fmt.Fprintf(w, "ONLINE\t%v\n", s.IsOnline())
				if len(ms) > 0 {
					m := ms[0]
					fmt.Fprintf(w, "MATERIALIZED\t%s up to %s (%s, %d keys, %s)\n", m.State, m.End.Format(time.RFC3339), m.Store, m.KeysWritten, m.Source)
				}
				fmt.Fprintln(w, "FEATURE\tTYPE\tDEFAULT\tDESCRIPTION")
				for _, ft := range s.Features {
					d := "-"
					if ft.Default != nil {
						d = fmt.Sprint(ft.Default)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ft.Name, ft.Type, d, ft.Description)
				}
				return nil
			})
		},
	}
	cmd.Flags().Int64Var(&version, "version", 0, "the version to show (0: the latest)")
	cmd.Flags().BoolVar(&versions, "versions", false, "list every version instead")
	return cmd
}

func newFeatureMaterializeCmd(f *clientFlags) *cobra.Command {
	var req api.MaterializeRequest
	var quiet bool
	cmd := &cobra.Command{
		Use:   "materialize VIEW [--start TIME] [--end TIME | --incremental]",
		Short: "Load a feature view's latest rows into the online store",
		Long: `Load the latest row of every entity of a feature view, among the source rows
with an event time in [--start, --end), into the online store. --end defaults
to now and --start to the beginning. --incremental starts where the last
successful materialization of the view ended instead (from the beginning the
first time), as Feast's materialize-incremental. Times are RFC 3339 or dates.

While the server works, the rows read so far are shown on stderr.`,
		Example: `  kiln feature materialize customer_stats
  kiln feature materialize customer_stats --start 2026-01-01 --end 2026-02-01
  kiln feature materialize customer_stats --incremental`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if req.Incremental && req.Start != "" {
				return fmt.Errorf("--incremental starts where the last materialization ended: give --end only")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			type answer struct {
				m   *feature.Materialization
				err error
			}
			done := make(chan answer, 1)
			go func() {
				m, err := c.Materialize(ctx, args[0], req)
				done <- answer{m, err}
			}()
			var a answer
			if quiet {
				a = <-done
			} else {
				a = waitWithProgress(ctx, cmd.ErrOrStderr(), c, args[0], done)
			}
			if a.err != nil {
				return a.err
			}
			m := a.m
			return f.print(cmd.OutOrStdout(), m, func(w io.Writer) error {
				start := "the beginning"
				if m.Start != nil {
					start = m.Start.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "Materialized %s version %d into the %s store: %d rows read from %s, %d keys written (event times from %s to %s).\n",
					m.View, m.ViewVersion, m.Store, m.RowsRead, m.Source, m.KeysWritten, start, m.End.Format(time.RFC3339))
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Start, "start", "", "the earliest event time loaded (RFC 3339 or a date; default: the beginning)")
	fl.StringVar(&req.End, "end", "", "event times before this are loaded (default: now)")
	fl.BoolVar(&req.Incremental, "incremental", false, "start where the last successful materialization ended")
	fl.BoolVarP(&quiet, "quiet", "q", false, "show no progress")
	return cmd
}

// waitWithProgress waits for done, printing the running
// materialization's rows read every second meanwhile.
func waitWithProgress[T any](ctx context.Context, w io.Writer, c *client.Client, view string, done <-chan T) T {
	started := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	shown := false
	for {
		select {
		case a := <-done:
			if shown {
				fmt.Fprintln(w)
			}
			return a
		case <-tick.C:
			ms, err := c.Materializations(ctx, view, 1)
			if err != nil || len(ms) == 0 || ms[0].State != feature.StateRunning {
				continue
			}
			fmt.Fprintf(w, "\rmaterializing %s: %d rows read (%s)", view, ms[0].RowsRead, time.Since(started).Round(time.Second))
			shown = true
		}
	}
}

func newFeatureOnlineCmd(f *clientFlags) *cobra.Command {
	var features []string
	var entities []string
	var defaults bool
	cmd := &cobra.Command{
		Use:   "online --features VIEW:FEATURE,… --entity KEY=V1,V2 …",
		Short: "Look features up in the online store",
		Long: `Look up the latest values of features for entities, as an endpoint does:
one row per entity value (give every join key of the views the same number of
values, in order). Each value has a status: PRESENT, NOT_FOUND (no row),
OUTSIDE_MAX_AGE (the row is older than the view's TTL; no value), NULL_VALUE,
or DEFAULT (--use-defaults: the feature's declared default instead).
Values that look like integers are sent as numbers ("042" is sent as text);
quote a value in JSON to force text: --entity 'zip="02134"'.`,
		Example: `  kiln feature online --features customer_stats:orders_7d,customer_stats:spend_7d --entity customer_id=1,2
  kiln feature online --features stock:level --entity store_id=S1,S2 --entity sku=10,10 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			var refs []string
			for _, s := range features {
				refs = append(refs, client.FeatureRefs(s)...)
			}
			if len(refs) == 0 || len(entities) == 0 {
				return fmt.Errorf("kiln feature online needs --features and --entity KEY=VALUES")
			}
			ents := map[string][]any{}
			for _, e := range entities {
				k, vals, ok := strings.Cut(e, "=")
				if !ok || k == "" {
					return fmt.Errorf("--entity %q: want KEY=V1,V2", e)
				}
				for _, v := range splitValues(vals) {
					ents[k] = append(ents[k], entityValue(v))
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			res, err := c.OnlineFeatures(cmd.Context(), refs, ents, defaults)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), res, func(w io.Writer) error {
				fmt.Fprintln(w, strings.ToUpper(strings.Join(res.Metadata.FeatureNames, "\t")))
				if len(res.Results) == 0 {
					return nil
				}
				for r := range res.Results[0].Values {
					cells := make([]string, len(res.Results))
					for i, col := range res.Results {
						cells[i] = fmt.Sprint(col.Values[r])
						if col.Values[r] == nil {
							cells[i] = "-"
						}
						if st := col.Statuses[r]; st != feature.StatusPresent {
							cells[i] += " (" + st + ")"
						}
					}
					fmt.Fprintln(w, strings.Join(cells, "\t"))
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&features, "features", nil, "features as view:feature, comma-separated or repeated")
	fl.StringArrayVar(&entities, "entity", nil, "a join key and its values: KEY=V1,V2 (repeat for composite keys)")
	fl.BoolVar(&defaults, "use-defaults", false, "serve the features' declared defaults where there is no value")
	return cmd
}

// splitValues splits "1,2" on commas outside JSON string quotes.
func splitValues(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// entityValue reads one command-line entity value: a JSON string in
// quotes, an integer (without leading zeros), true/false, else text.
func entityValue(s string) any {
	if strings.HasPrefix(s, `"`) {
		var x string
		if json.Unmarshal([]byte(s), &x) == nil {
			return x
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
		return n
	}
	if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
		return b
	}
	return s
}
