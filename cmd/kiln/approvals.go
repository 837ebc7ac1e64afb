package main

// kiln approvals: approval policies and requests for protected aliases and
// endpoints.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/approval"
)

func newApprovalsCmd() *cobra.Command {
	return accessCmd("approvals", "Approvals: N people must agree before a protected alias or endpoint moves to a version",
		`An approval policy protects a registered model's aliases (champion) and the
endpoints that route to it. Moving a protected alias to a version, or routing a
protected endpoint to it, needs an approved request for that version: enough
maintainers other than the requester approve it; one rejection closes it.`+credentialsHelp,
		func(f *clientFlags) *cobra.Command {
			var p approval.Policy
			var aliases, endpoints string
			cmd := &cobra.Command{Use: "set-policy NAME", Short: "Create or replace an approval policy", Args: cobra.ExactArgs(1),
				Example: "  kiln approvals set-policy churn-prod --model churn --aliases champion --endpoints churn-prod --required 2",
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					p.Name, p.Aliases, p.Endpoints = args[0], splitList(aliases), splitList(endpoints)
					out, err := c.PutApprovalPolicy(ctx, p)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), out, func(w io.Writer) error {
						fmt.Fprintf(w, "policy %s (generation %d): %d approval(s) for %s\n", out.Name, out.Generation, out.Required, policyTargets(out))
						return nil
					})
				})}
			cmd.Flags().StringVar(&p.Model, "model", "", "the registered model")
			cmd.Flags().StringVar(&aliases, "aliases", "", "protected aliases (comma-separated)")
			cmd.Flags().StringVar(&endpoints, "endpoints", "", "protected endpoints (comma-separated)")
			cmd.Flags().IntVar(&p.Required, "required", 1, "approvals needed")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			var model string
			cmd := &cobra.Command{Use: "policies", Short: "List approval policies", Args: cobra.NoArgs,
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					ps, err := c.ListApprovalPolicies(ctx, model)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), ps, func(w io.Writer) error {
						fmt.Fprintln(w, "NAME\tMODEL\tREQUIRED\tPROTECTS\tUPDATED BY")
						for _, p := range ps {
							fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", p.Name, p.Model, p.Required, policyTargets(p), p.UpdatedBy)
						}
						return nil
					})
				})}
			cmd.Flags().StringVar(&model, "model", "", "only this model's")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "delete-policy NAME", Short: "Remove an approval policy", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					return c.DeleteApprovalPolicy(ctx, args[0])
				})}
		},
		func(f *clientFlags) *cobra.Command {
			var nr approval.NewRequest
			cmd := &cobra.Command{Use: "request MODEL/VERSION (--alias A | --endpoint E)", Short: "Ask for a version to take a protected alias or serve on a protected endpoint",
				Example: "  kiln approvals request churn/7 --alias champion --reason 'AUC 0.91 vs 0.89 on 2026-11'",
				Args:    cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					name, v, err := parseModelVersion(args[0])
					if err != nil {
						return err
					}
					nr.Model, nr.Version = name, v
					r, err := c.RequestApproval(ctx, nr)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), r, func(w io.Writer) error {
						fmt.Fprintf(w, "request %s: %s/%d → %s %s, %s (%d of %d approvals)\n", r.ID, r.Model, r.Version, r.TargetType, r.Target, r.State, r.Approvals, r.Required)
						return nil
					})
				})}
			cmd.Flags().StringVar(&nr.Alias, "alias", "", "the protected alias")
			cmd.Flags().StringVar(&nr.Endpoint, "endpoint", "", "the protected endpoint")
			cmd.Flags().StringVar(&nr.Reason, "reason", "", "why (shown to approvers)")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			var model, state string
			cmd := &cobra.Command{Use: "list", Short: "List approval requests", Args: cobra.NoArgs,
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					rs, err := c.ListApprovalRequests(ctx, model, state)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), rs, func(w io.Writer) error {
						fmt.Fprintln(w, "ID\tMODEL\tVERSION\tTARGET\tSTATE\tAPPROVALS\tREQUESTED BY\tCREATED")
						for _, r := range rs {
							fmt.Fprintf(w, "%s\t%s\t%d\t%s %s\t%s\t%d/%d\t%s\t%s\n", r.ID, r.Model, r.Version, r.TargetType, r.Target, r.State, r.Approvals, r.Required, r.RequestedBy, formatTime(r.CreationTime))
						}
						return nil
					})
				})}
			cmd.Flags().StringVar(&model, "model", "", "only this model's")
			cmd.Flags().StringVar(&state, "state", "", "pending, approved or rejected")
			return cmd
		},
		decideCmd(approval.Approve, "Approve a request (not your own)"),
		decideCmd(approval.Reject, "Reject a request (not your own); it is closed"),
	)
}

func decideCmd(decision, short string) func(*clientFlags) *cobra.Command {
	return func(f *clientFlags) *cobra.Command {
		var comment string
		cmd := &cobra.Command{Use: decision + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
				r, err := c.DecideApproval(ctx, args[0], decision, comment)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), r, func(w io.Writer) error {
					fmt.Fprintf(w, "request %s: %s (%d of %d approvals)\n", r.ID, r.State, r.Approvals, r.Required)
					return nil
				})
			})}
		cmd.Flags().StringVar(&comment, "comment", "", "why")
		return cmd
	}
}

func policyTargets(p *approval.Policy) string {
	var parts []string
	for _, a := range p.Aliases {
		parts = append(parts, "alias "+a)
	}
	for _, e := range p.Endpoints {
		parts = append(parts, "endpoint "+e)
	}
	return strings.Join(parts, ", ")
}
