// Package egress guards the connections Kiln opens to addresses that users
// name (alert webhooks): a server reachable from outside must not become a
// way into the networks behind it (server-side request forgery). The check
// runs on the address actually dialled, after DNS, so a name that resolves
// to a private address — or is re-bound to one later — is refused too.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused is wrapped by the error of a refused connection.
var ErrRefused = errors.New("egress: destination not allowed")

// Policy says which destinations may be dialled.
type Policy struct {
	// AllowPrivate allows loopback, private (RFC 1918, RFC 4193),
	// link-local (cloud metadata services), CGNAT and unspecified
	// addresses.
	AllowPrivate bool
	// Allow lists prefixes allowed even when AllowPrivate is false.
	Allow []netip.Prefix
}

// cgnat is 100.64.0.0/10 (RFC 6598), shared address space.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Permits reports whether ip may be dialled.
func (p Policy) Permits(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, pre := range p.Allow {
		if pre.Contains(ip) {
			return true
		}
	}
	if p.AllowPrivate {
		return true
	}
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip))
}

// Control is a net.Dialer Control function that refuses what p does not
// permit.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRefused, address, err)
	}
	if !p.Permits(ap.Addr()) {
		return fmt.Errorf("%w: %s is a loopback, private or link-local address (allow it in the server's configuration)", ErrRefused, ap.Addr())
	}
	return nil
}

// Client returns an HTTP client whose connections p checks, that does not
// follow redirects (a redirect is another destination) and uses no proxy
// from the environment.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
	t := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true, MaxIdleConns: 32, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second}
	return &http.Client{Transport: t, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
