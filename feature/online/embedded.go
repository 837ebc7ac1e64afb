package online

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/kiln-ml/kiln/store"
)

// Embedded is the online store in the metadata database: table
// feature_online, one row per (view, entity_key) holding the event and
// created times (Unix µs) and the encoded values.
//
// Put is one multi-row INSERT … ON CONFLICT DO UPDATE … WHERE per up to
// putChunk records, the WHERE keeping the newer (event_time, created_time),
// in transactions of up to putTxRecords records. Get is one SELECT … IN (…)
// per up to getChunk keys, prepared once per list length on the read pool
// (lengths are rounded up to a power of two, repeating the last key, so a
// handful of statements cover every request).
type Embedded struct {
	db *store.DB
	// r is the read pool: on a SQLite file, a pool of its own with
	// memory-mapped I/O (a lookup of random keys among millions reads pages
	// through the OS page cache instead of one pread each); else db.R.
	r    *sql.DB
	ownR bool

	mu    sync.Mutex
	reads map[int]*sql.Stmt // by IN-list length
}

const (
	getChunk     = 256
	putChunk     = 256
	putTxRecords = 8192
)

// NewEmbedded returns the embedded online store on db. Close releases its
// prepared statements, not db.
func NewEmbedded(db *store.DB) *Embedded {
	e := &Embedded{db: db, r: db.R, reads: make(map[int]*sql.Stmt)}
	if db.Dialect == store.SQLite {
		if r := openMmapReaders(db); r != nil {
			e.r, e.ownR = r, true
		}
	}
	return e
}

// readPool is the number of connections of the SQLite read pool.
const readPool = 8

// openMmapReaders opens read-only connections with memory-mapped I/O on the
// file of db, or returns nil (an in-memory database, or any error: the
// store then reads through db.R).
func openMmapReaders(db *store.DB) *sql.DB {
	var seq int
	var name, path string
	if err := db.R.QueryRow("PRAGMA database_list").Scan(&seq, &name, &path); err != nil || path == "" {
		return nil
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)"+
		"&_pragma=mmap_size(68719476736)&_pragma=cache_size(-2048)")
	if err != nil {
		return nil
	}
	r.SetMaxOpenConns(readPool)
	r.SetMaxIdleConns(readPool)
	var n int
	if err := r.QueryRow("SELECT count(*) FROM feature_online WHERE view = ''").Scan(&n); err != nil {
		r.Close()
		return nil
	}
	return r
}

// Name is "embedded".
func (e *Embedded) Name() string { return "embedded" }

// Close releases the prepared statements.
func (e *Embedded) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for n, st := range e.reads {
		st.Close()
		delete(e.reads, n)
	}
	if e.ownR {
		e.ownR = false
		return e.r.Close()
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func upsertQuery(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO feature_online (view, entity_key, event_time, created_time, value) VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?)")
	}
	b.WriteString(" ON CONFLICT (view, entity_key) DO UPDATE SET" +
		" event_time = excluded.event_time, created_time = excluded.created_time, value = excluded.value" +
		" WHERE excluded.event_time > feature_online.event_time" +
		" OR (excluded.event_time = feature_online.event_time AND excluded.created_time >= feature_online.created_time)")
	return b.String()
}

// Put upserts recs into view, keeping for each key the record with the
// newer (EventTime, CreatedTime); of equal times the one written last.
func (e *Embedded) Put(ctx context.Context, view string, recs []Record) error {
	recs = dedupe(recs)
	// Statements for the chunk sizes used: putChunk, then the binary
	// decomposition of the remainder (at most log2(putChunk)+1 shapes).
	stmts := make(map[int]store.Stmt)
	stmt := func(n int) (store.Stmt, error) {
		if st, ok := stmts[n]; ok {
			return st, nil
		}
		st, err := e.db.Prepare(ctx, e.db.Rebind(upsertQuery(n)))
		if err != nil {
			return st, fmt.Errorf("online: prepare upsert: %w", err)
		}
		stmts[n] = st
		return st, nil
	}
	var sizes []int
	for rest := len(recs); rest > 0; {
		n := putChunk
		for n > rest {
			n /= 2
		}
		sizes = append(sizes, n)
		rest -= n
	}
	for _, n := range sizes {
		if _, err := stmt(n); err != nil {
			return err
		}
	}
	args := make([]any, 0, 5*putChunk)
	for len(recs) > 0 {
		// One transaction for up to putTxRecords records.
		var tx []int
		total := 0
		for len(sizes) > 0 && total+sizes[0] <= putTxRecords {
			tx = append(tx, sizes[0])
			total += sizes[0]
			sizes = sizes[1:]
		}
		batch := recs[:total]
		recs = recs[total:]
		err := e.db.Tx(ctx, func(t store.Tx) error {
			off := 0
			for _, n := range tx {
				args = args[:0]
				for _, r := range batch[off : off+n] {
					v := r.Value
					if v == nil {
						v = []byte{}
					}
					args = append(args, view, r.Key, r.EventTime, r.CreatedTime, v)
				}
				off += n
				if _, err := stmts[n].Exec(ctx, t, args...); err != nil {
					return fmt.Errorf("online: upsert into %s: %w", view, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readStmt returns the SELECT for an IN list of n keys, prepared on the read pool.
func (e *Embedded) readStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.reads[n]; ok {
		return st, nil
	}
	q := "SELECT entity_key, event_time, created_time, value FROM feature_online WHERE view = ? AND "
	if n == 1 {
		q += "entity_key = ?"
	} else {
		q += "entity_key IN (" + placeholders(n) + ")"
	}
	st, err := e.r.PrepareContext(ctx, e.db.Rebind(q))
	if err != nil {
		return nil, fmt.Errorf("online: prepare lookup: %w", err)
	}
	e.reads[n] = st
	return st, nil
}

// Get returns the records of keys in view, in key order, nil where absent.
// A key given twice gets the same *Record twice.
func (e *Embedded) Get(ctx context.Context, view string, keys []string) ([]*Record, error) {
	out := make([]*Record, len(keys))
	args := make([]any, 0, 1+getChunk)
	for off := 0; off < len(keys); off += getChunk {
		chunk := keys[off:min(off+getChunk, len(keys))]
		n := 1
		for n < len(chunk) {
			n *= 2
		}
		st, err := e.readStmt(ctx, n)
		if err != nil {
			return nil, err
		}
		args = append(args[:0], view)
		for _, k := range chunk {
			args = append(args, k)
		}
		for len(args) < 1+n {
			args = append(args, chunk[len(chunk)-1])
		}
		if err := e.query(ctx, st, args, chunk, out[off:off+len(chunk)]); err != nil {
			return nil, fmt.Errorf("online: lookup in %s: %w", view, err)
		}
	}
	return out, nil
}

func (e *Embedded) query(ctx context.Context, st *sql.Stmt, args []any, keys []string, out []*Record) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var pos map[string][]int
	if len(keys) > 8 {
		pos = make(map[string][]int, len(keys))
		for i, k := range keys {
			pos[k] = append(pos[k], i)
		}
	}
	for rows.Next() {
		r := new(Record)
		if err := rows.Scan(&r.Key, &r.EventTime, &r.CreatedTime, &r.Value); err != nil {
			return err
		}
		if pos != nil {
			for _, i := range pos[r.Key] {
				out[i] = r
			}
			continue
		}
		for i, k := range keys {
			if k == r.Key {
				out[i] = r
			}
		}
	}
	return rows.Err()
}

// deleteChunk bounds the rows one DELETE transaction removes, so that
// deleting a large view does not hold SQLite's single writer for seconds.
var deleteChunk = 10000

// DeleteView removes every record of view, deleteChunk rows a transaction.
func (e *Embedded) DeleteView(ctx context.Context, view string) error {
	q := e.db.Rebind("DELETE FROM feature_online WHERE view = ? AND entity_key IN" +
		" (SELECT entity_key FROM feature_online WHERE view = ? LIMIT ?)")
	for {
		res, err := e.db.W.ExecContext(ctx, q, view, view, deleteChunk)
		if err != nil {
			return fmt.Errorf("online: delete %s: %w", view, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("online: delete %s: %w", view, err)
		}
		if n < int64(deleteChunk) {
			return nil
		}
	}
}
