//go:build race

package validate

// The race detector makes sync.Pool drop its items, so regexp allocates.
const raceEnabled = true
