package local

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/pipeline"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"data": "KILN_INPUT_DATA", "min-auc": "KILN_INPUT_MIN_AUC", "a.b_C9": "KILN_INPUT_A_B_C9", "é": "KILN_INPUT___"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseScalar(t *testing.T) {
	tests := []struct {
		data, typ, want string
		ok              bool
	}{
		{" 0.5\n", pipeline.OutputMetric, "0.5", true},
		{"1e3", pipeline.OutputMetric, "1e3", true},
		{"Inf", pipeline.OutputMetric, "", false},
		{"", pipeline.OutputMetric, "", false},
		{"", pipeline.OutputParameter, "", true},
		{"a\x00b", pipeline.OutputParameter, "", false},
		{"\xff", pipeline.OutputParameter, "", false},
		{" models:/m/1 ", pipeline.OutputModel, "models:/m/1", true},
		{"x", "artifact", "", false},
	}
	for _, tt := range tests {
		got, err := parseScalar([]byte(tt.data), tt.typ)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseScalar(%q, %s) = %q, %v", tt.data, tt.typ, got, err)
		}
	}
}

func FuzzParseScalar(f *testing.F) {
	for _, s := range []string{"0.5", " 1e9\n", "NaN", "-inf", "models:/x/1", "", "\xff"} {
		f.Add([]byte(s), "metric")
	}
	f.Fuzz(func(t *testing.T, data []byte, typ string) {
		v, err := parseScalar(data, typ)
		if err != nil {
			return
		}
		if v != strings.TrimSpace(v) || len(v) > MaxScalarOutput || strings.ContainsRune(v, 0) {
			t.Errorf("bad value %q", v)
		}
	})
}

// chunkReader returns data in reads of the given sizes.
type chunkReader struct {
	data  []byte
	sizes []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = int(r.sizes[0]) + 1
		r.sizes = r.sizes[1:]
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

type writes struct{ ws [][]byte }

func (w *writes) Write(p []byte) (int, error) {
	w.ws = append(w.ws, bytes.Clone(p))
	return len(p), nil
}

// FuzzCopyLines: whatever the reads, the log gets every byte in order, in
// writes that end at a newline unless they fill the buffer or end the
// stream.
func FuzzCopyLines(f *testing.F) {
	f.Add([]byte("a\nbb\nccc"), []byte{0, 1, 2})
	f.Add(bytes.Repeat([]byte("x"), 3*streamChunk+5), []byte{255, 255})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		var w writes
		copyLines(&chunkReader{data: data, sizes: sizes}, &w)
		if got := bytes.Join(w.ws, nil); !bytes.Equal(got, data) {
			t.Fatalf("copied %q, want %q", got, data)
		}
		for i, p := range w.ws {
			if len(p) == 0 {
				t.Fatal("empty write")
			}
			if i < len(w.ws)-1 && p[len(p)-1] != '\n' && len(p) != streamChunk {
				t.Fatalf("write %d %q is not whole lines", i, p)
			}
		}
	})
}
