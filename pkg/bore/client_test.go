package bore

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
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

// The watchdog declares the link dead when the server goes silent: the client ends, and Wait says why.
func TestClientWatchdog(t *testing.T) {
	addr := fakeServer(t, func(n int, conn *net.TCPConn, r *frameReader) {
		r.readFrame()
		mustWrite(t, conn, message{kind: kindHello, port: 1234})
		io.Copy(io.Discard, conn) // then silence
	})
	start := time.Now()
	c := startClient(t, ClientConfig{Server: addr, LocalPort: 1, HeartbeatTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	err := c.Wait()
	if !errors.Is(err, ErrLinkLost) || !strings.Contains(err.Error(), "no frame from the server") {
		t.Fatalf("Wait = %v, want ErrLinkLost from the watchdog", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("link declared dead after %v, before the heartbeat timeout", d)
	}
}

// A server that goes away ends the client at once (EOF, not the watchdog), and Wait says the link was lost.
func TestClientEndsWhenTheServerGoes(t *testing.T) {
	s := startServer(t, ServerConfig{})
	cfg := clientConfig(t, s, 1, "")
	cfg.HeartbeatTimeout = time.Minute
	c := startClient(t, cfg)
	s.Close()
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	select {
	case err := <-ended:
		if !errors.Is(err, ErrLinkLost) {
			t.Fatalf("Wait = %v, want ErrLinkLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client still runs 10 s after its server closed")
	}
}

// Heartbeats keep the link alive past the watchdog's timeout.
func TestClientHeartbeatsKeepLinkUp(t *testing.T) {
	s := startServer(t, ServerConfig{HeartbeatInterval: 20 * time.Millisecond})
	cfg := clientConfig(t, s, 1, "")
	cfg.HeartbeatTimeout = 400 * time.Millisecond // 20 heartbeats: slack for a loaded machine
	c := startClient(t, cfg)
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	select {
	case err := <-ended:
		t.Fatalf("the link ended: %v", err)
	case <-time.After(3 * cfg.HeartbeatTimeout):
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
		c, err := NewClient(ClientConfig{Server: s.Addr().String(), LocalHost: "127.0.0.1", LocalPort: portOf(local.Addr()), Secret: "x"})
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

// The client dials the local service at the address that answered last, and by name again once that one
// refuses (the service moved to another address of its name, e.g. from ::1 to 127.0.0.1).
func TestClientLocalAddressFollowsTheName(t *testing.T) {
	port := startEcho(t)
	s := startServer(t, ServerConfig{Logger: discardLogger})
	cfg := clientConfig(t, s, port, "")
	cfg.LocalHost = "localhost"
	cfg.Logger = discardLogger
	c := startClient(t, cfg)
	echoOnce(t, publicLoopback(c), "first")
	answered := c.localDialed.Load()
	if answered == nil || !strings.HasSuffix(*answered, ":"+strconv.Itoa(port)) {
		t.Fatalf("after a visitor, the local address that answered is %v", answered)
	}
	gone := listenLocal(t) // an address where nothing will answer any more
	stale := gone.Addr().String()
	gone.Close()
	c.localDialed.Store(&stale)
	echoOnce(t, publicLoopback(c), "after the service moved")
	if a := c.localDialed.Load(); a == nil || *a != *answered {
		t.Errorf("the address that answered is now %v, want %s again", a, *answered)
	}
}

// Set-ups run on reused workers: after a visitor one waits for the next, at most maxIdleWorkers wait once a burst
// is over, and none is left after Close.
func TestClientWorkersAreReused(t *testing.T) {
	s := startServer(t, ServerConfig{Logger: discardLogger})
	cfg := clientConfig(t, s, startEcho(t), "")
	cfg.Logger = discardLogger
	c := startClient(t, cfg) // closed here before the end of the test too: a second Close does nothing
	public := publicLoopback(c)
	for i := range 5 {
		echoOnce(t, public, "sequential "+strconv.Itoa(i))
	}
	eventually(t, "a worker waiting for the next visitor", func() bool { return c.workers.idleCount() >= 1 })
	load := dialEchoLoad(public, 50, 10*time.Second)
	for _, err := range load.release() {
		t.Error(err)
	}
	eventually(t, "at most maxIdleWorkers idle after the burst", func() bool {
		n := c.workers.idleCount()
		return n >= 1 && n <= maxIdleWorkers
	})
	c.Close() // returns once every worker has ended: they are the client's goroutines
	if n := c.workers.idleCount(); n != 0 {
		t.Errorf("%d workers idle after Close", n)
	}
}
