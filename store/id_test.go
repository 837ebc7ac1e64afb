package store

import (
	"regexp"
	"testing"
)

func TestNewIDSortsAndIsUnique(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
	prev := ""
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if !re.MatchString(id) {
			t.Fatalf("%q is not a ULID", id)
		}
		if id <= prev || seen[id] {
			t.Fatalf("ids do not increase: %q after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}
