package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Resource is Azure Storage's Microsoft Entra resource.
const Resource = "https://storage.azure.com"

// Credential gets Microsoft Entra tokens for Azure Storage the ways
// DefaultAzureCredential does on a server, trying in order:
//
//  1. a client secret: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET;
//  2. workload identity (AKS): AZURE_FEDERATED_TOKEN_FILE with
//     AZURE_TENANT_ID and AZURE_CLIENT_ID;
//  3. managed identity: IDENTITY_ENDPOINT with IDENTITY_HEADER (App
//     Service, Functions, Container Apps), else the instance metadata
//     service (VMs, VM scale sets, AKS nodes); AZURE_CLIENT_ID picks a
//     user-assigned identity;
//  4. the Azure CLI's signed-in account (`az account get-access-token`),
//     when managed identity is not there.
//
// AZURE_AUTHORITY_HOST changes the login host (sovereign clouds). The
// SDK's bearer-token policy caches tokens and asks again before they end.
type Credential struct {
	client *http.Client
	imds   string // the instance metadata service's token URL
	az     string // the Azure CLI command
	mu     sync.Mutex
	tried  string // the source that worked, once one has
}

// NewCredential returns a Credential.
func NewCredential() *Credential {
	return &Credential{client: &http.Client{Timeout: 30 * time.Second},
		imds: "http://169.254.169.254/metadata/identity/oauth2/token", az: "az"}
}

var _ azcore.TokenCredential = (*Credential)(nil)

// GetToken implements azcore.TokenCredential.
func (c *Credential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tenant, client := os.Getenv("AZURE_TENANT_ID"), os.Getenv("AZURE_CLIENT_ID")
	switch {
	case tenant != "" && client != "" && os.Getenv("AZURE_CLIENT_SECRET") != "":
		return c.entra(ctx, tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {client},
			"client_secret": {os.Getenv("AZURE_CLIENT_SECRET")}})
	case tenant != "" && client != "" && os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "":
		// The projected token is rotated on disk: read it every time.
		raw, err := os.ReadFile(os.Getenv("AZURE_FEDERATED_TOKEN_FILE"))
		if err != nil {
			return azcore.AccessToken{}, fmt.Errorf("azure: workload identity: %w", err)
		}
		return c.entra(ctx, tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {client},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {strings.TrimSpace(string(raw))}})
	case os.Getenv("IDENTITY_ENDPOINT") != "" && os.Getenv("IDENTITY_HEADER") != "":
		q := url.Values{"resource": {Resource}, "api-version": {"2019-08-01"}}
		if client != "" {
			q.Set("client_id", client)
		}
		return c.managed(ctx, os.Getenv("IDENTITY_ENDPOINT")+"?"+q.Encode(), http.Header{"X-Identity-Header": {os.Getenv("IDENTITY_HEADER")}})
	}
	c.mu.Lock()
	tried := c.tried
	c.mu.Unlock()
	if tried != "cli" {
		q := url.Values{"resource": {Resource}, "api-version": {"2018-02-01"}}
		if client != "" {
			q.Set("client_id", client)
		}
		// The metadata service answers at once where it exists; elsewhere
		// the connection fails or hangs, so it gets a short time.
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		tok, err := c.managed(mctx, c.imds+"?"+q.Encode(), http.Header{"Metadata": {"true"}})
		cancel()
		if err == nil {
			c.remember("imds")
			return tok, nil
		}
		if tried == "imds" {
			return tok, err
		}
		cli, cerr := c.cli(ctx)
		if cerr == nil {
			c.remember("cli")
			return cli, nil
		}
		return azcore.AccessToken{}, fmt.Errorf("azure: no credential: set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING, or a Microsoft Entra identity (AZURE_TENANT_ID/AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, a managed identity, or az login); managed identity: %v; Azure CLI: %v", err, cerr)
	}
	return c.cli(ctx)
}

func (c *Credential) remember(s string) {
	c.mu.Lock()
	c.tried = s
	c.mu.Unlock()
}

// entra asks Microsoft Entra's token endpoint of tenant.
func (c *Credential) entra(ctx context.Context, tenant string, form url.Values) (azcore.AccessToken, error) {
	host := strings.TrimRight(os.Getenv("AZURE_AUTHORITY_HOST"), "/")
	if host == "" {
		host = "https://login.microsoftonline.com"
	}
	form.Set("scope", Resource+"/.default")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, host+"/"+url.PathEscape(tenant)+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.token(req)
}

func (c *Credential) managed(ctx context.Context, u string, h http.Header) (azcore.AccessToken, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return c.token(req)
}

// token sends req and reads an OAuth token answer: access_token with
// expires_in (seconds from now) or expires_on (Unix seconds, as a string
// or number).
func (c *Credential) token(req *http.Request) (azcore.AccessToken, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return parseToken(req.URL.Host, resp.StatusCode, raw, time.Now())
}

// parseToken reads an OAuth token answer: access_token with expires_in
// (seconds from now) or expires_on (Unix seconds, as a string or number);
// without either the token is taken to last an hour.
func parseToken(host string, status int, raw []byte, now time.Time) (azcore.AccessToken, error) {
	var body struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		ExpiresOn   json.RawMessage `json:"expires_on"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || status != http.StatusOK || body.AccessToken == "" {
		msg := body.Description
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		return azcore.AccessToken{}, fmt.Errorf("azure: token from %s: %d %s: %s", host, status, http.StatusText(status), msg)
	}
	exp := now.Add(time.Hour)
	if n, ok := number(body.ExpiresIn); ok && n > 0 && n < 1<<31 {
		exp = now.Add(time.Duration(n) * time.Second)
	} else if n, ok := number(body.ExpiresOn); ok && n > 0 && n < 1<<40 {
		exp = time.Unix(n, 0)
	}
	if !exp.After(now) {
		return azcore.AccessToken{}, fmt.Errorf("azure: token from %s ended before it was given (expires_on %s): check this machine's clock", host, exp.UTC().Format(time.RFC3339))
	}
	return azcore.AccessToken{Token: body.AccessToken, ExpiresOn: exp}, nil
}

func number(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && s != ""
}

// cli asks the Azure CLI for a token of its signed-in account.
func (c *Credential) cli(ctx context.Context) (azcore.AccessToken, error) {
	if _, err := exec.LookPath(c.az); err != nil {
		return azcore.AccessToken{}, errors.New("the az command is not installed")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.az, "account", "get-access-token", "--resource", Resource, "--output", "json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return azcore.AccessToken{}, fmt.Errorf("az account get-access-token: %s", strings.TrimSpace(string(ee.Stderr)))
		}
		return azcore.AccessToken{}, fmt.Errorf("az account get-access-token: %w", err)
	}
	var body struct {
		AccessToken string `json:"accessToken"`
		ExpiresOn   int64  `json:"expires_on"`
	}
	if err := json.Unmarshal(out, &body); err != nil || body.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("az account get-access-token: unreadable answer (%v)", err)
	}
	exp := time.Unix(body.ExpiresOn, 0)
	if body.ExpiresOn == 0 {
		exp = time.Now().Add(30 * time.Minute)
	}
	return azcore.AccessToken{Token: body.AccessToken, ExpiresOn: exp}, nil
}
