// Command databench is the helper of the data benchmark (bench/data/run.sh):
// it writes the benchmark's files and measures Kiln's hashing alone.
//
//	databench gen-small DIR N MIN_BYTES MAX_BYTES   N files of random size and content, nested folders
//	databench gen-large DIR N BYTES                 N files of random content
//	databench hash [-digests FILE] DIR              dataset.Hash of DIR with no stat cache; JSON to stdout
//
// The content is pseudo-random (ChaCha8, fixed seeds), so it neither
// compresses nor deduplicates, and reruns write the same bytes.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-ml/kiln/dataset"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "databench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: databench gen-small|gen-large|hash …")
	}
	switch args[0] {
	case "gen-small":
		if len(args) != 5 {
			return errors.New("usage: databench gen-small DIR N MIN_BYTES MAX_BYTES")
		}
		n, lo, hi, err := ints(args[2], args[3], args[4])
		if err != nil {
			return err
		}
		return genSmall(args[1], n, lo, hi)
	case "gen-large":
		if len(args) != 4 {
			return errors.New("usage: databench gen-large DIR N BYTES")
		}
		n, size, _, err := ints(args[2], args[3], "0")
		if err != nil {
			return err
		}
		return genLarge(args[1], n, int64(size))
	case "hash":
		fs := flag.NewFlagSet("hash", flag.ContinueOnError)
		digests := fs.String("digests", "", "write each file's digest here, as b3sum prints them")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("usage: databench hash [-digests FILE] DIR")
		}
		return hash(fs.Arg(0), *digests)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func ints(a, b, c string) (int, int, int, error) {
	var out [3]int
	for i, s := range []string{a, b, c} {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, 0, fmt.Errorf("invalid number %q", s)
		}
		out[i] = n
	}
	return out[0], out[1], out[2], nil
}

// genSmall writes n files of lo..hi bytes under dir in two levels of
// folders (d00/e0 … d99/e9), ten files per folder.
func genSmall(dir string, n, lo, hi int) error {
	if hi < lo || hi == 0 {
		return errors.New("gen-small: want 0 < MIN_BYTES ≤ MAX_BYTES")
	}
	c := rand.NewChaCha8([32]byte{1})
	r := rand.New(c)
	buf := make([]byte, hi)
	for i := range n {
		size := lo + r.IntN(hi-lo+1)
		b := buf[:size]
		c.Read(b)
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/100%100), fmt.Sprintf("e%d", i/10%10), fmt.Sprintf("f%05d.bin", i))
		if i%10 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// genLarge writes n files of size bytes, several at once.
func genLarge(dir string, n int, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		g.Go(func() error {
			var seed [32]byte
			seed[0], seed[1] = 2, byte(i)
			r := rand.NewChaCha8(seed)
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("part-%03d.bin", i)))
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(f, 1<<20)
			buf := make([]byte, 1<<20)
			for left := size; left > 0; {
				b := buf[:min(int64(len(buf)), left)]
				r.Read(b)
				if _, err := w.Write(b); err != nil {
					f.Close()
					return err
				}
				left -= int64(len(b))
			}
			if err := w.Flush(); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		})
	}
	return g.Wait()
}

// hashResult is what hash prints.
type hashResult struct {
	Files   int     `json:"files"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"`
	Workers int     `json:"workers"`
}

// hash hashes dir as `kiln data add` does (dataset.Hash, GOMAXPROCS
// workers, 1 MiB reads) but with no stat cache and no upload.
func hash(dir, digests string) error {
	src, err := dataset.NewLocalSource(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	m, st, err := dataset.Hash(context.Background(), src, dataset.HashOptions{})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	if digests != "" {
		f, err := os.Create(digests)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		for _, e := range m.Files {
			fmt.Fprintf(w, "%s  %s\n", e.Digest, e.Path)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(hashResult{
		Files: st.Files, Bytes: st.Bytes, Seconds: secs, MBps: float64(st.Bytes) / 1e6 / secs, Workers: runtime.GOMAXPROCS(0),
	})
}
