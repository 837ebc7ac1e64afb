package main

// kiln feature training-set: a point-in-time correct training set built on
// the server from feature views and an entity dataset version.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/feature"
)

// newFeatureTrainingSetCmd is kiln feature training-set; cmd/kiln/feature.go
// adds it under kiln feature (whose persistent flags cf holds).
func newFeatureTrainingSetCmd(cf *clientFlags) *cobra.Command {
	var (
		req      feature.TrainingSetRequest
		features []string
		format   string
	)
	cmd := &cobra.Command{
		Use:   "training-set --entities DATASET@N --features VIEW:FEATURE,… --output NAME",
		Short: "Build a point-in-time correct training set as a new dataset version",
		Long: `Join feature views to an entity table point in time, on the server, and record
the result as a new version of the output dataset.

The entity table is a dataset version (push a local file first with
kiln data add): its join-key columns, a timestamp column (--timestamp-field,
event_timestamp by default) and any other columns such as labels, which are
kept as they are, in order. For each of its rows and each view, the view's
row with the same key whose event time is at most the row's time and, when the
view has a TTL, at least the row's time minus the TTL is taken: the greatest
event time wins, then the greatest created time, then the row last in the
source. Features are null where no row qualifies (Feast's
get_historical_features).

The output version holds one Parquet file (the entity columns, then the
features, named "feature", or "view__feature" with --full-feature-names). Its
parent is the entity version; its tags name each view's version and the
source version it read. Here --output names the dataset; --format chooses how
the answer prints (table, json or yaml).`,
		Example: `  kiln data add entities ./entities.parquet
  kiln feature training-set --entities entities@1 \
      --features customer_stats:orders_7d,customer_stats:spend_7d --output churn-train
  kiln data pull churn-train@latest ./train`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cf.output = format
			if err := cf.checkOutput(); err != nil {
				return err
			}
			for _, f := range features {
				for _, p := range strings.Split(f, ",") {
					if p = strings.TrimSpace(p); p != "" {
						req.Features = append(req.Features, p)
					}
				}
			}
			if req.Entities.Dataset == "" || len(req.Features) == 0 || req.Output.Dataset == "" {
				return fmt.Errorf("kiln feature training-set needs --entities, --features and --output")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			v, err := c.TrainingSet(cmd.Context(), req)
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintf(w, "VERSION\t%s@%d\n", v.Dataset, v.Version)
				if v.Parent != nil {
					fmt.Fprintf(w, "ENTITIES\t%s\n", v.Parent)
				}
				fmt.Fprintf(w, "ROWS\t%s\n", v.Tags[feature.TagTrainingRows])
				var views []string
				for k := range v.Tags {
					if name, ok := strings.CutPrefix(k, feature.TagViewPrefix); ok {
						views = append(views, name)
					}
				}
				slices.Sort(views)
				for _, name := range views {
					fmt.Fprintf(w, "VIEW\t%s@%s\tsource %s\tmatched %s rows\n", name, v.Tags[feature.TagViewPrefix+name],
						v.Tags[feature.TagSourcePrefix+name], v.Tags[feature.TagMatchedPrefix+name])
				}
				fmt.Fprintf(w, "DIGEST\t%s\n", v.Digest)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Entities.Dataset, "entities", "", "the entity table: a dataset version (name@N, name@latest or name)")
	fl.StringVar(&req.Entities.Format, "entities-format", "", "force the entity files' format: csv, parquet or jsonl")
	fl.StringVar(&req.TimestampField, "timestamp-field", "", "the entity table's timestamp column (default event_timestamp)")
	fl.StringSliceVar(&features, "features", nil, "features as view:feature, comma-separated or repeated")
	fl.BoolVar(&req.FullFeatureNames, "full-feature-names", false, `name the columns "view__feature"`)
	fl.StringVar(&req.Output.Dataset, "output", "", "the dataset the training set becomes a new version of")
	fl.StringVar(&req.Output.Description, "description", "", "the version's description")
	fl.StringVar(&format, "format", "table", "how to print the answer: table, json or yaml")
	return cmd
}
