package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"sort"
	"time"
)

// Retry defaults (KFP's set_retry).
const (
	DefaultBackoffFactor = 2.0
	DefaultMaxBackoff    = time.Hour
	MaxRetryLimit        = 100
)

// cacheKeySchema prefixes the hashed document; bump it when the key's
// content changes, so old entries stop matching.
const cacheKeySchema = "v1:"

// CacheKeyInput is what a step's cache key is computed from: the resolved
// step (templates expanded) and the content of its inputs.
type CacheKeyInput struct {
	Image      string
	Command    []string
	Env        map[string]string
	WorkingDir string
	// Inputs: input name -> content digest (datasets: the version's
	// digest; artifacts: digest of content; values: the value itself).
	Inputs map[string]string
	// Outputs are the step's declared outputs (their order does not
	// matter; an empty type is artifact).
	Outputs []Output
	// Version is the step's CachePolicy.Version.
	Version string
}

// cacheKeyDoc is the canonical form that is hashed: fixed field order,
// maps (sorted by encoding/json), nil and empty alike, outputs sorted.
type cacheKeyDoc struct {
	Image      string            `json:"image"`
	Command    []string          `json:"command"`
	Env        map[string]string `json:"env"`
	WorkingDir string            `json:"working_dir"`
	Inputs     map[string]string `json:"inputs"`
	Outputs    []cacheKeyOutput  `json:"outputs"`
	Version    string            `json:"version"`
}

type cacheKeyOutput struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Path string `json:"path"`
}

// Key returns the cache key: the hex SHA-256 of "v1:" followed by the
// canonical JSON of c (keys sorted, nil and empty maps and lists alike,
// outputs by name, an empty output type as artifact). Equal inputs give
// equal keys across processes and versions of Kiln with the same schema.
func (c CacheKeyInput) Key() string {
	d := cacheKeyDoc{
		Image:      c.Image,
		Command:    c.Command,
		Env:        c.Env,
		WorkingDir: c.WorkingDir,
		Inputs:     c.Inputs,
		Outputs:    make([]cacheKeyOutput, 0, len(c.Outputs)),
		Version:    c.Version,
	}
	if d.Command == nil {
		d.Command = []string{}
	}
	if d.Env == nil {
		d.Env = map[string]string{}
	}
	if d.Inputs == nil {
		d.Inputs = map[string]string{}
	}
	for _, o := range c.Outputs {
		t := o.Type
		if t == "" {
			t = OutputArtifact
		}
		d.Outputs = append(d.Outputs, cacheKeyOutput{Name: o.Name, Type: t, Path: o.Path})
	}
	sort.Slice(d.Outputs, func(i, j int) bool {
		a, b := d.Outputs[i], d.Outputs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Path < b.Path
	})
	b, err := json.Marshal(d)
	if err != nil { // strings, maps of strings and slices: cannot fail
		panic("pipeline: cache key: " + err.Error())
	}
	h := sha256.New()
	h.Write([]byte(cacheKeySchema))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Delay is the wait before the attempt after failed attempt n (1, 2, …):
// Backoff × Factor^(n-1), at most MaxBackoff. A zero Factor is 2 and a
// zero MaxBackoff is 1h; n below 1 counts as 1. A nil policy waits 0.
func (r *RetryPolicy) Delay(failedAttempt int) time.Duration {
	if r == nil || r.Backoff <= 0 {
		return 0
	}
	factor := r.Factor
	if factor == 0 {
		factor = DefaultBackoffFactor
	}
	if factor < 1 || math.IsNaN(factor) {
		factor = 1
	}
	maxB := r.MaxBackoff.D()
	if maxB <= 0 {
		maxB = DefaultMaxBackoff
	}
	n := failedAttempt
	if n < 1 {
		n = 1
	}
	d := float64(r.Backoff.D()) * math.Pow(factor, float64(n-1))
	if d >= float64(maxB) || math.IsInf(d, 0) || math.IsNaN(d) {
		return maxB
	}
	return time.Duration(d)
}

// Attempts is the most attempts a step gets: 1 + Limit (a nil policy,
// or a negative limit: 1).
func (r *RetryPolicy) Attempts() int {
	if r == nil || r.Limit < 0 {
		return 1
	}
	return 1 + r.Limit
}
