package bore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/echotest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts a server on a random loopback control port, closed at the end of the test.
func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clientConfig points a client at server and local with test-sized timeouts.
func clientConfig(t testing.TB, s *Server, localPort int, secret string) ClientConfig {
	return ClientConfig{
		Server:           s.Addr().String(),
		LocalHost:        "127.0.0.1",
		LocalPort:        localPort,
		Secret:           secret,
		HandshakeTimeout: time.Second,
		HeartbeatTimeout: 2 * time.Second,
		Logger:           testLogger(t),
	}
}

// startClient starts a client, closed at the end of the test.
func startClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listenLocal opens a loopback listener closed at the end of the test.
func listenLocal(t testing.TB) *net.TCPListener {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func portOf(a net.Addr) int { return a.(*net.TCPAddr).Port }

// startEcho runs an echo service on loopback until the end of the test and returns its port.
func startEcho(t testing.TB) int {
	t.Helper()
	l := listenLocal(t)
	echotest.Serve(t, l)
	return portOf(l.Addr())
}

// publicLoopback returns the loopback address of a client's public port.
func publicLoopback(c *Client) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.RemotePort()))
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// eventually waits for cond, checking on each tick, and fails the test after timeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

var discardLogger = slog.New(slog.DiscardHandler)

// echoLoad is n connections to an echo service (directly or through a tunnel), all opened before any is used, so
// all n are relayed at the same time; release then makes each send its own payload and expect it back in full.
type echoLoad struct {
	errs  chan error
	start chan struct{}
	done  sync.WaitGroup
}

// dialEchoLoad opens n connections to addr and returns once every dial has finished.
func dialEchoLoad(addr string, n int, deadline time.Duration) *echoLoad {
	l := &echoLoad{errs: make(chan error, n), start: make(chan struct{})}
	var dialed sync.WaitGroup
	dialed.Add(n)
	for i := range n {
		l.done.Go(func() {
			conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
			dialed.Done()
			if err != nil {
				l.errs <- fmt.Errorf("conn %d: %w", i, err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(deadline))
			<-l.start
			payload := bytes.Repeat([]byte(fmt.Sprintf("%06d", i)), 200) // 1200 bytes
			if _, err := conn.Write(payload); err != nil {
				l.errs <- fmt.Errorf("conn %d: write: %w", i, err)
				return
			}
			conn.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(conn)
			if err != nil || !bytes.Equal(got, payload) {
				l.errs <- fmt.Errorf("conn %d: got %d bytes, %v", i, len(got), err)
			}
		})
	}
	dialed.Wait()
	return l
}

// failedDials reports whether a dial has failed already.
func (l *echoLoad) failedDials() bool { return len(l.errs) > 0 }

// release lets every connection exchange its payload and returns the errors once all are done.
func (l *echoLoad) release() []error {
	close(l.start)
	l.done.Wait()
	close(l.errs)
	var errs []error
	for err := range l.errs {
		errs = append(errs, err)
	}
	return errs
}
