package mlflowapi

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseLogBatch parses a log-batch body of the usual shape — an object with
// run_id, metrics, params and tags, any other member skipped — without
// reflection. It reports false for anything it does not handle (syntax
// errors, wrong types, escaped strings it cannot decode), and the caller
// then uses the general decoder, which also produces the error messages.
// FuzzParseLogBatch checks that both agree.
func parseLogBatch(b []byte) (logBatchReq, bool) {
	p := &jsonScanner{b: b}
	var req logBatchReq
	ok := p.object(func(key string) bool {
		switch key {
		case "run_id":
			s, ok := p.str()
			req.RunID = s
			return ok
		case "metrics":
			return p.metrics(&req)
		case "params":
			kvs, ok := p.kvs()
			req.Params = kvs
			return ok
		case "tags":
			kvs, ok := p.kvs()
			req.Tags = kvs
			return ok
		}
		return p.skipUnknown(key, "run_id", "metrics", "params", "tags")
	})
	p.ws()
	return req, ok && p.i == len(p.b)
}

type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\n' || p.b[p.i] == '\t' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonScanner) eat(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// object calls member for each key, positioned at its value.
func (p *jsonScanner) object(member func(key string) bool) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok || !p.eat(':') || !member(key) {
			return false
		}
		if p.eat(',') {
			continue
		}
		return p.eat('}')
	}
}

// array calls elem for each element.
func (p *jsonScanner) array(elem func() bool) bool {
	if p.peek() == 'n' {
		return p.lit("null")
	}
	if !p.eat('[') {
		return false
	}
	if p.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.eat(',') {
			continue
		}
		return p.eat(']')
	}
}

func (p *jsonScanner) lit(s string) bool {
	p.ws()
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str reads a string; escaped strings are decoded by encoding/json.
func (p *jsonScanner) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	escaped, high := false, false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '\\':
			escaped = true
			p.i += 2
			continue
		case c >= 0x80:
			high = true
		case c == '"':
			p.i++
			if high && !utf8.Valid(p.b[start:p.i-1]) {
				return "", false // encoding/json substitutes U+FFFD: leave it to the general path
			}
			if !escaped {
				return string(p.b[start : p.i-1]), true
			}
			var s string
			if err := json.Unmarshal(p.b[start-1:p.i], &s); err != nil {
				return "", false
			}
			return s, true
		case c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

// number returns the text of a JSON number, following JSON's grammar
// exactly: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonScanner) number() (string, bool) {
	p.ws()
	b, i := p.b, p.i
	start := i
	digits := func() bool {
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > d
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return "", false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return "", false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return "", false
		}
	}
	p.i = i
	return string(b[start:i]), true
}

func (p *jsonScanner) float() (float64, bool) {
	if p.peek() == '"' {
		s, ok := p.str()
		if !ok {
			return 0, false
		}
		switch s {
		case "NaN", "nan":
			return math.NaN(), true
		case "Infinity", "inf":
			return math.Inf(1), true
		case "-Infinity", "-inf":
			return math.Inf(-1), true
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	s, ok := p.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func (p *jsonScanner) int() (int64, bool) {
	var s string
	var ok bool
	if p.peek() == '"' {
		s, ok = p.str()
	} else {
		s, ok = p.number()
	}
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil // non-integers take the general path
}

// skipUnknown skips the value of a member that is not one of fields. A key
// that matches a field only case-insensitively is not handled here:
// encoding/json would bind it, so the general path must.
func (p *jsonScanner) skipUnknown(key string, fields ...string) bool {
	for _, f := range fields {
		if strings.EqualFold(key, f) {
			return false
		}
	}
	return p.skip()
}

// skip skips any JSON value.
func (p *jsonScanner) skip() bool {
	switch p.peek() {
	case '{':
		return p.object(func(string) bool { return p.skip() })
	case '[':
		return p.array(p.skip)
	case '"':
		_, ok := p.str()
		return ok
	case 't':
		return p.lit("true")
	case 'f':
		return p.lit("false")
	case 'n':
		return p.lit("null")
	}
	s, ok := p.number()
	if !ok {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// metricVals backs the pointer fields of a batch's metricReqs, so that a
// batch costs a few allocations rather than three per metric.
type metricVals struct {
	key                   string
	val                   Float64
	ts                    Int64
	hasKey, hasVal, hasTS bool
}

func (p *jsonScanner) metrics(req *logBatchReq) bool {
	req.Metrics = nil // a repeated member replaces the earlier one, as in encoding/json
	var vals []metricVals
	ok := p.array(func() bool {
		var v metricVals
		var m metricReq
		ok := p.object(func(key string) bool {
			var ok bool
			switch key {
			case "key":
				v.key, ok = p.str()
				v.hasKey = true
			case "value":
				var f float64
				f, ok = p.float()
				v.val, v.hasVal = Float64(f), true
			case "timestamp":
				var n int64
				n, ok = p.int()
				v.ts, v.hasTS = Int64(n), true
			case "step":
				var n int64
				n, ok = p.int()
				m.Step = Int64(n)
			case "model_id":
				m.ModelID, ok = p.str()
			case "dataset_name":
				m.DatasetName, ok = p.str()
			case "dataset_digest":
				m.DatasetDigest, ok = p.str()
			default:
				ok = p.skipUnknown(key, "key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest")
			}
			return ok
		})
		vals = append(vals, v)
		req.Metrics = append(req.Metrics, m)
		return ok
	})
	// Pointers into vals are taken once it has stopped growing.
	for i := range req.Metrics {
		m, v := &req.Metrics[i], &vals[i]
		if v.hasKey {
			m.Key = &v.key
		}
		if v.hasVal {
			m.Value = &v.val
		}
		if v.hasTS {
			m.Timestamp = &v.ts
		}
	}
	return ok
}

func (p *jsonScanner) kvs() ([]kvReq, bool) {
	type kv struct{ k, v string }
	var vals []kv
	var has [][2]bool
	ok := p.array(func() bool {
		var e kv
		var h [2]bool
		ok := p.object(func(key string) bool {
			var ok bool
			switch key {
			case "key":
				e.k, ok = p.str()
				h[0] = true
			case "value":
				e.v, ok = p.str()
				h[1] = true
			default:
				ok = p.skipUnknown(key, "key", "value")
			}
			return ok
		})
		vals = append(vals, e)
		has = append(has, h)
		return ok
	})
	if !ok || vals == nil {
		return nil, ok
	}
	out := make([]kvReq, len(vals))
	for i := range vals {
		if has[i][0] {
			out[i].Key = &vals[i].k
		}
		if has[i][1] {
			out[i].Value = &vals[i].v
		}
	}
	return out, true
}
