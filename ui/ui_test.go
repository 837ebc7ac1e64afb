package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	index := string(h.files["index.html"].body)
	tests := []struct {
		name, method, path string
		status             int
		ctype              string
		body               string // a substring the answer holds
	}{
		{"root", "GET", "/ui/", 200, "text/html", `<script type="module" src="/ui/app.js">`},
		{"page address answers the app", "GET", "/ui/experiments/1/runs/abc", 200, "text/html", `id="main"`},
		{"dotted model name is a page", "GET", "/ui/models/churn.v2/versions/3", 200, "text/html", `id="main"`},
		{"script", "GET", "/ui/app.js", 200, "text/javascript", "export async function route"},
		{"library module", "GET", "/ui/lib/chart.js", 200, "text/javascript", "export function lineChart"},
		{"style", "GET", "/ui/style.css", 200, "text/css", ":root"},
		{"icon", "GET", "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"missing module is a 404, not the page", "GET", "/ui/pages/nope.js", 404, "", ""},
		{"missing top-level file is a 404", "GET", "/ui/nope.css", 404, "", ""},
		{"traversal stays inside", "GET", "/ui/lib/../../ui.go", 404, "", ""},
		{"no trailing slash redirects", "GET", "/ui", 301, "", ""},
		{"head", "HEAD", "/ui/app.js", 200, "text/javascript", ""},
		{"post refused", "POST", "/ui/app.js", 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			res := rec.Result()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.ctype != "" && !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %s", res.Header.Get("Content-Type"), tc.ctype)
			}
			b, _ := io.ReadAll(res.Body)
			if tc.body != "" && !strings.Contains(string(b), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
			if tc.status == 200 && tc.method == "GET" && res.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if tc.status == 404 && strings.Contains(string(b), index[:40]) {
				t.Error("a 404 answered the page")
			}
		})
	}
}

func TestConditionalGet(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/app.js", nil))
	etag := rec.Header().Get("ETag")
	req := httptest.NewRequest("GET", "/ui/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("status %d with a matching ETag, want 304", rec.Code)
	}
}

// TestModulesResolve checks that every static import in the embedded
// modules names an embedded file (a typo would break a page only in the
// browser), and that no page uses what the server's CSP forbids.
func TestModulesResolve(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	imp := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]`)
	inline := regexp.MustCompile(`setAttribute\(\s*['"]style['"]|\bstyle:\s*['"]|javascript:|\beval\(|new Function\(`)
	for p, f := range h.files {
		if !strings.HasSuffix(p, ".js") {
			continue
		}
		src := string(f.body)
		for _, m := range imp.FindAllStringSubmatch(src, -1) {
			target := m[1]
			if !strings.HasPrefix(target, ".") {
				t.Errorf("%s imports %q: only relative imports of embedded modules work offline", p, target)
				continue
			}
			dir := p[:strings.LastIndex(p, "/")+1]
			resolved := clean(dir + target)
			if h.files[resolved] == nil {
				t.Errorf("%s imports %q, which is not embedded (%s)", p, target, resolved)
			}
		}
		if loc := inline.FindStringIndex(src); loc != nil {
			t.Errorf("%s uses %q, which the CSP forbids", p, src[loc[0]:loc[1]])
		}
	}
	for _, want := range []string{"index.html", "app.js", "style.css", "lib/dom.js", "lib/api.js", "lib/chart.js"} {
		if h.files[want] == nil {
			t.Errorf("%s is not embedded", want)
		}
	}
}

func clean(p string) string {
	var out []string
	for _, e := range strings.Split(p, "/") {
		switch e {
		case ".", "":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, e)
		}
	}
	return strings.Join(out, "/")
}

// TestSectionsHaveModules checks that every section of the navigation
// (app.js) is rendered by an embedded page module exporting render.
func TestSectionsHaveModules(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	app := string(h.files["app.js"].body)
	sec := regexp.MustCompile(`\{ id: '([a-z-]+)', label: '[^']+', module: '([a-z-]+)'`)
	found := sec.FindAllStringSubmatch(app, -1)
	if len(found) < 10 {
		t.Fatalf("found %d sections in app.js", len(found))
	}
	for _, m := range found {
		f := h.files["pages/"+m[2]+".js"]
		if f == nil {
			t.Errorf("section %s: pages/%s.js is not embedded", m[1], m[2])
			continue
		}
		if !strings.Contains(string(f.body), "export async function render(") && !strings.Contains(string(f.body), "export function render(") {
			t.Errorf("pages/%s.js exports no render", m[2])
		}
	}
}
