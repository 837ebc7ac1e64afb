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
func (h *Handler) registerArtifacts(mux *http.ServeMux) {
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

func (h *Handler) serveObject(w http.ResponseWriter, r *http.Request, key string) {
	obj, err := h.artifacts.Get(r.Context(), key)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	defer obj.Close()
	ct := obj.ContentType
	if ct == "" || ct == "application/octet-stream" {
		ct = contentTypeOf(key)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	w.Header().Set("Content-Disposition", "attachment; filename=\""+strings.ReplaceAll(path.Base(key), "\"", "")+"\"")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, obj); err != nil {
		h.log.WarnContext(r.Context(), "artifact download interrupted", "key", key, "err", err)
	}
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
	uri, _, err := h.tracking.LoggedModelLocation(r.Context(), r.PathValue("model_id"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.serveUnder(w, r, uri, r.URL.Query().Get("artifact_file_path"))
}
