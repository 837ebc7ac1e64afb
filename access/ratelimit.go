package access

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds how many identities' limiters are kept; past it the
// idle ones are dropped.
const maxLimiters = 10000

// limiters are token buckets, one per identity.
type limiters struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[string]*limiter
}

type limiter struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiters(perSecond float64, burst int) *limiters {
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &limiters{r: rate.Limit(perSecond), burst: burst, m: map[string]*limiter{}}
}

// limitKey is what a principal's requests are counted by: its token, or
// its user.
func (p *Principal) limitKey() string {
	if p.TokenID != "" {
		return "token " + p.TokenID
	}
	return "user " + p.User
}

// allow takes one request from p's bucket; when it is empty it reports
// how long until the next one fits.
func (ls *limiters) allow(p *Principal) (time.Duration, bool) {
	now := time.Now()
	key := p.limitKey()
	ls.mu.Lock()
	l := ls.m[key]
	if l == nil {
		if len(ls.m) >= maxLimiters {
			for k, v := range ls.m {
				if now.Sub(v.seen) > time.Minute {
					delete(ls.m, k)
				}
			}
		}
		l = &limiter{l: rate.NewLimiter(ls.r, ls.burst)}
		ls.m[key] = l
	}
	l.seen = now
	ls.mu.Unlock()
	res := l.l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}
