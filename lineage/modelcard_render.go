package lineage

import (
	"bytes"
	_ "embed"
	"fmt"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"
)

//go:embed modelcard.md.tmpl
var cardMarkdownTemplate string

//go:embed modelcard.html.tmpl
var cardHTMLTemplate string

var cardFuncs = map[string]any{
	"num":  formatNumber,
	"cell": markdownCell,
	"md":   markdownText,
	"join": strings.Join,
	"owner": func(o Owner) string {
		if o.Role == "" {
			return o.Name
		}
		return o.Name + " (" + o.Role + ")"
	},
	"license": func(l License) string {
		if l.Identifier != "" {
			return l.Identifier
		}
		return l.CustomText
	},
	"field": func(f SignatureField) string {
		if f.Name == "" {
			return f.Type
		}
		return f.Name + ": " + f.Type
	},
	"paras": func(s string) []string {
		var out []string
		for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	},
}

var (
	mdTemplate   = texttemplate.Must(texttemplate.New("modelcard.md").Funcs(cardFuncs).Parse(cardMarkdownTemplate))
	htmlTemplate = htmltemplate.Must(htmltemplate.New("modelcard.html").Funcs(cardFuncs).Parse(cardHTMLTemplate))
)

// Markdown renders the card as a Markdown document.
func (c *ModelCard) Markdown() ([]byte, error) {
	var buf bytes.Buffer
	if err := mdTemplate.Execute(&buf, c); err != nil {
		return nil, fmt.Errorf("render model card as Markdown: %w", err)
	}
	return buf.Bytes(), nil
}

// HTML renders the card as one self-contained HTML page (its style
// inline, nothing fetched); every stored or edited text is escaped.
func (c *ModelCard) HTML() ([]byte, error) {
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, c); err != nil {
		return nil, fmt.Errorf("render model card as HTML: %w", err)
	}
	return buf.Bytes(), nil
}

// formatNumber prints a metric value briefly: up to 6 significant digits.
func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// markdownCell makes text safe in one Markdown table cell: no line
// breaks, pipes escaped, and no raw HTML.
func markdownCell(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "|", `\|`).Replace(s)
	return markdownText(s)
}

// markdownText keeps text from being read as raw HTML by a Markdown
// renderer (the characters that start a tag or an entity are escaped).
func markdownText(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;").Replace(s)
}
