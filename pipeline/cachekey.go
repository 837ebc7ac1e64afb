package pipeline

import "time"

// CacheKeyInput is what a step's cache key is computed from.
type CacheKeyInput struct {
	Image      string
	Command    []string
	Env        map[string]string
	WorkingDir string
	// Inputs: input name -> content digest (datasets: the version's
	// digest; artifacts: digest of content; values: the value itself).
	Inputs  map[string]string
	Outputs []Output
	Version string
}

// Key returns the cache key: "v1:" + hex SHA-256 … (see contracts).
func (c CacheKeyInput) Key() string { return "" }

// Delay is the wait before the retry after failed attempt n (1, 2, …).
func (r *RetryPolicy) Delay(failedAttempt int) time.Duration { return 0 }

// Attempts is the most attempts a step gets: 1 + Limit.
func (r *RetryPolicy) Attempts() int {
	if r == nil {
		return 1
	}
	return 1 + r.Limit
}
