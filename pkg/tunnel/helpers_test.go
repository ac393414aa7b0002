package tunnel

import (
	"context"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/echotest"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/tunnel/tunneltest"
)

// TestMain lets the test binary stand in for the external bore binary: run through a link named "bore", it is
// `bore local` (see tunneltest.BoreStandIn).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "bore" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := tunneltest.BoreStandIn(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// boreStandIn returns the path of a "bore" that is this test binary.
func boreStandIn(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bore")
	if err := os.Symlink(exe, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// testServer is a bore server on loopback that can be restarted on the same control port.
type testServer struct {
	t      *testing.T
	secret string
	// tunnels, when set, is the address the public ports listen on (the control port stays on 127.0.0.1).
	tunnels string
	port    int
	srv     *bore.Server
}

func startServer(t *testing.T, secret string) *testServer {
	s := &testServer{t: t, secret: secret}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	srv, err := bore.NewServer(bore.ServerConfig{BindAddr: "127.0.0.1", BindTunnels: s.tunnels, ControlPort: s.port, Secret: s.secret})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	s.srv, s.port = srv, srv.Addr().Port
}

func (s *testServer) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

func (s *testServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// echoService is a local TCP echo service; it returns its address.
func echoService(t *testing.T) string {
	ln, _ := echotest.Start(t)
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// roundTrip sends a message through addr and checks it comes back.
func roundTrip(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("hello through the tunnel")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo through %s: %v", addr, err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echo through %s = %q, want %q", addr, got, msg)
	}
}

func spec(name, local, server, engine, borePath string) Spec {
	return Spec{Resource: doc.Resource{Name: name, Type: "tcp", URL: local, Address: local},
		Servers: []Server{{Addr: server}}, Engine: engine, BorePath: borePath}
}

// fast are options for tests: short retry and reconnection delays, and a reconnect window that leaves a loaded
// machine time for a few attempts.
var fast = Options{RetryDelay: 20 * time.Millisecond, ReconnectDelay: 20 * time.Millisecond, ReconnectMaxDelay: 200 * time.Millisecond,
	ReconnectWindow: 2 * time.Second}

// nextEvent waits for the session's next event.
func nextEvent(t *testing.T, s *Session) Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return Event{}
}

// eventually waits until cond holds (the far end of a connection notices its close asynchronously).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
