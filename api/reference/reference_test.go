package reference_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/reference"
)

var update = flag.Bool("update", false, "rewrite docs/api.md")

const regenerate = "run `go run ./cmd/kiln docs api --out docs/api.md` (or `go test ./api/reference -run TestAPIReferenceUpToDate -update`)"

// apiDoc is the committed reference, relative to this package.
var apiDoc = filepath.Join("..", "..", "docs", "api.md")

// TestAPIReferenceUpToDate fails when docs/api.md is not what the
// generator makes of api/openapi.yaml.
func TestAPIReferenceUpToDate(t *testing.T) {
	want, err := reference.Markdown(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(apiDoc, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatalf("%v: %s", err, regenerate)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/api.md is out of date with api/openapi.yaml (first difference at line %d): %s", firstDiff(got, want), regenerate)
	}
}

func firstDiff(a, b []byte) int {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// TestReferenceCoversEveryOperation checks that each path and method of the
// document, its parameters and its named schemas appear in the reference.
func TestReferenceCoversEveryOperation(t *testing.T) {
	md, err := reference.Markdown(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, h := range []string{"### GET /api/v1/datasets\n", "### POST /api/v1/datasets\n", "### Dataset\n", "## Errors\n", "`NOT_FOUND`"} {
		if !strings.Contains(s, h) {
			t.Errorf("the reference lacks %q", h)
		}
	}
	// Every operationId is named once.
	for _, line := range strings.Split(string(api.OpenAPI), "\n") {
		id, ok := strings.CutPrefix(strings.TrimSpace(line), "operationId: ")
		if !ok {
			continue
		}
		if n := strings.Count(s, "operation `"+id+"`"); n != 1 {
			t.Errorf("operation %s appears %d times", id, n)
		}
	}
}

func TestMarkdownRendering(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: T, version: "1", description: "Errors are {error: {code, message}}."}
tags: [{name: things, description: all things}]
paths:
  /things/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string, pattern: '^[a-z]+$'}}
    get:
      tags: [things]
      operationId: getThing
      summary: get a thing
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10, default: 5}, description: at most this many}
      responses:
        '200':
          description: the thing
          content:
            application/json:
              schema:
                type: object
                required: [thing]
                properties:
                  thing: {$ref: '#/components/schemas/Thing'}
                  all: {$ref: '#/components/schemas/Things'}
                  parts: {type: array, items: {type: object, properties: {n: {type: integer, format: int64}}}}
                  labels: {type: object, additionalProperties: {type: string}}
        default: {description: an error, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
  /open:
    post:
      operationId: open
      security: []
      requestBody:
        required: true
        content:
          text/csv: {schema: {type: string, description: 'a | b'}}
      responses:
        '204': {description: done}
components:
  schemas:
    Things: {type: array, items: {$ref: '#/components/schemas/Thing'}}
    Thing:
      type: object
      properties:
        kind: {type: string, enum: [a, b], description: 'the kind | sort'}
        api: {type: string, enum: [v1]}
        v: {oneOf: [{type: string}, {type: number}], nullable: true}
    Error:
      type: object
      properties:
        error: {type: object, properties: {code: {type: string}}}
`
	md, err := reference.Markdown([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, want := range []string{
		"- [Things](#things)\n",
		"  - [`GET /things/{id}`](#get-thingsid) — get a thing\n",
		"  - [`POST /open`](#post-open) — \n",
		"| `id` | path | string | yes | pattern `^[a-z]+$` |\n",
		"| `limit` | query | integer |  | at most this many. ≥ 1, ≤ 10; default `5` |\n",
		"| `thing` | [Thing](#thing) | yes |  |\n",
		// The schema's heading comes after the tag's "Things": GitHub anchors it things-1.
		"| `all` | [Things](#things-1) |  |  |\n",
		"### Things\n\nType: array of [Thing](#thing)\n",
		"| `api` | string |  | always `v1` |\n",
		"| `parts[].n` | integer (int64) |  |  |\n",
		"| `labels` | map of string |  |  |\n",
		"| `kind` | string |  | the kind \\| sort. one of `a`, `b` |\n",
		"| `v` | string or number or null |  |  |\n",
		"operation `open`; no sign-in needed\n",
		"`text/csv`: string — a | b\n",
		"| 204 | done |  |\n",
		"| `error.code` | string |  |  |\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
}

func TestMarkdownErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"not yaml":        "openapi: [",
		"swagger 2":       "swagger: '2.0'\nopenapi: '2.0'\n",
		"missing schema":  "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses:\n        '200': {description: x, content: {application/json: {schema: {$ref: '#/components/schemas/Nope'}}}}\n",
		"missing param":   "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters: [{$ref: '#/components/parameters/Nope'}]\n      responses: {'200': {description: x}}\n",
		"unknown keyword": "openapi: 3.0.0\ncomponents:\n  schemas:\n    A: {type: string, minimun: 3}\n",
		"remote ref":      "openapi: 3.0.0\ncomponents:\n  schemas:\n    A: {$ref: 'other.yaml#/A'}\n",
	} {
		if _, err := reference.Markdown([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"a <b> *c*":             `a &lt;b&gt; \*c\*`,
		"keep `<code>` as is":   "keep `<code>` as is",
		"``a ` b`` then <x>":    "``a ` b`` then &lt;x&gt;",
		"unclosed ` then <x>":   "unclosed ` then &lt;x&gt;",
		"{{trigger.<field>}}":   "{{trigger.&lt;field&gt;}}",
		"plain text, no change": "plain text, no change",
	} {
		if got := reference.Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}
