package profile

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// DefaultFreqCapacity is how many distinct values a frequent-items sketch
// tracks. Counts are exact while a column has at most this many distinct
// values; past that each count is at most 2n/capacity too low.
const DefaultFreqCapacity = 1024

// maxItemBytes bounds a string kept for display; identity is the hash of
// the whole value.
const maxItemBytes = 256

// Freq is a mergeable frequent-items sketch (Misra–Gries with the
// median-purge of Agarwal et al., "Mergeable Summaries", 2012). Items are
// 64-bit keys (a value's bits or a string's hash) with an optional display
// string. A count is never above the true count and at most Offset below.
type Freq struct {
	capacity int
	keys     []uint64
	counts   []int64
	strs     []span // display strings, in arena
	arena    []byte
	slots    []int32 // open addressing: entry index+1, 0 empty
	offset   int64   // total purged per item: the error bound
	tmp      []int64 // purge scratch
	spare    []byte  // the arena's other buffer, swapped in by purge
}

// store copies the display string s (truncated) into the arena.
func (f *Freq) store(s []byte) span {
	if len(s) > maxItemBytes {
		s = s[:maxItemBytes]
	}
	sp := span{off: int32(len(f.arena)), n: int32(len(s))}
	f.arena = append(f.arena, s...)
	return sp
}

func (f *Freq) str(i int) []byte {
	sp := f.strs[i]
	return f.arena[sp.off : sp.off+sp.n]
}

// NewFreq returns an empty sketch tracking up to capacity items
// (DefaultFreqCapacity when <= 0).
func NewFreq(capacity int) *Freq {
	if capacity <= 0 {
		capacity = DefaultFreqCapacity
	}
	f := &Freq{capacity: capacity}
	size := 16
	for size < 2*capacity {
		size *= 2
	}
	f.slots = make([]int32, size)
	return f
}

// Offset returns the most by which any count may be too low (0: exact).
func (f *Freq) Offset() int64 { return f.offset }

// Len returns the number of tracked items.
func (f *Freq) Len() int { return len(f.keys) }

// find returns the slot of key, or of the empty slot where it would go;
// hash is mix64(key) or another well-mixed hash of the value.
func (f *Freq) find(key, hash uint64) int {
	mask := len(f.slots) - 1
	i := int(hash) & mask
	for {
		e := f.slots[i]
		if e == 0 || f.keys[e-1] == key {
			return i
		}
		i = (i + 1) & mask
	}
}

// span locates a display string in the arena.
type span struct{ off, n int32 }

// Add counts w occurrences of key; str is the display form, copied (up to
// maxItemBytes) when the key is new.
func (f *Freq) Add(key uint64, w int64, str []byte) { f.AddHashed(key, mix64(key), w, str) }

// AddHashed is Add with hash = mix64(key) already computed by the caller
// (which also feeds it to a distinct-count sketch).
func (f *Freq) AddHashed(key, hash uint64, w int64, str []byte) {
	i := f.find(key, hash)
	if e := f.slots[i]; e != 0 {
		f.counts[e-1] += w
		return
	}
	if len(f.keys) >= f.capacity {
		f.purge()
		i = f.find(key, hash)
	}
	f.keys = append(f.keys, key)
	f.counts = append(f.counts, w)
	f.strs = append(f.strs, f.store(str))
	f.slots[i] = int32(len(f.keys))
}

// purge subtracts the median count from every item and drops those left
// at zero or below, freeing at least half the entries.
func (f *Freq) purge() {
	f.tmp = append(f.tmp[:0], f.counts...)
	med := selectNth(f.tmp, len(f.tmp)/2)
	f.offset += med
	j := 0
	old := f.arena
	f.arena = f.spare[:0]
	for i := range f.keys {
		if c := f.counts[i] - med; c > 0 {
			sp := f.strs[i]
			f.keys[j], f.counts[j] = f.keys[i], c
			f.strs[j] = f.store(old[sp.off : sp.off+sp.n])
			j++
		}
	}
	f.spare = old
	f.keys, f.counts, f.strs = f.keys[:j], f.counts[:j], f.strs[:j]
	clear(f.slots)
	for i, k := range f.keys {
		f.slots[f.find(k, f.hashOf(k))] = int32(i + 1)
	}
}

// hashOf returns the table hash of a stored key (as Add computes it).
func (f *Freq) hashOf(k uint64) uint64 { return mix64(k) }

// selectNth returns the n-th smallest of xs (reordering xs): Hoare's
// quickselect with a middle pivot.
func selectNth(xs []int64, n int) int64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		p := xs[lo+(hi-lo)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return xs[n]
		}
	}
	return xs[n]
}

// Merge adds o's counts into f.
func (f *Freq) Merge(o *Freq) {
	for i, k := range o.keys {
		f.Add(k, o.counts[i], o.str(i))
	}
	f.offset += o.offset
}

// Item is a value with its (lower-bound) count.
type Item struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
	key   uint64
}

// Top returns the n most frequent items, by count then value.
func (f *Freq) Top(n int) []Item {
	items := make([]Item, len(f.keys))
	for i, k := range f.keys {
		items[i] = Item{Value: string(f.str(i)), Count: f.counts[i], key: k}
	}
	slices.SortFunc(items, func(a, b Item) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	if n >= 0 && len(items) > n {
		items = items[:n]
	}
	return items
}

// MarshalBinary encodes capacity, offset and the items.
func (f *Freq) MarshalBinary() ([]byte, error) {
	out := []byte{1}
	out = binary.AppendUvarint(out, uint64(f.capacity))
	out = binary.AppendUvarint(out, uint64(f.offset))
	out = binary.AppendUvarint(out, uint64(len(f.keys)))
	for i, k := range f.keys {
		out = binary.LittleEndian.AppendUint64(out, k)
		out = binary.AppendUvarint(out, uint64(f.counts[i]))
		s := f.str(i)
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return out, nil
}

// UnmarshalBinary decodes MarshalBinary's form.
func (f *Freq) UnmarshalBinary(b []byte) error {
	bad := func(why string) error { return fmt.Errorf("freq: %w: %s", errSketch, why) }
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
	capacity, ok1 := next()
	offset, ok2 := next()
	n, ok3 := next()
	if !ok1 || !ok2 || !ok3 || capacity == 0 || capacity > 1<<20 || n > capacity || offset > 1<<62 {
		return bad("bad parameters")
	}
	out := NewFreq(int(capacity))
	out.offset = int64(offset)
	for range n {
		if len(b) < 8 {
			return bad("truncated")
		}
		key := binary.LittleEndian.Uint64(b)
		b = b[8:]
		c, ok1 := next()
		l, ok2 := next()
		if !ok1 || !ok2 || c == 0 || c > 1<<62 || l > maxItemBytes || l > uint64(len(b)) {
			return bad("bad item")
		}
		s := b[:l]
		b = b[l:]
		if out.slots[out.find(key, mix64(key))] != 0 {
			return bad("duplicate item")
		}
		out.Add(key, int64(c), s)
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	*f = *out
	return nil
}
