package serving

//go:generate go run gen_pow10.go

import (
	"math"
	"math/bits"
	"strconv"
)

// Request bodies of tabular models are mostly decimal numbers, and
// strconv.ParseFloat, which must also take hexadecimal floats, underscores
// and any length, spends most of a 64-row request's decoding time on them.
// parseFloat reads the tokens jsonReader.number has already checked
// against JSON's grammar in one tight pass and converts them with the
// Clinger fast path or the Eisel–Lemire algorithm (Lemire, "Number Parsing
// at a Gigabyte per Second", 2021), correctly rounded like ParseFloat; the
// rare inputs those cannot decide (more than 19 significant digits,
// exponents beyond ±100, halfway cases the truncated power cannot settle)
// go to ParseFloat.

type pow10 struct {
	hi, lo uint64
	e      int16
}

var (
	exact64 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
		1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
	exact32 = [...]float32{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}
)

// parseFloat converts a JSON number token (-?int(.frac)?([eE][+-]?exp)?,
// already validated) to the nearest float of the given bit size (32 or
// 64). ok is false only when the value overflows to ±Inf; ParseFloat's
// range error is then reported the same way.
func parseFloat(tok []byte, bitSize int) (f float64, ok bool) {
	i := 0
	neg := tok[0] == '-'
	if neg {
		i = 1
	}
	var w uint64
	nd, q := 0, 0
	trunc := false
	for ; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
		if nd < 19 {
			w = w*10 + uint64(tok[i]-'0')
			if w != 0 {
				nd++
			}
		} else {
			q++
			trunc = trunc || tok[i] != '0'
		}
	}
	if i < len(tok) && tok[i] == '.' {
		for i++; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
			if nd < 19 {
				w = w*10 + uint64(tok[i]-'0')
				if w != 0 {
					nd++
				}
				q--
			} else {
				trunc = trunc || tok[i] != '0'
			}
		}
	}
	if i < len(tok) { // exponent
		i++
		eneg := false
		if tok[i] == '+' || tok[i] == '-' {
			eneg = tok[i] == '-'
			i++
		}
		e := 0
		for ; i < len(tok); i++ {
			if e < 100000 {
				e = e*10 + int(tok[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		q += e
	}
	if w == 0 && !trunc {
		if neg {
			return math.Copysign(0, -1), true
		}
		return 0, true
	}
	if !trunc {
		if v, ok := fastFloat(w, q, bitSize); ok {
			if neg {
				v = -v
			}
			return v, true
		}
	}
	v, err := strconv.ParseFloat(bstr(tok), bitSize)
	if err != nil {
		return v, false
	}
	return v, true
}

// fastFloat is w·10^q rounded to bitSize bits, when the fast paths can
// decide it.
func fastFloat(w uint64, q, bitSize int) (float64, bool) {
	if bitSize == 32 {
		if w < 1<<24 && q >= -10 && q <= 10 {
			f := float32(w)
			if q < 0 {
				f /= exact32[-q]
			} else {
				f *= exact32[q]
			}
			return float64(f), true
		}
		b, ok := eiselLemire(w, q, 23, 127, 0xff)
		return float64(math.Float32frombits(uint32(b))), ok
	}
	if w < 1<<53 && q >= -22 && q <= 22 {
		f := float64(w)
		if q < 0 {
			f /= exact64[-q]
		} else {
			f *= exact64[q]
		}
		return f, true
	}
	b, ok := eiselLemire(w, q, 52, 1023, 0x7ff)
	return math.Float64frombits(b), ok
}

// eiselLemire returns the IEEE bits (without sign) of w·10^q (w > 0)
// rounded to nearest, even, for a format of mbits mantissa bits, the
// given exponent bias and all-ones exponent; ok is false where it cannot
// tell, or the result is not a normal number.
func eiselLemire(w uint64, q int, mbits uint, bias, expMax int) (uint64, bool) {
	if q < pow10Min || q > pow10Max {
		return 0, false
	}
	p := &pow10Tab[q-pow10Min]
	l := bits.LeadingZeros64(w)
	w <<= uint(l)
	hi, lo := bits.Mul64(w, p.hi)
	// Bits below the mantissa and its rounding bit: when they are all
	// ones, the truncated product may be short by a carry into them.
	below := uint(62 - (mbits + 1))
	mask := uint64(1)<<below - 1
	if hi&mask == mask && lo+w < lo {
		hi2, lo2 := bits.Mul64(w, p.lo)
		mlo, c := bits.Add64(lo, hi2, 0)
		mhi := hi + c
		if mhi&mask == mask && mlo+1 == 0 && lo2+w < lo2 {
			return 0, false
		}
		hi, lo = mhi, mlo
	}
	up := hi >> 63
	m := hi >> (uint(up) + below)
	if lo == 0 && hi&mask == 0 && m&3 == 1 {
		return 0, false // exactly halfway as far as the product shows
	}
	m += m & 1
	m >>= 1
	exp := int(p.e) + int(up) - l + 63 + bias
	if m>>(mbits+1) != 0 {
		m >>= 1
		exp++
	}
	if exp <= 0 || exp >= expMax {
		return 0, false
	}
	return uint64(exp)<<mbits | m&(1<<mbits-1), true
}
