//go:build linux

package tunnel

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// A record whose pid now belongs to another program (the holder died uncleanly, the pid was reused) is not a live
// session, and Stop must never signal that program. This test's own process stands in for it.
func TestReusedPidIsNeverSignalled(t *testing.T) {
	self := os.Getpid()
	start := processStartTime(self)
	if start == 0 {
		t.Fatal("no start time for this process from /proc")
	}
	live := &State{PID: self, ProcStart: start}
	if !live.Alive() {
		t.Fatal("the recorded process itself is not alive")
	}
	reused := &State{PID: self, ProcStart: start + 1}
	if reused.Alive() {
		t.Fatal("a pid with another start time counts as the holder")
	}
	dir := t.TempDir()
	if err := WriteState(dir, *reused); err != nil {
		t.Fatal(err)
	}
	// Were this process signalled, SIGTERM would end the test binary here.
	if _, err := Stop(context.Background(), dir, reused, 100*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := ReadState(dir); !errors.Is(err, ErrNoSession) {
		t.Fatalf("the stale record is kept: %v", err)
	}
}
