package access

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/store"
)

// Event is one entry of the audit log: who did what, when, to which
// resource, with which outcome, and digests of what was sent and answered.
// Hash covers every other field, PrevHash included, so that the log is a
// chain: changing, removing or inserting a row breaks it from there on.
type Event struct {
	Seq    int64  `json:"seq"`
	Time   int64  `json:"time"`
	Actor  string `json:"actor"`
	Auth   string `json:"auth,omitempty"` // password, token, session, anonymous
	Action string `json:"action"`         // the route: "POST /api/2.0/mlflow/runs/create"
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	// Workspace and Resource say what the action was on
	// ("registered_model/churn").
	Workspace string `json:"workspace,omitempty"`
	Resource  string `json:"resource,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Status is the HTTP status answered (403: refused).
	Status    int    `json:"status"`
	SourceIP  string `json:"source_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// RequestDigest and ResponseDigest are "sha256:<hex>" of the request
	// body (the change asked for) and of the response body (the state
	// answered after it).
	RequestDigest  string `json:"request_digest,omitempty"`
	ResponseDigest string `json:"response_digest,omitempty"`
	Detail         string `json:"detail,omitempty"`
	PrevHash       string `json:"prev_hash"`
	Hash           string `json:"hash"`
}

// GenesisHash is the PrevHash of the first event.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// EventHash is the hash of e: SHA-256 of the JSON of every field but
// Hash, in the order Event declares them.
func EventHash(e *Event) string {
	c := *e
	c.Hash = ""
	b, _ := json.Marshal(&c) // a struct of strings and ints cannot fail
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Digest is how the audit log writes a body digest.
func Digest(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Audit is the audit log.
type Audit struct {
	db  *store.DB
	now func() time.Time

	// On SQLite (one server per database) the chain's head is kept in
	// memory after the first append, saving a query per event; head.ok is
	// false until it is known (and after a failed append).
	mu   sync.Mutex
	head struct {
		ok   bool
		seq  int64
		hash string
	}
}

// NewAudit returns the audit log on db.
func NewAudit(db *store.DB) *Audit { return &Audit{db: db, now: time.Now} }

const auditCols = `seq, time, actor, auth, action, method, path, workspace, resource, request_id, status, source_ip, user_agent, request_digest, response_digest, detail, prev_hash, hash`

// auditLockKey is the advisory lock that serializes appends on
// PostgreSQL (servers sharing one database append to one chain).
const auditLockKey = 0x6b696c6e61756474 // "kilnaudt"

// Append adds e to the log, setting its Seq, Time (if zero), PrevHash and
// Hash. It returns when the event is committed (on SQLite, in a group
// commit with the appends that arrive at the same time).
func (a *Audit) Append(ctx context.Context, e *Event) error {
	e.sanitize()
	if e.Time == 0 {
		e.Time = a.now().UnixMilli()
	}
	err := a.db.GroupTx(ctx, func(tx store.Tx) error {
		if a.db.Dialect == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLockKey)); err != nil {
				return fmt.Errorf("access: audit lock: %w", err)
			}
		}
		cache := a.db.Dialect == store.SQLite
		if cache {
			// Appends on SQLite run one at a time (one writer), so the
			// lock is never contended; it guards the head across them.
			a.mu.Lock()
			defer a.mu.Unlock()
		}
		var seq int64
		var prev string
		if cache && a.head.ok {
			seq, prev = a.head.seq, a.head.hash
		} else {
			err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				seq, prev = 0, GenesisHash
			case err != nil:
				return fmt.Errorf("access: audit head: %w", err)
			}
		}
		e.Seq, e.PrevHash = seq+1, prev
		e.Hash = EventHash(e)
		_, err := tx.ExecContext(ctx, a.db.Rebind(`INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			e.Seq, e.Time, e.Actor, e.Auth, e.Action, e.Method, e.Path, e.Workspace, e.Resource, e.RequestID, e.Status,
			e.SourceIP, e.UserAgent, e.RequestDigest, e.ResponseDigest, e.Detail, e.PrevHash, e.Hash)
		if err != nil {
			a.head.ok = false
			return fmt.Errorf("access: audit append: %w", err)
		}
		if cache {
			a.head.ok, a.head.seq, a.head.hash = true, e.Seq, e.Hash
		}
		return nil
	})
	if err != nil && a.db.Dialect == store.SQLite {
		a.mu.Lock()
		a.head.ok = false // the shared transaction may have rolled back
		a.mu.Unlock()
	}
	return err
}

// AuditQuery selects events: between sequence numbers, by actor, action
// and resource, in a time range; Limit bounds the page (default 1000, at
// most 10000).
type AuditQuery struct {
	After  int64
	Before int64 // exclusive; 0: no bound
	Actor  string
	// Action keeps the events whose action (the route, "POST
	// /api/v1/users") contains it; Resource those whose resource or path
	// contains it. Both compare case-sensitively.
	Action   string
	Resource string
	Since    int64 // unix ms, inclusive
	Until    int64 // unix ms, exclusive; 0: no bound
	Limit    int
	// Desc lists the newest first (the page then ends Limit events below
	// Before).
	Desc bool
}

// List returns events in sequence order (newest first with q.Desc).
func (a *Audit) List(ctx context.Context, q AuditQuery) ([]*Event, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	q.Limit = min(q.Limit, 10000)
	until := q.Until
	if until == 0 {
		until = 1<<63 - 1
	}
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	contains := `instr(%s, ?) > 0`
	if a.db.Dialect == store.Postgres {
		contains = `strpos(%s, ?) > 0`
	}
	order := "seq"
	if q.Desc {
		order = "seq DESC"
	}
	rows, err := a.db.R.QueryContext(ctx, a.db.Rebind(`SELECT `+auditCols+` FROM audit_events
		WHERE seq > ? AND seq < ? AND (? = '' OR actor = ?) AND time >= ? AND time < ?
		AND (? = '' OR `+fmt.Sprintf(contains, "action")+`)
		AND (? = '' OR `+fmt.Sprintf(contains, "resource")+` OR `+fmt.Sprintf(contains, "path")+`)
		ORDER BY `+order+` LIMIT ?`),
		q.After, before, q.Actor, q.Actor, q.Since, until, q.Action, q.Action, q.Resource, q.Resource, q.Resource, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("access: audit list: %w", err)
	}
	defer rows.Close()
	out := []*Event{}
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Seq, &e.Time, &e.Actor, &e.Auth, &e.Action, &e.Method, &e.Path, &e.Workspace, &e.Resource, &e.RequestID,
			&e.Status, &e.SourceIP, &e.UserAgent, &e.RequestDigest, &e.ResponseDigest, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("access: audit list: %w", err)
		}
		out = append(out, &e)
	}
	return out, rows.Err()
}

// Verification is the outcome of walking the chain.
type Verification struct {
	OK     bool  `json:"ok"`
	Events int64 `json:"events"` // how many were checked
	Last   int64 `json:"last_seq,omitempty"`
	// FirstBad is the sequence number of the first event that does not
	// match (0 when OK), and Problem says how.
	FirstBad int64  `json:"first_bad_seq,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Head is the hash of the last event checked: writing it down
	// somewhere else lets a later Verify prove nothing before it changed.
	Head string `json:"head,omitempty"`
}

// Chain checks events in order, continuing from a previous page's state
// (start with NewChain()).
type Chain struct {
	v    Verification
	prev string
	seq  int64
}

// NewChain starts a verification at the beginning of the log.
func NewChain() *Chain { return &Chain{v: Verification{OK: true}, prev: GenesisHash} }

// Add checks the next event; it reports false (and stops checking) at the
// first that does not match.
func (c *Chain) Add(e *Event) bool {
	if !c.v.OK {
		return false
	}
	fail := func(msg string) bool {
		c.v.OK, c.v.FirstBad, c.v.Problem = false, e.Seq, msg
		return false
	}
	switch {
	case e.Seq != c.seq+1:
		return fail(fmt.Sprintf("event %d follows event %d: events are missing", e.Seq, c.seq))
	case e.PrevHash != c.prev:
		return fail(fmt.Sprintf("event %d does not chain to the event before it (prev_hash %.12s…, want %.12s…): an event before it was changed or removed", e.Seq, e.PrevHash, c.prev))
	case EventHash(e) != e.Hash:
		return fail(fmt.Sprintf("event %d was changed after it was written (its hash does not match its fields)", e.Seq))
	}
	c.v.Events++
	c.v.Last, c.v.Head = e.Seq, e.Hash
	c.prev, c.seq = e.Hash, e.Seq
	return true
}

// Result is where the verification stands.
func (c *Chain) Result() Verification { return c.v }

// Verify walks the whole log.
func (a *Audit) Verify(ctx context.Context) (Verification, error) {
	c := NewChain()
	var after int64
	for {
		evs, err := a.List(ctx, AuditQuery{After: after, Limit: 10000})
		if err != nil {
			return Verification{}, err
		}
		for _, e := range evs {
			if !c.Add(e) {
				return c.Result(), nil
			}
		}
		if len(evs) < 10000 {
			return c.Result(), nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// sanitize makes the event's text storable in every database before it
// is hashed: PostgreSQL's TEXT refuses NUL bytes and invalid UTF-8 (a
// request path with %00, a name clipped inside a rune), which would lose
// the event. NUL becomes U+FFFD, as do invalid sequences.
func (e *Event) sanitize() {
	for _, f := range []*string{&e.Actor, &e.Auth, &e.Action, &e.Method, &e.Path, &e.Workspace, &e.Resource,
		&e.RequestID, &e.SourceIP, &e.UserAgent, &e.Detail} {
		if !utf8.ValidString(*f) || strings.IndexByte(*f, 0) >= 0 {
			*f = strings.ReplaceAll(strings.ToValidUTF8(*f, "\uFFFD"), "\x00", "\uFFFD")
		}
	}
}
