package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/blob"
)

// writeRandomFiles writes n files of size bytes of random content under
// dir (in 100 folders).
func writeRandomFiles(b *testing.B, dir string, n, size int) {
	r := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, size)
	for i := range n {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%100), fmt.Sprintf("f%06d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHash measures hashing throughput (MB/s) over 16 files of 16 MiB
// from the page cache, with no stat cache: the rate that bounds `kiln data
// add` on a fast disk.
func BenchmarkHash(b *testing.B) {
	dir := b.TempDir()
	writeRandomFiles(b, dir, 16, 16<<20)
	src, err := NewLocalSource(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(16 * 16 << 20)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Hash(ctx, src, HashOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddPush10kSmallFiles hashes 10,000 files of 1 KiB and pushes
// them to a fresh file:// artifact store each iteration.
func BenchmarkAddPush10kSmallFiles(b *testing.B) {
	dir := b.TempDir()
	writeRandomFiles(b, dir, 10000, 1024)
	src, err := NewLocalSource(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		bucket, err := blob.Open(ctx, "file://"+b.TempDir(), blob.Options{})
		if err != nil {
			b.Fatal(err)
		}
		remote := NewBucketRemote(bucket)
		b.StartTimer()
		m, _, err := Hash(ctx, src, HashOptions{})
		if err != nil {
			b.Fatal(err)
		}
		st, err := Push(ctx, src, m, remote, TransferOptions{})
		if err != nil || st.Sent != 10000 {
			b.Fatalf("%+v %v", st, err)
		}
		b.StopTimer()
		bucket.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkRehash10kSmallFiles hashes an unchanged tree of 10,000 files
// through a warm stat cache (the second `kiln data add`).
func BenchmarkRehash10kSmallFiles(b *testing.B) {
	dir := b.TempDir()
	writeRandomFiles(b, dir, 10000, 1024)
	src, _ := NewLocalSource(dir)
	cache, _ := OpenStatCache(filepath.Join(b.TempDir(), "sc"))
	cache.RacyWindow = 0
	ctx := context.Background()
	if _, _, err := Hash(ctx, src, HashOptions{StatCache: cache}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, st, err := Hash(ctx, src, HashOptions{StatCache: cache}); err != nil || st.HashedFiles != 0 {
			b.Fatalf("%+v %v", st, err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkAddPush10kSmallFilesToCache is the same into a local Cache,
// which does not sync each object to disk: the difference with the
// file:// store is the cost of one fsync per object there.
func BenchmarkAddPush10kSmallFilesToCache(b *testing.B) {
	dir := b.TempDir()
	writeRandomFiles(b, dir, 10000, 1024)
	src, err := NewLocalSource(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		cache, err := OpenCache(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		m, _, err := Hash(ctx, src, HashOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if st, err := Push(ctx, src, m, cache, TransferOptions{}); err != nil || st.Sent != 10000 {
			b.Fatalf("%+v %v", st, err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}
