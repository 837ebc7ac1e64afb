package profile

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
)

// DefaultK is the KLL accuracy parameter: the sketch keeps about 3k values
// and its normalized rank error is about 1.7/k^0.93 ≈ 1% for k = 256
// (99% confidence), for any stream length.
const DefaultK = 256

// KLL is a mergeable quantile sketch (Karnin, Lang, Liberty: "Optimal
// Quantile Approximation in Streams", 2016). Level h holds values of
// weight 2^h; a full level is sorted and halved into the next one,
// keeping the odd or the even positions at random.
//
// Long streams go through a block sampler first, as in the paper's
// optimal variant: once the stream has n ≥ 2k² values, AddBatch keeps one
// value at random per block of w = 2^s ≤ n/k² values and inserts it at
// level s. That adds rank variance of at most n·w/4 ≤ n²/(4k²), about a
// quarter of the compactors' own, and spares sorting most values.
type KLL struct {
	k      int
	n      uint64 // total weight
	levels [][]float64
	sorted []bool
	rng    uint64
	spare  []float64 // sampler output buffer
	caps   []int     // capacity per level for the current height
	total  int       // sum of caps
}

// NewKLL returns an empty sketch with accuracy parameter k (DefaultK when
// k <= 0).
func NewKLL(k int) *KLL {
	if k <= 0 {
		k = DefaultK
	}
	return &KLL{k: k, levels: [][]float64{nil}, sorted: []bool{true}, rng: 0x9e3779b97f4a7c15}
}

// N returns the number of values added (the total weight).
func (s *KLL) N() uint64 { return s.n }

func (s *KLL) rand() uint64 {
	s.rng += 0x9e3779b97f4a7c15
	return mix64(s.rng)
}

// capacity of level h: k·(2/3)^(height-1-h), at least 8.
func (s *KLL) capacity(h int) int {
	if len(s.caps) != len(s.levels) {
		s.caps = s.caps[:0]
		s.total = 0
		for l := range s.levels {
			depth := len(s.levels) - 1 - l
			c := max(int(math.Ceil(float64(s.k)*math.Pow(2.0/3.0, float64(depth)))), 8)
			s.caps = append(s.caps, c)
			s.total += c
		}
	}
	return s.caps[h]
}

func (s *KLL) totalCapacity() int {
	s.capacity(0)
	return s.total
}

func (s *KLL) size() int {
	t := 0
	for _, l := range s.levels {
		t += len(l)
	}
	return t
}

// Add records one value. NaN must be filtered out by the caller.
func (s *KLL) Add(x float64) {
	s.levels[0] = append(s.levels[0], x)
	s.sorted[0] = false
	s.n++
	if len(s.levels[0]) >= s.capacity(0) {
		s.compress()
	}
}

// AddBatch records xs (no NaN), sampling when the stream is long.
func (s *KLL) AddBatch(xs []float64) {
	if len(xs) == 0 {
		return
	}
	shift := 0
	if limit := (s.n + uint64(len(xs))) / uint64(s.k*s.k); limit >= 2 {
		shift = bits.Len64(limit) - 1
	}
	if shift == 0 {
		// Chunks of k keep the sorts at level 0 short.
		for lo := 0; lo < len(xs); lo += s.k {
			hi := min(lo+s.k, len(xs))
			s.levels[0] = append(s.levels[0], xs[lo:hi]...)
			s.sorted[0] = false
			s.n += uint64(hi - lo)
			s.compress()
		}
		return
	}
	w := 1 << shift
	out := s.spare[:0]
	for lo := 0; lo < len(xs); lo += w {
		hi := min(lo+w, len(xs))
		r := s.rand()
		if hi-lo < w && int(r>>40)%w >= hi-lo {
			continue // a short last block survives with probability (hi-lo)/w
		}
		out = append(out, xs[lo+int(r%uint64(hi-lo))])
	}
	s.spare = out
	for len(s.levels) <= shift {
		s.levels = append(s.levels, nil)
		s.sorted = append(s.sorted, true)
	}
	s.n += uint64(len(xs))
	for lo := 0; lo < len(out); lo += s.k {
		hi := min(lo+s.k, len(out))
		s.levels[shift] = append(s.levels[shift], out[lo:hi]...)
		s.sorted[shift] = false
		s.compress()
	}
}

// compress compacts levels until the sketch fits its capacity.
func (s *KLL) compress() {
	for s.size() > s.totalCapacity() {
		for h := range s.levels {
			if len(s.levels[h]) >= s.capacity(h) {
				s.compact(h)
				break
			}
		}
	}
}

// compact halves level h into level h+1.
func (s *KLL) compact(h int) {
	if h+1 == len(s.levels) {
		s.levels = append(s.levels, nil)
		s.sorted = append(s.sorted, true)
	}
	lvl := s.levels[h]
	if !s.sorted[h] {
		slices.Sort(lvl)
	}
	var keep []float64
	if len(lvl)%2 == 1 {
		// The odd one out stays behind.
		keep = append(keep, lvl[len(lvl)-1])
		lvl = lvl[:len(lvl)-1]
	}
	off := int(s.rand() & 1)
	half := make([]float64, 0, len(lvl)/2)
	for i := off; i < len(lvl); i += 2 {
		half = append(half, lvl[i])
	}
	up := s.levels[h+1]
	if !s.sorted[h+1] {
		slices.Sort(up)
	}
	s.levels[h+1] = mergeSorted(up, half)
	s.sorted[h+1] = true
	s.levels[h] = append(s.levels[h][:0], keep...)
	s.sorted[h] = true
}

func mergeSorted(a, b []float64) []float64 {
	out := make([]float64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// Merge adds o's values to s. Both must have the same k.
func (s *KLL) Merge(o *KLL) error {
	if o.k != s.k {
		return fmt.Errorf("kll: cannot merge k=%d into k=%d", o.k, s.k)
	}
	for len(s.levels) < len(o.levels) {
		s.levels = append(s.levels, nil)
		s.sorted = append(s.sorted, true)
	}
	for h, l := range o.levels {
		if len(l) > 0 {
			s.levels[h] = append(s.levels[h], l...)
			s.sorted[h] = false
		}
	}
	s.n += o.n
	s.rng ^= o.rng
	s.compress()
	return nil
}

// weighted returns the retained values sorted, with cumulative weights.
func (s *KLL) weighted() (vals []float64, cum []uint64) {
	type item struct {
		v float64
		w uint64
	}
	items := make([]item, 0, s.size())
	for h, l := range s.levels {
		for _, v := range l {
			items = append(items, item{v, 1 << h})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	vals = make([]float64, len(items))
	cum = make([]uint64, len(items))
	var c uint64
	for i, it := range items {
		c += it.w
		vals[i], cum[i] = it.v, c
	}
	return vals, cum
}

// Quantiles returns the values at ranks qs (each in [0, 1]): the smallest
// retained value whose cumulative weight reaches q of the total. NaN for
// an empty sketch.
func (s *KLL) Quantiles(qs []float64) []float64 {
	out := make([]float64, len(qs))
	vals, cum := s.weighted()
	if len(vals) == 0 {
		for i := range out {
			out[i] = math.NaN()
		}
		return out
	}
	total := cum[len(cum)-1]
	for i, q := range qs {
		target := uint64(math.Ceil(q * float64(total)))
		j := sort.Search(len(cum), func(j int) bool { return cum[j] >= target })
		out[i] = vals[min(j, len(vals)-1)]
	}
	return out
}

// CDF returns the estimated fraction of values <= x for each x.
func (s *KLL) CDF(xs []float64) []float64 {
	out := make([]float64, len(xs))
	vals, cum := s.weighted()
	if len(vals) == 0 {
		return out
	}
	total := float64(cum[len(cum)-1])
	for i, x := range xs {
		j := sort.Search(len(vals), func(j int) bool { return vals[j] > x })
		if j > 0 {
			out[i] = float64(cum[j-1]) / total
		}
	}
	return out
}

// MarshalBinary encodes k, n, the sampler state and each level's values.
func (s *KLL) MarshalBinary() ([]byte, error) {
	out := []byte{1}
	out = binary.AppendUvarint(out, uint64(s.k))
	out = binary.AppendUvarint(out, s.n)
	out = binary.LittleEndian.AppendUint64(out, s.rng)
	out = binary.AppendUvarint(out, uint64(len(s.levels)))
	for _, l := range s.levels {
		out = binary.AppendUvarint(out, uint64(len(l)))
		for _, v := range l {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
	}
	return out, nil
}

// UnmarshalBinary decodes MarshalBinary's form.
func (s *KLL) UnmarshalBinary(b []byte) error {
	bad := func(why string) error { return fmt.Errorf("kll: %w: %s", errSketch, why) }
	if len(b) < 1 || b[0] != 1 {
		return bad("bad header")
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	k, ok1 := next()
	n, ok2 := next()
	if !ok1 || !ok2 || k == 0 || k > 1<<16 || len(b) < 8 {
		return bad("bad parameters")
	}
	rng := binary.LittleEndian.Uint64(b)
	b = b[8:]
	nl, ok := next()
	if !ok || nl == 0 || nl > 64 {
		return bad("bad level count")
	}
	out := &KLL{k: int(k), n: n, rng: rng}
	for range nl {
		cnt, ok := next()
		if !ok || cnt > uint64(len(b)/8) {
			return bad("truncated level")
		}
		l := make([]float64, cnt)
		for i := range l {
			l[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			if math.IsNaN(l[i]) {
				return bad("NaN value")
			}
		}
		b = b[8*cnt:]
		out.levels = append(out.levels, l)
		out.sorted = append(out.sorted, false)
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	*s = *out
	return nil
}
