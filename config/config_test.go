package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestPrecedence proves defaults < kiln.yaml < KILN_* env < flags, field by field.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kiln.yaml")
	os.WriteFile(file, []byte(`
server:
  addr: 127.0.0.1:6000
store:
  url: sqlite://from-file.db
artifacts:
  url: file://from-file
  s3_region: eu-west-1
log:
  level: debug
deploy:
  model_memory: 512MiB
`), 0o644)

	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(t *testing.T, c Config)
	}{
		{"file over defaults", nil, []string{"--config", file}, func(t *testing.T, c Config) {
			want(t, c.Server.Addr, "127.0.0.1:6000")
			want(t, c.Store.URL, "sqlite://from-file.db")
			want(t, c.Artifacts.S3Region, "eu-west-1")
			want(t, c.Log.Level, "debug")
			want(t, c.Log.Format, "text") // not in file: default kept
			if c.Deploy.ModelMemory != 512<<20 {
				t.Errorf("model memory %d, want 512MiB", c.Deploy.ModelMemory)
			}
		}},
		{"env over file", map[string]string{"KILN_CONFIG": file, "KILN_DB": "postgres://env/db", "KILN_S3_PATH_STYLE": "true"}, nil, func(t *testing.T, c Config) {
			want(t, c.Store.URL, "postgres://env/db")
			want(t, c.Server.Addr, "127.0.0.1:6000") // from file
			if !c.Artifacts.S3PathStyle {
				t.Error("KILN_S3_PATH_STYLE=true not applied")
			}
		}},
		{"flags over env", map[string]string{"KILN_DB": "postgres://env/db", "KILN_ADDR": "127.0.0.1:7000"},
			[]string{"--config", file, "--db", "sqlite://flag.db", "--shutdown-timeout", "5s"}, func(t *testing.T, c Config) {
				want(t, c.Store.URL, "sqlite://flag.db")
				want(t, c.Server.Addr, "127.0.0.1:7000") // env, no flag given
				want(t, c.Artifacts.URL, "file://from-file")
				if c.Server.ShutdownTimeout != 5*time.Second {
					t.Errorf("shutdown timeout %v", c.Server.ShutdownTimeout)
				}
			}},
		{"deploy settings", map[string]string{"KILN_CONFIG": file, "KILN_MODEL_MEMORY": "1GiB", "KILN_GRPC_ADDR": "127.0.0.1:6001"},
			[]string{"--grpc-addr", "", "--model-cache", "/var/cache/kiln"}, func(t *testing.T, c Config) {
				if c.Deploy.ModelMemory != 1<<30 {
					t.Errorf("model memory %d, want 1GiB from the environment over the file", c.Deploy.ModelMemory)
				}
				want(t, c.Deploy.GRPCAddr, "") // the flag disables gRPC over the environment
				want(t, c.Deploy.ModelCacheDir, "/var/cache/kiln")
			}},
		{"pipeline settings", map[string]string{"KILN_PIPELINE_PARALLELISM": "3", "KILN_PIPELINE_LEASE_TTL": "10s"},
			[]string{"--pipeline-parallelism", "5", "--kubernetes", "--kubernetes-namespace", "ml"}, func(t *testing.T, c Config) {
				if c.Pipeline.Parallelism != 5 || c.Pipeline.LeaseTTL != 10*time.Second {
					t.Errorf("parallelism %d, lease %v; want 5 from the flag over the environment, 10s from the environment", c.Pipeline.Parallelism, c.Pipeline.LeaseTTL)
				}
				if !c.Pipeline.Kubernetes.Enabled {
					t.Error("--kubernetes not applied")
				}
				want(t, c.Pipeline.Kubernetes.Namespace, "ml")
			}},
		{"defaults only", nil, nil, func(t *testing.T, c Config) {
			if c != Default() {
				t.Errorf("got %+v, want defaults", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no stray ./kiln.yaml
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			RegisterFlags(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("server:\n  adress: typo\n"), 0o644)
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"missing explicit file", map[string]string{"KILN_CONFIG": filepath.Join(dir, "nope.yaml")}},
		{"unknown yaml field", map[string]string{"KILN_CONFIG": bad}},
		{"bad bool", map[string]string{"KILN_S3_PATH_STYLE": "maybe"}},
		{"bad level", map[string]string{"KILN_LOG_LEVEL": "loud"}},
		{"bad duration", map[string]string{"KILN_SHUTDOWN_TIMEOUT": "soon"}},
		{"bad size", map[string]string{"KILN_MODEL_MEMORY": "lots"}},
		{"zero size", map[string]string{"KILN_MODEL_MEMORY": "0"}},
		{"bad integer", map[string]string{"KILN_PIPELINE_PARALLELISM": "many"}},
		{"negative parallelism", map[string]string{"KILN_PIPELINE_PARALLELISM": "-1"}},
		{"short lease", map[string]string{"KILN_PIPELINE_LEASE_TTL": "10ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			if _, err := Load(nil, func(k string) string { return tt.env[k] }); err == nil {
				t.Fatal("Load succeeded, want an error")
			}
		})
	}
}

func want(t *testing.T, got, wantV string) {
	t.Helper()
	if got != wantV {
		t.Errorf("got %q, want %q", got, wantV)
	}
}
