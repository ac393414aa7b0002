package bore

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// FuzzServerControl feeds arbitrary bytes to a server as a control connection (then half-closes it, as a peer
// that said all it had to say) and requires that the server does not panic, closes the connection, and still
// opens a tunnel for the next honest Hello. Two servers take every input: one without a secret (the bytes reach
// the message parser) and one with a secret (the bytes answer the challenge).
func FuzzServerControl(f *testing.F) {
	for _, seed := range malformedFrames {
		f.Add(seed)
	}
	for _, seed := range []string{
		`{"Hello":0}` + "\x00",
		`{"Hello":0}` + "\x00" + `{"Hello":0}` + "\x00" + "trailing raw bytes",
		`{"Accept":"00000000-0000-4000-8000-000000000000"}` + "\x00",
		`{"Authenticate":"00"}` + "\x00" + `{"Hello":0}` + "\x00",
		"\x00\x00\x00",
		"",
	} {
		f.Add([]byte(seed))
	}
	servers := []*Server{}
	for _, secret := range []string{"", "fuzz-secret"} {
		s, err := NewServer(ServerConfig{BindAddr: "127.0.0.1", Secret: secret, HandshakeTimeout: 200 * time.Millisecond,
			HeartbeatInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			f.Fatal(err)
		}
		if err := s.Start(f.Context()); err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { s.Close() })
		servers = append(servers, s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for i, s := range servers {
			c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatalf("server %d stopped serving: %v", i, err)
			}
			c.Write(data) // the server may close before reading it all
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c)
			c.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server %d kept the connection open after %q", i, data)
			}
			secret := ""
			if i == 1 {
				secret = "fuzz-secret"
			}
			helloWorks(t, s, secret)
		}
	})
}

// helloWorks opens and closes a tunnel on s with a well-behaved handshake.
func helloWorks(t *testing.T, s *Server, secret string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := newFrameReader(c)
	if secret != "" {
		m, err := r.readMessage(serverKinds)
		if err != nil || m.kind != kindChallenge {
			t.Fatalf("honest handshake: %v, %v; want a Challenge", m, err)
		}
		if err := writeMessage(c, message{kind: kindAuthenticate, text: newAuthenticator(secret).answer(m.id)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeMessage(c, message{kind: kindHello}); err != nil {
		t.Fatal(err)
	}
	if m, err := r.readMessage(serverKinds); err != nil || m.kind != kindHello || m.port == 0 {
		t.Fatalf("honest handshake: %v, %v; want Hello(port)", m, err)
	}
}
