package serving

import (
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// appendPredictions writes the response as `mlflow models serve` shapes
// it: {"predictions": ...} with a list for a single output (a flat list
// for [N] or [N, 1], nested rows otherwise); for several outputs, one
// object per row when the request was a dataframe (pandas' "records"), else
// an object of whole outputs.
func appendPredictions(b []byte, sig runtime.Signature, outs []*tensor.Tensor, frameShaped bool) []byte {
	b = append(b, `{"predictions":`...)
	switch {
	case len(outs) == 1:
		b = appendOutputList(b, outs[0])
	case frameShaped && perRow(outs):
		b = append(b, '[')
		rows := int(outs[0].Shape[0])
		for r := range rows {
			if r > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			for j, o := range outs {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, o.Name)
				b = append(b, ':')
				b = appendRowValue(b, o, r, outputLabels(sig, j, o))
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	default:
		b = append(b, '{')
		for j, o := range outs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, o.Name)
			b = append(b, ':')
			if labels := outputLabels(sig, j, o); labels != nil {
				// One {label: value} object per row, as ONNX's ZipMap
				// (and so MLflow's onnx flavor) returns it.
				b = append(b, '[')
				for r := range int(o.Shape[0]) {
					if r > 0 {
						b = append(b, ',')
					}
					b = appendRowValue(b, o, r, labels)
				}
				b = append(b, ']')
				continue
			}
			b, _ = appendNested(b, o, o.Shape, 0, 64)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendOutputList(b []byte, o *tensor.Tensor) []byte {
	switch {
	case len(o.Shape) == 1 || (len(o.Shape) == 2 && o.Shape[1] == 1):
		return appendFlat(b, o, 0, o.Len(), 64)
	case len(o.Shape) == 0:
		return appendElem(b, o, 0, 64)
	}
	b, _ = appendNested(b, o, o.Shape, 0, 64)
	return b
}

// perRow reports whether every output has the same number of rows.
func perRow(outs []*tensor.Tensor) bool {
	for _, o := range outs {
		if len(o.Shape) == 0 || o.Shape[0] != outs[0].Shape[0] {
			return false
		}
	}
	return true
}

func outputLabels(sig runtime.Signature, j int, o *tensor.Tensor) []string {
	if j < len(sig.Outputs) && len(sig.Outputs[j].Labels) > 0 && len(o.Shape) == 2 && int(o.Shape[1]) == len(sig.Outputs[j].Labels) {
		return sig.Outputs[j].Labels
	}
	return nil
}

// appendRowValue writes row r of o: a scalar when a row holds one
// element, an object keyed by labels when the output has them (ONNX
// ZipMap's class → probability maps), else the row's nested list.
func appendRowValue(b []byte, o *tensor.Tensor, r int, labels []string) []byte {
	inner := tensor.NumElements(o.Shape[1:])
	off := r * inner
	switch {
	case inner == 1:
		return appendElem(b, o, off, 64)
	case labels != nil:
		b = append(b, '{')
		for k, l := range labels {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, l)
			b = append(b, ':')
			b = appendElem(b, o, off+k, 64)
		}
		return append(b, '}')
	}
	b, _ = appendNested(b, o, o.Shape[1:], off, 64)
	return b
}
