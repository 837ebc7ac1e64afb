// Package blobtest starts real object-storage servers for tests: an
// S3-compatible one (versitygw) and a Google Cloud Storage emulator
// (fake-gcs-server), both installed by `make tools` into bin/.
package blobtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/kiln-ml/kiln/blob"
)

// Credentials of the test server's root user.
const (
	AccessKey = "kilntest"
	SecretKey = "kilntestsecret"
)

func versitygw() string { return tool("versitygw") }

// tool finds an installed program: on $PATH, in GOBIN or GOPATH/bin, or in
// the repository's bin/.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN")}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(lines) == 2 {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	dirs = append(dirs, filepath.Join(os.Getenv("HOME"), "go", "bin"))
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	// The repository's own bin/ (where `make test` installs it).
	for dir, _ := os.Getwd(); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if p := filepath.Join(dir, "bin", name); fileExists(p) {
			return p
		}
	}
	return ""
}

// need fails (CI=true) or skips the test when a server program is missing.
func need(t testing.TB, exe, install string) {
	t.Helper()
	if exe != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(install)
	}
	t.Skip(install)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs a server program for the test's duration; its output is kept
// for failure messages.
func start(t testing.TB, exe string, args ...string) *logBuffer {
	t.Helper()
	cmd := exec.Command(exe, args...)
	log := &logBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return log
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// S3 starts versitygw on a loopback port serving a temporary folder,
// creates a bucket, sets the AWS credentials for the test, and returns the
// bucket's URL and the options to open it. The server stops when the test
// ends. Without versitygw the test is skipped, or fails when CI=true.
func S3(t testing.TB) (string, blob.Options) {
	t.Helper()
	exe := versitygw()
	need(t, exe, "versitygw not found; install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "kiln"), 0o755); err != nil { // the posix backend's bucket is a folder
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	log := start(t, exe, "--port", addr, "--access", AccessKey, "--secret", SecretKey, "posix", root)
	endpoint := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(endpoint)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not start: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	opts := blob.Options{S3Endpoint: endpoint, S3Region: "us-east-1", S3PathStyle: true}
	// Check that the bucket answers before handing it out.
	b, err := blob.Open(context.Background(), "s3://kiln", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.List(context.Background(), ""); err != nil {
		t.Fatalf("versitygw bucket not usable: %v\n%s", err, log.String())
	}
	return fmt.Sprintf("s3://kiln/t%d", time.Now().UnixNano()%1e6), opts
}

// FakeGCSVersion is the fake-gcs-server that `make tools` installs.
const FakeGCSVersion = "v1.56.1"

// GCS starts fake-gcs-server (Google Cloud Storage's JSON API, in memory)
// on a loopback port, creates a bucket, points STORAGE_EMULATOR_HOST at it
// for the test and returns a gs:// URL under a fresh prefix. The server
// stops when the test ends. Without fake-gcs-server the test is skipped,
// or fails when CI=true.
func GCS(t testing.TB) string {
	t.Helper()
	exe := tool("fake-gcs-server")
	need(t, exe, "fake-gcs-server not found; install it with: go install github.com/fsouza/fake-gcs-server@"+FakeGCSVersion)
	port := freePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	log := start(t, exe, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-external-url", endpoint, "-log-level", "error")
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Post(endpoint+"/storage/v1/b?project=kiln", "application/json", strings.NewReader(`{"name":"kiln"}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusConflict {
				break
			}
			t.Fatalf("fake-gcs-server: creating the bucket answered %s\n%s", resp.Status, log.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake-gcs-server did not start: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", fmt.Sprintf("127.0.0.1:%d", port))
	return fmt.Sprintf("gs://kiln/t%d", time.Now().UnixNano()%1e6)
}

// AzuriteVersion is the Azurite (Azure Storage's emulator) that `make
// tools` installs into bin/azurite.
const AzuriteVersion = "3.37.0"

// Azurite's well-known development account (documented by Microsoft; it
// only opens the emulator).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azure starts Azurite's blob service (in memory) on a loopback port,
// creates a container, sets AZURE_STORAGE_CONNECTION_STRING for the test
// and returns an azblob:// URL under a fresh prefix. Without Azurite the
// test is skipped, or fails when CI=true.
func Azure(t testing.TB) string {
	t.Helper()
	exe := tool("azurite-blob")
	if exe == "" {
		exe = tool(filepath.Join("azurite", "node_modules", ".bin", "azurite-blob"))
	}
	need(t, exe, "azurite-blob not found; install it with: make bin/azurite/node_modules/.bin/azurite-blob (npm install azurite@"+AzuriteVersion+")")
	port := freePort(t)
	log := start(t, exe, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port), "--inMemoryPersistence",
		"--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry")
	cs := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/%s;",
		azuriteAccount, azuriteKey, port, azuriteAccount)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", cs)
	c, err := container.NewClientFromConnectionString(cs, "kiln", nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Create(ctx, nil)
		cancel()
		if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Azurite did not start: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("azblob://kiln/t%d", time.Now().UnixNano()%1e6)
}

type logBuffer struct{ b []byte }

func (l *logBuffer) Write(p []byte) (int, error) {
	if len(l.b) < 1<<16 {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *logBuffer) String() string { return string(l.b) }
