package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPermits(t *testing.T) {
	strict := Policy{}
	open := Policy{AllowPrivate: true}
	listed := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	for _, tc := range []struct {
		ip                   string
		strict, open, listed bool
	}{
		{"8.8.8.8", true, true, true},
		{"2001:4860:4860::8888", true, true, true},
		{"127.0.0.1", false, true, false},
		{"::1", false, true, false},
		{"10.0.0.5", false, true, false},
		{"10.20.3.4", false, true, true},
		{"172.16.0.1", false, true, false},
		{"192.168.1.1", false, true, false},
		{"169.254.169.254", false, true, false}, // cloud metadata
		{"fe80::1", false, true, false},
		{"fd00::1", false, true, false},
		{"100.64.0.1", false, true, false},
		{"0.0.0.0", false, true, false},
		{"::ffff:127.0.0.1", false, true, false},
		{"224.0.0.1", false, true, false},
	} {
		ip := netip.MustParseAddr(tc.ip)
		if got := strict.Permits(ip); got != tc.strict {
			t.Errorf("strict %s: %v", tc.ip, got)
		}
		if got := open.Permits(ip); got != tc.open {
			t.Errorf("open %s: %v", tc.ip, got)
		}
		if got := listed.Permits(ip); got != tc.listed {
			t.Errorf("listed %s: %v", tc.ip, got)
		}
	}
}

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	// A server on loopback: refused by default, even through a name.
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		_, err := Policy{}.Client(5 * time.Second).Get(u)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	c := Policy{AllowPrivate: true}.Client(5 * time.Second)
	resp, err := c.Get(srv.URL)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("allowed: %v %v", resp, err)
	}
	resp.Body.Close()
	// Redirects are not followed.
	resp, err = c.Get(srv.URL + "/redirect")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	resp.Body.Close()
}
