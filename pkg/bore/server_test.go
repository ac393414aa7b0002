package bore

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// rawClient speaks frames to a server by hand.
type rawClient struct {
	t    *testing.T
	conn *net.TCPConn
	r    *frameReader
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	conn := dial(t, s.Addr().String())
	return &rawClient{t: t, conn: conn, r: newFrameReader(conn)}
}

func (c *rawClient) send(m message) { mustWrite(c.t, c.conn, m) }

// recv returns the next message that is not a heartbeat.
func (c *rawClient) recv() message {
	c.t.Helper()
	for {
		m, err := c.r.readMessage(serverKinds)
		if err != nil {
			c.t.Fatalf("reading from server: %v", err)
		}
		if m.kind != kindHeartbeat {
			return m
		}
	}
}

// hello opens a tunnel and returns its public loopback address.
func (c *rawClient) hello(port uint16) string {
	c.t.Helper()
	c.send(message{kind: kindHello, port: port})
	m := c.recv()
	if m.kind != kindHello {
		c.t.Fatalf("got %v, want Hello", m)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(m.port)))
}

// Heartbeats arrive at the configured interval, Connection announces a visitor, and bytes the client sends
// in the same segment as its Accept reach the visitor first.
func TestServerWireAndBufferedBytes(t *testing.T) {
	s := startServer(t, ServerConfig{HeartbeatInterval: 10 * time.Millisecond})
	ctl := dialRaw(t, s)
	public := ctl.hello(0)
	for range 3 {
		if m, err := ctl.r.readMessage(serverKinds); err != nil || m.kind != kindHeartbeat {
			t.Fatalf("got %v, %v; want heartbeats", m, err)
		}
	}
	visitor := dial(t, public)
	conn := ctl.recv()
	if conn.kind != kindConnection {
		t.Fatalf("got %v, want Connection", conn)
	}
	accept := dial(t, s.Addr().String())
	frame, _ := appendFrame(nil, message{kind: kindAccept, id: conn.id})
	accept.Write(append(frame, "early bytes"...))
	accept.CloseWrite()
	got, err := io.ReadAll(visitor)
	if err != nil || string(got) != "early bytes" {
		t.Errorf("visitor got %q, %v", got, err)
	}
	visitor.Write([]byte("reply"))
	visitor.Close()
	got, err = io.ReadAll(accept)
	if err != nil || string(got) != "reply" {
		t.Errorf("client got %q, %v", got, err)
	}
	// The id is spent.
	again := dial(t, s.Addr().String())
	mustWrite(t, again, message{kind: kindAccept, id: conn.id})
	if n, err := again.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("second Accept of the same id: %d, %v; want the connection closed", n, err)
	}
	eventually(t, "connection counted", func() bool {
		st := s.Stats()
		return st.ConnectionsForwarded == 1 && st.BytesFromVisitors == 5 && st.BytesToVisitors == 11 && st.ConnectionsActive == 0
	})
	// Closing the control connection closes the tunnel at once.
	ctl.conn.Close()
	eventually(t, "tunnel closed", func() bool { return s.Stats().TunnelsOpen == 0 })
	if _, err := net.DialTimeout("tcp", public, time.Second); err == nil {
		t.Error("public port still open after the tunnel closed")
	}
}

func TestServerAllowList(t *testing.T) {
	cases := []struct {
		allow   string
		reaches bool
	}{
		{"10.0.0.0/8", false},
		{"127.0.0.0/8", true},
		{"::ffff:127.0.0.1/128", false}, // IPv4 visitors are matched as IPv4
		{"127.0.0.1/32", true},
	}
	for _, tc := range cases {
		t.Run(tc.allow, func(t *testing.T) {
			var logs syncBuffer
			s := startServer(t, ServerConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix(tc.allow)},
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			c := startClient(t, clientConfig(t, s, startEcho(t), ""))
			conn := dial(t, publicLoopback(c))
			conn.Write([]byte("x"))
			conn.CloseWrite()
			got, _ := io.ReadAll(conn)
			if reached := string(got) == "x"; reached != tc.reaches {
				t.Errorf("visitor reached the service: %v, want %v", reached, tc.reaches)
			}
			st := s.Stats()
			if tc.reaches && st.ConnectionsRejected != 0 || !tc.reaches && (st.ConnectionsRejected != 1 || st.ConnectionsForwarded != 0) {
				t.Errorf("stats %+v", st)
			}
			if !tc.reaches { // logged once the burst of refusals is over, with who was refused
				eventually(t, "the refusal logged", func() bool {
					return len(logs.lines("visitors refused", "visitor=127.0.0.1", "count=1", "not in the allow list")) == 1
				})
			}
		})
	}
}

func TestServerMaxTunnelsPerClient(t *testing.T) {
	s := startServer(t, ServerConfig{MaxTunnelsPerClient: 1})
	first := dialRaw(t, s)
	first.hello(0)
	second := dialRaw(t, s)
	second.send(message{kind: kindHello, port: 0})
	if m := second.recv(); m.kind != kindError || m.text != errTextTooManyTunnels {
		t.Fatalf("second tunnel: %v, want Error(%q)", m, errTextTooManyTunnels)
	}
	first.conn.Close()
	eventually(t, "first tunnel closed", func() bool { return s.Stats().TunnelsOpen == 0 })
	dialRaw(t, s).hello(0) // the slot is free again
}

func TestServerPendingCapAndExpiry(t *testing.T) {
	s := startServer(t, ServerConfig{MaxPendingPerClient: 1, PendingExpiry: 100 * time.Millisecond})
	ctl := dialRaw(t, s)
	public := ctl.hello(0)
	v1 := dial(t, public)
	if m := ctl.recv(); m.kind != kindConnection {
		t.Fatalf("got %v", m)
	}
	v2 := dial(t, public) // over the cap: disconnected
	if n, err := v2.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("second visitor: %d, %v; want disconnected", n, err)
	}
	if st := s.Stats(); st.ConnectionsRejected != 1 || st.ConnectionsPending != 1 {
		t.Errorf("stats %+v", st)
	}
	// Never accepted: the first visitor expires.
	start := time.Now()
	if n, err := v1.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("pending visitor: %d, %v; want disconnected", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("expired after %v", d)
	}
	if st := s.Stats(); st.ConnectionsExpired != 1 || st.ConnectionsPending != 0 {
		t.Errorf("stats %+v", st)
	}
	// The cap counts pending visitors only: a new one is announced.
	dial(t, public)
	if m := ctl.recv(); m.kind != kindConnection {
		t.Fatalf("got %v", m)
	}
}

// A client that stops accepting gets its new visitors refused at once after AcceptStall, not queued; an Accept
// (progress) or the expiry of the waiting visitors lifts the refusal.
func TestServerAcceptStall(t *testing.T) {
	const stall = 150 * time.Millisecond
	s := startServer(t, ServerConfig{AcceptStall: stall, PendingExpiry: 2 * time.Second})
	ctl := dialRaw(t, s)
	public := ctl.hello(0)
	refused := func(what string) {
		t.Helper()
		v := dial(t, public)
		if n, err := v.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("%s: read %d, %v; want the visitor disconnected", what, n, err)
		}
	}
	dial(t, public)
	first := ctl.recv()
	dial(t, public) // within the stall: announced
	if m := ctl.recv(); m.kind != kindConnection {
		t.Fatalf("second visitor: %v", m)
	}
	time.Sleep(2 * stall)
	before := s.Stats().ConnectionsRejected
	refused("after the stall")
	refused("again")
	if st := s.Stats(); st.ConnectionsRejected != before+2 || st.ConnectionsPending != 2 {
		t.Errorf("stats %+v; want 2 more rejected, 2 pending", st)
	}
	// The client accepts one: new visitors are announced again.
	acc := dialRaw(t, s)
	acc.send(message{kind: kindAccept, id: first.id})
	eventually(t, "the accepted visitor relayed", func() bool { return s.Stats().ConnectionsActive == 1 })
	dial(t, public)
	if m := ctl.recv(); m.kind != kindConnection {
		t.Fatalf("visitor after an accept: %v", m)
	}
	// Stalled again until every waiting visitor expired: then a new one is announced.
	time.Sleep(2 * stall)
	refused("stalled again")
	eventually(t, "the waiting visitors expired", func() bool { return s.Stats().ConnectionsPending == 0 })
	dial(t, public)
	if m := ctl.recv(); m.kind != kindConnection {
		t.Fatalf("visitor after the expiry: %v", m)
	}
}

// A negative AcceptStall never refuses: visitors queue until they expire.
func TestServerAcceptStallOff(t *testing.T) {
	s := startServer(t, ServerConfig{AcceptStall: -1, PendingExpiry: 5 * time.Second})
	ctl := dialRaw(t, s)
	public := ctl.hello(0)
	dial(t, public)
	ctl.recv()
	time.Sleep(DefaultAcceptStall + 200*time.Millisecond)
	dial(t, public)
	if m := ctl.recv(); m.kind != kindConnection {
		t.Fatalf("got %v", m)
	}
	if st := s.Stats(); st.ConnectionsRejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerProtocolViolations(t *testing.T) {
	s := startServer(t, ServerConfig{HandshakeTimeout: 100 * time.Millisecond})
	closes := func(name string, payload []byte) {
		t.Helper()
		c := dial(t, s.Addr().String())
		c.Write(payload)
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("%s: read %d, %v; want the connection closed", name, n, err)
		}
	}
	closes("silence", nil)
	closes("garbage", []byte("garbage\x00"))
	closes("authenticate without secret", []byte(`{"Authenticate":"00"}`+"\x00"))
	closes("server message", []byte(`"Heartbeat"`+"\x00"))
	closes("unknown id", []byte(`{"Accept":"ffffffff-ffff-4fff-bfff-ffffffffffff"}`+"\x00"))
	closes("empty frame", []byte{0})
	if st := s.Stats(); st.TunnelsTotal != 0 {
		t.Errorf("stats %+v", st)
	}

	secret := startServer(t, ServerConfig{Secret: "x", HandshakeTimeout: 100 * time.Millisecond})
	for _, tc := range []struct {
		name, send, want string
	}{
		{"hello instead of authenticate", `{"Hello":0}`, errTextSecretRequired},
		{"wrong tag", `{"Authenticate":"00"}`, errTextInvalidSecret},
		{"no answer", "", "timed out waiting for initial message"},
	} {
		c := dialRaw(t, secret)
		if m := c.recv(); m.kind != kindChallenge {
			t.Fatalf("%s: got %v, want Challenge", tc.name, m)
		}
		if tc.send != "" {
			c.conn.Write([]byte(tc.send + "\x00"))
		}
		if m := c.recv(); m.kind != kindError || m.text != tc.want {
			t.Errorf("%s: got %v, want Error(%q)", tc.name, m, tc.want)
		}
		if _, err := c.r.readFrame(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: after the error: %v, want EOF", tc.name, err)
		}
	}
	if got := secret.Stats().AuthFailures; got != 3 {
		t.Errorf("AuthFailures = %d, want 3", got)
	}
}

func TestServerBindTunnels(t *testing.T) {
	s := startServer(t, ServerConfig{BindAddr: "127.0.0.1", BindTunnels: "127.0.0.2"})
	public := dialRaw(t, s).hello(0)
	_, port, _ := net.SplitHostPort(public)
	if conn, err := net.DialTimeout("tcp", "127.0.0.2:"+port, time.Second); err != nil {
		t.Errorf("public port not on 127.0.0.2: %v", err)
	} else {
		conn.Close()
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		conn.Close()
		t.Error("public port reachable on 127.0.0.1, the control address")
	}
}

func TestServerLifecycle(t *testing.T) {
	s, err := NewServer(ServerConfig{BindAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil || s.Wait() == nil || s.Close() != nil {
		t.Error("unstarted server: Addr, Wait or Close misbehave")
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	taken, err := NewServer(ServerConfig{BindAddr: "127.0.0.1", ControlPort: s.Addr().Port})
	if err != nil {
		t.Fatal(err)
	}
	if err := taken.Start(t.Context()); err == nil {
		t.Error("Start on a taken control port succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
