package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/egress"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/mlflowapi"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

// loopbackOnly reports whether addr (host:port) listens on loopback only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authOn decides whether access control is on: "auto" turns it on unless
// the server listens on loopback only; "off" is refused beyond loopback.
func authOn(c config.Config) (bool, error) {
	loop := loopbackOnly(c.Server.Addr)
	switch strings.ToLower(c.Access.Auth) {
	case "", "auto":
		return !loop, nil
	case "on", "true":
		return true, nil
	case "off", "false":
		if !loop {
			return false, fmt.Errorf("access control cannot be off on %s, which is reachable beyond loopback: listen on 127.0.0.1, or drop --auth off", c.Server.Addr)
		}
		return false, nil
	}
	return false, fmt.Errorf("--auth %q: use auto, on or off", c.Access.Auth)
}

// accessParts are access control's pieces: Auth is nil when it is off.
type accessParts struct {
	users *access.Store
	auth  *access.Authenticator
	audit *access.Audit
	// egress is where alert webhooks may go.
	egress               egress.Policy
	rateLimit, rateBurst int
	noPipelines          bool
	// oidc signs users in through an OpenID Connect provider, if
	// configured.
	oidc *access.OIDC
	// owners makes workspaces namespaces (with access control on).
	owners *access.Owners
}

// endpointModel is the deploy Manager's ModelName: an endpoint's models
// are those of its workspace (nil without access control: one workspace).
func (a *accessParts) endpointModel() func(ctx context.Context, endpoint, model string) (string, error) {
	if a.owners == nil {
		return nil
	}
	return a.owners.EndpointModel
}

func newAccess(ctx context.Context, cfg config.Config, db *store.DB, log *slog.Logger) (*accessParts, error) {
	on, err := authOn(cfg)
	if err != nil {
		return nil, err
	}
	a := &accessParts{users: access.NewStore(db), audit: access.NewAudit(db), rateLimit: cfg.Access.RateLimit, rateBurst: cfg.Access.RateBurst,
		noPipelines: cfg.Pipeline.Disabled}
	if a.egress, err = egressPolicy(cfg.Access, on); err != nil {
		return nil, err
	}
	if !on {
		log.Warn("access control is off: anyone who can reach " + cfg.Server.Addr + " may do anything (it is on by default beyond loopback; --auth on turns it on here)")
		if cfg.Access.OIDC.Issuer != "" {
			log.Warn("OIDC sign-in is configured but access control is off: it is not offered", "issuer", cfg.Access.OIDC.Issuer)
		}
		return a, nil
	}
	a.auth = access.NewAuthenticator(a.users, cfg.Access.CredentialCacheTTL)
	a.owners = access.NewOwners(db, cfg.Access.CredentialCacheTTL)
	if err := bootstrapAdmin(ctx, a.users, cfg.Access.AdminPassword, log); err != nil {
		return nil, err
	}
	if a.oidc, err = newOIDC(ctx, cfg, a.users, log); err != nil {
		return nil, err
	}
	return a, nil
}

// newOIDC builds OIDC sign-in when an issuer is configured. The
// provider's discovery document is fetched now; when the provider cannot
// be reached the server still starts (with a warning), and the first
// sign-in tries again.
func newOIDC(ctx context.Context, cfg config.Config, users *access.Store, log *slog.Logger) (*access.OIDC, error) {
	oc := cfg.Access.OIDC
	if oc.Issuer == "" {
		return nil, nil
	}
	redirect := oc.RedirectURL
	if redirect == "" {
		base := cfg.Pipeline.ExternalURL
		if base == "" {
			base = externalURL(cfg.Server.Addr)
			if tlsOn(cfg) {
				base = "https://" + strings.TrimPrefix(base, "http://")
			}
		}
		redirect = strings.TrimSuffix(base, "/") + api.Prefix + "/oidc/callback"
	}
	var scopes []string
	for _, s := range strings.Split(oc.Scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, s)
		}
	}
	o, err := access.NewOIDC(access.OIDCConfig{Issuer: oc.Issuer, ClientID: oc.ClientID, ClientSecret: oc.ClientSecret, RedirectURL: redirect,
		Scopes: scopes, UsernameClaim: oc.UsernameClaim, GroupsClaim: oc.GroupsClaim, AdminGroup: oc.AdminGroup,
		DefaultRole: oc.DefaultRole, Workspace: oc.Workspace, Logger: log}, users)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := o.Discover(dctx); err != nil {
		log.Warn("OIDC provider not reachable at start: sign-ins will try it again", "issuer", oc.Issuer, "err", errors.Unwrap(err))
	} else {
		log.Info("OIDC sign-in on", "issuer", oc.Issuer, "client_id", oc.ClientID, "redirect_url", redirect)
	}
	return o, nil
}

// bootstrapAdmin creates the "admin" user when there are no users yet,
// with the configured password or a generated one, logged this once.
func bootstrapAdmin(ctx context.Context, st *access.Store, password string, log *slog.Logger) error {
	us, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	if len(us) > 0 {
		return nil
	}
	generated := password == ""
	if generated {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b)
	}
	_, err = st.CreateUser(ctx, access.NewUser{Name: "admin", Password: password, Admin: true, DisplayName: "Server administrator"}, "kiln")
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil // another server made it first
	}
	if err != nil {
		return fmt.Errorf("create the admin user: %w", err)
	}
	if generated {
		log.Warn("created user admin with a generated password; it is shown only now: change it with kiln users passwd admin", "user", "admin", "password", password)
	} else {
		log.Info("created user admin with the configured password", "user", "admin")
	}
	return nil
}

// middleware wraps h with access control for the routes of policy.
func (a *accessParts) middleware(h http.Handler, trk *tracking.Store, log *slog.Logger) http.Handler {
	return access.Middleware(h, access.MiddlewareOptions{
		Policy: access.DefaultPolicy(), Auth: a.auth, Audit: a.audit, Logger: log,
		RunExperiment: func(ctx context.Context, runID string) (string, error) {
			r, err := trk.GetRun(ctx, runID)
			if err != nil {
				return "", err
			}
			return r.Info.ExperimentID, nil
		},
		WriteError: func(w http.ResponseWriter, r *http.Request, err error) { writeAccessError(w, r, log, err) },
		RateLimit:  float64(a.rateLimit), RateBurst: a.rateBurst,
		Owners: a.owners,
	})
}

// writeAccessError answers a refusal in the format of the route's
// protocol.
func writeAccessError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/2.0/") || strings.HasPrefix(p, "/ajax-api/") || p == "/get-artifact":
		mlflowapi.WriteError(w, r, log, err)
	case p == "/v2" || strings.HasPrefix(p, "/v2/"):
		// The Open Inference Protocol's error body.
		status := http.StatusForbidden
		if errors.Is(err, errdefs.ErrUnauthenticated) {
			status = http.StatusUnauthorized
		} else if errors.Is(err, errdefs.ErrInvalidArgument) {
			status = http.StatusBadRequest
		} else if errors.Is(err, errdefs.ErrRateLimited) {
			status = http.StatusTooManyRequests
		} else if errors.Is(err, errdefs.ErrNotFound) {
			status = http.StatusNotFound // an endpoint of another workspace
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, "{\"error\":%q}\n", errdefs.Message(err))
	case strings.HasPrefix(p, "/endpoints/") && strings.HasSuffix(p, "/invocations"):
		mlflowapi.WriteError(w, r, log, err) // MLflow's scoring server answers in MLflow's format
	default:
		api.WriteError(w, r, log, err)
	}
}

// egressPolicy is where alert webhooks may go: private addresses only
// while access control is off ("auto"), or as configured.
func egressPolicy(c config.Access, authOn bool) (egress.Policy, error) {
	var p egress.Policy
	switch strings.ToLower(c.PrivateWebhooks) {
	case "", "auto":
		p.AllowPrivate = !authOn
	case "allow":
		p.AllowPrivate = true
	case "deny":
	default:
		return p, fmt.Errorf("--private-webhooks %q: use auto, allow or deny", c.PrivateWebhooks)
	}
	for _, s := range strings.Split(c.WebhookAllow, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pre, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("--webhook-allow %q: not a CIDR prefix (10.0.0.0/8)", s)
		}
		p.Allow = append(p.Allow, pre)
	}
	return p, nil
}

// securityHeaders sets the headers a browser needs to keep the UI and
// the API's answers from being framed, sniffed or leaking referrers.
func securityHeaders(next http.Handler, tls bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func tlsOn(c config.Config) bool { return c.Server.TLSCert != "" || c.Server.TLSKey != "" }

// loadTLS reads the server's certificate and key; nil when none is set.
func loadTLS(c config.Server) (*tls.Config, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		return nil, nil
	}
	if c.TLSCert == "" || c.TLSKey == "" {
		return nil, errors.New("TLS needs both --tls-cert and --tls-key")
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// promotionGuard is what guards a promotion: the registry's alias guard
// and the deploy manager's route guard.
type promotionGuard interface {
	AllowAlias(ctx context.Context, model, alias string, version int64) error
	AllowRoute(ctx context.Context, endpoint, model string, version int64) error
}

// guards asks each guard in turn; the first refusal wins.
type guards []promotionGuard

func (gs guards) AllowAlias(ctx context.Context, model, alias string, version int64) error {
	for _, g := range gs {
		if err := g.AllowAlias(ctx, model, alias, version); err != nil {
			return err
		}
	}
	return nil
}

func (gs guards) AllowRoute(ctx context.Context, endpoint, model string, version int64) error {
	for _, g := range gs {
		if err := g.AllowRoute(ctx, endpoint, model, version); err != nil {
			return err
		}
	}
	return nil
}

// PipelineAccount is the service account local pipeline steps act as when
// access control is on: a maintainer of the default workspace (defining a
// pipeline, which runs commands, is a maintainer's already).
const PipelineAccount = "kiln-pipelines"

// pipelineToken makes sure the pipeline service account exists and mints
// this server's token for it (it expires in 30 days; a server restarted
// sooner makes another). It returns the step environment that carries it.
func (a *accessParts) pipelineToken(ctx context.Context, log *slog.Logger) ([]string, error) {
	if a.auth == nil || a.noPipelines {
		return nil, nil
	}
	if _, err := a.users.GetUser(ctx, PipelineAccount); errors.Is(err, errdefs.ErrNotFound) {
		if _, err := a.users.CreateUser(ctx, access.NewUser{Name: PipelineAccount, Kind: access.KindService, DisplayName: "Pipeline steps"}, "kiln"); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			return nil, err
		}
		if _, err := a.users.PutGrant(ctx, access.Grant{User: PipelineAccount, Workspace: access.DefaultWorkspace, Role: access.RoleMaintainer}, "kiln"); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	name := fmt.Sprintf("steps run by %s/%d", host, os.Getpid())
	t, secret, err := a.users.CreateToken(ctx, access.NewToken{User: PipelineAccount, Name: name, TTL: 30 * 24 * time.Hour}, "kiln")
	if err != nil {
		return nil, err
	}
	log.Debug("pipeline steps sign in as "+PipelineAccount, "token_id", t.ID)
	return []string{"KILN_TOKEN=" + secret, "MLFLOW_TRACKING_TOKEN=" + secret}, nil
}
