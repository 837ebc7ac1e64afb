package azure

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"gocloud.dev/gcerrors"
)

// The driver against Azurite is tested by package blob (its bucket
// matrix); these are the token sources, against a server that answers as
// Microsoft Entra and the managed-identity endpoints do.

func clearAzureEnv(t *testing.T) {
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
		"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_AUTHORITY_HOST"} {
		t.Setenv(k, "")
	}
}

type tokenServer struct {
	*httptest.Server
	got   []*http.Request
	forms []url.Values
}

func newTokenServer(t *testing.T, answer string) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		ts.got = append(ts.got, r)
		ts.forms = append(ts.forms, r.PostForm)
		if strings.Contains(answer, "invalid_client") {
			w.WriteHeader(http.StatusUnauthorized)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestClientSecret(t *testing.T) {
	clearAzureEnv(t)
	ts := newTokenServer(t, `{"token_type":"Bearer","expires_in":3599,"access_token":"tok-secret"}`)
	t.Setenv("AZURE_AUTHORITY_HOST", ts.URL)
	t.Setenv("AZURE_TENANT_ID", "tenant-1")
	t.Setenv("AZURE_CLIENT_ID", "app-1")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	tok, err := NewCredential().GetToken(context.Background(), policy.TokenRequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token != "tok-secret" || time.Until(tok.ExpiresOn) < 59*time.Minute {
		t.Errorf("token %+v", tok)
	}
	r, f := ts.got[0], ts.forms[0]
	if r.URL.Path != "/tenant-1/oauth2/v2.0/token" || f.Get("grant_type") != "client_credentials" || f.Get("client_id") != "app-1" ||
		f.Get("client_secret") != "s3cret" || f.Get("scope") != "https://storage.azure.com/.default" {
		t.Errorf("request %s %v", r.URL.Path, f)
	}
}

func TestWorkloadIdentityAndErrors(t *testing.T) {
	clearAzureEnv(t)
	ts := newTokenServer(t, `{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range."}`)
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("eyJhbGciOi.projected.token\n"), 0o600)
	t.Setenv("AZURE_AUTHORITY_HOST", ts.URL)
	t.Setenv("AZURE_TENANT_ID", "tenant-2")
	t.Setenv("AZURE_CLIENT_ID", "app-2")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	_, err := NewCredential().GetToken(context.Background(), policy.TokenRequestOptions{})
	if err == nil || !strings.Contains(err.Error(), "AADSTS700024") {
		t.Fatalf("err = %v, want Entra's description", err)
	}
	f := ts.forms[0]
	if f.Get("client_assertion") != "eyJhbGciOi.projected.token" || f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("form %v", f)
	}
}

func TestManagedIdentity(t *testing.T) {
	clearAzureEnv(t)
	exp := time.Now().Add(2 * time.Hour).Unix()
	ts := newTokenServer(t, `{"access_token":"tok-mi","expires_on":"`+itoa(exp)+`","resource":"https://storage.azure.com"}`)
	// App Service's endpoint.
	t.Setenv("IDENTITY_ENDPOINT", ts.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "hdr-1")
	tok, err := NewCredential().GetToken(context.Background(), policy.TokenRequestOptions{})
	if err != nil || tok.Token != "tok-mi" || tok.ExpiresOn.Unix() != exp {
		t.Fatalf("token %+v, %v", tok, err)
	}
	r := ts.got[0]
	if r.Header.Get("X-Identity-Header") != "hdr-1" || r.URL.Query().Get("resource") != Resource || r.URL.Query().Get("api-version") != "2019-08-01" {
		t.Errorf("App Service request %s %v", r.URL, r.Header)
	}
	// The instance metadata service, with a user-assigned identity.
	t.Setenv("IDENTITY_ENDPOINT", "")
	t.Setenv("AZURE_CLIENT_ID", "uami-1")
	c := NewCredential()
	c.imds = ts.URL + "/metadata/identity/oauth2/token"
	if tok, err := c.GetToken(context.Background(), policy.TokenRequestOptions{}); err != nil || tok.Token != "tok-mi" {
		t.Fatalf("IMDS token %+v, %v", tok, err)
	}
	r = ts.got[1]
	if r.Header.Get("Metadata") != "true" || r.URL.Query().Get("client_id") != "uami-1" || r.URL.Query().Get("api-version") != "2018-02-01" {
		t.Errorf("IMDS request %s %v", r.URL, r.Header)
	}
}

func TestAzureCLIWhenNoManagedIdentity(t *testing.T) {
	clearAzureEnv(t)
	dir := t.TempDir()
	az := filepath.Join(dir, "az")
	os.WriteFile(az, []byte("#!/bin/sh\n[ \"$1 $2 $4\" = \"account get-access-token https://storage.azure.com\" ] || exit 3\n"+
		`echo '{"accessToken":"tok-cli","expires_on":4102444800,"tokenType":"Bearer"}'`+"\n"), 0o755)
	c := NewCredential()
	c.imds = "http://127.0.0.1:1/metadata/identity/oauth2/token" // refused at once: no metadata service here
	c.az = az
	tok, err := c.GetToken(context.Background(), policy.TokenRequestOptions{})
	if err != nil || tok.Token != "tok-cli" || tok.ExpiresOn.Year() != 2100 {
		t.Fatalf("token %+v, %v", tok, err)
	}
	// Without the CLI either, the error says what to set.
	c = NewCredential()
	c.imds, c.az = "http://127.0.0.1:1/x", filepath.Join(dir, "no-az")
	if _, err := c.GetToken(context.Background(), policy.TokenRequestOptions{}); err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_KEY") {
		t.Errorf("err = %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	var b bucketDriver
	for status, want := range map[int]gcerrors.ErrorCode{404: gcerrors.NotFound, 412: gcerrors.FailedPrecondition,
		403: gcerrors.PermissionDenied, 400: gcerrors.InvalidArgument, 503: gcerrors.ResourceExhausted, 500: gcerrors.Internal, 501: gcerrors.Unimplemented} {
		if got := b.ErrorCode(&azcore.ResponseError{StatusCode: status}); got != want {
			t.Errorf("%d: %v, want %v", status, got, want)
		}
	}
	if got := b.ErrorCode(&azcore.ResponseError{StatusCode: 404, ErrorCode: "BlobNotFound"}); got != gcerrors.NotFound {
		t.Errorf("BlobNotFound: %v", got)
	}
}

func TestOpenURL(t *testing.T) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGEBLOB_CONNECTIONSTRING", "")
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	if _, err := OpenURL(context.Background(), &url.URL{Scheme: "azblob", Host: "c"}); err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_ACCOUNT") {
		t.Errorf("no account: %v", err)
	}
	t.Setenv("AZURE_STORAGE_ACCOUNT", "acct")
	t.Setenv("AZURE_STORAGE_KEY", "a2V5")
	d, err := OpenURL(context.Background(), &url.URL{Scheme: "azblob", Host: "models", RawQuery: "domain=127.0.0.1:10000&protocol=http&localemu=true"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.(*bucketDriver).c.URL(); got != "http://127.0.0.1:10000/acct/models" {
		t.Errorf("emulator URL %s", got)
	}
	d, _ = OpenURL(context.Background(), &url.URL{Scheme: "azblob", Host: "models"})
	if got := d.(*bucketDriver).c.URL(); got != "https://acct.blob.core.windows.net/models" {
		t.Errorf("URL %s", got)
	}
	if _, err := OpenURL(context.Background(), &url.URL{Scheme: "azblob", Host: "c", RawQuery: "cdn=true"}); err == nil {
		t.Error("unknown parameter accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
