// Package pii finds personal data in text — email addresses, phone
// numbers, payment card numbers (Luhn-checked), national identity numbers
// (US SSN, UK NINO) and IP addresses, plus detectors of one's own — and
// masks it. A Scanner is configured once and is safe for concurrent use;
// reports count findings by kind and never carry the matched text.
package pii

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Kind names what a finding is.
type Kind string

// The built-in kinds, in the order they win an overlap.
const (
	Email Kind = "email"
	Card  Kind = "card"
	SSN   Kind = "ssn"
	NINO  Kind = "nino"
	IPv4  Kind = "ipv4"
	IPv6  Kind = "ipv6"
	Phone Kind = "phone"
)

// Kinds are the built-in kinds, in priority order.
var Kinds = []Kind{Email, Card, SSN, NINO, IPv4, IPv6, Phone}

// Finding is one match: s[Start:End] is of Kind.
type Finding struct {
	Kind  Kind `json:"kind"`
	Start int  `json:"start"`
	End   int  `json:"end"`
}

// Config chooses the detectors. Zero Kinds means every built-in kind;
// Custom adds detectors by name (a regular expression each), which rank
// after the built-in ones.
type Config struct {
	Kinds  []Kind            `json:"kinds,omitempty" yaml:"kinds,omitempty"`
	Custom map[string]string `json:"custom,omitempty" yaml:"custom,omitempty"`
}

type detector struct {
	kind Kind
	re   *regexp.Regexp
	// ok checks a candidate match (checksums, ranges); nil accepts it.
	ok func(m string) bool
	// bounded: the match must not touch a letter or digit on either side.
	bounded bool
	// need, if set, is a necessary condition on the whole text for any
	// match to pass ok (an "@" for an email, 13 digits for a card): a
	// text without it skips the expression.
	need func(t *textStats) bool
}

// textStats are what the detectors' need conditions look at, counted in
// one pass.
type textStats struct {
	digits, colons     int
	at, dot, dash, cap bool
}

func statsOf(s string) textStats {
	var t textStats
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			t.digits++
		case c >= 'A' && c <= 'Z':
			t.cap = true
		case c == ':':
			t.colons++
		case c == '@':
			t.at = true
		case c == '.':
			t.dot = true
		case c == '-':
			t.dash = true
		}
	}
	return t
}

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}`)
	cardRE  = regexp.MustCompile(`\d(?:[ -]?\d){12,18}`)
	ssnRE   = regexp.MustCompile(`\d{3}-\d{2}-\d{4}`)
	ninoRE  = regexp.MustCompile(`[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]`)
	ipv4RE  = regexp.MustCompile(`\d{1,3}(?:\.\d{1,3}){3}`)
	ipv6RE  = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\.\d{1,3}){3})?`)
	phoneRE = regexp.MustCompile(`\+[1-9]\d{7,14}|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?`)
)

func builtin(k Kind) detector {
	switch k {
	case Email:
		return detector{kind: Email, re: emailRE, need: func(t *textStats) bool { return t.at && t.dot }}
	case Card:
		return detector{kind: Card, re: cardRE, ok: luhnCard, bounded: true, need: func(t *textStats) bool { return t.digits >= 13 }}
	case SSN:
		return detector{kind: SSN, re: ssnRE, ok: validSSN, bounded: true, need: func(t *textStats) bool { return t.digits >= 9 && t.dash }}
	case NINO:
		return detector{kind: NINO, re: ninoRE, ok: validNINO, bounded: true, need: func(t *textStats) bool { return t.digits >= 6 && t.cap }}
	case IPv4:
		return detector{kind: IPv4, re: ipv4RE, ok: func(m string) bool { a, err := netip.ParseAddr(m); return err == nil && a.Is4() }, bounded: true,
			need: func(t *textStats) bool { return t.digits >= 4 && t.dot }}
	case IPv6:
		return detector{kind: IPv6, re: ipv6RE, ok: func(m string) bool {
			a, err := netip.ParseAddr(m)
			return err == nil && a.Is6() && strings.Count(m, ":") >= 2
		}, bounded: true, need: func(t *textStats) bool { return t.colons >= 2 }}
	case Phone:
		return detector{kind: Phone, re: phoneRE, ok: func(m string) bool { n := digits(m); return n >= 8 && n <= 15 }, bounded: true,
			need: func(t *textStats) bool { return t.digits >= 8 }}
	}
	return detector{}
}

// Scanner finds and masks personal data.
type Scanner struct {
	dets []detector
	// noPrefilter runs every expression on every text (the tests compare).
	noPrefilter bool
}

// New builds a Scanner; an unknown kind or a bad custom expression is an
// invalid-argument error naming it.
func New(c Config) (*Scanner, error) {
	kinds := c.Kinds
	if len(kinds) == 0 {
		kinds = Kinds
	}
	s := &Scanner{}
	for _, k := range Kinds { // priority order, whatever the order given
		if slices.Contains(kinds, k) {
			s.dets = append(s.dets, builtin(k))
		}
	}
	for _, k := range kinds {
		if !slices.Contains(Kinds, k) {
			return nil, errdefs.Invalid("unknown PII kind %q (want one of %s)", k, joinKinds(Kinds))
		}
	}
	names := make([]string, 0, len(c.Custom))
	for n := range c.Custom {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "" || slices.Contains(Kinds, Kind(n)) {
			return nil, errdefs.Invalid("custom PII detector %q: the name must be new and not empty", n)
		}
		re, err := regexp.Compile(c.Custom[n])
		if err != nil {
			return nil, errdefs.Invalid("custom PII detector %q: %v", n, err)
		}
		s.dets = append(s.dets, detector{kind: Kind(n), re: re})
	}
	return s, nil
}

// Default is a Scanner of every built-in kind.
var Default, _ = New(Config{})

// Scan returns the findings in s, ordered by position and not
// overlapping: where two detectors match overlapping text, the one of
// higher priority (Kinds' order, then custom ones by name) wins.
func (sc *Scanner) Scan(s string) []Finding {
	var out []Finding
	taken := func(a, b int) bool {
		for _, f := range out {
			if a < f.End && f.Start < b {
				return true
			}
		}
		return false
	}
	st := statsOf(s)
	for _, d := range sc.dets {
		if d.need != nil && !sc.noPrefilter && !d.need(&st) {
			continue
		}
		for _, loc := range d.re.FindAllStringIndex(s, -1) {
			a, b := loc[0], loc[1]
			if a == b || (d.bounded && !bounded(s, a, b)) || (d.ok != nil && !d.ok(s[a:b])) || taken(a, b) {
				continue
			}
			out = append(out, Finding{Kind: d.kind, Start: a, End: b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// Mask replaces every finding with its kind in capitals and brackets
// ("[EMAIL]", "[CARD]", "[IPV4]" …); a card keeps its last four digits
// ("[CARD ••••4242]"), as receipts show them.
func (sc *Scanner) Mask(s string) string {
	fs := sc.Scan(s)
	if len(fs) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, f := range fs {
		b.WriteString(s[last:f.Start])
		b.WriteString(Placeholder(f.Kind, s[f.Start:f.End]))
		last = f.End
	}
	b.WriteString(s[last:])
	return b.String()
}

// Placeholder is what Mask writes in place of match m of kind k.
func Placeholder(k Kind, m string) string {
	if k == Card {
		var d []byte
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				d = append(d, m[i])
			}
		}
		if len(d) >= 4 {
			return "[CARD ••••" + string(d[len(d)-4:]) + "]"
		}
	}
	return "[" + strings.ToUpper(string(k)) + "]"
}

// Counts are findings per kind.
type Counts map[Kind]int

// Count adds the findings in s to c and reports whether there were any.
func (sc *Scanner) Count(c Counts, s string) bool {
	fs := sc.Scan(s)
	for _, f := range fs {
		c[f.Kind]++
	}
	return len(fs) > 0
}

// ColumnReport counts findings per column of a table, never holding the
// values themselves.
type ColumnReport struct {
	Rows    int64             `json:"rows"`
	Columns map[string]Counts `json:"columns"`
	Values  map[string]int64  `json:"values_with_pii"` // per column: cells with at least one finding
	scanner *Scanner
}

// NewColumnReport starts a report scanned with sc (Default when nil).
func NewColumnReport(sc *Scanner) *ColumnReport {
	if sc == nil {
		sc = Default
	}
	return &ColumnReport{Columns: map[string]Counts{}, Values: map[string]int64{}, scanner: sc}
}

// AddRow scans one row (column → cell text).
func (r *ColumnReport) AddRow(row map[string]string) {
	r.Rows++
	for col, v := range row {
		r.Cell(col, v)
	}
}

// Cell scans one cell of column (rows are counted by the caller, in Rows,
// or by AddRow).
func (r *ColumnReport) Cell(col, v string) {
	if v == "" {
		return
	}
	c := r.Columns[col]
	if c == nil {
		c = Counts{}
	}
	if r.scanner.Count(c, v) {
		r.Columns[col] = c
		r.Values[col]++
	}
}

// bounded: s[a:b] touches no letter or digit, nor a digit behind a
// '-' or '.' (so a part of a longer number is not taken for one).
func bounded(s string, a, b int) bool {
	if (a > 0 && alnum(s[a-1])) || (b < len(s) && alnum(s[b])) {
		return false
	}
	if a > 1 && (s[a-1] == '-' || s[a-1] == '.') && isDigit(s[a-2]) {
		return false
	}
	if b+1 < len(s) && (s[b] == '-' || s[b] == '.') && isDigit(s[b+1]) {
		return false
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// luhnCard: 13 to 19 digits whose Luhn checksum holds.
func luhnCard(m string) bool {
	var d []int
	for i := 0; i < len(m); i++ {
		if m[i] >= '0' && m[i] <= '9' {
			d = append(d, int(m[i]-'0'))
		}
	}
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	return Luhn(d)
}

// Luhn reports whether the digits' Luhn checksum holds.
func Luhn(d []int) bool {
	sum := 0
	for i := range d {
		v := d[len(d)-1-i]
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// validSSN: area not 000, 666 or 900–999; group not 00; serial not 0000.
func validSSN(m string) bool {
	area, group, serial := m[0:3], m[4:6], m[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// validNINO rejects the prefixes HMRC never issues.
func validNINO(m string) bool {
	switch m[:2] {
	case "BG", "GB", "NK", "KN", "TN", "NT", "ZZ":
		return false
	}
	return true
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// String writes a finding for logs, without the matched text.
func (f Finding) String() string { return fmt.Sprintf("%s[%d:%d]", f.Kind, f.Start, f.End) }
