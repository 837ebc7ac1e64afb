package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// TestBLAKE3Vector pins the hash to the BLAKE3 reference test vector, so a
// digest computed here equals b3sum's.
func TestBLAKE3Vector(t *testing.T) {
	if got, want := Sum([]byte("abc")).String(), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"; got != want {
		t.Fatalf("BLAKE3(abc) = %s, want %s", got, want)
	}
	if got, want := Sum(nil).String(), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"; got != want {
		t.Fatalf("BLAKE3() = %s, want %s", got, want)
	}
	d, n, err := HashReader(strings.NewReader("abc"))
	if err != nil || n != 3 || d != Sum([]byte("abc")) {
		t.Fatalf("HashReader = %s %d %v", d, n, err)
	}
}

func TestParseDigest(t *testing.T) {
	good := Sum([]byte("x")).String()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.ToUpper(good), false},
		{good[:63], false},
		{good + "0", false},
		{"zz" + good[2:], false},
		{"", false},
	} {
		d, err := ParseDigest(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDigest(%q): %v", tc.in, err)
		}
		if tc.ok && d.String() != tc.in {
			t.Errorf("round trip %s -> %s", tc.in, d)
		}
		if !tc.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseDigest(%q) error kind: %v", tc.in, err)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		p  string
		ok bool
	}{
		{"a.csv", true},
		{"dir/sub/a b.csv", true},
		{"ünïcode/файл.txt", true},
		{".hidden", true},
		{"..a", true},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{".", false},
		{"..", false},
		{"a\x00b", false},
		{`a\b`, false},
		{"\xff\xfe", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 2048) + "b", false},
	} {
		err := ValidatePath(tc.p)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePath(%q) = %v, want ok=%v", tc.p, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidatePath(%q) error kind: %v", tc.p, err)
		}
	}
}

func entry(p, content string) Entry {
	return Entry{Path: p, Size: int64(len(content)), Digest: Sum([]byte(content))}
}

func TestManifestCanonical(t *testing.T) {
	a, err := NewManifest(KindDir, []Entry{entry("b/x.csv", "x"), entry("a.csv", "a"), entry("b/y.csv", "y")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewManifest(KindDir, []Entry{entry("b/y.csv", "y"), entry("b/x.csv", "x"), entry("a.csv", "a")})
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() || !bytes.Equal(a.Encode(), b.Encode()) {
		t.Fatal("order of entries changed the digest")
	}
	want := `{"format":1,"kind":"dir","files":[{"path":"a.csv","size":1,"digest":"` + Sum([]byte("a")).String() + `"},`
	if !strings.HasPrefix(string(a.Encode()), want) {
		t.Fatalf("encoding = %s", a.Encode())
	}
	got, err := DecodeManifest(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != a.Digest() || len(got.Files) != 3 || got.Files[2].Path != "b/y.csv" {
		t.Fatalf("decoded %+v", got)
	}
	if e, ok := got.Lookup("b/x.csv"); !ok || e.Digest != Sum([]byte("x")) {
		t.Fatal("lookup")
	}
	if _, ok := got.Lookup("b"); ok {
		t.Fatal("lookup of a folder")
	}
	// Exec bits are content: they change the digest.
	c, _ := NewManifest(KindDir, []Entry{entry("b/x.csv", "x"), {Path: "a.csv", Size: 1, Digest: Sum([]byte("a")), Exec: true}, entry("b/y.csv", "y")})
	if c.Digest() == a.Digest() {
		t.Fatal("exec bit ignored")
	}
	// A file version differs from a folder holding that one file.
	f1, _ := NewManifest(KindFile, []Entry{entry("a.csv", "a")})
	d1, _ := NewManifest(KindDir, []Entry{entry("a.csv", "a")})
	if f1.Digest() == d1.Digest() {
		t.Fatal("kind ignored")
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	d := Sum([]byte("a")).String()
	file := func(p string) string { return `{"path":"` + p + `","size":1,"digest":"` + d + `"}` }
	for name, in := range map[string]string{
		"traversal":       `{"format":1,"kind":"dir","files":[` + file("../../etc/passwd") + `]}`,
		"absolute":        `{"format":1,"kind":"dir","files":[` + file("/etc/passwd") + `]}`,
		"dotdot segment":  `{"format":1,"kind":"dir","files":[` + file("a/../../b") + `]}`,
		"NUL":             `{"format":1,"kind":"dir","files":[` + file(`a\u0000b`) + `]}`,
		"backslash":       `{"format":1,"kind":"dir","files":[` + file(`..\\..\\x`) + `]}`,
		"unsorted":        `{"format":1,"kind":"dir","files":[` + file("b") + `,` + file("a") + `]}`,
		"duplicate":       `{"format":1,"kind":"dir","files":[` + file("a") + `,` + file("a") + `]}`,
		"file and folder": `{"format":1,"kind":"dir","files":[` + file("a") + `,` + file("a/b") + `]}`,
		"format":          `{"format":2,"kind":"dir","files":[]}`,
		"kind":            `{"format":1,"kind":"link","files":[]}`,
		"file kind empty": `{"format":1,"kind":"file","files":[]}`,
		"unknown field":   `{"format":1,"kind":"dir","files":[],"x":1}`,
		"bad digest":      `{"format":1,"kind":"dir","files":[{"path":"a","size":1,"digest":"00"}]}`,
		"negative size":   `{"format":1,"kind":"dir","files":[{"path":"a","size":-1,"digest":"` + d + `"}]}`,
		"whitespace":      `{"format":1, "kind":"dir","files":[]}`,
		"trailing":        `{"format":1,"kind":"dir","files":[]}{}`,
		"not json":        `hello`,
		"empty":           ``,
	} {
		if _, err := DecodeManifest([]byte(in)); err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeManifest([]byte(`{"format":1,"kind":"dir","files":[]}`)); err != nil {
		t.Errorf("empty folder manifest: %v", err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	m, _ := NewManifest(KindDir, []Entry{entry("a.csv", "a"), entry("d/b.parquet", "b")})
	f.Add(m.Encode())
	fm, _ := NewManifest(KindFile, []Entry{entry("x.jsonl", "x")})
	f.Add(fm.Encode())
	f.Add([]byte(`{"format":1,"kind":"dir","files":[{"path":"../x","size":1,"digest":"00"}]}`))
	f.Add([]byte(`{"format":1,"kind":"dir","files":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), data) {
			t.Fatalf("accepted a non-canonical manifest: %q", data)
		}
		for _, e := range m.Files {
			if err := ValidatePath(e.Path); err != nil {
				t.Fatalf("accepted path %q: %v", e.Path, err)
			}
		}
	})
}

func TestManifestJSON(t *testing.T) {
	m, _ := NewManifest(KindDir, []Entry{entry("a", "a")})
	b, err := json.Marshal(struct {
		M *Manifest `json:"manifest"`
	}{m})
	if err != nil || string(b) != `{"manifest":`+string(m.Encode())+`}` {
		t.Fatalf("%s %v", b, err)
	}
	var back struct {
		M *Manifest `json:"manifest"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.M.Digest() != m.Digest() {
		t.Fatalf("%+v %v", back.M, err)
	}
	if err := json.Unmarshal([]byte(`{"manifest":{"format":1,"kind":"dir","files":[{"path":"../a","size":1,"digest":"`+Sum(nil).String()+`"}]}}`), &back); err == nil {
		t.Fatal("accepted a traversal path")
	}
}
