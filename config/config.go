// Package config holds Kiln's configuration tree and loads it with the
// precedence defaults < kiln.yaml < KILN_* environment < command-line flags.
//
// No other package reads the environment or flags: each subsystem takes its
// own sub-struct of Config.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a Kiln process.
type Config struct {
	Server    Server    `yaml:"server"`
	Store     Store     `yaml:"store"`
	Artifacts Artifacts `yaml:"artifacts"`
	Log       Log       `yaml:"log"`
	Deploy    Deploy    `yaml:"deploy"`
	Monitor   Monitor   `yaml:"monitor"`
	Pipeline  Pipeline  `yaml:"pipeline"`
	Access    Access    `yaml:"access"`
	Lineage   Lineage   `yaml:"lineage"`
	Feature   Feature   `yaml:"feature"`
}

// Feature configures the feature store.
type Feature struct {
	// OnlineStore is where feature views are materialized: "" or
	// "embedded" (the metadata database) or redis://host:port/db.
	OnlineStore string `yaml:"online_store"`
}

// Lineage configures the OpenLineage events of pipeline runs and steps.
type Lineage struct {
	// OpenLineageURL receives each event as an HTTP POST (Marquez:
	// http://HOST:5000/api/v1/lineage); OpenLineageFile gets them as JSON
	// Lines. Neither set: no events.
	OpenLineageURL  string `yaml:"openlineage_url"`
	OpenLineageFile string `yaml:"openlineage_file"`
	// OpenLineageAPIKey is sent as a Bearer token with the HTTP events.
	OpenLineageAPIKey string `yaml:"openlineage_api_key"`
	// OpenLineageNamespace is the jobs' namespace ("kiln").
	OpenLineageNamespace string `yaml:"openlineage_namespace"`
}

// Access configures authentication, roles and the audit log.
type Access struct {
	// Auth is "auto" (on unless the server listens on loopback only),
	// "on" or "off" ("off" is refused beyond loopback).
	Auth string `yaml:"auth"`
	// AdminPassword is the password of the "admin" user created when the
	// server starts with access control on and no users ("": one is
	// generated and logged once).
	AdminPassword string `yaml:"admin_password"`
	// CredentialCacheTTL is how long checked passwords and tokens are
	// remembered (a revocation on another server takes effect within it).
	CredentialCacheTTL time.Duration `yaml:"credential_cache_ttl"`
	// PrivateWebhooks says whether alert webhooks may go to loopback,
	// private and link-local addresses: "auto" (only while access control
	// is off), "allow" or "deny". WebhookAllow lists CIDR prefixes
	// allowed anyway (comma-separated).
	PrivateWebhooks string `yaml:"private_webhooks"`
	WebhookAllow    string `yaml:"webhook_allow"`
	// RateLimit is the requests per second each signed-in identity (user
	// or token) may make, with bursts of RateBurst (0: no limit).
	RateLimit int `yaml:"rate_limit"`
	RateBurst int `yaml:"rate_burst"`
	// OIDC is sign-in through an OpenID Connect provider (off while its
	// issuer is empty).
	OIDC OIDC `yaml:"oidc"`
}

// OIDC configures single sign-on through an OpenID Connect provider
// (Keycloak, Dex, Okta, Google, Azure AD), alongside passwords and tokens.
type OIDC struct {
	// Issuer is the provider's issuer URL ("": OIDC is off).
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// RedirectURL is the callback the provider sends browsers back to
	// ("": the external URL + /api/v1/oidc/callback).
	RedirectURL string `yaml:"redirect_url"`
	// Scopes are asked for (comma-separated).
	Scopes string `yaml:"scopes"`
	// UsernameClaim names the Kiln user (the email claim when the token
	// has none).
	UsernameClaim string `yaml:"username_claim"`
	// GroupsClaim lists the user's groups; members of AdminGroup are
	// server administrators (and others are not).
	GroupsClaim string `yaml:"groups_claim"`
	AdminGroup  string `yaml:"admin_group"`
	// DefaultRole ("none": no grant) is given in Workspace to users
	// created on their first sign-in.
	DefaultRole string `yaml:"default_role"`
	Workspace   string `yaml:"workspace"`
}

// Server configures the HTTP server.
type Server struct {
	Addr            string        `yaml:"addr"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLSCert and TLSKey, both set, make the server speak HTTPS (and
	// gRPC over TLS) with this certificate (PEM files).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Store configures the metadata database.
type Store struct {
	// URL is sqlite://path or postgres://user:pass@host/db.
	URL string `yaml:"url"`
}

// Artifacts configures the artifact store.
type Artifacts struct {
	// URL is file://path, s3://bucket/prefix, gs://bucket or azblob://container.
	URL         string `yaml:"url"`
	S3Endpoint  string `yaml:"s3_endpoint"`
	S3Region    string `yaml:"s3_region"`
	S3PathStyle bool   `yaml:"s3_path_style"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Deploy configures the serving of deployed endpoints.
type Deploy struct {
	// GRPCAddr is the Open Inference Protocol gRPC address; "" disables it.
	GRPCAddr string `yaml:"grpc_addr"`
	// ModelMemory bounds the estimated memory of loaded models; least
	// recently used models are evicted beyond it.
	ModelMemory ByteSize `yaml:"model_memory"`
	// ModelCacheDir keeps the files of resolved models on disk, so a
	// model evicted from memory reloads without downloading.
	ModelCacheDir string `yaml:"model_cache_dir"`
}

// Monitor configures the monitoring of deployed endpoints.
type Monitor struct {
	PredictionLog PredictionLog `yaml:"prediction_log"`
}

// PredictionLog configures the prediction log (package monitor/predlog):
// every request an endpoint answers is written to a local segment before
// the response, then shipped to the artifact store as Parquet.
type PredictionLog struct {
	// Disabled turns the prediction log off.
	Disabled bool `yaml:"disabled"`
	// Dir holds the local segments; "" means "predlog" next to the
	// endpoint model cache (./kiln-data/predlog by default).
	Dir string `yaml:"dir"`
	// FsyncInterval is how often written records are fsynced.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// SegmentMaxAge and SegmentMaxBytes roll a segment (ship it).
	SegmentMaxAge   time.Duration `yaml:"segment_max_age"`
	SegmentMaxBytes ByteSize      `yaml:"segment_max_bytes"`
	// Retention deletes shipped segments older than this; 0 keeps them
	// forever.
	Retention time.Duration `yaml:"retention"`
}

// Pipeline configures the pipeline engine, its executors and the
// schedules and triggers.
type Pipeline struct {
	// Disabled runs no pipeline steps, schedules or triggers on this
	// server (its API still stores pipelines and runs; other servers on
	// the same database run them).
	Disabled bool `yaml:"disabled"`
	// Parallelism bounds the local executor's steps running at once (0:
	// the number of CPUs).
	Parallelism int `yaml:"parallelism"`
	// WorkDir holds the local executor's attempt folders ("": a kiln-steps
	// folder in the temporary directory).
	WorkDir string `yaml:"work_dir"`
	// LeaseTTL is how long a server's lease on a step or a trigger lasts
	// without renewal: a server that dies is taken over after it.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// ExternalURL is the server's URL as steps see it (KILN_URL,
	// MLFLOW_TRACKING_URI); "" derives it from server.addr.
	ExternalURL string     `yaml:"external_url"`
	Kubernetes  Kubernetes `yaml:"kubernetes"`
}

// Kubernetes configures the Kubernetes executor of pipeline steps.
type Kubernetes struct {
	// Enabled turns the executor on (steps with executor: kubernetes fail
	// without it).
	Enabled bool `yaml:"enabled"`
	// Kubeconfig is the kubeconfig file; "" uses the in-cluster
	// configuration (or $KUBECONFIG).
	Kubeconfig string `yaml:"kubeconfig"`
	Namespace  string `yaml:"namespace"`
	// KilnImage is the image whose kiln binary steps run under (the init
	// container copies it into the step's pod).
	KilnImage      string `yaml:"kiln_image"`
	ServiceAccount string `yaml:"service_account"`
	// DefaultImage runs a step that names no image ("": KilnImage).
	DefaultImage string `yaml:"default_image"`
	// ServerURL is the server as step pods reach it (a Service's URL);
	// "" uses pipeline.external_url.
	ServerURL string `yaml:"server_url"`
	// TokenSecret names a Secret whose "token" key step pods send as
	// their API token (KILN_TOKEN); "" sends none.
	TokenSecret string `yaml:"token_secret"`
}

// ByteSize is a number of bytes, written with an optional unit (512MiB,
// 2GiB, 1GB) in files, environment variables and flags.
type ByteSize int64

// String writes b with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if u.mult > 1 && u.binary && int64(b)%u.mult == 0 && b != 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

var byteUnits = []struct {
	suffix string
	mult   int64
	binary bool
}{{"TiB", 1 << 40, true}, {"GiB", 1 << 30, true}, {"MiB", 1 << 20, true}, {"KiB", 1 << 10, true},
	{"TB", 1e12, false}, {"GB", 1e9, false}, {"MB", 1e6, false}, {"KB", 1e3, false}, {"B", 1, false}}

// UnmarshalText parses a size such as 2GiB, 512MiB or 1073741824.
func (b *ByteSize) UnmarshalText(text []byte) error {
	num, mult := strings.TrimSpace(string(text)), int64(1)
	for _, u := range byteUnits {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q (want a positive number of bytes, e.g. 2GiB or 536870912)", text)
	}
	*b = ByteSize(n * mult)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// Default returns the embedded defaults: everything local, on loopback.
func Default() Config {
	return Config{
		Server:    Server{Addr: "127.0.0.1:5000", ShutdownTimeout: 30 * time.Second},
		Store:     Store{URL: "sqlite://./kiln-data/kiln.db"},
		Artifacts: Artifacts{URL: "file://./kiln-data/artifacts", S3Region: "us-east-1"},
		Log:       Log{Level: "info", Format: "text"},
		Deploy:    Deploy{GRPCAddr: "127.0.0.1:5001", ModelMemory: 2 << 30, ModelCacheDir: "./kiln-data/model-cache"},
		Monitor: Monitor{PredictionLog: PredictionLog{FsyncInterval: 100 * time.Millisecond, SegmentMaxAge: time.Minute,
			SegmentMaxBytes: 64 << 20, Retention: 30 * 24 * time.Hour}},
		Access: Access{Auth: "auto", CredentialCacheTTL: 30 * time.Second, PrivateWebhooks: "auto",
			OIDC: OIDC{Scopes: "openid,email,profile", UsernameClaim: "preferred_username", DefaultRole: "viewer", Workspace: "default"}},
		Pipeline: Pipeline{LeaseTTL: 30 * time.Second, Kubernetes: Kubernetes{Namespace: "default", KilnImage: "ghcr.io/kiln-ml/kiln:latest"}},
	}
}

// A setting ties one field to its environment variable and flag.
type setting struct {
	env, flag, usage string
	str              *string
	boolean          *bool
	dur              *time.Duration
	size             *ByteSize
	integer          *int
}

func (c *Config) settings() []setting {
	return []setting{
		{env: "KILN_ADDR", flag: "addr", usage: "address to listen on", str: &c.Server.Addr},
		{env: "KILN_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", usage: "how long in-flight requests may take to finish on shutdown", dur: &c.Server.ShutdownTimeout},
		{env: "KILN_DB", flag: "db", usage: "metadata database URL (sqlite://PATH or postgres://…)", str: &c.Store.URL},
		{env: "KILN_ARTIFACTS", flag: "artifacts", usage: "artifact store URL (file://PATH, s3://BUCKET/PREFIX, gs://…, azblob://…)", str: &c.Artifacts.URL},
		{env: "KILN_S3_ENDPOINT", flag: "s3-endpoint", usage: "S3-compatible endpoint URL (e.g. http://127.0.0.1:7070)", str: &c.Artifacts.S3Endpoint},
		{env: "KILN_S3_REGION", flag: "s3-region", usage: "S3 region", str: &c.Artifacts.S3Region},
		{env: "KILN_S3_PATH_STYLE", flag: "s3-path-style", usage: "use path-style S3 addressing (MinIO, versitygw)", boolean: &c.Artifacts.S3PathStyle},
		{env: "KILN_LOG_LEVEL", flag: "log-level", usage: "log level: debug, info, warn, error", str: &c.Log.Level},
		{env: "KILN_LOG_FORMAT", flag: "log-format", usage: "log format: text or json", str: &c.Log.Format},
		{env: "KILN_GRPC_ADDR", flag: "grpc-addr", usage: `Open Inference Protocol gRPC address of deployed endpoints ("" disables)`, str: &c.Deploy.GRPCAddr},
		{env: "KILN_MODEL_MEMORY", flag: "model-memory", usage: "memory budget of loaded endpoint models (e.g. 2GiB); least recently used models are evicted beyond it", size: &c.Deploy.ModelMemory},
		{env: "KILN_MODEL_CACHE", flag: "model-cache", usage: "folder that keeps resolved endpoint model files on disk", str: &c.Deploy.ModelCacheDir},
		{env: "KILN_NO_PREDICTION_LOG", flag: "no-prediction-log", usage: "do not log the requests and responses of endpoints", boolean: &c.Monitor.PredictionLog.Disabled},
		{env: "KILN_PREDICTION_LOG_DIR", flag: "prediction-log-dir", usage: `folder of the local prediction-log segments ("": predlog next to --model-cache)`, str: &c.Monitor.PredictionLog.Dir},
		{env: "KILN_PREDICTION_LOG_FSYNC_INTERVAL", flag: "prediction-log-fsync-interval", usage: "how often logged predictions are fsynced", dur: &c.Monitor.PredictionLog.FsyncInterval},
		{env: "KILN_PREDICTION_LOG_SEGMENT_AGE", flag: "prediction-log-segment-age", usage: "age at which a prediction-log segment is shipped to the artifact store as Parquet", dur: &c.Monitor.PredictionLog.SegmentMaxAge},
		{env: "KILN_PREDICTION_LOG_RETENTION", flag: "prediction-log-retention", usage: "how long shipped prediction logs are kept (0: forever)", dur: &c.Monitor.PredictionLog.Retention},
		{env: "KILN_AUTH", flag: "auth", usage: "access control: auto (on unless listening on loopback), on or off (loopback only)", str: &c.Access.Auth},
		{env: "KILN_ADMIN_PASSWORD", flag: "admin-password", usage: `password of the "admin" user created at the first start with access control on ("": generated and logged once)`, str: &c.Access.AdminPassword},
		{env: "KILN_TLS_CERT", flag: "tls-cert", usage: "TLS certificate (PEM) for HTTPS and gRPC; with --tls-key", str: &c.Server.TLSCert},
		{env: "KILN_TLS_KEY", flag: "tls-key", usage: "TLS private key (PEM); with --tls-cert", str: &c.Server.TLSKey},
		{env: "KILN_PRIVATE_WEBHOOKS", flag: "private-webhooks", usage: "alert webhooks to loopback/private/link-local addresses: auto (only with access control off), allow or deny", str: &c.Access.PrivateWebhooks},
		{env: "KILN_WEBHOOK_ALLOW", flag: "webhook-allow", usage: "CIDR prefixes alert webhooks may reach even when private ones are denied (comma-separated)", str: &c.Access.WebhookAllow},
		{env: "KILN_RATE_LIMIT", flag: "rate-limit", usage: "requests per second per signed-in user or token (0: no limit)", integer: &c.Access.RateLimit},
		{env: "KILN_RATE_BURST", flag: "rate-burst", usage: "burst of --rate-limit (0: twice the rate)", integer: &c.Access.RateBurst},
		{env: "KILN_CREDENTIAL_CACHE_TTL", flag: "credential-cache-ttl", usage: "how long checked passwords and tokens are remembered", dur: &c.Access.CredentialCacheTTL},
		{env: "KILN_OIDC_ISSUER", flag: "oidc-issuer", usage: `OpenID Connect provider's issuer URL for single sign-on ("": off)`, str: &c.Access.OIDC.Issuer},
		{env: "KILN_OIDC_CLIENT_ID", flag: "oidc-client-id", usage: "OIDC client id of Kiln at the provider", str: &c.Access.OIDC.ClientID},
		{env: "KILN_OIDC_CLIENT_SECRET", flag: "oidc-client-secret", usage: `OIDC client secret ("": a public client; prefer the environment variable, which ps does not show)`, str: &c.Access.OIDC.ClientSecret},
		{env: "KILN_OIDC_REDIRECT_URL", flag: "oidc-redirect-url", usage: `OIDC callback URL registered at the provider ("": --external-url + /api/v1/oidc/callback)`, str: &c.Access.OIDC.RedirectURL},
		{env: "KILN_OIDC_SCOPES", flag: "oidc-scopes", usage: "OIDC scopes asked for (comma-separated)", str: &c.Access.OIDC.Scopes},
		{env: "KILN_OIDC_USERNAME_CLAIM", flag: "oidc-username-claim", usage: "ID token claim that names the Kiln user (email when the token has none)", str: &c.Access.OIDC.UsernameClaim},
		{env: "KILN_OIDC_GROUPS_CLAIM", flag: "oidc-groups-claim", usage: `ID token claim that lists the user's groups ("": none)`, str: &c.Access.OIDC.GroupsClaim},
		{env: "KILN_OIDC_ADMIN_GROUP", flag: "oidc-admin-group", usage: `members of this group are server administrators, others not ("": admin is managed in Kiln)`, str: &c.Access.OIDC.AdminGroup},
		{env: "KILN_OIDC_DEFAULT_ROLE", flag: "oidc-default-role", usage: "role given to users on their first OIDC sign-in: viewer, editor, maintainer, admin or none", str: &c.Access.OIDC.DefaultRole},
		{env: "KILN_OIDC_WORKSPACE", flag: "oidc-workspace", usage: "workspace of --oidc-default-role", str: &c.Access.OIDC.Workspace},
		{env: "KILN_NO_PIPELINES", flag: "no-pipelines", usage: "run no pipeline steps, schedules or triggers on this server", boolean: &c.Pipeline.Disabled},
		{env: "KILN_PIPELINE_PARALLELISM", flag: "pipeline-parallelism", usage: "pipeline steps the local executor runs at once (0: the number of CPUs)", integer: &c.Pipeline.Parallelism},
		{env: "KILN_PIPELINE_WORK_DIR", flag: "pipeline-work-dir", usage: `folder of the local executor's step attempts ("": in the temporary directory)`, str: &c.Pipeline.WorkDir},
		{env: "KILN_PIPELINE_LEASE_TTL", flag: "pipeline-lease-ttl", usage: "how long a server's lease on a pipeline step or trigger lasts; a dead server's work is taken over after it", dur: &c.Pipeline.LeaseTTL},
		{env: "KILN_EXTERNAL_URL", flag: "external-url", usage: `the server's URL as pipeline steps see it ("": from --addr)`, str: &c.Pipeline.ExternalURL},
		{env: "KILN_OPENLINEAGE_URL", flag: "openlineage-url", usage: "send OpenLineage run events of pipeline runs and steps to this HTTP endpoint (Marquez: http://HOST:5000/api/v1/lineage)", str: &c.Lineage.OpenLineageURL},
		{env: "KILN_OPENLINEAGE_FILE", flag: "openlineage-file", usage: "append OpenLineage run events to this file (JSON Lines)", str: &c.Lineage.OpenLineageFile},
		{env: "KILN_OPENLINEAGE_API_KEY", flag: "openlineage-api-key", usage: "Bearer token sent with the OpenLineage HTTP events", str: &c.Lineage.OpenLineageAPIKey},
		{env: "KILN_OPENLINEAGE_NAMESPACE", flag: "openlineage-namespace", usage: "namespace of the pipelines' OpenLineage jobs", str: &c.Lineage.OpenLineageNamespace},
		{env: "KILN_ONLINE_STORE", flag: "online-store", usage: `online store of the feature store: embedded (the metadata database) or redis://HOST:PORT/DB`, str: &c.Feature.OnlineStore},
		{env: "KILN_KUBERNETES", flag: "kubernetes", usage: "run pipeline steps with executor: kubernetes as Kubernetes Jobs", boolean: &c.Pipeline.Kubernetes.Enabled},
		{env: "KILN_KUBECONFIG", flag: "kubeconfig", usage: `kubeconfig of the Kubernetes executor ("": in-cluster or $KUBECONFIG)`, str: &c.Pipeline.Kubernetes.Kubeconfig},
		{env: "KILN_KUBERNETES_NAMESPACE", flag: "kubernetes-namespace", usage: "namespace of pipeline step Jobs", str: &c.Pipeline.Kubernetes.Namespace},
		{env: "KILN_KUBERNETES_KILN_IMAGE", flag: "kubernetes-kiln-image", usage: "image holding the kiln binary that step pods run under", str: &c.Pipeline.Kubernetes.KilnImage},
		{env: "KILN_KUBERNETES_SERVER_URL", flag: "kubernetes-server-url", usage: `the server's URL as step pods reach it ("": --external-url)`, str: &c.Pipeline.Kubernetes.ServerURL},
		{env: "KILN_KUBERNETES_DEFAULT_IMAGE", flag: "kubernetes-default-image", usage: `image of Kubernetes steps that name none ("": --kubernetes-kiln-image)`, str: &c.Pipeline.Kubernetes.DefaultImage},
		{env: "KILN_KUBERNETES_TOKEN_SECRET", flag: "kubernetes-token-secret", usage: `Secret whose "token" key step pods send as their API token`, str: &c.Pipeline.Kubernetes.TokenSecret},
	}
}

// RegisterFlags adds the configuration flags, with the defaults shown in
// help, and --config, to fs.
func RegisterFlags(fs *pflag.FlagSet) {
	d := Default()
	for _, s := range d.settings() {
		usage := s.usage + " [$" + s.env + "]"
		switch {
		case s.str != nil:
			fs.String(s.flag, *s.str, usage)
		case s.boolean != nil:
			fs.Bool(s.flag, *s.boolean, usage)
		case s.dur != nil:
			fs.Duration(s.flag, *s.dur, usage)
		case s.size != nil:
			fs.String(s.flag, s.size.String(), usage)
		case s.integer != nil:
			fs.Int(s.flag, *s.integer, usage)
		}
	}
	fs.String("config", "", "configuration file (default ./kiln.yaml if present) [$KILN_CONFIG]")
}

// Load builds the configuration: defaults, then the YAML file (the --config
// flag, else $KILN_CONFIG, else ./kiln.yaml if it exists), then environment
// variables from getenv, then flags that were set on flags (may be nil).
func Load(flags *pflag.FlagSet, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Default()
	path, explicit := "", false
	if flags != nil {
		if f := flags.Lookup("config"); f != nil && f.Changed {
			path, explicit = f.Value.String(), true
		}
	}
	if path == "" {
		if p := getenv("KILN_CONFIG"); p != "" {
			path, explicit = p, true
		} else {
			path = "kiln.yaml"
		}
	}
	if err := c.loadFile(path); err != nil {
		if explicit || !errors.Is(err, fs.ErrNotExist) {
			return c, err
		}
	}
	for _, s := range c.settings() {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.set(v); err != nil {
			return c, fmt.Errorf("config: $%s: %w", s.env, err)
		}
	}
	if flags != nil {
		for _, s := range c.settings() {
			f := flags.Lookup(s.flag)
			if f == nil || !f.Changed {
				continue
			}
			if err := s.set(f.Value.String()); err != nil {
				return c, fmt.Errorf("config: --%s: %w", s.flag, err)
			}
		}
	}
	return c, c.Validate()
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

func (s setting) set(v string) error {
	switch {
	case s.str != nil:
		*s.str = v
	case s.boolean != nil:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		*s.boolean = b
	case s.dur != nil:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration: %q", v)
		}
		*s.dur = d
	case s.size != nil:
		return s.size.UnmarshalText([]byte(v))
	case s.integer != nil:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*s.integer = n
	}
	return nil
}

// Validate checks the configuration for values that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Server.Addr == "" {
		errs = append(errs, errors.New("server.addr is empty"))
	}
	if c.Store.URL == "" {
		errs = append(errs, errors.New("store.url is empty"))
	}
	if c.Artifacts.URL == "" {
		errs = append(errs, errors.New("artifacts.url is empty"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q is not text or json", c.Log.Format))
	}
	if pl := c.Monitor.PredictionLog; !pl.Disabled {
		if pl.FsyncInterval <= 0 {
			errs = append(errs, fmt.Errorf("monitor.prediction_log.fsync_interval %v is not positive", pl.FsyncInterval))
		}
		if pl.SegmentMaxAge <= 0 {
			errs = append(errs, fmt.Errorf("monitor.prediction_log.segment_max_age %v is not positive", pl.SegmentMaxAge))
		}
		if pl.SegmentMaxBytes < 0 {
			errs = append(errs, fmt.Errorf("monitor.prediction_log.segment_max_bytes %v is negative", pl.SegmentMaxBytes))
		}
		if pl.Retention < 0 {
			errs = append(errs, fmt.Errorf("monitor.prediction_log.retention %v is negative (0 keeps logs forever)", pl.Retention))
		}
	}
	if p := c.Pipeline; p.Parallelism < 0 {
		errs = append(errs, fmt.Errorf("pipeline.parallelism %d is negative (0: the number of CPUs)", p.Parallelism))
	}
	if p := c.Pipeline; p.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("pipeline.lease_ttl %v is under 1s", p.LeaseTTL))
	}
	if o := c.Access.OIDC; o.Issuer != "" && o.ClientID == "" {
		errs = append(errs, errors.New("access.oidc.issuer is set without access.oidc.client_id"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
