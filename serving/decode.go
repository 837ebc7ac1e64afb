package serving

import (
	"errors"
	"strings"

	"github.com/kiln-ml/kiln/tensor"
)

// Errors of DecodeInvocation for a body the client must fix.
var (
	// ErrInvalidRequest is wrapped by every error about the body itself
	// (malformed, not fitting the model): HTTP 400.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnsupportedMediaType is a content type other than
	// application/json and text/csv (charset utf-8): HTTP 415.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// Invocation is an /invocations request body decoded for a model.
type Invocation struct {
	// Inputs are the model's inputs, in signature order.
	Inputs []*tensor.Tensor
	// Columns names the columns of the single input when the body was a
	// dataframe stacked into it (in stacking order: the MLflow signature's
	// columns when the model has a column signature, else the request's);
	// nil otherwise.
	Columns []string
}

// DecodeInvocationInputs decodes a body in any of the formats of MLflow's
// /invocations (dataframe_split, dataframe_records, instances, inputs as
// JSON; CSV with a header) into m's inputs, exactly as the /invocations
// handler does, so other handlers (explanations) accept the same bodies.
// Errors wrap ErrInvalidRequest or ErrUnsupportedMediaType; their
// messages are /invocations'.
func DecodeInvocationInputs(body []byte, contentType string, m *Model) ([]*tensor.Tensor, error) {
	inv, err := DecodeInvocation(body, contentType, m)
	if err != nil {
		return nil, err
	}
	return inv.Inputs, nil
}

// DecodeInvocation is DecodeInvocationInputs that also reports the column
// names of a dataframe body.
func DecodeInvocation(body []byte, contentType string, m *Model) (*Invocation, error) {
	if m == nil || m.Runtime == nil {
		return nil, errors.New("serving: DecodeInvocation: no model")
	}
	isCSV, err := parseInvocationContentType(contentType)
	if err != nil {
		return nil, err
	}
	sig := m.Runtime.Signature()
	st := &modelState{m: m, sig: sig, inputIdx: make(map[string]int, len(sig.Inputs))}
	for i, in := range sig.Inputs {
		st.inputIdx[in.Name] = i
	}
	st.plan = newFramePlan(m, sig)
	var inv *invocation
	if isCSV {
		var f *frame
		f, err = decodeCSV(body, st.internColumn)
		inv = &invocation{frame: f}
	} else {
		inv, err = decodeInvocationJSON(body, st.internColumn)
	}
	if err != nil {
		return nil, &invocationDecodeError{err}
	}
	decoded, err := st.invocationInputs(inv)
	if err != nil {
		return nil, &invocationDecodeError{err}
	}
	inputs, err := st.matchInputs(decoded)
	if err != nil {
		return nil, &invocationDecodeError{err}
	}
	out := &Invocation{Inputs: inputs}
	if len(sig.Inputs) == 1 && len(inputs) == 1 && len(inputs[0].Shape) == 2 {
		switch {
		case st.plan.cols != nil && (inv.frame != nil || isFrameShaped(inv, st)):
			for _, c := range st.plan.cols {
				out.Columns = append(out.Columns, c.Name)
			}
		case inv.frame != nil:
			out.Columns = inv.frame.columns
		case isFrameShaped(inv, st):
			for _, l := range inv.tensors {
				out.Columns = append(out.Columns, l.name)
			}
		}
		if len(out.Columns) != int(inputs[0].Shape[1]) {
			out.Columns = nil
		}
	}
	return out, nil
}

// InvocationErrorCode is the MLflow error code /invocations answers an
// error of DecodeInvocation with: INVALID_PARAMETER_VALUE for values that
// do not fit the model's signature, BAD_REQUEST otherwise.
func InvocationErrorCode(err error) string {
	var me *mlflowError
	if errors.As(err, &me) {
		return me.code
	}
	return "BAD_REQUEST"
}

// invocationDecodeError marks a decoding error as the client's.
type invocationDecodeError struct{ err error }

func (e *invocationDecodeError) Error() string   { return e.err.Error() }
func (e *invocationDecodeError) Unwrap() []error { return []error{ErrInvalidRequest, e.err} }

// parseInvocationContentType accepts what checkContentType does: application/json
// or text/csv, with no parameter but charset=utf-8. An empty type is
// JSON.
func parseInvocationContentType(ct string) (isCSV bool, err error) {
	mime, params, _ := strings.Cut(ct, ";")
	mime = strings.TrimSpace(mime)
	if params != "" {
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch {
			case k == "":
			case strings.EqualFold(k, "charset"):
				if !strings.EqualFold(strings.Trim(v, `"`), "utf-8") {
					return false, &invocationMediaTypeError{"The scoring server only supports UTF-8"}
				}
			default:
				return false, &invocationMediaTypeError{"Unrecognized content type parameters: " + k + "."}
			}
		}
	}
	switch {
	case mime == "", strings.EqualFold(mime, "application/json"):
		return false, nil
	case strings.EqualFold(mime, "text/csv"):
		return true, nil
	}
	return false, &invocationMediaTypeError{"This predictor only supports the following content types: Types: ['text/csv', 'application/json']. Got '" + ct + "'."}
}

type invocationMediaTypeError struct{ msg string }

func (e *invocationMediaTypeError) Error() string { return e.msg }
func (e *invocationMediaTypeError) Is(target error) bool {
	return target == ErrUnsupportedMediaType
}
