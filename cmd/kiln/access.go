package main

// kiln whoami, users, tokens, workspaces, grants and audit: access control
// from the command line (the server's /api/v1 access routes).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
)

// accessCmd builds a command group with the client flags.
func accessCmd(use, short, long string, sub ...func(*clientFlags) *cobra.Command) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	f.register(cmd)
	for _, s := range sub {
		cmd.AddCommand(s(&f))
	}
	return cmd
}

// run is a RunE that checks --output and makes the client.
func withClient(f *clientFlags, fn func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f.checkOutput(); err != nil {
			return err
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		return fn(cmd.Context(), c, cmd, args)
	}
}

const credentialsHelp = `
Credentials: $KILN_TOKEN (a Kiln API token), else $MLFLOW_TRACKING_USERNAME and
$MLFLOW_TRACKING_PASSWORD, else $MLFLOW_TRACKING_TOKEN — the same variables the
mlflow client reads.`

func newWhoamiCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who your credentials sign you in as, and your grants",
		Long:  "Show who your credentials sign you in as, how, and your role grants." + credentialsHelp,
		Args:  cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			p, err := c.WhoAmI(ctx)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), p, func(w io.Writer) error {
				fmt.Fprintf(w, "user\t%s (%s)\n", p.User, p.Kind)
				fmt.Fprintf(w, "signed in with\t%s\n", p.Auth)
				if p.TokenID != "" {
					fmt.Fprintf(w, "token\t%s, scope %s%s\n", p.TokenID, p.Scope, map[bool]string{true: ", workspace " + p.TokenWorkspace}[p.TokenWorkspace != ""])
				}
				fmt.Fprintf(w, "server admin\t%v\n", p.Admin)
				for _, g := range p.Grants {
					fmt.Fprintf(w, "grant\t%s in %s%s\n", g.Role, g.Workspace, grantTarget(g))
				}
				return nil
			})
		}),
	}
	f.register(cmd)
	return cmd
}

func grantTarget(g *access.Grant) string {
	if g.ResourceType == "" {
		return ""
	}
	return fmt.Sprintf(" on %s %s", g.ResourceType, g.Resource)
}

// readPassword reads a password: from stdin when it is not a terminal
// (one line), else at a prompt, twice.
func readPassword(cmd *cobra.Command, prompt string) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt+": ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newUsersCmd() *cobra.Command {
	return accessCmd("users", "Users and service accounts (server administrators)",
		"Users sign in with a password (HTTP Basic, the UI) or API tokens; service\naccounts (--service) have tokens only, for pipelines and automation."+credentialsHelp,
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "list", Short: "List users", Args: cobra.NoArgs,
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					us, err := c.ListUsers(ctx)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), us, func(w io.Writer) error {
						fmt.Fprintln(w, "NAME\tKIND\tADMIN\tDISABLED\tPASSWORD\tCREATED")
						for _, u := range us {
							fmt.Fprintf(w, "%s\t%s\t%v\t%v\t%v\t%s\n", u.Name, u.Kind, u.Admin, u.Disabled, u.HasPassword, formatTime(u.CreationTime))
						}
						return nil
					})
				})}
		},
		func(f *clientFlags) *cobra.Command {
			var nu access.NewUser
			var service, noPassword bool
			cmd := &cobra.Command{Use: "create NAME", Short: "Add a user (the password is read from stdin or a prompt) or a service account (--service)",
				Example: "  echo 's3cret-pass' | kiln users create ada --email ada@example.com\n  kiln users create ci-bot --service",
				Args:    cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					nu.Name = args[0]
					if service {
						nu.Kind = access.KindService
					} else if !noPassword {
						pw, err := readPassword(cmd, "password for "+nu.Name)
						if err != nil {
							return err
						}
						nu.Password = pw
					}
					u, err := c.CreateUser(ctx, nu)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), u, func(w io.Writer) error {
						fmt.Fprintf(w, "created %s %s\n", u.Kind, u.Name)
						return nil
					})
				})}
			cmd.Flags().BoolVar(&service, "service", false, "a service account (no password; tokens only)")
			cmd.Flags().BoolVar(&noPassword, "no-password", false, "no password yet (tokens only until one is set)")
			cmd.Flags().BoolVar(&nu.Admin, "admin", false, "a server administrator")
			cmd.Flags().StringVar(&nu.Email, "email", "", "e-mail address")
			cmd.Flags().StringVar(&nu.DisplayName, "display-name", "", "name shown in the UI")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "passwd NAME", Short: "Set a user's password (read from stdin or a prompt)", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					pw, err := readPassword(cmd, "new password for "+args[0])
					if err != nil {
						return err
					}
					_, err = c.UpdateUser(ctx, args[0], access.UserUpdate{Password: &pw})
					if err == nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "password of %s changed\n", args[0])
					}
					return err
				})}
		},
		func(f *clientFlags) *cobra.Command {
			var admin, disabled string
			cmd := &cobra.Command{Use: "set NAME", Short: "Make a user a server administrator or not, disable or enable them", Args: cobra.ExactArgs(1),
				Example: "  kiln users set ada --admin=true\n  kiln users set bob --disabled=true",
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					var up access.UserUpdate
					for _, s := range []struct {
						flag string
						dst  **bool
					}{{admin, &up.Admin}, {disabled, &up.Disabled}} {
						switch s.flag {
						case "":
						case "true", "false":
							v := s.flag == "true"
							*s.dst = &v
						default:
							return fmt.Errorf("want true or false, not %q", s.flag)
						}
					}
					u, err := c.UpdateUser(ctx, args[0], up)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), u, func(w io.Writer) error {
						fmt.Fprintf(w, "%s: admin %v, disabled %v\n", u.Name, u.Admin, u.Disabled)
						return nil
					})
				})}
			cmd.Flags().StringVar(&admin, "admin", "", "true or false")
			cmd.Flags().StringVar(&disabled, "disabled", "", "true or false")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "delete NAME", Short: "Remove a user with their tokens, grants and sessions", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					return c.DeleteUser(ctx, args[0])
				})}
		},
	)
}

func newTokensCmd() *cobra.Command {
	return accessCmd("tokens", "API tokens: make, list and revoke them",
		"A token (kiln_<id>_<secret>) is shown once, when it is made; the server keeps\nonly a hash. Use it as KILN_TOKEN, as MLFLOW_TRACKING_TOKEN for the mlflow\nclient, or as Authorization: Bearer."+credentialsHelp,
		func(f *clientFlags) *cobra.Command {
			var user string
			cmd := &cobra.Command{Use: "list", Short: "List tokens (yours; an administrator's: everyone's, or --user's)", Args: cobra.NoArgs,
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					ts, err := c.ListTokens(ctx, user)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), ts, func(w io.Writer) error {
						fmt.Fprintln(w, "ID\tUSER\tNAME\tSCOPE\tWORKSPACE\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
						for _, t := range ts {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Name, t.Scope, orDash(t.Workspace),
								formatTime(t.CreationTime), timeOrDash(t.Expires), timeOrDash(t.LastUsed), timeOrDash(t.Revoked))
						}
						return nil
					})
				})}
			cmd.Flags().StringVar(&user, "user", "", "whose tokens (administrators)")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			var req api.CreateTokenRequest
			cmd := &cobra.Command{Use: "create", Short: "Make a token and print it (shown only now)", Args: cobra.NoArgs,
				Example: "  export KILN_TOKEN=$(kiln tokens create --name laptop --ttl 720h -o json | jq -r .secret)\n  kiln tokens create --user ci-bot --scope write --workspace prod",
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					out, err := c.CreateToken(ctx, req)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), out, func(w io.Writer) error {
						fmt.Fprintln(w, out.Secret)
						fmt.Fprintf(cmd.ErrOrStderr(), "token %s for %s, scope %s: copy it now, it is not shown again\n", out.Token.ID, out.Token.User, out.Token.Scope)
						return nil
					})
				})}
			cmd.Flags().StringVar(&req.Name, "name", "", "what the token is for")
			cmd.Flags().StringVar(&req.Scope, "scope", "all", "predict, read, write or all")
			cmd.Flags().StringVar(&req.Workspace, "workspace", "", "the only workspace the token may act in")
			cmd.Flags().StringVar(&req.TTL, "ttl", "", "lifetime, e.g. 720h (default: until revoked)")
			cmd.Flags().StringVar(&req.User, "user", "", "for another user or a service account (administrators)")
			cmd.RegisterFlagCompletionFunc("scope", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return []string{"predict", "read", "write", "all"}, cobra.ShellCompDirectiveNoFileComp
			})
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					t, err := c.RevokeToken(ctx, args[0])
					if err == nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "token %s of %s revoked\n", t.ID, t.User)
					}
					return err
				})}
		},
	)
}

func timeOrDash(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return formatTime(ms)
}

func newWorkspacesCmd() *cobra.Command {
	return accessCmd("workspaces", "Workspaces: the namespaces roles are granted in (dev, staging, prod, teams)", "Workspaces are namespaces: experiments, registered models and endpoints created in one\nbelong to it and are not found from another; roles are granted per workspace. Requests\nname theirs with the X-Kiln-Workspace header ($KILN_WORKSPACE for kiln; a token bound to a\nworkspace acts in it; default: default). kiln model copy promotes a version across them."+credentialsHelp,
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "list", Short: "List workspaces", Args: cobra.NoArgs,
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					ws, err := c.ListWorkspaces(ctx)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), ws, func(w io.Writer) error {
						fmt.Fprintln(w, "NAME\tDESCRIPTION\tCREATED BY")
						for _, x := range ws {
							fmt.Fprintf(w, "%s\t%s\t%s\n", x.Name, x.Description, x.CreatedBy)
						}
						return nil
					})
				})}
		},
		func(f *clientFlags) *cobra.Command {
			var desc string
			cmd := &cobra.Command{Use: "create NAME", Short: "Add a workspace", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					_, err := c.CreateWorkspace(ctx, access.Workspace{Name: args[0], Description: desc})
					return err
				})}
			cmd.Flags().StringVar(&desc, "description", "", "what the workspace is for")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			return &cobra.Command{Use: "delete NAME", Short: "Remove a workspace and its grants", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					return c.DeleteWorkspace(ctx, args[0])
				})}
		},
	)
}

func newGrantsCmd() *cobra.Command {
	var rt, res string
	target := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&rt, "resource-type", "", "experiment, registered_model or endpoint (default: the whole workspace)")
		cmd.Flags().StringVar(&res, "resource", "", "the resource's name (an experiment's id)")
	}
	return accessCmd("grants", "Role grants: viewer < editor < maintainer < admin, per workspace or resource",
		"viewer reads and calls endpoints; editor also logs runs, registers versions,\nwrites datasets and starts pipeline runs; maintainer also deletes, moves aliases\nand stages, deploys endpoints, defines pipelines, monitors and gate policies;\nadmin also grants roles in the workspace."+credentialsHelp,
		func(f *clientFlags) *cobra.Command {
			var user string
			cmd := &cobra.Command{Use: "list WORKSPACE", Short: "List a workspace's grants", Args: cobra.ExactArgs(1),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					gs, err := c.ListGrants(ctx, args[0], user)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), gs, func(w io.Writer) error {
						fmt.Fprintln(w, "USER\tROLE\tRESOURCE TYPE\tRESOURCE\tGRANTED BY")
						for _, g := range gs {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", g.User, g.Role, orDash(string(g.ResourceType)), orDash(g.Resource), g.CreatedBy)
						}
						return nil
					})
				})}
			cmd.Flags().StringVar(&user, "user", "", "only this user's")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			cmd := &cobra.Command{Use: "set WORKSPACE USER ROLE", Short: "Give a user a role (or change it)", Args: cobra.ExactArgs(3),
				Example: "  kiln grants set prod ada maintainer\n  kiln grants set prod bob editor --resource-type registered_model --resource churn",
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					_, err := c.PutGrant(ctx, access.Grant{Workspace: args[0], User: args[1], Role: access.Role(args[2]), ResourceType: access.ResourceType(rt), Resource: res})
					return err
				}),
				ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
					if len(args) == 2 {
						return []string{"viewer", "editor", "maintainer", "admin"}, cobra.ShellCompDirectiveNoFileComp
					}
					return nil, cobra.ShellCompDirectiveNoFileComp
				}}
			target(cmd)
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			cmd := &cobra.Command{Use: "revoke WORKSPACE USER", Short: "Remove a grant", Args: cobra.ExactArgs(2),
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
					return c.DeleteGrant(ctx, access.Grant{Workspace: args[0], User: args[1], ResourceType: access.ResourceType(rt), Resource: res})
				})}
			target(cmd)
			return cmd
		},
	)
}

func newAuditCmd() *cobra.Command {
	return accessCmd("audit", "The audit log: list, export as JSON Lines, verify its hash chain",
		"Every change (and every refusal) is an audit event: who, what route, when, the\nrequest id, the status and SHA-256 digests of the request and response bodies.\nEach event's hash covers its fields and the previous event's hash, so changing,\nremoving or inserting an event breaks the chain from there on."+credentialsHelp,
		func(f *clientFlags) *cobra.Command {
			var actor string
			var after int64
			var limit int
			cmd := &cobra.Command{Use: "list", Short: "List audit events", Args: cobra.NoArgs,
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					evs, err := c.AuditEvents(ctx, after, actor, limit)
					if err != nil {
						return err
					}
					return f.print(cmd.OutOrStdout(), evs, func(w io.Writer) error {
						fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tRESOURCE\tSTATUS")
						for _, e := range evs {
							fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\n", e.Seq, formatTime(e.Time), e.Actor, e.Action, orDash(e.Resource), e.Status)
						}
						return nil
					})
				})}
			cmd.Flags().StringVar(&actor, "actor", "", "only this user's events")
			cmd.Flags().Int64Var(&after, "after", 0, "events after this sequence number")
			cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			var out string
			var after int64
			cmd := &cobra.Command{Use: "export", Short: "Write the audit log as JSON Lines (one event per line, in order)", Args: cobra.NoArgs,
				Example: "  kiln audit export -f audit-2026-12.jsonl\n  kiln audit verify --file audit-2026-12.jsonl",
				RunE: withClient(f, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
					w := cmd.OutOrStdout()
					if out != "" && out != "-" {
						fh, err := os.Create(out)
						if err != nil {
							return err
						}
						defer fh.Close()
						w = fh
					}
					bw := bufio.NewWriter(w)
					enc := json.NewEncoder(bw)
					enc.SetEscapeHTML(false)
					n := 0
					for {
						evs, err := c.AuditEvents(ctx, after, "", 10000)
						if err != nil {
							return err
						}
						for _, e := range evs {
							if err := enc.Encode(e); err != nil {
								return err
							}
						}
						n += len(evs)
						if len(evs) < 10000 {
							break
						}
						after = evs[len(evs)-1].Seq
					}
					if err := bw.Flush(); err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%d events exported\n", n)
					return nil
				})}
			cmd.Flags().StringVarP(&out, "file", "f", "-", "file to write (-: stdout)")
			cmd.Flags().Int64Var(&after, "after", 0, "only events after this sequence number")
			return cmd
		},
		func(f *clientFlags) *cobra.Command {
			var file string
			cmd := &cobra.Command{Use: "verify", Short: "Check the audit log's hash chain here (from the server, or an exported file); exit 1 if it was tampered with",
				Args: cobra.NoArgs,
				RunE: func(cmd *cobra.Command, _ []string) error {
					if err := f.checkOutput(); err != nil {
						return err
					}
					chain := access.NewChain()
					if file != "" {
						fh, err := os.Open(file)
						if err != nil {
							return err
						}
						defer fh.Close()
						dec := json.NewDecoder(fh)
						for {
							var e access.Event
							if err := dec.Decode(&e); errors.Is(err, io.EOF) {
								break
							} else if err != nil {
								return fmt.Errorf("%s: %w", file, err)
							}
							if !chain.Add(&e) {
								break
							}
						}
					} else {
						c, err := f.client()
						if err != nil {
							return err
						}
						var after int64
						for {
							evs, err := c.AuditEvents(cmd.Context(), after, "", 10000)
							if err != nil {
								return err
							}
							for _, e := range evs {
								if !chain.Add(e) {
									break
								}
							}
							if len(evs) < 10000 || !chain.Result().OK {
								break
							}
							after = evs[len(evs)-1].Seq
						}
					}
					v := chain.Result()
					if err := f.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
						if v.OK {
							fmt.Fprintf(w, "OK: %d events, the chain holds (last %d, head %s)\n", v.Events, v.Last, v.Head)
						} else {
							fmt.Fprintf(w, "TAMPERED: %s\n", v.Problem)
						}
						return nil
					}); err != nil {
						return err
					}
					if !v.OK {
						return exitError{code: 1}
					}
					return nil
				}}
			cmd.Flags().StringVar(&file, "file", "", "verify an exported JSON Lines file instead of the server's log")
			return cmd
		},
	)
}
