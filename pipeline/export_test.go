package pipeline

import "time"

// Crash stops s from writing anything, as if its process died: its
// attempts end without releasing their leases.
func (s *Service) Crash() {
	s.mu.Lock()
	s.crashed = true
	s.mu.Unlock()
}

// LogCursorOf returns the StoredUntil of the log writer the engine would
// give an attempt of run's step now (the LogCursor Attach receives).
func (s *Service) LogCursorOf(runID, step string, attempt int) time.Time {
	st := &stepRow{runID: runID}
	st.Step, st.Attempt = step, attempt
	return newLogWriter(s, st).StoredUntil()
}
