package bore

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// Port of bore's basic_proxy: a proxied exchange both ways, with the secret absent, empty and set.
func TestProxyExchange(t *testing.T) {
	cases := []struct {
		name      string
		secret    string
		useSecret bool
	}{
		{"no secret", "", false},
		{"empty secret", "", true},
		{"secret", "abc", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, ServerConfig{Secret: tc.secret, UseSecret: tc.useSecret})
			local := listenLocal(t)
			cfg := clientConfig(t, s, portOf(local.Addr()), tc.secret)
			cfg.UseSecret = tc.useSecret
			c := startClient(t, cfg)
			if got, want := c.PublicAddr(), "127.0.0.1:"+strconv.Itoa(c.RemotePort()); got != want {
				t.Errorf("PublicAddr = %q, want %q", got, want)
			}

			served := make(chan error, 1)
			go func() {
				served <- func() error {
					conn, err := local.Accept()
					if err != nil {
						return err
					}
					defer conn.Close()
					buf := make([]byte, 11)
					if _, err := io.ReadFull(conn, buf); err != nil {
						return err
					}
					if string(buf) != "hello world" {
						return errors.New("local service got " + strconv.Quote(string(buf)))
					}
					_, err = conn.Write([]byte("I can send a message too!"))
					return err
				}()
			}()

			visitor := dial(t, publicLoopback(c))
			if _, err := visitor.Write([]byte("hello world")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 25)
			if _, err := io.ReadFull(visitor, buf); err != nil {
				t.Fatal(err)
			}
			if string(buf) != "I can send a message too!" {
				t.Errorf("visitor got %q", buf)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			// The local service closed its end: so is the visitor's.
			if n, err := visitor.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("read after close = %d, %v; want EOF", n, err)
			}
			// With the local service gone, another visitor gets no data.
			local.Close()
			visitor2 := dial(t, publicLoopback(c))
			if n, err := visitor2.Read(buf); n != 0 || err == nil {
				t.Errorf("second visitor read %d, %v; want the connection closed", n, err)
			}

			// Half-close: the visitor → service direction stays open until the visitor closes too.
			visitor.Close()
			visitor2.Close()
			eventually(t, "bytes counted", func() bool {
				st := s.Stats()
				return st.BytesFromVisitors == 11 && st.BytesToVisitors == 25 && st.ConnectionsActive == 0
			})
			if st := s.Stats(); st.TunnelsOpen != 1 || st.ConnectionsForwarded < 1 || st.AuthFailures != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// Port of bore's mismatched_secret, in both directions, plus two different secrets.
func TestMismatchedSecret(t *testing.T) {
	cases := []struct {
		name                 string
		serverSec, clientSec string
		want                 error
	}{
		{"server none, client set", "", "my secret", ErrSecretNotRequired},
		{"server set, client none", "my secret", "", ErrSecretRequired},
		{"different secrets", "my secret", "other secret", ErrInvalidSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, ServerConfig{Secret: tc.serverSec, HandshakeTimeout: 200 * time.Millisecond})
			cfg := clientConfig(t, s, 1, tc.clientSec)
			cfg.HandshakeTimeout = 200 * time.Millisecond
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Start(t.Context())
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrAuth) {
				t.Fatalf("Start = %v, want %v", err, tc.want)
			}
			if werr := c.Wait(); werr != err {
				t.Errorf("Wait = %v, want the Start error", werr)
			}
			if tc.serverSec != "" {
				eventually(t, "auth failure counted", func() bool { return s.Stats().AuthFailures == 1 })
			}
			if st := s.Stats(); st.TunnelsTotal != 0 {
				t.Errorf("a tunnel was opened: %+v", st)
			}
		})
	}
}

// Port of bore's invalid_address, on addresses that fail without leaving the machine.
func TestInvalidAddress(t *testing.T) {
	closed := listenLocal(t)
	refused := closed.Addr().String()
	closed.Close()
	cases := []struct {
		server string
		want   error
	}{
		{refused, ErrConnectionRefused},
		{"malformed !$uri$%", ErrUnreachable},
		{"nonexistent.domain.invalid", ErrUnreachable},
	}
	for _, tc := range cases {
		for _, secret := range []string{"", "a secret"} {
			c, err := NewClient(ClientConfig{Server: tc.server, LocalPort: 5000, Secret: secret, HandshakeTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Start(t.Context())
			var de *DialError
			if !errors.Is(err, tc.want) || !errors.As(err, &de) {
				t.Errorf("Start(%q, secret %q) = %v, want %v", tc.server, secret, err, tc.want)
			}
		}
	}
	if errors.Is(&DialError{Addr: "x", Err: errors.New("no route")}, ErrConnectionRefused) {
		t.Error("a dial error other than a refusal is ErrConnectionRefused")
	}
	for _, cfg := range []ClientConfig{
		{LocalPort: 1},
		{Server: "h", LocalPort: 0},
		{Server: "h", LocalPort: 70000},
		{Server: "h", LocalPort: 1, Port: -1},
		{Server: "h:0", LocalPort: 1},
		{Server: "h:port", LocalPort: 1},
	} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
}

func TestServerAddress(t *testing.T) {
	for in, want := range map[string]string{
		"bore.pub":       "bore.pub:7835",
		"bore.pub:9000":  "bore.pub:9000",
		"::1":            "[::1]:7835",
		"[::1]":          "[::1]:7835",
		"[::1]:9000":     "[::1]:9000",
		"127.0.0.1:1234": "127.0.0.1:1234",
	} {
		c, err := NewClient(ClientConfig{Server: in, LocalPort: 1})
		if err != nil {
			t.Fatal(err)
		}
		if c.controlAddr != want {
			t.Errorf("server %q: control address %q, want %q", in, c.controlAddr, want)
		}
	}
}

// Port of bore's very_long_frame: a peer slowly sending a 1 MB frame is cut off.
func TestVeryLongFrame(t *testing.T) {
	s := startServer(t, ServerConfig{})
	attacker := dial(t, s.Addr().String())
	chunk := bytes.Repeat([]byte{42}, 100000)
	for range 10 {
		if _, err := attacker.Write(chunk); err != nil {
			return // cut off
		}
		// Pace the frame, and notice the server hanging up.
		attacker.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		var b [1]byte
		_, err := attacker.Read(b[:])
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return // EOF or reset: cut off
		}
	}
	t.Fatal("did not exit after a 1 MB frame")
}

// Both directions keep flowing independently: a visitor that half-closes still gets the whole answer.
func TestHalfClose(t *testing.T) {
	s := startServer(t, ServerConfig{})
	local := listenLocal(t)
	c := startClient(t, clientConfig(t, s, portOf(local.Addr()), ""))

	request := bytes.Repeat([]byte("request "), 100000)
	answer := bytes.Repeat([]byte("answer "), 200000)
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			conn, err := local.AcceptTCP()
			if err != nil {
				return err
			}
			defer conn.Close()
			got, err := io.ReadAll(conn) // until the visitor's half-close
			if err != nil {
				return err
			}
			if !bytes.Equal(got, request) {
				return errors.New("local service got a different request")
			}
			if _, err := conn.Write(answer); err != nil {
				return err
			}
			return conn.CloseWrite()
		}()
	}()
	visitor := dial(t, publicLoopback(c))
	if _, err := visitor.Write(request); err != nil {
		t.Fatal(err)
	}
	if err := visitor.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(visitor)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, answer) {
		t.Errorf("visitor got %d bytes, want %d", len(got), len(answer))
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	eventually(t, "bytes counted", func() bool {
		st := s.Stats()
		return st.BytesFromVisitors == int64(len(request)) && st.BytesToVisitors == int64(len(answer))
	})
}

// A service that speaks first (MySQL, Redis greeting) and visitors that never write both work.
func TestServerSpeaksFirst(t *testing.T) {
	s := startServer(t, ServerConfig{Secret: "s"})
	local := listenLocal(t)
	c := startClient(t, clientConfig(t, s, portOf(local.Addr()), "s"))
	go func() {
		conn, err := local.Accept()
		if err != nil {
			return
		}
		conn.Write([]byte("greeting"))
		conn.Close()
	}()
	got, err := io.ReadAll(dial(t, publicLoopback(c)))
	if err != nil || string(got) != "greeting" {
		t.Errorf("visitor got %q, %v", got, err)
	}
}

func TestServerPortErrors(t *testing.T) {
	busy := listenLocal(t)
	busyPort := portOf(busy.Addr())
	s := startServer(t, ServerConfig{})
	cases := []struct {
		name string
		port int
		min  int
		want string
	}{
		{"in use", busyPort, 0, errTextPortInUse},
		{"out of range", 80, 0, errTextPortNotInRange},
	}
	for _, tc := range cases {
		cfg := clientConfig(t, s, 1, "")
		cfg.Port = tc.port
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Start(t.Context())
		var se *ServerError
		if !errors.As(err, &se) || se.Message != tc.want || !errors.Is(err, ErrPortUnavailable) {
			t.Errorf("%s: Start = %v, want server error %q", tc.name, err, tc.want)
		}
	}

	// A one-port range that is taken: every random attempt fails.
	full := startServer(t, ServerConfig{MinPort: busyPort, MaxPort: busyPort})
	c, err := NewClient(clientConfig(t, full, 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	var se *ServerError
	if err := c.Start(t.Context()); !errors.As(err, &se) || se.Message != errTextNoPortAvailable {
		t.Errorf("full range: Start = %v, want %q", err, errTextNoPortAvailable)
	}
}

func TestNewServerValidates(t *testing.T) {
	for _, cfg := range []ServerConfig{
		{MinPort: 5000, MaxPort: 3000},
		{MinPort: -1},
		{MaxPort: 70000},
		{ControlPort: 70000},
		{BindAddr: "not an ip"},
		{BindTunnels: "localhost"},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) accepted", cfg)
		}
	}
}

// A visitor's connection outlives the deadlines of the handshake: with a secret the server writes its challenge
// under a write deadline, and the client reads under read deadlines; none may cut the relay short.
func TestConnectionOutlivesHandshakeDeadlines(t *testing.T) {
	s := startServer(t, ServerConfig{Secret: "s", HandshakeTimeout: 100 * time.Millisecond})
	cfg := clientConfig(t, s, startEcho(t), "s")
	cfg.HandshakeTimeout = 100 * time.Millisecond
	c := startClient(t, cfg)
	for _, spare := range []bool{false, true} { // the second visitor comes close after the first: a spare
		conn := dial(t, publicLoopback(c))
		for i := range 3 {
			msg := []byte("still here " + strconv.Itoa(i))
			if _, err := conn.Write(msg); err != nil {
				t.Fatalf("spare %v, write %d: %v", spare, i, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("spare %v, echo %d: %q, %v", spare, i, got, err)
			}
			time.Sleep(150 * time.Millisecond) // past every handshake deadline
		}
		conn.Close()
	}
}
