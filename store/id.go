package store

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// Identifiers of Kiln-native rows (score jobs, gate results, …) are ULIDs
// (DESIGN.md §4): sortable by creation time, unique across replicas.

var (
	idMu     sync.Mutex
	lastMS   uint64
	lastRand [10]byte
)

// NewID returns a ULID: 48 bits of milliseconds and 80 random bits in
// Crockford's base32, 26 characters that sort by time; ids made in the
// same millisecond by this process increase.
func NewID() string {
	idMu.Lock()
	ms := uint64(time.Now().UnixMilli())
	var rnd [10]byte
	if ms <= lastMS {
		ms, rnd = lastMS, lastRand
		for i := len(rnd) - 1; i >= 0; i-- {
			rnd[i]++
			if rnd[i] != 0 {
				break
			}
		}
	} else {
		rand.Read(rnd[:])
	}
	lastMS, lastRand = ms, rnd
	idMu.Unlock()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	copy(b[6:], rnd[:])
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var out [26]byte
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
