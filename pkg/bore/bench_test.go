package bore

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestManyConcurrentConnections relays 1000 connections at once (200 under the race detector), each with its
// own payload echoed back in full.
func TestManyConcurrentConnections(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 200
	}
	if testing.Short() {
		n = 100
	}
	s := startServer(t, ServerConfig{Logger: discardLogger})
	cfg := clientConfig(t, s, startEcho(t), "")
	cfg.HandshakeTimeout = 0 // bore's 3 s: a thousand set-ups at once on two cores
	cfg.Logger = discardLogger
	c := startClient(t, cfg)
	public := publicLoopback(c)

	load := dialEchoLoad(public, n, 30*time.Second)
	if !load.failedDials() {
		eventually(t, fmt.Sprintf("%d connections relayed at once", n), func() bool {
			return s.Stats().ConnectionsActive == int64(n)
		})
	}
	for _, err := range load.release() {
		t.Error(err)
	}
	eventually(t, "all connections closed", func() bool { return s.Stats().ConnectionsActive == 0 })
	if st := s.Stats(); st.ConnectionsForwarded != int64(n) || st.BytesFromVisitors != int64(n*1200) || st.BytesToVisitors != int64(n*1200) {
		t.Errorf("stats %+v", st)
	}
}

// benchTargets returns the address of a loopback service started by serve, directly and through a tunnel.
func benchTargets(b *testing.B, serve func(*net.TCPConn)) map[string]string {
	l := listenLocal(b)
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait)
	wg.Go(func() {
		for {
			conn, err := l.AcceptTCP()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				serve(conn)
			})
		}
	})
	b.Cleanup(func() { l.Close() })
	s := startServer(b, ServerConfig{Logger: discardLogger})
	cfg := clientConfig(b, s, portOf(l.Addr()), "")
	cfg.Logger = discardLogger
	c := startClient(b, cfg)
	return map[string]string{"Direct": l.Addr().String(), "Tunnel": publicLoopback(c)}
}

func echo(conn *net.TCPConn) { io.Copy(conn, conn) }

// sink reads everything in large reads, then answers one byte.
func sink(conn *net.TCPConn) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	conn.Write([]byte{1})
}

// BenchmarkBulk sends 64 KiB writes one way; MB/s is the throughput.
func BenchmarkBulk(b *testing.B) {
	targets := benchTargets(b, sink)
	for _, name := range []string{"Direct", "Tunnel"} {
		b.Run(name, func(b *testing.B) {
			chunk := make([]byte, 64<<10)
			b.SetBytes(int64(len(chunk)))
			conn := dial(b, targets[name])
			conn.SetDeadline(noDeadline)
			b.ResetTimer()
			for range b.N {
				if _, err := conn.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			conn.CloseWrite()
			if _, err := io.ReadFull(conn, chunk[:1]); err != nil { // all of it arrived
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRoundTrip sends one byte and waits for its echo.
func BenchmarkRoundTrip(b *testing.B) {
	targets := benchTargets(b, echo)
	for _, name := range []string{"Direct", "Tunnel"} {
		b.Run(name, func(b *testing.B) {
			conn := dial(b, targets[name])
			conn.SetDeadline(noDeadline)
			buf := []byte{0}
			b.ResetTimer()
			for range b.N {
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetup connects and completes a first one-byte round trip.
func BenchmarkSetup(b *testing.B) {
	targets := benchTargets(b, echo)
	for _, name := range []string{"Direct", "Tunnel"} {
		b.Run(name, func(b *testing.B) {
			buf := []byte{0}
			for range b.N {
				conn, err := net.Dial("tcp", targets[name])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
	}
}
