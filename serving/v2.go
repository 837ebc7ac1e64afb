package serving

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Header values shared by every response (never mutated).
var (
	hdrJSON        = []string{"application/json"}
	hdrOctetStream = []string{"application/octet-stream"}
)

// The extensions reported by the server metadata: Triton's names.
var v2Extensions = []string{"binary_tensor_data", "model_repository", "parameters"}

func (s *Server) registerV2(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2", s.v2ServerMetadata)
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSONValue(w, http.StatusOK, map[string]bool{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", s.v2ServerReady)
	mux.HandleFunc("GET /v2/models/{name}", s.v2ModelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.v2ModelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.v2ModelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.v2ModelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.v2InferRoute)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.v2InferRoute)
	mux.HandleFunc("POST /v2/repository/index", s.v2RepositoryIndex)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		writeV2Error(w, http.StatusNotFound, "no endpoint "+r.Method+" "+r.URL.Path)
	})
}

// writeV2Error answers in the Open Inference Protocol's error format.
func writeV2Error(w http.ResponseWriter, status int, msg string) {
	b := append(appendJSONString(append(make([]byte, 0, len(msg)+16), `{"error":`...), msg), '}')
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h.Del("Inference-Header-Content-Length")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeJSONValue(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeV2Error(w, http.StatusInternalServerError, "encoding the response: "+err.Error())
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) v2ServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSONValue(w, http.StatusOK, map[string]any{
		"name":       s.opts.ServerName,
		"version":    s.opts.ServerVersion,
		"extensions": v2Extensions,
	})
}

// ready reports whether every model of the repository is ready.
func (s *Server) ready(ctx context.Context) bool {
	models := s.repo.Models(ctx)
	if len(models) == 0 {
		return false
	}
	for _, m := range models {
		if m.State != "READY" {
			return false
		}
	}
	return true
}

func (s *Server) v2ServerReady(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	ready := s.ready(r.Context())
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSONValue(w, status, map[string]bool{"ready": ready})
}

func (s *Server) v2ModelMetadata(w http.ResponseWriter, r *http.Request) {
	st, err := s.lookup(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeV2Error(w, classify(err).httpStatus(), err.Error())
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h.Set("Content-Length", strconv.Itoa(len(st.metadata)))
	w.Write(st.metadata)
}

func (s *Server) v2ModelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	_, err := s.lookup(r.Context(), name, r.PathValue("version"))
	switch k := classify(err); {
	case err == nil:
		writeJSONValue(w, http.StatusOK, map[string]any{"name": name, "ready": true})
	case k == kindUnavailable:
		writeJSONValue(w, http.StatusServiceUnavailable, map[string]any{"name": name, "ready": false})
	default:
		writeV2Error(w, k.httpStatus(), err.Error())
	}
}

func (s *Server) v2RepositoryIndex(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Ready bool `json:"ready"`
	}
	if r.ContentLength != 0 {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeV2Error(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				writeV2Error(w, http.StatusBadRequest, "invalid repository index request: "+err.Error())
				return
			}
		}
	}
	type entry struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
		State   string `json:"state"`
		Reason  string `json:"reason,omitempty"`
	}
	out := []entry{}
	for _, m := range s.repo.Models(r.Context()) {
		if body.Ready && m.State != "READY" {
			continue
		}
		out = append(out, entry(m))
	}
	writeJSONValue(w, http.StatusOK, out)
}

// appendModelMetadata appends the model metadata response for m.
func appendModelMetadata(b []byte, m *Model, sig runtime.Signature) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, m.Name)
	if vs := m.versions(); len(vs) > 0 {
		b = append(b, `,"versions":[`...)
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, `,"platform":`...)
	b = appendJSONString(b, m.Platform)
	specs := func(key string, specs []runtime.TensorSpec) {
		b = append(b, ",\""+key+"\":["...)
		for i, s := range specs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, s.Name)
			b = append(b, `,"datatype":`...)
			b = appendJSONString(b, s.DType.String())
			b = append(b, `,"shape":[`...)
			for k, d := range s.Shape {
				if k > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, d, 10)
			}
			b = append(b, "]}"...)
		}
		b = append(b, ']')
	}
	specs("inputs", sig.Inputs)
	specs("outputs", sig.Outputs)
	return append(b, '}')
}

// intern returns the signature's copy of a tensor name equal to b.
func (st *modelState) intern(b []byte) string {
	for i := range st.sig.Inputs {
		if n := st.sig.Inputs[i].Name; n == string(b) {
			return n
		}
	}
	for i := range st.sig.Outputs {
		if n := st.sig.Outputs[i].Name; n == string(b) {
			return n
		}
	}
	return ""
}

func (s *Server) v2InferRoute(w http.ResponseWriter, r *http.Request) {
	s.v2Infer(w, r, r.PathValue("name"), r.PathValue("version"))
}

// inferPath recognises /v2/models/NAME[/versions/VERSION]/infer without
// the mux (the hot path; the mux allocates for its path values).
func inferPath(p string) (name, version string, ok bool) {
	const prefix, suffix = "/v2/models/", "/infer"
	if len(p) <= len(prefix)+len(suffix) || p[:len(prefix)] != prefix || p[len(p)-len(suffix):] != suffix {
		return "", "", false
	}
	rest := p[len(prefix) : len(p)-len(suffix)]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			name, v := rest[:i], rest[i:]
			const mid = "/versions/"
			if len(v) <= len(mid) || v[:len(mid)] != mid || strings.IndexByte(v[len(mid):], '/') >= 0 || name == "" {
				return "", "", false
			}
			return name, v[len(mid):], true
		}
	}
	return rest, "", rest != ""
}

// router sends inference requests straight to their handler and
// everything else through the mux.
type router struct {
	s   *Server
	mux *http.ServeMux
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.RawPath == "" {
		if name, version, ok := inferPath(r.URL.Path); ok {
			if version == "" {
				r.Pattern = "POST /v2/models/{name}/infer"
			} else {
				r.Pattern = "POST /v2/models/{name}/versions/{version}/infer"
			}
			rt.s.v2Infer(w, r, name, version)
			return
		}
	}
	rt.mux.ServeHTTP(w, r)
}

func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request, name, version string) {
	start := time.Now()
	defer s.recoverPanic(w, r, writeV2Error)
	ctx := s.withHeader(r.Context(), w, r)
	st, err := s.lookup(ctx, name, version)
	if err != nil {
		status := classify(err).httpStatus()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfter(err))
		}
		writeV2Error(w, status, err.Error())
		s.unknown.countHTTP(protoREST, status)
		return
	}
	status := s.v2InferModel(ctx, w, r, st, start)
	st.mm.countHTTP(protoREST, status)
	st.mm.duration.Observe(time.Since(start).Seconds())
}

// v2InferModel answers an inference request for st and returns the
// response status.
func (s *Server) v2InferModel(ctx context.Context, w http.ResponseWriter, r *http.Request, st *modelState, start time.Time) int {
	var inputs, keys []*tensor.Tensor
	var id string
	fail := func(err error) int {
		status := classify(err).httpStatus()
		switch status {
		case http.StatusInternalServerError:
			s.log.Error("inference failed", "model", st.m.Name, "protocol", "v2-rest", "err", err)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", retryAfter(err))
		}
		s.observe(ctx, st, protoREST, id, start, inputs, keys, nil, err, status)
		writeV2Error(w, status, err.Error())
		return status
	}
	release, err := s.admit(ctx, st)
	if err != nil {
		return fail(err)
	}
	defer release()
	bp, err := s.readBody(r)
	if err != nil {
		return fail(err)
	}
	defer putBody(bp)
	body := *bp
	hdr := r.Header
	if ce := hdr["Content-Encoding"]; len(ce) > 0 && ce[0] != "identity" {
		if body, err = s.decompress(ce[0], body); err != nil {
			return fail(err)
		}
	}
	jsonLen := -1
	if v := hdr["Inference-Header-Content-Length"]; len(v) > 0 {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return fail(badRequest("invalid Inference-Header-Content-Length %q", v[0]))
		}
		jsonLen = n
	}
	req, err := decodeV2(body, jsonLen, st.intern)
	if err != nil {
		return fail(err)
	}
	defer req.release()
	id = req.id
	decoded := req.inputs
	if fs := st.featureSet(); fs != nil {
		if decoded, keys, err = st.fillTensors(ctx, fs, decoded); err != nil {
			return fail(err)
		}
	}
	if inputs, err = st.matchInputs(decoded); err != nil {
		return fail(err)
	}
	sel, err := st.selectOutputs(req.outputs)
	if err != nil {
		return fail(err)
	}
	outs, err := s.predict(ctx, st, inputs)
	if err != nil {
		return fail(err)
	}
	s.observe(ctx, st, protoREST, id, start, inputs, keys, outs, nil, http.StatusOK)
	rp := respPool.Get().(*[]byte)
	defer putResp(rp)
	b, jsonEnd, err := appendV2Response((*rp)[:0], st, req, sel, outs)
	if err != nil {
		return fail(err)
	}
	*rp = b
	h := w.Header()
	if jsonEnd < len(b) {
		h["Content-Type"] = hdrOctetStream
		h.Set("Inference-Header-Content-Length", strconv.Itoa(jsonEnd))
	} else {
		h["Content-Type"] = hdrJSON
	}
	setContentLength(h, len(b))
	w.Write(b)
	return http.StatusOK
}

// setContentLength sets the header for large bodies; net/http sets it
// itself for a small body written in one piece (sparing two allocations).
func setContentLength(h http.Header, n int) {
	if n >= 2048 {
		h.Set("Content-Length", strconv.Itoa(n))
	}
}

func (s *Server) decompress(encoding string, body []byte) ([]byte, error) {
	var zr io.Reader
	var err error
	switch encoding {
	case "gzip":
		zr, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		zr, err = zlib.NewReader(bytes.NewReader(body))
	default:
		return nil, badRequest("unsupported Content-Encoding %q", encoding)
	}
	if err != nil {
		return nil, badRequest("decompressing the request body: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, s.opts.MaxBodySize+1))
	if err != nil {
		return nil, badRequest("decompressing the request body: %v", err)
	}
	if int64(len(out)) > s.opts.MaxBodySize {
		return nil, &tooLargeError{limit: s.opts.MaxBodySize}
	}
	return out, nil
}

// outSel is one output to answer with: its index in the model's outputs
// and its request settings.
type outSel struct {
	index int
	req   v2Output
}

// selectOutputs resolves the requested outputs against the signature
// (nil: all, with default settings).
func (st *modelState) selectOutputs(reqs []v2Output) ([]outSel, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	sel := make([]outSel, len(reqs))
	for i, o := range reqs {
		j, ok := st.outIdx[o.name]
		if !ok {
			if len(st.sig.Outputs) > 0 {
				return nil, badRequest("unknown output %q requested: model %q returns %s", o.name, st.m.Name, specList(st.sig.Outputs))
			}
			j = -1 // resolved against the prediction's names
		}
		sel[i] = outSel{index: j, req: o}
	}
	return sel, nil
}

// resolve maps the selection to the prediction's outputs.
func resolveOutputs(sel []outSel, outs []*tensor.Tensor) ([]outSel, error) {
	if sel == nil {
		all := make([]outSel, len(outs))
		for i := range outs {
			all[i] = outSel{index: i}
		}
		return all, nil
	}
	for i := range sel {
		if sel[i].index >= 0 && sel[i].index < len(outs) {
			continue
		}
		sel[i].index = -1
		for j, o := range outs {
			if o.Name == sel[i].req.name {
				sel[i].index = j
			}
		}
		if sel[i].index < 0 {
			return nil, badRequest("the model returned no output %q", sel[i].req.name)
		}
	}
	return sel, nil
}

// appendV2Response appends the inference response; when outputs go as
// binary data, their contents follow the JSON, which ends at jsonEnd.
func appendV2Response(b []byte, st *modelState, req *v2Request, sel []outSel, outs []*tensor.Tensor) ([]byte, int, error) {
	var selBuf [4]outSel
	if sel == nil && len(outs) <= len(selBuf) {
		sel = selBuf[:len(outs)]
		for i := range sel {
			sel[i].index = i
		}
	} else {
		var err error
		if sel, err = resolveOutputs(sel, outs); err != nil {
			return nil, 0, err
		}
	}
	b = append(b, `{"model_name":`...)
	b = appendJSONString(b, st.m.Name)
	if st.m.Version != "" {
		b = append(b, `,"model_version":`...)
		b = appendJSONString(b, st.m.Version)
	}
	if req.id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, req.id)
	}
	b = append(b, `,"outputs":[`...)
	anyBinary := false
	for i, o := range sel {
		t := outs[o.index]
		binary := req.binaryOutput
		if o.req.binarySet {
			binary = o.req.binary
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, t.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, t.DType.String()...)
		b = append(b, `","shape":[`...)
		for k, d := range t.Shape {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
		if binary {
			anyBinary = true
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(rawSize(t)), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":`...)
		b = appendFlat(b, t, 0, t.Len(), 32)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	jsonEnd := len(b)
	if anyBinary {
		for _, o := range sel {
			binary := req.binaryOutput
			if o.req.binarySet {
				binary = o.req.binary
			}
			if binary {
				b = appendRaw(b, outs[o.index])
			}
		}
	}
	return b, jsonEnd, nil
}
