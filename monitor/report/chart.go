package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// unit says how a chart's values are written.
type unit uint8

const (
	unitNone    unit = iota
	unitShare        // 0 … 1, written as percent
	unitSeconds      // written as µs, ms or s
	unitRate         // per second
)

// Chart geometry (SVG user units; the SVG scales to its container).
const (
	chartW    = 640.0
	chartH    = 230.0
	padL      = 58.0
	padR      = 16.0
	padT      = 30.0
	padB      = 34.0
	maxBins   = 30 // categories drawn; the rest are summed into "other"
	maxXTicks = 8
)

type series struct {
	name   string
	points []Point
}

type threshold struct {
	label string
	value float64
}

type lineChart struct {
	title      string
	unit       unit
	series     []series
	thresholds []threshold
	width      float64
	maxPoints  int
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// svg draws the chart, or returns "" when no series has a finite point.
func (c lineChart) svg() template.HTML {
	w := c.width
	if w == 0 {
		w = chartW
	}
	max := c.maxPoints
	if max == 0 {
		max = MaxPoints
	}
	type drawn struct {
		name string
		segs [][]xy
	}
	var all []drawn
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		segs := segments(s.points, max)
		for _, seg := range segs {
			for _, p := range seg {
				xlo, xhi = math.Min(xlo, p.x), math.Max(xhi, p.x)
				ylo, yhi = math.Min(ylo, p.y), math.Max(yhi, p.y)
			}
		}
		all = append(all, drawn{s.name, segs})
	}
	if math.IsInf(xlo, 1) {
		return ""
	}
	for _, t := range c.thresholds {
		if finite(t.value) {
			ylo, yhi = math.Min(ylo, t.value), math.Max(yhi, t.value)
		}
	}
	if c.unit != unitNone && ylo > 0 {
		ylo = 0 // shares, rates and durations start at zero
	}
	if yhi-ylo < 1e-12 {
		if c.unit == unitShare {
			ylo, yhi = 0, math.Max(1, yhi)
		} else {
			d := math.Max(math.Abs(yhi)*0.1, 1)
			ylo, yhi = ylo-d, yhi+d
		}
	}
	if xhi-xlo < 1 {
		xlo, xhi = xlo-30, xhi+30
	}
	yt := niceTicks(ylo, yhi, 5)
	ylo, yhi = math.Min(ylo, yt[0]), math.Max(yhi, yt[len(yt)-1])
	pw, ph := w-padL-padR, chartH-padT-padB
	sx := func(x float64) float64 { return padL + (x-xlo)/(xhi-xlo)*pw }
	sy := func(y float64) float64 { return padT + ph - (y-ylo)/(yhi-ylo)*ph }

	var b strings.Builder
	svgOpen(&b, w, chartH, c.title)
	// Grid and y axis.
	step := 0.0
	if len(yt) > 1 {
		step = yt[1] - yt[0]
	}
	yAxis(&b, yt, step, c.unit, sy, w)
	// Time axis.
	base := padT + ph
	ticks := timeTicks(xlo, xhi)
	b.WriteString(`<path class="axis" d="M` + f1(padL) + " " + f1(base) + "H" + f1(w-padR))
	for _, t := range ticks {
		b.WriteString("M" + f1(sx(t.x)) + " " + f1(base) + "v4")
	}
	b.WriteString(`"/>`)
	for _, t := range ticks {
		fmt.Fprintf(&b, `<text class="tick tm" x="%s" y="%s">%s</text>`, f1(sx(t.x)), f1(base+16), esc(t.label))
	}
	fmt.Fprintf(&b, `<text class="tick te" x="%s" y="%s">UTC</text>`, f1(w-padR), f1(chartH-4))
	// Thresholds.
	for _, t := range c.thresholds {
		if !finite(t.value) {
			continue
		}
		y := sy(t.value)
		fmt.Fprintf(&b, `<line class="thr" x1="%s" y1="%s" x2="%s" y2="%s"><title>%s</title></line>`,
			f1(padL), f1(y), f1(w-padR), f1(y), esc(t.label+" "+valueLabel(t.value, c.unit)))
		fmt.Fprintf(&b, `<text class="thrl te" x="%s" y="%s">%s</text>`, f1(w-padR-2), f1(y-3), esc(t.label))
	}
	// Series.
	for i, d := range all {
		cls := "s" + strconv.Itoa(i%len(palette))
		for _, seg := range d.segs {
			if len(seg) == 1 {
				fmt.Fprintf(&b, `<circle class="%s" cx="%s" cy="%s" r="2.5"/>`, cls, f1(sx(seg[0].x)), f1(sy(seg[0].y)))
				continue
			}
			fmt.Fprintf(&b, `<polyline class="%s" points="`, cls)
			for j, p := range seg {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(f1(sx(p.x)))
				b.WriteByte(',')
				b.WriteString(f1(sy(p.y)))
			}
			b.WriteString(`"/>`)
		}
	}
	// Legend (only when it says something).
	if len(all) > 1 || (len(all) == 1 && all[0].name != "") {
		lw := 0.0
		for _, d := range all {
			lw += 30 + 6.5*float64(len([]rune(d.name)))
		}
		lx := math.Max(padL+4+6.5*float64(len([]rune(c.title))), w-padR-lw)
		for i, d := range all {
			cls := "s" + strconv.Itoa(i%len(palette))
			fmt.Fprintf(&b, `<line class="%s" x1="%s" y1="14" x2="%s" y2="14"/>`, cls, f1(lx), f1(lx+14))
			fmt.Fprintf(&b, `<text class="leg" x="%s" y="18">%s</text>`, f1(lx+18), esc(d.name))
			lx += 30 + 6.5*float64(len([]rune(d.name)))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// yAxis draws the horizontal grid lines and the y tick labels.
func yAxis(b *strings.Builder, ticks []float64, step float64, u unit, sy func(float64) float64, w float64) {
	b.WriteString(`<path class="grid" d="`)
	for _, t := range ticks {
		b.WriteString("M" + f1(padL) + " " + f1(sy(t)) + "H" + f1(w-padR))
	}
	b.WriteString(`"/>`)
	for _, t := range ticks {
		fmt.Fprintf(b, `<text class="tick te" x="%s" y="%s">%s</text>`, f1(padL-6), f1(sy(t)+4), esc(tickLabel(t, step, u)))
	}
}

// palette is the number of series classes s0 … s7 in the style sheet.
var palette = [8]struct{}{}

func svgOpen(b *strings.Builder, w, h float64, title string) {
	fmt.Fprintf(b, `<svg viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s">`,
		f1(w), f1(h), f1(w), f1(h), esc(title))
	fmt.Fprintf(b, `<text class="ttl" x="%s" y="12">%s</text>`, f1(padL), esc(title))
}

// histogramSVG draws the reference and current shares of a histogram side
// by side per bin, or returns "" when there is nothing to draw.
func histogramSVG(title string, h *Histogram, drifted bool) template.HTML {
	if h == nil {
		return ""
	}
	labels, ref, cur, tips, numeric := histogramBins(h)
	n := len(ref)
	if n == 0 {
		return ""
	}
	yhi := 0.0
	for i := range n {
		yhi = math.Max(yhi, math.Max(ref[i], cur[i]))
	}
	if yhi <= 0 {
		yhi = 1
	}
	yt := niceTicks(0, yhi, 5)
	yhi = math.Max(yhi, yt[len(yt)-1])
	rotate := !numeric && n > 8
	bottom := padB
	if rotate {
		bottom = 70
	}
	hh := padT + 170 + bottom
	pw, ph := chartW-padL-padR, hh-padT-bottom
	sy := func(y float64) float64 { return padT + ph - y/yhi*ph }
	slot := pw / float64(n)

	var b strings.Builder
	svgOpen(&b, chartW, hh, title)
	yAxis(&b, yt, yt[1]-yt[0], unitShare, sy, chartW)
	curCls := "cur"
	if drifted {
		curCls = "cur drift"
	}
	bw := slot * 0.4
	for i := range n {
		x := padL + float64(i)*slot + slot*0.1
		fmt.Fprintf(&b, `<g><title>%s</title>`, esc(tips[i]+": reference "+pct(ref[i])+", current "+pct(cur[i])))
		for k, v := range [2]float64{ref[i], cur[i]} {
			cls := "ref"
			if k == 1 {
				cls = curCls
			}
			y := sy(v)
			fmt.Fprintf(&b, `<rect class="%s" x="%s" y="%s" width="%s" height="%s"/>`, cls, f1(x+float64(k)*bw), f1(y), f1(bw), f1(padT+ph-y))
		}
		b.WriteString(`</g>`)
	}
	base := padT + ph
	if numeric {
		// Labels at the bin edges, thinned to at most maxXTicks+1.
		every := (len(labels) + maxXTicks - 1) / maxXTicks
		shown := func(i int) bool { return i%every == 0 || i == len(labels)-1 }
		b.WriteString(`<path class="axis" d="M` + f1(padL) + " " + f1(base) + "H" + f1(chartW-padR))
		for i := range labels {
			if shown(i) {
				b.WriteString("M" + f1(padL+float64(i)*slot) + " " + f1(base) + "v4")
			}
		}
		b.WriteString(`"/>`)
		for i, l := range labels {
			if shown(i) {
				cls := "tick tm"
				if i == len(labels)-1 {
					cls = "tick te" // keeps the last edge inside the chart
				}
				fmt.Fprintf(&b, `<text class="%s" x="%s" y="%s">%s</text>`, cls, f1(padL+float64(i)*slot), f1(base+16), esc(l))
			}
		}
	} else {
		fmt.Fprintf(&b, `<path class="axis" d="M%s %sH%s"/>`, f1(padL), f1(base), f1(chartW-padR))
		maxChars := int(slot / 6.5)
		if rotate {
			maxChars = 12
		}
		for i, l := range labels {
			x := padL + (float64(i)+0.5)*slot
			t := truncate(l, maxChars)
			var tip string
			if t != l {
				tip = "<title>" + esc(l) + "</title>"
			}
			if rotate {
				fmt.Fprintf(&b, `<text class="tick te" x="%s" y="%s" transform="rotate(-40 %s %s)">%s%s</text>`,
					f1(x), f1(base+12), f1(x), f1(base+12), esc(t), tip)
			} else {
				fmt.Fprintf(&b, `<text class="tick tm" x="%s" y="%s">%s%s</text>`, f1(x), f1(base+16), esc(t), tip)
			}
		}
	}
	// Legend.
	lx := chartW - padR - 170
	fmt.Fprintf(&b, `<rect class="ref" x="%s" y="14" width="10" height="10"/><text class="leg" x="%s" y="23">reference</text>`, f1(lx), f1(lx+14))
	fmt.Fprintf(&b, `<rect class="%s" x="%s" y="14" width="10" height="10"/><text class="leg" x="%s" y="23">current</text>`, curCls, f1(lx+90), f1(lx+104))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// histogramBins returns the drawable bins of h: numeric histograms give
// len(ref)+1 edge labels, categorical ones a label per bin (at most
// maxBins: the smallest categories are summed into one "other" bin).
func histogramBins(h *Histogram) (labels []string, refOut, curOut []float64, tips []string, numeric bool) {
	share := func(v []float64, i int) float64 {
		if i < len(v) && finite(v[i]) && v[i] > 0 {
			return v[i]
		}
		return 0
	}
	if len(h.Categories) == 0 && len(h.Edges) >= 2 {
		n := len(h.Edges) - 1
		labels = make([]string, len(h.Edges))
		for i, e := range h.Edges {
			labels[i] = edgeLabel(e)
		}
		for i := range n {
			refOut = append(refOut, share(h.Ref, i))
			curOut = append(curOut, share(h.Cur, i))
			tips = append(tips, "["+labels[i]+", "+labels[i+1]+")")
		}
		return labels, refOut, curOut, tips, true
	}
	type bin struct {
		label    string
		ref, cur float64
	}
	bins := make([]bin, len(h.Categories))
	for i, c := range h.Categories {
		bins[i] = bin{c, share(h.Ref, i), share(h.Cur, i)}
	}
	if len(bins) > maxBins {
		top := slices.Clone(bins)
		slices.SortStableFunc(top, func(a, b bin) int {
			ma, mb := math.Max(a.ref, a.cur), math.Max(b.ref, b.cur)
			switch {
			case ma > mb:
				return -1
			case ma < mb:
				return 1
			}
			return 0
		})
		other := bin{label: fmt.Sprintf("other (%d)", len(top)-(maxBins-1))}
		for _, b := range top[maxBins-1:] {
			other.ref += b.ref
			other.cur += b.cur
		}
		bins = append(top[:maxBins-1:maxBins-1], other)
	}
	for _, b := range bins {
		labels = append(labels, b.label)
		refOut = append(refOut, b.ref)
		curOut = append(curOut, b.cur)
		tips = append(tips, b.label)
	}
	return labels, refOut, curOut, tips, false
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	step := niceNum((hi-lo)/float64(n-1), true)
	start := math.Floor(lo/step) * step
	end := math.Ceil(hi/step-1e-9) * step
	var t []float64
	for v := start; v <= end+step*1e-9 && len(t) < 50; v += step {
		t = append(t, math.Round(v/step)*step)
	}
	if len(t) < 2 {
		t = append(t, start+step)
	}
	return t
}

func niceNum(x float64, round bool) float64 {
	e := math.Floor(math.Log10(x))
	f := x / math.Pow(10, e)
	var nf float64
	switch {
	case round && f < 1.5, !round && f <= 1:
		nf = 1
	case round && f < 3, !round && f <= 2:
		nf = 2
	case round && f < 7, !round && f <= 5:
		nf = 5
	default:
		nf = 10
	}
	return nf * math.Pow(10, e)
}

type timeTick struct {
	x     float64
	label string
}

var timeSteps = []time.Duration{
	time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
	30 * 24 * time.Hour, 91 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// timeTicks returns up to 7 round UTC times in [lo, hi] (Unix seconds).
func timeTicks(lo, hi float64) []timeTick {
	span := time.Duration((hi - lo) * 1e9)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= 6 {
			step = s
			break
		}
	}
	sec := step.Seconds()
	var out []timeTick
	prevDay := ""
	for v := math.Ceil(lo/sec) * sec; v <= hi && len(out) < 20; v += sec {
		t := time.Unix(int64(v), 0).UTC()
		day := t.Format("Jan 2")
		var l string
		switch {
		case step >= 24*time.Hour && span > 300*24*time.Hour:
			l = t.Format("2006-01-02")
		case step >= 24*time.Hour:
			l = day
		case step < time.Minute:
			l = t.Format("15:04:05")
		case day != prevDay:
			l = t.Format("Jan 2 15:04")
		default:
			l = t.Format("15:04")
		}
		prevDay = day
		out = append(out, timeTick{v, l})
	}
	return out
}

// tickLabel writes an axis value with as many decimals as its step needs.
func tickLabel(v, step float64, u unit) string {
	switch u {
	case unitShare:
		v, step = v*100, step*100
	case unitSeconds:
		return durationLabel(v)
	}
	d := 0
	if step > 0 && step < 1 {
		d = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	if s == "-0" {
		s = "0"
	}
	switch u {
	case unitShare:
		return s + "%"
	case unitRate:
		return s + "/s"
	}
	return s
}

// valueLabel writes one value in its unit.
func valueLabel(v float64, u unit) string {
	if !finite(v) {
		return number(v)
	}
	switch u {
	case unitShare:
		return pct(v)
	case unitSeconds:
		return durationLabel(v)
	case unitRate:
		return number(v) + "/s"
	}
	return number(v)
}

func durationLabel(s float64) string {
	a := math.Abs(s)
	switch {
	case a == 0:
		return "0"
	case a < 1e-3:
		return trimFloat(s*1e6, 3) + "µs"
	case a < 1:
		return trimFloat(s*1e3, 3) + "ms"
	}
	return trimFloat(s, 3) + "s"
}

// number writes v with 4 significant digits; NaN as "—", infinities as ∞.
func number(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "−∞"
	}
	return trimFloat(v, 4)
}

func trimFloat(v float64, digits int) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e6 || a < 1e-4 {
		return strconv.FormatFloat(v, 'g', digits, 64)
	}
	// Significant digits as decimals.
	d := digits - 1 - int(math.Floor(math.Log10(a)))
	d = max(d, 0)
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func pct(v float64) string {
	if !finite(v) {
		return number(v)
	}
	return trimFloat(v*100, 3) + "%"
}

func edgeLabel(e float64) string { return number(e) }

// truncate shortens s to n runes with an ellipsis in the middle (names
// often share a prefix or a suffix).
func truncate(s string, n int) string {
	r := []rune(s)
	if n < 2 {
		n = 2
	}
	if len(r) <= n {
		return s
	}
	head := (n - 1 + 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// f1 writes a coordinate with one decimal.
func f1(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// esc escapes s for SVG text and attributes, replacing invalid UTF-8 and
// the control characters XML forbids with U+FFFD.
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return html.EscapeString(s)
}
