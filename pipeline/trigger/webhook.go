package trigger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// Webhook limits and headers.
const (
	// MaxWebhookBody is the largest webhook body accepted.
	MaxWebhookBody = 1 << 20
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>".
	SignatureHeader = "X-Kiln-Signature"
	// DeliveryHeader, if set, identifies a delivery: the same delivery
	// posted again returns the first run.
	DeliveryHeader = "X-Kiln-Delivery"
	// maxDelivery bounds the delivery id.
	maxDelivery = 200
)

// Sign returns the X-Kiln-Signature value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func unauthenticated(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrUnauthenticated, Msg: fmt.Sprintf(format, args...)}
}

func permissionDenied(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrPermission, Msg: fmt.Sprintf(format, args...)}
}

// checkSignature verifies header (the X-Kiln-Signature value) against
// body, in constant time.
func checkSignature(secret, body []byte, header string) error {
	if header == "" {
		return unauthenticated("This webhook needs a signature: header %s: sha256=<hex HMAC-SHA256 of the body>", SignatureHeader)
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(got) != sha256.Size {
		return permissionDenied("Invalid %s header: want sha256=<64 hexadecimal digits>", SignatureHeader)
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return permissionDenied("The %s signature does not match the body", SignatureHeader)
	}
	return nil
}

// parsePayload reads a webhook body: a JSON object (an empty body is an
// empty one) of at most MaxWebhookBody bytes. Its top-level strings,
// numbers (as written) and booleans are the payload; nulls, objects and
// arrays are left out.
func parsePayload(body []byte) (map[string]string, error) {
	if len(body) > MaxWebhookBody {
		return nil, errdefs.TooLarge("The webhook body is larger than %d bytes", MaxWebhookBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]string{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errdefs.Invalid("The webhook body is not a JSON object: %s", err)
	}
	if raw == nil {
		return nil, errdefs.Invalid("The webhook body is not a JSON object: null")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errdefs.Invalid("The webhook body has data after its JSON object")
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if strings.IndexByte(k, 0) >= 0 {
			return nil, errdefs.Invalid("The webhook body has a field name with a NUL character")
		}
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0:
			continue
		case v[0] == '"':
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				return nil, errdefs.Invalid("The webhook body's field %q: %s", k, err)
			}
			if strings.IndexByte(str, 0) >= 0 {
				return nil, errdefs.Invalid("The webhook body's field %q has a NUL character", k)
			}
			out[k] = str
		case v[0] == 't' || v[0] == 'f':
			out[k] = string(v)
		case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
			out[k] = string(v)
		}
	}
	return out, nil
}

// validDelivery checks a delivery id: printable, at most maxDelivery bytes.
func validDelivery(d string) error {
	if len(d) > maxDelivery {
		return errdefs.Invalid("The %s header is longer than %d bytes", DeliveryHeader, maxDelivery)
	}
	for _, r := range d {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return errdefs.Invalid("The %s header has a character that is not printable", DeliveryHeader)
		}
	}
	return nil
}

// Webhook starts a run for a POST to a pipeline's webhook trigger. If the
// trigger names a secret (webhook.secret_env: the server's environment
// variable holding it), the body must be signed: header X-Kiln-Signature:
// sha256=<hex HMAC-SHA256 of the body>, compared in constant time; a
// missing signature is errdefs.ErrUnauthenticated, a wrong one
// errdefs.ErrPermission, and a secret the server does not have refuses
// every request. The body (a JSON object, at most 1 MiB) gives
// {{trigger.<field>}} for its top-level scalar fields. With an
// X-Kiln-Delivery header, posting the same delivery again returns the
// first run with created false. Under concurrency forbid a request while
// a run is active is errdefs.ErrInvalidState.
func (s *Service) Webhook(ctx context.Context, pipelineName, trigger string, body []byte, h http.Header) (*pipeline.Run, bool, error) {
	p, err := s.runner.Get(ctx, pipelineName)
	if err != nil {
		return nil, false, err
	}
	var t *pipeline.Trigger
	for i := range p.Spec.Triggers {
		if tr := &p.Spec.Triggers[i]; tr.Name == trigger && tr.Webhook != nil {
			t = tr
		}
	}
	if t == nil {
		return nil, false, errdefs.NotFound("Pipeline '%s' has no webhook trigger '%s'", pipelineName, trigger)
	}
	if len(body) > MaxWebhookBody {
		return nil, false, errdefs.TooLarge("The webhook body is larger than %d bytes", MaxWebhookBody)
	}
	if env := t.Webhook.SecretEnv; env != "" {
		secret := s.env(env)
		if secret == "" {
			s.log.Warn("webhook trigger's secret is not set on this server: refusing its requests", "pipeline", pipelineName, "trigger", trigger, "env", env)
			return nil, false, permissionDenied("Webhook trigger '%s' of pipeline '%s' has no secret on this server (environment variable %s); its requests are refused", trigger, pipelineName, env)
		}
		if err := checkSignature([]byte(secret), body, h.Get(SignatureHeader)); err != nil {
			s.fires.WithLabelValues(TypeWebhook, outcomeFailed).Inc()
			return nil, false, err
		}
	}
	payload, err := parsePayload(body)
	if err != nil {
		return nil, false, err
	}
	ev := event{typ: TypeWebhook, pipeline: pipelineName, name: t.Name, concurrency: t.Concurrency, params: t.Parameters, payload: payload}
	if d := h.Get(DeliveryHeader); d != "" {
		if err := validDelivery(d); err != nil {
			return nil, false, err
		}
		ev.dedup = "webhook/" + t.Name + "/" + d
	}
	res := s.fire(ctx, ev, false)
	runID := ""
	if res.run != nil {
		runID = res.run.ID
	}
	s.recordFire(context.WithoutCancel(ctx), pipelineName, TypeWebhook, t.Name, s.now().UnixMilli(), runID, res.msg)
	if res.err != nil {
		return nil, false, res.err
	}
	return res.run, res.created, nil
}
