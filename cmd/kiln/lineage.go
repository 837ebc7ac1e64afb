package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/lineage"
)

func newLineageCmd() *cobra.Command {
	f := &clientFlags{}
	var direction string
	var depth, maxNodes int
	cmd := &cobra.Command{
		Use:   "lineage NODE",
		Short: "The lineage graph around a dataset version, run, model, endpoint, monitor, alert or pipeline run",
		Long: `Walks the lineage graph from NODE: upstream to the data and runs it came
from, downstream to what was made from it, or both.

NODE is one of:
  dataset:NAME@N        a dataset version
  run:ID                a tracking run
  logged-model:ID       a logged model (m-…)
  model:NAME/V          a registered model version
  endpoint:NAME         a deployed endpoint
  monitor:NAME          a monitor
  alert:MONITOR/RULE    an alert
  pipeline-run:ID       a pipeline run

--output dot writes Graphviz (kiln lineage model:churn/3 -o dot | dot -Tsvg > lineage.svg).`,
		Example: "  kiln lineage model:churn/3\n  kiln lineage dataset:churn@2 --direction downstream -o json\n  kiln lineage alert:churn-drift/data-drift -o dot | dot -Tpng > loop.png",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dot := f.output == "dot"
			if !dot {
				if err := f.checkOutput(); err != nil {
					return fmt.Errorf("%w (or dot)", err)
				}
			}
			if _, err := lineage.ParseNodeID(args[0]); err != nil {
				return err
			}
			dir, err := lineage.ParseDirection(direction)
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			g, err := c.LineageGraph(cmd.Context(), args[0], dir, depth, maxNodes)
			if err != nil {
				return err
			}
			if dot {
				_, err := io.WriteString(cmd.OutOrStdout(), g.Dot())
				return err
			}
			return f.print(cmd.OutOrStdout(), g, func(w io.Writer) error { return lineageTable(w, g) })
		},
	}
	f.register(cmd)
	cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json", "yaml", "dot"}, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.Flags().StringVar(&direction, "direction", "both", "upstream, downstream or both")
	cmd.Flags().IntVar(&depth, "depth", 0, fmt.Sprintf("edges to walk from NODE (default %d, at most %d)", lineage.DefaultDepth, lineage.MaxDepth))
	cmd.Flags().IntVar(&maxNodes, "max-nodes", 0, fmt.Sprintf("stop after this many nodes (default %d)", lineage.DefaultMaxNodes))
	cmd.RegisterFlagCompletionFunc("direction", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"upstream", "downstream", "both"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// lineageTable lists the nodes, then the edges, as tables.
func lineageTable(w io.Writer, g *lineage.Graph) error {
	fmt.Fprintln(w, "NODE\tTYPE\tLABEL\tDETAILS")
	for _, n := range g.Nodes {
		id := n.ID
		if id == g.Root {
			id = "* " + id
		}
		keys := make([]string, 0, len(n.Attrs))
		for k := range n.Attrs {
			if k != "description" && k != "source" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var details []string
		for _, k := range keys {
			details = append(details, k+"="+n.Attrs[k])
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", id, n.Type, n.Label, strings.Join(details, " "))
	}
	fmt.Fprintln(w, "\t\t\t")
	fmt.Fprintln(w, "FROM\tRELATION\tTO\t")
	for _, e := range g.Edges {
		fmt.Fprintf(w, "%s\t%s\t%s\t\n", e.From, e.Relation, e.To)
	}
	if g.Truncated {
		fmt.Fprintf(w, "(truncated at %d nodes: --max-nodes raises the bound)\t\t\t\n", len(g.Nodes))
	}
	return nil
}
