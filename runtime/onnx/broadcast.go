package onnx

import (
	"fmt"
	"sync/atomic"
)

// broadcastShape is the numpy broadcast of shapes (ONNX multidirectional
// broadcasting).
func broadcastShape(shapes ...[]int64) ([]int64, error) {
	rank := 0
	for _, s := range shapes {
		if len(s) > rank {
			rank = len(s)
		}
	}
	out := make([]int64, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := &out[off+i]
			switch {
			case d == *o || d == 1:
			case *o == 1:
				*o = d
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// bplan is how an elementwise op walks its broadcast operands. The output
// dimensions are collapsed wherever every operand is either contiguous or
// broadcast across both, so the walk is a few long rows; along a row each
// operand either advances (contiguous) or repeats one element (scalar).
type bplan struct {
	in    [][]int64 // the operand shapes the plan is for
	shape []int64   // output shape
	n     int       // output elements
	dims  []int     // collapsed dims, outermost first; the last is the row
	str   [][]int   // str[k][d]: stride of operand k along collapsed dim d
	scal  []bool    // scal[k]: operand k repeats one element along a row
}

func planBroadcast(shapes ...[]int64) (*bplan, error) {
	out, err := broadcastShape(shapes...)
	if err != nil {
		return nil, err
	}
	p := &bplan{shape: out, n: sizeOf(out, 0, len(out)), in: make([][]int64, len(shapes))}
	for k, s := range shapes {
		p.in[k] = append([]int64(nil), s...)
	}
	rank := len(out)
	// Per-operand strides in the output's rank (0 where broadcast).
	full := make([][]int, len(shapes))
	for k, s := range shapes {
		st := make([]int, rank)
		acc := 1
		for i := len(s) - 1; i >= 0; i-- {
			o := rank - len(s) + i
			if s[i] == 1 && out[o] != 1 {
				st[o] = 0
			} else {
				st[o] = acc
			}
			acc *= int(s[i])
		}
		full[k] = st
	}
	p.str = make([][]int, len(shapes))
	for i := 0; i < rank; i++ {
		d := int(out[i])
		if d == 1 {
			continue
		}
		last := len(p.dims) - 1
		merge := last >= 0
		for k := range shapes {
			if !merge {
				break
			}
			ps, cs := p.str[k][last], full[k][i]
			if !(ps == 0 && cs == 0) && ps != cs*d {
				merge = false
			}
		}
		if merge {
			p.dims[last] *= d
			for k := range shapes {
				p.str[k][last] = full[k][i]
			}
			continue
		}
		p.dims = append(p.dims, d)
		for k := range shapes {
			p.str[k] = append(p.str[k], full[k][i])
		}
	}
	if len(p.dims) == 0 { // a scalar or all-ones output
		p.dims = []int{1}
		for k := range shapes {
			p.str[k] = []int{0}
		}
	}
	p.scal = make([]bool, len(shapes))
	for k := range shapes {
		p.scal[k] = p.str[k][len(p.dims)-1] == 0
	}
	if p.n == 0 {
		p.dims = []int{0}
	}
	return p, nil
}

func (p *bplan) matches(shapes ...[]int64) bool {
	if len(shapes) != len(p.in) {
		return false
	}
	for k, s := range shapes {
		if !sameShape(s, p.in[k]) {
			return false
		}
	}
	return true
}

// rowLen is the length of the innermost run.
func (p *bplan) rowLen() int { return p.dims[len(p.dims)-1] }

// rows calls fn for every row with the output offset and the operand
// offsets (offs is reused between calls).
func (p *bplan) rows(offs []int, fn func(o int, offs []int)) {
	if p.n == 0 {
		return
	}
	outer := len(p.dims) - 1
	n := p.rowLen()
	for k := range offs {
		offs[k] = 0
	}
	if outer == 0 {
		fn(0, offs)
		return
	}
	var idxBuf [8]int
	idx := idxBuf[:0]
	if outer <= len(idxBuf) {
		idx = idxBuf[:outer]
	} else {
		idx = make([]int, outer)
	}
	for o := 0; o < p.n; o += n {
		fn(o, offs)
		// Advance the odometer over the outer dims.
		for d := outer - 1; d >= 0; d-- {
			idx[d]++
			for k := range offs {
				offs[k] += p.str[k][d]
			}
			if idx[d] < p.dims[d] {
				break
			}
			for k := range offs {
				offs[k] -= p.str[k][d] * p.dims[d]
			}
			idx[d] = 0
		}
	}
}

// planCache remembers the last plan of a kernel, so that repeated calls
// with the same shapes (the common case when serving) plan once.
type planCache struct{ p atomic.Pointer[bplan] }

func (c *planCache) get(shapes ...[]int64) (*bplan, error) {
	if p := c.p.Load(); p != nil && p.matches(shapes...) {
		return p, nil
	}
	p, err := planBroadcast(shapes...)
	if err != nil {
		return nil, err
	}
	c.p.Store(p)
	return p, nil
}

// binaryMap runs row over every row of a broadcast binary op.
func binaryMap[T, U, R any](p *bplan, a []T, b []U, out []R, row func(out []R, a []T, b []U, sa, sb bool)) {
	n := p.rowLen()
	sa, sb := p.scal[0], p.scal[1]
	var offs [2]int
	p.rows(offs[:], func(o int, offs []int) {
		ar, br := a[offs[0]:], b[offs[1]:]
		if !sa {
			ar = ar[:n]
		}
		if !sb {
			br = br[:n]
		}
		row(out[o:o+n], ar, br, sa, sb)
	})
}
