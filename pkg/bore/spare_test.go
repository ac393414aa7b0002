package bore

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func (s *spare) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// echoOnce sends a line through addr and checks it comes back.
func echoOnce(t *testing.T, addr, msg string) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

// Visitors close together get a spare connection dialled (and authenticated) ahead; the next visitor uses it;
// an unused spare is closed by the client before the server's timeout, so the server logs no failed handshake.
func TestClientSpareConnection(t *testing.T) {
	if !spareSupported {
		t.Skip("no spare connections on this system")
	}
	var logs syncBuffer
	s := startServer(t, ServerConfig{Secret: "s", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := startClient(t, clientConfig(t, s, startEcho(t), "s"))
	public := publicLoopback(c)
	echoOnce(t, public, "first")
	if c.spare.ready() {
		t.Fatal("a spare after a single visitor")
	}
	echoOnce(t, public, "second") // close to the first: busy
	eventually(t, "a spare dialled", c.spare.ready)
	echoOnce(t, public, "third, through the spare")
	if st := s.Stats(); st.ConnectionsForwarded != 3 {
		t.Errorf("stats %+v", st)
	}
	eventually(t, "the next spare dialled", c.spare.ready)
	time.Sleep(spareMaxAge + 200*time.Millisecond)
	if c.spare.ready() {
		t.Error("the spare was kept past spareMaxAge")
	}
	time.Sleep(DefaultHandshakeTimeout) // past the server's own timeout for the spare
	if lines := logs.lines("level=WARN"); len(lines) > 0 {
		t.Errorf("the server warned about the client's spares: %q", lines)
	}
}

// A spare the server dropped (its handshake timeout is shorter than spareMaxAge here) is not used: every visitor
// still gets through.
func TestClientSpareDroppedByServer(t *testing.T) {
	if !spareSupported {
		t.Skip("no spare connections on this system")
	}
	s := startServer(t, ServerConfig{HandshakeTimeout: 50 * time.Millisecond, Logger: discardLogger})
	cfg := clientConfig(t, s, startEcho(t), "")
	cfg.Logger = discardLogger
	c := startClient(t, cfg)
	public := publicLoopback(c)
	echoOnce(t, public, "one")
	echoOnce(t, public, "two")
	eventually(t, "a spare dialled", c.spare.ready)
	time.Sleep(200 * time.Millisecond) // the server has dropped it
	for _, msg := range []string{"three", "four", "five"} {
		echoOnce(t, public, msg)
	}
	if st := s.Stats(); st.ConnectionsForwarded != 5 || st.ConnectionsPending != 0 {
		t.Errorf("stats %+v; want 5 forwarded, none left waiting", st)
	}
}

// Close closes the spare with everything else.
func TestClientCloseClosesSpare(t *testing.T) {
	if !spareSupported {
		t.Skip("no spare connections on this system")
	}
	s := startServer(t, ServerConfig{Logger: discardLogger})
	cfg := clientConfig(t, s, startEcho(t), "")
	cfg.Logger = discardLogger
	c := startClient(t, cfg) // closed here before the end of the test too: a second Close does nothing
	public := publicLoopback(c)
	echoOnce(t, public, "one")
	echoOnce(t, public, "two")
	eventually(t, "a spare dialled", c.spare.ready)
	c.spare.mu.Lock()
	sp := c.spare.conn
	c.spare.mu.Unlock()
	c.Close()
	sp.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := sp.Read(make([]byte, 1)); err == nil || !isClosedErr(err) {
		t.Errorf("spare after Close: %v; want it closed", err)
	}
}

func isClosedErr(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}
