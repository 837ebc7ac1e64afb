package report

import (
	"math"
	"slices"
)

// xy is a point of a line chart in data units (x: Unix seconds).
type xy struct{ x, y float64 }

// segments sorts pts by time and splits them at non-finite values (gaps),
// downsampling the segments to about max points in all, each in proportion
// to its length.
func segments(pts []Point, max int) [][]xy {
	s := make([]xy, 0, len(pts))
	for _, p := range pts {
		if p.Time.IsZero() {
			continue
		}
		s = append(s, xy{float64(p.Time.UnixNano()) / 1e9, p.Value})
	}
	slices.SortStableFunc(s, func(a, b xy) int {
		switch {
		case a.x < b.x:
			return -1
		case a.x > b.x:
			return 1
		}
		return 0
	})
	var segs [][]xy
	start := -1
	finite := 0
	for i, p := range s {
		ok := !math.IsNaN(p.y) && !math.IsInf(p.y, 0)
		if ok {
			finite++
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			segs = append(segs, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		segs = append(segs, s[start:])
	}
	if finite <= max {
		return segs
	}
	// A gap per segment at most; a budget of at least 2 keeps its ends.
	for i, seg := range segs {
		n := int(math.Round(float64(max) * float64(len(seg)) / float64(finite)))
		segs[i] = lttb(seg, n)
	}
	return segs
}

// lttb downsamples s to n points with Steinarsson's
// largest-triangle-three-buckets algorithm: it keeps the first and last
// points and, from each of n-2 buckets, the point that makes the largest
// triangle with the previous kept point and the next bucket's average, so
// peaks and dips survive.
func lttb(s []xy, n int) []xy {
	if n >= len(s) {
		return s
	}
	if n < 3 {
		if n <= 1 || len(s) < 2 {
			return s[:min(len(s), 1)]
		}
		return []xy{s[0], s[len(s)-1]}
	}
	out := make([]xy, 0, n)
	out = append(out, s[0])
	every := float64(len(s)-2) / float64(n-2)
	a := 0
	for i := 0; i < n-2; i++ {
		lo := int(math.Floor(float64(i)*every)) + 1
		hi := int(math.Floor(float64(i+1)*every)) + 1
		hi = min(hi, len(s)-1)
		// The next bucket's average.
		nlo, nhi := hi, int(math.Floor(float64(i+2)*every))+1
		nhi = min(nhi, len(s))
		if nlo >= nhi {
			nlo, nhi = len(s)-1, len(s)
		}
		var ax, ay float64
		for _, p := range s[nlo:nhi] {
			ax += p.x
			ay += p.y
		}
		ax /= float64(nhi - nlo)
		ay /= float64(nhi - nlo)
		best, area := lo, -1.0
		for j := lo; j < hi; j++ {
			ar := math.Abs((s[a].x-ax)*(s[j].y-s[a].y) - (s[a].x-s[j].x)*(ay-s[a].y))
			if ar > area {
				best, area = j, ar
			}
		}
		out = append(out, s[best])
		a = best
	}
	return append(out, s[len(s)-1])
}
