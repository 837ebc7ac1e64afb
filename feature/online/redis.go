package online

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis is the online store on a Redis server.
//
// Key layout: one string per view and entity key,
//
//	kiln:fs:<view>:<entity_key>  →  0x01 | event_time | created_time | value
//
// where 0x01 is the format version, the times are Unix microseconds as 8
// bytes big-endian with the sign bit flipped (so that comparing the 16 bytes
// compares (event_time, created_time)), and value is the encoded feature
// values. View names may not contain ':'.
//
// Put runs a Lua script per up to redisChunk records that writes each record
// only if its times are not older than the stored ones (atomic per key, no
// read-modify-write race between writers), pipelined; Get is MGET per up to
// redisChunk keys, pipelined; DeleteView is SCAN MATCH kiln:fs:<view>:* with
// UNLINK of each batch.
type Redis struct {
	rdb *redis.Client
}

const (
	redisPrefix  = "kiln:fs:"
	redisFormat  = 0x01
	redisHeader  = 17
	redisChunk   = 256 // keys per script call or MGET
	redisPipe    = 64  // commands per pipeline round trip
	redisScanCnt = 1000
)

// putScript writes ARGV[i] to KEYS[i] unless the stored record's header
// (bytes 2..17: event and created time) is greater. It returns the number of
// records written.
var putScript = redis.NewScript(`
local n = 0
for i = 1, #KEYS do
  local new = ARGV[i]
  local cur = redis.call('GETRANGE', KEYS[i], 0, 16)
  local write = true
  if #cur == 17 and string.byte(cur, 1) == 1 then
    for j = 2, 17 do
      local a, b = string.byte(new, j), string.byte(cur, j)
      if a ~= b then
        write = a > b
        break
      end
    end
  end
  if write then
    redis.call('SET', KEYS[i], new)
    n = n + 1
  end
end
return n
`)

// NewRedis connects to the Redis server at url (redis://[user:pass@]host:port/db,
// rediss:// for TLS) and checks that it answers.
func NewRedis(ctx context.Context, url string) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("online: redis URL %q: %w", redactURL(url), err)
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 2 // a wrong address fails fast rather than after 5 dials per retry
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("online: connect to redis %s: %w", redactURL(url), err)
	}
	if err := putScript.Load(ctx, rdb).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("online: load the redis put script: %w", err)
	}
	return &Redis{rdb: rdb}, nil
}

// Name is "redis".
func (r *Redis) Name() string { return "redis" }

// Close closes the connections.
func (r *Redis) Close() error { return r.rdb.Close() }

func redisKey(view, key string) string {
	return redisPrefix + view + ":" + key
}

func checkView(view string) error {
	if view == "" || strings.IndexByte(view, ':') >= 0 {
		return fmt.Errorf("online: invalid view name %q for redis (empty or with ':')", view)
	}
	return nil
}

// putTime maps a signed time to 8 bytes that sort like it.
func putTime(b []byte, t int64) {
	binary.BigEndian.PutUint64(b, uint64(t)^(1<<63))
}

func getTime(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

func encodeRedis(r *Record) []byte {
	b := make([]byte, redisHeader+len(r.Value))
	b[0] = redisFormat
	putTime(b[1:9], r.EventTime)
	putTime(b[9:17], r.CreatedTime)
	copy(b[redisHeader:], r.Value)
	return b
}

func decodeRedis(key, s string) (*Record, error) {
	if len(s) < redisHeader || s[0] != redisFormat {
		return nil, fmt.Errorf("online: redis value of %q is not a kiln record", key)
	}
	b := []byte(s)
	return &Record{
		Key:         key,
		EventTime:   getTime(b[1:9]),
		CreatedTime: getTime(b[9:17]),
		Value:       b[redisHeader:],
	}, nil
}

// Put writes recs into view, keeping for each key the record with the newer
// (EventTime, CreatedTime); of equal times the one written last.
func (r *Redis) Put(ctx context.Context, view string, recs []Record) error {
	if err := checkView(view); err != nil {
		return err
	}
	recs = dedupe(recs)
	for len(recs) > 0 {
		n := min(len(recs), redisChunk*redisPipe)
		if err := r.putPipelined(ctx, view, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

func (r *Redis) putPipelined(ctx context.Context, view string, recs []Record) error {
	type call struct {
		keys []string
		args []any
	}
	var calls []call
	for off := 0; off < len(recs); off += redisChunk {
		chunk := recs[off:min(off+redisChunk, len(recs))]
		c := call{keys: make([]string, len(chunk)), args: make([]any, len(chunk))}
		for i := range chunk {
			c.keys[i] = redisKey(view, chunk[i].Key)
			c.args[i] = encodeRedis(&chunk[i])
		}
		calls = append(calls, c)
	}
	run := func() error {
		pipe := r.rdb.Pipeline()
		for _, c := range calls {
			putScript.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// The server lost its script cache (restart, SCRIPT FLUSH): load it
		// and run again (writes are idempotent under newer-wins).
		if err = putScript.Load(ctx, r.rdb).Err(); err == nil {
			err = run()
		}
	}
	if err != nil {
		return fmt.Errorf("online: redis put into %s: %w", view, err)
	}
	return nil
}

// Get returns the records of keys in view, in key order, nil where absent.
func (r *Redis) Get(ctx context.Context, view string, keys []string) ([]*Record, error) {
	if err := checkView(view); err != nil {
		return nil, err
	}
	out := make([]*Record, len(keys))
	if len(keys) == 1 {
		s, err := r.rdb.Get(ctx, redisKey(view, keys[0])).Result()
		if errors.Is(err, redis.Nil) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("online: redis lookup in %s: %w", view, err)
		}
		rec, err := decodeRedis(keys[0], s)
		if err != nil {
			return nil, err
		}
		out[0] = rec
		return out, nil
	}
	for start := 0; start < len(keys); start += redisChunk * redisPipe {
		part := keys[start:min(start+redisChunk*redisPipe, len(keys))]
		pipe := r.rdb.Pipeline()
		var cmds []*redis.SliceCmd
		for off := 0; off < len(part); off += redisChunk {
			chunk := part[off:min(off+redisChunk, len(part))]
			rk := make([]string, len(chunk))
			for i, k := range chunk {
				rk[i] = redisKey(view, k)
			}
			cmds = append(cmds, pipe.MGet(ctx, rk...))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("online: redis lookup in %s: %w", view, err)
		}
		for c, cmd := range cmds {
			for i, v := range cmd.Val() {
				s, ok := v.(string)
				if !ok {
					continue // nil: absent
				}
				j := start + c*redisChunk + i
				rec, err := decodeRedis(keys[j], s)
				if err != nil {
					return nil, err
				}
				out[j] = rec
			}
		}
	}
	return out, nil
}

// globEscape escapes the pattern characters of SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// DeleteView removes every record of view (SCAN and UNLINK in batches; keys
// written while it runs may survive).
func (r *Redis) DeleteView(ctx context.Context, view string) error {
	if err := checkView(view); err != nil {
		return err
	}
	match := globEscape(redisPrefix+view+":") + "*"
	var cursor uint64
	for {
		keys, next, err := r.rdb.Scan(ctx, cursor, match, redisScanCnt).Result()
		if err != nil {
			return fmt.Errorf("online: redis delete %s: %w", view, err)
		}
		if len(keys) > 0 {
			if err := r.rdb.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("online: redis delete %s: %w", view, err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
