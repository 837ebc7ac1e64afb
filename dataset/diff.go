package dataset

import (
	"path"
	"strings"
)

// Change is a file whose content differs between two versions.
type Change struct {
	Path      string `json:"path"`
	OldSize   int64  `json:"old_size"`
	NewSize   int64  `json:"new_size"`
	OldDigest Digest `json:"old_digest"`
	NewDigest Digest `json:"new_digest"`
}

// Diff lists how version b differs from version a.
type Diff struct {
	Added     []Entry  `json:"added"`
	Removed   []Entry  `json:"removed"`
	Changed   []Change `json:"changed"`
	Unchanged int      `json:"unchanged"`
	// SizeDelta is b's total size minus a's.
	SizeDelta int64 `json:"size_delta"`
}

// DiffManifests compares two manifests by path and digest (a change of the
// executable bit alone is not a change of content). For two file versions
// whose single file has different names, the file is compared as the same
// file, reported under b's name.
func DiffManifests(a, b *Manifest) *Diff {
	d := &Diff{Added: []Entry{}, Removed: []Entry{}, Changed: []Change{}, SizeDelta: b.TotalSize() - a.TotalSize()}
	if a.Kind == KindFile && b.Kind == KindFile {
		ea, eb := a.Files[0], b.Files[0]
		if ea.Digest == eb.Digest {
			d.Unchanged = 1
		} else {
			d.Changed = append(d.Changed, Change{Path: eb.Path, OldSize: ea.Size, NewSize: eb.Size, OldDigest: ea.Digest, NewDigest: eb.Digest})
		}
		return d
	}
	i, j := 0, 0
	for i < len(a.Files) || j < len(b.Files) {
		switch {
		case j == len(b.Files) || i < len(a.Files) && a.Files[i].Path < b.Files[j].Path:
			d.Removed = append(d.Removed, a.Files[i])
			i++
		case i == len(a.Files) || b.Files[j].Path < a.Files[i].Path:
			d.Added = append(d.Added, b.Files[j])
			j++
		default:
			ea, eb := a.Files[i], b.Files[j]
			if ea.Digest == eb.Digest {
				d.Unchanged++
			} else {
				d.Changed = append(d.Changed, Change{Path: ea.Path, OldSize: ea.Size, NewSize: eb.Size, OldDigest: ea.Digest, NewDigest: eb.Digest})
			}
			i++
			j++
		}
	}
	return d
}

// IsTablePath reports whether a path names a table file that the table
// readers understand, by its extension: .csv, .parquet, .jsonl (or
// .ndjson), optionally compressed with .gz.
func IsTablePath(p string) bool {
	p = strings.ToLower(path.Base(p))
	p = strings.TrimSuffix(p, ".gz")
	switch path.Ext(p) {
	case ".csv", ".parquet", ".pq", ".jsonl", ".ndjson":
		return true
	}
	return false
}

// ChangedTables returns the table files of the diff whose rows and schema a
// caller may want to compare: changed tables (in both versions) and added
// ones (only in b). This is the hook for row counts and schema changes,
// which need the table readers.
func (d *Diff) ChangedTables() (changed []Change, added []Entry) {
	for _, c := range d.Changed {
		if IsTablePath(c.Path) {
			changed = append(changed, c)
		}
	}
	for _, e := range d.Added {
		if IsTablePath(e.Path) {
			added = append(added, e)
		}
	}
	return changed, added
}
