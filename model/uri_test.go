package model

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in   string
		want URI
	}{
		{"/srv/models/iris", URI{Kind: URILocal, Path: "/srv/models/iris"}},
		{"./iris", URI{Kind: URILocal, Path: "./iris"}},
		{"iris", URI{Kind: URILocal, Path: "iris"}},
		{`C:\models\iris`, URI{Kind: URILocal, Path: `C:\models\iris`}},
		{"file:///srv/models/iris", URI{Kind: URILocal, Path: "/srv/models/iris"}},
		{"file://localhost/srv/a%20b", URI{Kind: URILocal, Path: "/srv/a b"}},
		{"file://./iris", URI{Kind: URILocal, Path: "./iris"}},
		{"file:/srv/iris", URI{Kind: URILocal, Path: "/srv/iris"}},
		{"runs:/0123abcd/model", URI{Kind: URIRun, RunID: "0123abcd", Path: "model"}},
		{"runs:/0123abcd/a/./b/", URI{Kind: URIRun, RunID: "0123abcd", Path: "a/b"}},
		{"runs:/0123abcd", URI{Kind: URIRun, RunID: "0123abcd"}},
		{"models:/churn/3", URI{Kind: URIVersion, Name: "churn", Version: 3}},
		{"models:///churn/3", URI{Kind: URIVersion, Name: "churn", Version: 3}},
		{"models:/churn@champion", URI{Kind: URIAlias, Name: "churn", Alias: "champion"}},
		{"models:/a@b@c", URI{Kind: URIAlias, Name: "a@b", Alias: "c"}},
		{"models:/churn/Production", URI{Kind: URIStage, Name: "churn", Stage: "Production"}},
		{"models:/churn/staging", URI{Kind: URIStage, Name: "churn", Stage: "staging"}},
		{"models:/churn/latest", URI{Kind: URIStage, Name: "churn"}},
		{"models:/churn/LATEST", URI{Kind: URIStage, Name: "churn"}},
		{"models:/m-0123456789abcdef0123456789abcdef", URI{Kind: URILoggedModel, ModelID: "m-0123456789abcdef0123456789abcdef"}},
		{"models:/some-model-id", URI{Kind: URILoggedModel, ModelID: "some-model-id"}},
		{"m-0123456789abcdef0123456789abcdef", URI{Kind: URILoggedModel, ModelID: "m-0123456789abcdef0123456789abcdef"}},
		{"m-dir/with/slash", URI{Kind: URILocal, Path: "m-dir/with/slash"}},
		{"mlflow-artifacts:/0/abc/artifacts/model", URI{Kind: URIArtifact, Path: "0/abc/artifacts/model"}},
		{"mlflow-artifacts://host:5000/0/abc/artifacts", URI{Kind: URIArtifact, Host: "host:5000", Path: "0/abc/artifacts"}},
		{"MODELS:/churn/1", URI{Kind: URIVersion, Name: "churn", Version: 1}},
	}
	for _, tc := range tests {
		got, err := ParseURI(tc.in)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tc.in, err)
			continue
		}
		tc.want.Raw = tc.in
		if got != tc.want {
			t.Errorf("ParseURI(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"runs:/", "runs URIs must be of the form"},
		{"runs://model", "runs URIs must be of the form"},
		{"runs:/$bad/model", "invalid run id"},
		{"runs:/abc/../../etc", "'..' is not allowed"},
		{"models:/", "models URIs must be of the form"},
		{"models:/a/b/c", "models URIs must be of the form"},
		{"models:/churn/ ", "models URIs must be of the form"},
		{"models:/churn@", "models URIs must be of the form"},
		{"models:/@alias", "models URIs must be of the form"},
		{"models:/churn/0", "invalid version"},
		{"models:/churn/99999999999999999999", "invalid version"},
		{"mlflow-artifacts:/", "no artifact path"},
		{"mlflow-artifacts:/a/../../b", "'..' is not allowed"},
		{"s3://bucket/model", `unsupported scheme "s3"`},
		{"a\x00b", "NUL"},
		{strings.Repeat("a", 5000), "longer than"},
	}
	for _, tc := range tests {
		_, err := ParseURI(tc.in)
		if !errors.Is(err, ErrBadURI) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURI(%q): error %v, want ErrBadURI containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"models:/churn/3", "models:/churn@champion", "runs:/abc/model", "m-0123",
		"mlflow-artifacts://h/0/a", "file:///x", "models:/m-1", "./dir", "models:/a/latest"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("error %v does not wrap ErrBadURI", err)
			}
			return
		}
		if u.Raw != s {
			t.Fatalf("Raw %q != %q", u.Raw, s)
		}
		switch u.Kind {
		case URIRun, URIArtifact:
			for _, seg := range strings.Split(u.Path, "/") {
				if seg == ".." {
					t.Fatalf("%q: path %q escapes", s, u.Path)
				}
			}
		case URIVersion:
			if u.Version <= 0 || u.Name == "" {
				t.Fatalf("%q: %+v", s, u)
			}
		case URIAlias:
			if u.Name == "" || u.Alias == "" {
				t.Fatalf("%q: %+v", s, u)
			}
		case URILoggedModel:
			if u.ModelID == "" {
				t.Fatalf("%q: %+v", s, u)
			}
		case URILocal, URIStage:
		default:
			t.Fatalf("%q: kind %v", s, u.Kind)
		}
	})
}
