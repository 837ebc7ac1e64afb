// Command pitbench times Kiln's point-in-time join (feature/pit) on
// Parquet files: it reads an entity table and one feature view's source,
// joins, writes the training set as Parquet and prints the timings as
// JSON. bench/features/pit.py generates the data, runs it next to pandas'
// merge_asof and compares the outputs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/feature/pit"
)

func main() {
	entities := flag.String("entities", "", "entity Parquet file")
	source := flag.String("source", "", "feature source Parquet file")
	out := flag.String("out", "", "output Parquet file")
	keys := flag.String("keys", "customer_id", "join keys, comma-separated")
	ts := flag.String("ts", "event_timestamp", "source event-time column")
	created := flag.String("created", "", "source created-time column")
	features := flag.String("features", "", "feature columns, comma-separated")
	ttl := flag.Duration("ttl", 0, "TTL (0: none)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			slog.Error("pitbench", "err", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			slog.Error("pitbench", "err", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(context.Background(), *entities, *source, *out, strings.Split(*keys, ","), *ts, *created, strings.Split(*features, ","), *ttl); err != nil {
		slog.Error("pitbench", "err", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, entities, source, out string, keys []string, ts, created string, features []string, ttl time.Duration) error {
	start := time.Now()
	er, err := table.Open(ctx, entities, table.Options{})
	if err != nil {
		return err
	}
	defer er.Close()
	cols := append(append([]string{}, keys...), ts)
	if created != "" {
		cols = append(cols, created)
	}
	cols = append(cols, features...)
	sr, err := table.Open(ctx, source, table.Options{Columns: cols})
	if err != nil {
		return err
	}
	defer sr.Close()
	view := pit.View{Name: "v", Source: sr, JoinKeys: keys, TimestampField: ts, CreatedField: created, TTL: ttl}
	for _, f := range features {
		view.Features = append(view.Features, pit.Feature{Name: f})
	}
	views := []pit.View{view}
	sch, err := pit.Schema(er.Schema(), views, pit.Options{})
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := table.NewParquetWriter(f, sch, table.ParquetWriterOptions{})
	if err != nil {
		return err
	}
	st, err := pit.Join(ctx, er, views, pit.Options{}, w)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", out, err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"seconds":      time.Since(start).Seconds(),
		"cpu_seconds":  cpu.Seconds(),
		"max_rss_mib":  ru.Maxrss >> 10,
		"entity_rows":  st.EntityRows,
		"source_rows":  st.SourceRows[0],
		"kept_rows":    st.KeptRows[0],
		"matched":      st.Matched[0],
		"heap_sys_mib": ms.HeapSys >> 20,
		"gomaxprocs":   runtime.GOMAXPROCS(0),
	})
}
