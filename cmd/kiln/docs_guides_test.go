package main

// Tests that keep the hand-written guides in docs/ true to the code: every
// kiln command line they show exists with those flags, every make target
// exists, the metrics table lists exactly the metrics the code registers,
// the Kubernetes manifests decode strictly and hang together, the
// configuration examples load, and every relative link resolves.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/kiln-ml/kiln/config"
)

// repoRoot is the repository, relative to this package.
var repoRoot = filepath.Join("..", "..")

// guides are the hand-written pages and files whose commands are checked.
var guides = []string{
	"docs/README.md", "docs/concepts.md", "docs/quickstart.md", "docs/operations.md",
	"docs/ci-cd.md", "docs/benchmarks.md", "docs/ci-cd/github-actions.yaml", "docs/ci-cd/Jenkinsfile",
}

func readRepo(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fence is one fenced code block of a Markdown page.
type fence struct {
	lang, body string
	line       int
}

var fenceOpen = regexp.MustCompile("^(\\s*)(```+)\\s*([A-Za-z0-9_+-]*)")

func fences(md string) []fence {
	var out []fence
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		m := fenceOpen.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		f := fence{lang: m[3], line: i + 1}
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != m[2]; i++ {
			body = append(body, lines[i])
		}
		f.body = strings.Join(body, "\n")
		out = append(out, f)
	}
	return out
}

var jenkinsSh = regexp.MustCompile(`(?s)\bsh\s+'''(.*?)'''`)

// shellLines are the parts of a file that a shell runs: the fenced sh
// blocks of a Markdown page, the sh steps of a Jenkinsfile, all of any
// other file.
func shellLines(path, text string) []string {
	if strings.HasSuffix(path, "Jenkinsfile") {
		var out []string
		for _, m := range jenkinsSh.FindAllStringSubmatch(text, -1) {
			out = append(out, m[1])
		}
		return out
	}
	if !strings.HasSuffix(path, ".md") {
		return []string{text}
	}
	var out []string
	for _, f := range fences(text) {
		switch f.lang {
		case "sh", "bash", "shell", "console", "":
			out = append(out, f.body)
		}
	}
	return out
}

// kilnCommands finds the kiln invocations in shell text: the words of
// each simple command whose program is kiln (or a path ending in /kiln),
// with quotes removed and $(…) kept as one word; commands inside $(…) are
// found too.
func kilnCommands(text string) [][]string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out [][]string
	var cmd []string
	var word strings.Builder
	inWord := false
	flushWord := func() {
		if inWord {
			cmd = append(cmd, word.String())
		}
		word.Reset()
		inWord = false
	}
	flushCmd := func() {
		flushWord()
		// Leading assignments (VAR=value) are not the program.
		for len(cmd) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(cmd[0]) {
			cmd = cmd[1:]
		}
		if len(cmd) > 0 && (cmd[0] == "kiln" || strings.HasSuffix(cmd[0], "/kiln")) {
			out = append(out, cmd)
		}
		cmd = nil
	}
	rs := []rune(text)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '$' && i+1 < len(rs) && rs[i+1] == '(':
			// A command substitution: one word here, and its own commands.
			depth, j := 0, i+1
			for ; j < len(rs); j++ {
				if rs[j] == '(' {
					depth++
				} else if rs[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			inner := string(rs[i+2 : min(j, len(rs))])
			out = append(out, kilnCommands(inner)...)
			word.WriteString("$(" + inner + ")")
			inWord = true
			i = j
		case c == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			word.WriteString(string(rs[i+1 : min(j, len(rs))]))
			inWord = true
			i = j
		case c == '"':
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				if rs[j] == '\\' {
					j++
				} else if rs[j] == '$' && j+1 < len(rs) && rs[j+1] == '(' {
					k := strings.Index(string(rs[j:]), ")")
					if k > 0 {
						out = append(out, kilnCommands(string(rs[j+2:j+k]))...)
					}
				}
				j++
			}
			word.WriteString(string(rs[i+1 : min(j, len(rs))]))
			inWord = true
			i = j
		case c == '#' && !inWord:
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			flushCmd()
		case c == '\n' || c == ';' || c == '|' || c == '&' || c == '(' || c == ')' || c == '`':
			flushCmd()
		case c == '>' || c == '<':
			// A redirection: its target is not an argument.
			flushWord()
			for i+1 < len(rs) && (rs[i+1] == '>' || rs[i+1] == '&' || rs[i+1] == ' ') {
				i++
			}
			for i+1 < len(rs) && !strings.ContainsRune(" \n;|&", rs[i+1]) {
				i++
			}
		case c == ' ' || c == '\t':
			flushWord()
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	flushCmd()
	return out
}

// checkKilnCommand parses args (without the program) with a fresh command
// tree: the command must exist, its flags must parse and its arguments
// must be accepted.
func checkKilnCommand(args []string) error {
	return checkCommand(args, true)
}

// checkCommand is checkKilnCommand; when not strict (a command named in
// prose, such as `kiln apply -f`), a flag may lack its value and the
// arguments are not counted.
func checkCommand(args []string, strict bool) error {
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	root.AddCommand(newDocsCmd())
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	rest = sampleExpansions(cmd.Flags(), rest)
	if cmd == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("no command %q", args[0])
	}
	if err := cmd.ParseFlags(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) || !strict && strings.Contains(err.Error(), "flag needs an argument") {
			return nil
		}
		return err
	}
	if cmd.Flags().Changed("help") || !strict {
		return nil
	}
	return cmd.ValidateArgs(cmd.Flags().Args())
}

// inlineKiln finds the kiln commands named in the code spans of a
// Markdown page's prose and tables.
func inlineKiln(md string) [][]string {
	for _, f := range fences(md) {
		md = strings.Replace(md, f.body, "", 1)
	}
	var out [][]string
	for _, span := range codeSpan.FindAllString(md, -1) {
		span = strings.Trim(span, "`")
		if strings.HasPrefix(span, "kiln ") {
			out = append(out, kilnCommands(span)...)
		}
	}
	return out
}

// sampleExpansions replaces the values of flags that the shell would
// expand ($VERSION, $(cat version.txt)) with a value of the flag's type,
// so that the flag parses as it will at run time.
func sampleExpansions(fs *pflag.FlagSet, args []string) []string {
	sample := func(f *pflag.Flag) string {
		switch f.Value.Type() {
		case "int", "int64", "uint", "float64", "count":
			return "1"
		case "duration":
			return "1s"
		case "bool":
			return "true"
		}
		return "x"
	}
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--"):
			name, val, eq := strings.Cut(a[2:], "=")
			if f = fs.Lookup(name); f == nil {
				continue
			}
			if eq {
				if strings.Contains(val, "$") {
					out[i] = "--" + name + "=" + sample(f)
				}
				continue
			}
		case strings.HasPrefix(a, "-") && len(a) == 2:
			if f = fs.ShorthandLookup(a[1:]); f == nil {
				continue
			}
		default:
			continue
		}
		if f.NoOptDefVal == "" && i+1 < len(out) {
			if strings.Contains(out[i+1], "$") {
				out[i+1] = sample(f)
			}
			i++
		}
	}
	return out
}

func TestKilnCommandsFinder(t *testing.T) {
	got := kilnCommands(`kiln data add churn-data data -m "January"   # a comment
KILN_URL=x kiln apply -f a.yaml -f b.yaml && cat x | kiln apply -f -
echo "$(kiln tokens create -o json)" > t; bin/kiln version
python -c 'import kiln' --version "$(cat version.txt)"
kiln gate check --policy p --version $(cat v.txt)
curl -s $KILN_URL/x \
  -d '{"a": 1}'`)
	want := [][]string{
		{"kiln", "data", "add", "churn-data", "data", "-m", "January"},
		{"kiln", "apply", "-f", "a.yaml", "-f", "b.yaml"},
		{"kiln", "apply", "-f", "-"},
		{"kiln", "tokens", "create", "-o", "json"},
		{"bin/kiln", "version"},
		{"kiln", "gate", "check", "--policy", "p", "--version", "$(cat v.txt)"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if err := checkKilnCommand([]string{"data", "add", "x", "y", "--no-such-flag"}); err == nil {
		t.Error("an unknown flag passes")
	}
	if err := checkKilnCommand([]string{"datum", "add"}); err == nil {
		t.Error("an unknown command passes")
	}
	if err := checkKilnCommand([]string{"data", "add", "only-one-arg"}); err == nil {
		t.Error("a wrong number of arguments passes")
	}
	if err := checkKilnCommand([]string{"gate", "check", "--policy", "p", "--version", "$(cat v.txt)"}); err != nil {
		t.Errorf("an expanded flag value: %v", err)
	}
	if err := checkKilnCommand([]string{"gate", "check", "--policy", "p", "--version", "seven"}); err == nil {
		t.Error("a literal value of the wrong type passes")
	}
}

// TestGuideCommandsExist runs every kiln command line of the guides
// through the real command tree: no invented command or flag.
func TestGuideCommandsExist(t *testing.T) {
	n := 0
	for _, path := range guides {
		for _, block := range shellLines(path, readRepo(t, path)) {
			for _, args := range kilnCommands(block) {
				n++
				if err := checkKilnCommand(args[1:]); err != nil {
					t.Errorf("%s: %q: %v", path, strings.Join(args, " "), err)
				}
			}
		}
	}
	if n < 35 {
		t.Errorf("only %d kiln commands found in the guides", n)
	}
	for _, path := range guides {
		if !strings.HasSuffix(path, ".md") {
			continue
		}
		for _, args := range inlineKiln(readRepo(t, path)) {
			if err := checkCommand(args[1:], false); err != nil {
				t.Errorf("%s: `%s`: %v", path, strings.Join(args, " "), err)
			}
		}
	}
}

// TestGuideMakeTargetsExist checks every `make TARGET` of the guides
// against the Makefile.
func TestGuideMakeTargetsExist(t *testing.T) {
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]+):`).FindAllStringSubmatch(readRepo(t, "Makefile"), -1) {
		targets[m[1]] = true
	}
	re := regexp.MustCompile("`make ([a-z][a-z0-9-]*)[^`]*`|(?m)^\\s*(?:[A-Z_]+=\\S+ )*make ([a-z][a-z0-9 -]*)")
	for _, path := range guides {
		for _, m := range re.FindAllStringSubmatch(readRepo(t, path), -1) {
			names := strings.Fields(m[1] + " " + m[2])
			for _, name := range names {
				if !targets[name] {
					t.Errorf("%s names make %s, which the Makefile lacks", path, name)
				}
			}
		}
	}
}

// metricNames are the kiln_* metrics that the code registers.
func metricNames(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(|\bg\()"(kiln_[a-z0-9_]+)"`)
	seen := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".venv", "node_modules", "testdata", "bench", "tests", "examples", "sdk", "docs", "kiln-data", "kiln-demo":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestOperationsListsEveryMetric keeps the metrics table of
// docs/operations.md equal to the metrics the code registers.
func TestOperationsListsEveryMetric(t *testing.T) {
	code := metricNames(t)
	if len(code) < 40 {
		t.Fatalf("found only %d metrics in the code: %v", len(code), code)
	}
	var doc []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(kiln_[a-z0-9_]+)` \\|").FindAllStringSubmatch(readRepo(t, "docs/operations.md"), -1) {
		doc = append(doc, m[1])
	}
	for _, n := range code {
		if !slices.Contains(doc, n) {
			t.Errorf("docs/operations.md does not list the metric %s", n)
		}
	}
	for _, n := range doc {
		if !slices.Contains(code, n) {
			t.Errorf("docs/operations.md lists %s, which the code does not register", n)
		}
	}
}

// TestOperationsConfigExamplesLoad loads each kiln.yaml example of
// docs/operations.md with the configuration loader, which refuses
// unknown keys.
func TestOperationsConfigExamplesLoad(t *testing.T) {
	n := 0
	for _, f := range fences(readRepo(t, "docs/operations.md")) {
		if f.lang != "yaml" || !strings.HasPrefix(f.body, "server:") {
			continue
		}
		n++
		if err := loadConfig(t, f.body); err != nil {
			t.Errorf("docs/operations.md:%d: %v", f.line, err)
		}
	}
	if n == 0 {
		t.Error("no kiln.yaml example in docs/operations.md")
	}
}

func loadConfig(t *testing.T, body string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kiln.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(nil, func(k string) string {
		if k == "KILN_CONFIG" {
			return path
		}
		return ""
	})
	return err
}

// manifest is one decoded Kubernetes object of docs/k8s.
type manifest struct {
	file string
	obj  any
}

func decodeManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "k8s", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in docs/k8s/%s: %v", dir, err)
	}
	var out []manifest
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var head struct{ APIVersion, Kind string }
			if err := k8syaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			default:
				t.Fatalf("%s document %d: unexpected %s %s", file, i+1, head.APIVersion, head.Kind)
			}
			if err := k8syaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s document %d: %v", file, i+1, err)
				continue
			}
			out = append(out, manifest{filepath.Base(file), obj})
		}
	}
	return out
}

// TestKubernetesManifests decodes docs/k8s strictly into the Kubernetes
// API types and checks that each set hangs together: selectors match the
// pods, Services reach named container ports, every volume, ConfigMap,
// Secret and claim referred to exists, and the server's arguments,
// environment and kiln.yaml are ones Kiln accepts.
func TestKubernetesManifests(t *testing.T) {
	for _, dir := range []string{"single", "replicated"} {
		t.Run(dir, func(t *testing.T) {
			ms := decodeManifests(t, dir)
			configMaps, secrets, claims := map[string]*corev1.ConfigMap{}, map[string]*corev1.Secret{}, map[string]bool{}
			var services []*corev1.Service
			type workload struct {
				name     string
				selector map[string]string
				pod      corev1.PodTemplateSpec
				claims   []string
			}
			var workloads []workload
			for _, m := range ms {
				switch o := m.obj.(type) {
				case *corev1.ConfigMap:
					configMaps[o.Name] = o
				case *corev1.Secret:
					secrets[o.Name] = o
				case *corev1.PersistentVolumeClaim:
					claims[o.Name] = true
				case *corev1.Service:
					services = append(services, o)
				case *appsv1.Deployment:
					workloads = append(workloads, workload{o.Name, o.Spec.Selector.MatchLabels, o.Spec.Template, nil})
				case *appsv1.StatefulSet:
					var tmpl []string
					for _, c := range o.Spec.VolumeClaimTemplates {
						tmpl = append(tmpl, c.Name)
					}
					workloads = append(workloads, workload{o.Name, o.Spec.Selector.MatchLabels, o.Spec.Template, tmpl})
					found := false
					for _, s := range services {
						found = found || s.Name == o.Spec.ServiceName
					}
					for _, m := range ms {
						if s, ok := m.obj.(*corev1.Service); ok && s.Name == o.Spec.ServiceName && s.Spec.ClusterIP == "None" {
							found = true
						}
					}
					if !found {
						t.Errorf("statefulset %s: no headless Service %s", o.Name, o.Spec.ServiceName)
					}
				}
			}
			if len(workloads) != 1 || len(services) == 0 {
				t.Fatalf("%d workloads and %d services", len(workloads), len(services))
			}
			w := workloads[0]
			if !labelsMatch(w.selector, w.pod.Labels) || len(w.selector) == 0 {
				t.Errorf("%s: selector %v does not match the pod's labels %v", w.name, w.selector, w.pod.Labels)
			}
			if len(w.pod.Spec.Containers) != 1 {
				t.Fatalf("%s: %d containers", w.name, len(w.pod.Spec.Containers))
			}
			c := w.pod.Spec.Containers[0]
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			for _, s := range services {
				if !labelsMatch(s.Spec.Selector, w.pod.Labels) {
					t.Errorf("service %s: selector %v matches no pod", s.Name, s.Spec.Selector)
				}
				for _, p := range s.Spec.Ports {
					if _, ok := ports[p.TargetPort.String()]; !ok {
						t.Errorf("service %s: target port %s is not a container port", s.Name, p.TargetPort.String())
					}
				}
			}
			for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/health" || ports[probe.HTTPGet.Port.String()] == 0 {
					t.Errorf("%s: a probe is not GET /health on a container port: %+v", w.name, probe)
				}
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range w.pod.Spec.Volumes {
				volumes[v.Name] = v
				switch {
				case v.ConfigMap != nil && configMaps[v.ConfigMap.Name] == nil:
					t.Errorf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
				case v.PersistentVolumeClaim != nil && !claims[v.PersistentVolumeClaim.ClaimName]:
					t.Errorf("volume %s: no PersistentVolumeClaim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
			mounts := map[string]string{}
			for _, vm := range c.VolumeMounts {
				if _, ok := volumes[vm.Name]; !ok && !slices.Contains(w.claims, vm.Name) {
					t.Errorf("mount %s: no such volume", vm.Name)
				}
				mounts[vm.MountPath] = vm.Name
			}

			// The environment: Secret keys that exist, and variables that mean something.
			known := serverEnv()
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
					s := secrets[r.SecretKeyRef.Name]
					if s == nil || s.StringData[r.SecretKeyRef.Key] == "" {
						t.Errorf("env %s: no key %s in a Secret %s", e.Name, r.SecretKeyRef.Key, r.SecretKeyRef.Name)
					}
				}
			}
			for _, ef := range c.EnvFrom {
				s := secrets[ef.SecretRef.Name]
				if s == nil {
					t.Fatalf("envFrom: no Secret %s", ef.SecretRef.Name)
				}
				for k := range s.StringData {
					env[k] = true
				}
			}
			for name := range env {
				if strings.HasPrefix(name, "KILN_") && !known[name] {
					t.Errorf("env %s: kiln server reads no such variable", name)
				}
				if !strings.HasPrefix(name, "KILN_") && !slices.Contains([]string{"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "XDG_CACHE_HOME"}, name) {
					t.Errorf("env %s: not a variable the docs explain", name)
				}
			}
			if !env["KILN_ADMIN_PASSWORD"] {
				t.Error("no KILN_ADMIN_PASSWORD: the first start would log a generated password")
			}

			// The arguments: kiln server with flags it has; --config names a
			// mounted kiln.yaml. The configuration they make, with the
			// manifests' environment, must listen where the ports say and
			// keep every local folder on a volume.
			if len(c.Args) == 0 || c.Args[0] != "server" {
				t.Fatalf("args %q: not kiln server", c.Args)
			}
			if err := checkKilnCommand(c.Args); err != nil {
				t.Fatalf("args %q: %v", c.Args, err)
			}
			args := slices.Clone(c.Args[1:])
			for i, a := range args {
				v, ok := strings.CutPrefix(a, "--config=")
				if !ok {
					continue
				}
				vol, ok := volumes[mounts[filepath.Dir(v)]]
				if !ok || vol.ConfigMap == nil || configMaps[vol.ConfigMap.Name] == nil {
					t.Fatalf("--config %s is not in a mounted ConfigMap", v)
				}
				body, ok := configMaps[vol.ConfigMap.Name].Data[filepath.Base(v)]
				if !ok {
					t.Fatalf("ConfigMap %s has no key %s", vol.ConfigMap.Name, filepath.Base(v))
				}
				local := filepath.Join(t.TempDir(), "kiln.yaml")
				os.WriteFile(local, []byte(body), 0o644)
				args[i] = "--config=" + local
			}
			values := map[string]string{}
			for _, e := range c.Env {
				values[e.Name] = e.Value
			}
			for name := range env {
				if values[name] == "" {
					values[name] = "from-a-secret"
				}
			}
			srv := newServerCmd()
			if err := srv.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(srv.Flags(), func(k string) string { return values[k] })
			if err != nil {
				t.Fatalf("the server's configuration: %v", err)
			}
			for addr, port := range map[string]string{cfg.Server.Addr: "http", cfg.Deploy.GRPCAddr: "grpc"} {
				if want := fmt.Sprintf("0.0.0.0:%d", ports[port]); addr != want {
					t.Errorf("the server listens on %q, the %s port is %s", addr, port, want)
				}
			}
			local := map[string]string{
				"model cache": cfg.Deploy.ModelCacheDir, "prediction log": cfg.Monitor.PredictionLog.Dir,
				"pipeline work dir": cfg.Pipeline.WorkDir, "XDG_CACHE_HOME": values["XDG_CACHE_HOME"],
			}
			if db, ok := strings.CutPrefix(cfg.Store.URL, "sqlite://"); ok {
				local["database"] = db
			}
			if art, ok := strings.CutPrefix(cfg.Artifacts.URL, "file://"); ok {
				local["artifacts"] = art
			}
			for what, dir := range local {
				if !strings.HasPrefix(dir, "/") || !underMount(dir, mounts) {
					t.Errorf("the %s (%q) is not on a mounted volume", what, dir)
				}
			}
			replicated := len(w.claims) > 0
			if replicated != strings.HasPrefix(cfg.Store.URL, "postgres://") || replicated != strings.HasPrefix(cfg.Artifacts.URL, "s3://") {
				t.Errorf("store %s, artifacts %s: want PostgreSQL and S3 exactly for the replicated set", cfg.Store.URL, cfg.Artifacts.URL)
			}
			if strings.Contains(cfg.Store.URL, ":change-me@") {
				t.Error("a password in the database URL")
			}
		})
	}
}

func underMount(path string, mounts map[string]string) bool {
	for m := range mounts {
		if path == m || strings.HasPrefix(path, m+"/") {
			return true
		}
	}
	return false
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// serverEnv are the KILN_* variables kiln server reads, from its flags'
// help ("[$KILN_ADDR]").
func serverEnv() map[string]bool {
	out := map[string]bool{}
	cmd := newServerCmd()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		for _, m := range regexp.MustCompile(`\[\$(KILN_[A-Z0-9_]+)\]`).FindAllStringSubmatch(f.Usage, -1) {
			out[m[1]] = true
		}
	})
	return out
}

// TestCIPipelines checks the two CI recipes beyond their kiln commands: the
// workflow is a GitHub Actions document whose steps run, and both run the
// four stages the docs promise.
func TestCIPipelines(t *testing.T) {
	var wf struct {
		On   map[string]any `yaml:"on"`
		Jobs map[string]struct {
			RunsOn string `yaml:"runs-on"`
			Steps  []struct {
				Uses string `yaml:"uses"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	gha := readRepo(t, "docs/ci-cd/github-actions.yaml")
	dec := yaml.NewDecoder(strings.NewReader(gha))
	dec.KnownFields(false)
	if err := dec.Decode(&wf); err != nil {
		t.Fatal(err)
	}
	if len(wf.On) == 0 || len(wf.Jobs) != 1 {
		t.Fatalf("workflow: on %v, %d jobs", wf.On, len(wf.Jobs))
	}
	for name, job := range wf.Jobs {
		if job.RunsOn == "" || len(job.Steps) == 0 {
			t.Errorf("job %s: runs-on %q, %d steps", name, job.RunsOn, len(job.Steps))
		}
		for i, s := range job.Steps {
			if (s.Uses == "") == (s.Run == "") {
				t.Errorf("job %s step %d: exactly one of uses and run", name, i+1)
			}
		}
	}
	jenkins := readRepo(t, "docs/ci-cd/Jenkinsfile")
	if strings.Count(jenkins, "{") != strings.Count(jenkins, "}") || !strings.Contains(jenkins, "pipeline {") {
		t.Error("the Jenkinsfile is not a balanced declarative pipeline")
	}
	for _, text := range []string{gha, jenkins} {
		for _, want := range []string{"kiln data validate", "train.py", "kiln gate check", "kiln apply -f deploy/"} {
			if !strings.Contains(text, want) {
				t.Errorf("a CI recipe lacks %q", want)
			}
		}
	}
}

var (
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpan = regexp.MustCompile("`[^`\n]*`")
)

// TestDocsLinksResolve checks the relative links of the guides and of the
// generated references: the file exists, and an anchor names a heading.
func TestDocsLinksResolve(t *testing.T) {
	pages := append([]string{"docs/api.md", "docs/cli/README.md", "docs/cli/kiln_data_add.md"}, guides...)
	slugs := map[string][]string{}
	for _, page := range pages {
		if !strings.HasSuffix(page, ".md") {
			continue
		}
		text := readRepo(t, page)
		// Links inside code are not links.
		for _, f := range fences(text) {
			text = strings.Replace(text, f.body, "", 1)
		}
		text = codeSpan.ReplaceAllString(text, "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := filepath.ToSlash(filepath.Join(filepath.Dir(page), file))
			if file == "" {
				path = page
			}
			info, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(path)))
			if err != nil {
				t.Errorf("%s: link %s: %v", page, target, err)
				continue
			}
			if anchor != "" && !info.IsDir() && strings.HasSuffix(path, ".md") {
				if slugs[path] == nil {
					slugs[path] = headingSlugs(readRepo(t, path))
				}
				if !slices.Contains(slugs[path], anchor) {
					t.Errorf("%s: link %s: %s has no heading #%s", page, target, path, anchor)
				}
			}
		}
	}
}

// headingSlugs are the anchors GitHub gives a page's headings.
func headingSlugs(md string) []string {
	for _, f := range fences(md) {
		md = strings.Replace(md, f.body, "", 1)
	}
	var out []string
	seen := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^#{1,6} (.+)$`).FindAllStringSubmatch(md, -1) {
		var b strings.Builder
		for _, c := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case c == ' ':
				b.WriteByte('-')
			case c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c > 127:
				b.WriteRune(c)
			}
		}
		s := b.String()
		if n := seen[s]; n > 0 {
			seen[s] = n + 1
			s = fmt.Sprintf("%s-%d", s, n)
		} else {
			seen[s] = 1
		}
		out = append(out, s)
	}
	return out
}

// TestDocsIndexListsEveryPage makes docs/README.md the index of all of
// docs/: every page is linked from it.
func TestDocsIndexListsEveryPage(t *testing.T) {
	index := readRepo(t, "docs/README.md")
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		name := filepath.Base(p)
		if name != "README.md" && !strings.Contains(index, "]("+name+")") {
			t.Errorf("docs/README.md does not link %s", name)
		}
	}
	for _, want := range []string{"](cli/README.md)", "](k8s/)", "](ci-cd/)", "](grafana/kiln.json)"} {
		if !strings.Contains(index, want) {
			t.Errorf("docs/README.md does not link %s", want)
		}
	}
	if !bytes.Contains([]byte(index), []byte("## Start here")) {
		t.Error("docs/README.md has no Start here group")
	}
}
