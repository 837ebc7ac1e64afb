// Package ui serves Kiln's web UI: a single-page application of plain ES
// modules, HTML and CSS embedded in the binary (go:embed), so `go build`
// alone produces a working UI that needs no CDN and no JavaScript build
// step. The pages talk to the server's own APIs (the MLflow REST API under
// /ajax-api/2.0 and the native API under /api/v1) with the browser's
// session cookie and CSRF token; the handler only serves files.
//
// Every path under /ui/ that is not a file answers index.html, so a page's
// address (/ui/experiments/1/runs/abc) can be bookmarked and reloaded.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// file is one embedded file with its content type and strong ETag.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the embedded UI under Prefix.
type Handler struct {
	files map[string]*file // by path below static/, "index.html", "lib/chart.js"
}

// New reads the embedded files once.
func New() (*Handler, error) {
	h := &Handler{files: map[string]*file{}}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js", ".mjs":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		h.files[p] = &file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	return h, err
}

// Files returns the embedded files' paths (below static/).
func (h *Handler) Files() []string {
	out := make([]string, 0, len(h.files))
	for p := range h.files {
		out = append(out, p)
	}
	return out
}

// ServeHTTP answers GET and HEAD under Prefix: a file when the path names
// one, index.html for any other page address, and a redirect from /ui to
// /ui/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f := h.files[rel]
	if f == nil || rel == "" {
		if looksLikeAsset(rel) {
			// A missing script or style is a 404, not the page: a browser
			// would otherwise run HTML as a module.
			http.NotFound(w, r)
			return
		}
		f = h.files["index.html"]
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	// Revalidate every time: the files change with the binary, and a
	// 304 costs one round trip on loopback or a LAN.
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// looksLikeAsset reports whether a path names a file rather than a page:
// the scripts and styles live in lib/ and pages/ or at the top with an
// extension; page addresses (which may hold dotted names, /ui/models/a.b)
// are everything else.
func looksLikeAsset(rel string) bool {
	if strings.HasPrefix(rel, "lib/") || strings.HasPrefix(rel, "pages/") {
		return true
	}
	return !strings.Contains(rel, "/") && strings.Contains(rel, ".")
}
