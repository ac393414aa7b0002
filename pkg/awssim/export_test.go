package awssim

import "time"

// SetClock makes the quotas' token buckets read now instead of the time of day, so a test can hold time still.
func SetClock(s *Server, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}
