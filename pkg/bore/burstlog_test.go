package bore

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the log lines that contain every one of words.
func (s *syncBuffer) lines(words ...string) []string {
	var out []string
	for line := range strings.Lines(s.String()) {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// A burst of events is one line with its count, once the burst is over; two kinds make two lines; flush reports
// what is still open.
func TestBurstLogOneLinePerBurst(t *testing.T) {
	var buf syncBuffer
	l := newBurstLog(slog.New(slog.NewTextHandler(&buf, nil)))
	a := burstKey{msg: "visitors refused", client: netip.MustParseAddr("127.0.0.9"), port: 4000, reason: "r1"}
	b := burstKey{msg: "visitors refused", port: 4000, reason: "r2"}
	for range 1000 {
		l.add(a)
	}
	for range 3 {
		l.add(b)
	}
	if got := buf.lines("visitors refused"); len(got) != 0 {
		t.Fatalf("logged during the burst: %q", got)
	}
	eventually(t, "the burst reported", func() bool { return len(buf.lines("visitors refused")) == 2 })
	if got := buf.lines("count=1000", "reason=r1", "client=127.0.0.9", "port=4000"); len(got) != 1 {
		t.Errorf("want one line with count=1000 for r1:\n%s", buf.String())
	}
	if got := buf.lines("count=3", "reason=r2"); len(got) != 1 || strings.Contains(got[0], "client=") {
		t.Errorf("want one line with count=3 for r2, without a client:\n%s", buf.String())
	}
	l.add(a)
	l.flush()
	if got := buf.lines("count=1 "); len(got) != 1 {
		t.Errorf("flush: want the open burst reported:\n%s", buf.String())
	}
	l.add(b) // after flush: at once
	if got := buf.lines("reason=r2"); len(got) != 2 {
		t.Errorf("after flush: want the event logged at once:\n%s", buf.String())
	}
	time.Sleep(burstQuiet + 100*time.Millisecond)
	if n := len(buf.lines("visitors refused")); n != 4 {
		t.Errorf("%d lines, want 4:\n%s", n, buf.String())
	}
}

// A burst that goes on is reported every burstEvery, not only at its end.
func TestBurstLogLongBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("takes burstEvery")
	}
	var buf syncBuffer
	l := newBurstLog(slog.New(slog.NewTextHandler(&buf, nil)))
	defer l.flush()
	k := burstKey{msg: "accepting visitors failed", reason: "too many open files"}
	deadline := time.Now().Add(burstEvery + 500*time.Millisecond)
	for time.Now().Before(deadline) {
		l.add(k)
		time.Sleep(100 * time.Millisecond)
	}
	if got := buf.lines("accepting visitors failed"); len(got) != 1 {
		t.Errorf("want one report after %v of a continuous burst, got:\n%s", burstEvery, buf.String())
	}
}
