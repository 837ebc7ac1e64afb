package pipeline

// Crash stops s from writing anything, as if its process died: its
// attempts end without releasing their leases.
func (s *Service) Crash() {
	s.mu.Lock()
	s.crashed = true
	s.mu.Unlock()
}
