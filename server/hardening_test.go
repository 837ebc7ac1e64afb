package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/config"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiln test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSAndSecurityHeaders(t *testing.T) {
	cfg := testConfig(t)
	certFile, keyFile, pool := selfSigned(t)
	cfg.Server.TLSCert, cfg.Server.TLSKey = certFile, keyFile
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + ln.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("https /health: %d %v %v", resp.StatusCode, resp.TLS, resp.Header)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q", h, got)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
	// Plain HTTP to the TLS port gets nowhere.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String() + "/health"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP was served")
	}
	// Half a TLS configuration is refused at start.
	bad := testConfig(t)
	bad.Server.TLSCert = certFile
	if _, err := New(context.Background(), bad, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("cert without key: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Access.Auth, cfg.Access.AdminPassword = "on", "admin-password-1"
	cfg.Access.RateLimit, cfg.Access.RateBurst = 1, 3
	cfg.Pipeline.Disabled = true
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	admin := "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtMQ=="
	codes := []int{}
	for i := 0; i < 5; i++ {
		codes = append(codes, call(t, h, admin, "GET", "/api/2.0/mlflow/experiments/search", "", nil).Code)
	}
	if codes[0] != 200 || codes[2] != 200 || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("codes %v: want a burst of 3, then 429", codes)
	}
	rec := call(t, h, admin, "GET", "/api/2.0/mlflow/experiments/search", "", nil)
	if rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("429: %v %s", rec.Header(), rec.Body)
	}
	if rec := call(t, h, admin, "GET", "/api/v1/whoami", "", nil); rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "RATE_LIMITED") {
		t.Errorf("api 429: %d %s", rec.Code, rec.Body)
	}
	// Probes are never limited (they carry no identity).
	if rec := call(t, h, "", "GET", "/health", "", nil); rec.Code != 200 {
		t.Errorf("/health: %d", rec.Code)
	}
}

func TestEgressPolicy(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	ten := netip.MustParseAddr("10.1.2.3")
	pub := netip.MustParseAddr("8.8.8.8")
	for _, tc := range []struct {
		mode, allow string
		authOn      bool
		lo, ten     bool
		err         bool
	}{
		{"auto", "", false, true, true, false},
		{"auto", "", true, false, false, false},
		{"", "10.0.0.0/8", true, false, true, false},
		{"allow", "", true, true, true, false},
		{"deny", "", false, false, false, false},
		{"sometimes", "", false, false, false, true},
		{"auto", "10.0.0.0", true, false, false, true},
	} {
		p, err := egressPolicy(config.Access{PrivateWebhooks: tc.mode, WebhookAllow: tc.allow}, tc.authOn)
		if (err != nil) != tc.err {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		if err != nil {
			continue
		}
		if p.Permits(lo) != tc.lo || p.Permits(ten) != tc.ten || !p.Permits(pub) {
			t.Errorf("%+v: loopback %v, 10/8 %v, public %v", tc, p.Permits(lo), p.Permits(ten), p.Permits(pub))
		}
	}
}
