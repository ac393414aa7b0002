package bore

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// fakeServer accepts control connections on loopback and hands each to handle, in order of arrival.
func fakeServer(t *testing.T, handle func(n int, conn *net.TCPConn, r *frameReader)) string {
	t.Helper()
	l := listenLocal(t)
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			conn, err := l.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(n, conn, newFrameReader(conn))
			}()
		}
	}()
	return l.Addr().String()
}

func mustWrite(t *testing.T, w io.Writer, msgs ...message) {
	var frames []byte
	for _, m := range msgs {
		var err error
		if frames, err = appendFrame(frames, m); err != nil {
			t.Error(err)
			return
		}
	}
	w.Write(frames)
}

// The client sends exactly bore's frames, and what the server sends right after the challenge on an Accept
// connection reaches the local service first (bytes buffered by the frame reader are not lost).
func TestClientWireAndBufferedBytes(t *testing.T) {
	const secret = "my secret"
	local := listenLocal(t)
	id := newUUID()
	got := make(chan string, 4)
	addr := fakeServer(t, func(n int, conn *net.TCPConn, r *frameReader) {
		challenge := newUUID()
		auth := newAuthenticator(secret)
		switch n {
		case 0: // control connection
			mustWrite(t, conn, message{kind: kindChallenge, id: challenge})
			frame, _ := r.readFrame()
			want, _ := appendFrame(nil, message{kind: kindAuthenticate, text: auth.answer(challenge)})
			got <- strconv.FormatBool(string(frame)+"\x00" == string(want))
			frame, _ = r.readFrame()
			got <- string(frame)
			mustWrite(t, conn, message{kind: kindHello, port: 40123}, message{kind: kindHeartbeat}, message{kind: kindConnection, id: id})
			io.Copy(io.Discard, conn)
		case 1: // the Accept connection: challenge and visitor bytes in one segment
			frames, _ := appendFrame(nil, message{kind: kindChallenge, id: challenge})
			conn.Write(append(frames, "early bytes"...))
			m, err := r.readMessage(clientKinds)
			if err != nil || m.kind != kindAuthenticate || !auth.valid(challenge, m.text) {
				t.Errorf("accept connection: %v, %v", m, err)
			}
			frame, _ := r.readFrame()
			got <- string(frame)
			conn.CloseWrite()
			io.Copy(io.Discard, conn)
		}
	})
	cfg := ClientConfig{Server: addr, LocalHost: "127.0.0.1", LocalPort: portOf(local.Addr()), Secret: secret, Logger: testLogger(t)}
	c := startClient(t, cfg)
	host, _, _ := net.SplitHostPort(addr)
	if c.PublicAddr() != host+":40123" {
		t.Errorf("PublicAddr = %s", c.PublicAddr())
	}
	if ok := <-got; ok != "true" {
		t.Error("the authenticate frame does not answer the challenge")
	}
	if hello := <-got; hello != `{"Hello":0}` {
		t.Errorf("hello frame %s, want {\"Hello\":0}", hello)
	}
	conn, err := local.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, err := io.ReadAll(conn)
	if err != nil || string(data) != "early bytes" {
		t.Errorf("local service got %q, %v", data, err)
	}
	if accept, want := <-got, `{"Accept":"`+id.String()+`"}`; accept != want {
		t.Errorf("accept frame %s, want %s", accept, want)
	}
}

// The watchdog declares the link dead when the server goes silent; without Reconnect the client ends.
func TestClientWatchdog(t *testing.T) {
	addr := fakeServer(t, func(n int, conn *net.TCPConn, r *frameReader) {
		r.readFrame()
		mustWrite(t, conn, message{kind: kindHello, port: 1234})
		io.Copy(io.Discard, conn) // then silence
	})
	c := startClient(t, ClientConfig{Server: addr, LocalPort: 1, HeartbeatTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	start := time.Now()
	if e := nextEvent(t, c); e.Kind != EventUp {
		t.Fatalf("event %v, want up", e)
	}
	e := nextEvent(t, c)
	if e.Kind != EventDown || !errors.Is(e.Err, ErrLinkLost) {
		t.Fatalf("event %+v, want down with ErrLinkLost", e)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("link declared dead after %v, before the heartbeat timeout", d)
	}
	if err := c.Wait(); !errors.Is(err, ErrLinkLost) {
		t.Errorf("Wait = %v, want ErrLinkLost", err)
	}
	if _, open := <-c.Events(); open {
		t.Error("events channel open after the client ended")
	}
}

// Heartbeats keep the link alive past the watchdog's timeout.
func TestClientHeartbeatsKeepLinkUp(t *testing.T) {
	s := startServer(t, ServerConfig{HeartbeatInterval: 20 * time.Millisecond})
	cfg := clientConfig(t, s, 1, "")
	cfg.HeartbeatTimeout = 400 * time.Millisecond // 20 heartbeats: slack for a loaded machine
	c := startClient(t, cfg)
	nextEvent(t, c) // up
	select {
	case e := <-c.Events():
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(3 * cfg.HeartbeatTimeout):
	}
}

// After the server restarts, the client gets its public port back; when that port is taken, any port.
func TestClientReconnect(t *testing.T) {
	s1 := startServer(t, ServerConfig{HeartbeatInterval: 20 * time.Millisecond})
	controlPort := s1.Addr().Port
	echo := startEcho(t)
	cfg := clientConfig(t, s1, echo, "")
	cfg.Reconnect = true
	// A server's Close reaches the client as EOF at once; a short watchdog would only add spurious down/up pairs
	// on a loaded machine, and a stale event would then be taken for the restart's.
	cfg.HeartbeatTimeout = 5 * time.Second
	c := startClient(t, cfg)
	first := c.PublicAddr()
	nextEvent(t, c) // up

	// whileDown runs between the old server's end and the new one's start.
	restart := func(old *Server, whileDown func()) *Server {
		old.Close()
		if e := nextEvent(t, c); e.Kind != EventDown || !errors.Is(e.Err, ErrLinkLost) {
			t.Fatalf("event %+v, want down", e)
		}
		whileDown()
		return startServer(t, ServerConfig{ControlPort: controlPort, HeartbeatInterval: 20 * time.Millisecond})
	}
	s2 := restart(s1, func() {})
	if e := nextEvent(t, c); e.Kind != EventReconnected || e.Addr != first {
		t.Fatalf("event %+v, want reconnected at %s", e, first)
	}
	roundTrip(t, publicLoopback(c), "same port")

	// Take the public port while the server is down, before the new one starts: the client cannot get it back.
	restart(s2, func() {
		squatter, err := net.Listen("tcp", publicLoopback(c))
		if err != nil {
			t.Fatalf("could not take the public port: %v", err)
		}
		t.Cleanup(func() { squatter.Close() })
	})
	e := nextEvent(t, c)
	if e.Kind != EventReconnected || e.Addr == first || e.Addr != c.PublicAddr() {
		t.Fatalf("event %+v, want reconnected at a new address (old %s)", e, first)
	}
	roundTrip(t, publicLoopback(c), "new port")
}

func roundTrip(t *testing.T, addr, msg string) {
	t.Helper()
	conn := dial(t, addr)
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	conn.CloseWrite()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != msg {
		t.Fatalf("echo through %s: %q, %v", addr, got, err)
	}
}

// A reconnecting client whose secret is refused gives up.
func TestClientReconnectAuthFailureIsFinal(t *testing.T) {
	s1 := startServer(t, ServerConfig{Secret: "one"})
	controlPort := s1.Addr().Port
	cfg := clientConfig(t, s1, 1, "one")
	cfg.Reconnect = true
	c := startClient(t, cfg)
	nextEvent(t, c)
	s1.Close()
	nextEvent(t, c) // down
	startServer(t, ServerConfig{ControlPort: controlPort, Secret: "two"})
	if err := c.Wait(); !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("Wait = %v, want ErrInvalidSecret", err)
	}
}

// Events never block the client: without a consumer the latest events are kept.
func TestEventsNeverBlock(t *testing.T) {
	c, err := NewClient(ClientConfig{Server: "x", LocalPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * eventBuffer {
		c.emit(Event{Kind: EventReconnected, Addr: strconv.Itoa(i)})
	}
	if n := len(c.events); n != eventBuffer {
		t.Fatalf("%d events buffered, want %d", n, eventBuffer)
	}
	var last Event
	for range eventBuffer {
		last = <-c.events
	}
	if last.Addr != strconv.Itoa(3*eventBuffer-1) {
		t.Errorf("last event %+v, want the newest", last)
	}
}

// Close and the cancellation of Start's context end every goroutine, open relays included.
func TestNoGoroutineLeft(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s, err := NewServer(ServerConfig{BindAddr: "127.0.0.1", Secret: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		local := listenLocal(t)
		defer local.Close()
		c, err := NewClient(ClientConfig{Server: s.Addr().String(), LocalHost: "127.0.0.1", LocalPort: portOf(local.Addr()), Secret: "x", Reconnect: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// One relay in the middle of an exchange.
		visitor, err := net.Dial("tcp", publicLoopback(c))
		if err != nil {
			t.Fatal(err)
		}
		defer visitor.Close()
		svc, err := local.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		visitor.Write([]byte("ping"))
		if _, err := io.ReadFull(svc, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(); err != nil {
			t.Errorf("client Wait after Close = %v", err)
		}
		cancel() // the server stops on its context
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		// Relays were closed at both ends.
		visitor.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(visitor); err != nil {
			t.Errorf("visitor after Close: %v", err)
		}
	}()
	eventually(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestClientLifecycleErrors(t *testing.T) {
	c, err := NewClient(ClientConfig{Server: "x", LocalPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err == nil {
		t.Error("Wait before Start succeeded")
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if err := c.Start(t.Context()); err == nil {
		t.Error("Start after Close succeeded")
	}
}
