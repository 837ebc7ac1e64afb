package lineage_test

import (
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/lineage"
)

func sampleCard() *lineage.ModelCard {
	return &lineage.ModelCard{
		SchemaVersion: lineage.CardSchemaVersion, GeneratedAt: "2026-12-01T00:00:00Z",
		ModelDetails: lineage.ModelDetails{Name: "churn", Version: 3, Overview: "Scores accounts.\n\n<script>alert(1)</script>",
			Description: "Predicts | churn", VersionDate: "2026-11-30T10:00:00Z", Stage: "Production", Aliases: []string{"champion"},
			Owners: []lineage.Owner{{Name: "bob", Role: "registered the version"}}, Licenses: []lineage.License{{Identifier: "Apache-2.0"}},
			References: []lineage.Reference{{Reference: "models:/churn/3", Kind: "model_uri"}}, Tags: map[string]string{"team": "retention", "note": "a|b"},
			RunID: "0123abcd", Endpoints: []string{"churn-api"}},
		ModelParameters: lineage.ModelParameters{ModelArchitecture: "sklearn.ensemble.RandomForestClassifier", Flavors: []string{"sklearn"},
			Params: []lineage.Param{{Name: "max_depth", Value: "4"}}, Input: []lineage.SignatureField{{Name: "amount", Type: "double"}},
			Output: []lineage.SignatureField{{Type: "long"}}, Data: []lineage.CardDataset{{Name: "train@1", Via: "run", Context: "training", RunID: "0123abcd"}}},
		QuantitativeAnalysis: lineage.QuantitativeAnalysis{PerformanceMetrics: []lineage.PerformanceMetric{
			{Type: "accuracy", Value: 0.912345678, Source: "run:0123abcd"},
			{Type: "roc_auc", Value: 0.79, Slice: "region=us", Source: "gate:quality", Dataset: "eval@1"},
		}},
		Considerations: lineage.Considerations{Users: []string{"retention team"}, Limitations: []string{"EU <and> US only"},
			EthicalConsiderations: []string{"<script>steal()</script>"}},
	}
}

func TestCardMarkdown(t *testing.T) {
	md, err := sampleCard().Markdown()
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, want := range []string{
		"# Model card: churn version 3", "## Model details", "## Model parameters", "## Quantitative analysis", "## Considerations",
		"### Users", "### Use cases", "### Limitations", "### Tradeoffs", "### Ethical considerations", "### Training data",
		"Scores accounts.", "Predicts | churn", `| note | a\|b |`, // a pipe in a table cell is escaped
		"| Version date | 2026-11-30T10:00:00Z |", "| Stage | Production |", "| Aliases | champion |", "| License | Apache-2.0 |",
		"| accuracy | 0.912346 | all | run:0123abcd |", "| roc_auc | 0.79 | region=us | gate:quality | eval@1 |",
		"| max_depth | 4 |", "| train@1 | run | training | 0123abcd |", "- Model architecture: sklearn.ensemble.RandomForestClassifier",
		"- Input: amount: double", "- Output: long", "- retention team", "- EU &lt;and&gt; US only", "- bob (registered the version)",
		"model_uri: models:/churn/3", "| team | retention |", "Not written yet.", "&lt;script&gt;alert(1)&lt;/script&gt;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Markdown has no %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "<script>") {
		t.Errorf("raw HTML in Markdown:\n%s", s)
	}
	if strings.Contains(s, "\n\n\n") {
		t.Errorf("blank lines pile up:\n%s", s)
	}
}

func TestCardHTML(t *testing.T) {
	h, err := sampleCard().HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(h)
	if strings.Contains(s, "<script") {
		t.Fatalf("user text is not escaped:\n%s", s)
	}
	for _, want := range []string{
		"<!DOCTYPE html>", "<title>Model card: churn version 3</title>", "&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;script&gt;steal()&lt;/script&gt;", `<section id="model-details">`, `<section id="model-parameters">`,
		`<section id="quantitative-analysis">`, `<section id="considerations">`, "<td>roc_auc</td><td class=\"num\">0.79</td><td>region=us</td>",
		"<li>retention team</li>", "<p>Scores accounts.</p>", "<td>Apache-2.0</td>",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("HTML has no %q:\n%s", want, s)
		}
	}
	// Self-contained: nothing is fetched from elsewhere.
	for _, ref := range []string{"http://", "https://", "<link", "src="} {
		if strings.Contains(s, ref) {
			t.Errorf("HTML refers to %q", ref)
		}
	}
	// An empty card renders too.
	for _, render := range []func() ([]byte, error){(&lineage.ModelCard{}).Markdown, (&lineage.ModelCard{}).HTML} {
		if out, err := render(); err != nil || !strings.Contains(string(out), "No performance metric is recorded.") {
			t.Errorf("empty card: %v\n%s", err, out)
		}
	}
}

// FuzzCardRender puts arbitrary text in every edited and stored text of a
// card: the Markdown never holds a '<' (no raw HTML reaches a Markdown
// renderer), and the HTML has exactly the tags of the same card with
// plain text (or none, for the empty string).
func FuzzCardRender(f *testing.F) {
	for _, s := range []string{"", "<script>alert(1)</script>", "a|b\nc", `"><img src=x onerror=alert(1)>`, "&lt;", "{{.}}", "\x00\xff"} {
		f.Add(s)
	}
	fill := func(s string) *lineage.ModelCard {
		c := sampleCard()
		d := &c.ModelDetails
		d.Name, d.Description, d.Stage, d.TextUpdatedBy = s, s, s, s // the overview's paragraphs are split: it keeps its text
		d.Tags = map[string]string{s: s}
		d.Owners = []lineage.Owner{{Name: s, Role: s}}
		d.Licenses = []lineage.License{{CustomText: s}}
		d.References = []lineage.Reference{{Reference: s, Kind: s}}
		c.ModelParameters.ModelArchitecture = s
		c.ModelParameters.Params = []lineage.Param{{Name: s, Value: s}}
		c.ModelParameters.Data = []lineage.CardDataset{{Name: s, Via: s, Context: s, Source: s}}
		c.QuantitativeAnalysis.PerformanceMetrics = []lineage.PerformanceMetric{{Type: s, Slice: s, Source: s, Note: s}}
		c.Considerations = lineage.Considerations{Users: []string{s}, UseCases: []string{s}, Limitations: []string{s}, Tradeoffs: []string{s}, EthicalConsiderations: []string{s}}
		c.Notes = []string{s}
		return c
	}
	plain := map[bool][]byte{}
	for _, empty := range []bool{false, true} {
		text := "x"
		if empty {
			text = ""
		}
		h, err := fill(text).HTML()
		if err != nil {
			f.Fatal(err)
		}
		plain[empty] = h
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := fill(s)
		md, err := c.Markdown()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(md), "<") {
			t.Fatalf("a '<' in the Markdown of %q", s)
		}
		h, err := c.HTML()
		if err != nil {
			t.Fatal(err)
		}
		if a, b := strings.Count(string(h), "<"), strings.Count(string(plain[s == ""]), "<"); a != b {
			t.Fatalf("%d '<' in the HTML of %q, %d with plain text", a, s, b)
		}
	})
}
