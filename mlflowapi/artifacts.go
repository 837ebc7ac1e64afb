package mlflowapi

import (
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/errdefs"
)

// multipartUnsupported starts the message MLflow's client recognises to
// fall back from proxied multipart upload to a single PUT.
const multipartUnsupported = "Multipart upload is not supported for the current artifact repository"

// registerArtifacts registers the mlflow-artifacts proxy, the run and
// logged-model artifact listings and the UI download routes.
func (h *Handler) registerArtifacts(mux Mux) {
	for _, prefix := range []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"} {
		mux.HandleFunc("PUT "+prefix+"/artifacts/{path...}", h.uploadArtifact)
		mux.HandleFunc("GET "+prefix+"/artifacts/{path...}", h.downloadArtifact)
		mux.HandleFunc("DELETE "+prefix+"/artifacts/{path...}", h.deleteArtifact)
		mux.HandleFunc("GET "+prefix+"/artifacts", h.listProxyArtifacts)
		for _, op := range []string{"create", "complete", "abort"} {
			mux.HandleFunc("POST "+prefix+"/mpu/"+op+"/{path...}", func(w http.ResponseWriter, r *http.Request) {
				writeError(w, r, h.log, errdefs.NotImplemented("%s: the artifact store is proxied through the Kiln server; upload the file with a single PUT", multipartUnsupported))
			})
		}
	}
	h.rpc(mux, "GET", "/mlflow/artifacts/list", h.listRunArtifacts)
	h.rpc(mux, "GET", "/mlflow/logged-models/{model_id}/artifacts/directories", h.listLoggedModelArtifacts)
	mux.HandleFunc("GET /get-artifact", h.getRunArtifact)
	mux.HandleFunc("GET /ajax-api/2.0/mlflow/get-artifact", h.getRunArtifact)
	mux.HandleFunc("GET /ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files", h.getLoggedModelArtifact)
}

func (h *Handler) artifactKey(r *http.Request) (string, error) {
	key, err := blob.CleanKey(r.PathValue("path"))
	if err != nil {
		return "", err
	}
	return key, nil
}

func (h *Handler) uploadArtifact(w http.ResponseWriter, r *http.Request) {
	key, err := h.artifactKey(r)
	if err == nil && key == "" {
		err = invalidParam("Artifact path is empty")
	}
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = contentTypeOf(key)
	}
	if _, err := h.artifacts.Put(r.Context(), key, r.Body, ct); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func contentTypeOf(key string) string {
	if ct := mime.TypeByExtension(path.Ext(key)); ct != "" {
		return ct
	}
	switch path.Base(key) {
	case "MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// serveObject streams key to the client. A single byte range (Range:
// bytes=a-b, a- or -n) is answered with 206 and only those bytes read from
// the store; other requests get the whole object.
func (h *Handler) serveObject(w http.ResponseWriter, r *http.Request, key string) {
	ctx := r.Context()
	var obj *blob.Object
	var err error
	start, end, ranged := int64(0), int64(-1), false
	if spec := r.Header.Get("Range"); spec != "" {
		st, err := h.artifacts.Stat(ctx, key)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		var ok bool
		if start, end, ok = parseRange(spec, st.Size); !ok {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(st.Size, 10))
			http.Error(w, "requested range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		ranged = start >= 0
	}
	if ranged {
		obj, err = h.artifacts.GetRange(ctx, key, start, end-start+1)
	} else {
		obj, err = h.artifacts.Get(ctx, key)
	}
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	defer obj.Close()
	ct := obj.ContentType
	if ct == "" || ct == "application/octet-stream" {
		ct = contentTypeOf(key)
	}
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("Content-Disposition", "attachment; filename=\""+strings.NewReplacer("\"", "", "\\", "", "\r", "", "\n", "").Replace(path.Base(key))+"\"")
	hd.Set("X-Content-Type-Options", "nosniff")
	if !obj.ModTime.IsZero() {
		hd.Set("Last-Modified", obj.ModTime.UTC().Format(http.TimeFormat))
	}
	status, n := http.StatusOK, obj.Size
	if ranged {
		status, n = http.StatusPartialContent, end-start+1
		hd.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(obj.Size, 10))
	}
	hd.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.CopyN(w, obj, n); err != nil {
		h.log.WarnContext(ctx, "artifact download interrupted", "key", key, "err", err)
	}
}

// parseRange interprets a Range header for an object of size bytes. It
// returns the inclusive byte range to send; start < 0 means "send the whole
// object" (a header this server does not use, such as several ranges); ok
// is false when the range cannot be satisfied.
func parseRange(spec string, size int64) (start, end int64, ok bool) {
	rest, found := strings.CutPrefix(spec, "bytes=")
	if !found || strings.Contains(rest, ",") {
		return -1, -1, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(rest), "-")
	if !found {
		return -1, -1, true
	}
	if first == "" { // the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return -1, -1, true
		}
		if n == 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, true
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return -1, -1, true
	}
	end = size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return -1, -1, true
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, false
	}
	return start, end, true
}

func (h *Handler) downloadArtifact(w http.ResponseWriter, r *http.Request) {
	key, err := h.artifactKey(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if key == "" {
		h.listProxyArtifacts(w, r)
		return
	}
	h.serveObject(w, r, key)
}

func (h *Handler) deleteArtifact(w http.ResponseWriter, r *http.Request) {
	key, err := h.artifactKey(r)
	if err == nil {
		err = h.artifacts.Delete(r.Context(), key)
	}
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

type fileInfoJSON struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize *int64 `json:"file_size,omitempty"`
}

func (h *Handler) list(r *http.Request, dir string, relTo string) ([]fileInfoJSON, error) {
	entries, err := h.artifacts.List(r.Context(), dir)
	if err != nil {
		return nil, err
	}
	out := make([]fileInfoJSON, 0, len(entries))
	for _, e := range entries {
		f := fileInfoJSON{Path: e.Name, IsDir: e.IsDir}
		if relTo != "-" {
			f.Path = strings.TrimPrefix(strings.TrimPrefix(e.Path, relTo), "/")
		}
		if !e.IsDir {
			size := e.Size
			f.FileSize = &size
		}
		out = append(out, f)
	}
	return out, nil
}

// listProxyArtifacts answers GET .../mlflow-artifacts/artifacts?path=DIR
// with the base names of DIR's entries, as MLflow's proxy does.
func (h *Handler) listProxyArtifacts(w http.ResponseWriter, r *http.Request) {
	dir, err := blob.CleanKey(r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	files, err := h.list(r, dir, "-")
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Files []fileInfoJSON `json:"files,omitempty"`
	}{files})
}

// keyOfURI maps an artifact URI served by this server's proxy
// (mlflow-artifacts:/p or mlflow-artifacts://host/p) to its bucket key.
func keyOfURI(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !ok {
		return "", false
	}
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[i:]
		} else {
			rest = ""
		}
	}
	key, err := blob.CleanKey(strings.TrimLeft(rest, "/"))
	return key, err == nil
}

func joinKey(root, sub string) (string, error) {
	sub, err := blob.CleanKey(sub)
	if err != nil {
		return "", err
	}
	if sub == "" {
		return root, nil
	}
	if root == "" {
		return sub, nil
	}
	return root + "/" + sub, nil
}

type listArtifactsResp struct {
	RootURI       string         `json:"root_uri"`
	Files         []fileInfoJSON `json:"files,omitempty"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

func (h *Handler) listUnder(r *http.Request, rootURI, sub string) (any, error) {
	root, ok := keyOfURI(rootURI)
	if !ok {
		// Stored outside the proxy: the client lists the store itself.
		return listArtifactsResp{RootURI: rootURI}, nil
	}
	dir, err := joinKey(root, sub)
	if err != nil {
		return nil, err
	}
	files, err := h.list(r, dir, root)
	if err != nil {
		return nil, err
	}
	return listArtifactsResp{RootURI: rootURI, Files: files}, nil
}

func (h *Handler) listRunArtifacts(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		Path      string `json:"path"`
		PageToken string `json:"page_token"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	uri, err := h.tracking.RunArtifactURI(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return h.listUnder(r, uri, req.Path)
}

func (h *Handler) listLoggedModelArtifacts(r *http.Request) (any, error) {
	var req struct {
		Dir string `json:"artifact_directory_path"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return nil, err
	}
	uri, _, err := h.tracking.LoggedModelLocation(r.Context(), r.PathValue("model_id"))
	if err != nil {
		return nil, err
	}
	return h.listUnder(r, uri, req.Dir)
}

func (h *Handler) serveUnder(w http.ResponseWriter, r *http.Request, rootURI, sub string) {
	root, ok := keyOfURI(rootURI)
	if !ok {
		writeError(w, r, h.log, invalidParam("Artifacts of '%s' are not served by this server", rootURI))
		return
	}
	key, err := joinKey(root, sub)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.serveObject(w, r, key)
}

func (h *Handler) getRunArtifact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("run_id")
	if id == "" {
		id = q.Get("run_uuid")
	}
	uri, err := h.tracking.RunArtifactURI(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.serveUnder(w, r, uri, q.Get("path"))
}

func (h *Handler) getLoggedModelArtifact(w http.ResponseWriter, r *http.Request) {
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	uri, _, err := h.tracking.LoggedModelLocation(r.Context(), r.PathValue("model_id"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.serveUnder(w, r, uri, r.URL.Query().Get("artifact_file_path"))
}
