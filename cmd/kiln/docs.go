package main

// kiln docs: generators of the reference documentation kept in the
// repository. `kiln docs cli` writes one Markdown page per command of the
// cobra tree into docs/cli (with an index, README.md); `kiln docs api`
// writes docs/api.md from the OpenAPI document. Tests regenerate both and
// fail when the committed files differ. The command is hidden: it is for
// developers of Kiln, not its users.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/reference"
)

// cliIndex is the name of the CLI reference's index page.
const cliIndex = "README.md"

func newDocsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "docs",
		Short:  "Generate the reference documentation (docs/cli, docs/api.md)",
		Hidden: true,
	}
	var dir string
	cli := &cobra.Command{
		Use:   "cli --dir DIR",
		Short: "Write one Markdown page per command, and an index, into DIR",
		Long: `Write one Markdown page per command, and an index (README.md), into DIR.
Pages of commands that no longer exist (kiln*.md) are removed.`,
		Example: "  kiln docs cli --dir docs/cli",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeCLIDocs(cmd.Root(), dir)
		},
	}
	cli.Flags().StringVar(&dir, "dir", "", "folder to write the pages into (created if missing)")
	_ = cli.MarkFlagRequired("dir")

	var out string
	apiCmd := &cobra.Command{
		Use:     "api --out FILE",
		Short:   "Write the native API reference (Markdown) from the OpenAPI document",
		Example: "  kiln docs api --out docs/api.md",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			md, err := reference.Markdown(api.OpenAPI)
			if err != nil {
				return err
			}
			return os.WriteFile(out, md, 0o644)
		},
	}
	apiCmd.Flags().StringVar(&out, "out", "", "the Markdown file to write")
	_ = apiCmd.MarkFlagRequired("out")
	cmd.AddCommand(cli, apiCmd)
	return cmd
}

// writeCLIDocs writes the pages of cliDocs into dir and removes the pages
// of commands that are gone.
func writeCLIDocs(root *cobra.Command, dir string) error {
	if dir == "" {
		return errors.New("--dir is empty")
	}
	pages := cliDocs(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "kiln*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if _, ok := pages[filepath.Base(f)]; !ok {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, body := range pages {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cliDocs renders the reference of root's command tree: file name → page.
// Hidden and deprecated commands and cobra's help command are left out;
// cobra's completion command is included, as `kiln` offers it.
func cliDocs(root *cobra.Command) map[string][]byte {
	root.InitDefaultCompletionCmd()
	pages := map[string][]byte{}
	var index bytes.Buffer
	index.WriteString("# Command-line reference\n\n")
	index.WriteString("Generated from the commands themselves by `kiln docs cli --dir docs/cli`;\n")
	index.WriteString("do not edit by hand. `kiln COMMAND --help` prints the same text.\n\n")
	index.WriteString("Client commands talk to the server at `--server`, else `$KILN_URL`, else an\n")
	index.WriteString("http(s) `$MLFLOW_TRACKING_URI`, else http://127.0.0.1:5000.\n\n")
	var walk func(c *cobra.Command, depth int)
	walk = func(c *cobra.Command, depth int) {
		pages[pageName(c)] = cliPage(c)
		fmt.Fprintf(&index, "%s- [%s](%s) — %s\n", strings.Repeat("  ", depth), c.CommandPath(), pageName(c), mdText(c.Short))
		for _, sub := range documented(c) {
			walk(sub, depth+1)
		}
	}
	walk(root, 0)
	pages[cliIndex] = index.Bytes()
	return pages
}

// documented returns c's subcommands that have a page, by name.
func documented(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if !s.IsAvailableCommand() || s.IsAdditionalHelpTopicCommand() || s.Name() == "help" {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// pageName is the file name of c's page: kiln_data_add.md.
func pageName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

// cliPage renders one command's page.
func cliPage(c *cobra.Command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", c.CommandPath(), mdText(c.Short))
	if c.Long != "" {
		b.WriteString(mdBlock(c.Long))
	}
	if c.Runnable() {
		fmt.Fprintf(&b, "## Usage\n\n```\n%s\n```\n\n", c.UseLine())
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "Aliases: `%s`\n\n", strings.Join(c.Aliases, "`, `"))
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "## Examples\n\n```sh\n%s\n```\n\n", strings.TrimRight(dedent(c.Example), "\n"))
	}
	if subs := documented(c); len(subs) > 0 {
		b.WriteString("## Commands\n\n| command | what it does |\n|---|---|\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "| [%s](%s) | %s |\n", s.Name(), pageName(s), mdCell(s.Short))
		}
		b.WriteString("\n")
	}
	flagTable(&b, "Flags", c.NonInheritedFlags())
	flagTable(&b, "Flags inherited from parent commands", c.InheritedFlags())
	b.WriteString("## See also\n\n")
	if p := c.Parent(); p != nil {
		fmt.Fprintf(&b, "- [%s](%s) — %s\n", p.CommandPath(), pageName(p), mdText(p.Short))
	}
	fmt.Fprintf(&b, "- [Command-line reference](%s)\n", cliIndex)
	return b.Bytes()
}

// flagTable renders the visible flags of fs as a table, or nothing.
func flagTable(b *bytes.Buffer, title string, fs *pflag.FlagSet) {
	var flags []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" || f.Name == "help" {
			return
		}
		flags = append(flags, f)
	})
	if len(flags) == 0 {
		return
	}
	fmt.Fprintf(b, "## %s\n\n| flag | type | default | description |\n|---|---|---|---|\n", title)
	for _, f := range flags {
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		typ, usage := pflag.UnquoteUsage(f)
		if typ == "" {
			typ = f.Value.Type()
		}
		def := ""
		if !zeroDefault(f) {
			def = "`" + strings.ReplaceAll(f.DefValue, "|", `\|`) + "`"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, typ, def, mdCell(usage))
	}
	b.WriteString("\n")
}

// zeroDefault reports whether f's default is its type's zero value, which
// `--help` does not print either.
func zeroDefault(f *pflag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]", "map[]", "<nil>":
		return true
	}
	return false
}

// mdBlock renders cobra's preformatted Long text as Markdown: paragraphs of
// text, and runs of indented lines (examples, layouts) as code blocks.
func mdBlock(s string) string {
	var b strings.Builder
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := 0; i < len(lines); {
		if strings.TrimSpace(lines[i]) == "" {
			i++
			continue
		}
		if indented(lines[i]) {
			j := i
			for j < len(lines) && (indented(lines[j]) || strings.TrimSpace(lines[j]) == "" && j+1 < len(lines) && indented(lines[j+1])) {
				j++
			}
			b.WriteString("```\n" + dedent(strings.Join(lines[i:j], "\n")) + "\n```\n\n")
			i = j
			continue
		}
		j := i
		for j < len(lines) && strings.TrimSpace(lines[j]) != "" && !indented(lines[j]) {
			j++
		}
		para := make([]string, 0, j-i)
		for _, l := range lines[i:j] {
			para = append(para, mdText(l))
		}
		b.WriteString(strings.Join(para, "\n") + "\n\n")
		i = j
	}
	return b.String()
}

func indented(l string) bool {
	return strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
}

// dedent removes the indentation common to every non-blank line.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			lines[i] = l[common:]
		} else if strings.TrimSpace(l) == "" {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// mdText escapes one line of plain text for Markdown: no HTML tags,
// emphasis or headings out of angle brackets, stars, leading hashes and
// lines of - or = (which would underline the line above as a heading).
func mdText(s string) string {
	s = reference.Escape(s)
	if strings.HasPrefix(s, "#") || strings.Trim(s, "-= ") == "" && s != "" {
		s = `\` + s
	}
	return s
}

// mdCell escapes text for a table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(mdText(strings.Join(strings.Fields(s), " ")), "|", `\|`)
}
