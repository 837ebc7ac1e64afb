package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/reference"
)

var update = flag.Bool("update", false, "rewrite docs/cli from the command tree")

// cliDocsDir is the committed CLI reference, relative to this package.
var cliDocsDir = filepath.Join("..", "..", "docs", "cli")

const regenerateCLI = "run `go run ./cmd/kiln docs cli --dir docs/cli` (or `go test ./cmd/kiln -run TestCLIDocsUpToDate -update`)"

// TestCLIDocsUpToDate regenerates the CLI reference and fails when
// docs/cli differs from it: a page changed, is missing or is left over.
func TestCLIDocsUpToDate(t *testing.T) {
	if *update {
		if err := writeCLIDocs(newRootCmd(), cliDocsDir); err != nil {
			t.Fatal(err)
		}
	}
	want := cliDocs(newRootCmd())
	entries, err := os.ReadDir(cliDocsDir)
	if err != nil {
		t.Fatalf("%v: %s", err, regenerateCLI)
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok && !e.IsDir() {
			t.Errorf("docs/cli/%s documents no command: %s", e.Name(), regenerateCLI)
		}
	}
	for name, page := range want {
		got, err := os.ReadFile(filepath.Join(cliDocsDir, name))
		if err != nil {
			t.Errorf("docs/cli/%s is missing: %s", name, regenerateCLI)
			continue
		}
		if !bytes.Equal(got, page) {
			t.Errorf("docs/cli/%s is out of date: %s", name, regenerateCLI)
		}
	}
}

// TestCLIDocsDeterministic checks that the pages depend on the commands
// alone, not on the environment that generates them.
func TestCLIDocsDeterministic(t *testing.T) {
	a := cliDocs(newRootCmd())
	for _, kv := range [][2]string{{"KILN_URL", "http://elsewhere:1"}, {"MLFLOW_TRACKING_URI", "http://elsewhere:2"},
		{"KILN_CACHE_DIR", t.TempDir()}, {"HOME", t.TempDir()}, {"USER", "someone-else"}, {"KILN_ADDR", "0.0.0.0:9"}, {"KILN_DB", "sqlite:///x"}} {
		t.Setenv(kv[0], kv[1])
	}
	b := cliDocs(newRootCmd())
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s depends on the environment", name)
		}
	}
}

func TestCLIDocsCoverTheTree(t *testing.T) {
	root := newRootCmd()
	pages := cliDocs(root)
	index := string(pages[cliIndex])
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			name := pageName(s)
			hidden := s.Hidden || s.Name() == "help" || s.Deprecated != ""
			if _, ok := pages[name]; ok == hidden {
				t.Errorf("%s: page %v, hidden %v", s.CommandPath(), ok, hidden)
			}
			if !hidden {
				if !strings.Contains(index, "("+name+")") {
					t.Errorf("the index does not link %s", name)
				}
				walk(s)
			}
		}
	}
	walk(root)
	if _, ok := pages["kiln_docs.md"]; ok {
		t.Error("the hidden docs command has a page")
	}
	// A page documents its flags, with defaults, and links its parent.
	add := string(pages["kiln_data_add.md"])
	for _, want := range []string{"# kiln data add\n", "## Usage\n", "| `--server` | string |", "## Flags inherited from parent commands", "[kiln data](kiln_data.md)"} {
		if !strings.Contains(add, want) {
			t.Errorf("kiln_data_add.md lacks %q:\n%s", want, add)
		}
	}
	server := string(pages["kiln_server.md"])
	if !strings.Contains(server, "| `--addr` | string | `127.0.0.1:5000` |") {
		t.Errorf("kiln_server.md does not show --addr's default:\n%s", server)
	}
	for name, p := range pages {
		if strings.Count(string(p), "```")%2 != 0 {
			t.Errorf("%s has an unclosed code block", name)
		}
	}
}

func TestWriteCLIDocsRemovesStalePages(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "kiln_gone.md")
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(stale, []byte("old"), 0o644)
	os.WriteFile(other, []byte("mine"), 0o644)
	if err := writeCLIDocs(newRootCmd(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale page is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not a page was removed: %v", err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	if !slices.Contains(names, filepath.Join(dir, cliIndex)) || len(names) < 50 {
		t.Errorf("wrote %d pages", len(names))
	}
	if err := writeCLIDocs(newRootCmd(), ""); err == nil {
		t.Error("an empty --dir is accepted")
	}
}

func TestMdBlock(t *testing.T) {
	got := mdBlock("First line with <angle> and *stars*.\nSecond `<code>`.\n\n  kiln server\n\n  kiln serve x\nAfter.\n# not a heading")
	want := "First line with &lt;angle&gt; and \\*stars\\*.\nSecond `<code>`.\n\n```\nkiln server\n\nkiln serve x\n```\n\nAfter.\n\\# not a heading\n\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// TestDocsCommand runs the hidden command as a developer would.
func TestDocsCommand(t *testing.T) {
	root := newRootCmd()
	if c, _, err := root.Find([]string{"docs"}); err != nil || c == root {
		root.AddCommand(newDocsCmd())
	}
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "api.md")
	for _, args := range [][]string{{"docs", "cli", "--dir", dir}, {"docs", "api", "--out", out}} {
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "kiln_data_add.md"))
	if err != nil || !bytes.Equal(got, cliDocs(newRootCmd())["kiln_data_add.md"]) {
		t.Errorf("kiln docs cli wrote %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kiln_docs.md")); !os.IsNotExist(err) {
		t.Errorf("the hidden docs command got a page: %v", err)
	}
	want, _ := reference.Markdown(api.OpenAPI)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
		t.Errorf("kiln docs api wrote %d bytes, %v", len(got), err)
	}
	root = newRootCmd()
	root.AddCommand(newDocsCmd())
	root.SetArgs([]string{"docs", "cli"})
	root.SetErr(new(bytes.Buffer))
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "dir") {
		t.Errorf("kiln docs cli without --dir: %v", err)
	}
}
