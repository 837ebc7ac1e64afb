package profile

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
)

// HyperLogLog++ parameters: 2^14 dense registers (standard error
// 1.04/sqrt(16384) ≈ 0.81%), and a sparse form with 2^25 virtual registers
// for small cardinalities.
const (
	hllP       = 14
	hllM       = 1 << hllP
	hllQ       = 64 - hllP // bits left for the rank
	hllSparseP = 25
	// hllSparseMax is the sparse size at which the sketch turns dense
	// (5 bytes per sparse entry against 2^14 one-byte registers).
	hllSparseMax = hllM / 5
)

// HLL is a HyperLogLog++ distinct-count sketch over 64-bit hashes. It
// starts sparse (exact up to hash collisions at 2^25 buckets) and turns
// dense past hllSparseMax entries. The estimator is Ertl's improved raw
// estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017), which needs no empirical bias tables.
type HLL struct {
	sparse *sparseSet // nil once dense
	regs   []uint8
}

// NewHLL returns an empty sketch.
func NewHLL() *HLL { return &HLL{sparse: newSparseSet(64)} }

// mix64 finalises a 64-bit value into a well-distributed hash
// (the SplitMix64 output function).
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Add records a hash.
func (h *HLL) Add(x uint64) {
	if h.sparse == nil {
		idx := x >> hllQ
		rank := uint8(bits.LeadingZeros64(x<<hllP|1<<(hllP-1)) + 1)
		if rank > h.regs[idx] {
			h.regs[idx] = rank
		}
		return
	}
	idx := uint32(x >> (64 - hllSparseP))
	rank := uint8(bits.LeadingZeros64(x<<hllSparseP|1<<(hllSparseP-1)) + 1)
	h.sparse.max(idx, rank)
	if h.sparse.n > hllSparseMax {
		h.toDense()
	}
}

// toDense converts the sparse entries to p=14 registers: the top 14 of
// the 25 index bits pick the register; the 11 bits below either hold the
// first one bit or extend the rank.
func (h *HLL) toDense() {
	h.regs = make([]uint8, hllM)
	h.sparse.each(func(idx uint32, rank uint8) {
		h.setDense(idx, rank)
	})
	h.sparse = nil
}

func (h *HLL) setDense(idx uint32, rank uint8) {
	const extra = hllSparseP - hllP
	reg := idx >> extra
	low := idx & (1<<extra - 1)
	var r uint8
	if low != 0 {
		r = uint8(bits.LeadingZeros32(low) - (32 - extra) + 1)
	} else {
		r = extra + rank
	}
	if r > h.regs[reg] {
		h.regs[reg] = r
	}
}

// Merge adds o's hashes to h.
func (h *HLL) Merge(o *HLL) {
	if o.sparse != nil {
		o.sparse.each(func(idx uint32, rank uint8) {
			if h.sparse != nil {
				h.sparse.max(idx, rank)
			} else {
				h.setDense(idx, rank)
			}
		})
		if h.sparse != nil && h.sparse.n > hllSparseMax {
			h.toDense()
		}
		return
	}
	if h.sparse != nil {
		h.toDense()
	}
	for i, r := range o.regs {
		if r > h.regs[i] {
			h.regs[i] = r
		}
	}
}

// Estimate returns the estimated number of distinct hashes.
func (h *HLL) Estimate() float64 {
	if h.sparse != nil {
		// Linear counting over the 2^25 sparse buckets.
		const m = float64(1 << hllSparseP)
		v := float64(h.sparse.n)
		return m * math.Log(m/(m-v))
	}
	var c [hllQ + 2]int
	for _, r := range h.regs {
		c[r]++
	}
	const m = float64(hllM)
	z := m * hllTau(1-float64(c[hllQ+1])/m)
	for k := hllQ; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * hllSigma(float64(c[0])/m)
	return m * m / (2 * math.Ln2) / z
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// MarshalBinary encodes the sketch: a version byte, a form byte, then the
// sorted sparse entries (varint index deltas and ranks) or the deflated
// dense registers.
func (h *HLL) MarshalBinary() ([]byte, error) {
	out := []byte{1}
	if h.sparse != nil {
		out = append(out, 's')
		type ent struct {
			idx  uint32
			rank uint8
		}
		ents := make([]ent, 0, h.sparse.n)
		h.sparse.each(func(idx uint32, rank uint8) { ents = append(ents, ent{idx, rank}) })
		slices.SortFunc(ents, func(a, b ent) int { return int(a.idx) - int(b.idx) })
		out = binary.AppendUvarint(out, uint64(len(ents)))
		prev := uint32(0)
		for _, e := range ents {
			out = binary.AppendUvarint(out, uint64(e.idx-prev))
			out = append(out, e.rank)
			prev = e.idx
		}
		return out, nil
	}
	out = append(out, 'd')
	var buf bytes.Buffer
	buf.Write(out)
	fw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(h.regs); err != nil {
		return nil, err
	}
	if err := fw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var errSketch = errors.New("malformed sketch")

// UnmarshalBinary decodes MarshalBinary's form.
func (h *HLL) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] != 1 {
		return fmt.Errorf("hll: %w: bad header", errSketch)
	}
	switch b[1] {
	case 's':
		rest := b[2:]
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > hllSparseMax*2 {
			return fmt.Errorf("hll: %w: bad sparse count", errSketch)
		}
		rest = rest[k:]
		s := newSparseSet(int(n))
		idx := uint64(0)
		for range n {
			d, k := binary.Uvarint(rest)
			if k <= 0 || len(rest) < k+1 {
				return fmt.Errorf("hll: %w: truncated", errSketch)
			}
			idx += d
			rank := rest[k]
			rest = rest[k+1:]
			if idx >= 1<<hllSparseP || rank == 0 || rank > 64-hllSparseP+1 {
				return fmt.Errorf("hll: %w: entry out of range", errSketch)
			}
			s.max(uint32(idx), rank)
		}
		*h = HLL{sparse: s}
		if s.n > hllSparseMax {
			h.toDense()
		}
		return nil
	case 'd':
		regs := make([]uint8, hllM)
		fr := flate.NewReader(bytes.NewReader(b[2:]))
		if _, err := io.ReadFull(fr, regs); err != nil {
			return fmt.Errorf("hll: %w: %v", errSketch, err)
		}
		for _, r := range regs {
			if r > hllQ+1 {
				return fmt.Errorf("hll: %w: register out of range", errSketch)
			}
		}
		*h = HLL{regs: regs}
		return nil
	}
	return fmt.Errorf("hll: %w: unknown form", errSketch)
}

// sparseSet maps sparse register indexes to their maximum rank, in an
// open-addressing table (no per-insert allocation).
type sparseSet struct {
	keys  []uint32 // index+1; 0 is empty
	ranks []uint8
	n     int
}

func newSparseSet(n int) *sparseSet {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return &sparseSet{keys: make([]uint32, size), ranks: make([]uint8, size)}
}

func (s *sparseSet) max(idx uint32, rank uint8) {
	key := idx + 1
	mask := uint32(len(s.keys) - 1)
	i := uint32(mix64(uint64(key))) & mask
	for {
		switch s.keys[i] {
		case key:
			if rank > s.ranks[i] {
				s.ranks[i] = rank
			}
			return
		case 0:
			s.keys[i], s.ranks[i] = key, rank
			s.n++
			if 2*s.n > len(s.keys) {
				s.grow()
			}
			return
		}
		i = (i + 1) & mask
	}
}

func (s *sparseSet) grow() {
	old := *s
	s.keys = make([]uint32, 2*len(old.keys))
	s.ranks = make([]uint8, 2*len(old.keys))
	s.n = 0
	old.each(s.max)
}

func (s *sparseSet) each(fn func(idx uint32, rank uint8)) {
	for i, k := range s.keys {
		if k != 0 {
			fn(k-1, s.ranks[i])
		}
	}
}
